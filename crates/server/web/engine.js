// The connection engine of the browser client, the JavaScript twin of crates/client/src/engine: it owns the
// WebSocket, the outbox and the cursors. Everything typed goes to the stored outbox first, then to the server,
// and leaves the outbox only when the server says it is stored (or refuses it for good). Every (re)connection
// sends the cursors in `Hello` and the whole outbox again; the server answers retried ids with their first seq,
// and deliveries at or below a cursor are dropped, so nothing is shown twice (PROTOCOL.md sections 9-13).
//
// No DOM: the socket factory, the clock and the random source are passed in, so the tests drive any sequence
// of disconnects, retries and deliveries with fakes. What happens is reported through `onEvent` (see `emit`).

import * as wire from './protocol.js';

/// Sends on a connection not yet answered, at most: the server reads at most 1,024 ahead, and a client that only
/// wrote could block a server that is writing to it (PROTOCOL.md 10.1).
export const SEND_WINDOW = 256;
/// Received cursors are acknowledged this long after they move, together.
export const ACK_DELAY_MS = 150;
/// Wait before resending what the server's store could not take.
export const STORE_RETRY_MS = 2000;
/// The heartbeat interval assumed until a server says its own in `Welcome`.
const DEFAULT_HEARTBEAT_MS = 2000;
/// A server silent for this many heartbeat intervals is taken for dead, during the login too.
const MISSED_HEARTBEATS = 3;
/// Longest a login may take, however often the server says (with pings) that it is still deciding.
const LOGIN_DEADLINE_MS = 60000;
/// Reconnect delays: from this, doubling, capped at the maximum, each randomised (see `backoffDelay`).
const BACKOFF_INITIAL_MS = 250;
export const BACKOFF_MAX_MS = 10000;

/// The delay before reconnection attempt `attempt` (1 for the first): between half and all of
/// 250 ms * 2^(attempt-1), capped at 10 s, so that clients dropped together do not all come back at once.
export function backoffDelay(attempt, random) {
  const exponent = Math.min(Math.max(attempt - 1, 0), 20);
  const ceiling = Math.min(BACKOFF_INITIAL_MS * 2 ** exponent, BACKOFF_MAX_MS);
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

/// The page's clock; the tests pass a fake one with the same three functions.
const systemClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle),
};

// Login refusals (PROTOCOL.md section 8) and what each means for the next attempt.
const STOPS_FOR_GOOD = new Set(['AuthFailed', 'UnsupportedVersion', 'InvalidName']);
const REFUSED_FOR_NOW = new Set(['RateLimited', 'StoreUnavailable']);
const NODE_BUSY = new Set(['ServerBusy', 'ServerFull']);
// Refusals of one `Send` or `Post` that will never change: the message leaves the outbox, shown as failed.
// `NotAllowed` with an id: sent while muted, or to a moderated room without voice, an edit or a deletion of
// somebody else's message, or a reaction we already have (or, taken back, do not have); `UnknownMessage`: an
// edit, a deletion, a reply or a reaction about a message that is not there (or not one that may have them).
const REFUSED_FOR_GOOD = new Set(['InvalidText', 'NotMember', 'UnknownNick', 'NotAllowed', 'UnknownMessage']);

const OPEN = 1;

function checkedMessage(raw) {
  const fine =
    raw !== null &&
    typeof raw === 'object' &&
    Number.isSafeInteger(raw.seq) &&
    raw.seq > 0 &&
    wire.isCanonicalName(raw.from, wire.MAX_NICK_LENGTH) &&
    Number.isSafeInteger(raw.ts) &&
    typeof raw.text === 'string';
  if (!fine) throw new wire.ProtocolError('a message with missing or malformed fields');
  // `{ kind, of }`, and `added` for a reaction only.
  const kind = wire.readKind(raw.kind);
  if (kind.of !== null && kind.of >= raw.seq) throw new wire.ProtocolError(`message ${raw.seq} is about a later one, ${kind.of}`);
  return {
    conversation: wire.conversationKey(raw.conversation),
    seq: raw.seq,
    id: checkedId(raw.id),
    from: raw.from,
    ts: raw.ts,
    text: raw.text,
    ...kind,
    revision: wire.readRevision(raw.revision),
  };
}

/// The frame that sends an outbox entry: a text as `Send`, which means the same as a `Post` of kind Text.
function outboxFrame(entry) {
  if (entry.kind === 'Text') return wire.sendMessage(entry.id, entry.to, entry.text);
  return wire.post(entry.id, entry.to, entry.kind, entry.of, entry.text, entry.added);
}

/// A message id as the page writes them (lower-case hex): ids are compared as strings.
function checkedId(value) {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{32}$/.test(value)) throw new wire.ProtocolError('not a message id');
  return value.toLowerCase();
}

