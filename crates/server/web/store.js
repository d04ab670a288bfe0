// What the browser keeps of one account between page loads: the outbox (typed, not yet stored by the server),
// the cursors (the highest seq received without a gap, per conversation), the last messages of each
// conversation, where the user stopped reading, and the user's preferences (silenced conversations, highlight
// words, ignored nicknames, whether read receipts and typing notices are on: the client's own, nothing of them on
// the wire). Two implementations of one interface: IndexedDB for the page, and an in-memory twin with the same
// behaviour for the tests. The password is never stored here.
//
// The interface, every method async:
//   load() -> { outbox: [entry], cursors: Map(key -> seq), messages: Map(key -> [message]), readMarkers: Map(key -> seq),
//             preferences: { silenced: [key], highlights: [word], ignored: [nick], receipts: bool, typing: bool } }
//                                   (receipts and typing: true when never kept, as in a database of an older page)
//   addToOutbox(entry)             entry = { order, id, to, kind, of, text, typedAt } (and `added`, for a
//                                   reaction), kept under its id; the
//                                   outbox loads sorted by `typedAt`, then `order` (a page's own count), so as
//                                   typed
//   removeFromOutbox([id])
//   saveDelivery(cursors, messages) cursors: Map(key -> seq), messages: [message with `conversation` = key],
//                                   in one transaction, so that a cursor is never saved without what it counts
//   forget(key)                     a conversation we are no longer in: its cursor, messages and read marker
//   rewind(key, seq)                the server's store went back to `seq`: the cursor is set to it, the messages
//                                   after it go, and the read marker comes back to it
//   saveReadMarker(key, seq)
//   savePreferences(preferences)    all of them at once, as load() gives them (they are few: at most 50 words, 200
//                                   nicknames, and the conversations silenced)
//   close()

/// Messages kept per conversation: enough for the page to show a conversation at once after a reload; older ones
/// come from the server by scrolling back.
export const KEPT_MESSAGES = 300;

/// Typed order. Two tabs of one account share the store, each counting `order` from what it loaded: the time
/// typed comes first, and the id keys the entry, so that neither tab's entries overwrite the other's.
function asTyped(a, b) {
  return a.typedAt - b.typedAt || a.order - b.order;
}

function bySeq(a, b) {
  return a.seq - b.seq;
}

// What a page of protocol version 2 kept has no kind (it sent and received texts only) and no revision: it is
// read as a text, as sent.

function outboxEntry(kept) {
  return { kind: 'Text', of: null, ...kept };
}

function keptMessage(kept) {
  return { kind: 'Text', of: null, revision: 'Original', ...kept };
}

/// The kinds of preferences, each kept as one list (in the order added, as `/highlight` and `/ignore` list them).
const PREFERENCE_KINDS = ['silenced', 'highlights', 'ignored'];

/// The switches among the preferences (`/receipts`, `/typing`), each kept as a boolean: on unless kept off.
const PREFERENCE_SWITCHES = ['receipts', 'typing'];

/// Preferences as load() gives them: every kind present, copies of what was kept (none kept: empty lists, and
/// the switches on).
function loadedPreferences(kept) {
  return {
    ...Object.fromEntries(PREFERENCE_KINDS.map((kind) => [kind, Array.isArray(kept[kind]) ? [...kept[kind]] : []])),
    ...Object.fromEntries(PREFERENCE_SWITCHES.map((kind) => [kind, kept[kind] !== false])),
  };
}

/// Entries that are part of the message they are about, and go with it when it is deleted (its replies stay).
const BELONGING = new Set(['Edit', 'Reaction']);

/// A kept message as a deletion among `deletions` (of its conversation) leaves it: a deleted message, its edits and
/// its reactions are blanked, as the server's log blanks them, so that a deleted text does not stay in this browser.
function blankedBy(kept, deletions) {
  const deleted = deletions.some((deletion) => kept.seq === deletion.of || (BELONGING.has(kept.kind) && kept.of === deletion.of));
  return deleted && (kept.text !== '' || kept.revision !== 'Deleted') ? { ...kept, text: '', revision: 'Deleted' } : null;
}

/// The deletions among `messages`, by conversation.
function deletionsIn(messages) {
  const byConversation = new Map();
  for (const message of messages) {
    if (message.kind !== 'Deletion') continue;
    byConversation.set(message.conversation, [...(byConversation.get(message.conversation) ?? []), message]);
  }
  return byConversation;
}

