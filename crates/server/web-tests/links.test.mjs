// Links: only https URLs the URL parser accepts, showing a host without user info, become links; javascript:,
// data:, http: and the rest stay text.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { linkPieces, safeHref } from '../web/links.js';

test('https URLs in text become links, punctuation after them stays text', () => {
  assert.deepEqual(linkPieces('see https://example.org/a?b=1#c, then https://palomar.test/x.'), [
    { text: 'see ' },
    { text: 'https://example.org/a?b=1#c', href: 'https://example.org/a?b=1#c' },
    { text: ', then ' },
    { text: 'https://palomar.test/x', href: 'https://palomar.test/x' },
    { text: '.' },
  ]);
  assert.deepEqual(linkPieces('(https://example.org)'), [
    { text: '(' },
    { text: 'https://example.org', href: 'https://example.org/' },
    { text: ')' },
  ]);
});

test('nothing but https is ever linked', () => {
  for (const text of [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(document.cookie)',
    'http://example.org',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox',
    'ftp://example.org',
    'file:///etc/passwd',
    '<a href="javascript:alert(1)">x</a>',
    'https://',
    'https://good.example@evil.example',
    'https:///evil.example',
  ]) {
    assert.ok(linkPieces(text).every((piece) => piece.href === undefined), text);
  }
  assert.equal(safeHref('javascript:alert(1)'), null);
  assert.equal(safeHref('http://example.org'), null);
  assert.equal(safeHref('https://a@b'), null, 'user info');
  assert.equal(safeHref('https:///b'), null, 'an empty host, which the parser would skip');
  assert.equal(safeHref('https://example.org/'), 'https://example.org/');
});

test('joining the pieces gives the text back', () => {
  for (const text of ['', 'plain', 'https://a.example', 'x https://a.example/y?z y', '<img src=x onerror=alert(1)>']) {
    assert.equal(linkPieces(text).map((piece) => piece.text).join(''), text);
  }
});
