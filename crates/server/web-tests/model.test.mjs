// What the chat screen shows: unread counts and mentions per conversation, pending and failed messages, notices
// in their place, scrollback's end, presence, rooms' topics and standing, what moderators do in words, and kinds
// of messages (actions, edits and deletions applied in any order, what /edit and /delete mean); the user's
// preferences (ignored nicknames left out, highlight words as mentions, silenced conversations) and which new
// messages alert; search (its pages gathered, stale answers dropped, its refusals, /goto, the words of its lines);
// knowing who is there (whois lines and durations, away, typing words and expiry, typing sent and renewed, seen-by,
// the "new messages" divider, unread following our own marker, read markers sent once a second and after a
// reconnection; /receipts off and /typing off: neither sent nor shown, what was read here still followed).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ChatModel,
  MAX_HIGHLIGHT_WORDS,
  MAX_IGNORED,
  RECEIPTS_OFF,
  RECEIPTS_ON,
  SEARCH_PAGE,
  TYPING_OFF,
  TYPING_ON,
  duration,
  hitLine,
  hitTime,
  markWords,
  searchHeader,
  searchLines,
  seenByWords,
  typingWords,
  whoisLines,
  whoisTime,
} from '../web/model.js';

// The times of search results are written in the page's time zone: the tests' is fixed.
process.env.TZ = 'UTC';

function delivered(conversation, seq, from, text, kind = 'Text', of = null, revision = 'Original') {
  return { conversation, seq, id: seq.toString(16).padStart(32, '0'), from, ts: 1_765_065_600_000 + seq, text, kind, of, revision };
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
    outbox: [{ order: 1, id: 'f'.repeat(32), to: '#lobby', kind: 'Text', of: null, text: 'typed before', typedAt: 5 }],
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
  const entry = (id, text) => ({ order: 1, id, to: '#lobby', kind: 'Text', of: null, text, typedAt: 10 });
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

function roomState(room, fields = {}) {
  return { type: 'roomState', key: `#${room}`, topic: '', inviteOnly: false, moderated: false, role: 'Member', muted: false, operator: false, ...fields };
}

function texts(model, key) {
  return model.conversation(key).entries().filter((line) => line.kind === 'notice').map((line) => line.text);
}

test('a room\'s topic and our standing in it, from RoomState, back to the defaults on the next Welcome', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#garden', latestSeq: 0, firstSeq: 1 });
  const garden = model.conversation('#garden');
  assert.equal(garden.standing(), '');
  assert.ok(garden.maySpeak());
  model.apply(roomState('garden', { topic: 'roses <img src=x onerror=alert(1)>', inviteOnly: true, moderated: true, role: 'Voice' }));
  assert.equal(garden.roomState.topic, 'roses <img src=x onerror=alert(1)>');
  assert.equal(garden.standing(), 'invite-only · moderated · you have voice');
  model.apply(roomState('garden', { moderated: true }));
  assert.equal(garden.standing(), 'moderated · you may not speak without voice');
  assert.equal(garden.maySpeak(), false);
  model.apply(roomState('garden', { muted: true, role: 'Moderator' }));
  assert.equal(garden.standing(), 'you are a moderator', 'moderators are never muted');
  model.apply(roomState('garden', { muted: true }));
  assert.equal(garden.standing(), 'you are muted');
  model.apply({ type: 'messages', messages: [delivered('#garden', 1, 'bob', 'hi')] });
  assert.equal(garden.shown()[0].answerable, false, 'a muted member is not offered Reply or reactions');
  model.apply(roomState('garden', {}));
  assert.equal(garden.shown()[0].answerable, true);
  model.apply({ type: 'welcome', conversations: [{ key: '#garden', latestSeq: 0, firstSeq: 1 }] });
  assert.deepEqual(garden.roomState, { topic: '', inviteOnly: false, moderated: false, role: 'Member', muted: false, operator: false });
  model.apply(roomState('attic', { topic: 'dust' }));
  assert.equal(model.conversations.has('#attic'), false, 'not a room we are in');
});

test('what moderators do is said in words, in the room\'s conversation', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#garden', latestSeq: 0, firstSeq: 1 });
  model.apply({ type: 'users', room: 'garden', online: ['ana', 'bob'], offline: [] });
  const event = (by, change) => model.apply({ type: 'roomEvent', key: '#garden', by, change });
  event('ana', { kind: 'Kicked', nick: 'bob', reason: 'spamming' });
  event('ana', { kind: 'Banned', nick: 'carol', reason: '' });
  event(null, { kind: 'Unbanned', nick: 'carol' });
  event('ana', { kind: 'Muted', nick: 'dave', reason: 'flooding' });
  event('ana', { kind: 'Unmuted', nick: 'dave' });
  event('ana', { kind: 'RoleSet', nick: 'bob', role: 'Voice' });
  event('ana', { kind: 'RoleSet', nick: 'bob', role: 'Moderator' });
  event('ana', { kind: 'RoleSet', nick: 'bob', role: 'Member' });
  event('ana', { kind: 'Invited', nick: 'erin' });
  event('ana', { kind: 'Topic', text: 'roses <img src=x onerror=alert(1)>' });
  event('ana', { kind: 'Topic', text: '' });
  event('ana', { kind: 'InviteOnly', on: true });
  event('ana', { kind: 'InviteOnly', on: false });
  event(null, { kind: 'Moderated', on: true });
  assert.deepEqual(texts(model, '#garden'), [
    'bob was kicked by ana: spamming',
    'carol was banned by ana',
    "carol was unbanned by the server's operator",
    'dave was muted by ana: flooding',
    'dave was unmuted by ana',
    'ana gave bob voice',
    'ana made bob a moderator',
    'ana made bob a plain member',
    'ana invited erin',
    'ana set the topic: roses <img src=x onerror=alert(1)>',
    'ana cleared the topic',
    'ana made #garden invite-only',
    'ana opened #garden to everyone',
    "the server's operator made #garden moderated: only members with voice, and moderators, may speak",
  ]);
  const garden = model.conversation('#garden');
  assert.equal(garden.members.has('bob'), false, 'a kicked member leaves the list');
  assert.equal(garden.roomState.topic, '');
  assert.equal(garden.roomState.moderated, true, 'the state follows the event');
});

test('what moderators do to us: muted and given a role where we are, put out of a room into the lobby', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#garden', latestSeq: 0, firstSeq: 1 });
  model.select('#garden');
  const event = (change) => model.apply({ type: 'roomEvent', key: '#garden', by: 'bob', change });
  event({ kind: 'Muted', nick: 'ana', reason: 'calm down' });
  const garden = model.conversation('#garden');
  assert.equal(garden.roomState.muted, true);
  assert.equal(garden.standing(), 'you are muted');
  event({ kind: 'Unmuted', nick: 'ana' });
  event({ kind: 'RoleSet', nick: 'ana', role: 'Voice' });
  assert.equal(garden.roomState.role, 'Voice');
  assert.deepEqual(texts(model, '#garden'), ['you were muted by bob: calm down', 'you were unmuted by bob', 'bob gave you voice']);
  assert.equal(garden.notices[0].error, true);

  event({ kind: 'Banned', nick: 'ana', reason: 'enough' });
  model.apply({ type: 'left', key: '#garden' });
  assert.equal(model.conversations.has('#garden'), false);
  assert.equal(model.currentKey, '#lobby');
  assert.deepEqual(texts(model, '#lobby'), ['you were banned from #garden by bob: enough'], 'not also "you left"');

  model.apply({ type: 'roomEvent', key: '#garden', by: 'bob', change: { kind: 'Unbanned', nick: 'ana' } });
  model.apply({ type: 'invited', room: 'attic', by: 'carol' });
  model.apply({ type: 'invited', room: 'cellar', by: null });
  assert.deepEqual(texts(model, '#lobby').slice(1), [
    'you were unbanned from #garden by bob',
    'you were invited to #attic by carol — /join attic',
    "you were invited to #cellar by the server's operator — /join cellar",
  ]);
  assert.equal(model.conversations.has('#garden'), false, 'an event about a room we are not in does not bring it back');
  model.apply({ type: 'left', key: '#attic' });
  assert.equal(texts(model, '#lobby').at(-1), 'you left #attic', 'a leave of our own is said again');
});

test('/topic says the current room\'s topic; a refused join is not waited for', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#garden', latestSeq: 0, firstSeq: 1 });
  model.select('#garden');
  model.showTopic('#garden');
  model.apply(roomState('garden', { topic: 'roses' }));
  model.showTopic('#garden');
  assert.deepEqual(texts(model, '#garden'), ['#garden has no topic', 'the topic of #garden: roses']);
  model.switchTo = '#attic';
  model.apply({ type: 'error', code: 'Banned', message: 'you are banned from #attic', id: null });
  assert.equal(model.switchTo, null);
});

test("the rooms' listing: a line per room in the conversation shown, and how to see the next ones", () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#garden', latestSeq: 0, firstSeq: 1 });
  model.select('#garden');
  model.apply({
    type: 'rooms',
    rooms: [
      { room: 'attic', members: 1, topic: '', inviteOnly: true },
      { room: 'garden', members: 3, topic: 'Seeds <img src=x onerror=alert(1)>', inviteOnly: false },
      { room: 'lobby', members: 12, topic: '', inviteOnly: false },
    ],
    more: true,
  });
  assert.deepEqual(texts(model, '#garden'), [
    '#attic  1 member  invite-only',
    '#garden  3 members  Seeds <img src=x onerror=alert(1)>',
    '#lobby  12 members',
    '/list lobby shows the next ones',
  ]);
  model.apply({ type: 'rooms', rooms: [{ room: 'zoo', members: 2, topic: 'Animals', inviteOnly: true }], more: false });
  assert.equal(texts(model, '#garden').at(-1), '#zoo  2 members  invite-only  Animals');
  model.apply({ type: 'rooms', rooms: [], more: false });
  assert.equal(texts(model, '#garden').at(-1), 'there are no rooms to list');
  assert.deepEqual(texts(model, '#lobby'), [], 'only in the conversation shown');
  assert.ok(model.conversation('#garden').notices.every((notice) => !notice.error));
});

function lines(model, key) {
  return model.conversation(key).entries().filter((line) => line.kind === 'message').map((line) => [line.seq, line.from, line.text, line.edited, line.deleted]);
}

