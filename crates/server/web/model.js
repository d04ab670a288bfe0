// What the chat screen shows, without the screen: the conversations with their messages (actions, edits and
// deletions applied, replies with what they answer, reactions counted per message), notices, pending and failed
// messages, unread counts, mentions, members, how far back their history goes, each room's topic, settings and our
// standing in it, with what moderators do said in words, and the rooms' listing; the user's preferences applied
// (silenced conversations do not alert, highlight words count as mentions, ignored nicknames' entries are kept but not
// drawn or counted, read receipts and typing notices, when off, neither sent nor shown); and the last search, its
// results gathered page by page and said in the same words everywhere (`searchLines`); and knowing who is there
// (protocol version 6): away messages (ours and the others'), /whois said in lines, who is typing, "seen by" under
// the last lines, the "new messages" divider, and when to send our own typing notices and read markers. The
// engine's events go in (`apply`), and ui.js draws the result; nothing here touches the DOM or the network.

import {
  AWARENESS_VERSION,
  LOBBY,
  PROTOCOL_VERSION,
  REACTIONS,
  ROLES,
  TYPING_RENEW_MS,
  TYPING_SHOWN_MS,
  isRoomKey,
  mentions,
  reactionEmoji,
  roomKey,
  searchProblem,
  searchWords,
} from './protocol.js';

/// Messages asked for at a time when scrolling back.
export const HISTORY_PAGE = 50;
/// The most one History page brings (the server clamps `limit` to 1–500): what a search result or a quote shows
/// is fetched in one page rather than fifty at a time, when it is that close.
export const HISTORY_PAGE_MAX = 500;

/// Results asked for at a time by a search.
export const SEARCH_PAGE = 20;
/// Longest first line a search result shows, in characters.
const HIT_LENGTH = 120;
/// Refusals (without an id) that answer a search: its words (InvalidText), a conversation we are not in, a `before`
/// the server did not give (Protocol), or a store that could not be read.
const SEARCH_REFUSALS = new Set(['InvalidText', 'NotMember', 'Protocol', 'StoreUnavailable']);

/// "seen by" is shown under the last this many message lines of a conversation only.
export const SEEN_BY_LINES = 20;
/// A read marker is sent at most this often per conversation (the newest after the wait).
export const MARK_READ_INTERVAL_MS = 1000;
/// Most read markers sent at once (after a reconnection many may be due): the rest follow a second later, so that
/// they stay well under the server's pace of requests.
const MARKS_AT_ONCE = 5;

/// Most highlight words, and most nicknames ignored, one account keeps (the same in every client).
export const MAX_HIGHLIGHT_WORDS = 50;
export const MAX_IGNORED = 200;

/// What `/receipts` and `/typing` say (the same words in every client).
export const RECEIPTS_OFF = 'read receipts off: others are not shown what you read, and you are not shown what they read';
export const RECEIPTS_ON = 'read receipts on';
export const TYPING_OFF = 'typing notices off: others are not told you are typing, and you are not shown who is';
export const TYPING_ON = 'typing notices on';

/// The user's preferences, the client's own (nothing of them on the wire): the conversations silenced (by key), the
/// highlight words (lower-case) and the nicknames ignored, each in the order added, as they are listed; and whether
/// read receipts (our read markers sent, the others' "seen by" shown) and typing notices (ours sent, the others'
/// shown) are on.
function noPreferences() {
  return { silenced: new Set(), highlights: new Set(), ignored: new Set(), receipts: true, typing: true };
}

/// Whether `text` has one of `words` (lower-case) as a word, matched as a nickname is.
function hasWordOf(text, words) {
  for (const word of words) if (mentions(text, word)) return true;
  return false;
}

/// A room nobody moderated, as we are in it: the server says `RoomState` only for rooms that differ.
const DEFAULT_ROOM_STATE = { topic: '', inviteOnly: false, moderated: false, role: 'Member', muted: false, operator: false };

/// Who did something in a room, in words: a nickname, or the server's operator at its console (null).
function actor(by) {
  return by ?? "the server's operator";
}

/// What a role given to `nick` ("you" or a nickname) is called.
function roleGiven(by, nick, role) {
  switch (role) {
    case 'Voice':
      return `${by} gave ${nick} voice`;
    case 'Moderator':
      return `${by} made ${nick} a moderator`;
    case 'Owner':
      return `${by} made ${nick} the owner`;
    default:
      return `${by} made ${nick} a plain member`;
  }
}

/// Whether a log entry is a message of its own (a line), rather than an edit, a deletion or a reaction about one.
function isMessage(message) {
  return message.kind === 'Text' || message.kind === 'Action' || message.kind === 'Reply';
}

/// Longest first line a reply's quote shows of the message it answers, in characters.
const QUOTE_LENGTH = 80;

