// The page's entry point: signing in and out, and the session in between, which joins the engine (network and
// outbox), the model (what is shown) and the screens (ui.js): engine events update the model and the screen,
// typed entries and searches become engine calls. It also keeps the tab's title, the read markers (kept in the
// browser, and sent to a server of version 6 when the model says), the typing notices the composer's text makes, the
// user's preferences (silenced conversations, highlight words, ignored nicknames, read receipts and typing notices
// on or off: the model applies them, the store keeps them), the connection banner and the desktop notifications.

import { HELP, LIST_PAGE, TYPED_HISTORY, parseEntry, parseSearch } from './commands.js';
import { Engine } from './engine.js';
import { ChatModel, HISTORY_PAGE, HISTORY_PAGE_MAX } from './model.js';
import { LOBBY, PREVIOUS_VERSION, PROTOCOL_VERSION, isRoomKey, parseNick, parseRoom, roomKey, textProblem } from './protocol.js';
import { IndexedDbStore } from './store.js';
import { ChatView, SignInView } from './ui.js';

/// Nicknames that signed in from this browser (not secret): they are not asked for their password twice.
const KNOWN_NICKS = 'palomar.knownNicks';
/// The last nickname signed in, to fill the form after a reload.
const LAST_NICK = 'palomar.lastNick';
/// How long "Connected" stays in the banner after a connection is made.
const CONNECTED_BANNER_MS = 3000;
/// Longest password the server takes, in bytes (PROTOCOL.md section 8).
const MAX_PASSWORD_BYTES = 1024;

function readKnownNicks() {
  try {
    const value = JSON.parse(localStorage.getItem(KNOWN_NICKS) ?? '[]');
    return Array.isArray(value) ? value.filter((nick) => typeof nick === 'string') : [];
  } catch {
    // A value this page did not write: start the list again.
    return [];
  }
}

function remember(nick) {
  try {
    const known = readKnownNicks();
    if (!known.includes(nick)) localStorage.setItem(KNOWN_NICKS, JSON.stringify([...known, nick]));
    localStorage.setItem(LAST_NICK, nick);
  } catch {
    // Storage refused (private mode, quota): the form then asks for the password twice next time, which is safe.
  }
}

function lastNick() {
  try {
    return localStorage.getItem(LAST_NICK) ?? '';
  } catch {
    return '';
  }
}

function isKnown(rawNick) {
  const parsed = parseNick(rawNick);
  return parsed.error === undefined && readKnownNicks().includes(parsed.name);
}

/// What a login refusal means for the person signing in.
function loginRefusalText(code, message) {
  switch (code) {
    case 'AuthFailed':
      return `Sign-in refused: wrong password, or this server does not register new nicknames.\n(The server said: ${message})`;
    case 'RateLimited':
      return `Too many attempts: ${message}.`;
    case 'ServerBusy':
    case 'ServerFull':
      return `The server is busy (${message}).`;
    case 'UnsupportedVersion':
      return `This page speaks protocol versions ${PREVIOUS_VERSION} and ${PROTOCOL_VERSION}, neither of which the server does: reload the page to get the server's own. (${message})`;
    case 'InvalidName':
      return `The server refused the nickname: ${message}`;
    default:
      return `The server refused the sign-in: ${message}`;
  }
}

/// What a refusal for good took back, by the kind of what was sent.
const NOT_DONE = {
  Text: 'A message was not sent',
  Action: 'A message was not sent',
  Edit: 'An edit was not made',
  Deletion: 'A deletion was not made',
  Reply: 'A reply was not sent',
  Reaction: 'A reaction was not made',
};

function plural(count, one, many) {
  return count === 1 ? `${count} ${one}` : `${count} ${many}`;
}

