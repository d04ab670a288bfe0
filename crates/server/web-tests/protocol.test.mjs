// The wire vocabulary: message ids, conversation keys, the JSON of client messages as PROTOCOL.md section 15
// writes them, reading server messages, and the checks on names, texts, searches and "try again in N s".

import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as wire from '../web/protocol.js';

test('a message id is 32 hex digits: 6 bytes of milliseconds, big-endian, then 10 random bytes', () => {
  const id = wire.makeMessageId(0x0123456789ab, (count) => Uint8Array.from({ length: count }, (_, index) => 0xf0 + index));
  assert.equal(id, '0123456789abf0f1f2f3f4f5f6f7f8f9');
  const random = wire.makeMessageId(Date.now());
  assert.match(random, /^[0-9a-f]{32}$/);
  assert.notEqual(random, wire.makeMessageId(Date.now()), 'random bytes differ');
  const earlier = wire.makeMessageId(1_765_065_600_000, () => new Uint8Array(10).fill(0xff));
  const later = wire.makeMessageId(1_765_065_600_001, () => new Uint8Array(10));
  assert.ok(earlier < later, 'time-ordered as strings');
});

test('conversation keys: #room and @nick, both ways', () => {
  assert.equal(wire.conversationKey({ Room: 'lobby' }), '#lobby');
  assert.equal(wire.conversationKey({ Direct: 'bob' }), '@bob');
  assert.deepEqual(wire.conversationFromKey('#rust-lang'), { Room: 'rust-lang' });
  assert.deepEqual(wire.conversationFromKey('@ana_2'), { Direct: 'ana_2' });
  for (const bad of [{ Room: 'Lobby' }, { Direct: 'a b' }, { Room: '#x' }, { Other: 'x' }, null, 'lobby']) {
    assert.throws(() => wire.conversationKey(bad), wire.ProtocolError, JSON.stringify(bad));
  }
  assert.throws(() => wire.conversationFromKey('lobby'), wire.ProtocolError);
});

test('client messages are serde\'s externally tagged JSON, as section 15 writes them', () => {
  assert.deepEqual(JSON.parse(wire.hello('ana', 'pw', [['#lobby', 41]])), {
    Hello: { version: 6, nick: 'ana', password: 'pw', positions: [{ conversation: { Room: 'lobby' }, seq: 41 }] },
  });
  const id = '019a3f5c2e7b4d1f8a9c0b1d2e3f4a5b';
  assert.equal(wire.sendMessage(id, '@bob', 'hi'), `{"Send":{"id":"${id}","to":{"Direct":"bob"},"text":"hi"}}`);
  assert.equal(wire.ack('#lobby', 42), '{"Ack":{"conversation":{"Room":"lobby"},"seq":42}}');
  assert.equal(wire.history('#lobby', 12, 50), '{"History":{"conversation":{"Room":"lobby"},"before":12,"limit":50}}');
  assert.equal(wire.join('rust'), '{"Join":{"room":"rust"}}');
  assert.equal(wire.leave('rust'), '{"Leave":{"room":"rust"}}');
  assert.equal(wire.users('lobby'), '{"Users":{"room":"lobby"}}');
  assert.equal(
    wire.moderate('garden', { Kick: { nick: 'bob', reason: 'spam' } }),
    '{"Moderate":{"room":"garden","action":{"Kick":{"nick":"bob","reason":"spam"}}}}',
  );
  assert.equal(wire.moderate('garden', { InviteOnly: true }), '{"Moderate":{"room":"garden","action":{"InviteOnly":true}}}');
  assert.equal(wire.listRooms('', 50), '{"ListRooms":{"after":"","limit":50}}');
  assert.equal(wire.listRooms('garden', 50), '{"ListRooms":{"after":"garden","limit":50}}');
  assert.equal(wire.ping(1), '{"Ping":{"nonce":1}}');
  assert.equal(wire.pong(0), '{"Pong":{"nonce":0}}');
  assert.equal(wire.BYE, '"Bye"');
});