function checkedSeq(value) {
  if (!Number.isSafeInteger(value) || value < 0) throw new wire.ProtocolError(`not a seq: ${value}`);
  return value;
}

function checkedNames(list) {
  if (!Array.isArray(list) || !list.every((nick) => wire.isCanonicalName(nick, wire.MAX_NICK_LENGTH))) {
    throw new wire.ProtocolError('a list of names that are not nicknames');
  }
  return list;
}

function checkedRoom(room) {
  if (!wire.isCanonicalName(room, wire.MAX_ROOM_LENGTH)) throw new wire.ProtocolError('not a room name');
  return room;
}

function checkedNick(nick) {
  if (!wire.isCanonicalName(nick, wire.MAX_NICK_LENGTH)) throw new wire.ProtocolError('not a nickname');
  return nick;
}

/// Who did something in a room: a nickname, or null for the server's operator at its console.
function checkedBy(by) {
  return by === null ? null : checkedNick(by);
}

function checkedText(value, what) {
  if (typeof value !== 'string') throw new wire.ProtocolError(`${what} that is not a text`);
  return value;
}

function checkedFlag(value, what) {
  if (typeof value !== 'boolean') throw new wire.ProtocolError(`${what} that is not true or false`);
  return value;
}

function checkedRole(role) {
  if (!wire.ROLES.includes(role)) throw new wire.ProtocolError(`an unknown role ${role}`);
  return role;
}

function roomState(body) {
  return {
    key: wire.roomKey(checkedRoom(body.room)),
    topic: checkedText(body.topic, 'a topic'),
    inviteOnly: checkedFlag(body.invite_only, 'invite_only'),
    moderated: checkedFlag(body.moderated, 'moderated'),
    role: checkedRole(body.role),
    muted: checkedFlag(body.muted, 'muted'),
    operator: checkedFlag(body.operator, 'operator'),
  };
}

/// A `RoomChange` as `{ kind, nick, reason, role, text, on }`, with the fields its kind has.
function roomChange(change) {
  if (change === null || typeof change !== 'object' || Object.keys(change).length !== 1) {
    throw new wire.ProtocolError('not a room change');
  }
  const [kind] = Object.keys(change);
  const value = change[kind];
  const fields = () => {
    if (value === null || typeof value !== 'object') throw new wire.ProtocolError(`${kind} without its fields`);
    return value;
  };
  switch (kind) {
    case 'Kicked':
    case 'Banned':
    case 'Muted':
      return { kind, nick: checkedNick(fields().nick), reason: checkedText(value.reason, 'a reason') };
    case 'Unbanned':
    case 'Unmuted':
    case 'Invited':
      return { kind, nick: checkedNick(fields().nick) };
    case 'RoleSet':
      return { kind, nick: checkedNick(fields().nick), role: checkedRole(value.role) };
    case 'Topic':
      return { kind, text: checkedText(fields().text, 'a topic') };
    case 'InviteOnly':
    case 'Moderated':
      return { kind, on: checkedFlag(value, kind) };
    default:
      throw new wire.ProtocolError(`an unknown room change ${kind}`);
  }
}

/// One room of a `Rooms` listing.
function roomListing(listing) {
  if (listing === null || typeof listing !== 'object') throw new wire.ProtocolError('not a room listing');
  if (!Number.isSafeInteger(listing.members) || listing.members < 0) {
    throw new wire.ProtocolError(`not a number of members: ${listing.members}`);
  }
  return {
    room: checkedRoom(listing.room),
    members: listing.members,
    topic: checkedText(listing.topic, 'a topic'),
    inviteOnly: checkedFlag(listing.invite_only, 'invite_only'),
  };
}

/// The longest position a `Found` may give as `next` (PROTOCOL.md section 10.9).
const MAX_SEARCH_POSITION_BYTES = 64;

/// A page of search results, `{ query, key, hits, next }`: `key` the conversation searched (null: all of them), as
/// the request said it; `hits` messages as any delivery has them, newest first; `next` the position of the next
/// page, or null when there is nothing older to find.
function found(body) {
  if (!Array.isArray(body.hits)) throw new wire.ProtocolError('Found without hits');
  const { next } = body;
  const position = next === null || (typeof next === 'string' && new TextEncoder().encode(next).length <= MAX_SEARCH_POSITION_BYTES);
  if (!position) throw new wire.ProtocolError('Found with a malformed next position');
  return {
    query: checkedText(body.query, 'a query'),
    key: body.conversation === null ? null : wire.conversationKey(body.conversation),
    hits: body.hits.map(checkedMessage),
    next,
  };
}

function checkedOptionalMs(value, what) {
  if (value === null) return null;
  if (!Number.isSafeInteger(value) || value < 0) throw new wire.ProtocolError(`${what} that is not a time in milliseconds`);
  return value;
}

