// The browser engine against a fake server: the outbox (stored before sending, in order, removed on Accepted or a
// refusal for good, resent oldest first after StoreUnavailable), cursors (Hello positions, dedup by seq,
// cumulative batched acks, Gap, Closed, Left), heartbeats, the send window, and reconnecting (backoff with
// jitter, the countdown, RateLimited's named wait, AuthFailed stopping), and moderation (Moderate only while
// connected, a message refused as NotAllowed dropped, the room frames read), the rooms' listing (ListRooms only
// while connected, Rooms read strictly), kinds of messages (posts through the outbox, refused edits and
// deletions dropped, kinds and revisions read strictly), and search (Search only while connected, Found read
// strictly and never taken as a delivery, a server without version 5 said), and knowing who is there (version 6:
// Whois, Typing and MarkRead only while connected, an away message kept until confirmed, the four answers read
// strictly, a server of version 5 spoken to in 5).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  ACK_DELAY_MS,
  BACKOFF_MAX_MS,
  SEND_WINDOW,
  STORE_RETRY_MS,
  backoffDelay,
} from '../web/engine.js';
import { MemoryStore } from '../web/store.js';
import { flush, harness, message, welcome } from './fakes.mjs';

describe('the outbox', () => {
  test('a typed message is stored before it is sent, and sent after Hello in the order typed', async () => {
    const h = harness();
    await h.engine.start();
    await h.login();
    const socket = h.socket();
    socket.beforeSend = (frame) => {
      if ('Send' in frame) {
        assert.ok([...h.store.outbox.values()].some((entry) => entry.id === frame.Send.id), 'stored before sent');
      }
    };
    await h.engine.send('#lobby', 'one');
    await h.engine.send('@bob', 'two');
    const sends = socket.sentOf('Send');
    assert.deepEqual(sends.map((send) => [send.to, send.text]), [[{ Room: 'lobby' }, 'one'], [{ Direct: 'bob' }, 'two']]);
    assert.match(sends[0].id, /^[0-9a-f]{32}$/);
    assert.ok(sends[0].id < sends[1].id, 'ids are time-ordered');
    assert.equal(h.engine.pending, 2);
  });

  test('what was typed offline waits in the store and goes out after Hello, in order', async () => {
    const h = harness();
    await h.engine.start();
    await h.engine.send('#lobby', 'first');
    await h.engine.send('#lobby', 'second');
    assert.equal(h.socket().sent.length, 0, 'nothing sent before the connection is up');
    assert.deepEqual([...h.store.outbox.values()].map((entry) => entry.text), ['first', 'second']);
    const socket = await h.login();
    assert.ok('Hello' in socket.sent[0], 'Hello first');
    assert.deepEqual(socket.sentOf('Send').map((send) => send.text), ['first', 'second']);
  });

  test('Accepted removes a message from the outbox, in the store too', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const entry = await h.engine.send('#lobby', 'hello');
    socket.receive({ Accepted: { id: entry.id, conversation: { Room: 'lobby' }, seq: 7, ts: 1 } });
    await h.engine.settled();
    assert.equal(h.engine.pending, 0);
    assert.equal(h.store.outbox.size, 0);
    assert.deepEqual(h.eventsOf('accepted').map((event) => [event.id, event.key, event.seq]), [[entry.id, '#lobby', 7]]);
  });

  test('our own message delivered back counts as accepted even before its Accepted', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const entry = await h.engine.send('#lobby', 'mine');
    socket.receive({ Messages: [{ ...message('lobby', 1, 'ana', 'mine'), id: entry.id }] });
    await h.engine.settled();
    assert.equal(h.store.outbox.size, 0);
    socket.receive({ Accepted: { id: entry.id, conversation: { Room: 'lobby' }, seq: 1, ts: 1 } });
    await h.engine.settled();
    assert.equal(h.eventsOf('accepted').length, 1, 'said once');
  });

  test('a refusal for good (InvalidText, NotMember, UnknownNick) takes the message out and says why', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const refused = [];
    for (const code of ['InvalidText', 'NotMember', 'UnknownNick']) {
      const entry = await h.engine.send('@nobody', `to be refused with ${code}`);
      socket.receive({ Error: { code, message: `refused: ${code}`, id: entry.id } });
      refused.push([entry.id, code]);
    }
    const kept = await h.engine.send('#lobby', 'still waiting');
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('refused').map((event) => [event.id, event.code]), refused);
    assert.deepEqual([...h.store.outbox.values()].map((entry) => entry.id), [kept.id]);
  });

  test('StoreUnavailable keeps the messages and resends them oldest first after 2 s, not sooner', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const entries = [];
    for (const text of ['a', 'b', 'c']) entries.push(await h.engine.send('#lobby', text));
    // The server refuses the first and, until it comes again, every later one (PROTOCOL.md 10.1).
    for (const entry of [entries[1], entries[0], entries[2]]) {
      socket.receive({ Error: { code: 'StoreUnavailable', message: 'the store is unavailable', id: entry.id } });
    }
    await h.engine.settled();
    assert.equal(socket.sentOf('Send').length, 3);
    await h.clock.advance(STORE_RETRY_MS - 1);
    assert.equal(socket.sentOf('Send').length, 3, 'not resent before the wait');
    await h.clock.advance(1);
    const resent = socket.sentOf('Send').slice(3);
    assert.deepEqual(resent.map((send) => send.text), ['a', 'b', 'c'], 'oldest first');
    assert.equal(h.store.outbox.size, 3, 'still kept');
  });

  test('every reconnection resends the whole outbox after Hello', async () => {
    const h = harness();
    await h.engine.start();
    let socket = await h.login();
    await h.engine.send('#lobby', 'x');
    await h.engine.send('#lobby', 'y');
    socket.drop();
    await h.engine.settled();
    await h.clock.advance(BACKOFF_MAX_MS);
    socket = await h.login();
    assert.ok('Hello' in socket.sent[0]);
    assert.deepEqual(socket.sentOf('Send').map((send) => send.text), ['x', 'y']);
  });

  test(`no more than ${SEND_WINDOW} sends wait for their answer`, async () => {
    const h = harness();
    await h.engine.start();
    for (let index = 0; index < SEND_WINDOW + 44; index += 1) await h.engine.send('#lobby', `m${index}`);
    const socket = await h.login();
    const sends = socket.sentOf('Send');
    assert.equal(sends.length, SEND_WINDOW);
    socket.receive({ Accepted: { id: sends[0].id, conversation: { Room: 'lobby' }, seq: 1, ts: 1 } });
    await h.engine.settled();
    assert.equal(socket.sentOf('Send').length, SEND_WINDOW + 1, 'one answer makes room for one more');
    assert.equal(socket.sentOf('Send')[SEND_WINDOW].text, `m${SEND_WINDOW}`);
  });
});

