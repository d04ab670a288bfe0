// What the chat screen shows, without the screen: the conversations with their messages, notices, pending and
// failed messages, unread counts, mentions, members and how far back their history goes. The engine's events
// go in (`apply`), and ui.js draws the result; nothing here touches the DOM or the network.

import { LOBBY, isRoomKey, mentions, roomKey } from './protocol.js';

/// Messages asked for at a time when scrolling back.
export const HISTORY_PAGE = 50;

/// One conversation as shown.
class Conversation {
  constructor(key) {
    this.key = key;
    /// Stored messages by seq.
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
  }

  get isRoom() {
    return isRoomKey(this.key);
  }

  get name() {
    return this.key.slice(1);
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

  /// Messages from others after the read marker, and those of them that mention `me`.
  unread(me) {
    let count = 0;
    let mentioned = 0;
    for (const message of this.messages.values()) {
      if (message.seq > this.readSeq && message.from !== me) {
        count += 1;
        if (message.mention) mentioned += 1;
      }
    }
    return { count, mentioned };
  }

  /// What to draw, in order: stored messages and notices by seq, then what is not stored yet.
  entries() {
    const stored = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const lines = [];
    let noticeIndex = 0;
    // By time rather than by arrival: older messages that come after a notice (a join's window, a history
    // page) go above it.
    const notices = [...this.notices].sort((a, b) => a.ts - b.ts || a.number - b.number);
    for (const message of stored) {
      while (noticeIndex < notices.length && notices[noticeIndex].ts < message.ts) {
        lines.push({ kind: 'notice', ...notices[noticeIndex] });
        noticeIndex += 1;
      }
      lines.push({ kind: 'message', ...message });
    }
    for (; noticeIndex < notices.length; noticeIndex += 1) lines.push({ kind: 'notice', ...notices[noticeIndex] });
    for (const message of this.unsent.values()) lines.push({ kind: 'message', ...message });
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
  }

  get current() {
    return this.conversation(this.currentKey);
  }

  /// The conversation of `key`, made if new.
  conversation(key) {
    let conversation = this.conversations.get(key);
    if (conversation === undefined) {
      conversation = new Conversation(key);
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

  select(key) {
    this.conversation(key);
    this.currentKey = key;
  }

  /// Marks the conversation shown as read up to its newest message; the new marker, or null when unchanged.
  markCurrentRead() {
    const conversation = this.current;
    const highest = conversation.highestSeq();
    if (highest <= conversation.readSeq) return null;
    conversation.readSeq = highest;
    return highest;
  }

  notice(key, text, error = false) {
    const conversation = this.conversation(key);
    this.noticeCount += 1;
    conversation.notices.push({ number: this.noticeCount, text, ts: this.now(), error });
  }

  /// Removes a conversation we are no longer in; `#lobby` is shown instead if it was current.
  remove(key) {
    this.conversations.delete(key);
    if (this.currentKey === key) this.currentKey = roomKey(LOBBY);
    this.conversation(roomKey(LOBBY));
  }

  addMessage(message) {
    const conversation = this.conversation(message.conversation);
    if (conversation.messages.has(message.seq)) return null;
    const own = message.from === this.me;
    const entry = { ...message, own, mention: !own && mentions(message.text, this.me), state: 'stored' };
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
      own: true,
      mention: false,
      state: 'pending',
    });
  }

  /// An engine event. Returns the messages worth a desktop notification: from others, mentioning us or direct.
  apply(event) {
    switch (event.type) {
      case 'restored':
        for (const list of event.messages.values()) for (const message of list) this.addMessage(message);
        for (const [key, seq] of event.readMarkers) this.conversation(key).readSeq = seq;
        for (const entry of event.outbox) this.addUnsent(entry);
        for (const conversation of this.conversations.values()) conversation.settleHistory();
        return [];
      case 'status':
        this.live = event.state === 'live';
        // A page asked for on a connection that ended will not come: it may be asked for again.
        if (!this.live) this.historyAnswered();
        return [];
      case 'error':
        // Refusals of a request (not of a message): which request is not said, so none is waited for any more.
        if (event.id === null && event.code === 'NotMember') this.historyAnswered();
        if (event.id === null && (event.code === 'LimitReached' || event.code === 'InvalidName')) this.switchTo = null;
        return [];
      case 'welcome':
        for (const info of event.conversations) this.learn(info);
        return [];
      case 'joined':
        this.learn(event);
        if (this.switchTo === event.key) {
          this.currentKey = event.key;
          this.switchTo = null;
        }
        return [];
      case 'queued':
        this.addUnsent(event.entry);
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
        for (const conversation of this.conversations.values()) {
          const unsent = conversation.unsent.get(event.id);
          if (unsent !== undefined) {
            unsent.state = 'failed';
            unsent.failure = event.message;
          }
        }
        return [];
      case 'messages': {
        const alerts = [];
        for (const message of event.messages) {
          const entry = this.addMessage(message);
          if (entry !== null && !entry.own && (entry.mention || !isRoomKey(message.conversation))) alerts.push(entry);
          this.conversation(message.conversation).settleHistory();
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
        this.notice(roomKey(LOBBY), `you left ${event.key}`);
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
      default:
        return [];
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
        this.notice(key, `${nick} left`);
        break;
      case 'Online':
        conversation.members.set(nick, true);
        break;
      case 'Offline':
        conversation.members.set(nick, false);
        break;
      default:
        break;
    }
  }

  users({ room, online, offline }) {
    const key = roomKey(room);
    const conversation = this.conversation(key);
    conversation.members = new Map([...online.map((nick) => [nick, true]), ...offline.map((nick) => [nick, false])]);
    conversation.membersKnown = true;
    if (this.usersAsked.delete(room)) {
      const list = (names) => (names.length > 0 ? names.join(', ') : '(none)');
      this.notice(this.currentKey, `${key} online: ${list(online)}; offline: ${list(offline)}`);
    }
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