/// A `Whois` answer (`WhoisInfo`), in the page's names.
function whoisInfo(body) {
  if (!Array.isArray(body.rooms)) throw new wire.ProtocolError('Whois without rooms');
  return {
    nick: checkedNick(body.nick),
    registeredMs: checkedSeq(body.registered_ms),
    online: checkedFlag(body.online, 'online'),
    onlineSinceMs: checkedOptionalMs(body.online_since_ms, 'online_since_ms'),
    idleMs: checkedOptionalMs(body.idle_ms, 'idle_ms'),
    away: body.away === null ? null : checkedText(body.away, 'an away message'),
    rooms: body.rooms.map(checkedRoom),
  };
}

/// One `ReadMarker`: how far `nick` has read conversation `key`.
function readMarker(marker) {
  if (marker === null || typeof marker !== 'object') throw new wire.ProtocolError('not a read marker');
  return { key: wire.conversationKey(marker.conversation), nick: checkedNick(marker.nick), seq: checkedSeq(marker.seq) };
}

function conversationInfo(info) {
  if (info === null || typeof info !== 'object') throw new wire.ProtocolError('not a conversation info');
  return {
    key: wire.conversationKey(info.conversation),
    latestSeq: checkedSeq(info.latest_seq),
    firstSeq: checkedSeq(info.first_seq),
  };
}

export class Engine {
  /// `openSocket(url)` returns a WebSocket (or a fake with `send`, `close`, `readyState` and the `on…` handlers);
  /// `store` is an IndexedDbStore or MemoryStore; `onEvent(event)` hears everything the front end shows.
  constructor({ url, nick, password, store, openSocket, onEvent, clock = systemClock, random = Math.random, randomBytes }) {
    this.url = url;
    this.nick = nick;
    // Kept in memory only, for reconnections: never stored (PROTOCOL.md section 15).
    this.password = password;
    this.store = store;
    this.openSocket = openSocket;
    this.onEvent = onEvent;
    this.clock = clock;
    this.random = random;
    this.randomBytes = randomBytes ?? wire.cryptoRandomBytes;

    /// Typed messages not yet stored by the server, in the order typed.
    this.outbox = [];
    /// The next outbox entry's `order`.
    this.nextOrder = 1;
    /// Highest seq received per conversation key.
    this.cursors = new Map();
    /// Conversations whose cursor moved (and was saved) since the last `Ack`.
    this.unacknowledged = new Set();
    /// Ids the store could not take, to send again after STORE_RETRY_MS.
    this.refusedByStore = [];
    /// Outbox entries (from the front) sent on this connection, and those not yet answered.
    this.sentCount = 0;
    this.inFlight = 0;

    /// 'idle' before start, 'connecting' until Welcome, 'live', 'waiting' between attempts, 'stopped' for good.
    this.phase = 'idle';
    this.socket = null;
    /// Counts sockets, so that the events of one that was given up are ignored.
    this.generation = 0;
    this.heartbeatMs = DEFAULT_HEARTBEAT_MS;
    this.attempt = 0;
    this.connectStartedAt = 0;
    this.lastHeard = 0;
    this.lastSent = 0;
    this.pingNonce = 0;
    this.retryAt = 0;
    this.waitReason = '';
    this.timers = { tick: null, ack: null, storeRetry: null, countdown: null, reconnect: null };
    /// The protocol version of the connection: the newest the page knows, or the one before on the connection
    /// after a server refused the newest (see loginRefused); each new connection tries the newest again, as the
    /// node it reaches may have been upgraded meanwhile.
    this.version = wire.PROTOCOL_VERSION;
    this.olderNext = false;
    /// An away message set ('' for back) and not yet confirmed by the server's `Away` about us: sent on every
    /// connection until it is, so that one set while disconnected is not lost.
    this.awayToSend = null;
    /// Everything that touches the store runs in this chain, in order: frames, typed messages, closes.
    this.work = Promise.resolve();
  }

  /// Messages waiting in the outbox.
  get pending() {
    return this.outbox.length;
  }

  get live() {
    return this.phase === 'live';
  }

  /// Resolves once everything queued so far (frames, typed messages) has been handled.
  settled() {
    return this.work;
  }

  /// Loads what the store kept (shown at once, as `restored`), then connects.
  async start() {
    const saved = await this.store.load();
    this.outbox = saved.outbox;
    this.nextOrder = this.outbox.reduce((highest, entry) => Math.max(highest, entry.order), 0) + 1;
    this.cursors = saved.cursors;
    this.emit({
      type: 'restored',
      outbox: this.outbox.map((entry) => ({ ...entry })),
      messages: saved.messages,
      readMarkers: saved.readMarkers,
      cursors: new Map(this.cursors),
      preferences: saved.preferences,
    });
    this.connect();
  }

