// What the chat screen shows: unread counts and mentions per conversation, pending and failed messages, notices
// in their place, scrollback's end, presence.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChatModel } from '../web/model.js';

function delivered(conversation, seq, from, text) {
  return { conversation, seq, id: seq.toString(16).padStart(32, '0'), from, ts: 1_765_065_600_000 + seq, text };
}

test('unread messages and mentions are counted per conversation until read', () => {
  const model = new ChatModel('ana');
  const alerts = model.apply({
    type: 'messages',
    messages: [
      delivered('#lobby', 1, 'bob', 'hello'),
      delivered('#lobby', 2, 'bob', 'ana: are you there?'),
      delivered('#lobby', 3, 'ana', 'ana here'),
      delivered('@bob', 1, 'bob', 'psst'),
    ],
  });
  assert.deepEqual(model.conversation('#lobby').unread('ana'), { count: 2, mentioned: 1 });
  assert.deepEqual(model.conversation('@bob').unread('ana'), { count: 1, mentioned: 0 });
  assert.equal(model.totalUnread(), 3);
  assert.deepEqual(alerts.map((alert) => [alert.conversation, alert.seq]), [['#lobby', 2], ['@bob', 1]], 'mentions and direct messages');
  assert.equal(model.markCurrentRead(), 3);
  assert.equal(model.totalUnread(), 1);
  assert.equal(model.markCurrentRead(), null, 'nothing new');
});

test('read markers and kept messages restore the counts after a reload', () => {
  const model = new ChatModel('ana');
  model.apply({
    type: 'restored',
    outbox: [{ order: 1, id: 'f'.repeat(32), to: '#lobby', text: 'typed before', typedAt: 5 }],
    messages: new Map([['@bob', [delivered('@bob', 1, 'bob', 'a'), delivered('@bob', 2, 'bob', 'b'), delivered('@bob', 3, 'bob', 'c')]]]),
    readMarkers: new Map([['@bob', 1]]),
    cursors: new Map([['@bob', 3]]),
  });
  assert.equal(model.conversation('@bob').unread('ana').count, 2);
  const pending = model.conversation('#lobby').entries().filter((entry) => entry.kind === 'message');
  assert.deepEqual(pending.map((entry) => [entry.text, entry.state]), [['typed before', 'pending']]);
});

test('own messages are pending until accepted, and failed with the reason when refused', () => {
  const model = new ChatModel('ana');
  const entry = (id, text) => ({ order: 1, id, to: '#lobby', text, typedAt: 10 });
  model.apply({ type: 'queued', entry: entry('a'.repeat(32), 'one') });
  model.apply({ type: 'queued', entry: entry('b'.repeat(32), 'two') });
  model.apply({ type: 'accepted', id: 'a'.repeat(32), key: '#lobby', seq: 4, ts: 11 });
  model.apply({ type: 'refused', id: 'b'.repeat(32), code: 'InvalidText', message: 'too long' });
  const shown = model.conversation('#lobby').entries().map((line) => [line.text, line.state, line.seq, line.failure]);
  assert.deepEqual(shown, [['one', 'stored', 4, undefined], ['two', 'failed', null, 'too long']]);
});

test('a history page says when the start, or the end of what is kept, is reached', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 200, firstSeq: 1 }] });
  model.apply({ type: 'messages', messages: [delivered('#lobby', 151, 'bob', 'x')] });
  assert.deepEqual(model.olderRequest('#lobby'), { key: '#lobby', before: 151, limit: 50 });
  assert.equal(model.olderRequest('#lobby'), null, 'one page at a time');
  model.apply({ type: 'history', key: '#lobby', messages: [delivered('#lobby', 101, 'bob', 'y')], completeFrom: 1 });
  assert.equal(model.conversation('#lobby').history, 'more');
  model.olderRequest('#lobby');
  model.apply({ type: 'history', key: '#lobby', messages: [delivered('#lobby', 1, 'bob', 'z')], completeFrom: 1 });
  assert.equal(model.conversation('#lobby').history, 'start');

  model.apply({ type: 'welcome', conversations: [{ key: '#big', latestSeq: 900, firstSeq: 400 }] });
  model.apply({ type: 'messages', messages: [delivered('#big', 850, 'bob', 'x')] });
  model.olderRequest('#big');
  model.apply({ type: 'history', key: '#big', messages: [], completeFrom: 400 });
  assert.equal(model.conversation('#big').history, 'trimmed');
  assert.equal(model.conversation('#big').keptFrom, 400);
});

test('an empty conversation is not called complete before the server said how long it is', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'restored', outbox: [], messages: new Map(), readMarkers: new Map(), cursors: new Map() });
  assert.equal(model.conversation('#lobby').history, 'more');
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 60, firstSeq: 1 }] });
  model.apply({ type: 'messages', messages: [delivered('#lobby', 11, 'bob', 'x')] });
  assert.equal(model.conversation('#lobby').history, 'more');
  model.apply({ type: 'welcome', conversations: [{ key: '#quiet', latestSeq: 0, firstSeq: 1 }] });
  assert.equal(model.conversation('#quiet').history, 'start');
});

test('a page that will not come is not waited for: the connection ended, or the request was refused', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 200, firstSeq: 1 }] });
  assert.notEqual(model.olderRequest('#lobby'), null);
  model.apply({ type: 'status', state: 'waiting' });
  assert.notEqual(model.olderRequest('#lobby'), null, 'asked again after the reconnection');
  model.apply({ type: 'error', code: 'NotMember', message: 'not a member', id: null });
  assert.equal(model.conversation('#lobby').history, 'more');
});

test('presence and member lists, with join and leave notices', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'users', room: 'lobby', online: ['ana'], offline: ['bob'] });
  model.apply({ type: 'presence', room: 'lobby', nick: 'bob', state: 'Online' });
  model.apply({ type: 'presence', room: 'lobby', nick: 'carol', state: 'Joined' });
  model.apply({ type: 'presence', room: 'lobby', nick: 'bob', state: 'Left' });
  const lobby = model.conversation('#lobby');
  assert.deepEqual([...lobby.members], [['ana', true], ['carol', true]]);
  assert.deepEqual(lobby.entries().map((line) => line.text), ['carol joined', 'bob left']);
});

test('a closed conversation is forgotten and the lobby shown instead', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'messages', messages: [delivered('@carol', 1, 'carol', 'hi')] });
  model.select('@carol');
  model.apply({ type: 'closed', key: '@carol', reason: 'the account was removed' });
  assert.equal(model.conversations.has('@carol'), false);
  assert.equal(model.currentKey, '#lobby');
});

test('a server restored from an older backup: what it no longer has leaves the view, and its new messages show', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'messages', messages: [5, 6, 7].map((seq) => delivered('#lobby', seq, 'bob', `old ${seq}`)) });
  model.apply({ type: 'rewound', key: '#lobby', latestSeq: 5, had: 7 });
  const lobby = model.conversation('#lobby');
  assert.deepEqual([...lobby.messages.keys()], [5]);
  assert.ok(lobby.notices.some((notice) => notice.error && notice.text.includes('up to message 5, where you had seen 7')));
  model.apply({ type: 'messages', messages: [delivered('#lobby', 6, 'bob', 'new 6')] });
  assert.equal(lobby.messages.get(6).text, 'new 6');
});
