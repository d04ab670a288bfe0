// The wire vocabulary of PROTOCOL.md section 15: the JSON form of every client message, the reading of server
// messages, message ids, conversation keys, and the checks on names and texts that the server applies too (so
// that a mistake is said before anything is sent). No DOM, no socket, no clock of its own.

/// Version 2 added room moderation (`Moderate`, `RoomState`, `RoomEvent`, `Invited`, `NotAllowed`, `Banned`) and
/// the rooms' listing (`ListRooms`, `Rooms`); version 3 kinds of messages (`Post`, a message's `kind` and
/// `revision`, `UnknownMessage`): actions, edits and deletions; version 4 replies and reactions; version 5 search
/// (`Search`, `Found`); version 6 knowing who is there (`SetAway`, `Whois`, `Typing`, `MarkRead`; `Away`, `Whois`,
/// `Typing`, `ReadMarkers`). The page speaks the newest it knows; a server that refuses it with
/// `UnsupportedVersion` is spoken to in PREVIOUS_VERSION instead (engine.js), without what version 6 added; one
/// that refuses that too is older than the page, which app.js explains.
export const PROTOCOL_VERSION = 6;
/// The version the page steps down to for a server that does not know PROTOCOL_VERSION yet.
export const PREVIOUS_VERSION = 5;
/// The version that has away messages, /whois, typing notices and read markers.
export const AWARENESS_VERSION = 6;

/// Longest away message, in bytes of UTF-8 (crates/proto/src/awareness.rs).
export const MAX_AWAY_BYTES = 200;
/// While the user keeps typing, `Typing { typing: true }` is said again at most this often.
export const TYPING_RENEW_MS = 3000;
/// Someone is shown typing for this long after their last notice, unless they stop or send first.
export const TYPING_SHOWN_MS = 6000;

/// The longest nickname and room name, and message text in bytes of UTF-8 (PROTOCOL.md section 5).
export const MAX_NICK_LENGTH = 32;
export const MAX_ROOM_LENGTH = 64;
const MAX_TEXT_BYTES = 8 * 1024;
/// The longest reason of a deletion, in bytes (crates/server/src/moderation.rs).
const MAX_REASON_BYTES = 512;

/// The room every account is a member of and cannot leave.
export const LOBBY = 'lobby';

/// A member's standing in a room, from least to most (crates/proto/src/moderation.rs).
export const ROLES = ['Member', 'Voice', 'Moderator', 'Owner'];

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/// The eight reactions a message may get, in the order they are shown, each with the name a command may use
/// (PROTOCOL.md section 10.8): a reaction's text is exactly one of these emoji.
export const REACTIONS = [
  { emoji: '👍', name: '+1' },
  { emoji: '👎', name: '-1' },
  { emoji: '\u2764\ufe0f', name: 'heart' },
  { emoji: '😂', name: 'joy' },
  { emoji: '😮', name: 'open_mouth' },
  { emoji: '😢', name: 'cry' },
  { emoji: '🎉', name: 'tada' },
  { emoji: '👀', name: 'eyes' },
];

/// The reaction emoji that `word` names: the emoji itself, its name (`heart`, `:heart:`), or a heart typed
/// without its variation selector (U+2764 alone, as many keyboards give it); null when it names none.
export function reactionEmoji(word) {
  const trimmed = word.trim();
  const bare = /^:[^:\s]+:$/.test(trimmed) ? trimmed.slice(1, -1) : trimmed;
  const name = bare.toLowerCase();
  const found = REACTIONS.find((reaction) => reaction.emoji === bare || reaction.name === name);
  if (found !== undefined) return found.emoji;
  return bare === '\u2764' ? REACTIONS[2].emoji : null;
}

/// Random bytes from the platform's cryptographic generator (ids must not collide between a user's devices).
export function cryptoRandomBytes(count) {
  return globalThis.crypto.getRandomValues(new Uint8Array(count));
}