test('edits change the text of their message and mark it edited; deletions leave a placeholder; neither is a line', () => {
  const model = new ChatModel('ana');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 1, 'bob', 'helo'),
      delivered('#rust', 2, 'ana', 'mine'),
      delivered('#rust', 3, 'carol', 'spam'),
      delivered('#rust', 4, 'dave', 'oops'),
      delivered('#rust', 5, 'bob', 'hello', 'Edit', 1),
      delivered('#rust', 6, 'bob', 'hello!', 'Edit', 1),
      delivered('#rust', 7, 'ana', '', 'Deletion', 2),
      delivered('#rust', 8, 'bob', 'spam', 'Deletion', 3),
      delivered('#rust', 9, 'dave', 'wrong room', 'Deletion', 4),
    ],
  });
  assert.deepEqual(lines(model, '#rust'), [
    [1, 'bob', 'hello!', true, false],
    [2, 'ana', '(deleted)', false, true],
    [3, 'carol', '(deleted by bob: spam)', false, true],
    [4, 'dave', '(deleted by dave: wrong room)', false, true],
  ]);
  model.apply({ type: 'messages', messages: [delivered('#rust', 10, 'carol', 'hi'), delivered('#rust', 11, 'bob', '', 'Deletion', 10)] });
  assert.equal(lines(model, '#rust').at(-1)[2], '(deleted by bob)', 'not the author, no reason');
  model.apply({ type: 'messages', messages: [delivered('#rust', 12, 'bob', 'anything', 'Edit', 1), delivered('#rust', 13, 'bob', '', 'Deletion', 1)] });
  assert.deepEqual(lines(model, '#rust')[0], [1, 'bob', '(deleted)', false, true], 'its edits vanish with it');
  assert.equal(model.conversation('#rust').highestSeq(), 13, 'edits and deletions count as read with the rest');
});

test('unread counts and mentions: edits and deletions are not messages, and a deleted message is not waiting to be read', () => {
  const model = new ChatModel('ana');
  model.select('@bob');
  const alerts = model.apply({
    type: 'messages',
    messages: [
      delivered('#lobby', 1, 'bob', 'ana: look'),
      delivered('#lobby', 2, 'bob', 'ana: really', 'Edit', 1),
      delivered('#lobby', 3, 'carol', 'hello ana'),
      delivered('#lobby', 4, 'carol', '', 'Deletion', 3),
      delivered('@bob', 1, 'bob', 'psst'),
      delivered('@bob', 2, 'bob', 'psst!', 'Edit', 1),
      delivered('@bob', 3, 'bob', '', 'Text', null, 'Deleted'),
    ],
  });
  assert.deepEqual(model.conversation('#lobby').unread('ana'), { count: 1, mentioned: 1 });
  assert.deepEqual(model.conversation('@bob').unread('ana'), { count: 1, mentioned: 0 });
  assert.deepEqual(alerts.map((alert) => [alert.conversation, alert.seq]), [['#lobby', 1], ['#lobby', 3], ['@bob', 1]], 'no alert for an edit, a deletion, or a message deleted before it came');
});

test('messages that arrive already edited or deleted say so; an edit whose revision is Deleted is ignored', () => {
  const model = new ChatModel('ana');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 1, 'bob', 'latest text', 'Text', null, 'Edited'),
      delivered('#rust', 2, 'bob', '', 'Action', null, 'Deleted'),
      delivered('#rust', 3, 'bob', '', 'Edit', 2, 'Deleted'),
    ],
  });
  assert.deepEqual(lines(model, '#rust'), [
    [1, 'bob', 'latest text', true, false],
    [2, 'bob', '(deleted)', false, true],
  ]);
});

test('catch-up and history in any order: the latest edit by seq wins, and a deletion wins over every edit', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'welcome', conversations: [{ key: '#rust', latestSeq: 30, firstSeq: 1 }] });
  // The newest page first: the last edit of message 10, the deletion of message 11, without the messages.
  model.apply({ type: 'messages', messages: [delivered('#rust', 25, 'bob', 'third', 'Edit', 10), delivered('#rust', 26, 'carol', 'rude', 'Deletion', 11)] });
  assert.deepEqual(lines(model, '#rust'), [], 'nothing to change yet');
  // Then the page before: the messages as they are now, and the earlier edits.
  model.apply({
    type: 'history',
    key: '#rust',
    messages: [
      delivered('#rust', 10, 'bob', 'third', 'Text', null, 'Edited'),
      delivered('#rust', 11, 'bob', '', 'Text', null, 'Deleted'),
      delivered('#rust', 12, 'bob', 'first', 'Edit', 10),
      delivered('#rust', 13, 'bob', '', 'Edit', 11, 'Deleted'),
      delivered('#rust', 14, 'bob', 'second', 'Edit', 10),
    ],
    completeFrom: 1,
  });
  assert.deepEqual(lines(model, '#rust'), [
    [10, 'bob', 'third', true, false],
    [11, 'bob', '(deleted by carol: rude)', false, true],
  ]);
});

test('actions are lines of their own kind, pending ones too; a pending edit or deletion is not a line, and a refused one goes', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'messages', messages: [delivered('#lobby', 1, 'bob', 'waves', 'Action'), delivered('#lobby', 2, 'ana', 'hi')] });
  const entry = (id, kind, of, text) => ({ order: 1, id, to: '#lobby', kind, of, text, typedAt: 10 });
  model.apply({ type: 'queued', entry: entry('a'.repeat(32), 'Action', null, 'nods') });
  model.apply({ type: 'queued', entry: entry('b'.repeat(32), 'Edit', 2, 'hello') });
  model.apply({ type: 'queued', entry: entry('c'.repeat(32), 'Deletion', 1, '') });
  const shown = () => model.conversation('#lobby').entries().map((line) => [line.from, line.text, line.action, line.state, line.waiting]);
  assert.deepEqual(shown(), [
    ['bob', 'waves', true, 'stored', 'Deletion'],
    ['ana', 'hi', false, 'stored', 'Edit'],
    ['ana', 'nods', true, 'pending', undefined],
  ], 'the edit and the deletion waiting are said on their messages');
  model.apply({ type: 'accepted', id: 'b'.repeat(32), key: '#lobby', seq: 3, ts: 20 });
  model.apply({ type: 'refused', id: 'c'.repeat(32), code: 'NotAllowed', message: 'message 1 is not yours', kind: 'Deletion' });
  assert.deepEqual(shown(), [
    ['bob', 'waves', true, 'stored', null],
    ['ana', 'hello', false, 'stored', null],
    ['ana', 'nods', true, 'pending', undefined],
  ], 'the accepted edit is applied, the refused deletion leaves nothing behind');
  assert.equal(model.conversation('#lobby').unsent.size, 1);
});

test('/edit and /delete find the message meant in the conversation shown, or say why not', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#rust', latestSeq: 40, firstSeq: 1 });
  model.select('#rust');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 30, 'ana', 'older'),
      delivered('#rust', 31, 'ana', 'latest of mine', 'Action'),
      delivered('#rust', 32, 'bob', 'spam'),
      delivered('#rust', 33, 'bob', 'more spam'),
      delivered('#rust', 34, 'bob', '', 'Deletion', 33),
      delivered('#rust', 35, 'ana', 'fixed', 'Edit', 30),
    ],
  });
  model.apply({ type: 'messages', messages: [delivered('#lobby', 50, 'ana', 'elsewhere')] });
  const edit = (seq, text) => model.postFor({ kind: 'edit', seq, text });
  const remove = (seq, nick, reason = '') => model.postFor({ kind: 'delete', seq, nick, reason });
  assert.deepEqual(edit(null, 'new'), { kind: 'Edit', of: 31, text: 'new' }, 'my latest here, an action too');
  assert.deepEqual(edit(30, 'again'), { kind: 'Edit', of: 30, text: 'again' });
  assert.deepEqual(edit(12, 'not loaded'), { kind: 'Edit', of: 12, text: 'not loaded' }, "the server's to judge");
  assert.deepEqual(edit(32, 'x'), { error: "message #32 is bob's: you may edit only yours" });
  assert.deepEqual(edit(33, 'x'), { error: 'message #33 is deleted' });
  assert.deepEqual(edit(35, 'x'), { error: '#35 is an edit, a deletion or a reaction, not a message' });
  assert.deepEqual(remove(null, null), { kind: 'Deletion', of: 31, text: '' });
  assert.deepEqual(remove(null, 'bob', 'spam'), { kind: 'Deletion', of: 32, text: 'spam' }, "bob's latest not deleted");
  assert.deepEqual(remove(32, null, 'spam'), { kind: 'Deletion', of: 32, text: 'spam' });
  assert.deepEqual(remove(33, null), { error: 'message #33 is deleted' });
  assert.deepEqual(remove(null, 'carol'), { error: 'carol has no message shown in #rust to delete' });

  model.apply({ type: 'queued', entry: { order: 1, id: 'a'.repeat(32), to: '#rust', kind: 'Text', of: null, text: 'helo', typedAt: 1 } });
  assert.deepEqual(edit(null, 'hello'), { error: 'your latest message in #rust is not sent yet: edit it once it is' }, 'not the one before it');
  assert.deepEqual(remove(null, 'bob'), { kind: 'Deletion', of: 32, text: '' }, "another's latest is still found");
  assert.deepEqual(edit(30, 'by number'), { kind: 'Edit', of: 30, text: 'by number' });

  model.select('@dave');
  assert.deepEqual(edit(null, 'x'), { error: 'you have no message in @dave to edit' });
  assert.deepEqual(remove(null, null), { error: 'you have no message in @dave to delete' });
});

test('Edit is offered on our own messages, Delete on ours and, to moderators of a room, on everybody\'s', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#rust', latestSeq: 0, firstSeq: 1 });
  model.apply({
    type: 'messages',
    messages: [delivered('#rust', 1, 'ana', 'mine'), delivered('#rust', 2, 'bob', 'his'), delivered('#rust', 3, 'ana', '', 'Text', null, 'Deleted')],
  });
  const offered = () => model.conversation('#rust').entries().map((line) => [line.seq, line.editable, line.deletable]);
  assert.deepEqual(offered(), [[1, true, true], [2, false, false], [3, false, false]]);
  model.apply({ type: 'roomState', key: '#rust', topic: '', inviteOnly: false, moderated: false, role: 'Moderator', muted: false, operator: false });
  assert.deepEqual(offered(), [[1, true, true], [2, false, true], [3, false, false]]);
});

function reacted(conversation, seq, from, emoji, of, added = true, revision = 'Original') {
  return { ...delivered(conversation, seq, from, emoji, 'Reaction', of, revision), added };
}

/// The chips of message `seq`: `[emoji, count, nicks, mine, pending]`.
function chips(model, key, seq) {
  const line = model.conversation(key).entries().find((entry) => entry.seq === seq);
  return line.reactions.map((chip) => [chip.emoji, chip.nicks.length, chip.nicks.join(','), chip.mine, chip.pending]);
}