test('kinds of messages (version 3): Post frames as PROTOCOL.md and the server\'s own test write them', () => {
  const id = '0190abcdef0123456789abcdef012345';
  assert.equal(wire.post(id, '#rust', 'Action', null, 'waves'), `{"Post":{"id":"${id}","to":{"Room":"rust"},"kind":"Action","text":"waves"}}`);
  assert.equal(wire.post(id, '#rust', 'Edit', 41, 'hello'), `{"Post":{"id":"${id}","to":{"Room":"rust"},"kind":{"Edit":{"of":41}},"text":"hello"}}`);
  assert.equal(wire.post(id, '#rust', 'Deletion', 41, ''), `{"Post":{"id":"${id}","to":{"Room":"rust"},"kind":{"Deletion":{"of":41}},"text":""}}`);
  assert.equal(wire.post(id, '@bob', 'Text', null, 'hi'), `{"Post":{"id":"${id}","to":{"Direct":"bob"},"kind":"Text","text":"hi"}}`);
});

test("a message's kind and revision are read strictly; anything else is a protocol error", () => {
  const { body } = wire.readServerMessage(
    '{"Messages":[{"conversation":{"Room":"rust"},"seq":43,"id":"0190abcdef0123456789abcdef012345","from":"bob","ts":1,"text":"spam","kind":{"Deletion":{"of":41}},"revision":"Original"}]}',
  );
  assert.deepEqual(wire.readKind(body[0].kind), { kind: 'Deletion', of: 41 });
  assert.equal(wire.readRevision(body[0].revision), 'Original');
  assert.deepEqual(wire.readKind('Text'), { kind: 'Text', of: null });
  assert.deepEqual(wire.readKind('Action'), { kind: 'Action', of: null });
  assert.deepEqual(wire.readKind({ Edit: { of: 1 } }), { kind: 'Edit', of: 1 });
  for (const revision of ['Original', 'Edited', 'Deleted']) assert.equal(wire.readRevision(revision), revision);
  const badKinds = [undefined, null, 'text', 'Edit', { Edit: {} }, { Edit: { of: 0 } }, { Edit: { of: '41' } }, { Deletion: null }, { Shout: { of: 1 } }, { Edit: { of: 1 }, Deletion: { of: 1 } }];
  for (const bad of badKinds) assert.throws(() => wire.readKind(bad), wire.ProtocolError, JSON.stringify(bad));
  for (const bad of [undefined, null, 'edited', 'Removed', 3]) assert.throws(() => wire.readRevision(bad), wire.ProtocolError, String(bad));
});

test('replies and reactions (version 4): Post frames and kinds read, as PROTOCOL.md writes them', () => {
  const id = '0190abcdef0123456789abcdef012345';
  assert.equal(wire.post(id, '#rust', 'Reply', 41, 'yes'), `{"Post":{"id":"${id}","to":{"Room":"rust"},"kind":{"Reply":{"of":41}},"text":"yes"}}`);
  assert.equal(
    wire.post(id, '#rust', 'Reaction', 41, '👍', true),
    `{"Post":{"id":"${id}","to":{"Room":"rust"},"kind":{"Reaction":{"of":41,"added":true}},"text":"👍"}}`,
  );
  assert.equal(
    wire.post(id, '@bob', 'Reaction', 7, '\u2764\ufe0f', false),
    `{"Post":{"id":"${id}","to":{"Direct":"bob"},"kind":{"Reaction":{"of":7,"added":false}},"text":"\u2764\ufe0f"}}`,
  );
  assert.deepEqual(wire.readKind({ Reply: { of: 41 } }), { kind: 'Reply', of: 41 });
  assert.deepEqual(wire.readKind({ Reaction: { of: 41, added: true } }), { kind: 'Reaction', of: 41, added: true });
  assert.deepEqual(wire.readKind({ Reaction: { of: 41, added: false } }), { kind: 'Reaction', of: 41, added: false });
  const badKinds = ['Reply', 'Reaction', { Reply: {} }, { Reply: { of: 0 } }, { Reaction: { of: 41 } }, { Reaction: { of: 41, added: 'yes' } }, { Reaction: { added: true } }];
  for (const bad of badKinds) assert.throws(() => wire.readKind(bad), wire.ProtocolError, JSON.stringify(bad));
});