describe('cursors', () => {
  test('Hello carries the stored cursors as positions, and the password', async () => {
    const store = new MemoryStore();
    store.cursors.set('#lobby', 41);
    store.cursors.set('@bob', 3);
    const h = harness({ store });
    await h.engine.start();
    h.socket().open();
    const [hello] = h.socket().sentOf('Hello');
    assert.equal(hello.version, 6);
    assert.equal(hello.nick, 'ana');
    assert.equal(hello.password, 'correct horse');
    assert.deepEqual(hello.positions, [
      { conversation: { Room: 'lobby' }, seq: 41 },
      { conversation: { Direct: 'bob' }, seq: 3 },
    ]);
  });

  test('messages at or below the cursor are dropped, and acks are cumulative and batched', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    socket.receive({ Messages: [message('lobby', 1), message('lobby', 2)] });
    socket.receive({ Messages: [message('lobby', 2), message('lobby', 3)] });
    await h.engine.settled();
    const shown = h.eventsOf('messages').flatMap((event) => event.messages.map((shownMessage) => shownMessage.seq));
    assert.deepEqual(shown, [1, 2, 3], 'each once');
    assert.equal(h.store.cursors.get('#lobby'), 3, 'the cursor is stored');
    assert.deepEqual(h.store.messages.get('#lobby').map((kept) => kept.seq), [1, 2, 3]);
    assert.equal(socket.sentOf('Ack').length, 0, 'not acknowledged at once');
    await h.clock.advance(ACK_DELAY_MS);
    assert.deepEqual(socket.sentOf('Ack'), [{ conversation: { Room: 'lobby' }, seq: 3 }], 'one ack for all');
  });

  test('a restarted page drops what it had already, by the stored cursor', async () => {
    const store = new MemoryStore();
    store.cursors.set('#lobby', 2);
    const h = harness({ store });
    await h.engine.start();
    const socket = await h.login(welcome([{ conversation: { Room: 'lobby' }, latest_seq: 3, first_seq: 1 }]));
    socket.receive({ Messages: [message('lobby', 1), message('lobby', 2), message('lobby', 3)] });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('messages')[0].messages.map((shownMessage) => shownMessage.seq), [3]);
  });

  test('Gap moves the cursor to complete_from - 1 and is said', async () => {
    const store = new MemoryStore();
    store.cursors.set('#lobby', 5);
    const h = harness({ store });
    await h.engine.start();
    const socket = await h.login(welcome([{ conversation: { Room: 'lobby' }, latest_seq: 30, first_seq: 30 }]));
    socket.receive({ Gap: { conversation: { Room: 'lobby' }, complete_from: 30 } });
    socket.receive({ Messages: [message('lobby', 20), message('lobby', 30)] });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('gap').map((event) => [event.key, event.completeFrom]), [['#lobby', 30]]);
    assert.deepEqual(h.eventsOf('messages')[0].messages.map((shownMessage) => shownMessage.seq), [30]);
    assert.equal(h.store.cursors.get('#lobby'), 30);
  });

  test('a server restored from an older backup: the cursor goes back to its end, and its new messages are shown', async () => {
    const store = new MemoryStore();
    store.cursors.set('#lobby', 9);
    store.messages.set('#lobby', [8, 9].map((seq) => ({ ...message('lobby', seq), conversation: '#lobby' })));
    store.readMarkers.set('#lobby', 9);
    const h = harness({ store });
    await h.engine.start();
    const socket = await h.login(welcome([{ conversation: { Room: 'lobby' }, latest_seq: 6, first_seq: 1 }]));
    assert.deepEqual(h.eventsOf('rewound').map((event) => [event.key, event.latestSeq, event.had]), [['#lobby', 6, 9]]);
    assert.equal(h.store.cursors.get('#lobby'), 6);
    assert.deepEqual(h.store.messages.get('#lobby'), [], 'what the server no longer has is not kept');
    assert.equal(h.store.readMarkers.get('#lobby'), 6);
    socket.receive({ Messages: [message('lobby', 7, 'bob', 'after the restore'), message('lobby', 8)] });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('messages')[0].messages.map((shown) => shown.seq), [7, 8], 'under seqs seen before');
    assert.equal(h.store.cursors.get('#lobby'), 8);
    assert.deepEqual(socket.sent.find((frame) => 'Hello' in frame).Hello.positions, [{ conversation: { Room: 'lobby' }, seq: 9 }]);
  });

  test('Closed forgets the conversation, cursor and kept messages included', async () => {
    const store = new MemoryStore();
    store.cursors.set('@carol', 9);
    const h = harness({ store });
    await h.engine.start();
    const socket = await h.login();
    socket.receive({ Messages: [{ ...message('x', 10, 'carol'), conversation: { Direct: 'carol' } }] });
    socket.receive({ Closed: { conversation: { Direct: 'carol' }, reason: 'the account was removed' } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('closed').map((event) => [event.key, event.reason]), [['@carol', 'the account was removed']]);
    assert.equal(h.store.cursors.has('@carol'), false);
    assert.equal(h.store.messages.has('@carol'), false);
    assert.equal(h.engine.cursor('@carol'), 0);
    socket.drop();
    await h.clock.advance(BACKOFF_MAX_MS);
    h.socket().open();
    assert.deepEqual(h.socket().sentOf('Hello')[0].positions, [], 'no position claimed for it');
  });

  test('Left forgets the room', async () => {
    const store = new MemoryStore();
    store.cursors.set('#garden', 4);
    const h = harness({ store });
    await h.engine.start();
    const socket = await h.login();
    socket.receive({ Left: { room: 'garden' } });
    await h.engine.settled();
    assert.equal(h.store.cursors.has('#garden'), false);
    assert.deepEqual(h.eventsOf('left').map((event) => event.key), ['#garden']);
  });
});