/// One signed-in account, from the sign-in form until signing out or a refusal.
class Session {
  constructor(app, nick, password, store) {
    this.app = app;
    this.nick = nick;
    this.store = store;
    this.model = new ChatModel(nick);
    /// The chat screen is shown (at once for a nickname this browser knows, else after `Welcome`).
    this.shown = false;
    this.welcomedOnce = false;
    this.banner = null;
    this.bannerTimer = null;
    /// What the server said when it last refused the login for now, until the next attempt.
    this.refusal = null;
    this.renderQueued = false;
    /// The message a reply's quote asked to see, `{ key, seq }`, while older pages are fetched to find it.
    this.seeking = null;
    /// The message to highlight once drawn, or null.
    this.highlightSeq = null;
    /// Timers that draw again when the next read marker is due and when the next "typing" shown expires.
    this.markTimer = null;
    this.typingTimer = null;
    this.engine = new Engine({
      url: `wss://${location.host}/ws`,
      nick,
      password,
      store,
      openSocket: (url) => new WebSocket(url),
      onEvent: (event) => this.onEvent(event),
    });
  }

  async start(showAtOnce) {
    if (showAtOnce) this.show();
    await this.engine.start();
  }

  show() {
    if (this.shown) return;
    this.shown = true;
    this.app.signIn.hide();
    this.app.chat.show(this.nick);
    this.scheduleRender();
  }

  onEvent(event) {
    const alerts = this.model.apply(event);
    switch (event.type) {
      case 'status':
        this.onStatus(event);
        break;
      case 'welcome':
        this.welcomedOnce = true;
        remember(this.nick);
        this.show();
        if (event.registered) this.model.notice(roomKey(LOBBY), `Welcome! The nickname ${this.nick} is now registered with your password.`);
        this.askMembers(this.model.currentKey, true);
        break;
      case 'loginRefused':
        // On the form while signing in; in the conversation once the chat is shown (the banner counts down).
        this.refusal = loginRefusalText(event.code, event.message);
        if (this.shown) this.model.notice(this.model.currentKey, this.refusal, true);
        break;
      case 'joined':
        if (event.key === this.model.currentKey) this.askMembers(event.key, true);
        break;
      case 'history':
        this.seek();
        break;
      case 'found': {
        const request = this.model.takeSearchToAsk();
        if (request !== null) this.askForResults(request, this.model.search.typed, true);
        break;
      }
      case 'refused':
        this.model.notice(this.model.currentKey, `${NOT_DONE[event.kind]}: ${event.message}`, true);
        break;
      case 'error':
        // A search's refusal is said with the search (its panel, and where it was typed); a /whois of nobody as such.
        if (!this.model.searchRefused(event) && !this.model.whoisRefused(event)) this.model.notice(this.model.currentKey, errorText(event), true);
        break;
      case 'readMarkers':
        // Another device read further: kept here too, as if read here.
        for (const { key, nick } of event.markers) {
          const conversation = this.model.conversations.get(key);
          if (nick === this.nick && conversation !== undefined) this.saveReadMarker(key, conversation.readSeq);
        }
        break;
      case 'shuttingDown':
        this.model.notice(this.model.currentKey, `The server is shutting down: ${event.message}`);
        break;
      default:
        // The rest only changes the model, done above.
        break;
    }
    for (const message of alerts) this.app.notify(message, () => this.select(message.conversation));
    this.scheduleRender();
  }

  onStatus(event) {
    clearTimeout(this.bannerTimer);
    switch (event.state) {
      case 'connecting':
        this.refusal = null;
        this.banner = this.welcomedOnce ? { text: 'Connecting…', ok: false, retry: false } : null;
        if (!this.shown) this.app.signIn.showProgress('Signing in…');
        break;
      case 'live':
        for (const conversation of this.model.conversations.values()) conversation.membersKnown = false;
        this.banner = { text: 'Connected', ok: true, retry: false };
        this.bannerTimer = setTimeout(() => {
          this.banner = null;
          this.scheduleRender();
        }, CONNECTED_BANNER_MS);
        break;
      case 'waiting':
        this.banner = { reconnectIn: event.remainingSeconds, reason: event.reason };
        if (!this.shown) {
          const why = this.refusal ?? `${event.reason}.`;
          this.app.signIn.showProgress(`${why} Retrying in ${event.remainingSeconds} s…`);
        }
        break;
      case 'stopped':
        this.end(event.signedOut ? '' : loginRefusalText(event.code ?? (event.passwordRefused ? 'AuthFailed' : ''), event.reason));
        return;
      default:
        break;
    }
  }