test('reactions are counted per message in the order of the eight, in seq order: added joins, taken back leaves', () => {
  const model = new ChatModel('ana');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 1, 'bob', 'ship it?'),
      reacted('#rust', 2, 'carol', '🎉', 1),
      reacted('#rust', 3, 'ana', '👍', 1),
      reacted('#rust', 4, 'bob', '👍', 1),
      reacted('#rust', 5, 'dave', '\u2764\ufe0f', 1),
      reacted('#rust', 6, 'carol', '🎉', 1, false),
      reacted('#rust', 7, 'carol', '👍', 1),
      reacted('#rust', 8, 'dave', '\u2764\ufe0f', 1, false),
      reacted('#rust', 9, 'dave', '\u2764\ufe0f', 1),
    ],
  });
  assert.deepEqual(chips(model, '#rust', 1), [
    ['👍', 3, 'ana,bob,carol', true, false],
    ['\u2764\ufe0f', 1, 'dave', false, false],
  ]);
  assert.deepEqual(lines(model, '#rust'), [[1, 'bob', 'ship it?', false, false]], 'a reaction is not a line');
  assert.deepEqual(model.conversation('#rust').unread('ana'), { count: 1, mentioned: 0 }, 'nor unread');
  assert.equal(model.conversation('#rust').highestSeq(), 9, 'reactions count as read with the rest');
});

test('a blanked reaction counts for nothing, and a deleted message shows none', () => {
  const model = new ChatModel('ana');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 1, 'bob', 'one'),
      delivered('#rust', 2, 'bob', 'two'),
      reacted('#rust', 3, 'carol', '', 1, true, 'Deleted'),
      reacted('#rust', 4, 'carol', '👀', 2),
      reacted('#rust', 5, 'dave', '😂', 2),
    ],
  });
  assert.deepEqual(chips(model, '#rust', 1), []);
  assert.deepEqual(chips(model, '#rust', 2), [['😂', 1, 'dave', false, false], ['👀', 1, 'carol', false, false]]);
  model.apply({ type: 'messages', messages: [delivered('#rust', 6, 'bob', '', 'Deletion', 2)] });
  assert.deepEqual(chips(model, '#rust', 2), [], 'its reactions go with it');
});

test('a reaction that comes before its message (a newer page first) shows once the message comes by History', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'welcome', conversations: [{ key: '#rust', latestSeq: 60, firstSeq: 1 }] });
  model.apply({ type: 'messages', messages: [reacted('#rust', 59, 'bob', '😮', 10), reacted('#rust', 60, 'ana', '😮', 10)] });
  assert.deepEqual(lines(model, '#rust'), [], 'nothing to show it on yet');
  model.apply({ type: 'history', key: '#rust', messages: [delivered('#rust', 10, 'carol', 'guess what')], completeFrom: 1 });
  assert.deepEqual(chips(model, '#rust', 10), [['😮', 2, 'bob,ana', true, false]]);
});

test('a reply quotes the first line of what it answers, as it reads now, or that it was deleted, or only its number', () => {
  const model = new ChatModel('ana');
  const long = `${'x'.repeat(79)}yz`;
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 5, 'bob', 'first line\nsecond line'),
      delivered('#rust', 6, 'carol', long),
      delivered('#rust', 7, 'dave', 'gone soon'),
      delivered('#rust', 8, 'ana', 'about the first', 'Reply', 5),
      delivered('#rust', 9, 'ana', 'about the long one', 'Reply', 6),
      delivered('#rust', 10, 'ana', 'about the gone one', 'Reply', 7),
      delivered('#rust', 11, 'ana', 'about an old one', 'Reply', 2),
      delivered('#rust', 12, 'dave', '', 'Deletion', 7),
      delivered('#rust', 13, 'bob', 'short', 'Edit', 5),
      delivered('#rust', 14, 'ana', 'answered, edited', 'Edit', 8),
    ],
  });
  const quotes = () =>
    model.conversation('#rust').entries().filter((line) => line.replyTo !== null).map((line) => [line.seq, line.text, line.replyTo]);
  assert.deepEqual(quotes(), [
    [8, 'answered, edited', { seq: 5, state: 'shown', from: 'bob', text: 'short' }],
    [9, 'about the long one', { seq: 6, state: 'shown', from: 'carol', text: `${'x'.repeat(79)}y…` }],
    [10, 'about the gone one', { seq: 7, state: 'deleted', from: null, text: 'a deleted message' }],
    [11, 'about an old one', { seq: 2, state: 'missing', from: null, text: '#2' }],
  ]);
  assert.equal(model.conversation('#rust').quote(6).text, `${'x'.repeat(79)}y…`);
  model.apply({ type: 'history', key: '#rust', messages: [delivered('#rust', 2, 'bob', 'one\ntwo')], completeFrom: 1 });
  assert.deepEqual(quotes()[3][2], { seq: 2, state: 'shown', from: 'bob', text: 'one…' }, 'the original came later');
  model.apply({ type: 'messages', messages: [delivered('#rust', 15, 'bob', '', 'Deletion', 8)] });
  assert.equal(lines(model, '#rust').find(([seq]) => seq === 8)[2], '(deleted by bob)', 'a reply is deleted like a text');
  assert.equal(lines(model, '#rust').find(([seq]) => seq === 9)[2], 'about the long one', 'replies stay when what they answer goes');
});

test('a reply is a message: read, edited and deleted like one, and a mention when it answers one of ours', () => {
  const model = new ChatModel('ana');
  model.select('#rust');
  const alerts = model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 1, 'ana', 'lunch?'),
      delivered('#rust', 2, 'bob', 'yes', 'Reply', 1),
      delivered('#rust', 3, 'carol', 'me too', 'Reply', 2),
      reacted('#rust', 4, 'bob', '👍', 1),
    ],
  });
  assert.deepEqual(model.conversation('#rust').unread('ana'), { count: 2, mentioned: 1 });
  assert.deepEqual(alerts.map((alert) => alert.seq), [2], 'the answer to us');
  assert.deepEqual(model.postFor({ kind: 'delete', seq: null, nick: 'carol', reason: '' }), { kind: 'Deletion', of: 3, text: '' });
  model.apply({ type: 'messages', messages: [delivered('#rust', 5, 'ana', 'me three', 'Reply', 3)] });
  assert.deepEqual(model.postFor({ kind: 'edit', seq: null, text: 'me three!' }), { kind: 'Edit', of: 5, text: 'me three!' });
  assert.deepEqual(model.postFor({ kind: 'edit', seq: 4, text: 'x' }), { error: '#4 is an edit, a deletion or a reaction, not a message' });
});

test('our replies and reactions on their way: a reply pending like a text, a reaction shown as done, counted once', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'messages', messages: [delivered('#lobby', 1, 'bob', 'hello'), reacted('#lobby', 2, 'carol', '👍', 1)] });
  const entry = (id, kind, of, text, added) => ({ order: 1, id, to: '#lobby', kind, of, text, typedAt: 10, ...(kind === 'Reaction' ? { added } : {}) });
  model.apply({ type: 'queued', entry: entry('a'.repeat(32), 'Reply', 1, 'hi bob') });
  model.apply({ type: 'queued', entry: entry('b'.repeat(32), 'Reaction', 1, '👍', true) });
  model.apply({ type: 'queued', entry: entry('c'.repeat(32), 'Reaction', 1, '🎉', true) });
  const pending = model.conversation('#lobby').entries().at(-1);
  assert.deepEqual([pending.text, pending.state, pending.replyTo], ['hi bob', 'pending', { seq: 1, state: 'shown', from: 'bob', text: 'hello' }]);
  assert.equal(model.conversation('#lobby').entries().length, 2, 'the reactions are not lines');
  assert.deepEqual(chips(model, '#lobby', 1), [['👍', 2, 'carol,ana', true, true], ['🎉', 1, 'ana', true, true]]);

  // Accepted, then echoed: once each.
  model.apply({ type: 'accepted', id: 'b'.repeat(32), key: '#lobby', seq: 3, ts: 20 });
  model.apply({ type: 'messages', messages: [reacted('#lobby', 3, 'ana', '👍', 1)] });
  // Echoed before its Accepted: once too.
  model.apply({ type: 'messages', messages: [{ ...reacted('#lobby', 4, 'ana', '🎉', 1), id: 'c'.repeat(32) }] });
  model.apply({ type: 'accepted', id: 'c'.repeat(32), key: '#lobby', seq: 4, ts: 21 });
  assert.deepEqual(chips(model, '#lobby', 1), [['👍', 2, 'carol,ana', true, false], ['🎉', 1, 'ana', true, false]]);

  // Taking one back on its way, then refused: it shows as it was.
  model.apply({ type: 'queued', entry: entry('d'.repeat(32), 'Reaction', 1, '👍', false) });
  assert.deepEqual(chips(model, '#lobby', 1), [['👍', 1, 'carol', false, true], ['🎉', 1, 'ana', true, false]]);
  model.apply({ type: 'refused', id: 'd'.repeat(32), code: 'NotAllowed', message: 'no', kind: 'Reaction' });
  assert.deepEqual(chips(model, '#lobby', 1), [['👍', 2, 'carol,ana', true, false], ['🎉', 1, 'ana', true, false]]);
  model.apply({ type: 'refused', id: 'a'.repeat(32), code: 'UnknownMessage', message: 'gone', kind: 'Reply' });
  assert.deepEqual(model.conversation('#lobby').entries().at(-1).state, 'failed', 'a refused reply stays, failed, like a text');
});

test('/reply, /react and /unreact find the message meant (the latest not ours without #SEQ); /react toggles ours', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#rust', latestSeq: 40, firstSeq: 1 });
  model.select('#rust');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 30, 'bob', 'question'),
      delivered('#rust', 31, 'carol', 'spam'),
      delivered('#rust', 32, 'ana', 'mine'),
      delivered('#rust', 33, 'bob', '', 'Deletion', 31),
      reacted('#rust', 34, 'ana', '👀', 30),
    ],
  });
  assert.deepEqual(model.replyFor({ seq: null, text: 'yes' }), { kind: 'Reply', of: 30, text: 'yes' }, 'not mine, not deleted');
  assert.deepEqual(model.replyFor({ seq: 32, text: 'me again' }), { kind: 'Reply', of: 32, text: 'me again' });
  assert.deepEqual(model.replyFor({ seq: 12, text: 'old' }), { kind: 'Reply', of: 12, text: 'old' }, "not loaded: the server's to judge");
  assert.deepEqual(model.replyFor({ seq: 31, text: 'x' }), { error: 'message #31 is deleted' });
  assert.deepEqual(model.replyFor({ seq: 34, text: 'x' }), { error: '#34 is an edit, a deletion or a reaction, not a message' });
  assert.deepEqual(model.replyFor({ seq: 41, text: 'x' }), { error: 'there is no message #41 in #rust' });
  assert.deepEqual(model.reactionFor({ seq: null, emoji: '👍' }), { kind: 'Reaction', of: 30, text: '👍', added: true });
  assert.deepEqual(model.reactionFor({ seq: null, emoji: '👀' }), { kind: 'Reaction', of: 30, text: '👀', added: false }, 'toggled');
  assert.deepEqual(model.reactionFor({ seq: 99, emoji: '👀' }), { error: 'there is no message #99 in #rust' });
  assert.deepEqual(model.reactionFor({ seq: null, emoji: '👀', takeBack: true }), { kind: 'Reaction', of: 30, text: '👀', added: false });
  assert.deepEqual(model.reactionFor({ seq: 30, emoji: '👍', takeBack: true }), { error: 'you have no 👍 on message #30 to take back' });
  assert.deepEqual(model.reactionFor({ seq: 12, emoji: '👍', takeBack: true }), { kind: 'Reaction', of: 12, text: '👍', added: false }, "not held: the server's to judge");
  model.apply({ type: 'queued', entry: { order: 1, id: 'a'.repeat(32), to: '#rust', kind: 'Reaction', of: 30, text: '👀', typedAt: 1, added: false } });
  assert.deepEqual(model.reactionFor({ seq: 30, emoji: '👀' }), { kind: 'Reaction', of: 30, text: '👀', added: true }, 'as shown, on its way included');
  model.select('@dave');
  assert.deepEqual(model.replyFor({ seq: null, text: 'x' }), { error: 'there is no message from anybody else in @dave to answer' });
  assert.deepEqual(model.reactionFor({ seq: null, emoji: '👍' }), { error: 'there is no message from anybody else in @dave to react to' });
});