/// The tests' store: the same answers as IndexedDB's, kept in maps (copied in and out, as IndexedDB clones).
export class MemoryStore {
  constructor() {
    this.outbox = new Map();
    this.cursors = new Map();
    this.messages = new Map();
    this.readMarkers = new Map();
    this.preferences = {};
    this.closed = false;
  }

  async load() {
    const messages = new Map();
    for (const [key, list] of this.messages) messages.set(key, list.map(keptMessage));
    return {
      outbox: [...this.outbox.values()].map(outboxEntry).sort(asTyped),
      cursors: new Map(this.cursors),
      messages,
      readMarkers: new Map(this.readMarkers),
      preferences: loadedPreferences(this.preferences),
    };
  }

  async addToOutbox(entry) {
    this.outbox.set(entry.id, { ...entry });
  }

  async removeFromOutbox(ids) {
    for (const id of ids) this.outbox.delete(id);
  }

  async saveDelivery(cursors, messages) {
    for (const [key, seq] of cursors) this.cursors.set(key, seq);
    for (const message of messages) {
      const list = this.messages.get(message.conversation) ?? [];
      if (!list.some((kept) => kept.seq === message.seq)) list.push({ ...message });
      list.sort(bySeq);
      this.messages.set(message.conversation, list.slice(-KEPT_MESSAGES));
    }
    for (const [conversation, deletions] of deletionsIn(messages)) {
      const list = this.messages.get(conversation) ?? [];
      this.messages.set(conversation, list.map((kept) => blankedBy(kept, deletions) ?? kept));
    }
  }

  async forget(key) {
    this.cursors.delete(key);
    this.messages.delete(key);
    this.readMarkers.delete(key);
  }

  async rewind(key, seq) {
    this.cursors.set(key, seq);
    const kept = this.messages.get(key);
    if (kept !== undefined) this.messages.set(key, kept.filter((message) => message.seq <= seq));
    if ((this.readMarkers.get(key) ?? 0) > seq) this.readMarkers.set(key, seq);
  }

  async saveReadMarker(key, seq) {
    this.readMarkers.set(key, seq);
  }

  async savePreferences(preferences) {
    this.preferences = loadedPreferences(preferences);
  }

  close() {
    this.closed = true;
  }
}

/// The database of one account on this server: IndexedDB is per origin (the server), the name per nickname.
export function databaseName(nick) {
  return `palomar:${nick}`;
}

/// Version 2 added the `preferences` store (a row per kind: `{ kind, values }`, `values` a list, or a boolean for
/// a switch: a row missing is a switch on, so that adding them needed no new version); a version 1 database is
/// upgraded in place, everything it kept staying.
const DATABASE_VERSION = 2;

function requestDone(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function transactionDone(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('the transaction was aborted'));
  });
}

/// The page's store.
export class IndexedDbStore {
  constructor(database) {
    this.database = database;
  }

  /// Opens (creating on first use) the database of `nick`.
  static async open(nick, factory = globalThis.indexedDB) {
    if (!factory) throw new Error('this browser has no IndexedDB: messages could not be kept safe');
    const request = factory.open(databaseName(nick), DATABASE_VERSION);
    request.onupgradeneeded = (event) => {
      const database = request.result;
      // From the version this browser had (0: none), each step once, so that what it kept stays.
      if (event.oldVersion < 1) {
        database.createObjectStore('outbox', { keyPath: 'id' });
        database.createObjectStore('cursors', { keyPath: 'conversation' });
        database.createObjectStore('messages', { keyPath: ['conversation', 'seq'] });
        database.createObjectStore('reads', { keyPath: 'conversation' });
      }
      if (event.oldVersion < 2) database.createObjectStore('preferences', { keyPath: 'kind' });
    };
    const database = await requestDone(request);
    // Another tab upgrading the database (a newer page) must not be blocked by this one.
    database.onversionchange = () => database.close();
    return new IndexedDbStore(database);
  }