  /// Back to the sign-in form, with `error` said there.
  end(error) {
    clearTimeout(this.bannerTimer);
    clearTimeout(this.markTimer);
    clearTimeout(this.typingTimer);
    this.store.close();
    this.app.sessionEnded(this, error);
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    // Not requestAnimationFrame: it does not run in a hidden tab, whose title must still count unread messages.
    setTimeout(() => {
      this.renderQueued = false;
      this.render();
    }, 0);
  }

  render() {
    if (this.app.session !== this) return;
    if (this.shown) {
      this.app.chat.render(this.model);
      // Read: what the tab shows, focused, with the newest message in view (drawn again with what that changed).
      if (document.visibilityState === 'visible' && document.hasFocus() && this.app.chat.atNewest()) {
        const marker = this.model.markCurrentRead();
        if (marker !== null) {
          this.saveReadMarker(this.model.currentKey, marker);
          this.app.chat.render(this.model);
        }
      }
      this.sendReadMarkers();
      this.timeTyping();
    }
    const unread = this.model.totalUnread();
    document.title = unread > 0 ? `(${unread}) Palomar` : 'Palomar';
    if (!this.shown) return;
    if (this.highlightSeq !== null) {
      this.app.chat.highlight(this.highlightSeq);
      this.highlightSeq = null;
    }
    this.app.chat.renderBanner(this.bannerToShow());
    this.app.renderNotifyButton();
  }

  saveReadMarker(key, seq) {
    this.store.saveReadMarker(key, seq).catch((error) => {
      this.model.notice(this.model.currentKey, `Could not save where you stopped reading: ${error.message}`, true);
    });
  }

  /// Sends the read markers due (see ChatModel.readMarkersToSend), and draws again when the next one is.
  sendReadMarkers() {
    const { send, nextAt } = this.model.readMarkersToSend();
    for (const { key, seq } of send) this.engine.markRead(key, seq);
    clearTimeout(this.markTimer);
    this.markTimer = nextAt === null ? null : setTimeout(() => this.scheduleRender(), Math.max(0, nextAt - Date.now()));
  }

  /// Draws again when the next "typing" shown expires.
  timeTyping() {
    const expiry = this.model.nextTypingExpiry();
    clearTimeout(this.typingTimer);
    this.typingTimer = expiry === null ? null : setTimeout(() => this.scheduleRender(), Math.max(0, expiry - Date.now()) + 20);
  }

  /// The composer's text changed: typing notices, as the model decides them (sent now or never).
  composerChanged(text) {
    for (const { key, typing } of this.model.composerChanged(text)) this.engine.typing(key, typing);
  }

  /// Sets our away message (null: back), said at once; the engine keeps it until the server has it.
  setAway(message) {
    if (this.model.setAway(message)) this.engine.setAway(message ?? '');
    this.scheduleRender();
  }

  /// The banner's words: a countdown counts what waits in the outbox now, not when the countdown last ticked.
  bannerToShow() {
    const banner = this.banner;
    if (banner === null || banner.reconnectIn === undefined) return banner;
    const pending = this.engine.pending;
    const waiting = pending > 0 ? ` (${plural(pending, 'message', 'messages')} waiting)` : '';
    return { text: `Reconnecting in ${banner.reconnectIn} s…${waiting}`, ok: false, retry: true, title: banner.reason };
  }

  select(key) {
    this.model.select(key);
    // Typing in the conversation switched away from stops.
    this.composerChanged('');
    this.askMembers(key, false);
    this.scheduleRender();
  }

  /// Asks for a room's members when they are not known (or `again`, after a reconnection or a join).
  askMembers(key, again) {
    if (!isRoomKey(key)) return;
    const conversation = this.model.conversation(key);
    if (again || !conversation.membersKnown) this.engine.requestUsers(key.slice(1));
  }

  notConnected(what) {
    this.model.notice(this.model.currentKey, `Not connected: ${what} once reconnected.`, true);
  }