test('the composer answers a message of the conversation shown until another is shown', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'messages', messages: [delivered('#lobby', 1, 'bob', 'hello\nthere')] });
  assert.equal(model.replyingQuote(), null);
  model.replying = 1;
  assert.deepEqual(model.replyingQuote(), { seq: 1, state: 'shown', from: 'bob', text: 'hello…' });
  model.select('#lobby');
  assert.equal(model.replying, 1, 'the same conversation again');
  model.select('@bob');
  assert.equal(model.replyingQuote(), null);
});

/// The last notice of the conversation shown: `[text, error]`.
function lastNotice(model) {
  const notice = model.current.notices.at(-1);
  return [notice.text, notice.error];
}

test('an ignored nickname: its texts, actions, replies and reactions leave the lines and the counts, kept; /unignore shows them again', () => {
  const model = new ChatModel('ana');
  model.select('#rust');
  model.apply({
    type: 'messages',
    messages: [
      delivered('#rust', 1, 'bob', 'ship it?'),
      delivered('#rust', 2, 'mallory', 'ana: buy my coin'),
      delivered('#rust', 3, 'mallory', 'shouts', 'Action'),
      delivered('#rust', 4, 'mallory', 'no', 'Reply', 1),
      reacted('#rust', 5, 'mallory', '👎', 1),
      reacted('#rust', 6, 'carol', '👍', 1),
      delivered('#rust', 7, 'mallory', 'ana: BUY', 'Edit', 2),
      delivered('#rust', 8, 'carol', 'mallory, stop', 'Reply', 2),
      delivered('@mallory', 1, 'mallory', 'psst'),
    ],
  });
  const seqs = (key) => model.conversation(key).entries().filter((line) => line.kind === 'message').map((line) => line.seq);
  assert.deepEqual(model.conversation('#rust').unread('ana'), { count: 5, mentioned: 1 });
  assert.equal(model.ignore('mallory'), true);
  assert.deepEqual(lastNotice(model), ['ignoring mallory: their messages are hidden (/unignore mallory to show them)', false]);
  assert.deepEqual(seqs('#rust'), [1, 8]);
  assert.deepEqual(chips(model, '#rust', 1), [['👍', 1, 'carol', false, false]], 'their reaction is not counted');
  assert.deepEqual(model.conversation('#rust').unread('ana'), { count: 2, mentioned: 0 });
  assert.deepEqual(model.conversation('@mallory').unread('ana'), { count: 0, mentioned: 0 });
  assert.deepEqual(model.conversation('@mallory').entries().filter((line) => line.kind === 'message'), []);
  const quote = model.conversation('#rust').entries().find((line) => line.seq === 8).replyTo;
  assert.deepEqual(quote, { seq: 2, state: 'ignored', from: null, text: 'a message from someone you ignore' }, 'a reply to them quotes nothing of theirs');
  assert.equal(model.conversation('#rust').messages.size, 8, 'kept, not dropped');
  assert.equal(model.totalUnread(), 2);

  assert.equal(model.ignore('mallory'), false);
  assert.deepEqual(lastNotice(model), ['mallory is already ignored', false]);
  assert.equal(model.unignore('mallory'), true);
  assert.deepEqual(lastNotice(model), ['no longer ignoring mallory', false]);
  assert.deepEqual(seqs('#rust'), [1, 2, 3, 4, 8]);
  assert.equal(model.conversation('#rust').entries().find((line) => line.seq === 2).text, 'ana: BUY', 'their edit applies again');
  assert.deepEqual(chips(model, '#rust', 1), [['👍', 1, 'carol', false, false], ['👎', 1, 'mallory', false, false]]);
  assert.deepEqual(model.conversation('#rust').unread('ana'), { count: 5, mentioned: 1 });
  assert.equal(model.unignore('mallory'), false);
  assert.deepEqual(lastNotice(model), ['mallory is not ignored', false]);
});

test('an ignored nickname: asked for by number or by name its messages are still found, and a deletion by them is not named', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'joined', key: '#rust', latestSeq: 3, firstSeq: 1 });
  model.select('#rust');
  model.apply({ type: 'roomState', key: '#rust', topic: '', inviteOnly: false, moderated: false, role: 'Moderator', muted: false, operator: false });
  model.apply({
    type: 'messages',
    messages: [delivered('#rust', 1, 'bob', 'hi'), delivered('#rust', 2, 'mallory', 'spam'), delivered('#rust', 3, 'mallory', 'bob is wrong', 'Deletion', 1)],
  });
  model.ignore('mallory');
  assert.equal(model.conversation('#rust').entries().find((line) => line.seq === 1).text, '(deleted)');
  assert.deepEqual(model.postFor({ kind: 'delete', seq: null, nick: 'mallory', reason: 'spam' }), { kind: 'Deletion', of: 2, text: 'spam' });
  assert.deepEqual(model.postFor({ kind: 'delete', seq: 2, reason: '' }), { kind: 'Deletion', of: 2, text: '' });
  assert.deepEqual(model.replyFor({ seq: 2, text: 'no' }), { kind: 'Reply', of: 2, text: 'no' });
  assert.deepEqual(model.replyFor({ seq: null, text: 'x' }), { error: 'there is no message from anybody else in #rust to answer' }, 'the latest shown');
  assert.equal(model.current.quote(2).state, 'ignored');
});

test('/ignore: lists, refuses ourselves, and keeps at most the limit', () => {
  const model = new ChatModel('ana');
  assert.equal(model.ignore(null), false);
  assert.deepEqual(lastNotice(model), ["ignoring nobody; /ignore NICK hides someone's messages", false]);
  assert.equal(model.ignore('ana'), false);
  assert.deepEqual(lastNotice(model), ['you cannot ignore yourself', true]);
  model.ignore('mallory');
  model.ignore('eve');
  model.ignore(null);
  assert.deepEqual(lastNotice(model), ['ignoring: mallory, eve', false]);
  for (let index = 2; index < MAX_IGNORED; index += 1) model.ignore(`n${index}`);
  assert.equal(model.preferences.ignored.size, MAX_IGNORED);
  assert.equal(model.ignore('one-more'), false);
  assert.deepEqual(lastNotice(model), [`one-more was not ignored: at most ${MAX_IGNORED} nicknames are (/unignore one first)`, true]);
  assert.equal(model.preferences.ignored.has('one-more'), false);
});

test('a highlight word counts as a mention (a whole word, ASCII case aside, not in our own) and alerts', () => {
  const model = new ChatModel('ana');
  assert.equal(model.highlight('deploy'), true);
  assert.deepEqual(lastNotice(model), ['highlighting deploy: messages with it count as mentions (/unhighlight deploy to stop)', false]);
  const alerts = model.apply({
    type: 'messages',
    messages: [
      delivered('#ops', 1, 'bob', 'DEPLOY done.'),
      delivered('#ops', 2, 'bob', 'redeploy, deployment, deploy_bot'),
      delivered('#ops', 3, 'ana', 'deploy now'),
      delivered('#ops', 4, 'bob', 'starts to deploy', 'Action'),
    ],
  });
  assert.deepEqual(alerts.map((alert) => alert.seq), [1, 4]);
  const mentions = () => model.conversation('#ops').entries().map((line) => [line.seq, line.mention]);
  assert.deepEqual(mentions(), [[1, true], [2, false], [3, false], [4, true]]);
  assert.deepEqual(model.conversation('#ops').unread('ana'), { count: 3, mentioned: 2 });
  assert.equal(model.unhighlight('deploy'), true);
  assert.deepEqual(lastNotice(model), ['no longer highlighting deploy', false]);
  assert.deepEqual(model.conversation('#ops').unread('ana'), { count: 3, mentioned: 0 }, 'a word removed applies to every line');
  assert.equal(model.unhighlight('deploy'), false);
  assert.deepEqual(lastNotice(model), ['deploy is not a highlight word', false]);
  assert.deepEqual(model.apply({ type: 'messages', messages: [delivered('#ops', 5, 'bob', 'deploy again')] }), []);
});

test('/highlight: lists, says a word already there, and keeps at most the limit', () => {
  const model = new ChatModel('ana');
  model.highlight(null);
  assert.deepEqual(lastNotice(model), ['no highlight words; /highlight WORD adds one', false]);
  model.highlight('deploy');
  model.highlight('outage');
  assert.equal(model.highlight('deploy'), false);
  assert.deepEqual(lastNotice(model), ['deploy is already a highlight word', false]);
  model.highlight(null);
  assert.deepEqual(lastNotice(model), ['highlight words: deploy, outage', false]);
  for (let index = 2; index < MAX_HIGHLIGHT_WORDS; index += 1) model.highlight(`w${index}`);
  assert.equal(model.highlight('more'), false);
  assert.deepEqual(lastNotice(model), [`more was not added: at most ${MAX_HIGHLIGHT_WORDS} highlight words (/unhighlight one first)`, true]);
  assert.equal(model.preferences.highlights.size, MAX_HIGHLIGHT_WORDS);
});