describe('heartbeats', () => {
  test('every Ping is answered with its nonce, before Welcome too', async () => {
    const h = harness();
    await h.engine.start();
    const socket = h.socket();
    socket.open();
    socket.receive({ Ping: { nonce: 0 } });
    await flush();
    socket.receive(welcome());
    socket.receive({ Ping: { nonce: 7 } });
    await h.engine.settled();
    assert.deepEqual(socket.sentOf('Pong'), [{ nonce: 0 }, { nonce: 7 }]);
  });

  test('the client pings when it sent nothing for heartbeat_ms, and a server silent for 3 intervals is dropped', async () => {
    const h = harness({ random: () => 0 });
    await h.engine.start();
    const socket = await h.login(welcome(undefined, 1000));
    await h.clock.advance(1000);
    assert.equal(socket.sentOf('Ping').length, 1);
    socket.receive({ Pong: { nonce: socket.sentOf('Ping')[0].nonce } });
    await flush();
    await h.clock.advance(3000);
    assert.equal(socket.closedByClient, false, 'heard within 3 intervals');
    await h.clock.advance(600);
    assert.equal(socket.closedByClient, true, 'silent for over 3 intervals: dead');
    await h.clock.advance(125);
    assert.equal(h.sockets.length, 2, 'and a new connection is made after the backoff');
  });
});

describe('reconnecting', () => {
  test('backoff: 250 ms doubling to 10 s, each between half and all of that', () => {
    for (let attempt = 1; attempt <= 30; attempt += 1) {
      const ceiling = Math.min(250 * 2 ** (attempt - 1), BACKOFF_MAX_MS);
      assert.equal(backoffDelay(attempt, () => 0), ceiling / 2);
      assert.equal(backoffDelay(attempt, () => 0.999999), Math.round(ceiling * (0.5 + 0.5 * 0.999999)));
      for (let sample = 0; sample < 20; sample += 1) {
        const delay = backoffDelay(attempt, Math.random);
        assert.ok(delay >= ceiling / 2 && delay <= ceiling, `${delay} within [${ceiling / 2}, ${ceiling}]`);
      }
    }
  });

  test('failed attempts wait longer each time, and a connection resets the backoff', async () => {
    const h = harness({ random: () => 0 });
    await h.engine.start();
    const times = [];
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      const before = h.sockets.length;
      const started = h.clock.now();
      h.socket().drop();
      await flush();
      while (h.sockets.length === before) await h.clock.advance(5);
      times.push(h.clock.now() - started);
    }
    assert.deepEqual(times, [125, 250, 500, 1000]);
    await h.login();
    const before = h.sockets.length;
    const started = h.clock.now();
    h.socket().drop();
    await flush();
    while (h.sockets.length === before) await h.clock.advance(5);
    assert.equal(h.clock.now() - started, 125, 'the first wait again after a connection');
  });

  test('the countdown is said each second with what waits, and "retry now" connects at once', async () => {
    const h = harness({ random: () => 0 });
    await h.engine.start();
    await h.login();
    await h.engine.send('#lobby', 'waiting 1');
    await h.engine.send('#lobby', 'waiting 2');
    // RateLimited names 4 s; the jitter of a first retry (125 ms here) comes on top.
    h.socket().drop();
    await flush();
    await h.clock.advance(125);
    h.socket().open();
    h.socket().receive({ Error: { code: 'RateLimited', message: 'too many failed logins; try again in 4 s', id: null } });
    await flush();
    const waits = () => h.eventsOf('status').filter((event) => event.state === 'waiting');
    const seen = waits().length;
    await h.clock.advance(4000);
    const countdown = waits().slice(seen - 1);
    assert.deepEqual(countdown.map((event) => event.remainingSeconds), [5, 4, 3, 2, 1]);
    assert.ok(countdown.every((event) => event.pending === 2));
    assert.equal(h.sockets.length, 2, 'not yet');
    await h.clock.advance(125);
    assert.equal(h.sockets.length, 3, 'after the named time and the jitter');

    h.socket().drop();
    await flush();
    const before = h.sockets.length;
    h.engine.retryNow();
    assert.equal(h.sockets.length, before + 1, 'retry now');
  });

  test('ServerBusy and ShuttingDown are retried; AuthFailed stops and says the password was refused', async () => {
    const h = harness({ random: () => 0 });
    await h.engine.start();
    h.socket().open();
    h.socket().receive({ Error: { code: 'ServerBusy', message: 'busy; try again in 1 s', id: null } });
    await flush();
    await h.clock.advance(1125);
    assert.equal(h.sockets.length, 2);
    await h.login();
    h.socket().receive({ ShuttingDown: { message: 'restarting' } });
    await flush();
    assert.equal(h.socket().closedByClient, true);
    await h.clock.advance(125);
    assert.equal(h.sockets.length, 3);
    h.socket().open();
    h.socket().receive({ Error: { code: 'AuthFailed', message: 'wrong password', id: null } });
    await flush();
    const stopped = h.eventsOf('status').filter((event) => event.state === 'stopped');
    assert.equal(stopped.length, 1);
    assert.equal(stopped[0].passwordRefused, true);
    assert.match(stopped[0].reason, /wrong password/);
    await h.clock.advance(60_000);
    assert.equal(h.sockets.length, 3, 'no further attempt');
  });

  test('a frame that breaks the protocol ends the connection, and the next resumes from the cursors', async () => {
    const h = harness({ random: () => 0 });
    await h.engine.start();
    const socket = await h.login();
    socket.receive({ Messages: [message('lobby', 1)] });
    socket.receive('{"Messages":[{"conversation":{"Room":"Not Canonical"},"seq":2}]}');
    await h.engine.settled();
    assert.equal(socket.closedByClient, true);
    await h.clock.advance(125);
    h.socket().open();
    assert.deepEqual(h.socket().sentOf('Hello')[0].positions, [{ conversation: { Room: 'lobby' }, seq: 1 }]);
  });

  test('signing out says Bye, closes, and never reconnects; the outbox stays stored', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    await h.engine.send('#lobby', 'later');
    h.engine.quit();
    assert.deepEqual(socket.sent[socket.sent.length - 1], 'Bye');
    assert.equal(socket.closedByClient, true);
    await h.clock.advance(60_000);
    assert.equal(h.sockets.length, 1);
    assert.equal(h.store.outbox.size, 1);
    assert.equal(h.engine.password, '', 'the password is forgotten');
  });
});