/// A time-ordered message id as 32 hex digits: the milliseconds since the epoch in 6 big-endian bytes, then 10
/// random bytes, like the native client's (the server's id index takes increasing ids at its end).
export function makeMessageId(nowMs, randomBytes = cryptoRandomBytes) {
  const bytes = new Uint8Array(16);
  let ms = Math.max(0, Math.floor(nowMs));
  for (let index = 5; index >= 0; index -= 1) {
    bytes[index] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes.set(randomBytes(10).subarray(0, 10), 6);
  return Array.from(bytes, (byte) => HEX[byte]).join('');
}

/// Whether `name` is a canonical nickname or room name: 1..max bytes of `[a-z][a-z0-9_-]*`.
export function isCanonicalName(name, max) {
  return typeof name === 'string' && name.length >= 1 && name.length <= max && /^[a-z][a-z0-9_-]*$/.test(name);
}

/// A nickname or room name as typed, made canonical the way the server does (trimmed, lower-cased; one leading
/// `#` stripped from a room), or an error that says what is wrong, in the native clients' words.
function parseName(raw, kind, max) {
  const name = raw.trim().toLowerCase();
  if (name.length === 0) return { error: `${kind} must not be empty` };
  if (name.length > max) return { error: `${kind} is longer than ${max} characters` };
  if (!isCanonicalName(name, max)) {
    return { error: `${kind} may only contain letters a-z, digits, '-' and '_', and must start with a letter` };
  }
  return { name };
}

export function parseNick(raw) {
  return parseName(raw, 'nickname', MAX_NICK_LENGTH);
}

export function parseRoom(raw) {
  const trimmed = raw.trim();
  return parseName(trimmed.startsWith('#') ? trimmed.slice(1) : trimmed, 'room name', MAX_ROOM_LENGTH);
}

/// Why the server would refuse `text` as a message (PROTOCOL.md section 5), or null when it is acceptable.
export function textProblem(text) {
  if (text.trim().length === 0) return 'message text is only white space';
  if (new TextEncoder().encode(text).length > MAX_TEXT_BYTES) {
    return `message text is longer than ${MAX_TEXT_BYTES} characters`;
  }
  for (const character of text) {
    const code = character.codePointAt(0);
    const control = (code < 0x20 && code !== 0x0a && code !== 0x09) || (code >= 0x7f && code <= 0x9f);
    const bidi = (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069);
    if (control || bidi) return 'message text contains a control character (only tab and newline are allowed)';
  }
  return null;
}

/// Why the server would refuse `reason` as a deletion's reason (one short line; empty is fine), or null.
export function reasonProblem(reason) {
  if (new TextEncoder().encode(reason).length > MAX_REASON_BYTES) return `a reason is at most ${MAX_REASON_BYTES} bytes`;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(reason)) return 'a reason is one line of text, without control characters';
  return null;
}

/// Most words one search has, and its longest query in bytes of UTF-8 (PROTOCOL.md section 10.9).
export const MAX_SEARCH_WORDS = 8;
const MAX_SEARCH_BYTES = 256;

/// The words a search looks for, as the server reads `query`: split at every character that is not a letter or a
/// digit, lower-cased, each once, in the order typed.
export function searchWords(query) {
  const words = query.split(/[^\p{L}\p{N}]+/u).filter((word) => word !== '').map((word) => word.toLowerCase());
  return [...new Set(words)];
}

/// Why the server would refuse `query` as a search, in its words (crates/proto/src/search.rs), or null when it is
/// acceptable.
export function searchProblem(query) {
  if (new TextEncoder().encode(query).length > MAX_SEARCH_BYTES) return `a search is at most ${MAX_SEARCH_BYTES} bytes long`;
  const count = searchWords(query).length;
  if (count === 0) return 'search for at least one word';
  if (count > MAX_SEARCH_WORDS) return `search for at most ${MAX_SEARCH_WORDS} words`;
  return null;
}