  /// Puts a message in the outbox (stored first), then sends it if the window has room. Resolves to the entry.
  /// `kind`, `of` and `added` as `wire.post` takes them: an action, or an edit, a deletion, a reply or a reaction
  /// (`added` or taken back, kept in the entry of a reaction only) about message `of`.
  send(key, text, kind = 'Text', of = null, added = null) {
    const entry = {
      order: this.nextOrder,
      id: wire.makeMessageId(this.clock.now(), this.randomBytes),
      to: key,
      kind,
      of,
      text,
      typedAt: this.clock.now(),
      ...(kind === 'Reaction' ? { added } : {}),
    };
    this.nextOrder += 1;
    return this.enqueue(async () => {
      try {
        await this.store.addToOutbox(entry);
      } catch (error) {
        this.emit({
          type: 'error',
          code: null,
          message: `could not save a message in this browser (${error.message}); it is kept in this page only`,
          id: null,
        });
      }
      if (this.phase === 'stopped') return;
      this.outbox.push(entry);
      this.emit({ type: 'queued', entry: { ...entry } });
      this.fillWindow();
    }).then(() => entry);
  }

  /// Requests other than messages: sent only while connected (false otherwise, for the front end to say so).
  join(room) {
    return this.request(wire.join(room));
  }

  leave(room) {
    return this.request(wire.leave(room));
  }

  requestUsers(room) {
    return this.request(wire.users(room));
  }

  requestHistory(key, before, limit) {
    return this.request(wire.history(key, before, limit));
  }

  /// A moderator's `action` in `room`: not kept for later like a message, since what it acts on may have
  /// changed by the time the connection is back.
  moderate(room, action) {
    return this.request(wire.moderate(room, action));
  }

  /// The rooms after `after` by name ('' for the first ones): a look at the moment, not worth keeping for a
  /// connection that comes back later.
  listRooms(after, limit) {
    return this.request(wire.listRooms(after, limit));
  }

  /// A page of a search (see wire.search): asked for now or not at all, like the rooms' listing; its answer is a
  /// look at the moment, neither stored nor taken as a delivery.
  search(query, key, before, limit) {
    return this.request(wire.search(query, key, before, limit));
  }

  /// Whether the server knows away messages, /whois, typing notices and read markers (protocol version 6).
  get aware() {
    return this.version >= wire.AWARENESS_VERSION;
  }

  /// Sets the away message ('' for back): sent now when connected, else once connected, until the server's
  /// `Away` about us confirms it. Nothing is kept for a server that does not know away messages.
  setAway(message) {
    if (!this.aware) return;
    this.awayToSend = message;
    if (this.live) this.transmit(wire.setAway(message));
  }

  /// Asks what the server knows of `nick`: now or not at all.
  whois(nick) {
    return this.aware && this.request(wire.whois(nick));
  }

  /// Says that the user is typing in `key`, or stopped: now or never (it would be stale by the time a connection
  /// is back), and not to a server that does not know it.
  typing(key, isTyping) {
    return this.aware && this.request(wire.typing(key, isTyping));
  }

  /// Moves the user's read marker of `key` to `seq` on the server: now or not at all (the model sends it again
  /// once connected when the server's is lower).
  markRead(key, seq) {
    return this.aware && this.request(wire.markRead(key, seq));
  }

  /// The highest seq received of a conversation (0 when none).
  cursor(key) {
    return this.cursors.get(key) ?? 0;
  }

  /// While waiting to reconnect: try at once.
  retryNow() {
    if (this.phase !== 'waiting') return;
    this.clearTimer('reconnect');
    this.clearTimer('countdown');
    this.connect();
  }

  /// Signs out: says `Bye`, closes, and stops for good. What waits in the outbox stays stored for next time.
  quit() {
    if (this.phase === 'stopped') return;
    if (this.socket !== null && this.socket.readyState === OPEN) this.socket.send(wire.BYE);
    this.stop('signed out', { passwordRefused: false, signedOut: true });
  }

  // ---- connecting and the connection's life