describe('moderation', () => {
  test('a moderator action is sent only while connected, and never kept for later', async () => {
    const h = harness();
    await h.engine.start();
    assert.equal(h.engine.moderate('garden', { Kick: { nick: 'bob', reason: 'spam' } }), false, 'not connected');
    const socket = await h.login();
    assert.deepEqual(socket.sentOf('Moderate'), [], 'nothing waited for the connection');
    assert.equal(h.engine.moderate('garden', { InviteOnly: true }), true);
    assert.deepEqual(socket.sentOf('Moderate'), [{ room: 'garden', action: { InviteOnly: true } }]);
    assert.equal(h.engine.pending, 0);
    assert.equal(h.store.outbox.size, 0);
  });

  test('a message refused as NotAllowed (muted, or no voice) leaves the outbox, in the store too, and is said', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const muted = await h.engine.send('#garden', 'let me speak');
    const kept = await h.engine.send('#lobby', 'still waiting');
    socket.receive({ Error: { code: 'NotAllowed', message: 'you are muted in #garden', id: muted.id } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('refused').map((event) => [event.id, event.code, event.message]), [
      [muted.id, 'NotAllowed', 'you are muted in #garden'],
    ]);
    assert.deepEqual([...h.store.outbox.values()].map((entry) => entry.id), [kept.id]);
    assert.equal(h.engine.pending, 1);
    socket.drop();
    await h.engine.settled();
    await h.clock.advance(BACKOFF_MAX_MS);
    const next = await h.login();
    assert.deepEqual(next.sentOf('Send').map((send) => send.text), ['still waiting'], 'not sent again');
  });

  test('a refused Moderate or Join (no id) is said and touches no message', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    await h.engine.send('#lobby', 'waiting');
    socket.receive({ Error: { code: 'NotAllowed', message: 'only moderators kick', id: null } });
    socket.receive({ Error: { code: 'Banned', message: 'you are banned from #garden', id: null } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('error').map((event) => event.code), ['NotAllowed', 'Banned']);
    assert.equal(h.store.outbox.size, 1);
  });

  test('RoomState, RoomEvent and Invited are read into events', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    socket.receive({
      RoomState: { room: 'garden', topic: 'roses', invite_only: true, moderated: false, role: 'Voice', muted: false, operator: false },
    });
    socket.receive({ RoomEvent: { room: 'garden', by: 'ana', change: { Kicked: { nick: 'bob', reason: 'spam' } } } });
    socket.receive({ RoomEvent: { room: 'garden', by: null, change: { Moderated: true } } });
    socket.receive({ RoomEvent: { room: 'garden', by: 'ana', change: { RoleSet: { nick: 'bob', role: 'Moderator' } } } });
    socket.receive({ Invited: { room: 'attic', by: 'carol' } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('roomState'), [
      { type: 'roomState', key: '#garden', topic: 'roses', inviteOnly: true, moderated: false, role: 'Voice', muted: false, operator: false },
    ]);
    assert.deepEqual(h.eventsOf('roomEvent').map(({ key, by, change }) => [key, by, change]), [
      ['#garden', 'ana', { kind: 'Kicked', nick: 'bob', reason: 'spam' }],
      ['#garden', null, { kind: 'Moderated', on: true }],
      ['#garden', 'ana', { kind: 'RoleSet', nick: 'bob', role: 'Moderator' }],
    ]);
    assert.deepEqual(h.eventsOf('invited'), [{ type: 'invited', room: 'attic', by: 'carol' }]);
    assert.equal(socket.closedByClient, false);
  });

  for (const broken of [
    { RoomState: { room: 'garden', topic: '', invite_only: 'no', moderated: false, role: 'Member', muted: false, operator: false } },
    { RoomState: { room: 'garden', topic: '', invite_only: false, moderated: false, role: 'Admin', muted: false, operator: false } },
    { RoomEvent: { room: 'garden', by: 'ana', change: { Vanished: { nick: 'bob' } } } },
    { RoomEvent: { room: 'garden', by: 'Not A Nick', change: { Unmuted: { nick: 'bob' } } } },
  ]) {
    test(`a malformed ${Object.keys(broken)[0]} ends the connection: ${JSON.stringify(broken)}`, async () => {
      const h = harness();
      await h.engine.start();
      const socket = await h.login();
      socket.receive(broken);
      await h.engine.settled();
      assert.equal(socket.closedByClient, true);
    });
  }
});