test('a silenced conversation never alerts, not even for a mention, a highlight word or a direct message; it still counts', () => {
  const model = new ChatModel('ana');
  model.select('#ops');
  model.highlight('outage');
  assert.equal(model.silence(null), true, 'the conversation shown');
  assert.deepEqual(lastNotice(model), ['silenced #ops: no notifications from it (/unsilence to undo)', false]);
  assert.equal(model.silence('@bob'), true);
  assert.equal(model.silence('#ops'), false);
  assert.deepEqual(lastNotice(model), ['#ops is already silenced', false]);
  model.apply({ type: 'messages', messages: [delivered('#ops', 1, 'ana', 'status?')] });
  const alerts = model.apply({
    type: 'messages',
    messages: [
      delivered('#ops', 2, 'bob', 'ana: look'),
      delivered('#ops', 3, 'bob', 'outage!'),
      delivered('#ops', 4, 'bob', 'fine', 'Reply', 1),
      delivered('@bob', 1, 'bob', 'psst'),
    ],
  });
  assert.deepEqual(alerts, []);
  assert.equal(model.conversation('#ops').silenced, true);
  assert.deepEqual(model.conversation('#ops').unread('ana'), { count: 3, mentioned: 3 }, 'still unread, still mentions');
  assert.deepEqual(model.conversation('@bob').unread('ana'), { count: 1, mentioned: 0 });
  assert.equal(model.unsilence(null), true);
  assert.deepEqual(lastNotice(model), ['#ops is no longer silenced', false]);
  assert.equal(model.unsilence('#ops'), false);
  assert.deepEqual(lastNotice(model), ['#ops is not silenced', false]);
  assert.equal(model.conversation('#ops').silenced, false);
  assert.deepEqual(model.apply({ type: 'messages', messages: [delivered('#ops', 5, 'bob', 'ana?')] }).map((alert) => alert.seq), [5]);
});

test('the alert rule: a new message from someone not ignored, direct, or calling us, answering us or with a highlight word', () => {
  const model = new ChatModel('ana');
  model.highlight('outage');
  model.ignore('mallory');
  model.apply({ type: 'messages', messages: [delivered('#ops', 1, 'ana', 'status?')] });
  const alerts = model.apply({
    type: 'messages',
    messages: [
      delivered('#ops', 2, 'bob', 'nothing for you'),
      delivered('#ops', 3, 'bob', 'Ana, look'),
      delivered('#ops', 4, 'bob', 'all fine', 'Reply', 1),
      delivered('#ops', 5, 'bob', 'an outage'),
      delivered('#ops', 6, 'bob', 'ana: edited', 'Edit', 2),
      reacted('#ops', 7, 'bob', '👍', 1),
      delivered('#ops', 8, 'bob', '', 'Deletion', 5),
      delivered('#ops', 9, 'mallory', 'ana: hi'),
      delivered('@mallory', 1, 'mallory', 'psst'),
      delivered('@bob', 1, 'bob', 'psst'),
      delivered('#ops', 10, 'carol', '', 'Text', null, 'Deleted'),
    ],
  });
  assert.deepEqual(alerts.map((alert) => [alert.conversation, alert.seq]), [['#ops', 3], ['#ops', 4], ['#ops', 5], ['@bob', 1]]);
  const history = { type: 'history', key: '#ops', messages: [{ ...delivered('#ops', 0, 'bob', 'ana: old') }], completeFrom: 1 };
  assert.deepEqual(model.apply(history), [], 'history pages never alert');
  const restored = model.apply({ type: 'restored', outbox: [], messages: new Map([['@carol', [delivered('@carol', 1, 'carol', 'hi')]]]), readMarkers: new Map(), cursors: new Map() });
  assert.deepEqual(restored, [], 'nor what the browser kept');
});

test('preferences come back with what the browser kept, and are saved as lists in the order added', () => {
  const model = new ChatModel('ana');
  const preferences = { silenced: ['#ops'], highlights: ['outage'], ignored: ['mallory'], receipts: true, typing: true };
  model.apply({
    type: 'restored',
    outbox: [],
    messages: new Map([['#ops', [delivered('#ops', 1, 'mallory', 'hi'), delivered('#ops', 2, 'bob', 'outage')]]]),
    readMarkers: new Map(),
    cursors: new Map(),
    preferences,
  });
  assert.equal(model.conversation('#ops').silenced, true);
  assert.deepEqual(model.conversation('#ops').unread('ana'), { count: 1, mentioned: 1 });
  assert.deepEqual(model.savedPreferences(), preferences);
  model.ignore('eve');
  model.unsilence('#ops');
  assert.deepEqual(model.savedPreferences(), { silenced: [], highlights: ['outage'], ignored: ['mallory', 'eve'], receipts: true, typing: true });
  assert.equal(model.conversation('#new').silenced, false, 'a conversation made later shares them');
  model.silence('#new');
  assert.equal(model.conversation('#new').silenced, true);
});

/// A search result as Found brings it, at 14:05 UTC on 7 December 2025 plus `minutes`.
function hit(conversation, seq, from, text, kind = 'Text', minutes = 0) {
  return { ...delivered(conversation, seq, from, text, kind), ts: Date.UTC(2025, 11, 7, 14, 5 + minutes) };
}

/// A model that is in #lobby, #garden and @bob, connected.
function searching() {
  const model = new ChatModel('ana', () => Date.UTC(2025, 11, 7, 18, 0));
  model.apply({ type: 'welcome', conversations: ['#lobby', '#garden', '@bob'].map((key) => ({ key, latestSeq: 100, firstSeq: 1 })) });
  model.apply({ type: 'status', state: 'live' });
  return model;
}

function noticesOf(model, key) {
  return model.conversation(key).notices.map((notice) => (notice.error ? `! ${notice.text}` : notice.text));
}

test('the words of a search: the header, a line per result, and how to see older ones', () => {
  const now = Date.UTC(2025, 11, 7, 18, 0);
  const hits = [hit('#lobby', 12, 'ana', 'lunch at noon?'), hit('@bob', 7, 'bob', 'waves at lunch', 'Action', 3), hit('#garden', 3, 'carol', `lunch ${'x'.repeat(200)}`)];
  const search = { query: 'lunch', key: null, hits, next: 'r812' };
  assert.deepEqual(searchLines(search, 0, now), [
    '3 messages found for “lunch”',
    '[1] #lobby  ana  14:05  lunch at noon?',
    '[2] @bob  bob  14:08  * bob waves at lunch',
    `[3] #garden  carol  14:05  lunch ${'x'.repeat(114)}…`,
    '/search shows older ones',
  ]);
  assert.deepEqual(searchLines({ ...search, next: null }, 2, now), ['1 more found for “lunch”', `[3] #garden  carol  14:05  lunch ${'x'.repeat(114)}…`]);
  assert.equal(hitLine(hit('#lobby', 2, 'bob', '\n  first line  \nsecond'), 9, now), '[9] #lobby  bob  14:05  first line', 'the first line with something on it');
  assert.equal(hitLine(hit('#lobby', 2, 'bob', 'é'.repeat(120)), 1, now), `[1] #lobby  bob  14:05  ${'é'.repeat(120)}`, '120 characters are not cut');
  assert.equal(hitTime(Date.UTC(2025, 11, 3, 9, 7), now), '3 Dec 09:07', 'another day this year');
  assert.equal(hitTime(Date.UTC(2024, 0, 30, 9, 7), now), '2024-01-30', 'another year');
  assert.equal(searchHeader({ query: 'lunch', key: '#lobby', hits: hits.slice(0, 1) }), '1 message found for “lunch” in #lobby');
  assert.equal(searchHeader({ query: 'lunch', key: '@bob', hits: [] }), 'nothing found for “lunch” with @bob');
  assert.equal(searchHeader({ query: 'lunch', key: null, hits: [] }), 'nothing found for “lunch”');
  assert.equal(searchHeader({ query: 'lunch', key: null, hits }, 3), 'nothing more found for “lunch”');
  assert.equal(searchHeader({ query: 'lunch', key: '#lobby', hits }, 1), '2 more found for “lunch” in #lobby');
});

test('the searched words are marked where a word of the text starts with them, whatever their case', () => {
  const marked = (text, words) => markWords(text, words).map((piece) => (piece.marked ? `[${piece.text}]` : piece.text)).join('');
  assert.equal(marked('Lunch! at noon, lunchtime; unlunch', ['lun']), '[Lun]ch! at noon, [lun]chtime; unlunch');
  assert.equal(marked('Noon at NOON', ['noon', 'no']), '[Noon] at [NOON]', 'the longest word that matches');
  assert.equal(marked('<b>lunch</b>', ['lunch', 'b']), '<[b]>[lunch]</[b]>', 'text stays text');
  assert.equal(marked('Été à Paris', ['été']), '[Été] à Paris');
  assert.equal(marked('nothing here', ['lunch']), 'nothing here');
  assert.deepEqual(markWords('', ['a']), []);
});

test('a search: its request, its scope (everywhere, here, a room, a direct conversation), its first page', () => {
  const model = searching();
  model.select('#garden');
  assert.deepEqual(model.searchFor({ query: 'lunch friday', scope: null }, false), { query: 'lunch friday', key: null, before: null, limit: SEARCH_PAGE });
  assert.equal(model.searchFor({ query: 'lunch', scope: 'here' }, false).key, '#garden');
  assert.equal(model.searchFor({ query: 'lunch', scope: '@bob' }, false).key, '@bob');
  assert.deepEqual(model.searchFor({ query: 'lunch', scope: '#lobby' }, false), { query: 'lunch', key: '#lobby', before: null, limit: SEARCH_PAGE });
  assert.equal(model.search.pending, true);
  model.apply({ type: 'found', query: 'lunch', key: '#lobby', hits: [hit('#lobby', 12, 'bob', 'lunch at noon?')], next: 'r812' });
  const { search } = model;
  assert.deepEqual([search.query, search.key, search.hits.map((one) => one.seq), search.next, search.pending, search.error], ['lunch', '#lobby', [12], 'r812', false, null]);
  assert.deepEqual(search.words, ['lunch']);
  assert.deepEqual(noticesOf(model, '#garden'), [], 'a search from the field is not said in the conversation');
});

test('a typed search says its lines where it was typed, page after page; /search alone asks for the next page', () => {
  const model = searching();
  assert.deepEqual(model.moreResults(true), { error: 'no search to go on with: /search WORDS finds messages' });
  model.searchFor({ query: 'lunch', scope: null }, true);
  assert.deepEqual(model.moreResults(true), { error: "the search's answer is on its way" });
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('#lobby', 12, 'bob', 'lunch at noon?'), hit('@bob', 5, 'bob', 'lunch?', 'Text', 1)], next: 'r5' });
  assert.deepEqual(noticesOf(model, '#lobby'), ['2 messages found for “lunch”', '[1] #lobby  bob  14:05  lunch at noon?', '[2] @bob  bob  14:06  lunch?', '/search shows older ones']);
  model.select('#garden');
  assert.deepEqual(model.moreResults(true), { query: 'lunch', key: null, before: 'r5', limit: SEARCH_PAGE });
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('#garden', 2, 'carol', 'Lunch!')], next: null });
  assert.deepEqual(noticesOf(model, '#garden'), ['1 more found for “lunch”', '[3] #garden  carol  14:05  Lunch!']);
  assert.deepEqual(model.search.hits.map((one) => [one.conversation, one.seq]), [['#lobby', 12], ['@bob', 5], ['#garden', 2]], 'newest first, across pages');
  assert.deepEqual(model.moreResults(true), { error: 'nothing more to find for “lunch”' });
});

