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

export function welcome(conversations = [{ conversation: { Room: 'lobby' }, latest_seq: 0, first_seq: 1 }], heartbeatMs = 2000) {
  return { Welcome: { version: 4, nick: 'ana', registered: false, heartbeat_ms: heartbeatMs, conversations } };
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