describe("the rooms' listing", () => {
  test('ListRooms is sent only while connected, and never kept for later', async () => {
    const h = harness();
    await h.engine.start();
    assert.equal(h.engine.listRooms('', 50), false, 'not connected');
    const socket = await h.login();
    assert.deepEqual(socket.sentOf('ListRooms'), [], 'nothing waited for the connection');
    assert.equal(h.engine.listRooms('', 50), true);
    assert.equal(h.engine.listRooms('garden', 50), true);
    assert.deepEqual(socket.sentOf('ListRooms'), [
      { after: '', limit: 50 },
      { after: 'garden', limit: 50 },
    ]);
    assert.equal(h.store.outbox.size, 0);
  });

  test('Rooms is read into an event; a refused listing is an error like any other', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    socket.receive({
      Rooms: {
        rooms: [
          { room: 'attic', members: 0, topic: '', invite_only: true },
          { room: 'garden', members: 3, topic: 'Seeds <b>', invite_only: false },
        ],
        more: true,
      },
    });
    socket.receive({ Rooms: { rooms: [], more: false } });
    socket.receive({ Error: { code: 'InvalidName', message: 'not a room name', id: null } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('rooms'), [
      {
        type: 'rooms',
        rooms: [
          { room: 'attic', members: 0, topic: '', inviteOnly: true },
          { room: 'garden', members: 3, topic: 'Seeds <b>', inviteOnly: false },
        ],
        more: true,
      },
      { type: 'rooms', rooms: [], more: false },
    ]);
    assert.deepEqual(h.eventsOf('error').map((event) => event.code), ['InvalidName']);
    assert.equal(socket.closedByClient, false);
  });

  const listing = { room: 'garden', members: 3, topic: 'Seeds', invite_only: false };
  for (const broken of [
    { Rooms: { rooms: [{ ...listing, room: 'Garden' }], more: false } },
    { Rooms: { rooms: [{ ...listing, room: '#garden' }], more: false } },
    { Rooms: { rooms: [{ ...listing, members: -1 }], more: false } },
    { Rooms: { rooms: [{ ...listing, members: 2.5 }], more: false } },
    { Rooms: { rooms: [{ ...listing, members: '3' }], more: false } },
    { Rooms: { rooms: [{ ...listing, topic: null }], more: false } },
    { Rooms: { rooms: [{ ...listing, invite_only: 0 }], more: false } },
    { Rooms: { rooms: [listing, null], more: false } },
    { Rooms: { rooms: [listing], more: 'yes' } },
    { Rooms: { rooms: [listing] } },
    { Rooms: { rooms: {}, more: false } },
    { Rooms: { rooms: [], more: true } },
  ]) {
    test(`a malformed Rooms ends the connection: ${JSON.stringify(broken)}`, async () => {
      const h = harness();
      await h.engine.start();
      const socket = await h.login();
      socket.receive(broken);
      await h.engine.settled();
      assert.equal(socket.closedByClient, true);
      assert.deepEqual(h.eventsOf('rooms'), []);
    });
  }
});