test('the answer to a search replaced since is dropped, even one with the same words asked again', () => {
  const model = searching();
  model.searchFor({ query: 'lunch', scope: null }, false);
  model.searchFor({ query: 'dinner', scope: null }, false);
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('#lobby', 12, 'bob', 'lunch')], next: null });
  assert.deepEqual([model.search.query, model.search.hits, model.search.pending], ['dinner', [], true]);
  model.apply({ type: 'found', query: 'dinner', key: null, hits: [hit('#lobby', 14, 'bob', 'dinner')], next: 'r14' });
  assert.deepEqual(model.search.hits.map((one) => one.seq), [14]);
  // The same words in another conversation are another search.
  model.searchFor({ query: 'dinner', scope: '#garden' }, false);
  model.apply({ type: 'found', query: 'dinner', key: null, hits: [hit('#lobby', 15, 'bob', 'dinner')], next: null });
  assert.deepEqual([model.search.hits, model.search.pending], [[], true]);
  // More asked, then the same search asked again from its start: the page of More is not its first page.
  model.apply({ type: 'found', query: 'dinner', key: '#garden', hits: [hit('#garden', 9, 'bob', 'dinner')], next: 'r9' });
  model.moreResults(false);
  model.searchFor({ query: 'dinner', scope: '#garden' }, false);
  model.apply({ type: 'found', query: 'dinner', key: '#garden', hits: [hit('#garden', 4, 'bob', 'older dinner')], next: null });
  assert.deepEqual([model.search.hits, model.search.pending], [[], true]);
  model.apply({ type: 'found', query: 'dinner', key: '#garden', hits: [hit('#garden', 9, 'bob', 'dinner')], next: 'r9' });
  assert.deepEqual(model.search.hits.map((one) => one.seq), [9]);
  // An answer nobody asked for on this connection.
  model.apply({ type: 'found', query: 'dinner', key: '#garden', hits: [hit('#garden', 1, 'bob', 'dinner')], next: null });
  assert.deepEqual(model.search.hits.map((one) => one.seq), [9]);
});

test('a search refused (its words, a conversation we are not in) says why with it; other errors are not its own', () => {
  const model = searching();
  assert.equal(model.searchRefused({ code: 'InvalidText', message: 'search for at least one word', id: null }), false, 'no search asked');
  model.searchFor({ query: 'lunch', scope: null }, false);
  assert.equal(model.searchRefused({ code: 'InvalidText', message: 'too long', id: 'a'.repeat(32) }), false, 'a message refused');
  assert.equal(model.searchRefused({ code: 'NotMember', message: 'not a member', id: null }), false, 'about another request');
  assert.equal(model.searchRefused({ code: 'InvalidText', message: 'at most 8 words', id: null }), true);
  assert.deepEqual([model.search.pending, model.search.error], [false, 'at most 8 words']);
  assert.deepEqual(noticesOf(model, '#lobby'), []);
  model.searchFor({ query: 'lunch', scope: '@bob' }, true);
  assert.equal(model.searchRefused({ code: 'NotMember', message: 'you are not in that conversation', id: null }), true);
  assert.deepEqual(noticesOf(model, '#lobby'), ['! you are not in that conversation'], 'a typed search says it where it was typed');
  // The refusal of a search replaced since is taken, and changes nothing.
  model.searchFor({ query: 'lunch', scope: null }, false);
  model.searchFor({ query: 'dinner', scope: null }, false);
  assert.equal(model.searchRefused({ code: 'StoreUnavailable', message: 'busy', id: null }), true);
  assert.deepEqual([model.search.query, model.search.pending, model.search.error], ['dinner', true, null]);
  model.apply({ type: 'found', query: 'dinner', key: null, hits: [], next: null });
  assert.deepEqual([model.search.pending, searchHeader(model.search)], [false, 'nothing found for “dinner”']);
});

test('a search the server would refuse is not asked: no words, too many, a room we are not in; a lost connection ends the wait', () => {
  const model = searching();
  assert.deepEqual(model.searchFor({ query: '?!', scope: null }, false), { error: 'search for at least one word' });
  assert.equal(model.search.error, 'search for at least one word');
  assert.deepEqual(model.searchFor({ query: 'a b c d e f g h i', scope: null }, true), { error: 'search for at most 8 words' });
  assert.deepEqual(model.searchFor({ query: 'lunch', scope: '#attic' }, false), { error: 'you are not in #attic' });
  assert.deepEqual(model.searchFor({ query: 'a in:#9x', scope: null, error: 'room name may only contain…' }, false), { error: 'room name may only contain…' });
  assert.deepEqual(model.moreResults(true), { error: 'no search to go on with: /search WORDS finds messages' });
  assert.deepEqual(model.searchesAsked, []);
  model.searchFor({ query: 'lunch', scope: null }, false);
  model.searchNotSent();
  assert.deepEqual([model.search.pending, model.search.error, model.searchesAsked], [false, 'not connected: search once reconnected', []]);
  model.searchFor({ query: 'lunch', scope: null }, false);
  model.apply({ type: 'status', state: 'waiting' });
  assert.deepEqual([model.search.pending, model.search.error], [false, 'the search was cut off by the disconnection: search again once reconnected']);
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('#lobby', 12, 'bob', 'lunch')], next: null });
  assert.deepEqual(model.search.hits, [], 'asked on the connection that ended');
});

test('/goto N: where result N is, numbered across pages; none, or a room left since, is said', () => {
  const model = searching();
  assert.deepEqual(model.goto(1), { error: 'no search result [1]' });
  model.searchFor({ query: 'lunch', scope: null }, false);
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('#lobby', 12, 'bob', 'lunch'), hit('#garden', 8, 'bob', 'lunch')], next: 'r8' });
  model.moreResults(false);
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('@bob', 3, 'bob', 'lunch')], next: null });
  assert.deepEqual(model.goto(1), { key: '#lobby', seq: 12 });
  assert.deepEqual(model.goto(3), { key: '@bob', seq: 3 });
  assert.deepEqual(model.goto(4), { error: 'no search result [4]' });
  model.apply({ type: 'left', key: '#garden' });
  assert.deepEqual(model.goto(2), { error: 'you are no longer in #garden' });
  model.remove('@bob');
  assert.deepEqual(model.goto(3), { key: '@bob', seq: 3 }, 'a direct conversation opens again');
});

test('a page the server ended before it found anything is not shown: the next one is asked for at once', () => {
  const model = searching();
  model.searchFor({ query: 'lunch', scope: null }, true);
  assert.equal(model.takeSearchToAsk(), null);
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [], next: 'r900' });
  assert.deepEqual(model.takeSearchToAsk(), { query: 'lunch', key: null, before: 'r900', limit: SEARCH_PAGE });
  assert.equal(model.takeSearchToAsk(), null, 'taken once');
  assert.deepEqual([model.search.pending, model.search.hits, noticesOf(model, '#lobby')], [true, [], []]);
  model.apply({ type: 'found', query: 'lunch', key: null, hits: [hit('#lobby', 12, 'bob', 'lunch')], next: null });
  assert.deepEqual(noticesOf(model, '#lobby'), ['1 message found for “lunch”', '[1] #lobby  bob  14:05  lunch']);
  assert.equal(model.takeSearchToAsk(), null);
  // An empty last page is an answer: nothing found.
  model.searchFor({ query: 'dinner', scope: '#garden' }, false);
  model.apply({ type: 'found', query: 'dinner', key: '#garden', hits: [], next: null });
  assert.deepEqual([model.takeSearchToAsk(), model.search.pending, searchHeader(model.search)], [null, false, 'nothing found for “dinner” in #garden']);
});

// ---- knowing who is there (version 6)

/// A model live on a version 6 connection (or `version`), with a clock the test moves.
function awareModel(version = 6) {
  const clock = { now: 1_765_065_600_000 + 100_000 };
  const model = new ChatModel('ana', () => clock.now);
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 0, firstSeq: 1 }], version });
  model.apply({ type: 'status', state: 'live' });
  return { model, clock };
}

test('whois lines: online since with how long and idle, away, registered, rooms in common; offline; about oneself', () => {
  const now = Date.UTC(2026, 11, 7, 16, 15);
  const info = {
    nick: 'bob',
    registeredMs: Date.UTC(2026, 10, 1, 9),
    online: true,
    onlineSinceMs: now - (2 * 3600 + 10 * 60) * 1000,
    idleMs: 5 * 60_000 + 59_000,
    away: 'lunch',
    rooms: ['lobby', 'rust'],
  };
  assert.deepEqual(whoisLines(info, 'ana', now), [
    'bob: online since 14:05 (2 h 10 min), idle 5 min',
    'bob: away: lunch',
    'bob: registered 2026-11-01',
    'bob: rooms in common: #lobby, #rust',
  ]);
  assert.deepEqual(whoisLines({ ...info, onlineSinceMs: now - 3 * 60_000, idleMs: null, away: null, rooms: [] }, 'ana', now), [
    'bob: online since 16:12 (3 min)',
    'bob: registered 2026-11-01',
    'bob: no rooms in common',
  ]);
  assert.deepEqual(whoisLines({ ...info, online: false, onlineSinceMs: null, idleMs: null }, 'ana', now)[0], 'bob: offline');
  assert.equal(whoisLines({ ...info, onlineSinceMs: Date.UTC(2026, 11, 5, 8, 0) }, 'ana', now)[0], 'bob: online since 2026-12-05 08:00 (2 d 8 h), idle 5 min');
  assert.equal(whoisLines({ ...info, nick: 'ana', rooms: ['lobby'] }, 'ana', now).at(-1), 'ana: rooms: #lobby');
  assert.equal(whoisLines({ ...info, nick: 'ana', rooms: [] }, 'ana', now).at(-1), 'ana: no rooms');
  assert.deepEqual([duration(0), duration(59_999), duration(60_000), duration(3_599_999), duration(3_600_000), duration(86_399_000), duration(90_061_000)], [
    '0 s',
    '59 s',
    '1 min',
    '59 min',
    '1 h 0 min',
    '23 h 59 min',
    '1 d 1 h',
  ]);
  assert.equal(whoisTime(Date.UTC(2026, 11, 7, 9, 3), now), '09:03');
});