test('the eight reactions, by emoji, by name, by :name:, and a heart without its variation selector', () => {
  assert.deepEqual(wire.REACTIONS.map((reaction) => reaction.emoji), ['👍', '👎', '\u2764\ufe0f', '😂', '😮', '😢', '🎉', '👀']);
  assert.deepEqual(wire.REACTIONS.map((reaction) => reaction.name), ['+1', '-1', 'heart', 'joy', 'open_mouth', 'cry', 'tada', 'eyes']);
  for (const { emoji, name } of wire.REACTIONS) {
    assert.equal(wire.reactionEmoji(emoji), emoji);
    assert.equal(wire.reactionEmoji(name), emoji);
    assert.equal(wire.reactionEmoji(` :${name}: `), emoji);
  }
  assert.equal(wire.reactionEmoji('\u2764'), '\u2764\ufe0f');
  assert.equal(wire.reactionEmoji('Heart'), '\u2764\ufe0f');
  assert.equal(wire.reactionEmoji(':+1:'), '👍');
  for (const bad of ['', 'smile', '😀', ':heart', 'heart heart', '👍👍', '::']) assert.equal(wire.reactionEmoji(bad), null, bad);
});

test('a deletion\'s reason is one short line, as the server checks it', () => {
  assert.equal(wire.reasonProblem(''), null);
  assert.equal(wire.reasonProblem('spam, and rude'), null);
  assert.equal(wire.reasonProblem('é'.repeat(256)), null, '512 bytes exactly');
  assert.equal(wire.reasonProblem('é'.repeat(257)), 'a reason is at most 512 bytes');
  assert.match(wire.reasonProblem('two\nlines'), /one line/);
  assert.match(wire.reasonProblem('tab\there'), /one line/);
});

test('server messages are read as one variant with its fields; anything else is a protocol error', () => {
  assert.deepEqual(wire.readServerMessage('{"Gap":{"conversation":{"Room":"lobby"},"complete_from":30}}'), {
    kind: 'Gap',
    body: { conversation: { Room: 'lobby' }, complete_from: 30 },
  });
  assert.deepEqual(wire.readServerMessage('{"Messages":[]}'), { kind: 'Messages', body: [] });
  for (const bad of ['not json', '"Bye"', '{}', '{"A":{},"B":{}}', '{"Ping":3}', 'null', '[1]']) {
    assert.throws(() => wire.readServerMessage(bad), wire.ProtocolError, bad);
  }
});

test('names are made canonical as the server does, and refused in the native clients\' words', () => {
  assert.deepEqual(wire.parseNick('  Ana '), { name: 'ana' });
  assert.deepEqual(wire.parseRoom('#Garden'), { name: 'garden' });
  assert.equal(wire.parseNick('').error, 'nickname must not be empty');
  assert.equal(wire.parseNick('9lives').error, "nickname may only contain letters a-z, digits, '-' and '_', and must start with a letter");
  assert.equal(wire.parseNick('a'.repeat(33)).error, 'nickname is longer than 32 characters');
  assert.equal(wire.parseRoom('r'.repeat(65)).error, 'room name is longer than 64 characters');
});

test('texts the server would refuse are said before sending', () => {
  assert.equal(wire.textProblem('hello\n\tworld'), null);
  assert.equal(wire.textProblem('日本語 works'), null);
  assert.equal(wire.textProblem(' \n '), 'message text is only white space');
  assert.match(wire.textProblem('bell\u0007'), /control character/);
  assert.match(wire.textProblem('over\u202eride'), /control character/);
  assert.match(wire.textProblem('\u0085'), /control character/);
  assert.equal(wire.textProblem('é'.repeat(4096)), null, '8192 bytes exactly');
  assert.match(wire.textProblem('é'.repeat(4097)), /longer than 8192/);
});

test('a mention is the nickname as a word, whatever its case', () => {
  assert.ok(wire.mentions('hey ana, look', 'ana'));
  assert.ok(wire.mentions('@ANA!', 'ana'));
  assert.ok(!wire.mentions('banana', 'ana'));
  assert.ok(!wire.mentions('ana_b', 'ana'), '_ is part of a nickname');
});

test('"try again in N s" is read from a refusal, at most an hour', () => {
  assert.equal(wire.retryAfterMs('too many failed logins for ana from this address; try again in 30 s'), 30_000);
  assert.equal(wire.retryAfterMs('busy: try again in 2 s'), 2000);
  assert.equal(wire.retryAfterMs('try again in 99999 s'), 3_600_000);
  assert.equal(wire.retryAfterMs('the server is busy'), null);
  assert.equal(wire.retryAfterMs('try again in a moment'), null);
  assert.equal(wire.retryAfterMs('try again in 5s'), null, 'the unit is a separate word');
});