describe('kinds of messages', () => {
  test('actions, edits and deletions go through the outbox: stored with their kind, sent after Hello, again with the same id after a reconnection', async () => {
    const h = harness();
    await h.engine.start();
    const action = await h.engine.send('#rust', 'waves', 'Action');
    const edit = await h.engine.send('#rust', 'hello, fixed', 'Edit', 41);
    const deletion = await h.engine.send('#rust', 'spam', 'Deletion', 42);
    assert.deepEqual([...h.store.outbox.values()].map(({ kind, of, text }) => [kind, of, text]), [
      ['Action', null, 'waves'],
      ['Edit', 41, 'hello, fixed'],
      ['Deletion', 42, 'spam'],
    ]);
    let socket = await h.login();
    const posts = [
      { id: action.id, to: { Room: 'rust' }, kind: 'Action', text: 'waves' },
      { id: edit.id, to: { Room: 'rust' }, kind: { Edit: { of: 41 } }, text: 'hello, fixed' },
      { id: deletion.id, to: { Room: 'rust' }, kind: { Deletion: { of: 42 } }, text: 'spam' },
    ];
    assert.deepEqual(socket.sentOf('Post'), posts);
    assert.deepEqual(socket.sentOf('Send'), []);
    socket.receive({ Accepted: { id: action.id, conversation: { Room: 'rust' }, seq: 43, ts: 1 } });
    await h.engine.settled();
    socket.drop();
    await h.engine.settled();
    await h.clock.advance(BACKOFF_MAX_MS);
    socket = await h.login();
    assert.deepEqual(socket.sentOf('Post'), posts.slice(1), 'the same ids, the accepted one not again');
  });

  test('the preferences the store kept come with what is restored, and nothing of them is sent', async () => {
    const store = new MemoryStore();
    const preferences = { silenced: ['#ops'], highlights: ['deploy'], ignored: ['mallory'], receipts: false, typing: true };
    await store.savePreferences(preferences);
    const h = harness({ store });
    await h.engine.start();
    assert.deepEqual(h.eventsOf('restored')[0].preferences, preferences);
    const socket = await h.login();
    assert.equal(JSON.stringify(socket.sent).includes('mallory'), false);
  });

  test('an outbox kept by the previous version (no kind) is read and sent as texts', async () => {
    const store = new MemoryStore();
    store.outbox.set('a'.repeat(32), { order: 1, id: 'a'.repeat(32), to: '#lobby', text: 'typed before the update', typedAt: 5 });
    const h = harness({ store });
    await h.engine.start();
    assert.deepEqual(h.eventsOf('restored')[0].outbox.map(({ kind, of, text }) => [kind, of, text]), [['Text', null, 'typed before the update']]);
    const socket = await h.login();
    assert.deepEqual(socket.sentOf('Send'), [{ id: 'a'.repeat(32), to: { Room: 'lobby' }, text: 'typed before the update' }]);
    assert.deepEqual(socket.sentOf('Post'), []);
  });

  test('an edit or a deletion refused (UnknownMessage, NotAllowed) leaves the outbox, in the store too, and is said', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const gone = await h.engine.send('#rust', 'new text', 'Edit', 40);
    const others = await h.engine.send('#rust', '', 'Deletion', 41);
    const kept = await h.engine.send('#rust', 'waves', 'Action');
    socket.receive({ Error: { code: 'UnknownMessage', message: 'message 40 was deleted', id: gone.id } });
    socket.receive({ Error: { code: 'NotAllowed', message: 'message 41 is not yours', id: others.id } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('refused').map((event) => [event.id, event.code, event.message, event.kind]), [
      [gone.id, 'UnknownMessage', 'message 40 was deleted', 'Edit'],
      [others.id, 'NotAllowed', 'message 41 is not yours', 'Deletion'],
    ]);
    assert.deepEqual([...h.store.outbox.values()].map((entry) => entry.id), [kept.id]);
    assert.equal(h.engine.pending, 1);
  });

  test("messages are delivered with their kind, what they change and their revision", async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    socket.receive({
      Messages: [
        message('rust', 41, 'ana', '', 'Text', 'Deleted'),
        message('rust', 42, 'bob', 'waves', 'Action', 'Edited'),
        message('rust', 43, 'bob', 'spam', { Deletion: { of: 41 } }),
        message('rust', 44, 'bob', 'waves hard', { Edit: { of: 42 } }),
      ],
    });
    await h.engine.settled();
    const shown = h.eventsOf('messages')[0].messages.map(({ seq, kind, of, revision, text }) => [seq, kind, of, revision, text]);
    assert.deepEqual(shown, [
      [41, 'Text', null, 'Deleted', ''],
      [42, 'Action', null, 'Edited', 'waves'],
      [43, 'Deletion', 41, 'Original', 'spam'],
      [44, 'Edit', 42, 'Original', 'waves hard'],
    ]);
    assert.deepEqual(h.store.messages.get('#rust').map((kept) => kept.kind), ['Text', 'Action', 'Deletion', 'Edit'], 'kept with their kind');
    assert.equal(socket.closedByClient, false);
  });

  test('replies and reactions go through the outbox, survive a reload with `added`, and are delivered with it', async () => {
    const store = new MemoryStore();
    const first = harness({ store });
    await first.engine.start();
    const reply = await first.engine.send('#rust', 'yes', 'Reply', 41);
    const reaction = await first.engine.send('#rust', '👍', 'Reaction', 41, true);
    const takenBack = await first.engine.send('#rust', '🎉', 'Reaction', 40, false);
    first.engine.quit();
    // The page is loaded again: the outbox comes from the store.
    const h = harness({ store });
    await h.engine.start();
    assert.deepEqual(h.eventsOf('restored')[0].outbox.map(({ kind, of, text, added }) => [kind, of, text, added]), [
      ['Reply', 41, 'yes', undefined],
      ['Reaction', 41, '👍', true],
      ['Reaction', 40, '🎉', false],
    ]);
    const socket = await h.login();
    assert.deepEqual(socket.sentOf('Post'), [
      { id: reply.id, to: { Room: 'rust' }, kind: { Reply: { of: 41 } }, text: 'yes' },
      { id: reaction.id, to: { Room: 'rust' }, kind: { Reaction: { of: 41, added: true } }, text: '👍' },
      { id: takenBack.id, to: { Room: 'rust' }, kind: { Reaction: { of: 40, added: false } }, text: '🎉' },
    ]);
    socket.receive({ Error: { code: 'NotAllowed', message: 'you have no 🎉 on message 40', id: takenBack.id } });
    socket.receive({
      Messages: [
        message('rust', 42, 'ana', 'yes', { Reply: { of: 41 } }),
        { ...message('rust', 43, 'ana', '👍', { Reaction: { of: 41, added: true } }), id: reaction.id },
      ],
    });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('refused').map((event) => [event.id, event.kind]), [[takenBack.id, 'Reaction']]);
    const shown = h.eventsOf('messages')[0].messages.map(({ seq, kind, of, added }) => [seq, kind, of, added]);
    assert.deepEqual(shown, [[42, 'Reply', 41, undefined], [43, 'Reaction', 41, true]]);
    assert.deepEqual([...store.outbox.values()].map((entry) => entry.id), [reply.id], 'the echoed reaction is taken as accepted');
  });

  const without = (field) => {
    const incomplete = message('lobby', 1);
    delete incomplete[field];
    return incomplete;
  };
  const noKind = without('kind');
  const noRevision = without('revision');
  for (const broken of [
    noKind,
    noRevision,
    message('lobby', 1, 'bob', 'x', 'Shout'),
    message('lobby', 1, 'bob', 'x', { Edit: { of: 0 } }),
    message('lobby', 2, 'bob', 'x', { Deletion: { of: 2 } }),
    message('lobby', 2, 'bob', 'x', { Reply: { of: 3 } }),
    message('lobby', 2, 'bob', '👍', { Reaction: { of: 1 } }),
    message('lobby', 1, 'bob', 'x', 'Text', 'Removed'),
  ]) {
    test(`a message with a missing or unknown kind or revision ends the connection: ${JSON.stringify([broken.kind, broken.revision])}`, async () => {
      const h = harness();
      await h.engine.start();
      const socket = await h.login();
      socket.receive({ Messages: [broken] });
      await h.engine.settled();
      assert.equal(socket.closedByClient, true);
      assert.deepEqual(h.eventsOf('messages'), [], 'nothing shown');
      assert.equal(h.engine.cursor('#lobby'), 0, 'the cursor stays, to get it again');
    });
  }

  test('a History page is read as strictly as live messages', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    socket.receive({ History: { conversation: { Room: 'lobby' }, messages: [message('lobby', 1, 'bob', 'x', 'Text', 'Edited')], complete_from: 1 } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('history')[0].messages.map(({ revision }) => revision), ['Edited']);
    socket.receive({ History: { conversation: { Room: 'lobby' }, messages: [noKind], complete_from: 1 } });
    await h.engine.settled();
    assert.equal(socket.closedByClient, true);
  });
});