  /// One typed entry: a message or a command. False when the entry should stay in the composer (a mistake).
  submit(line) {
    const entry = parseEntry(line);
    if (entry === null) return false;
    const here = this.model.currentKey;
    switch (entry.kind) {
      case 'text':
        // In reply mode, what is typed answers the message the composer quotes.
        if (this.model.replying !== null) return this.sendPost(this.model.replyFor({ seq: this.model.replying, text: entry.text }));
        return this.send(here, entry.text);
      case 'action':
        return this.send(here, entry.text, 'Action');
      case 'edit':
      case 'delete':
        return this.sendPost(this.model.postFor(entry));
      case 'reply':
        return this.sendPost(this.model.replyFor(entry));
      case 'react':
        return this.sendPost(this.model.reactionFor(entry));
      case 'join':
        return this.join(entry.room);
      case 'leave':
        return this.leave(entry.room);
      case 'msg':
        this.select(`@${entry.nick}`);
        return entry.text === null ? true : this.send(`@${entry.nick}`, entry.text);
      case 'users': {
        const room = entry.room ?? (isRoomKey(here) ? here.slice(1) : LOBBY);
        this.model.usersAsked.add(room);
        if (!this.engine.requestUsers(room)) {
          this.model.usersAsked.delete(room);
          this.notConnected('the member list can be asked for');
        }
        break;
      }
      case 'history':
        this.olderMessages(entry.count ?? TYPED_HISTORY, true);
        break;
      case 'list':
        if (!this.engine.listRooms(entry.after, LIST_PAGE)) this.notConnected('the rooms can be listed');
        break;
      case 'topic':
        if (isRoomKey(here)) {
          this.model.showTopic(here);
        } else {
          this.model.notice(here, '/topic works in a room, not in a direct conversation.', true);
        }
        break;
      case 'moderate':
        if (!isRoomKey(here)) {
          this.model.notice(here, `${entry.command} works in a room, not in a direct conversation.`, true);
        } else if (!this.engine.moderate(here.slice(1), entry.action)) {
          this.notConnected(`${entry.command} works`);
        }
        break;
      case 'silence':
        this.preferencesChanged(this.model.silence(entry.key));
        break;
      case 'unsilence':
        this.preferencesChanged(this.model.unsilence(entry.key));
        break;
      case 'highlight':
        this.preferencesChanged(this.model.highlight(entry.word));
        break;
      case 'unhighlight':
        this.preferencesChanged(this.model.unhighlight(entry.word));
        break;
      case 'ignore':
        this.preferencesChanged(this.model.ignore(entry.nick));
        break;
      case 'unignore':
        this.preferencesChanged(this.model.unignore(entry.nick));
        break;
      case 'receipts':
        // On again, the marker of what was read meanwhile goes by the usual rule when drawn.
        this.preferencesChanged(this.model.setReceipts(entry.on));
        break;
      case 'typing':
        this.preferencesChanged(this.model.setTyping(entry.on));
        // Off: a `typing: true` not yet stopped is stopped at once.
        this.composerChanged('');
        break;
      case 'search':
        if (entry.query === null) {
          this.moreResults(true);
        } else {
          this.searchFor(entry, true);
        }
        break;
      case 'goto':
        this.gotoResult(entry.number);
        break;
      case 'away':
        this.setAway(entry.message);
        break;
      case 'whois':
        if (this.model.whoisFor(entry.nick) && !this.engine.whois(entry.nick)) {
          this.model.whoisNotSent();
          this.notConnected('/whois works');
        }
        break;
      case 'help':
        for (const [usage, what] of HELP) this.model.notice(here, `${usage.padEnd(19)} ${what}`);
        this.model.notice(here, 'Keys: Enter sends, Shift+Enter starts a new line, Ctrl+F searches, Esc closes the conversation list or the search results, or gives up a reply.');
        break;
      case 'quit':
        this.app.signOut();
        return true;
      case 'error':
        this.model.notice(here, entry.message, true);
        this.scheduleRender();
        return false;
      default:
        return false;
    }
    this.scheduleRender();
    return true;
  }

  /// Keeps the preferences in the store once a command `changed` them (the model said what it did); a failure
  /// is said, and they still apply to this page.
  preferencesChanged(changed) {
    if (!changed) return;
    this.store.savePreferences(this.model.savedPreferences()).catch((error) => {
      this.model.notice(this.model.currentKey, `Could not keep your preferences in this browser (they apply until you sign out): ${error.message}`, true);
      this.scheduleRender();
    });
  }