test('/whois: its answer said as notices where it was asked; an unknown nick said as "no such user"; an old server said', () => {
  const { model, clock } = awareModel();
  assert.equal(model.whoisFor('bob'), true);
  model.apply({ type: 'whois', nick: 'bob', registeredMs: clock.now, online: false, onlineSinceMs: null, idleMs: null, away: null, rooms: ['lobby'] });
  const texts = () => model.conversation('#lobby').notices.map((notice) => notice.text);
  assert.deepEqual(texts().slice(-3), ['bob: offline', 'bob: registered 2025-12-07', 'bob: rooms in common: #lobby']);
  assert.equal(model.whoisFor('nobody'), true);
  assert.equal(model.whoisRefused({ code: 'UnknownNick', message: 'no such account', id: null }), true);
  assert.equal(texts().at(-1), 'no such user: nobody');
  assert.equal(model.whoisRefused({ code: 'UnknownNick', message: 'no such account', id: null }), false, 'nothing asked any more');
  const old = awareModel(5).model;
  assert.equal(old.whoisFor('bob'), false);
  assert.equal(old.setAway('lunch'), false);
  const oldTexts = old.conversation('#lobby').notices.map((notice) => notice.text);
  assert.deepEqual(oldTexts, ['this server does not know /whois', 'this server does not know away messages']);
});

test('away: our own from the server (shown until cleared), the others by nick, forgotten offline and after a new member list', () => {
  const { model } = awareModel();
  assert.equal(model.setAway('lunch'), true);
  assert.equal(model.conversation('#lobby').notices.at(-1).text, 'you are away: lunch');
  model.setAway(null);
  assert.equal(model.conversation('#lobby').notices.at(-1).text, 'you are back');
  model.apply({ type: 'away', nick: 'ana', message: 'lunch' });
  assert.equal(model.ownAway, 'lunch');
  model.apply({ type: 'away', nick: 'ana', message: null });
  assert.equal(model.ownAway, null);
  model.apply({ type: 'away', nick: 'bob', message: 'in a meeting' });
  model.apply({ type: 'away', nick: 'cy', message: 'gone fishing' });
  assert.deepEqual([...model.away], [['bob', 'in a meeting'], ['cy', 'gone fishing']]);
  model.apply({ type: 'presence', room: 'lobby', nick: 'bob', state: 'Offline' });
  assert.equal(model.away.has('bob'), false, 'offline says more');
  model.apply({ type: 'users', room: 'lobby', online: ['ana', 'cy'], offline: [] });
  assert.equal(model.away.has('cy'), false, 'the Aways follow the list');
  assert.equal(model.conversation('#lobby').notices.filter((notice) => /away|back/.test(notice.text)).length, 2, 'no notice when others go away or come back');
});

test('a direct message to someone away says so once, until their away message changes', () => {
  const { model } = awareModel();
  model.apply({ type: 'away', nick: 'bob', message: 'lunch' });
  const queue = (to, kind = 'Text', id = 'a') => model.apply({ type: 'queued', entry: { order: 1, id: id.repeat(32), to, kind, of: null, text: 'hi', typedAt: 1 } });
  queue('@bob', 'Text', 'a');
  queue('@bob', 'Text', 'b');
  queue('#lobby', 'Text', 'c');
  const notices = () => model.conversation('@bob').notices.map((notice) => notice.text);
  assert.deepEqual(notices(), ['bob is away: lunch']);
  model.apply({ type: 'away', nick: 'bob', message: 'gone home' });
  queue('@bob', 'Reaction', 'd');
  assert.deepEqual(notices(), ['bob is away: lunch'], 'a reaction is not a message');
  queue('@bob', 'Action', 'e');
  assert.deepEqual(notices(), ['bob is away: lunch', 'bob is away: gone home']);
  assert.deepEqual(model.conversation('#lobby').notices, []);
});

test('typing, shown: per conversation, in words, until false, a message from them, offline or left, or 6 s after their last notice; ignored never', () => {
  const { model, clock } = awareModel();
  model.conversation('#rust');
  const typing = (key, nick, on = true) => model.apply({ type: 'typing', key, nick, typing: on });
  assert.equal(model.typingLine(), '');
  typing('#lobby', 'bob');
  assert.equal(model.typingLine(), 'bob is typing…');
  typing('#lobby', 'cy');
  assert.equal(model.typingLine(), 'bob and cy are typing…');
  typing('#lobby', 'dee');
  assert.equal(model.typingLine(), 'bob, cy and dee are typing…');
  typing('#lobby', 'eve');
  assert.equal(model.typingLine(), 'several people are typing…');
  typing('#rust', 'fay');
  typing('#lobby', 'eve', false);
  model.apply({ type: 'messages', messages: [delivered('#lobby', 1, 'dee', 'done')] });
  model.apply({ type: 'presence', room: 'lobby', nick: 'cy', state: 'Left' });
  assert.equal(model.typingLine(), 'bob is typing…');
  assert.equal(model.nextTypingExpiry(), clock.now + 6000);
  clock.now += 5999;
  assert.equal(model.typingLine(), 'bob is typing…');
  typing('#lobby', 'bob');
  clock.now += 5999;
  assert.equal(model.typingLine(), 'bob is typing…', 'renewed');
  clock.now += 1;
  assert.equal(model.typingLine(), '', 'expired');
  typing('#lobby', 'bob');
  model.apply({ type: 'presence', room: 'rust', nick: 'bob', state: 'Offline' });
  assert.equal(model.typingLine(), '', 'offline ends it everywhere');
  typing('#lobby', 'gus');
  model.ignore('gus');
  assert.equal(model.typingLine(), '', 'ignored');
  typing('#nowhere', 'bob');
  assert.equal(model.conversations.has('#nowhere'), false, 'no conversation made for it');
  typing('#rust', 'fay');
  model.select('#rust');
  assert.equal(model.typingLine(), 'fay is typing…', 'per conversation');
});

test('typing, sent: text not a command says true, again only after 3 s; emptied or switched away says false; a message sent forgets it; never while disconnected', () => {
  const { model, clock } = awareModel();
  assert.deepEqual(model.composerChanged('h'), [{ key: '#lobby', typing: true }]);
  clock.now += 2999;
  assert.deepEqual(model.composerChanged('he'), []);
  clock.now += 1;
  assert.deepEqual(model.composerChanged('hel'), [{ key: '#lobby', typing: true }], 'renewed');
  assert.deepEqual(model.composerChanged(''), [{ key: '#lobby', typing: false }]);
  assert.deepEqual(model.composerChanged(''), [], 'said once');
  assert.deepEqual(model.composerChanged('/whois bob'), [], 'a command is not typing');
  assert.deepEqual(model.composerChanged('   '), []);
  model.select('@nobody');
  assert.deepEqual(model.composerChanged('hi'), [], 'a direct conversation not started yet');
  model.select('#lobby');
  model.composerChanged('hi');
  model.apply({ type: 'messages', messages: [delivered('@bob', 1, 'bob', 'hello')] });
  model.select('@bob');
  assert.deepEqual(model.composerChanged('hi'), [{ key: '#lobby', typing: false }, { key: '@bob', typing: true }], 'switched');
  model.apply({ type: 'queued', entry: { order: 1, id: 'a'.repeat(32), to: '@bob', kind: 'Text', of: null, text: 'hi', typedAt: 1 } });
  assert.deepEqual(model.composerChanged(''), [], 'the message ended it: no false');
  assert.deepEqual(model.composerChanged('x'), [{ key: '@bob', typing: true }]);
  model.apply({ type: 'status', state: 'waiting' });
  assert.deepEqual(model.composerChanged('xy'), [], 'disconnected');
  assert.deepEqual(model.composerChanged(''), []);
  const old = awareModel(5).model;
  assert.deepEqual(old.composerChanged('hi'), [], 'a server of version 5');
});

test('seen by: under the newest message line at or before each other reader\'s marker, the last 20 lines only, not us, not ignored', () => {
  const { model } = awareModel();
  const messages = [];
  for (let seq = 1; seq <= 30; seq += 1) messages.push(delivered('#lobby', seq, seq % 2 ? 'bob' : 'ana', `line ${seq}`));
  messages.push(delivered('#lobby', 31, 'bob', '👍', 'Reaction', 30));
  model.apply({ type: 'messages', messages });
  const markers = (list) => model.apply({ type: 'readMarkers', markers: list.map(([nick, seq]) => ({ key: '#lobby', nick, seq })) });
  markers([['bob', 31], ['cy', 30], ['dee', 25], ['eve', 5], ['ana', 30], ['fay', 29], ['gus', 30], ['hal', 30]]);
  const seen = () => Object.fromEntries(model.conversation('#lobby').entries().filter((entry) => entry.seenBy).map((entry) => [entry.seq, entry.seenBy]));
  assert.deepEqual(seen(), { 30: 'seen by bob, cy, gus and 1 other', 29: 'seen by fay', 25: 'seen by dee' }, 'a reaction has no line; line 5 is too far up');
  model.ignore('gus');
  model.ignore('hal');
  assert.deepEqual(seen()[30], 'seen by bob and cy');
  assert.equal(seenByWords(['a', 'b', 'c', 'd', 'e', 'f', 'g']), 'seen by a, b, c and 4 others');
  assert.equal(seenByWords(['a', 'b', 'c']), 'seen by a, b and c');
  assert.equal(seenByWords([]), '');
  assert.equal(typingWords(['a', 'b', 'c', 'd']), 'several people are typing…');
});

test('unread follows our own marker as other devices move it', () => {
  const { model } = awareModel();
  model.conversation('@bob');
  model.apply({ type: 'messages', messages: [1, 2, 3, 4].map((seq) => delivered('@bob', seq, seq === 3 ? 'ana' : 'bob', `m${seq}`)) });
  assert.equal(model.conversation('@bob').unread('ana').count, 3);
  model.apply({ type: 'readMarkers', markers: [{ key: '@bob', nick: 'ana', seq: 2 }] });
  assert.equal(model.conversation('@bob').unread('ana').count, 1);
  model.apply({ type: 'readMarkers', markers: [{ key: '@bob', nick: 'ana', seq: 1 }] });
  assert.equal(model.conversation('@bob').unread('ana').count, 1, 'never back');
  model.apply({ type: 'readMarkers', markers: [{ key: '@bob', nick: 'ana', seq: 4 }] });
  assert.equal(model.conversation('@bob').unread('ana').count, 0);
  assert.equal(model.conversation('@bob').readers.size, 0, 'our own is not a reader');
});

