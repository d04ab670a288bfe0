// Slash commands: the same commands and words as the native clients' parser (crates/client/src/command_line.rs).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HELP, parseEntry } from '../web/commands.js';

test('text is sent as typed, a double slash escapes, blank is nothing', () => {
  assert.deepEqual(parseEntry('  hello  '), { kind: 'text', text: '  hello  ' });
  assert.deepEqual(parseEntry('//join me'), { kind: 'text', text: '/join me' });
  assert.deepEqual(parseEntry('line one\nline two'), { kind: 'text', text: 'line one\nline two' });
  assert.equal(parseEntry(' \n\t '), null);
});

test('commands and their arguments', () => {
  assert.deepEqual(parseEntry('/join #Garden'), { kind: 'join', room: 'garden' });
  assert.deepEqual(parseEntry('/leave'), { kind: 'leave', room: null });
  assert.deepEqual(parseEntry('/leave garden'), { kind: 'leave', room: 'garden' });
  assert.deepEqual(parseEntry('/msg bob'), { kind: 'msg', nick: 'bob', text: null });
  assert.deepEqual(parseEntry('/msg Bob  hi there\nsecond line '), { kind: 'msg', nick: 'bob', text: 'hi there\nsecond line' });
  assert.deepEqual(parseEntry('/users'), { kind: 'users', room: null });
  assert.deepEqual(parseEntry('/users lobby'), { kind: 'users', room: 'lobby' });
  assert.deepEqual(parseEntry('/history'), { kind: 'history', count: null });
  assert.deepEqual(parseEntry('/history 10'), { kind: 'history', count: 10 });
  assert.deepEqual(parseEntry('/HELP'), { kind: 'help' });
  assert.deepEqual(parseEntry('/quit now'), { kind: 'quit' });
});

test('mistakes say how to write the command, and nothing is sent', () => {
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.equal(error('/join'), '/join ROOM: room name must not be empty');
  assert.match(error('/join two words'), /^\/join ROOM: room name may only contain/);
  assert.match(error('/msg 9lives hi'), /^\/msg NICK \[TEXT\]: nickname may only contain/);
  assert.equal(error('/history 0'), '/history [N]: N must be a whole number of messages, 1 or more');
  assert.equal(error('/history ten'), '/history [N]: N must be a whole number of messages, 1 or more');
  assert.equal(error('/dance'), 'unknown command /dance; /help lists them');
  assert.equal(error('/'), 'unknown command /; /help lists them');
});

test('help names every command once', () => {
  const usages = HELP.map(([usage]) => usage.split(' ')[0]);
  for (const command of ['/join', '/leave', '/msg', '/users', '/history', '/help', '/quit', '//text']) {
    assert.equal(usages.filter((usage) => usage === command).length, 1, command);
  }
});