  /// Sends a post about another message in the conversation shown, as the model made it from a command, or says
  /// why there is none. A reply sent ends the composer's reply mode.
  sendPost(post) {
    const here = this.model.currentKey;
    if (post.error !== undefined) {
      this.model.notice(here, `Nothing sent: ${post.error}.`, true);
      this.scheduleRender();
      return false;
    }
    const sent = this.send(here, post.text, post.kind, post.of, post.added);
    if (sent && post.kind === 'Reply') this.model.replying = null;
    return sent;
  }

  /// Sends `text` as a message, an action, or an edit, a deletion, a reply or a reaction about message `of` (see
  /// Engine.send). A deletion's text is its reason, which commands.js checked.
  send(key, text, kind = 'Text', of = null, added = null) {
    const problem = kind === 'Deletion' ? null : textProblem(text);
    if (problem !== null) {
      this.model.notice(this.model.currentKey, `Not sent: ${problem}.`, true);
      this.scheduleRender();
      return false;
    }
    this.engine.send(key, text, kind, of, added);
    return true;
  }

  join(room) {
    const key = roomKey(room);
    if (this.model.conversations.has(key)) {
      this.select(key);
    } else {
      this.model.switchTo = key;
    }
    if (!this.engine.join(room)) {
      this.model.switchTo = null;
      this.notConnected(`${key} can be joined`);
    }
    this.scheduleRender();
    return true;
  }

  leave(room) {
    const here = this.model.currentKey;
    if (room === null && !isRoomKey(here)) {
      // A direct conversation has no membership to leave: it is only closed here.
      this.model.remove(here);
      this.scheduleRender();
      return true;
    }
    const name = room ?? here.slice(1);
    if (name === LOBBY) {
      this.model.notice(here, '#lobby cannot be left: every account is a member.', true);
    } else if (!this.engine.leave(name)) {
      this.notConnected(`#${name} can be left`);
    }
    this.scheduleRender();
    return true;
  }

  /// A search typed in the search field (its `in:` words read as /search reads them), in the conversation shown
  /// only when `here` is ticked and no `in:` word names another; the results panel opens.
  searchTyped(text, here) {
    const parsed = parseSearch(text);
    const search = parsed.error === undefined ? { ...parsed, scope: parsed.scope ?? (here ? 'here' : null) } : { query: text.trim(), scope: null, error: parsed.error };
    this.model.searchOpen = true;
    this.searchFor(search, false);
  }

  /// Starts a search (see ChatModel.searchFor); `typed` with /search, whose mistakes are said as notices.
  searchFor(search, typed) {
    this.askForResults(this.model.searchFor(search, typed), typed, true);
  }

  /// The next page of the last search: /search alone (`typed`), or the panel's "More". Why there is none (nothing
  /// more to find, none asked yet) is news, not a mistake.
  moreResults(typed) {
    this.askForResults(this.model.moreResults(typed), typed, false);
  }

  askForResults(request, typed, mistake) {
    if (request.error !== undefined) {
      if (typed) this.model.notice(this.model.currentKey, request.error, mistake);
    } else if (!this.engine.search(request.query, request.key, request.before, request.limit)) {
      this.model.searchNotSent();
      if (typed) this.model.notice(this.model.currentKey, this.model.search.error, true);
    }
    this.scheduleRender();
  }

  closeSearch() {
    this.model.searchOpen = false;
    this.scheduleRender();
  }

  /// Shows search result `number` (from 1) in its conversation, highlighted, as /goto or a click on it asks.
  gotoResult(number) {
    const target = this.model.goto(number);
    if (target.error !== undefined) {
      this.model.notice(this.model.currentKey, target.error, true);
      this.scheduleRender();
      return;
    }
    this.select(target.key);
    this.showMessage(target.key, target.seq);
  }

  /// The composer answers message `seq` of the conversation shown (its menu's "Reply"), or no message (null).
  replyTo(seq) {
    this.model.replying = seq;
    this.scheduleRender();
  }

  /// Adds our reaction `emoji` to message `seq` of the conversation shown, or takes it back (a chip or the menu).
  react(seq, emoji) {
    this.sendPost(this.model.reactionFor({ seq, emoji }));
  }

