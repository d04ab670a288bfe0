// The in-memory store, the tests' twin of IndexedDbStore: the same answers for the outbox order, the messages
// kept per conversation, forgetting a conversation, read markers, and reading what the previous version kept; and
// the preferences (silenced conversations, highlight words, ignored nicknames, read receipts and typing notices) in
// both, IndexedDbStore over a fake IndexedDB, a database of the previous version upgraded with what it kept.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IndexedDbStore, KEPT_MESSAGES, MemoryStore, databaseName } from '../web/store.js';
import { FakeIndexedDb } from './fakes.mjs';

test('the outbox loads in the order typed (time, then the page count), and removal is by id', async () => {
  const store = new MemoryStore();
  await store.addToOutbox({ order: 2, id: 'b', to: '#lobby', text: 'second', typedAt: 1 });
  await store.addToOutbox({ order: 1, id: 'a', to: '#lobby', text: 'first', typedAt: 1 });
  await store.addToOutbox({ order: 3, id: 'c', to: '@bob', text: 'third', typedAt: 3 });
  assert.deepEqual((await store.load()).outbox.map((entry) => entry.id), ['a', 'b', 'c']);
  await store.removeFromOutbox(['b']);
  assert.deepEqual((await store.load()).outbox.map((entry) => entry.id), ['a', 'c']);
});

test('what the previous version kept (no kind, no revision) is read as texts, as sent; kinds are kept', async () => {
  const store = new MemoryStore();
  // As a page of protocol version 2 wrote them.
  store.outbox.set('a', { order: 1, id: 'a', to: '#lobby', text: 'old', typedAt: 1 });
  store.messages.set('#lobby', [{ conversation: '#lobby', seq: 1, id: 'i', from: 'bob', ts: 1, text: 'old' }]);
  await store.addToOutbox({ order: 2, id: 'b', to: '#lobby', kind: 'Edit', of: 1, text: 'new', typedAt: 2 });
  await store.saveDelivery(new Map([['#lobby', 2]]), [
    { conversation: '#lobby', seq: 2, id: 'j', from: 'bob', ts: 2, text: '', kind: 'Deletion', of: 1, revision: 'Original' },
  ]);
  const loaded = await store.load();
  assert.deepEqual(loaded.outbox.map(({ id, kind, of }) => [id, kind, of]), [['a', 'Text', null], ['b', 'Edit', 1]]);
  assert.deepEqual(loaded.messages.get('#lobby').map(({ seq, kind, of, revision }) => [seq, kind, of, revision]), [
    [1, 'Text', null, 'Deleted'],
    [2, 'Deletion', 1, 'Original'],
  ]);
});

test('a deletion blanks the kept copies of its message and of that message’s edits, and nothing else', async () => {
  const store = new MemoryStore();
  const message = (seq, kind, of, text) => ({ conversation: '#lobby', seq, id: String(seq), from: 'ana', ts: seq, text, kind, of, revision: 'Original' });
  await store.saveDelivery(new Map([['#lobby', 3]]), [
    message(1, 'Text', null, 'my address is …'),
    message(2, 'Edit', 1, 'my new address is …'),
    message(3, 'Text', null, 'kept'),
  ]);
  await store.saveDelivery(new Map([['#lobby', 4]]), [message(4, 'Deletion', 1, 'oops')]);
  const kept = (await store.load()).messages.get('#lobby');
  assert.deepEqual(kept.map(({ seq, text, revision }) => [seq, text, revision]), [
    [1, '', 'Deleted'],
    [2, '', 'Deleted'],
    [3, 'kept', 'Original'],
    [4, 'oops', 'Original'],
  ]);
});

test('a deletion blanks the kept copies of its message’s reactions too, not its replies', async () => {
  const store = new MemoryStore();
  const message = (seq, kind, of, text, added) => ({ conversation: '#lobby', seq, id: String(seq), from: 'bob', ts: seq, text, kind, of, revision: 'Original', ...(added === undefined ? {} : { added }) });
  await store.saveDelivery(new Map([['#lobby', 4]]), [
    message(1, 'Text', null, 'hot take'),
    message(2, 'Reaction', 1, '👎', true),
    message(3, 'Reply', 1, 'disagree'),
    message(4, 'Reaction', 3, '👍', true),
  ]);
  await store.saveDelivery(new Map([['#lobby', 5]]), [message(5, 'Deletion', 1, '')]);
  const kept = (await store.load()).messages.get('#lobby');
  assert.deepEqual(kept.map(({ seq, kind, text, revision, added }) => [seq, kind, text, revision, added]), [
    [1, 'Text', '', 'Deleted', undefined],
    [2, 'Reaction', '', 'Deleted', true],
    [3, 'Reply', 'disagree', 'Original', undefined],
    [4, 'Reaction', '👍', 'Original', true],
    [5, 'Deletion', '', 'Original', undefined],
  ]);
});