  connect() {
    this.phase = 'connecting';
    this.generation += 1;
    const generation = this.generation;
    this.connectStartedAt = this.clock.now();
    this.lastHeard = this.connectStartedAt;
    this.emit({ type: 'status', state: 'connecting', attempt: this.attempt, pending: this.pending });
    let socket;
    try {
      socket = this.openSocket(this.url);
    } catch (error) {
      this.connectionLost(`cannot open a connection: ${error.message}`);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (generation !== this.generation) return;
      this.lastHeard = this.clock.now();
      this.version = this.olderNext ? wire.PREVIOUS_VERSION : wire.PROTOCOL_VERSION;
      this.olderNext = false;
      this.transmit(wire.hello(this.nick, this.password, [...this.cursors].filter(([, seq]) => seq > 0), this.version));
    };
    socket.onmessage = (event) => {
      if (generation !== this.generation) return;
      this.lastHeard = this.clock.now();
      this.enqueue(() => this.onFrame(generation, event.data));
    };
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      const why = event && event.reason ? `: ${event.reason}` : '';
      this.enqueue(async () => {
        if (generation === this.generation) this.connectionLost(`the connection was closed${why}`);
      });
    };
    // An error is always followed by a close, which says what happens next.
    socket.onerror = () => {};
    this.scheduleTick();
  }

  /// Checks the connection's life every half heartbeat: silence, the login deadline, and our own pings.
  scheduleTick() {
    this.clearTimer('tick');
    this.timers.tick = this.clock.setTimeout(() => {
      this.timers.tick = null;
      this.onTick();
    }, Math.max(100, Math.floor(this.heartbeatMs / 2)));
  }

  onTick() {
    if (this.phase !== 'connecting' && this.phase !== 'live') return;
    const now = this.clock.now();
    const deadAfter = this.heartbeatMs * MISSED_HEARTBEATS;
    if (now - this.lastHeard > deadAfter) {
      this.dropConnection(`no sign of the server for ${Math.round(deadAfter / 1000)} s`);
      return;
    }
    if (this.phase === 'connecting' && now - this.connectStartedAt > LOGIN_DEADLINE_MS) {
      this.dropConnection('the login was not answered within 60 s');
      return;
    }
    // A client that only listens is taken for dead: ping when nothing else was sent for an interval.
    if (this.phase === 'live' && now - this.lastSent >= this.heartbeatMs) {
      this.pingNonce += 1;
      this.transmit(wire.ping(this.pingNonce));
    }
    this.scheduleTick();
  }

  /// Gives up on the current socket (its later events are ignored) and reconnects after the backoff.
  dropConnection(reason, wait = null) {
    const socket = this.socket;
    this.generation += 1;
    this.socket = null;
    if (socket !== null) {
      try {
        socket.close();
      } catch {
        // Closing a socket that is already closing cannot fail in a way that matters: it is dropped anyway.
      }
    }
    this.connectionLost(reason, wait);
  }

  /// The connection ended (or never came up): wait, then try again. `wait` is a time the server named.
  connectionLost(reason, wait = null) {
    if (this.phase === 'stopped') return;
    this.socket = null;
    this.generation += 1;
    this.clearTimer('tick');
    this.clearTimer('ack');
    this.clearTimer('storeRetry');
    this.attempt += 1;
    // A named wait gets the jitter of a first retry on top, so that clients told the same time do not all come
    // back at once.
    const delay = wait !== null ? wait + backoffDelay(1, this.random) : backoffDelay(this.attempt, this.random);
    this.phase = 'waiting';
    this.waitReason = reason;
    this.retryAt = this.clock.now() + delay;
    this.timers.reconnect = this.clock.setTimeout(() => {
      this.timers.reconnect = null;
      this.clearTimer('countdown');
      this.connect();
    }, delay);
    this.countdown();
  }

  /// Says how long until the next attempt, again at each whole second, for the front end's banner.
  countdown() {
    this.clearTimer('countdown');
    if (this.phase !== 'waiting') return;
    const remaining = Math.max(0, this.retryAt - this.clock.now());
    this.emit({
      type: 'status',
      state: 'waiting',
      reason: this.waitReason,
      attempt: this.attempt,
      remainingSeconds: Math.ceil(remaining / 1000),
      pending: this.pending,
    });
    const untilNextSecond = remaining % 1000 === 0 ? 1000 : remaining % 1000;
    if (remaining > untilNextSecond) {
      this.timers.countdown = this.clock.setTimeout(() => this.countdown(), untilNextSecond);
    }
  }

  stop(reason, { passwordRefused, signedOut, code = null }) {
    this.phase = 'stopped';
    const socket = this.socket;
    this.socket = null;
    this.generation += 1;
    for (const name of Object.keys(this.timers)) this.clearTimer(name);
    if (socket !== null) {
      try {
        socket.close();
      } catch {
        // Already closing: nothing more to do with it.
      }
    }
    this.password = '';
    this.emit({ type: 'status', state: 'stopped', reason, code, passwordRefused, signedOut, pending: this.pending });
  }

  clearTimer(name) {
    if (this.timers[name] !== null) {
      this.clock.clearTimeout(this.timers[name]);
      this.timers[name] = null;
    }
  }

  transmit(text) {
    if (this.socket === null || this.socket.readyState !== OPEN) return false;
    this.socket.send(text);
    this.lastSent = this.clock.now();
    return true;
  }

  request(frame) {
    if (!this.live) return false;
    return this.transmit(frame);
  }

  enqueue(step) {
    const run = this.work.then(step);
    // A failed step is reported and does not stop the steps after it.
    this.work = run.catch((error) => this.emit({ type: 'error', code: null, message: error.message, id: null }));
    return run;
  }

  emit(event) {
    this.onEvent(event);
  }

  // ---- frames from the server

  async onFrame(generation, data) {
    if (generation !== this.generation || this.phase === 'stopped') return;
    if (typeof data !== 'string') {
      this.dropConnection('the server sent a binary frame');
      return;
    }
    let frame;
    try {
      frame = wire.readServerMessage(data);
      if (this.phase === 'connecting') {
        await this.onLoginAnswer(frame);
      } else {
        await this.onLiveFrame(frame);
      }
    } catch (error) {
      if (!(error instanceof wire.ProtocolError)) throw error;
      // A frame we could not read might have been a delivery: resume from the cursors on a new connection.
      if (generation === this.generation) this.dropConnection(`the server sent a broken frame (${error.message})`);
    }
  }

  /// The first answer to `Hello` that is not a `Ping`: `Welcome`, or a refusal (PROTOCOL.md section 9).
  async onLoginAnswer({ kind, body }) {
    switch (kind) {
      case 'Ping':
        this.transmit(wire.pong(checkedSeq(body.nonce)));
        return;
      case 'Pong':
        return;
      case 'Welcome':
        await this.welcomed(body);
        return;
      case 'Error':
        this.loginRefused(body);
        return;
      case 'ShuttingDown':
        this.emit({ type: 'shuttingDown', message: String(body.message) });
        this.dropConnection(`the server is shutting down: ${body.message}`);
        return;
      default:
        throw new wire.ProtocolError(`${kind} before Welcome`);
    }
  }

  loginRefused(body) {
    const code = String(body.code);
    const message = String(body.message);
    if (code === 'UnsupportedVersion' && this.version > wire.PREVIOUS_VERSION) {
      // A server that does not know this page's newest version yet: the previous one at once, without what the
      // newest added.
      this.olderNext = true;
      this.awayToSend = null;
      const socket = this.socket;
      this.generation += 1;
      this.socket = null;
      try {
        socket?.close();
      } catch {
        // Closing it cannot fail in a way that matters: it is dropped anyway.
      }
      this.connect();
      return;
    }
    if (STOPS_FOR_GOOD.has(code)) {
      this.stop(`login refused: ${message}`, { passwordRefused: code === 'AuthFailed', signedOut: false, code });
      return;
    }
    const named = wire.retryAfterMs(message);
    this.emit({ type: 'loginRefused', code, message });
    if (REFUSED_FOR_NOW.has(code) || NODE_BUSY.has(code)) {
      this.dropConnection(`the server refused the login for now: ${message}`, named);
    } else {
      this.dropConnection(`the server refused the login: ${message}`);
    }
  }

  async welcomed(body) {
    if (body.version !== this.version || !Number.isSafeInteger(body.heartbeat_ms) || body.heartbeat_ms < 1) {
      throw new wire.ProtocolError('a Welcome of another version');
    }
    const conversations = (Array.isArray(body.conversations) ? body.conversations : []).map(conversationInfo);
    for (const info of conversations) await this.rewindIfAhead(info);
    this.phase = 'live';
    this.heartbeatMs = body.heartbeat_ms;
    this.attempt = 0;
    this.refusedByStore = [];
    this.sentCount = 0;
    this.inFlight = 0;
    this.emit({
      type: 'welcome',
      nick: String(body.nick),
      registered: body.registered === true,
      heartbeatMs: this.heartbeatMs,
      version: this.version,
      conversations,
    });
    this.emit({ type: 'status', state: 'live', pending: this.pending });
    this.scheduleTick();
    if (this.aware && this.awayToSend !== null) this.transmit(wire.setAway(this.awayToSend));
    this.fillWindow();
    // Cursors that moved on the last connection and were not acknowledged before it ended.
    this.markForAck([]);
  }

  async onLiveFrame({ kind, body }) {
    switch (kind) {
      case 'Messages':
        if (!Array.isArray(body)) throw new wire.ProtocolError('Messages without a list');
        await this.delivered(body.map(checkedMessage));
        break;
      case 'Accepted':
        await this.accepted([
          { id: checkedId(body.id), key: wire.conversationKey(body.conversation), seq: checkedSeq(body.seq), ts: checkedSeq(body.ts) },
        ]);
        break;
      case 'Error':
        await this.onError(body);
        break;
      case 'Gap': {
        const key = wire.conversationKey(body.conversation);
        const completeFrom = checkedSeq(body.complete_from);
        const cursor = Math.max(this.cursor(key), completeFrom - 1);
        this.cursors.set(key, cursor);
        await this.saveDelivery(new Map([[key, cursor]]), []);
        this.markForAck([key]);
        this.emit({ type: 'gap', key, completeFrom });
        break;
      }
      case 'Joined': {
        const info = conversationInfo(body.info);
        await this.rewindIfAhead(info);
        this.emit({ type: 'joined', ...info });
        break;
      }
      case 'Left': {
        const key = wire.roomKey(checkedRoom(body.room));
        await this.forget(key);
        this.emit({ type: 'left', key });
        break;
      }
      case 'Closed': {
        const key = wire.conversationKey(body.conversation);
        await this.forget(key);
        this.emit({ type: 'closed', key, reason: String(body.reason) });
        break;
      }
      case 'Presence':
        if (!['Joined', 'Left', 'Online', 'Offline'].includes(body.state)) {
          throw new wire.ProtocolError('an unknown presence state');
        }
        checkedNames([body.nick]);
        this.emit({ type: 'presence', room: checkedRoom(body.room), nick: body.nick, state: body.state });
        break;
      case 'Users':
        this.emit({
          type: 'users',
          room: checkedRoom(body.room),
          online: checkedNames(body.online),
          offline: checkedNames(body.offline),
        });
        break;
      case 'History': {
        if (!Array.isArray(body.messages)) throw new wire.ProtocolError('a History page without messages');
        this.emit({
          type: 'history',
          key: wire.conversationKey(body.conversation),
          messages: body.messages.map(checkedMessage),
          completeFrom: checkedSeq(body.complete_from),
        });
        break;
      }
      case 'RoomState':
        this.emit({ type: 'roomState', ...roomState(body) });
        break;
      case 'RoomEvent':
        this.emit({
          type: 'roomEvent',
          key: wire.roomKey(checkedRoom(body.room)),
          by: checkedBy(body.by),
          change: roomChange(body.change),
        });
        break;
      case 'Invited':
        this.emit({ type: 'invited', room: checkedRoom(body.room), by: checkedBy(body.by) });
        break;
      case 'Rooms':
        if (!Array.isArray(body.rooms)) throw new wire.ProtocolError('Rooms without a list');
        checkedFlag(body.more, 'more');
        // The next page is asked for after the last room: with none, there is nothing to ask from.
        if (body.more && body.rooms.length === 0) throw new wire.ProtocolError('more rooms after none');
        this.emit({ type: 'rooms', rooms: body.rooms.map(roomListing), more: body.more });
        break;
      case 'Found':
        this.emit({ type: 'found', ...found(body) });
        break;
      case 'Away': {
        const nick = checkedNick(body.nick);
        const message = body.message === null ? null : checkedText(body.message, 'an away message');
        if (nick === this.nick && this.awayToSend === (message ?? '')) this.awayToSend = null;
        this.emit({ type: 'away', nick, message });
        break;
      }
      case 'Whois':
        this.emit({ type: 'whois', ...whoisInfo(body) });
        break;
      case 'Typing':
        this.emit({
          type: 'typing',
          key: wire.conversationKey(body.conversation),
          nick: checkedNick(body.nick),
          typing: checkedFlag(body.typing, 'typing'),
        });
        break;
      case 'ReadMarkers':
        if (!Array.isArray(body.markers)) throw new wire.ProtocolError('ReadMarkers without a list');
        this.emit({ type: 'readMarkers', markers: body.markers.map(readMarker) });
        break;
      case 'Ping':
        this.transmit(wire.pong(checkedSeq(body.nonce)));
        break;
      case 'Pong':
      case 'Welcome':
        break;
      case 'ShuttingDown':
        this.emit({ type: 'shuttingDown', message: String(body.message) });
        this.dropConnection(`the server is shutting down: ${body.message}`);
        break;
      default:
        throw new wire.ProtocolError(`an unknown message ${kind}`);
    }
  }

  /// Shows each message once: deliveries at or below the conversation's cursor were shown before. The new cursors
  /// and messages are stored before they are shown or acknowledged, so a reload never shows a message twice
  /// and never skips one.
  async delivered(messages) {
    const fresh = [];
    const moved = new Map();
    const ownAccepted = [];
    for (const message of messages) {
      if (message.seq <= this.cursor(message.conversation)) continue;
      this.cursors.set(message.conversation, message.seq);
      moved.set(message.conversation, message.seq);
      fresh.push(message);
      if (message.from === this.nick) {
        ownAccepted.push({ id: message.id, key: message.conversation, seq: message.seq, ts: message.ts });
      }
    }
    if (fresh.length === 0) return;
    await this.saveDelivery(moved, fresh);
    this.markForAck(moved.keys());
    // Our own message delivered back is stored, whether or not its `Accepted` came first (another device's, too).
    await this.accepted(ownAccepted);
    this.emit({ type: 'messages', messages: fresh });
  }

  /// The server never ends a conversation before a message it delivered, unless its store went back in time
  /// (restored from an older backup): then it gives the seqs after its end to new messages, which we would drop as
  /// ones we have. So our position goes back to its end, and what we kept past it goes (PROTOCOL.md section 12).
  async rewindIfAhead({ key, latestSeq }) {
    const had = this.cursor(key);
    if (had <= latestSeq) return;
    this.cursors.set(key, latestSeq);
    try {
      await this.store.rewind(key, latestSeq);
    } catch (error) {
      this.emit({ type: 'error', code: null, message: `could not save a position in this browser: ${error.message}`, id: null });
    }
    this.emit({ type: 'rewound', key, latestSeq, had });
  }

  async saveDelivery(cursors, messages) {
    try {
      await this.store.saveDelivery(cursors, messages);
    } catch (error) {
      this.emit({ type: 'error', code: null, message: `could not save received messages in this browser: ${error.message}`, id: null });
    }
  }

  /// Takes stored messages out of the outbox (those no longer in it were taken before) and says so.
  async accepted(acceptances) {
    const taken = acceptances.filter((acceptance) => this.takeFromOutbox(acceptance.id) !== null);
    if (taken.length === 0) return;
    await this.removeStored(taken.map((acceptance) => acceptance.id));
    for (const acceptance of taken) this.emit({ type: 'accepted', ...acceptance });
    this.fillWindow();
  }

  async onError(body) {
    const code = String(body.code);
    const message = String(body.message);
    const id = body.id === null || body.id === undefined ? null : checkedId(body.id);
    if (code === 'AuthFailed') {
      // The account was removed while we were logged in: logging in again would register the nickname anew, as
      // somebody else.
      this.stop(`logged out: ${message}`, { passwordRefused: true, signedOut: false });
      return;
    }
    if (code === 'StoreUnavailable' && id !== null) {
      this.inFlight = Math.max(0, this.inFlight - 1);
      this.refusedByStore.push(id);
      if (this.timers.storeRetry === null) {
        this.timers.storeRetry = this.clock.setTimeout(() => {
          this.timers.storeRetry = null;
          this.resendRefused();
        }, STORE_RETRY_MS);
      }
    } else if (REFUSED_FOR_GOOD.has(code) && id !== null) {
      const entry = this.takeFromOutbox(id);
      if (entry !== null) {
        await this.removeStored([id]);
        // The kind says what was refused: a message, an edit or a deletion.
        this.emit({ type: 'refused', id, code, message, kind: entry.kind });
        this.fillWindow();
        return;
      }
    }
    this.emit({ type: 'error', code, message, id });
  }

  /// Sends again, oldest first, what the store could not take: the server refuses every later message of the
  /// connection until the first refused one comes again (PROTOCOL.md 10.1).
  resendRefused() {
    if (!this.live) return;
    const refused = new Set(this.refusedByStore);
    this.refusedByStore = [];
    for (const entry of this.outbox) {
      if (refused.has(entry.id)) {
        this.transmit(outboxFrame(entry));
        this.inFlight += 1;
      }
    }
  }

  /// Sends outbox entries not yet sent on this connection, keeping at most SEND_WINDOW unanswered.
  fillWindow() {
    while (this.live && this.inFlight < SEND_WINDOW && this.sentCount < this.outbox.length) {
      const entry = this.outbox[this.sentCount];
      if (!this.transmit(outboxFrame(entry))) return;
      this.sentCount += 1;
      this.inFlight += 1;
    }
  }

  /// The entry of `id`, out of the outbox; null when it is not there (taken before).
  takeFromOutbox(id) {
    const index = this.outbox.findIndex((entry) => entry.id === id);
    if (index < 0) return null;
    const [entry] = this.outbox.splice(index, 1);
    if (index < this.sentCount) {
      this.sentCount -= 1;
      this.inFlight = Math.max(0, this.inFlight - 1);
    }
    return entry;
  }

  async removeStored(ids) {
    try {
      await this.store.removeFromOutbox(ids);
    } catch (error) {
      this.emit({ type: 'error', code: null, message: `could not update the outbox in this browser: ${error.message}`, id: null });
    }
  }

  /// Drops what we keep of a conversation we are no longer in: its cursor, here and in the store.
  async forget(key) {
    this.cursors.delete(key);
    this.unacknowledged.delete(key);
    try {
      await this.store.forget(key);
    } catch (error) {
      this.emit({ type: 'error', code: null, message: `could not forget ${key} in this browser: ${error.message}`, id: null });
    }
  }

  /// Acknowledges moved cursors together, ACK_DELAY_MS after the first moved (Ack is cumulative).
  markForAck(keys) {
    for (const key of keys) this.unacknowledged.add(key);
    if (this.unacknowledged.size === 0 || this.timers.ack !== null) return;
    this.timers.ack = this.clock.setTimeout(() => {
      this.timers.ack = null;
      this.flushAcks();
    }, ACK_DELAY_MS);
  }

  flushAcks() {
    if (!this.live) return;
    for (const key of this.unacknowledged) {
      if (this.cursors.has(key)) this.transmit(wire.ack(key, this.cursors.get(key)));
    }
    this.unacknowledged.clear();
  }
}