  /// Shows message `seq` of the conversation shown, highlighted (a reply's quote was clicked): older pages are
  /// fetched until it is there, or until nothing older is left, which is then said.
  showOriginal(seq) {
    this.showMessage(this.model.currentKey, seq);
  }

  /// Brings message `seq` of conversation `key`, the one shown, on screen, highlighted (see `seek`).
  showMessage(key, seq) {
    this.seeking = { key, seq };
    this.seek();
  }

  /// One step of `showMessage`: the message is there, or a page is on its way, or one is asked for (reaching back
  /// to it at once when one page can), or it is not to be had. Given up when another conversation is shown.
  seek() {
    const { seeking } = this;
    if (seeking === null) return;
    const { key, seq } = seeking;
    const conversation = this.model.current;
    if (key !== this.model.currentKey) {
      this.seeking = null;
    } else if (conversation.quote(seq).state !== 'missing') {
      this.seeking = null;
      this.highlightSeq = seq;
    } else if (conversation.history === 'loading') {
      return;
    } else {
      // Only a message older than the oldest held may still come, in an older page.
      const older = (conversation.lowestSeq() ?? seq + 1) > seq;
      const before = conversation.lowestSeq() ?? conversation.latestSeq + 1;
      // A few messages before it too, so that it is read in its place.
      const reach = Math.min(HISTORY_PAGE_MAX, Math.max(HISTORY_PAGE, before - seq + 10));
      const request = older ? this.model.olderRequest(key, reach) : null;
      if (request === null) {
        this.seeking = null;
        const trimmed = older && conversation.history === 'trimmed' ? ': it is older than what the server keeps' : '';
        this.model.notice(key, `Message #${seq} is not in ${key} any more${trimmed}.`, true);
      } else if (!this.engine.requestHistory(request.key, request.before, request.limit)) {
        this.seeking = null;
        this.model.olderRequestFailed(key);
        this.notConnected('the message answered can be shown');
      }
    }
    this.scheduleRender();
  }

  /// Asks for older messages of the conversation shown; `typed` when asked for with /history (said as a notice).
  olderMessages(limit, typed) {
    const key = this.model.currentKey;
    const conversation = this.model.conversation(key);
    if (conversation.history === 'loading') {
      if (typed) this.model.notice(key, 'Older messages are already on their way.');
      return;
    }
    const request = this.model.olderRequest(key, limit);
    if (request === null) {
      if (typed) this.model.notice(key, 'There is nothing older to fetch.');
    } else if (this.engine.requestHistory(request.key, request.before, request.limit)) {
      if (typed) this.model.notice(key, `Fetching ${limit} older messages…`);
    } else {
      this.model.olderRequestFailed(key);
      if (typed) this.notConnected('older messages can be fetched');
    }
    this.scheduleRender();
  }
}

function errorText(event) {
  if (event.code === 'StoreUnavailable') return `The server could not store a message just now; sending it again shortly. (${event.message})`;
  if (event.code === null) return event.message;
  return `${event.code}: ${event.message}`;
}

/// The page: the two screens and the session, if any.
class App {
  constructor() {
    this.session = null;
    this.signIn = new SignInView({
      server: location.origin,
      onSubmit: (typed) => this.submitSignIn(typed),
      onCancel: () => this.signOut(),
      needsConfirm: (nick) => nick.trim() !== '' && !isKnown(nick),
    });
    this.chat = new ChatView({
      onSelect: (key) => this.session?.select(key),
      onSubmit: (text) => this.session?.submit(text) ?? false,
      onLoadOlder: () => this.session?.olderMessages(HISTORY_PAGE, false),
      onJoin: (text) => this.joinTyped(text),
      onOpenDirect: (nick) => this.session?.select(`@${nick}`),
      onSignOut: () => this.signOut(),
      onRetryNow: () => this.session?.engine.retryNow(),
      onEnableNotifications: () => this.enableNotifications(),
      onReply: (seq) => this.session?.replyTo(seq),
      onCancelReply: () => this.session?.replyTo(null),
      onReact: (seq, emoji) => this.session?.react(seq, emoji),
      onShowOriginal: (seq) => this.session?.showOriginal(seq),
      onSearch: (text, here) => this.session?.searchTyped(text, here),
      onMoreResults: () => this.session?.moreResults(false),
      onGotoResult: (number) => this.session?.gotoResult(number),
      onCloseSearch: () => this.session?.closeSearch(),
      onComposerChanged: (text) => this.session?.composerChanged(text),
      onScrolledToNewest: () => this.session?.scheduleRender(),
      onBack: () => this.session?.setAway(null),
    });
    const refresh = () => this.session?.scheduleRender();
    document.addEventListener('visibilitychange', refresh);
    window.addEventListener('focus', refresh);
    this.signIn.show(lastNick());
  }