test(`the last ${KEPT_MESSAGES} messages of each conversation are kept with the cursor`, async () => {
  const store = new MemoryStore();
  const messages = Array.from({ length: KEPT_MESSAGES + 20 }, (_, index) => ({ conversation: '#lobby', seq: index + 1, id: String(index), from: 'bob', ts: index, text: 'x' }));
  await store.saveDelivery(new Map([['#lobby', KEPT_MESSAGES + 20]]), messages);
  const loaded = await store.load();
  assert.equal(loaded.cursors.get('#lobby'), KEPT_MESSAGES + 20);
  assert.equal(loaded.messages.get('#lobby').length, KEPT_MESSAGES);
  assert.equal(loaded.messages.get('#lobby')[0].seq, 21, 'the oldest go');
});

test('forgetting a conversation drops its cursor, messages and read marker only', async () => {
  const store = new MemoryStore();
  const one = (conversation) => ({ conversation, seq: 1, id: 'i', from: 'bob', ts: 1, text: 'x' });
  await store.saveDelivery(new Map([['@bob', 1], ['#lobby', 1]]), [one('@bob'), one('#lobby')]);
  await store.saveReadMarker('@bob', 1);
  await store.saveReadMarker('#lobby', 1);
  await store.forget('@bob');
  const loaded = await store.load();
  assert.deepEqual([...loaded.cursors.keys()], ['#lobby']);
  assert.deepEqual([...loaded.messages.keys()], ['#lobby']);
  assert.deepEqual([...loaded.readMarkers.keys()], ['#lobby']);
});

test('one database per nickname', () => {
  assert.equal(databaseName('ana'), 'palomar:ana');
});

const NO_PREFERENCES = { silenced: [], highlights: [], ignored: [], receipts: true, typing: true };

const SOME_PREFERENCES = { silenced: ['#random', '@bob'], highlights: ['deploy', 'outage'], ignored: ['mallory'], receipts: true, typing: true };

test('preferences: none at first, then kept whole, in the order added, and copied in and out (memory)', async () => {
  const store = new MemoryStore();
  assert.deepEqual((await store.load()).preferences, NO_PREFERENCES);
  const saved = structuredClone(SOME_PREFERENCES);
  await store.savePreferences(saved);
  saved.ignored.push('eve');
  const loaded = await store.load();
  assert.deepEqual(loaded.preferences, SOME_PREFERENCES);
  loaded.preferences.silenced.length = 0;
  assert.deepEqual((await store.load()).preferences, SOME_PREFERENCES, 'what load gave is a copy');
  await store.savePreferences({ ...SOME_PREFERENCES, ignored: [] });
  assert.deepEqual((await store.load()).preferences.ignored, [], 'unignoring the last one is kept too');
});

test('preferences: IndexedDB keeps them across pages, as the memory store does', async () => {
  const factory = new FakeIndexedDb();
  const first = await IndexedDbStore.open('ana', factory);
  assert.deepEqual((await first.load()).preferences, NO_PREFERENCES);
  await first.savePreferences(SOME_PREFERENCES);
  first.close();
  const memory = new MemoryStore();
  await memory.savePreferences(SOME_PREFERENCES);
  const second = await IndexedDbStore.open('ana', factory);
  assert.deepEqual((await second.load()).preferences, (await memory.load()).preferences);
  await second.saveReadMarker('#lobby', 3);
  assert.deepEqual((await second.load()).readMarkers, new Map([['#lobby', 3]]));
  const other = await IndexedDbStore.open('bob', factory);
  assert.deepEqual((await other.load()).preferences, NO_PREFERENCES, 'per nickname');
});