  async load() {
    const transaction = this.database.transaction(['outbox', 'cursors', 'messages', 'reads', 'preferences'], 'readonly');
    const [outbox, cursors, messages, reads, preferences] = await Promise.all([
      requestDone(transaction.objectStore('outbox').getAll()),
      requestDone(transaction.objectStore('cursors').getAll()),
      requestDone(transaction.objectStore('messages').getAll()),
      requestDone(transaction.objectStore('reads').getAll()),
      requestDone(transaction.objectStore('preferences').getAll()),
    ]);
    const byConversation = new Map();
    for (const message of messages) {
      const list = byConversation.get(message.conversation) ?? [];
      list.push(keptMessage(message));
      byConversation.set(message.conversation, list);
    }
    for (const list of byConversation.values()) list.sort(bySeq);
    return {
      outbox: outbox.map(outboxEntry).sort(asTyped),
      cursors: new Map(cursors.map((row) => [row.conversation, row.seq])),
      messages: byConversation,
      readMarkers: new Map(reads.map((row) => [row.conversation, row.seq])),
      preferences: loadedPreferences(Object.fromEntries(preferences.map((row) => [row.kind, row.values]))),
    };
  }

  async addToOutbox(entry) {
    const transaction = this.database.transaction('outbox', 'readwrite', { durability: 'strict' });
    transaction.objectStore('outbox').put(entry);
    await transactionDone(transaction);
  }

  async removeFromOutbox(ids) {
    const transaction = this.database.transaction('outbox', 'readwrite');
    const outbox = transaction.objectStore('outbox');
    for (const id of ids) outbox.delete(id);
    await transactionDone(transaction);
  }

  async saveDelivery(cursors, messages) {
    const transaction = this.database.transaction(['cursors', 'messages'], 'readwrite');
    const cursorStore = transaction.objectStore('cursors');
    const messageStore = transaction.objectStore('messages');
    for (const [conversation, seq] of cursors) cursorStore.put({ conversation, seq });
    const touched = new Set();
    for (const message of messages) {
      messageStore.put(message);
      touched.add(message.conversation);
    }
    for (const [conversation, deletions] of deletionsIn(messages)) {
      const range = IDBKeyRange.bound([conversation, 0], [conversation, Number.MAX_SAFE_INTEGER]);
      for (const kept of await requestDone(messageStore.getAll(range))) {
        const blanked = blankedBy(kept, deletions);
        if (blanked !== null) messageStore.put(blanked);
      }
    }
    for (const conversation of touched) {
      const range = IDBKeyRange.bound([conversation, 0], [conversation, Number.MAX_SAFE_INTEGER]);
      const count = await requestDone(messageStore.count(range));
      if (count <= KEPT_MESSAGES) continue;
      // The oldest come first in key order.
      const keys = await requestDone(messageStore.getAllKeys(range, count - KEPT_MESSAGES));
      for (const key of keys) messageStore.delete(key);
    }
    await transactionDone(transaction);
  }

  async forget(key) {
    const transaction = this.database.transaction(['cursors', 'messages', 'reads'], 'readwrite');
    transaction.objectStore('cursors').delete(key);
    transaction.objectStore('reads').delete(key);
    transaction.objectStore('messages').delete(IDBKeyRange.bound([key, 0], [key, Number.MAX_SAFE_INTEGER]));
    await transactionDone(transaction);
  }

  async rewind(key, seq) {
    const transaction = this.database.transaction(['cursors', 'messages', 'reads'], 'readwrite');
    transaction.objectStore('cursors').put({ conversation: key, seq });
    transaction.objectStore('messages').delete(IDBKeyRange.bound([key, seq + 1], [key, Number.MAX_SAFE_INTEGER]));
    const reads = transaction.objectStore('reads');
    const marker = await requestDone(reads.get(key));
    if (marker !== undefined && marker.seq > seq) reads.put({ conversation: key, seq });
    await transactionDone(transaction);
  }

  async saveReadMarker(key, seq) {
    const transaction = this.database.transaction('reads', 'readwrite');
    transaction.objectStore('reads').put({ conversation: key, seq });
    await transactionDone(transaction);
  }

  async savePreferences(preferences) {
    const transaction = this.database.transaction('preferences', 'readwrite');
    const store = transaction.objectStore('preferences');
    for (const [kind, values] of Object.entries(loadedPreferences(preferences))) store.put({ kind, values });
    await transactionDone(transaction);
  }

  close() {
    this.database.close();
  }
}