/// The first line of `text`, cut to QUOTE_LENGTH characters, ending "…" when anything was left out.
function firstLine(text) {
  const lines = text.trim().split('\n');
  const characters = [...lines[0]];
  if (characters.length <= QUOTE_LENGTH && lines.length === 1) return lines[0];
  return `${characters.slice(0, QUOTE_LENGTH).join('').trimEnd()}…`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/// When a search result was said, as every client writes it in a search's lines, seen from `now` in the page's
/// time zone: `14:05` today, `3 Dec 14:05` this year, `2025-12-03` before.
export function hitTime(ts, now) {
  const date = new Date(ts);
  const today = new Date(now);
  const two = (number) => String(number).padStart(2, '0');
  const clock = `${two(date.getHours())}:${two(date.getMinutes())}`;
  if (date.toDateString() === today.toDateString()) return clock;
  if (date.getFullYear() === today.getFullYear()) return `${date.getDate()} ${MONTHS[date.getMonth()]} ${clock}`;
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
}

/// Search result `number` (from 1) as shown: its conversation, sender, time, and its text's first line with
/// something on it, cut at HIT_LENGTH characters with "…" (as the native clients cut it).
export function searchHit(hit, number) {
  const line = hit.text.split('\n').find((candidate) => candidate.trim() !== '')?.trim() ?? '';
  const characters = [...line];
  const text = characters.length > HIT_LENGTH ? `${characters.slice(0, HIT_LENGTH).join('')}…` : line;
  return { number, key: hit.conversation, seq: hit.seq, from: hit.from, ts: hit.ts, text, action: hit.kind === 'Action' };
}

/// The line of a search result said at `now`: `[2] #lobby  ana  14:05  lunch at noon?`, an action's text as
/// `* ana waves`.
export function hitLine(hit, number, now) {
  const { key, from, text, action } = searchHit(hit, number);
  return `[${number}] ${key}  ${from}  ${hitTime(hit.ts, now)}  ${action ? `* ${from} ${text}` : text}`;
}

/// Where a search looked, in words: nothing for every conversation, ` in #room`, ` with @nick`.
function searchScope(key) {
  if (key === null) return '';
  return isRoomKey(key) ? ` in ${key}` : ` with ${key}`;
}

/// The header of a search's results from result `from` on (0: all of them; later: a page after the first), in the
/// words every client uses: `3 messages found for “lunch” in #lobby`, `nothing found for “lunch”`, `4 more found
/// for “lunch”`.
export function searchHeader({ query, key, hits }, from = 0) {
  const count = hits.length - from;
  const found = `found for “${query}”${searchScope(key)}`;
  if (from > 0) return count === 0 ? `nothing more ${found}` : `${count} more ${found}`;
  if (count === 0) return `nothing ${found}`;
  return `${count === 1 ? '1 message' : `${count} messages`} ${found}`;
}

/// What a typed search prints at `now` of its results from result `from` on: the header, a line per result
/// (numbered across pages, for /goto), and how to see older ones when there may be more.
export function searchLines(search, from, now) {
  const lines = [searchHeader(search, from)];
  search.hits.slice(from).forEach((hit, index) => lines.push(hitLine(hit, from + index + 1, now)));
  if (search.next !== null) lines.push('/search shows older ones');
  return lines;
}

/// `text` in pieces `{ text, marked }`, marked where a word of it starts with one of the search's `words` (as the
/// server matches them: lower-case, each the start of a word), for the results to show what was found.
export function markWords(text, words) {
  const pieces = [];
  let at = 0;
  for (const match of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    const word = match[0];
    const lower = word.toLowerCase();
    const longest = words.filter((searched) => lower.startsWith(searched)).reduce((most, searched) => Math.max(most, searched.length), 0);
    if (longest === 0) continue;
    // Lower-casing keeps the length of nearly every word; where it does not, the whole word is marked.
    const length = lower.length === word.length ? longest : word.length;
    if (match.index > at) pieces.push({ text: text.slice(at, match.index), marked: false });
    pieces.push({ text: word.slice(0, length), marked: true });
    at = match.index + length;
  }
  if (at < text.length) pieces.push({ text: text.slice(at), marked: false });
  return pieces;
}

/// A list of names in words: `ana`, `ana and bob`, `ana, bob and cy`.
function listed(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/// Who is typing in a conversation, in the words every client uses ('' for nobody): `ana is typing…`, `ana and bob
/// are typing…`, `ana, bob and cy are typing…`, `several people are typing…` (4 or more).
export function typingWords(nicks) {
  if (nicks.length === 0) return '';
  if (nicks.length === 1) return `${nicks[0]} is typing…`;
  if (nicks.length > 3) return 'several people are typing…';
  return `${listed(nicks)} are typing…`;
}

/// Who has read up to a message, in the words every client uses ('' for nobody): `seen by ana`, `seen by ana and
/// bob`, `seen by ana, bob and cy`, `seen by ana, bob, cy and 4 others`.
export function seenByWords(nicks) {
  if (nicks.length === 0) return '';
  if (nicks.length <= 3) return `seen by ${listed(nicks)}`;
  const others = nicks.length - 3;
  return `seen by ${nicks.slice(0, 3).join(', ')} and ${others === 1 ? '1 other' : `${others} others`}`;
}

/// A length of time as /whois says it: `N s` under a minute, `N min` under an hour, `N h M min` under a day,
/// `N d N h` beyond.
export function duration(ms) {
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/// A day in the page's time zone as /whois says it: `2026-11-01`.
function isoDay(date) {
  const two = (number) => String(number).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
}

/// A moment as /whois says it, seen from `now` in the page's time zone: `14:05` today, `2026-11-01 14:05` before.
export function whoisTime(ts, now) {
  const date = new Date(ts);
  const two = (number) => String(number).padStart(2, '0');
  const clock = `${two(date.getHours())}:${two(date.getMinutes())}`;
  return date.toDateString() === new Date(now).toDateString() ? clock : `${isoDay(date)} ${clock}`;
}

/// The lines a `Whois` answer prints at `now`, asked by `me`, in the words every client uses.
export function whoisLines({ nick, registeredMs, online, onlineSinceMs, idleMs, away, rooms }, me, now) {
  const lines = [];
  if (!online) {
    lines.push(`${nick}: offline`);
  } else {
    const since = onlineSinceMs === null ? '' : ` since ${whoisTime(onlineSinceMs, now)} (${duration(now - onlineSinceMs)})`;
    const idle = idleMs === null ? '' : `, idle ${duration(idleMs)}`;
    lines.push(`${nick}: online${since}${idle}`);
  }
  if (away !== null) lines.push(`${nick}: away: ${away}`);
  lines.push(`${nick}: registered ${isoDay(new Date(registeredMs))}`);
  const names = rooms.map(roomKey).join(', ');
  if (nick === me) lines.push(rooms.length === 0 ? `${nick}: no rooms` : `${nick}: rooms: ${names}`);
  else lines.push(rooms.length === 0 ? `${nick}: no rooms in common` : `${nick}: rooms in common: ${names}`);
  return lines;
}

/// What a reply shows of the message it answers, message `of` among `lines` (lines by seq, those of ignored
/// nicknames included): `state` 'shown' with its author and first line, 'deleted', 'ignored' (neither who nor what
/// is drawn), or 'missing' (not loaded here) with only its number.
function quoteOf(of, lines) {
  const line = lines.get(of);
  if (line === undefined) return { seq: of, state: 'missing', from: null, text: `#${of}` };
  if (line.ignored) return { seq: of, state: 'ignored', from: null, text: 'a message from someone you ignore' };
  if (line.deleted) return { seq: of, state: 'deleted', from: null, text: 'a deleted message' };
  return { seq: of, state: 'shown', from: line.from, text: firstLine(line.text) };
}

/// A message's reactions as shown, from its entry of `Conversation.reactions` (undefined when it has none): in
/// the fixed order of REACTIONS, those somebody has, each with who (in the order they reacted), whether we are
/// among them, and whether a change of ours to it is still on its way.
function reactionChips(sets, me) {
  if (sets === undefined) return [];
  return REACTIONS.flatMap(({ emoji, name }) => {
    const set = sets.get(emoji);
    if (set === undefined || set.nicks.size === 0) return [];
    return [{ emoji, name, nicks: [...set.nicks], mine: set.nicks.has(me), pending: set.pending }];
  });
}

/// What stands for a deleted message: who deleted it and why, when that is more than "its author took it back" (and
/// the deleter is not one the user ignores, whose words are not drawn).
function deletedText(message, deletion, ignored) {
  if (deletion === undefined || (deletion.from === message.from && deletion.text === '') || ignored.has(deletion.from)) return '(deleted)';
  return deletion.text === '' ? `(deleted by ${deletion.from})` : `(deleted by ${deletion.from}: ${deletion.text})`;
}

/// Why log entry `seq`, held here, cannot be edited, deleted, answered or reacted to.
function notAMessage(seq) {
  return `#${seq} is an edit, a deletion or a reaction, not a message`;
}

/// One conversation as shown.
class Conversation {
  /// `me` is our nickname, whose reactions are told apart; `preferences` the user's (see noPreferences), shared
  /// with the model, which changes them.
  constructor(key, me, preferences = noPreferences()) {
    this.key = key;
    this.me = me;
    this.preferences = preferences;
    /// Stored log entries by seq: messages, and the edits, deletions and reactions about messages.
    this.messages = new Map();
    /// Own messages not yet stored (or refused for good), by id, in the order typed.
    this.unsent = new Map();
    /// Lines that are not messages: `{ number, text, ts, error }`, shown among the messages by time.
    this.notices = [];
    /// Seq up to which the user has read.
    this.readSeq = 0;
    /// From `Welcome`/`Joined`: the lowest seq still kept and the highest stored.
    this.firstSeq = 1;
    this.latestSeq = 0;
    /// The server told those two (until then, an empty conversation may just not be loaded yet).
    this.infoKnown = false;
    /// Scrollback: 'more' (older may exist), 'loading', 'start' (nothing older was ever written), or 'trimmed'
    /// (older messages are no longer kept, `keptFrom` says from where).
    this.history = 'more';
    this.keptFrom = 1;
    /// Members of a room: nick -> true when online.
    this.members = new Map();
    this.membersKnown = false;
    /// A room's topic and settings and our standing in it, as `RoomState` says them.
    this.roomState = { ...DEFAULT_ROOM_STATE };
    /// How far the others have read (version 6's `ReadMarkers`): nick -> seq.
    this.readers = new Map();
    /// Our own marker as the server holds it (0 until it says), and the highest we sent on this connection and
    /// when: a marker goes when `readSeq` is past both, at most once a MARK_READ_INTERVAL_MS.
    this.serverReadSeq = 0;
    this.sentReadSeq = 0;
    this.readSentAt = -Infinity;
    /// Who is typing here: nick -> until when they are shown typing (their last notice + TYPING_SHOWN_MS).
    this.typing = new Map();
  }

  /// Who is typing here at `now`, in the order they started: not us, not those ignored, not those whose last
  /// notice is older than TYPING_SHOWN_MS.
  typingNicks(now) {
    const { ignored } = this.preferences;
    return [...this.typing].filter(([nick, until]) => until > now && nick !== this.me && !ignored.has(nick)).map(([nick]) => nick);
  }

  /// The others (never us, nor those ignored) under each of the last SEEN_BY_LINES message lines whose marker is at
  /// it (the newest line at or before their marker: reactions, edits and deletions have no line): seq -> nicks,
  /// by name. Nobody while read receipts are off (as ours are not sent, theirs are not shown).
  seenBy() {
    const seen = new Map();
    if (!this.preferences.receipts) return seen;
    const lines = this.shown();
    if (lines.length === 0) return seen;
    const firstShown = lines[Math.max(0, lines.length - SEEN_BY_LINES)].seq;
    const { ignored } = this.preferences;
    for (const [nick, marker] of this.readers) {
      if (nick === this.me || ignored.has(nick)) continue;
      const line = lines.findLast((candidate) => candidate.seq <= marker);
      if (line === undefined || line.seq < firstShown) continue;
      seen.set(line.seq, [...(seen.get(line.seq) ?? []), nick].sort());
    }
    return seen;
  }

  /// Whether a message from someone else (not ignored, not deleted) comes after seq `after`.
  hasNewFromOthers(after) {
    return this.shown().some((line) => line.seq > after && line.from !== this.me && !line.deleted);
  }

  get isRoom() {
    return isRoomKey(this.key);
  }

  get name() {
    return this.key.slice(1);
  }

  /// The user silenced this conversation: it never alerts, and its counts are drawn dimmed.
  get silenced() {
    return this.preferences.silenced.has(this.key);
  }

  lowestSeq() {
    let lowest = null;
    for (const seq of this.messages.keys()) if (lowest === null || seq < lowest) lowest = seq;
    return lowest;
  }

  highestSeq() {
    let highest = 0;
    for (const seq of this.messages.keys()) if (seq > highest) highest = seq;
    return highest;
  }

  /// Whether the server would take a message from us here (RoomState::may_speak in crates/proto).
  maySpeak() {
    const { role, muted, moderated, operator } = this.roomState;
    const rank = ROLES.indexOf(role);
    return operator || rank >= ROLES.indexOf('Moderator') || (!muted && (!moderated || rank >= ROLES.indexOf('Voice')));
  }

  /// The room's settings and our standing in it that are worth a word beside its topic ('' when none are).
  standing() {
    if (!this.isRoom) return '';
    const { inviteOnly, moderated, role, muted, operator } = this.roomState;
    const words = [];
    if (inviteOnly) words.push('invite-only');
    if (moderated) words.push('moderated');
    if (operator) words.push('you are a server operator');
    else if (role === 'Owner') words.push('you are the owner');
    else if (role === 'Moderator') words.push('you are a moderator');
    else if (role === 'Voice') words.push('you have voice');
    if (!this.maySpeak()) words.push(muted ? 'you are muted' : 'you may not speak without voice');
    return words.join(' · ');
  }

  /// Whether we may delete others' messages here: the server judges, this only says whether to offer it.
  moderating() {
    const { role, operator } = this.roomState;
    return this.isRoom && (operator || ROLES.indexOf(role) >= ROLES.indexOf('Moderator'));
  }

  /// Messages from others after the read marker, and those of them that mention `me` or have a highlight word (not
  /// those deleted since, nor those of nicknames ignored).
  unread(me) {
    let count = 0;
    let mentioned = 0;
    for (const line of this.shown()) {
      if (line.seq > this.readSeq && line.from !== me && !line.deleted) {
        count += 1;
        if (line.mention) mentioned += 1;
      }
    }
    return { count, mentioned };
  }

  /// The stored messages by seq as they read now: an edit's text (the latest edit held, by seq, so that edits
  /// arriving out of order, in history pages, end the same), or the placeholder of a deletion. A message that
  /// came already edited or deleted says so itself; an edit of a deleted message comes blanked and is ignored.
  /// `waiting` is the kind of our edit or deletion of it still in the outbox, if any; `reactions` its chips (none
  /// once deleted); `replyTo` what a reply answers (see quoteOf), null for other messages. Those of nicknames the
  /// user ignores are left out.
  shown() {
    return this.lines().filter((line) => !line.ignored);
  }

  /// The lines of shown(), and those of ignored nicknames marked `ignored` (asked for by number, a message is found
  /// even when not drawn). A `mention` is one of our nickname or a reply to us (judged when it came), or a message
  /// of someone else with a highlight word (judged now, so that a word added or removed applies to every line).
  lines() {
    const stored = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const edits = new Map();
    const deletions = new Map();
    for (const entry of stored) {
      if (entry.kind === 'Edit' && entry.revision !== 'Deleted') edits.set(entry.of, entry);
      if (entry.kind === 'Deletion') deletions.set(entry.of, entry);
    }
    const waiting = new Map();
    for (const unsent of this.unsent.values()) {
      if (unsent.kind === 'Edit' || unsent.kind === 'Deletion') waiting.set(unsent.of, unsent.kind);
    }
    const reactions = this.reactions();
    const moderating = this.moderating();
    const speaking = this.maySpeak();
    const { highlights, ignored } = this.preferences;
    const lines = stored.filter(isMessage).map((message) => {
      const deletion = deletions.get(message.seq);
      const deleted = deletion !== undefined || message.revision === 'Deleted';
      const edit = edits.get(message.seq);
      const highlighted = !message.own && hasWordOf(message.text, highlights);
      return {
        ...message,
        text: deleted ? deletedText(message, deletion, ignored) : (edit?.text ?? message.text),
        mention: (message.mention || highlighted) && !deleted,
        ignored: ignored.has(message.from),
        deleted,
        edited: !deleted && (edit !== undefined || message.revision === 'Edited'),
        editable: message.own && !deleted,
        deletable: !deleted && (message.own || moderating),
        // Replying and reacting are speaking: not offered where the server would refuse them (muted, no voice).
        answerable: !deleted && speaking,
        waiting: waiting.get(message.seq) ?? null,
        reactions: deleted ? [] : reactionChips(reactions.get(message.seq), this.me),
        replyTo: null,
      };
    });
    const bySeq = new Map(lines.map((line) => [line.seq, line]));
    for (const line of lines) if (line.kind === 'Reply') line.replyTo = quoteOf(line.of, bySeq);
    return lines;
  }

  /// Who reacted how, by the seq of the message reacted to (held or not: its reactions may come before it, in
  /// history pages) and by emoji: `{ nicks, pending }`. Stored reactions apply in seq order, one added joining
  /// its set and one taken back leaving it, a blanked one (its message deleted) or one of an ignored nickname
  /// counting for nothing; then ours still in the outbox, as if done, their sets marked `pending`. Once stored, an
  /// outbox entry is no longer one, so it counts once.
  reactions() {
    const byMessage = new Map();
    const apply = (reaction, pending) => {
      const emoji = reactionEmoji(reaction.text);
      if (emoji === null) return;
      const sets = byMessage.get(reaction.of) ?? new Map();
      byMessage.set(reaction.of, sets);
      const set = sets.get(emoji) ?? { nicks: new Set(), pending: false };
      sets.set(emoji, set);
      if (reaction.added) {
        set.nicks.add(reaction.from);
      } else {
        set.nicks.delete(reaction.from);
      }
      set.pending ||= pending;
    };
    const stored = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const { ignored } = this.preferences;
    for (const entry of stored) {
      if (entry.kind === 'Reaction' && entry.revision !== 'Deleted' && !ignored.has(entry.from)) apply(entry, false);
    }
    for (const unsent of this.unsent.values()) if (unsent.kind === 'Reaction') apply(unsent, true);
    return byMessage;
  }

  /// The latest message of `nick` here that may still be edited or deleted, or null (one of an ignored nickname
  /// too: a moderator may delete it without seeing it).
  latestOf(nick) {
    return this.lines().findLast((line) => line.from === nick && !line.deleted) ?? null;
  }

  /// What a reply to message `of` would quote of it here.
  quote(of) {
    return quoteOf(of, new Map(this.lines().map((line) => [line.seq, line])));
  }

  /// What to draw, in order: stored messages and notices by seq, then what is not stored yet (edits, deletions and
  /// reactions are not lines: they change the message they are about). A line's `kind` is 'message' or 'notice';
  /// a message's own kind is said by `action` and `replyTo`.
  entries() {
    const all = this.lines();
    const bySeq = new Map(all.map((line) => [line.seq, line]));
    const stored = all.filter((line) => !line.ignored);
    const lines = [];
    let noticeIndex = 0;
    // By time rather than by arrival: older messages that come after a notice (a join's window, a history
    // page) go above it.
    const notices = [...this.notices].sort((a, b) => a.ts - b.ts || a.number - b.number);
    const seenBy = this.seenBy();
    for (const message of stored) {
      while (noticeIndex < notices.length && notices[noticeIndex].ts < message.ts) {
        lines.push({ kind: 'notice', ...notices[noticeIndex] });
        noticeIndex += 1;
      }
      lines.push({ ...message, kind: 'message', action: message.kind === 'Action', seenBy: seenByWords(seenBy.get(message.seq) ?? []) });
    }
    for (; noticeIndex < notices.length; noticeIndex += 1) lines.push({ kind: 'notice', ...notices[noticeIndex] });
    for (const message of this.unsent.values()) {
      if (!isMessage(message)) continue;
      const replyTo = message.kind === 'Reply' ? quoteOf(message.of, bySeq) : null;
      lines.push({ ...message, kind: 'message', action: message.kind === 'Action', reactions: [], replyTo, seenBy: '' });
    }
    return lines;
  }

  /// Judges the scrollback from the lowest seq shown and the lowest kept: nothing older to fetch? Once the
  /// start (or the end of what is kept) was reached, that stays so.
  settleHistory() {
    if (this.history !== 'more') return;
    if (this.messages.size === 0 && !this.infoKnown) return;
    const lowest = this.lowestSeq() ?? this.latestSeq + 1;
    if (lowest <= 1) {
      this.history = 'start';
    } else if (lowest <= this.firstSeq) {
      this.history = 'trimmed';
      this.keptFrom = this.firstSeq;
    } else {
      this.history = 'more';
    }
  }
}

export class ChatModel {
  /// `me` is our nickname; `now()` gives the time of notices.
  constructor(me, now = () => Date.now()) {
    this.me = me;
    this.now = now;
    /// The user's preferences (see noPreferences), shared by every conversation.
    this.preferences = noPreferences();
    this.conversations = new Map();
    this.currentKey = roomKey(LOBBY);
    this.conversation(this.currentKey);
    /// The connection is up (members are known only then).
    this.live = false;
    /// A room asked to join, to show once joined.
    this.switchTo = null;
    /// Rooms whose member list the user asked for with /users: the answer is also said as a notice.
    this.usersAsked = new Set();
    /// Numbers notices, so that the screen can tell them apart.
    this.noticeCount = 0;
    /// Rooms we were kicked or banned from: the `Left` that follows is not news, the event said it.
    this.putOut = new Set();
    /// The message of the conversation shown that the composer answers (its seq), or null.
    this.replying = null;
    /// The last search, or null before the first: `query` as sent, `key` the conversation searched (null: all),
    /// `words` to mark in the results, `hits` gathered over its pages (newest first, numbered from 1), `next` the
    /// position of the page after them (null: nothing older), `pending` while a page is on its way, `error` why
    /// it failed (null), and, for a search typed as a command, `typed` and `noticeKey`, where its lines go.
    this.search = null;
    /// Search pages asked for on this connection and not yet answered, oldest first, `{ serial, query, key }`: the
    /// server answers in order, so an answer belongs to the first one it echoes.
    this.searchesAsked = [];
    this.searchSerial = 0;
    /// The search results panel is open.
    this.searchOpen = false;
    /// A search page to ask for at once (see `found`), until the caller takes it (`takeSearchToAsk`).
    this.searchToAsk = null;
    /// The protocol version the server speaks with us, from `Welcome` (null before the first).
    this.serverVersion = null;
    /// Our away message (null: none), as the server confirms it, and the others' by nick.
    this.ownAway = null;
    this.away = new Map();
    /// The away message of each nick already said in our direct conversation with them (once until it changes).
    this.awayNoticed = new Map();
    /// Nicknames asked about with /whois on this connection, oldest first: an `UnknownNick` answers the first.
    this.whoisAsked = [];
    /// Our last `Typing { true }`, `{ key, at }`, until we said we stopped (or sent the message); null when none.
    this.typingSent = null;
    /// The "new messages" divider of the conversation shown: above the first message from others after `after`,
    /// pinned when the conversation is first read after being opened (until then it follows our marker); null
    /// when there is none. At start it is pinned only once something is read, so that what the connection
    /// brings is under it too.
    this.divider = { key: this.currentKey, pinned: false, after: null, pinOnMove: true };
  }

  /// Whether the server knows away messages, /whois, typing notices and read markers (assumed before it said).
  get aware() {
    return (this.serverVersion ?? PROTOCOL_VERSION) >= AWARENESS_VERSION;
  }

  get current() {
    return this.conversation(this.currentKey);
  }

  /// The conversation of `key`, made if new.
  conversation(key) {
    let conversation = this.conversations.get(key);
    if (conversation === undefined) {
      conversation = new Conversation(key, this.me, this.preferences);
      this.conversations.set(key, conversation);
    }
    return conversation;
  }

  /// The conversations in the sidebar's order: `#lobby`, the other rooms, then direct conversations, by name.
  ordered() {
    const rank = (conversation) => (conversation.key === roomKey(LOBBY) ? 0 : conversation.isRoom ? 1 : 2);
    return [...this.conversations.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  }

  totalUnread() {
    let total = 0;
    for (const conversation of this.conversations.values()) total += conversation.unread(this.me).count;
    return total;
  }

  /// Shows conversation `key`; a reply being written in another one is given up.
  select(key) {
    this.conversation(key);
    if (key !== this.currentKey) {
      this.replying = null;
      this.divider = { key, pinned: false, after: null, pinOnMove: false };
    }
    this.currentKey = key;
  }

  /// The seq of the message the "new messages" divider of the conversation shown is above, or null.
  dividerSeq() {
    const conversation = this.current;
    const after = this.divider.pinned ? this.divider.after : conversation.readSeq;
    if (after === null) return null;
    return conversation.shown().find((line) => line.seq > after && line.from !== this.me && !line.deleted)?.seq ?? null;
  }

  /// What the composer's reply bar quotes (see quoteOf), or null when the composer is not answering a message.
  replyingQuote() {
    return this.replying === null ? null : this.current.quote(this.replying);
  }

  /// Marks the conversation shown as read up to its newest message; the new marker, or null when unchanged.
  markCurrentRead() {
    const conversation = this.current;
    const highest = conversation.highestSeq();
    const moves = highest > conversation.readSeq;
    if (!this.divider.pinned && (moves || !this.divider.pinOnMove)) {
      this.divider.pinned = true;
      this.divider.after = conversation.hasNewFromOthers(conversation.readSeq) ? conversation.readSeq : null;
    }
    if (!moves) return null;
    conversation.readSeq = highest;
    return highest;
  }

  /// The read markers to send now, `{ send: [{ key, seq }], nextAt }`: a conversation read past what the server
  /// holds and what we sent on this connection, at most once a MARK_READ_INTERVAL_MS each (`nextAt`: when the
  /// next is due, null when none waits). Nothing while disconnected, to a server that does not know markers, or
  /// while read receipts are off (what is read still moves `readSeq`, for the divider and the unread counts, and
  /// is sent once they are on again).
  readMarkersToSend() {
    const send = [];
    let nextAt = null;
    if (!this.live || !this.aware || !this.preferences.receipts) return { send, nextAt };
    const now = this.now();
    for (const conversation of this.conversations.values()) {
      if (conversation.readSeq <= Math.max(conversation.serverReadSeq, conversation.sentReadSeq)) continue;
      const due = conversation.readSentAt + MARK_READ_INTERVAL_MS;
      const later = due > now ? due : send.length >= MARKS_AT_ONCE ? now + MARK_READ_INTERVAL_MS : null;
      if (later !== null) {
        nextAt = Math.min(nextAt ?? Infinity, later);
        continue;
      }
      conversation.sentReadSeq = conversation.readSeq;
      conversation.readSentAt = now;
      send.push({ key: conversation.key, seq: conversation.readSeq });
    }
    return { send, nextAt };
  }

  /// What the composer's text now being `text` tells the others, as `[{ key, typing }]` to send: typing in the
  /// conversation shown (text not blank, not a command), again after TYPING_RENEW_MS, or stopped (emptied, or
  /// another conversation shown). Nothing while disconnected (never kept for later); while typing notices are off,
  /// only the stop of a `typing: true` sent before they were turned off.
  composerChanged(text) {
    if (!this.live || !this.aware) {
      this.typingSent = null;
      return [];
    }
    if (!this.preferences.typing) {
      const sent = this.typingSent;
      this.typingSent = null;
      return sent === null ? [] : [{ key: sent.key, typing: false }];
    }
    const notices = [];
    const key = this.currentKey;
    // A direct conversation with nothing in it yet does not exist on the server, which drops typing there (and
    // refuses it to a nickname nobody has).
    const exists = isRoomKey(key) || this.current.latestSeq > 0;
    const active = text.trim() !== '' && !text.startsWith('/') && exists;
    const sent = this.typingSent;
    if (sent !== null && (sent.key !== key || !active)) {
      notices.push({ key: sent.key, typing: false });
      this.typingSent = null;
    }
    const now = this.now();
    if (active && (this.typingSent === null || now - this.typingSent.at >= TYPING_RENEW_MS)) {
      this.typingSent = { key, at: now };
      notices.push({ key, typing: true });
    }
    return notices;
  }

  /// Who is typing in the conversation shown, in words ('' for nobody, and while typing notices are off).
  typingLine() {
    if (!this.preferences.typing) return '';
    return typingWords(this.current.typingNicks(this.now()));
  }

  /// When the next "typing" shown expires (to draw it gone then), or null (typing notices off: none is shown).
  nextTypingExpiry() {
    if (!this.preferences.typing) return null;
    const now = this.now();
    let next = null;
    for (const conversation of this.conversations.values()) {
      for (const until of conversation.typing.values()) if (until > now && (next === null || until < next)) next = until;
    }
    return next;
  }

  /// `/away`: the away message `message` (null: back), said at once; engine.js sends it.
  setAway(message) {
    if (!this.aware) return this.answer('this server does not know away messages', false, true);
    return this.answer(message === null ? 'you are back' : `you are away: ${message}`, true);
  }

  /// `/whois NICK` asked: the answer's lines are said where it was asked. False when the server cannot answer.
  whoisFor(nick) {
    if (!this.aware) return this.answer('this server does not know /whois', false, true);
    this.whoisAsked.push(nick);
    return true;
  }

  /// The /whois just asked could not be sent.
  whoisNotSent() {
    this.whoisAsked.pop();
  }

  /// An `UnknownNick` without an id answering the oldest /whois asked: said as `no such user: NICK`; true when
  /// taken so (the caller says nothing more of it).
  whoisRefused({ code, id }) {
    if (id !== null || code !== 'UnknownNick' || this.whoisAsked.length === 0) return false;
    this.notice(this.currentKey, `no such user: ${this.whoisAsked.shift()}`, true);
    return true;
  }

  /// A message typed to `key`: the model forgets it said it was typing there (readers clear on the message), and
  /// a direct conversation with someone away says so once (until their away message changes).
  typed(key, kind) {
    if (this.typingSent?.key === key) this.typingSent = null;
    if (isRoomKey(key) || !isMessage({ kind })) return;
    const peer = key.slice(1);
    const away = this.away.get(peer);
    if (away === undefined || this.awayNoticed.get(peer) === away) return;
    this.awayNoticed.set(peer, away);
    this.notice(key, `${peer} is away: ${away}`);
  }

  notice(key, text, error = false) {
    const conversation = this.conversation(key);
    this.noticeCount += 1;
    conversation.notices.push({ number: this.noticeCount, text, ts: this.now(), error });
  }

  /// Removes a conversation we are no longer in; `#lobby` is shown instead if it was current.
  remove(key) {
    this.conversations.delete(key);
    if (this.currentKey === key) this.select(roomKey(LOBBY));
    this.conversation(roomKey(LOBBY));
  }

  addMessage(message) {
    const conversation = this.conversation(message.conversation);
    if (conversation.messages.has(message.seq)) return null;
    const own = message.from === this.me;
    // A reply to one of our messages counts as a mention, when that message is here to tell.
    const answersUs = message.kind === 'Reply' && conversation.messages.get(message.of)?.from === this.me;
    const mention = !own && isMessage(message) && (answersUs || mentions(message.text, this.me));
    const entry = { ...message, own, mention, state: 'stored' };
    conversation.messages.set(message.seq, entry);
    conversation.unsent.delete(message.id);
    conversation.latestSeq = Math.max(conversation.latestSeq, message.seq);
    return entry;
  }

  addUnsent(entry) {
    const conversation = this.conversation(entry.to);
    conversation.unsent.set(entry.id, {
      conversation: entry.to,
      seq: null,
      id: entry.id,
      from: this.me,
      ts: entry.typedAt,
      text: entry.text,
      kind: entry.kind,
      of: entry.of,
      added: entry.added,
      revision: 'Original',
      own: true,
      mention: false,
      state: 'pending',
    });
  }

  /// Whether a new message (live, not ours) alerts: only when it is from someone not ignored, in a conversation
  /// not silenced, and direct, or mentioning us, or a reply to one of ours, or with a highlight word. Every client
  /// follows this rule (the terminal's bell, the desktop's notification, the browser's).
  alerting(entry) {
    const conversation = this.conversation(entry.conversation);
    if (conversation.silenced || this.preferences.ignored.has(entry.from)) return false;
    return !conversation.isRoom || entry.mention || hasWordOf(entry.text, this.preferences.highlights);
  }

  /// The preferences as the store keeps them: lists, in the order added, and the two switches.
  savedPreferences() {
    const { silenced, highlights, ignored, receipts, typing } = this.preferences;
    return { silenced: [...silenced], highlights: [...highlights], ignored: [...ignored], receipts, typing };
  }

  /// Says `text` in the conversation shown (an `error` or not); returns `changed`, whether the preferences changed
  /// (and are to be saved).
  answer(text, changed, error = false) {
    this.notice(this.currentKey, text, error);
    return changed;
  }

  /// `/silence` conversation `key` (null: the one shown). True when the preferences changed.
  silence(key) {
    const target = key ?? this.currentKey;
    if (this.preferences.silenced.has(target)) return this.answer(`${target} is already silenced`, false);
    this.preferences.silenced.add(target);
    return this.answer(`silenced ${target}: no notifications from it (/unsilence to undo)`, true);
  }

  /// `/unsilence` conversation `key` (null: the one shown). True when the preferences changed.
  unsilence(key) {
    const target = key ?? this.currentKey;
    if (!this.preferences.silenced.delete(target)) return this.answer(`${target} is not silenced`, false);
    return this.answer(`${target} is no longer silenced`, true);
  }

  /// `/highlight`: lists the words (`word` null), or adds `word` (lower-case, checked by commands.js). True when
  /// the preferences changed.
  highlight(word) {
    const { highlights } = this.preferences;
    if (word === null) {
      return this.answer(highlights.size === 0 ? 'no highlight words; /highlight WORD adds one' : `highlight words: ${[...highlights].join(', ')}`, false);
    }
    if (highlights.has(word)) return this.answer(`${word} is already a highlight word`, false);
    if (highlights.size >= MAX_HIGHLIGHT_WORDS) {
      return this.answer(`${word} was not added: at most ${MAX_HIGHLIGHT_WORDS} highlight words (/unhighlight one first)`, false, true);
    }
    highlights.add(word);
    return this.answer(`highlighting ${word}: messages with it count as mentions (/unhighlight ${word} to stop)`, true);
  }

  /// `/unhighlight WORD`. True when the preferences changed.
  unhighlight(word) {
    if (!this.preferences.highlights.delete(word)) return this.answer(`${word} is not a highlight word`, false);
    return this.answer(`no longer highlighting ${word}`, true);
  }

  /// `/ignore`: lists the nicknames ignored (`nick` null), or ignores `nick` (checked by commands.js). True when
  /// the preferences changed.
  ignore(nick) {
    const { ignored } = this.preferences;
    if (nick === null) {
      return this.answer(ignored.size === 0 ? "ignoring nobody; /ignore NICK hides someone's messages" : `ignoring: ${[...ignored].join(', ')}`, false);
    }
    if (nick === this.me) return this.answer('you cannot ignore yourself', false, true);
    if (ignored.has(nick)) return this.answer(`${nick} is already ignored`, false);
    if (ignored.size >= MAX_IGNORED) {
      return this.answer(`${nick} was not ignored: at most ${MAX_IGNORED} nicknames are (/unignore one first)`, false, true);
    }
    ignored.add(nick);
    return this.answer(`ignoring ${nick}: their messages are hidden (/unignore ${nick} to show them)`, true);
  }

  /// `/unignore NICK`: what they sent shows again where it was. True when the preferences changed.
  unignore(nick) {
    if (!this.preferences.ignored.delete(nick)) return this.answer(`${nick} is not ignored`, false);
    return this.answer(`no longer ignoring ${nick}`, true);
  }

  /// `/receipts`: turns read receipts on or off (`on` null: says which they are). Off, no read marker is sent and
  /// the others' are not shown; on again, the marker of what was read meanwhile goes by the usual rule. True when
  /// the preferences changed.
  setReceipts(on) {
    const changed = on !== null && on !== this.preferences.receipts;
    if (on !== null) this.preferences.receipts = on;
    return this.answer(this.preferences.receipts ? RECEIPTS_ON : RECEIPTS_OFF, changed);
  }

  /// `/typing`: turns typing notices on or off (`on` null: says which they are). Off, ours are not sent (a
  /// `typing: true` not yet stopped is stopped by the next composerChanged, which the caller makes at once) and
  /// the others' are not shown. True when the preferences changed.
  setTyping(on) {
    const changed = on !== null && on !== this.preferences.typing;
    if (on !== null) this.preferences.typing = on;
    return this.answer(this.preferences.typing ? TYPING_ON : TYPING_OFF, changed);
  }

  /// An engine event. Returns the new messages that alert (see `alerting`), for the browser's notification.
  apply(event) {
    switch (event.type) {
      case 'restored':
        // Put in the object the conversations share. (The engine's restore always has them; one made by hand may not.)
        if (event.preferences !== undefined) {
          for (const kind of ['silenced', 'highlights', 'ignored']) this.preferences[kind] = new Set(event.preferences[kind]);
          for (const kind of ['receipts', 'typing']) this.preferences[kind] = event.preferences[kind] !== false;
        }
        for (const list of event.messages.values()) for (const message of list) this.addMessage(message);
        for (const [key, seq] of event.readMarkers) this.conversation(key).readSeq = seq;
        for (const entry of event.outbox) this.addUnsent(entry);
        for (const conversation of this.conversations.values()) conversation.settleHistory();
        return [];
      case 'status':
        this.live = event.state === 'live';
        // A page asked for on a connection that ended will not come: it may be asked for again.
        if (!this.live) {
          this.historyAnswered();
          this.searchLost();
          this.whoisAsked = [];
          this.typingSent = null;
        }
        return [];
      case 'error':
        // Refusals of a request (not of a message): which request is not said, so none is waited for any more.
        if (event.id === null && event.code === 'NotMember') this.historyAnswered();
        if (event.id === null && ['LimitReached', 'InvalidName', 'Banned'].includes(event.code)) this.switchTo = null;
        return [];
      case 'welcome':
        // What changed while we were away and is back to the defaults is not said again: the `RoomState`s that
        // follow say the rest.
        for (const conversation of this.conversations.values()) conversation.roomState = { ...DEFAULT_ROOM_STATE };
        for (const info of event.conversations) this.learn(info);
        this.welcomed(event.version ?? PROTOCOL_VERSION);
        return [];
      case 'joined':
        this.conversation(event.key).roomState = { ...DEFAULT_ROOM_STATE };
        this.learn(event);
        if (this.switchTo === event.key) {
          this.currentKey = event.key;
          this.switchTo = null;
        }
        return [];
      case 'queued':
        this.addUnsent(event.entry);
        this.typed(event.entry.to, event.entry.kind);
        return [];
      case 'accepted': {
        const conversation = this.conversation(event.key);
        const unsent = conversation.unsent.get(event.id);
        conversation.unsent.delete(event.id);
        if (unsent !== undefined && !conversation.messages.has(event.seq)) {
          this.addMessage({ ...unsent, conversation: event.key, seq: event.seq, ts: event.ts });
        }
        return [];
      }
      case 'refused':
        // A refused edit, deletion or reaction changed nothing to show (a reaction is shown as done until then):
        // only the notice says it.
        for (const conversation of this.conversations.values()) {
          const unsent = conversation.unsent.get(event.id);
          if (unsent !== undefined && !isMessage(unsent)) {
            conversation.unsent.delete(event.id);
          } else if (unsent !== undefined) {
            unsent.state = 'failed';
            unsent.failure = event.message;
          }
        }
        return [];
      case 'messages': {
        const alerts = [];
        for (const message of event.messages) {
          const entry = this.addMessage(message);
          const news = entry !== null && !entry.own && isMessage(entry) && entry.revision !== 'Deleted';
          if (news && this.alerting(entry)) alerts.push(entry);
          const conversation = this.conversation(message.conversation);
          // A message from someone typing there ends their "typing".
          if (entry !== null && isMessage(entry)) conversation.typing.delete(entry.from);
          conversation.settleHistory();
        }
        return alerts;
      }
      case 'history': {
        const conversation = this.conversation(event.key);
        for (const message of event.messages) this.addMessage(message);
        conversation.history = 'more';
        const lowest = conversation.lowestSeq() ?? conversation.latestSeq + 1;
        if (event.messages.length === 0 || lowest <= event.completeFrom) {
          conversation.history = event.completeFrom <= 1 ? 'start' : 'trimmed';
          conversation.keptFrom = event.completeFrom;
        }
        return [];
      }
      case 'rewound': {
        const conversation = this.conversation(event.key);
        for (const seq of [...conversation.messages.keys()]) if (seq > event.latestSeq) conversation.messages.delete(seq);
        conversation.latestSeq = event.latestSeq;
        conversation.readSeq = Math.min(conversation.readSeq, event.latestSeq);
        conversation.serverReadSeq = Math.min(conversation.serverReadSeq, event.latestSeq);
        conversation.sentReadSeq = Math.min(conversation.sentReadSeq, event.latestSeq);
        this.notice(
          event.key,
          `the server was restored from an older backup and holds this conversation up to message ${event.latestSeq}, ` +
            `where you had seen ${event.had}: what came after it is gone from the server (and from this view), and ` +
            'messages sent since the restore and before now may be missing here',
          true,
        );
        return [];
      }
      case 'gap':
        this.notice(event.key, `messages before ${event.completeFrom} are no longer kept`);
        this.conversation(event.key).firstSeq = event.completeFrom;
        return [];
      case 'left':
        this.remove(event.key);
        if (!this.putOut.delete(event.key)) this.notice(roomKey(LOBBY), `you left ${event.key}`);
        return [];
      case 'closed':
        this.remove(event.key);
        this.notice(roomKey(LOBBY), `${event.key} was closed: ${event.reason}`);
        return [];
      case 'presence':
        this.presence(event);
        return [];
      case 'users':
        this.users(event);
        return [];
      case 'roomState': {
        // Not for a room we are not in (a late answer about one we just left): that would show it again.
        const conversation = this.conversations.get(event.key);
        if (conversation !== undefined) {
          const { topic, inviteOnly, moderated, role, muted, operator } = event;
          conversation.roomState = { topic, inviteOnly, moderated, role, muted, operator };
        }
        return [];
      }
      case 'roomEvent':
        this.roomEvent(event);
        return [];
      case 'invited':
        this.notice(this.currentKey, `you were invited to #${event.room} by ${actor(event.by)} — /join ${event.room}`);
        return [];
      case 'rooms':
        this.rooms(event);
        return [];
      case 'found':
        this.found(event);
        return [];
      case 'away':
        if (event.nick === this.me) {
          this.ownAway = event.message;
        } else if (event.message === null) {
          this.away.delete(event.nick);
        } else {
          this.away.set(event.nick, event.message);
        }
        return [];
      case 'whois': {
        const asked = this.whoisAsked.indexOf(event.nick);
        if (asked >= 0) this.whoisAsked.splice(asked, 1);
        for (const line of whoisLines(event, this.me, this.now())) this.notice(this.currentKey, line);
        return [];
      }
      case 'typing': {
        const conversation = this.conversations.get(event.key);
        if (conversation === undefined || event.nick === this.me) return [];
        if (event.typing) {
          conversation.typing.set(event.nick, this.now() + TYPING_SHOWN_MS);
        } else {
          conversation.typing.delete(event.nick);
        }
        return [];
      }
      case 'readMarkers':
        for (const { key, nick, seq } of event.markers) {
          const conversation = this.conversations.get(key);
          if (conversation === undefined) continue;
          if (nick === this.me) {
            // Another device (or this one, earlier) read this far: the unread count follows.
            conversation.serverReadSeq = Math.max(conversation.serverReadSeq, seq);
            conversation.readSeq = Math.max(conversation.readSeq, seq);
          } else {
            conversation.readers.set(nick, seq);
          }
        }
        return [];
      default:
        return [];
    }
  }

  /// A new connection, speaking `version`: what the server tells after `Welcome` (our away message, our markers,
  /// the members' away messages after `Users`) is told again, and nobody is typing yet. A marker is sent a second
  /// after it at the earliest, once the server said its own.
  welcomed(version) {
    this.serverVersion = version;
    this.ownAway = null;
    this.away.clear();
    this.typingSent = null;
    const now = this.now();
    for (const conversation of this.conversations.values()) {
      conversation.typing.clear();
      conversation.serverReadSeq = 0;
      conversation.sentReadSeq = 0;
      conversation.readSentAt = now;
    }
  }

  learn({ key, latestSeq, firstSeq }) {
    const conversation = this.conversation(key);
    conversation.latestSeq = Math.max(conversation.latestSeq, latestSeq);
    conversation.firstSeq = firstSeq;
    conversation.infoKnown = true;
    conversation.settleHistory();
  }

  presence({ room, nick, state }) {
    const key = roomKey(room);
    const conversation = this.conversation(key);
    switch (state) {
      case 'Joined':
        conversation.members.set(nick, true);
        this.notice(key, `${nick} joined`);
        break;
      case 'Left':
        conversation.members.delete(nick);
        conversation.typing.delete(nick);
        conversation.readers.delete(nick);
        this.notice(key, `${nick} left`);
        break;
      case 'Online':
        conversation.members.set(nick, true);
        break;
      case 'Offline':
        conversation.members.set(nick, false);
        // Offline says more than away; their away message comes again when they are back online.
        this.away.delete(nick);
        for (const each of this.conversations.values()) each.typing.delete(nick);
        break;
      default:
        break;
    }
  }

  /// What a moderator did in room `key`, said in its conversation (in `#lobby` when it is about us and puts us
  /// out, or about a room we are not in). The state follows at once, even before the `RoomState` that says it.
  roomEvent({ key, by, change }) {
    const who = actor(by);
    const because = change.reason ? `: ${change.reason}` : '';
    const you = change.nick === this.me;
    const name = you ? 'you' : change.nick;
    const conversation = this.conversations.get(key);
    const state = conversation?.roomState ?? { ...DEFAULT_ROOM_STATE };
    let text;
    // The words name the room already.
    let named = false;
    switch (change.kind) {
      case 'Kicked':
      case 'Banned': {
        const done = change.kind === 'Kicked' ? 'kicked' : 'banned';
        if (you) {
          if (conversation !== undefined) this.putOut.add(key);
          this.notice(roomKey(LOBBY), `you were ${done} from ${key} by ${who}${because}`, true);
          return;
        }
        conversation?.members.delete(change.nick);
        text = `${name} was ${done} by ${who}${because}`;
        break;
      }
      case 'Unbanned':
        named = you;
        text = you ? `you were unbanned from ${key} by ${who}` : `${name} was unbanned by ${who}`;
        break;
      case 'Muted':
        if (you) state.muted = true;
        text = `${name} ${you ? 'were' : 'was'} muted by ${who}${because}`;
        break;
      case 'Unmuted':
        if (you) state.muted = false;
        text = `${name} ${you ? 'were' : 'was'} unmuted by ${who}`;
        break;
      case 'RoleSet':
        if (you) state.role = change.role;
        text = roleGiven(who, name, change.role);
        break;
      case 'Invited':
        text = `${who} invited ${name}`;
        break;
      case 'Topic':
        state.topic = change.text;
        text = change.text === '' ? `${who} cleared the topic` : `${who} set the topic: ${change.text}`;
        break;
      case 'InviteOnly':
        state.inviteOnly = change.on;
        named = true;
        text = change.on ? `${who} made ${key} invite-only` : `${who} opened ${key} to everyone`;
        break;
      case 'Moderated':
        state.moderated = change.on;
        named = true;
        text = change.on
          ? `${who} made ${key} moderated: only members with voice, and moderators, may speak`
          : `${who} made ${key} unmoderated: every member may speak`;
        break;
      default:
        return;
    }
    if (conversation === undefined) {
      this.notice(roomKey(LOBBY), named ? text : `${key}: ${text}`);
    } else {
      this.notice(key, text, you && change.kind === 'Muted');
    }
  }

  /// The post that `/edit` or `/delete` (as commands.js reads them) asks for in the conversation shown,
  /// `{ kind, of, text }`, or `{ error }` when the message meant is not here to change. A message older than
  /// what is loaded is the server's to judge.
  postFor({ kind, seq, nick = null, text = '', reason = '' }) {
    const conversation = this.current;
    const editing = kind === 'edit';
    const post = (of) => ({ kind: editing ? 'Edit' : 'Deletion', of, text: editing ? text : reason });
    if (seq === null) {
      const author = nick ?? this.me;
      const verb = editing ? 'edit' : 'delete';
      // Our latest message is one still in the outbox, which has no seq yet: not the stored one before it.
      const sending = [...conversation.unsent.values()].some((unsent) => isMessage(unsent) && unsent.state === 'pending');
      if (author === this.me && sending) {
        return { error: `your latest message in ${conversation.key} is not sent yet: ${verb} it once it is` };
      }
      const latest = conversation.latestOf(author);
      if (latest !== null) return post(latest.seq);
      if (author !== this.me) return { error: `${author} has no message shown in ${conversation.key} to delete` };
      return { error: `you have no message in ${conversation.key} to ${verb}` };
    }
    const held = conversation.messages.get(seq);
    if (held === undefined) return post(seq);
    if (!isMessage(held)) return { error: notAMessage(seq) };
    if (conversation.lines().find((line) => line.seq === seq).deleted) return { error: `message #${seq} is deleted` };
    if (editing && held.from !== this.me) return { error: `message #${seq} is ${held.from}'s: you may edit only yours` };
    return post(seq);
  }

  /// The post of a reply in the conversation shown, to message `seq` (null: the latest message here not ours),
  /// `{ kind, of, text }`, or `{ error }`.
  replyFor({ seq, text }) {
    const target = this.answerable(seq, 'answer');
    return target.error === undefined ? { kind: 'Reply', of: target.seq, text } : target;
  }

  /// The post of a reaction `emoji` in the conversation shown, to message `seq` (null: the latest message here
  /// not ours), `{ kind, of, text, added }`: added, or taken back when we have it (as shown, what is on its way
  /// included), or only taken back (`takeBack`, /unreact); or `{ error }`. Holding a message is holding all its
  /// reactions (they come after it), so we know ours; of one not held, the server judges.
  reactionFor({ seq, emoji, takeBack = false }) {
    const target = this.answerable(seq, 'react to');
    if (target.error !== undefined) return target;
    const conversation = this.current;
    const mine = conversation.reactions().get(target.seq)?.get(emoji)?.nicks.has(this.me) ?? false;
    if (takeBack && !mine && conversation.messages.has(target.seq)) {
      return { error: `you have no ${emoji} on message #${target.seq} to take back` };
    }
    return { kind: 'Reaction', of: target.seq, text: emoji, added: !takeBack && !mine };
  }

  /// The message a reply or a reaction in the conversation shown is about: message `seq`, or the latest one not
  /// ours when null; `{ seq }`, or `{ error }` saying why it cannot be (`verb` names what was asked). A message
  /// older than what is loaded is the server's to judge, one after the conversation's end is none.
  answerable(seq, verb) {
    const conversation = this.current;
    if (seq === null) {
      const latest = conversation.shown().findLast((line) => line.from !== this.me && !line.deleted);
      if (latest === undefined) return { error: `there is no message from anybody else in ${conversation.key} to ${verb}` };
      return { seq: latest.seq };
    }
    const held = conversation.messages.get(seq);
    if (held === undefined) {
      if (conversation.infoKnown && seq > conversation.latestSeq) return { error: `there is no message #${seq} in ${conversation.key}` };
      return { seq };
    }
    if (!isMessage(held)) return { error: notAMessage(seq) };
    if (conversation.lines().find((line) => line.seq === seq).deleted) return { error: `message #${seq} is deleted` };
    return { seq };
  }

  /// Says the topic of room `key`, for `/topic`.
  showTopic(key) {
    const { topic } = this.conversation(key).roomState;
    this.notice(this.currentKey, topic === '' ? `${key} has no topic` : `the topic of ${key}: ${topic}`);
  }

  users({ room, online, offline }) {
    const key = roomKey(room);
    const conversation = this.conversation(key);
    conversation.members = new Map([...online.map((nick) => [nick, true]), ...offline.map((nick) => [nick, false])]);
    conversation.membersKnown = true;
    // The `Away`s of those away follow the list: whoever is not among them is back.
    for (const nick of [...online, ...offline]) this.away.delete(nick);
    if (this.usersAsked.delete(room)) {
      const list = (names) => (names.length > 0 ? names.join(', ') : '(none)');
      this.notice(this.currentKey, `${key} online: ${list(online)}; offline: ${list(offline)}`);
    }
  }

  /// A page of the rooms' listing, a line per room, in the conversation shown (it answers a `/list` typed there).
  rooms({ rooms, more }) {
    if (rooms.length === 0) this.notice(this.currentKey, 'there are no rooms to list');
    for (const { room, members, topic, inviteOnly } of rooms) {
      const words = [roomKey(room), members === 1 ? '1 member' : `${members} members`];
      if (inviteOnly) words.push('invite-only');
      if (topic !== '') words.push(topic);
      this.notice(this.currentKey, words.join('  '));
    }
    if (more) this.notice(this.currentKey, `/list ${rooms.at(-1).room} shows the next ones`);
  }

  /// Starts a search for `query` (commands.js read it): in every conversation (`scope` null), the one shown
  /// ('here'), or conversation `scope`; `typed` when asked with /search, whose results are said as notices too.
  /// A search field's `error` (its words could not be read) makes a search that failed, to show why. Returns the
  /// `Search` request to send, `{ query, key, before, limit }`, or `{ error }` (also the search's own, for the
  /// panel) when there is nothing to ask.
  searchFor({ query, scope, error = null }, typed) {
    const key = scope === 'here' ? this.currentKey : scope;
    this.searchSerial += 1;
    this.search = { serial: this.searchSerial, query, key, words: searchWords(query), hits: [], next: null, pending: false, error: null, typed, noticeKey: this.currentKey };
    let problem = error ?? searchProblem(query);
    if (problem === null && key !== null && isRoomKey(key) && !this.conversations.has(key)) problem = `you are not in ${key}`;
    if (problem !== null) {
      this.search.error = problem;
      return { error: problem };
    }
    return this.searchPage(null);
  }

  /// The next (older) page of the last search, for /search alone (`typed`) or the panel's "More": its request,
  /// or `{ error }` saying why there is none.
  moreResults(typed) {
    const { search } = this;
    if (search === null || (search.error !== null && search.hits.length === 0)) return { error: 'no search to go on with: /search WORDS finds messages' };
    if (search.pending) return { error: "the search's answer is on its way" };
    if (search.next === null) return { error: `nothing more to find for “${search.query}”` };
    search.typed = typed;
    search.noticeKey = this.currentKey;
    return this.searchPage(search.next);
  }

  searchPage(before) {
    const { search } = this;
    search.pending = true;
    search.error = null;
    this.searchesAsked.push({ serial: search.serial, query: search.query, key: search.key });
    return { query: search.query, key: search.key, before, limit: SEARCH_PAGE };
  }

  /// The search page just asked for could not be sent (no connection).
  searchNotSent() {
    this.searchesAsked.pop();
    this.search.pending = false;
    this.search.error = 'not connected: search once reconnected';
  }

  /// The connection ended: answers to what was asked on it will not come.
  searchLost() {
    this.searchesAsked = [];
    if (this.search?.pending) {
      this.search.pending = false;
      this.search.error = 'the search was cut off by the disconnection: search again once reconnected';
    }
  }

  /// A page of results: added to the last search when it answers the page that search waits for; an answer to a
  /// search replaced since (another query or conversation, or the same asked again) is dropped.
  found({ query, key, hits, next }) {
    const index = this.searchesAsked.findIndex((asked) => asked.query === query && asked.key === key);
    if (index < 0) return;
    const [asked] = this.searchesAsked.splice(0, index + 1).slice(-1);
    const { search } = this;
    if (search === null || asked.serial !== search.serial || !search.pending) return;
    if (hits.length === 0 && next !== null) {
      // The server ended this page before it found anything (it looks at a bounded number of matches): it is not
      // shown, and the next one is asked for at once.
      this.searchToAsk = this.searchPage(next);
      return;
    }
    const from = search.hits.length;
    search.hits.push(...hits);
    search.next = next;
    search.pending = false;
    if (search.typed) {
      const where = this.conversations.has(search.noticeKey) ? search.noticeKey : this.currentKey;
      for (const line of searchLines(search, from, this.now())) this.notice(where, line);
    }
  }

  /// The search page to ask for now, `{ query, key, before, limit }`, once: after a page that found nothing
  /// and says there is more; null when there is none.
  takeSearchToAsk() {
    const request = this.searchToAsk;
    this.searchToAsk = null;
    return request;
  }

  /// An error without an id that may answer the oldest search page asked (see SEARCH_REFUSALS): true when it is
  /// taken as that answer (said in the panel, and as a notice where a typed search was typed), so that the
  /// caller says nothing more of it.
  searchRefused({ code, message, id }) {
    if (id !== null || !SEARCH_REFUSALS.has(code) || this.searchesAsked.length === 0) return false;
    // NotMember answers a search of one conversation only; otherwise it is about another request.
    if (code === 'NotMember' && this.searchesAsked[0].key === null) return false;
    const asked = this.searchesAsked.shift();
    const { search } = this;
    if (search !== null && asked.serial === search.serial && search.pending) {
      search.pending = false;
      search.error = message;
      if (search.typed) this.notice(this.conversations.has(search.noticeKey) ? search.noticeKey : this.currentKey, message, true);
    }
    return true;
  }

  /// Where result `number` (from 1) of the last search is, `{ key, seq }`, for /goto or a click on it; or
  /// `{ error }`. A room left since cannot show it; a direct conversation is opened again.
  goto(number) {
    const hit = this.search?.hits[number - 1];
    if (hit === undefined) return { error: `no search result [${number}]` };
    if (isRoomKey(hit.conversation) && !this.conversations.has(hit.conversation)) return { error: `you are no longer in ${hit.conversation}` };
    return { key: hit.conversation, seq: hit.seq };
  }

  /// The `History` request that fetches older messages of `key`, or null when there is nothing older or a page
  /// is already on its way.
  olderRequest(key, limit = HISTORY_PAGE) {
    const conversation = this.conversation(key);
    if (conversation.history !== 'more') return null;
    const before = conversation.lowestSeq() ?? conversation.latestSeq + 1;
    if (before <= 1) {
      conversation.history = 'start';
      return null;
    }
    conversation.history = 'loading';
    return { key, before, limit };
  }

  /// Pages that are no longer waited for: older messages may be asked for again.
  historyAnswered() {
    for (const conversation of this.conversations.values()) {
      if (conversation.history === 'loading') conversation.history = 'more';
    }
  }

  /// A History request that could not be sent (no connection): older messages may still be fetched later.
  olderRequestFailed(key) {
    const conversation = this.conversation(key);
    if (conversation.history === 'loading') conversation.history = 'more';
  }
}
