// What the engine's tests drive it with instead of a browser: a clock whose time moves only when told, a
// WebSocket that records what is sent and lets the test play the server, and a harness that wires them to an
// Engine over the in-memory store.

import { Engine } from '../web/engine.js';
import { MemoryStore } from '../web/store.js';

/// Lets every pending promise reaction and macrotask-free chain run.
export async function flush() {
  for (let round = 0; round < 20; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  constructor(start = 1_765_065_600_000) {
    this.time = start;
    this.timers = new Map();
    this.nextHandle = 1;
  }

  now() {
    return this.time;
  }

  setTimeout(callback, ms) {
    const handle = this.nextHandle;
    this.nextHandle += 1;
    this.timers.set(handle, { at: this.time + Math.max(0, ms), callback });
    return handle;
  }

  clearTimeout(handle) {
    this.timers.delete(handle);
  }

  /// Moves time forward by `ms`, firing due timers in order (each followed by a flush).
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      let next = null;
      for (const [handle, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [handle, timer];
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
      await flush();
    }
    this.time = end;
    await flush();
  }
}

/// The server's end of a WebSocket, played by the test.
export class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedByClient = false;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    /// Called with each frame as it is sent, before it is recorded (to check what was stored by then).
    this.beforeSend = () => {};
  }

  open() {
    this.readyState = 1;
    this.onopen({});
  }

  receive(message) {
    this.onmessage({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /// The server (or the network) closes the connection.
  drop(reason = '') {
    this.readyState = 3;
    this.onclose({ code: 1006, reason });
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    const frame = JSON.parse(text);
    this.beforeSend(frame);
    this.sent.push(frame);
  }

  close() {
    this.readyState = 3;
    this.closedByClient = true;
  }

  /// The frames of one kind sent so far (`"Bye"` is its own kind).
  sentOf(kind) {
    return this.sent.filter((frame) => (typeof frame === 'string' ? frame === kind : kind in frame)).map((frame) => (typeof frame === 'string' ? frame : frame[kind]));
  }
}

/// The server's `Welcome`, in the version the page speaks unless `version` says another (the one a Hello asked).
export function welcome(conversations = [{ conversation: { Room: 'lobby' }, latest_seq: 0, first_seq: 1 }], heartbeatMs = 2000, version = 6) {
  return { Welcome: { version, nick: 'ana', registered: false, heartbeat_ms: heartbeatMs, conversations } };
}

/// A delivered message as the server writes it; `kind` and `revision` in their JSON form.
export function message(room, seq, from = 'bob', text = `message ${seq}`, kind = 'Text', revision = 'Original') {
  const id = seq.toString(16).padStart(32, '0');
  return { conversation: { Room: room }, seq, id, from, ts: 1_765_065_600_000 + seq, text, kind, revision };
}

/// An engine for `ana` over fakes. `random` is the jitter source (0.5 unless given).
export function harness({ store = new MemoryStore(), random = () => 0.5 } = {}) {
  const clock = new FakeClock();
  const sockets = [];
  const events = [];
  let counter = 0;
  const engine = new Engine({
    url: 'wss://chat.example/ws',
    nick: 'ana',
    password: 'correct horse',
    store,
    clock,
    random,
    randomBytes: (count) => Uint8Array.from({ length: count }, () => {
      counter += 1;
      return counter & 0xff;
    }),
    openSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    onEvent: (event) => events.push(event),
  });
  return {
    engine,
    clock,
    sockets,
    events,
    store,
    socket: () => sockets[sockets.length - 1],
    eventsOf: (type) => events.filter((event) => event.type === type),
    /// Opens the current socket and welcomes the login.
    async login(frame = welcome()) {
      const socket = sockets[sockets.length - 1];
      socket.open();
      socket.receive(frame);
      await flush();
      return socket;
    },
  };
}

/// The browser's IndexedDB, as small as IndexedDbStore's loading and saving of whole rows needs (no key ranges):
/// databases by name with their version, the upgrade event with the version a database had, object stores with
/// a key path, values cloned in and out, and transactions that complete once no request of theirs is left, a turn
/// of the event loop later, as the browser's commit on their own.
export class FakeIndexedDb {
  constructor() {
    /// Name -> { version, stores: Map(name -> { keyPath, rows: Map(key as JSON -> value) }) }.
    this.databases = new Map();
  }

  open(name, version) {
    const request = { result: null, error: null, onsuccess: null, onerror: null, onupgradeneeded: null };
    setImmediate(() => {
      const kept = this.databases.get(name) ?? { version: 0, stores: new Map() };
      if (version < kept.version) {
        request.error = new Error(`VersionError: ${name} is at version ${kept.version}, not ${version}`);
        request.onerror?.();
        return;
      }
      this.databases.set(name, kept);
      const database = new FakeDatabase(kept);
      request.result = database;
      if (version > kept.version) {
        database.upgrading = true;
        request.onupgradeneeded?.({ oldVersion: kept.version, newVersion: version });
        database.upgrading = false;
        kept.version = version;
      }
      request.onsuccess?.();
    });
    return request;
  }
}

class FakeDatabase {
  constructor(kept) {
    this.kept = kept;
    this.upgrading = false;
    this.closed = false;
    this.onversionchange = null;
  }

  createObjectStore(name, { keyPath }) {
    if (!this.upgrading) throw new Error('InvalidStateError: object stores are made only while upgrading');
    if (this.kept.stores.has(name)) throw new Error(`ConstraintError: ${name} exists already`);
    this.kept.stores.set(name, { keyPath, rows: new Map() });
  }

  transaction(names, mode) {
    if (this.closed) throw new Error('InvalidStateError: the database is closed');
    const list = typeof names === 'string' ? [names] : names;
    for (const name of list) if (!this.kept.stores.has(name)) throw new Error(`NotFoundError: no object store ${name}`);
    return new FakeTransaction(this.kept, list, mode);
  }

  close() {
    this.closed = true;
  }
}

class FakeTransaction {
  constructor(kept, names, mode) {
    this.kept = kept;
    this.names = names;
    this.mode = mode;
    this.pending = 0;
    this.done = false;
    this.error = null;
    this.oncomplete = null;
    this.onerror = null;
    this.onabort = null;
    setImmediate(() => this.settle());
  }

  objectStore(name) {
    if (!this.names.includes(name)) throw new Error(`NotFoundError: ${name} is not in this transaction`);
    const store = this.kept.stores.get(name);
    const keyOf = (value) => JSON.stringify(Array.isArray(store.keyPath) ? store.keyPath.map((path) => value[path]) : value[store.keyPath]);
    const writing = () => {
      if (this.mode !== 'readwrite') throw new Error('ReadOnlyError: a write in a readonly transaction');
    };
    return {
      put: (value) => {
        writing();
        return this.request(() => {
          store.rows.set(keyOf(value), structuredClone(value));
        });
      },
      delete: (key) => {
        writing();
        return this.request(() => {
          store.rows.delete(JSON.stringify(key));
        });
      },
      get: (key) => this.request(() => structuredClone(store.rows.get(JSON.stringify(key)))),
      getAll: () => this.request(() => [...store.rows.values()].map((value) => structuredClone(value))),
    };
  }

  request(work) {
    if (this.done) throw new Error('TransactionInactiveError: the transaction is over');
    this.pending += 1;
    const request = { result: undefined, error: null, onsuccess: null, onerror: null };
    setImmediate(() => {
      request.result = work();
      this.pending -= 1;
      request.onsuccess?.();
      setImmediate(() => this.settle());
    });
    return request;
  }

  settle() {
    if (this.pending > 0 || this.done) return;
    this.done = true;
    this.oncomplete?.();
  }
}