test('search (version 5): Search frames as the spec writes them, and the words of a query read as the server does', () => {
  assert.equal(wire.search('lunch friday', null, null, 20), '{"Search":{"query":"lunch friday","conversation":null,"before":null,"limit":20}}');
  assert.equal(wire.search('lunch', '#lobby', 'r812', 20), '{"Search":{"query":"lunch","conversation":{"Room":"lobby"},"before":"r812","limit":20}}');
  assert.equal(wire.search('lunch', '@bob', null, 20), '{"Search":{"query":"lunch","conversation":{"Direct":"bob"},"before":null,"limit":20}}');
  assert.deepEqual(wire.searchWords("Lunch? lunch, FRIDAY-2pm l'été"), ['lunch', 'friday', '2pm', 'l', 'été'], 'each once, in the order typed');
  assert.deepEqual(wire.searchWords('日本語 テスト'), ['日本語', 'テスト']);
  assert.deepEqual(wire.searchWords(' -- '), []);
  assert.equal(wire.searchProblem('lunch'), null);
  assert.equal(wire.searchProblem('  ?! '), 'search for at least one word');
  assert.equal(wire.searchProblem('a b c d e f g h'), null);
  assert.equal(wire.searchProblem('a a a a a a a a a'), null, 'repeats count once');
  assert.equal(wire.searchProblem('a b c d e f g h i'), 'search for at most 8 words');
  assert.equal(wire.searchProblem('é'.repeat(128)), null);
  assert.equal(wire.searchProblem('é'.repeat(129)), 'a search is at most 256 bytes long');
});

test('knowing who is there (version 6): the four requests as crates/proto/src/json.rs pins them', () => {
  assert.equal(wire.setAway('lunch, back at 2'), '{"SetAway":{"message":"lunch, back at 2"}}');
  assert.equal(wire.setAway(''), '{"SetAway":{"message":""}}');
  assert.equal(wire.whois('bob'), '{"Whois":{"nick":"bob"}}');
  assert.equal(wire.typing('@bob', true), '{"Typing":{"conversation":{"Direct":"bob"},"typing":true}}');
  assert.equal(wire.typing('#lobby', false), '{"Typing":{"conversation":{"Room":"lobby"},"typing":false}}');
  assert.equal(wire.markRead('#lobby', 42), '{"MarkRead":{"conversation":{"Room":"lobby"},"seq":42}}');
  assert.equal(wire.PROTOCOL_VERSION, 6);
  assert.equal(JSON.parse(wire.hello('ana', 'pw', [], wire.PREVIOUS_VERSION)).Hello.version, 5);
  for (const text of [
    '{"Away":{"nick":"bob","message":"lunch, back at 2"}}',
    '{"Whois":{"nick":"bob","registered_ms":1764000000000,"online":true,"online_since_ms":1765000000000,"idle_ms":120000,"away":null,"rooms":["lobby","rust"]}}',
    '{"Typing":{"conversation":{"Room":"lobby"},"nick":"bob","typing":true}}',
    '{"ReadMarkers":{"markers":[{"conversation":{"Room":"lobby"},"nick":"bob","seq":42}]}}',
  ]) {
    assert.equal(wire.readServerMessage(text).kind, Object.keys(JSON.parse(text))[0]);
  }
});

test('an away message is checked as the server checks it: trimmed, empty is back, one short line', () => {
  assert.deepEqual(wire.awayMessage('  lunch, back at 2 '), { message: 'lunch, back at 2' });
  assert.deepEqual(wire.awayMessage('   '), { message: null });
  assert.deepEqual(wire.awayMessage(''), { message: null });
  assert.deepEqual(wire.awayMessage('é'.repeat(100)), { message: 'é'.repeat(100) });
  assert.deepEqual(wire.awayMessage('x'.repeat(201)), { error: 'an away message is at most 200 bytes long' });
  for (const bad of ['out\nback soon', 'out\tback', 'out\u001b[2J', 'out\u202e', 'out\u0085']) {
    assert.deepEqual(wire.awayMessage(bad), { error: 'an away message is one line, without control characters' }, JSON.stringify(bad));
  }
});
