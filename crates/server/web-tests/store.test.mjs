// The in-memory store, the tests' twin of IndexedDbStore: the same answers for the outbox order, the messages
// kept per conversation, forgetting a conversation, read markers, and reading what the previous version kept.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { KEPT_MESSAGES, MemoryStore, databaseName } from '../web/store.js';

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
