// Rich text: fenced code blocks, inline code, https links and line breaks, by the rules the Rust front ends
// follow too; nothing else of Markdown.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { richPieces } from '../web/rich.js';

test('a fenced block takes the lines up to its closing fence, with its language label', () => {
  assert.deepEqual(richPieces('look:\n```rust\nfn main() {\n\tlet x = 1;  \n}\n```\nneat'), [
    { text: 'look:' },
    { block: 'fn main() {\n\tlet x = 1;  \n}', language: 'rust' },
    { text: 'neat' },
  ]);
  assert.deepEqual(richPieces('```\nplain\n```'), [{ block: 'plain', language: '' }]);
  assert.deepEqual(richPieces('  ```  js  \nx\n  ```  '), [{ block: 'x', language: 'js' }], 'fences indented, label trimmed');
  assert.deepEqual(richPieces('```\n```'), [{ block: '', language: '' }]);
});

test('text after a block is kept, blank lines around it too', () => {
  assert.deepEqual(richPieces('a\n\n```\nb\n```\n\nc `d`'), [
    { text: 'a\n' },
    { block: 'b', language: '' },
    { text: '\nc ' },
    { code: 'd' },
  ]);
  assert.deepEqual(richPieces('```\none\n```\n```\ntwo\n```'), [
    { block: 'one', language: '' },
    { block: 'two', language: '' },
  ]);
});

test('only a line of exactly three backticks closes a block', () => {
  assert.deepEqual(richPieces('```\na ``` b\n````\n```x\n```'), [{ block: 'a ``` b\n````\n```x', language: '' }]);
});

test('a fence that is never closed is plain text', () => {
  assert.deepEqual(richPieces('```js\nlet x = `y`;'), [{ text: '```js\nlet x = ' }, { code: 'y' }, { text: ';' }]);
  assert.deepEqual(richPieces('```'), [{ text: '```' }]);
  assert.deepEqual(richPieces('a\n```\nb\n```c'), [{ text: 'a\n```\nb\n```c' }]);
});

test('a line opening and closing a fence is a one-line block', () => {
  assert.deepEqual(richPieces('```ls -l /tmp```'), [{ block: 'ls -l /tmp', language: '' }]);
  assert.deepEqual(richPieces('run\n  ```make  test```  \ndone'), [
    { text: 'run' },
    { block: 'make  test', language: '' },
    { text: 'done' },
  ]);
  // Nothing between: not the one-line form, but a fence labelled "```" that nothing closes.
  assert.deepEqual(richPieces('``````'), [{ text: '``````' }]);
});

test('nothing inside a block is code or a link', () => {
  assert.deepEqual(richPieces('```\nsee https://example.org and `x`\n```'), [
    { block: 'see https://example.org and `x`', language: '' },
  ]);
  assert.deepEqual(richPieces('```https://example.org```'), [{ block: 'https://example.org', language: '' }]);
});

test('inline code sits between two backticks of one line, at its edges too', () => {
  assert.deepEqual(richPieces('`start` middle `end`'), [{ code: 'start' }, { text: ' middle ' }, { code: 'end' }]);
  assert.deepEqual(richPieces('`a`\n`b`'), [{ code: 'a' }, { text: '\n' }, { code: 'b' }]);
  assert.deepEqual(richPieces('` two  spaces `'), [{ code: ' two  spaces ' }], 'verbatim');
  assert.deepEqual(richPieces('`*bold*`'), [{ code: '*bold*' }]);
});

test('a backtick without a partner on its line stays text, and so does an empty pair', () => {
  assert.deepEqual(richPieces('`'), [{ text: '`' }]);
  assert.deepEqual(richPieces('it`s'), [{ text: 'it`s' }]);
  assert.deepEqual(richPieces('`a\nb`'), [{ text: '`a\nb`' }], 'no newline inside');
  assert.deepEqual(richPieces('`a\nb` c`'), [{ text: '`a\nb' }, { code: ' c' }], 'the second line pairs its own');
  assert.deepEqual(richPieces('`` and `'), [{ text: '`` and `' }]);
  assert.deepEqual(richPieces('a `` b `c`'), [{ text: 'a `` b ' }, { code: 'c' }]);
});

test('a link inside inline code is not linked; beside it, it is', () => {
  assert.deepEqual(richPieces('`https://example.org` https://example.org/a`b`'), [
    { code: 'https://example.org' },
    { text: ' ' },
    { text: 'https://example.org/a', href: 'https://example.org/a' },
    { code: 'b' },
  ]);
});

test('links: https only, any case, trailing punctuation cut, no user info', () => {
  assert.deepEqual(richPieces('HTTPS://Example.org/X, Https://a.example.'), [
    { text: 'HTTPS://Example.org/X', href: 'https://example.org/X' },
    { text: ', ' },
    { text: 'Https://a.example', href: 'https://a.example/' },
    { text: '.' },
  ]);
  assert.deepEqual(richPieces('(see https://example.org/a_(b)?!)'), [
    { text: '(see ' },
    { text: 'https://example.org/a_(b', href: 'https://example.org/a_(b' },
    { text: ')?!)' },
  ]);
  assert.deepEqual(richPieces('"https://example.org/q?a=1#f"'), [
    { text: '"' },
    { text: 'https://example.org/q?a=1#f', href: 'https://example.org/q?a=1#f' },
    { text: '"' },
  ]);
  for (const text of [
    'https://a@b',
    'https://good.example@evil.example',
    'https://user:pass@example.org/',
    'https://@example.org',
    'http://example.org',
    'javascript:alert(1)',
    'data:text/html,x',
    'https://',
    'https:///example.org',
    'https://?q',
    'https://#f',
    'https://.',
  ]) {
    assert.deepEqual(richPieces(text), [{ text }], text);
  }
  assert.deepEqual(richPieces('https://example.org/@ana'), [{ text: 'https://example.org/@ana', href: 'https://example.org/@ana' }], '@ after the host');
});

test('line breaks and everything else are kept as typed', () => {
  assert.deepEqual(richPieces('one\ntwo\n\n  three\t*bold* _it_ # h\n'), [{ text: 'one\ntwo\n\n  three\t*bold* _it_ # h\n' }]);
  assert.deepEqual(richPieces(''), []);
  assert.deepEqual(richPieces('<img src=x onerror=alert(1)>'), [{ text: '<img src=x onerror=alert(1)>' }]);
});

test('unclosed fences stay text around the blocks that are closed', () => {
  const text = '```sh\n'.repeat(3);
  assert.deepEqual(richPieces(text), [{ text }]);
  assert.deepEqual(richPieces('```a\nb\n```\n```c\n```d```\n```e'), [
    { block: 'b', language: 'a' },
    { text: '```c' },
    { block: 'd', language: '' },
    { text: '```e' },
  ]);
});