describe('search', () => {
  test('Search is sent only while connected, never kept for later', async () => {
    const h = harness();
    await h.engine.start();
    assert.equal(h.engine.search('lunch', null, null, 20), false, 'not connected');
    const socket = await h.login();
    assert.deepEqual(socket.sentOf('Search'), [], 'nothing waited for the connection');
    assert.equal(h.engine.search('lunch', '#lobby', 'r812', 20), true);
    assert.deepEqual(socket.sentOf('Search'), [{ query: 'lunch', conversation: { Room: 'lobby' }, before: 'r812', limit: 20 }]);
    assert.equal(h.store.outbox.size, 0);
  });

  test('Found is read into an event; its hits are neither stored nor deliveries, and move no cursor', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    const hit = { ...message('lobby', 12, 'bob', 'lunch at noon?'), kind: 'Action', revision: 'Edited' };
    socket.receive({ Found: { query: 'lunch', conversation: null, hits: [hit, { ...message('x', 3), conversation: { Direct: 'bob' } }], next: 'r812' } });
    socket.receive({ Found: { query: 'lunch', conversation: { Room: 'lobby' }, hits: [], next: null } });
    await h.engine.settled();
    const found = h.eventsOf('found');
    assert.deepEqual(found.map((event) => [event.query, event.key, event.next, event.hits.map((one) => [one.conversation, one.seq, one.kind, one.revision])]), [
      ['lunch', null, 'r812', [['#lobby', 12, 'Action', 'Edited'], ['@bob', 3, 'Text', 'Original']]],
      ['lunch', '#lobby', null, []],
    ]);
    assert.equal(found[0].hits[0].text, 'lunch at noon?');
    assert.equal(h.engine.cursor('#lobby'), 0);
    assert.equal(h.store.messages.size, 0);
    assert.deepEqual(h.eventsOf('messages'), []);
    assert.deepEqual(socket.sentOf('Ack'), []);
  });

  const page = { query: 'lunch', conversation: null, hits: [message('lobby', 12)], next: null };
  for (const broken of [
    { Found: { ...page, hits: null } },
    { Found: { ...page, hits: [{ ...message('lobby', 12), seq: 0 }] } },
    { Found: { ...page, query: 7 } },
    { Found: { ...page, conversation: { Room: 'Lobby' } } },
    { Found: { ...page, next: 812 } },
    { Found: { ...page, next: 'r'.repeat(65) } },
    { Found: { ...page, next: undefined } },
  ]) {
    test(`a malformed Found ends the connection: ${JSON.stringify(broken)}`, async () => {
      const h = harness();
      await h.engine.start();
      const socket = await h.login();
      socket.receive(broken);
      await h.engine.settled();
      assert.equal(socket.closedByClient, true);
      assert.deepEqual(h.eventsOf('found'), []);
    });
  }

  test('a server that does not speak version 5 refuses the login: the engine stops for good and says why', async () => {
    const h = harness();
    await h.engine.start();
    h.socket().open();
    assert.equal(h.socket().sentOf('Hello')[0].version, 6);
    h.socket().receive({ Error: { code: 'UnsupportedVersion', message: 'this server speaks protocol versions 1 to 5, the client 6', id: null } });
    await h.engine.settled();
    assert.equal(h.sockets.length, 2, 'the previous version at once');
    const socket = h.socket();
    socket.open();
    assert.equal(socket.sentOf('Hello')[0].version, 5);
    socket.receive({ Error: { code: 'UnsupportedVersion', message: 'this server speaks protocol versions 1 to 4, the client 5', id: null } });
    await h.engine.settled();
    const stopped = h.eventsOf('status').at(-1);
    assert.equal(stopped.state, 'stopped');
    assert.equal(stopped.code, 'UnsupportedVersion');
    assert.match(stopped.reason, /versions 1 to 4, the client 5/);
    await h.clock.advance(60_000);
    assert.equal(h.sockets.length, 2, 'no reconnection: it would be refused again');
  });
});