  async submitSignIn({ nick: rawNick, password, confirm }) {
    const parsed = parseNick(rawNick);
    if (parsed.error !== undefined) {
      this.signIn.showError(`The ${parsed.error}.`);
      return;
    }
    const nick = parsed.name;
    const bytes = new TextEncoder().encode(password).length;
    if (bytes === 0 || bytes > MAX_PASSWORD_BYTES) {
      this.signIn.showError(`The password must be 1 to ${MAX_PASSWORD_BYTES} bytes long.`);
      return;
    }
    const known = readKnownNicks().includes(nick);
    if (!known && password !== confirm) {
      this.signIn.showError('The two passwords differ. A free nickname is registered with the password typed, so type the same one twice.');
      return;
    }
    this.signIn.setBusy(true);
    this.signIn.showProgress('Signing in…');
    let store;
    try {
      store = await IndexedDbStore.open(nick);
    } catch (error) {
      this.signIn.setBusy(false);
      this.signIn.showError(`This browser cannot keep messages safe (${error.message}), so the client cannot run here.`);
      return;
    }
    const session = new Session(this, nick, password, store);
    this.session = session;
    try {
      await session.start(known);
    } catch (error) {
      session.end(`Could not read what this browser kept for ${nick}: ${error.message}`);
    }
  }

  joinTyped(text) {
    const parsed = parseRoom(text);
    if (this.session === null) return false;
    if (parsed.error !== undefined) {
      this.session.model.notice(this.session.model.currentKey, `/join ROOM: ${parsed.error}`, true);
      this.session.scheduleRender();
      return false;
    }
    return this.session.join(parsed.name);
  }

  signOut() {
    const { session } = this;
    if (session === null) return;
    session.engine.quit();
  }

  /// The session stopped (signed out, or refused): back to the form.
  sessionEnded(session, error) {
    if (this.session !== session) return;
    this.session = null;
    document.title = 'Palomar';
    this.chat.hide();
    this.signIn.show(session.nick, error);
  }

  notificationsSupported() {
    return typeof Notification === 'function';
  }

  renderNotifyButton() {
    this.chat.renderNotifyButton(this.notificationsSupported() && Notification.permission === 'default');
  }

  /// Asked only when the user clicks "Enable notifications", never on load.
  async enableNotifications() {
    if (!this.notificationsSupported()) return;
    const answer = await Notification.requestPermission();
    if (this.session !== null) {
      const said =
        answer === 'granted'
          ? 'Notifications on: mentions, replies to you, highlight words and direct messages are shown while this tab is hidden (none from silenced conversations: /silence).'
          : 'Notifications stay off (the browser was told not to show them).';
      this.session.model.notice(this.session.model.currentKey, said);
      this.session.scheduleRender();
    }
    this.renderNotifyButton();
  }

  /// A desktop notification for a message that alerts (the model's rule: not silenced, not ignored; a mention, a
  /// reply to us, a highlight word or a direct message), while the tab is hidden.
  notify(message, open) {
    if (!this.notificationsSupported() || Notification.permission !== 'granted' || document.visibilityState !== 'hidden') return;
    const text = message.kind === 'Action' ? `* ${message.from} ${message.text}` : message.text;
    const notification = new Notification(`${message.from} in ${message.conversation}`, {
      body: text.length > 200 ? `${text.slice(0, 200)}…` : text,
      tag: message.conversation,
    });
    notification.onclick = () => {
      window.focus();
      open();
      notification.close();
    };
  }
}

new App();