test('read markers, sent: past what the server holds, at most once a second per conversation (the newest after it), again after a reconnection when the server holds less', () => {
  const { model, clock } = awareModel();
  model.apply({ type: 'messages', messages: [delivered('#lobby', 1, 'bob', 'a'), delivered('#lobby', 2, 'bob', 'b')] });
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: null }, 'nothing read');
  model.markCurrentRead();
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: clock.now + 1000 }, 'a second after Welcome: the server says its own first');
  clock.now += 1000;
  assert.deepEqual(model.readMarkersToSend().send, [{ key: '#lobby', seq: 2 }]);
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: null }, 'sent');
  model.apply({ type: 'messages', messages: [delivered('#lobby', 3, 'bob', 'c')] });
  model.markCurrentRead();
  clock.now += 300;
  model.apply({ type: 'messages', messages: [delivered('#lobby', 4, 'bob', 'd')] });
  model.markCurrentRead();
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: clock.now + 700 });
  clock.now += 700;
  assert.deepEqual(model.readMarkersToSend().send, [{ key: '#lobby', seq: 4 }], 'the newest after the second');
  // Reconnected: the server holds 2 (the last second lost); 4 goes again.
  model.apply({ type: 'status', state: 'waiting' });
  assert.deepEqual(model.readMarkersToSend().send, [], 'not while disconnected');
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 4, firstSeq: 1 }], version: 6 });
  model.apply({ type: 'status', state: 'live' });
  model.apply({ type: 'readMarkers', markers: [{ key: '#lobby', nick: 'ana', seq: 2 }] });
  clock.now += 1000;
  assert.deepEqual(model.readMarkersToSend().send, [{ key: '#lobby', seq: 4 }]);
  // Reconnected again: the server holds 4; nothing to send.
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 4, firstSeq: 1 }], version: 6 });
  model.apply({ type: 'readMarkers', markers: [{ key: '#lobby', nick: 'ana', seq: 4 }] });
  clock.now += 1000;
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: null });
  const old = awareModel(5);
  old.model.apply({ type: 'messages', messages: [delivered('#lobby', 1, 'bob', 'a')] });
  old.model.markCurrentRead();
  old.clock.now += 1000;
  assert.deepEqual(old.model.readMarkersToSend().send, [], 'a server of version 5');
});

test('/receipts off: no read marker sent, nor after a reconnection; seen-by hidden; the divider and unread still follow what was read here; on again sends it', () => {
  const { model, clock } = awareModel();
  const said = () => model.current.notices.at(-1).text;
  assert.equal(model.setReceipts(null), false, 'asking changes nothing');
  assert.equal(said(), RECEIPTS_ON);
  assert.equal(model.setReceipts(false), true);
  assert.equal(said(), 'read receipts off: others are not shown what you read, and you are not shown what they read');
  assert.equal(RECEIPTS_OFF, said());
  assert.equal(model.setReceipts(false), false, 'already off');
  assert.equal(model.setReceipts(null), false);
  assert.equal(said(), RECEIPTS_OFF);
  assert.deepEqual(model.savedPreferences(), { silenced: [], highlights: [], ignored: [], receipts: false, typing: true });

  model.conversation('#rust');
  model.apply({ type: 'messages', messages: [1, 2, 3].map((seq) => delivered('#lobby', seq, 'bob', `m${seq}`)) });
  model.apply({ type: 'readMarkers', markers: [{ key: '#lobby', nick: 'cy', seq: 3 }] });
  const seen = () => model.conversation('#lobby').entries().filter((entry) => entry.seenBy).map((entry) => entry.seenBy);
  assert.deepEqual(seen(), [], 'the others\' markers are not shown');
  assert.equal(model.dividerSeq(), 1);
  assert.equal(model.conversation('#lobby').unread('ana').count, 3);
  assert.equal(model.markCurrentRead(), 3, 'read here: the marker moves, to be kept in this browser');
  assert.equal(model.conversation('#lobby').unread('ana').count, 0);
  clock.now += 1000;
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: null }, 'not sent');
  model.apply({ type: 'messages', messages: [delivered('#lobby', 4, 'bob', 'm4')] });
  assert.equal(model.conversation('#lobby').unread('ana').count, 1, 'unread counts from what was read here');
  model.select('#rust');
  model.select('#lobby');
  assert.equal(model.dividerSeq(), 4, 'the divider too');

  // Reconnected: the server holds an older marker of ours; what was read here is neither lost nor sent.
  model.apply({ type: 'status', state: 'waiting' });
  model.apply({ type: 'welcome', conversations: [{ key: '#lobby', latestSeq: 4, firstSeq: 1 }], version: 6 });
  model.apply({ type: 'status', state: 'live' });
  model.apply({ type: 'readMarkers', markers: [{ key: '#lobby', nick: 'ana', seq: 1 }] });
  assert.equal(model.conversation('#lobby').readSeq, 3);
  clock.now += 5000;
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: null }, 'no resend after a reconnection');
  assert.equal(model.markCurrentRead(), 4);
  clock.now += 1000;
  assert.deepEqual(model.readMarkersToSend().send, [], 'still off');

  assert.equal(model.setReceipts(true), true);
  assert.equal(said(), 'read receipts on');
  assert.deepEqual(model.readMarkersToSend().send, [{ key: '#lobby', seq: 4 }], 'on again: the usual rule sends it');
  assert.deepEqual(model.readMarkersToSend(), { send: [], nextAt: null });
  assert.deepEqual(seen(), ['seen by cy'], 'and the others\' show again');
});

test('/typing off: a typing notice not stopped is stopped at once, nothing is sent after, nobody is shown typing; on again works', () => {
  const { model, clock } = awareModel();
  const said = () => model.current.notices.at(-1).text;
  assert.equal(model.setTyping(null), false);
  assert.equal(said(), TYPING_ON);
  assert.deepEqual(model.composerChanged('hel'), [{ key: '#lobby', typing: true }]);
  model.apply({ type: 'typing', key: '#lobby', nick: 'bob', typing: true });
  assert.equal(model.typingLine(), 'bob is typing…');

  assert.equal(model.setTyping(false), true);
  assert.equal(said(), 'typing notices off: others are not told you are typing, and you are not shown who is');
  assert.equal(TYPING_OFF, said());
  assert.deepEqual(model.composerChanged(''), [{ key: '#lobby', typing: false }], 'stopped at once (the caller asks at once)');
  assert.deepEqual(model.composerChanged('hello'), [], 'nothing after');
  clock.now += 3000;
  assert.deepEqual(model.composerChanged('hello there'), [], 'not renewed either');
  assert.deepEqual(model.composerChanged(''), []);
  assert.equal(model.typingLine(), '', 'nobody shown typing');
  assert.equal(model.nextTypingExpiry(), null);
  model.apply({ type: 'typing', key: '#lobby', nick: 'cy', typing: true });
  assert.equal(model.typingLine(), '');
  assert.equal(model.setTyping(false), false, 'already off');
  assert.deepEqual(model.savedPreferences(), { silenced: [], highlights: [], ignored: [], receipts: true, typing: false });

  // Off with nothing sent: nothing to stop.
  const quiet = awareModel().model;
  quiet.setTyping(false);
  assert.deepEqual(quiet.composerChanged(''), []);

  clock.now += 3000;
  assert.equal(model.setTyping(true), true);
  assert.equal(said(), 'typing notices on');
  assert.equal(model.typingLine(), 'cy is typing…', 'shown again (bob\'s notice expired meanwhile)');
  assert.deepEqual(model.composerChanged('hi'), [{ key: '#lobby', typing: true }], 'sent again');
});

test('read receipts and typing notices come back off from what the browser kept (missing: on)', () => {
  const restore = (preferences) => {
    const { model } = awareModel();
    model.apply({ type: 'restored', outbox: [], messages: new Map(), readMarkers: new Map([['#lobby', 0]]), cursors: new Map(), preferences });
    return model;
  };
  const off = restore({ silenced: [], highlights: [], ignored: [], receipts: false, typing: false });
  assert.deepEqual(off.savedPreferences(), { silenced: [], highlights: [], ignored: [], receipts: false, typing: false });
  assert.deepEqual(off.composerChanged('hi'), []);
  const old = restore({ silenced: [], highlights: [], ignored: [] });
  assert.deepEqual(old.savedPreferences(), { silenced: [], highlights: [], ignored: [], receipts: true, typing: true });
  assert.deepEqual(old.composerChanged('hi'), [{ key: '#lobby', typing: true }]);
});

test('read markers due together go five at a time', () => {
  const { model, clock } = awareModel();
  for (let index = 0; index < 7; index += 1) {
    const key = `@p${index}`;
    model.apply({ type: 'messages', messages: [delivered(key, 1, `p${index}`, 'hi')] });
    model.select(key);
    model.markCurrentRead();
  }
  clock.now += 1000;
  const first = model.readMarkersToSend();
  assert.equal(first.send.length, 5);
  assert.equal(first.nextAt, clock.now + 1000);
  clock.now += 1000;
  assert.equal(model.readMarkersToSend().send.length, 2);
});

test('the "new messages" divider: above the first message from others after our marker when opened; stays while shown; gone after switching back once read', () => {
  const { model } = awareModel();
  model.conversation('#rust');
  model.apply({ type: 'messages', messages: [delivered('#rust', 1, 'bob', 'old')] });
  model.select('#rust');
  model.markCurrentRead();
  model.select('#lobby');
  model.apply({ type: 'messages', messages: [delivered('#rust', 2, 'ana', 'mine, from another device'), delivered('#rust', 3, 'bob', 'new'), delivered('#rust', 4, 'cy', 'newer')] });
  model.select('#rust');
  assert.equal(model.dividerSeq(), 3, 'not above our own');
  model.markCurrentRead();
  assert.equal(model.dividerSeq(), 3, 'stays once read, while shown');
  model.apply({ type: 'messages', messages: [delivered('#rust', 5, 'bob', 'while looking')] });
  model.markCurrentRead();
  assert.equal(model.dividerSeq(), 3);
  model.select('#lobby');
  model.select('#rust');
  model.markCurrentRead();
  assert.equal(model.dividerSeq(), null, 'read, then back: gone');
  model.apply({ type: 'messages', messages: [delivered('#rust', 6, 'bob', 'arrives while shown')] });
  model.markCurrentRead();
  assert.equal(model.dividerSeq(), null, 'nothing new when opened: none for what comes while shown');
});

test('the "new messages" divider at start: over what the connection brings after the kept marker', () => {
  const model = new ChatModel('ana');
  model.apply({ type: 'restored', outbox: [], messages: new Map([['#lobby', [delivered('#lobby', 1, 'bob', 'seen')]]]), readMarkers: new Map([['#lobby', 1]]), cursors: new Map() });
  model.markCurrentRead();
  assert.equal(model.dividerSeq(), null);
  model.apply({ type: 'messages', messages: [delivered('#lobby', 2, 'bob', 'caught up')] });
  assert.equal(model.dividerSeq(), 2, 'before it is read');
  model.markCurrentRead();
  assert.equal(model.dividerSeq(), 2, 'and after');
});