describe('knowing who is there (version 6)', () => {
  test('Whois, Typing and MarkRead go only while connected, never kept for later', async () => {
    const h = harness();
    await h.engine.start();
    assert.equal(h.engine.whois('bob'), false);
    assert.equal(h.engine.typing('#lobby', true), false);
    assert.equal(h.engine.markRead('#lobby', 3), false);
    const socket = await h.login();
    assert.deepEqual([socket.sentOf('Whois'), socket.sentOf('Typing'), socket.sentOf('MarkRead')], [[], [], []], 'nothing waited');
    assert.equal(h.engine.whois('bob'), true);
    assert.equal(h.engine.typing('@bob', true), true);
    assert.equal(h.engine.markRead('#lobby', 3), true);
    assert.deepEqual(socket.sentOf('Whois'), [{ nick: 'bob' }]);
    assert.deepEqual(socket.sentOf('Typing'), [{ conversation: { Direct: 'bob' }, typing: true }]);
    assert.deepEqual(socket.sentOf('MarkRead'), [{ conversation: { Room: 'lobby' }, seq: 3 }]);
    assert.equal(h.store.outbox.size, 0);
  });

  test('an away message set while disconnected is sent once connected, and again on every connection until the server confirms it', async () => {
    const h = harness();
    await h.engine.start();
    h.engine.setAway('lunch');
    let socket = await h.login();
    assert.deepEqual(socket.sentOf('SetAway'), [{ message: 'lunch' }]);
    socket.drop();
    await h.engine.settled();
    await h.clock.advance(1000);
    socket = await h.login();
    assert.deepEqual(socket.sentOf('SetAway'), [{ message: 'lunch' }], 'not confirmed: sent again');
    socket.receive({ Away: { nick: 'ana', message: 'lunch' } });
    await h.engine.settled();
    socket.drop();
    await h.engine.settled();
    await h.clock.advance(1000);
    socket = await h.login();
    assert.deepEqual(socket.sentOf('SetAway'), [], 'confirmed: not again');
    h.engine.setAway('');
    assert.deepEqual(socket.sentOf('SetAway'), [{ message: '' }], 'sent at once while connected');
    socket.receive({ Away: { nick: 'ana', message: null } });
    await h.engine.settled();
    assert.equal(h.engine.awayToSend, null, 'back, confirmed');
  });

  test('Away, Whois, Typing and ReadMarkers are read into events, strictly', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login();
    socket.receive({ Away: { nick: 'bob', message: 'lunch, back at 2' } });
    socket.receive({ Away: { nick: 'bob', message: null } });
    socket.receive({
      Whois: { nick: 'bob', registered_ms: 1764000000000, online: true, online_since_ms: 1765000000000, idle_ms: 120000, away: null, rooms: ['lobby', 'rust'] },
    });
    socket.receive({ Typing: { conversation: { Direct: 'bob' }, nick: 'bob', typing: true } });
    socket.receive({ ReadMarkers: { markers: [{ conversation: { Room: 'lobby' }, nick: 'bob', seq: 42 }, { conversation: { Direct: 'bob' }, nick: 'ana', seq: 7 }] } });
    await h.engine.settled();
    assert.deepEqual(h.eventsOf('away').map(({ nick, message }) => [nick, message]), [['bob', 'lunch, back at 2'], ['bob', null]]);
    const [whois] = h.eventsOf('whois');
    assert.deepEqual(
      { ...whois },
      { type: 'whois', nick: 'bob', registeredMs: 1764000000000, online: true, onlineSinceMs: 1765000000000, idleMs: 120000, away: null, rooms: ['lobby', 'rust'] },
    );
    assert.deepEqual(h.eventsOf('typing').map(({ key, nick, typing }) => [key, nick, typing]), [['@bob', 'bob', true]]);
    assert.deepEqual(h.eventsOf('readMarkers')[0].markers, [{ key: '#lobby', nick: 'bob', seq: 42 }, { key: '@bob', nick: 'ana', seq: 7 }]);
    assert.equal(socket.closedByClient, false);
  });

  for (const broken of [
    { Away: { nick: 'Bob', message: null } },
    { Away: { nick: 'bob', message: 3 } },
    { Whois: { nick: 'bob', registered_ms: -1, online: true, online_since_ms: null, idle_ms: null, away: null, rooms: [] } },
    { Whois: { nick: 'bob', registered_ms: 1, online: 'yes', online_since_ms: null, idle_ms: null, away: null, rooms: [] } },
    { Whois: { nick: 'bob', registered_ms: 1, online: true, online_since_ms: null, idle_ms: null, away: null, rooms: ['#x'] } },
    { Typing: { conversation: { Room: 'lobby' }, nick: 'bob', typing: 1 } },
    { ReadMarkers: { markers: [{ conversation: { Room: 'lobby' }, nick: 'bob', seq: 1.5 }] } },
    { ReadMarkers: { markers: null } },
  ]) {
    test(`a malformed ${Object.keys(broken)[0]} drops the connection: ${JSON.stringify(broken)}`, async () => {
      const h = harness();
      await h.engine.start();
      const socket = await h.login();
      socket.receive(broken);
      await h.engine.settled();
      assert.equal(socket.closedByClient, true);
    });
  }

  test('a server that knows only version 5: spoken to in 5 at once, the welcome says so, and nothing of version 6 is sent', async () => {
    const h = harness();
    await h.engine.start();
    h.engine.setAway('lunch');
    h.socket().open();
    h.socket().receive({ Error: { code: 'UnsupportedVersion', message: 'this server speaks protocol versions 1 to 5, the client 6', id: null } });
    await h.engine.settled();
    assert.equal(h.eventsOf('loginRefused').length, 0, 'not a refusal to show');
    const socket = await h.login(welcome(undefined, 2000, 5));
    assert.equal(socket.sentOf('Hello')[0].version, 5);
    assert.equal(h.eventsOf('welcome')[0].version, 5);
    assert.equal(h.engine.live, true);
    h.engine.setAway('later');
    assert.equal(h.engine.whois('bob'), false);
    assert.equal(h.engine.typing('#lobby', true), false);
    assert.equal(h.engine.markRead('#lobby', 1), false);
    assert.deepEqual(socket.sent.filter((frame) => ['SetAway', 'Whois', 'Typing', 'MarkRead'].some((kind) => kind in frame)), []);
  });

  test('after speaking 5 to a server that refused 6, the next connection tries 6 again (the node may be upgraded)', async () => {
    const h = harness();
    await h.engine.start();
    h.socket().open();
    h.socket().receive({ Error: { code: 'UnsupportedVersion', message: 'this server speaks protocol versions 1 to 5, the client 6', id: null } });
    await h.engine.settled();
    const old = await h.login(welcome(undefined, 2000, 5));
    assert.equal(old.sentOf('Hello')[0].version, 5);
    old.drop();
    await h.engine.settled();
    await h.clock.advance(BACKOFF_MAX_MS);
    const upgraded = await h.login();
    assert.equal(upgraded.sentOf('Hello')[0].version, 6);
    assert.equal(h.eventsOf('welcome').at(-1).version, 6);
    assert.equal(h.engine.whois('bob'), true, 'version 6 again');
  });

  test('a Welcome of another version than the Hello asked is a protocol error', async () => {
    const h = harness();
    await h.engine.start();
    const socket = await h.login(welcome(undefined, 2000, 5));
    assert.equal(socket.closedByClient, true);
    assert.equal(h.engine.live, false);
  });
});