/// The away message `typed` sets, as the server reads it (crates/proto/src/awareness.rs `away_message`): trimmed,
/// `{ message }` with null for none left (back), or `{ error }` in the server's words.
export function awayMessage(typed) {
  const message = typed.trim();
  if (new TextEncoder().encode(message).length > MAX_AWAY_BYTES) return { error: `an away message is at most ${MAX_AWAY_BYTES} bytes long` };
  if (/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(message)) {
    return { error: 'an away message is one line, without control characters' };
  }
  return { message: message === '' ? null : message };
}

/// Whether `text` mentions `nick` as a word, as the native clients judge it (case aside).
export function mentions(text, nick) {
  return text.split(/[^A-Za-z0-9_-]/).some((word) => word.toLowerCase() === nick);
}

/// The wait in a refusal that ends "try again in N s" (PROTOCOL.md section 8), in milliseconds, at most an hour;
/// null when the message names none.
export function retryAfterMs(message) {
  const at = message.lastIndexOf('try again in ');
  if (at < 0) return null;
  const match = /^(\d+)(\s|$)/.exec(message.slice(at + 'try again in '.length));
  if (match === null) return null;
  return Math.min(Number(match[1]), 3600) * 1000;
}

// Conversations: the wire form is `{"Room":"x"}` / `{"Direct":"x"}`; everywhere else the client keys them by
// their display form, `#x` / `@x`, which is a plain string a Map and IndexedDB can index.

export function conversationKey(conversation) {
  if (conversation !== null && typeof conversation === 'object') {
    if (typeof conversation.Room === 'string' && isCanonicalName(conversation.Room, MAX_ROOM_LENGTH)) {
      return `#${conversation.Room}`;
    }
    if (typeof conversation.Direct === 'string' && isCanonicalName(conversation.Direct, MAX_NICK_LENGTH)) {
      return `@${conversation.Direct}`;
    }
  }
  throw new ProtocolError(`not a conversation: ${JSON.stringify(conversation)}`);
}

export function conversationFromKey(key) {
  const name = key.slice(1);
  if (key.startsWith('#') && isCanonicalName(name, MAX_ROOM_LENGTH)) return { Room: name };
  if (key.startsWith('@') && isCanonicalName(name, MAX_NICK_LENGTH)) return { Direct: name };
  throw new ProtocolError(`not a conversation key: ${key}`);
}

export function roomKey(room) {
  return `#${room}`;
}

export function isRoomKey(key) {
  return key.startsWith('#');
}

/// A frame from the server that is not what PROTOCOL.md says: the connection is not trusted further (section 13).
export class ProtocolError extends Error {}

// Client messages, as JSON text ready for `WebSocket.send`.

export function hello(nick, password, positions, version = PROTOCOL_VERSION) {
  const list = [...positions].map(([key, seq]) => ({ conversation: conversationFromKey(key), seq }));
  return JSON.stringify({ Hello: { version, nick, password, positions: list } });
}

export function sendMessage(id, key, text) {
  return JSON.stringify({ Send: { id, to: conversationFromKey(key), text } });
}

/// A log entry of any kind: `kind` is 'Text', 'Action', 'Edit', 'Deletion', 'Reply' or 'Reaction', the last four
/// about message `of` (the new text, the reason of the deletion, the reply, or the reaction's emoji in `text`); a
/// reaction is `added`, or taken back.
export function post(id, key, kind, of, text, added = null) {
  let wireKind = kind;
  if (kind === 'Reaction') wireKind = { Reaction: { of, added } };
  else if (kind === 'Edit' || kind === 'Deletion' || kind === 'Reply') wireKind = { [kind]: { of } };
  return JSON.stringify({ Post: { id, to: conversationFromKey(key), kind: wireKind, text } });
}

export function ack(key, seq) {
  return JSON.stringify({ Ack: { conversation: conversationFromKey(key), seq } });
}