test('a database of the previous version is upgraded: what it kept stays, and preferences are added', async () => {
  const factory = new FakeIndexedDb();
  // As the page of database version 1 made and filled it.
  const request = factory.open(databaseName('ana'), 1);
  request.onupgradeneeded = () => {
    const database = request.result;
    database.createObjectStore('outbox', { keyPath: 'id' });
    database.createObjectStore('cursors', { keyPath: 'conversation' });
    database.createObjectStore('messages', { keyPath: ['conversation', 'seq'] });
    database.createObjectStore('reads', { keyPath: 'conversation' });
  };
  const old = await new Promise((resolve) => {
    request.onsuccess = () => resolve(request.result);
  });
  const transaction = old.transaction(['outbox', 'cursors', 'messages', 'reads'], 'readwrite');
  transaction.objectStore('outbox').put({ order: 1, id: 'a', to: '#lobby', kind: 'Text', of: null, text: 'typed', typedAt: 1 });
  transaction.objectStore('cursors').put({ conversation: '#lobby', seq: 2 });
  transaction.objectStore('messages').put({ conversation: '#lobby', seq: 2, id: 'i', from: 'bob', ts: 2, text: 'kept', kind: 'Text', of: null, revision: 'Original' });
  transaction.objectStore('reads').put({ conversation: '#lobby', seq: 1 });
  await new Promise((resolve) => {
    transaction.oncomplete = resolve;
  });
  old.close();

  const store = await IndexedDbStore.open('ana', factory);
  assert.equal(factory.databases.get(databaseName('ana')).version, 2);
  const loaded = await store.load();
  assert.deepEqual(loaded.outbox.map((entry) => entry.text), ['typed']);
  assert.deepEqual(loaded.cursors, new Map([['#lobby', 2]]));
  assert.deepEqual(loaded.messages.get('#lobby').map((message) => message.text), ['kept']);
  assert.deepEqual(loaded.readMarkers, new Map([['#lobby', 1]]));
  assert.deepEqual(loaded.preferences, NO_PREFERENCES);
  await store.savePreferences(SOME_PREFERENCES);
  assert.deepEqual((await store.load()).preferences, SOME_PREFERENCES);
});

test('preferences: read receipts and typing notices off are kept, and on again, in IndexedDB and in memory alike', async () => {
  const factory = new FakeIndexedDb();
  const memory = new MemoryStore();
  const first = await IndexedDbStore.open('ana', factory);
  const off = { ...SOME_PREFERENCES, receipts: false, typing: false };
  await first.savePreferences(off);
  await memory.savePreferences(off);
  first.close();
  const second = await IndexedDbStore.open('ana', factory);
  assert.deepEqual((await second.load()).preferences, off);
  assert.deepEqual((await memory.load()).preferences, off);
  assert.equal(factory.databases.get(databaseName('ana')).version, 2, 'no new database version');
  const receiptsOnly = { ...SOME_PREFERENCES, receipts: false, typing: true };
  await second.savePreferences(receiptsOnly);
  await memory.savePreferences(receiptsOnly);
  assert.deepEqual((await second.load()).preferences, receiptsOnly);
  assert.deepEqual((await memory.load()).preferences, receiptsOnly);
  await second.savePreferences(SOME_PREFERENCES);
  await memory.savePreferences(SOME_PREFERENCES);
  assert.deepEqual((await second.load()).preferences, SOME_PREFERENCES, 'on again');
  assert.deepEqual((await memory.load()).preferences, SOME_PREFERENCES);
  const other = await IndexedDbStore.open('bob', factory);
  assert.deepEqual((await other.load()).preferences, NO_PREFERENCES, 'per nickname');
});

test('preferences kept before the switches existed (their lists only) load with read receipts and typing notices on', async () => {
  const factory = new FakeIndexedDb();
  const store = await IndexedDbStore.open('ana', factory);
  // As a page without /receipts and /typing kept them: a row per list.
  const transaction = store.database.transaction('preferences', 'readwrite');
  transaction.objectStore('preferences').put({ kind: 'ignored', values: ['mallory'] });
  await new Promise((resolve) => {
    transaction.oncomplete = resolve;
  });
  assert.deepEqual((await store.load()).preferences, { ...NO_PREFERENCES, ignored: ['mallory'] });
  const memory = new MemoryStore();
  memory.preferences = { silenced: [], highlights: [], ignored: ['mallory'] };
  assert.deepEqual((await memory.load()).preferences, { ...NO_PREFERENCES, ignored: ['mallory'] });
});