export function join(room) {
  return JSON.stringify({ Join: { room } });
}

export function leave(room) {
  return JSON.stringify({ Leave: { room } });
}

export function users(room) {
  return JSON.stringify({ Users: { room } });
}

export function history(key, before, limit) {
  return JSON.stringify({ History: { conversation: conversationFromKey(key), before, limit } });
}

/// `action` is a `RoomAction` in its JSON form, as commands.js reads it from a slash command.
export function moderate(room, action) {
  return JSON.stringify({ Moderate: { room, action } });
}

/// The rooms after `after` by name ('' for the first ones), at most `limit` of them.
export function listRooms(after, limit) {
  return JSON.stringify({ ListRooms: { after, limit } });
}

/// A search for `query` in every conversation (`key` null) or in conversation `key`, newest first: the first
/// page (`before` null), or the one after the position a `Found` gave as `next`.
export function search(query, key, before, limit) {
  const conversation = key === null ? null : conversationFromKey(key);
  return JSON.stringify({ Search: { query, conversation, before, limit } });
}

/// The away message to show from now on ('' for none: back), kept by the server for every device (version 6).
export function setAway(message) {
  return JSON.stringify({ SetAway: { message } });
}

/// What anyone may know of account `nick` (version 6).
export function whois(nick) {
  return JSON.stringify({ Whois: { nick } });
}

/// The user is typing in conversation `key` (`typing` true), or stopped (version 6).
export function typing(key, isTyping) {
  return JSON.stringify({ Typing: { conversation: conversationFromKey(key), typing: isTyping } });
}

/// Everything up to `seq` of conversation `key` was on the user's screen (version 6).
export function markRead(key, seq) {
  return JSON.stringify({ MarkRead: { conversation: conversationFromKey(key), seq } });
}

export function ping(nonce) {
  return JSON.stringify({ Ping: { nonce } });
}

export function pong(nonce) {
  return JSON.stringify({ Pong: { nonce } });
}

export const BYE = JSON.stringify('Bye');

/// A message's `kind` as `{ kind, of }`: `"Text"` and `"Action"` stand alone (`of` null), `{"Edit":{"of":N}}`,
/// `{"Deletion":{"of":N}}` and `{"Reply":{"of":N}}` name the message they are about, and
/// `{"Reaction":{"of":N,"added":B}}` too, read as `{ kind, of, added }`.
export function readKind(value) {
  if (value === 'Text' || value === 'Action') return { kind: value, of: null };
  if (value !== null && typeof value === 'object' && Object.keys(value).length === 1) {
    const [kind] = Object.keys(value);
    const of = value[kind]?.of;
    const numbered = Number.isSafeInteger(of) && of > 0;
    if (['Edit', 'Deletion', 'Reply'].includes(kind) && numbered) return { kind, of };
    const added = value[kind]?.added;
    if (kind === 'Reaction' && numbered && typeof added === 'boolean') return { kind, of, added };
  }
  throw new ProtocolError(`an unknown kind of message ${JSON.stringify(value)}`);
}

/// What became of a message after it was stored.
const REVISIONS = ['Original', 'Edited', 'Deleted'];

export function readRevision(value) {
  if (!REVISIONS.includes(value)) throw new ProtocolError(`an unknown revision ${JSON.stringify(value)}`);
  return value;
}

/// A server message's variant and value: `{"Welcome":{…}}` is `{ kind: 'Welcome', body: {…} }`. Every server
/// variant has fields, so a bare string or an object with other than one key is not one.
export function readServerMessage(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(`not JSON: ${error.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('not a server message');
  }
  const keys = Object.keys(value);
  if (keys.length !== 1) throw new ProtocolError('not a server message');
  const body = value[keys[0]];
  if (body === null || typeof body !== 'object') throw new ProtocolError(`${keys[0]} without its fields`);
  return { kind: keys[0], body };
}
