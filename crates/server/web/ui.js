// The DOM of the two screens, sign-in and chat: drawing a ChatModel into the page and turning the user's clicks
// and keys into calls of the handlers app.js gives. Text from the network goes into the page only through
// textContent and text nodes, and links only through createElement with an `https:` URL checked by links.js.

import { linkPieces } from './links.js';
import { markWords, searchHeader, searchHit } from './model.js';
import { REACTIONS } from './protocol.js';
import { richPieces } from './rich.js';

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const shortDayFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

/// How long the message log stays quiet (not announced) after it was filled with what is not news.
const QUIET_MS = 500;

/// Where the search results cover the conversation (style.css's phone layout): a result clicked closes them.
const NARROW = '(max-width: 720px)';

/// How long a message shown from a reply's quote or a search result stays highlighted.
const HIGHLIGHT_MS = 2000;

/// Nickname colours, as many as style.css has classes for.
const NICK_COLOURS = 8;

/// The same colour for a nickname everywhere and every time: FNV-1a of its bytes, as the native clients pick it.
function nickColour(nick) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(nick)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(hash % BigInt(NICK_COLOURS));
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/// A text piece of links.js or rich.js as a text node or an `https:` link opening in a new tab.
function textOrLink(piece) {
  if (piece.href === undefined) return document.createTextNode(piece.text);
  const link = element('a', null, piece.text);
  link.href = piece.href;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  return link;
}

/// `text` as text nodes and `https:` links, appended to `parent`.
function appendLinkedText(parent, text) {
  parent.append(...linkPieces(text).map(textOrLink));
}

/// A message's `text` with its code blocks, inline code and links, appended to `parent`.
function appendRichText(parent, text) {
  for (const piece of richPieces(text)) {
    if (piece.block !== undefined) {
      if (piece.language !== '') parent.append(element('span', 'code-language', piece.language));
      const block = element('pre', 'code-block');
      block.append(element('code', null, piece.block));
      parent.append(block);
    } else if (piece.code !== undefined) {
      parent.append(element('code', 'inline-code', piece.code));
    } else {
      parent.append(textOrLink(piece));
    }
  }
}

function byId(id) {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node;
}

/// The sign-in form. `onSubmit({ nick, password, confirm })` is called with what was typed; `needsConfirm(nick)`
/// says whether this nickname asks for its password twice (nothing stored for it in this browser yet).
export class SignInView {
  constructor({ server, onSubmit, onCancel, needsConfirm }) {
    this.screen = byId('signin');
    this.form = byId('signin-form');
    this.nick = byId('signin-nick');
    this.password = byId('signin-password');
    this.confirmRow = byId('signin-confirm-row');
    this.confirm = byId('signin-confirm');
    this.error = byId('signin-error');
    this.progress = byId('signin-progress');
    this.submit = byId('signin-submit');
    this.cancel = byId('signin-cancel');
    this.needsConfirm = needsConfirm;
    byId('signin-server').textContent = server;
    this.nick.addEventListener('input', () => this.updateConfirm());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      onSubmit({ nick: this.nick.value, password: this.password.value, confirm: this.confirm.value });
    });
    this.cancel.addEventListener('click', () => onCancel());
  }

  updateConfirm() {
    const needed = this.needsConfirm(this.nick.value);
    this.confirmRow.hidden = !needed;
    this.confirm.required = needed;
    this.password.autocomplete = needed ? 'new-password' : 'current-password';
  }

  /// Shows the form, `nick` filled in, passwords empty, with an error if there is one.
  show(nick, error = '') {
    this.screen.hidden = false;
    this.nick.value = nick;
    this.password.value = '';
    this.confirm.value = '';
    this.error.textContent = error;
    this.progress.textContent = '';
    this.setBusy(false);
    this.updateConfirm();
    (nick === '' ? this.nick : this.password).focus();
  }

  hide() {
    this.screen.hidden = true;
    this.password.value = '';
    this.confirm.value = '';
  }

  showError(text) {
    this.error.textContent = text;
    this.progress.textContent = '';
  }

  showProgress(text) {
    this.progress.textContent = text;
  }

  /// While signing in: the fields are locked and "Cancel" offered.
  setBusy(busy) {
    for (const field of [this.nick, this.password, this.confirm, this.submit]) field.disabled = busy;
    this.cancel.hidden = !busy;
    if (busy) this.error.textContent = '';
  }
}

/// The chat screen. `handlers` has onSelect(key), onSubmit(text) (true when the entry was taken), onLoadOlder(),
/// onJoin(room text), onOpenDirect(nick), onSignOut(), onRetryNow(), onEnableNotifications(), onReply(seq) (the
/// composer answers message `seq`), onCancelReply(), onReact(seq, emoji) (ours added, or taken back),
/// onShowOriginal(seq) (a reply's quote was clicked), onSearch(text, here) (the search field, `here` when "this
/// conversation only" is ticked), onMoreResults(), onGotoResult(number) (a search result clicked),
/// onCloseSearch(), onComposerChanged(text) (the composer's text changed: typing notices), onScrolledToNewest() (the
/// newest message came into view: read) and onBack() (the top bar's "Back" clears our away message).
export class ChatView {
  constructor(handlers) {
    this.handlers = handlers;
    this.screen = byId('chat');
    this.title = byId('conversation-title');
    this.topic = byId('conversation-topic');
    /// What the topic line was last drawn from, so that a link in it is not made anew at every drawing.
    this.topicDrawn = '';
    this.me = byId('me');
    this.awayStatus = byId('away-status');
    this.awayButton = byId('away-button');
    this.typing = byId('typing');
    /// Our away message as last drawn in the top bar (undefined before the first drawing).
    this.awayDrawn = undefined;
    this.list = byId('conversation-list');
    this.members = byId('member-list');
    this.membersState = byId('members-state');
    this.membersTitle = byId('members-title');
    this.scroller = byId('scroller');
    this.messages = byId('messages');
    this.loadOlder = byId('load-older');
    this.historyState = byId('history-state');
    this.composer = byId('composer');
    this.input = byId('composer-input');
    this.composerLabel = byId('composer-label');
    this.replyBar = byId('reply-bar');
    this.replyBarText = byId('reply-bar-text');
    this.banner = byId('banner');
    this.bannerText = byId('banner-text');
    this.retryNow = byId('retry-now');
    this.drawerToggle = byId('drawer-toggle');
    this.drawerUnread = byId('drawer-unread');
    this.drawerBackdrop = byId('drawer-backdrop');
    this.notifyButton = byId('notify-enable');
    this.searchForm = byId('search-form');
    this.searchInput = byId('search-input');
    this.searchHere = byId('search-here');
    this.searchPanel = byId('search-panel');
    this.searchSummary = byId('search-summary');
    this.searchError = byId('search-error');
    this.searchResults = byId('search-results');
    this.searchMore = byId('search-more');
    /// The search whose results are drawn (its serial) and how many of them, to add a page without drawing the
    /// others anew (a focused result keeps its focus).
    this.searchDrawn = { serial: null, count: 0, state: '' };
    /// "More" was clicked: the first result of the page it brings takes the focus (the button is disabled meanwhile).
    this.focusNextPage = false;
    /// The conversation whose messages are drawn, to know when to jump to the bottom.
    this.shownKey = null;
    /// Drawn message list items by their entry's key, reused while the entry is unchanged.
    this.drawn = new Map();
    /// What each drawn message item shows, to draw it again in place when that changes (an edit, a deletion):
    /// in place, so that the lines after it are not announced again as new.
    this.drawnAs = new WeakMap();
    /// The message menu shown, `{ button, menu }`, or null.
    this.openMenu = null;
    /// Whether the composer answers a message (the reply bar is shown), for Escape to give that up.
    this.replying = false;
    this.listItems = new Map();
    /// What the member list was last drawn from.
    this.membersDrawn = '';
    this.wire();
  }

  wire() {
    const { handlers } = this;
    this.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submitEntry();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submitEntry();
      }
    });
    this.input.addEventListener('input', () => {
      this.fitInput();
      handlers.onComposerChanged(this.input.value);
    });
    this.loadOlder.addEventListener('click', () => handlers.onLoadOlder());
    this.scroller.addEventListener('scroll', () => {
      if (this.scroller.scrollTop < 24 && this.scroller.scrollHeight > this.scroller.clientHeight) handlers.onLoadOlder();
      // Reaching the newest message reads the conversation.
      if (this.atNewest()) handlers.onScrolledToNewest();
    });
    this.awayButton.addEventListener('click', () => {
      // Away: back at once. Not away: the command written, for the message to be typed after it.
      if (this.awayDrawn !== null && this.awayDrawn !== undefined) {
        handlers.onBack();
      } else {
        this.compose('/away ');
      }
    });
    this.list.addEventListener('keydown', (event) => this.moveInList(event));
    byId('join-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const field = byId('join-room');
      if (handlers.onJoin(field.value)) {
        field.value = '';
        this.closeDrawer(false);
        this.input.focus();
      }
    });
    byId('signout').addEventListener('click', () => handlers.onSignOut());
    this.retryNow.addEventListener('click', () => handlers.onRetryNow());
    this.notifyButton.addEventListener('click', () => handlers.onEnableNotifications());
    this.drawerToggle.addEventListener('click', () => (this.drawerOpen() ? this.closeDrawer(true) : this.openDrawer()));
    this.drawerBackdrop.addEventListener('click', () => this.closeDrawer(true));
    this.searchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      handlers.onSearch(this.searchInput.value, this.searchHere.checked);
    });
    this.searchMore.addEventListener('click', () => {
      this.focusNextPage = true;
      handlers.onMoreResults();
    });
    byId('search-close').addEventListener('click', () => this.closeSearch());
    document.addEventListener('keydown', (event) => {
      const searchKey = (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && ['f', 'k'].includes(event.key.toLowerCase());
      const inSearch = this.searchPanel.contains(document.activeElement) || this.searchForm.contains(document.activeElement);
      if (searchKey && !this.screen.hidden) {
        // The page's own search rather than the browser's find, which cannot see what is not loaded.
        event.preventDefault();
        this.searchInput.focus();
        this.searchInput.select();
      } else if (event.key === 'Escape' && this.openMenu !== null) {
        event.preventDefault();
        this.closeMenu(true);
      } else if (event.key === 'Escape' && this.drawerOpen()) {
        event.preventDefault();
        this.closeDrawer(true);
      } else if (event.key === 'Escape' && !this.searchPanel.hidden && inSearch) {
        event.preventDefault();
        this.closeSearch();
      } else if (event.key === 'Escape' && this.replying) {
        event.preventDefault();
        this.cancelReply();
      }
    });
    byId('reply-cancel').addEventListener('click', () => this.cancelReply());
    document.addEventListener('click', (event) => {
      const { openMenu } = this;
      if (openMenu !== null && !openMenu.menu.contains(event.target) && !openMenu.button.contains(event.target)) this.closeMenu(false);
    });
  }

  /// Closes the search results; the focus goes back to the search field.
  closeSearch() {
    this.handlers.onCloseSearch();
    this.searchInput.focus();
  }

  /// Leaves reply mode: what is typed goes to the conversation again.
  cancelReply() {
    this.handlers.onCancelReply();
    this.input.focus();
  }

  /// Puts `text` in the composer, to be finished and sent (the menu's "Edit" and "Delete" write the command).
  compose(text) {
    this.input.value = text;
    this.fitInput();
    this.input.focus();
    this.input.setSelectionRange(text.length, text.length);
  }

  openMessageMenu(button, menu) {
    this.closeMenu(false);
    this.openMenu = { button, menu };
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    menu.querySelector('button').focus();
  }

  closeMenu(returnFocus) {
    const { openMenu } = this;
    if (openMenu === null) return;
    this.openMenu = null;
    openMenu.menu.hidden = true;
    openMenu.button.setAttribute('aria-expanded', 'false');
    if (returnFocus) openMenu.button.focus();
  }

  submitEntry() {
    if (this.handlers.onSubmit(this.input.value)) {
      this.input.value = '';
      this.fitInput();
      this.handlers.onComposerChanged('');
    }
  }

  /// Whether the message list shows its newest message (scrolled to the bottom, or too short to scroll).
  atNewest() {
    const { scroller } = this;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  }

  /// Grows the composer with its lines, up to six.
  fitInput() {
    this.input.rows = Math.min(6, Math.max(1, this.input.value.split('\n').length));
  }

  drawerOpen() {
    return this.screen.classList.contains('drawer-open');
  }

  openDrawer() {
    this.screen.classList.add('drawer-open');
    this.drawerToggle.setAttribute('aria-expanded', 'true');
    this.drawerBackdrop.hidden = false;
    const current = this.list.querySelector('button[aria-current="true"]') ?? this.list.querySelector('button');
    if (current !== null) current.focus();
  }

  closeDrawer(returnFocus) {
    if (!this.drawerOpen()) return;
    this.screen.classList.remove('drawer-open');
    this.drawerToggle.setAttribute('aria-expanded', 'false');
    this.drawerBackdrop.hidden = true;
    if (returnFocus) this.drawerToggle.focus();
  }

  /// Arrow keys, Home and End move between the conversations.
  moveInList(event) {
    const buttons = [...this.list.querySelectorAll('button')];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const target = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (target === undefined) return;
    event.preventDefault();
    buttons[Math.max(0, Math.min(buttons.length - 1, target))].focus();
  }

  show(me) {
    this.screen.hidden = false;
    this.me.textContent = me;
    this.shownKey = null;
    this.input.focus();
  }

  hide() {
    this.screen.hidden = true;
    this.closeDrawer(false);
    this.messages.replaceChildren();
    this.list.replaceChildren();
    this.members.replaceChildren();
    this.closeMenu(false);
    this.drawn.clear();
    this.listItems.clear();
    this.membersDrawn = '';
    this.topicDrawn = '';
    this.awayDrawn = undefined;
    this.typing.textContent = '';
    this.input.value = '';
    this.searchInput.value = '';
    this.searchHere.checked = false;
    this.searchResults.replaceChildren();
    this.searchDrawn = { serial: null, count: 0, state: '' };
  }

  /// Draws everything the model holds that this screen shows.
  render(model) {
    const conversation = model.current;
    this.title.textContent = conversation.key;
    this.renderTopic(conversation);
    this.renderReplyBar(model);
    this.renderList(model);
    this.renderMessages(conversation, model.dividerSeq());
    this.renderHistory(conversation);
    this.renderMembers(model, conversation);
    this.renderSearch(model);
    this.renderAway(model.ownAway, model.aware);
    this.typing.textContent = model.typingLine();
  }

  /// Our own away message in the top bar while set (`away: MESSAGE`), and the button that sets it or says we are
  /// back.
  renderAway(away, aware) {
    // Not offered by a server that does not know away messages.
    this.awayButton.hidden = !aware;
    if (away === this.awayDrawn) return;
    this.awayDrawn = away;
    this.awayStatus.hidden = away === null;
    this.awayStatus.textContent = away === null ? '' : `away: ${away}`;
    this.awayStatus.title = away === null ? '' : `You are away: ${away}`;
    this.awayButton.textContent = away === null ? 'Set away' : 'Back';
    this.awayButton.classList.toggle('set', away === null);
    this.awayButton.title = away === null ? 'Say you are away, with a message (/away MESSAGE)' : `You are away: ${away}. Back: the away message goes (/back)`;
  }

  /// The search results panel, while open: the header in the words every client uses (or that the first page is
  /// on its way), why the search failed, the results newest first with the searched words marked, and "More"
  /// while older ones may be found.
  renderSearch(model) {
    const { search } = model;
    this.searchPanel.hidden = !model.searchOpen || search === null;
    if (this.searchPanel.hidden) return;
    const { serial, query, hits, next, pending, error } = search;
    const state = JSON.stringify([serial, hits.length, next, pending, error]);
    if (state === this.searchDrawn.state) return;
    if (serial !== this.searchDrawn.serial) {
      this.searchResults.replaceChildren();
      this.searchDrawn = { serial, count: 0, state: '' };
    }
    this.searchDrawn.state = state;
    const searching = pending && hits.length === 0;
    this.searchSummary.textContent = searching ? `Searching for “${query}”…` : error !== null && hits.length === 0 ? '' : searchHeader(search);
    this.searchError.textContent = error ?? '';
    const items = hits.slice(this.searchDrawn.count).map((hit, index) => this.searchResult(searchHit(hit, this.searchDrawn.count + index + 1), search.words));
    this.searchResults.append(...items);
    this.searchDrawn.count = hits.length;
    if (!pending && this.focusNextPage) {
      this.focusNextPage = false;
      (items[0]?.querySelector('button') ?? (next === null ? this.searchInput : this.searchMore)).focus();
    }
    this.searchMore.hidden = next === null;
    this.searchMore.disabled = pending;
    this.searchMore.textContent = pending ? 'Loading…' : 'More';
  }

  /// One search result as a button that shows the message in its conversation: where, who, when, and the first
  /// line of its text with the searched `words` marked (text nodes and `mark` elements only).
  searchResult({ number, key, from, ts, text, action }, words) {
    const item = element('li');
    const button = element('button', 'search-hit');
    button.type = 'button';
    const meta = element('span', 'search-hit-meta');
    // The time as the messages show it, and the day when it is not today's.
    const date = new Date(ts);
    const today = date.toDateString() === new Date().toDateString();
    const when = element('time', 'search-hit-time', today ? timeFormat.format(date) : `${shortDayFormat.format(date)} ${timeFormat.format(date)}`);
    when.dateTime = date.toISOString();
    when.title = `${dayFormat.format(date)} ${timeFormat.format(date)}`;
    meta.append(element('span', 'search-hit-number', `[${number}]`), element('span', 'search-hit-key', key), element('span', `search-hit-from nick-${nickColour(from)}`, from), when);
    const body = element('span', action ? 'search-hit-text action' : 'search-hit-text');
    if (action) body.append(`* ${from} `);
    for (const piece of markWords(text, words)) body.append(piece.marked ? element('mark', null, piece.text) : piece.text);
    button.append(meta, body);
    button.setAttribute('aria-label', `${number}: ${from} in ${key}, ${when.textContent}: ${action ? `* ${from} ` : ''}${text}. Show this message`);
    button.addEventListener('click', () => {
      this.handlers.onGotoResult(number);
      if (window.matchMedia(NARROW).matches) this.handlers.onCloseSearch();
    });
    item.append(button);
    return item;
  }

  /// The bar above the composer while it answers a message ("Replying to bob: first line ×"), and the
  /// composer's words.
  renderReplyBar(model) {
    const { key } = model.current;
    const quote = model.replyingQuote();
    this.replying = quote !== null;
    this.replyBar.hidden = quote === null;
    if (quote === null) {
      this.composerLabel.textContent = `Message to ${key}`;
      this.input.placeholder = `Message ${key}`;
      return;
    }
    const answered = { shown: quote.from, deleted: 'a deleted message', ignored: quote.text, missing: `message ${quote.text}` }[quote.state];
    this.replyBarText.textContent = quote.state === 'shown' ? `Replying to ${quote.from}: ${quote.text}` : `Replying to ${answered}`;
    this.composerLabel.textContent = `Reply to ${answered} in ${key}`;
    this.input.placeholder = `Reply to ${answered}`;
  }

  /// Scrolls message `seq` of the conversation drawn into view, with the focus, and highlights it for a moment.
  highlight(seq) {
    const item = this.drawn.get(`seq:${seq}`);
    if (item === undefined) return;
    item.scrollIntoView({ block: 'center' });
    item.tabIndex = -1;
    item.focus({ preventScroll: true });
    item.classList.add('highlighted');
    setTimeout(() => item.classList.remove('highlighted'), HIGHLIGHT_MS);
  }

  /// A room's topic (with its links), then its settings and our standing in it, under its name.
  renderTopic(conversation) {
    const { topic } = conversation.roomState;
    const standing = conversation.standing();
    const drawing = JSON.stringify([conversation.key, topic, standing]);
    if (drawing === this.topicDrawn) return;
    this.topicDrawn = drawing;
    this.topic.hidden = topic === '' && standing === '';
    this.topic.title = [topic, standing].filter((part) => part !== '').join(' — ');
    this.topic.replaceChildren();
    appendLinkedText(this.topic, topic);
    if (standing !== '') this.topic.append(element('span', 'room-standing', topic === '' ? standing : ` — ${standing}`));
  }

  renderList(model) {
    const ordered = model.ordered();
    const keep = new Set(ordered.map((conversation) => conversation.key));
    for (const [key, item] of this.listItems) {
      if (!keep.has(key)) {
        item.remove();
        this.listItems.delete(key);
      }
    }
    let totalUnread = 0;
    ordered.forEach((conversation, index) => {
      let item = this.listItems.get(conversation.key);
      if (item === undefined) {
        item = element('li');
        const button = element('button');
        button.type = 'button';
        button.addEventListener('click', () => {
          this.handlers.onSelect(conversation.key);
          this.closeDrawer(false);
          this.input.focus();
        });
        item.append(button);
        this.listItems.set(conversation.key, item);
      }
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] ?? null);
      const { count, mentioned } = conversation.unread(model.me);
      totalUnread += count;
      const button = item.firstElementChild;
      const current = conversation.key === model.currentKey;
      button.setAttribute('aria-current', current ? 'true' : 'false');
      button.classList.toggle('unread', count > 0);
      // A silenced conversation still counts, dimmed (style.css): it never notifies.
      button.classList.toggle('silenced', conversation.silenced);
      button.title = conversation.silenced ? `${conversation.key} is silenced: no notifications (/unsilence to undo)` : '';
      const parts = [element('span', 'conversation-name', conversation.key)];
      const label = [conversation.key];
      if (conversation.silenced) label.push('silenced');
      if (count > 0) {
        const badge = element('span', 'badge', String(count));
        badge.setAttribute('aria-hidden', 'true');
        parts.push(badge);
        label.push(`${count} unread`);
      }
      if (mentioned > 0) {
        const badge = element('span', 'badge mention', `@${mentioned}`);
        badge.setAttribute('aria-hidden', 'true');
        parts.push(badge);
        label.push(mentioned === 1 ? '1 mention' : `${mentioned} mentions`);
      }
      button.replaceChildren(...parts);
      button.setAttribute('aria-label', label.join(', '));
    });
    this.drawerUnread.hidden = totalUnread === 0;
    this.drawerUnread.textContent = String(totalUnread);
  }

  renderMessages(conversation, dividerSeq = null) {
    const switched = this.shownKey !== conversation.key;
    this.shownKey = conversation.key;
    if (switched) {
      // Drawn items are keyed within one conversation (by seq): another conversation starts afresh.
      this.drawn.clear();
      this.messages.replaceChildren();
    }
    const { scroller } = this;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    const firstBefore = this.messages.firstElementChild;

    const nodes = [];
    const seen = new Set();
    let day = null;
    for (const entry of conversation.entries()) {
      const entryDay = dayFormat.format(new Date(entry.ts));
      if (entryDay !== day) {
        day = entryDay;
        nodes.push(this.reuse(`day:${entryDay}`, seen, () => {
          const separator = element('li', 'day', entryDay);
          separator.setAttribute('role', 'separator');
          return separator;
        }));
      }
      if (entry.kind === 'notice') {
        nodes.push(this.reuse(`notice:${entry.number}`, seen, () => element('li', entry.error ? 'notice error' : 'notice', entry.text)));
      } else {
        if (entry.seq !== null && entry.seq === dividerSeq) {
          nodes.push(this.reuse('new-messages', seen, () => {
            const divider = element('li', 'new-messages', 'new messages');
            divider.setAttribute('role', 'separator');
            return divider;
          }));
        }
        const key = entry.seq === null ? `unsent:${entry.id}:${entry.state}:${entry.failure ?? ''}` : `seq:${entry.seq}`;
        const node = this.reuse(key, seen, () => this.messageItem());
        this.drawMessage(node, entry);
        nodes.push(node);
      }
    }
    for (const key of [...this.drawn.keys()]) if (!seen.has(key)) this.drawn.delete(key);
    // Only what changed at the end is removed and appended, so that a screen reader announces new lines only.
    const children = this.messages.children;
    let same = 0;
    while (same < nodes.length && same < children.length && children[same] === nodes[same]) same += 1;
    // Another conversation, or older messages above, are not news: the log is quiet while they are put in.
    const firstMessageBefore = this.messages.querySelector('li.message');
    const firstMessageAfter = nodes.find((node) => node.classList.contains('message')) ?? null;
    const quiet = switched || (firstMessageBefore !== null && firstMessageBefore !== firstMessageAfter);
    if (quiet) this.messages.setAttribute('aria-live', 'off');
    while (children.length > same) children[children.length - 1].remove();
    this.messages.append(...nodes.slice(same));
    // Screen readers read the changes a moment later: the log stays quiet until they have.
    if (quiet) setTimeout(() => this.messages.setAttribute('aria-live', 'polite'), QUIET_MS);

    if (switched || atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (firstBefore !== this.messages.firstElementChild) {
      // Older messages came in above: keep the ones being read where they were.
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    }
  }

  /// A message's list item: its menu also opens with a right click (or a long press) where it has one.
  messageItem() {
    const item = element('li');
    item.addEventListener('contextmenu', (event) => {
      const button = item.querySelector('.message-menu-button');
      if (button === null) return;
      event.preventDefault();
      this.openMessageMenu(button, item.querySelector('.message-menu'));
    });
    return item;
  }

  /// Fills a message's item, unless it already shows what `entry` says. The text goes in as text only (with the
  /// code and links made by appendRichText): an action as "* nick text", an edited message marked so, a deleted
  /// one as its placeholder, in plain text (the client's words and a deleter's reason, not a message to format).
  /// A reply has the quote of what it answers above its text, and a message its reactions' chips under it.
  drawMessage(item, entry) {
    const { from, ts, text, action, edited, deleted, own, mention, state, failure, editable, deletable, waiting, seq, replyTo, reactions } = entry;
    // Stored messages not deleted may be answered and reacted to, where we may speak.
    const answerable = seq !== null && entry.answerable === true;
    const seenBy = entry.seenBy ?? '';
    const drawing = JSON.stringify([from, ts, text, action, edited, deleted, own, mention, state, failure, editable, deletable, waiting, replyTo, reactions, answerable, seenBy]);
    if (this.drawnAs.get(item) === drawing) return;
    if (this.openMenu !== null && item.contains(this.openMenu.menu)) this.closeMenu(false);
    this.drawnAs.set(item, drawing);
    const choices = [];
    if (answerable) {
      choices.push([
        'Reply',
        () => {
          this.handlers.onReply(seq);
          this.input.focus();
        },
      ]);
    }
    if (editable) choices.push(['Edit', () => this.compose(`/edit #${seq} ${text}`)]);
    if (deletable) choices.push(['Delete', () => this.compose(`/delete #${seq} `)]);
    const classes = ['message'];
    if (own) classes.push('own');
    if (mention) classes.push('mention');
    if (action) classes.push('action');
    if (deleted) classes.push('deleted');
    if (state !== 'stored') classes.push(state);
    if (choices.length > 0) classes.push('has-menu');
    item.className = classes.join(' ');
    const time = element('time', 'message-time', timeFormat.format(new Date(ts)));
    time.dateTime = new Date(ts).toISOString();
    const body = element('div', 'message-body');
    const name = element('span', `message-from nick-${nickColour(from)}`, from);
    const textNode = element('span', 'message-text');
    if (deleted) {
      textNode.textContent = text;
    } else {
      appendRichText(textNode, text);
    }
    if (replyTo !== null) body.append(this.replyQuote(replyTo));
    if (action) {
      body.append(element('span', 'message-action-mark', '* '), name, element('span', 'visually-hidden', ' '), textNode);
    } else {
      body.append(name, element('span', 'visually-hidden', ': '), textNode);
    }
    if (edited) body.append(element('span', 'message-edited', '(edited)'));
    if (state === 'pending') body.append(element('span', 'message-state', 'sending…'));
    if (state === 'failed') body.append(element('span', 'message-state', `not sent: ${failure}`));
    if (waiting === 'Edit') body.append(element('span', 'message-state', 'sending an edit…'));
    if (waiting === 'Deletion') body.append(element('span', 'message-state', 'sending a deletion…'));
    if (reactions.length > 0) body.append(this.reactionChips(seq, reactions, answerable));
    if (seenBy !== '') body.append(element('span', 'seen-by', seenBy));
    // The focus stays on the control it was on (a chip clicked, the menu's button), drawn anew.
    const focused = item.contains(document.activeElement) ? document.activeElement.dataset.focus : undefined;
    item.replaceChildren(time, body, ...this.messageMenu(choices, answerable ? seq : null, reactions));
    if (focused !== undefined) item.querySelector(`[data-focus="${focused}"]`)?.focus();
  }

  /// A reply's quote of what it answers: its author and first line, as a button that shows that message.
  replyQuote(replyTo) {
    const quote = element('button', `reply-quote ${replyTo.state}`);
    quote.type = 'button';
    if (replyTo.state === 'shown') {
      quote.append(element('span', `reply-quote-from nick-${nickColour(replyTo.from)}`, replyTo.from), element('span', 'reply-quote-text', replyTo.text));
      quote.setAttribute('aria-label', `In reply to ${replyTo.from}: ${replyTo.text}. Show that message`);
    } else {
      // Deleted, or of someone ignored: the model's words; not loaded: its number.
      const words = replyTo.state === 'missing' ? `message ${replyTo.text}` : replyTo.text;
      quote.append(element('span', 'reply-quote-text', words));
      quote.setAttribute('aria-label', `In reply to ${words}. Show that message`);
    }
    quote.title = 'Show the message this answers';
    quote.dataset.focus = 'quote';
    quote.addEventListener('click', () => this.handlers.onShowOriginal(replyTo.seq));
    return quote;
  }

  /// A message's reactions as chips ("👍 2", who in its title, ours highlighted); a click adds ours or takes it
  /// back, unless we may not speak here (`answerable` false): then they only show.
  reactionChips(seq, reactions, answerable) {
    const row = element('div', 'reactions');
    row.setAttribute('role', 'group');
    row.setAttribute('aria-label', 'Reactions');
    for (const { emoji, name, nicks, mine, pending } of reactions) {
      const chip = element('button', ['reaction', mine ? 'mine' : '', pending ? 'pending' : ''].filter(Boolean).join(' '));
      chip.type = 'button';
      chip.append(element('span', 'reaction-emoji', emoji), element('span', 'reaction-count', String(nicks.length)));
      chip.title = nicks.join(', ');
      chip.setAttribute('aria-pressed', mine ? 'true' : 'false');
      const doing = !answerable ? '' : mine ? '; take yours back' : '; add yours';
      chip.setAttribute('aria-label', `${name}: ${nicks.length} (${nicks.join(', ')})${pending ? ', sending' : ''}${doing}`);
      chip.dataset.focus = `reaction-${name}`;
      chip.disabled = !answerable;
      chip.addEventListener('click', () => this.handlers.onReact(seq, emoji));
      row.append(chip);
    }
    return row;
  }

  /// The "⋯" button and the menu it opens: its choices (`[label, act]`), then, for a message that may be reacted
  /// to (`reactTo`, its seq, else null), the eight reactions, ours among `reactions` marked; nothing when there is
  /// no choice.
  messageMenu(choices, reactTo, reactions) {
    if (choices.length === 0) return [];
    const button = element('button', 'message-menu-button', '⋯');
    button.type = 'button';
    button.dataset.focus = 'menu';
    const labels = [...choices.map(([label]) => label), ...(reactTo === null ? [] : ['React'])];
    button.title = labels.length === 1 ? labels[0] : `${labels.slice(0, -1).join(', ')} or ${labels.at(-1)}`;
    button.setAttribute('aria-label', `${button.title}: this message`);
    button.setAttribute('aria-haspopup', 'menu');
    button.setAttribute('aria-expanded', 'false');
    const menu = element('div', 'message-menu');
    menu.setAttribute('role', 'menu');
    menu.hidden = true;
    const actions = element('div', 'message-menu-actions');
    for (const [label, act] of choices) {
      const choice = element('button', null, label);
      choice.type = 'button';
      choice.setAttribute('role', 'menuitem');
      choice.addEventListener('click', () => {
        this.closeMenu(false);
        act();
      });
      actions.append(choice);
    }
    menu.append(actions);
    if (reactTo !== null) {
      const row = element('div', 'message-menu-reactions');
      row.setAttribute('role', 'group');
      row.setAttribute('aria-label', 'React');
      for (const { emoji, name } of REACTIONS) {
        const mine = reactions.some((chip) => chip.emoji === emoji && chip.mine);
        const choice = element('button', mine ? 'mine' : null, emoji);
        choice.type = 'button';
        choice.setAttribute('role', 'menuitemcheckbox');
        choice.setAttribute('aria-checked', mine ? 'true' : 'false');
        choice.setAttribute('aria-label', mine ? `Take back your ${name}` : `React with ${name}`);
        choice.title = name;
        choice.addEventListener('click', () => {
          this.closeMenu(true);
          this.handlers.onReact(reactTo, emoji);
        });
        row.append(choice);
      }
      menu.append(row);
    }
    button.addEventListener('click', () => {
      if (this.openMenu?.menu === menu) {
        this.closeMenu(true);
      } else {
        this.openMessageMenu(button, menu);
      }
    });
    return [button, menu];
  }

  /// The item drawn before for `key` (made unique within this drawing), else a new one from `make`.
  reuse(key, seen, make) {
    let unique = key;
    for (let repeat = 2; seen.has(unique); repeat += 1) unique = `${key}#${repeat}`;
    seen.add(unique);
    let node = this.drawn.get(unique);
    if (node === undefined) {
      node = make();
      this.drawn.set(unique, node);
    }
    return node;
  }

  renderHistory(conversation) {
    const states = {
      more: '',
      loading: 'Loading older messages…',
      start: 'Start of conversation',
      trimmed: `Older messages are no longer kept (this conversation is kept from message ${conversation.keptFrom})`,
    };
    this.loadOlder.hidden = conversation.history !== 'more';
    this.historyState.textContent = states[conversation.history];
  }

  renderMembers(model, conversation) {
    this.members.classList.toggle('unknown', !model.live);
    if (!conversation.isRoom) {
      this.membersDrawn = '';
      this.membersTitle.textContent = 'Direct conversation';
      this.membersState.textContent = `Only you and ${conversation.name} read this conversation.`;
      this.members.replaceChildren();
      return;
    }
    this.membersTitle.textContent = `Members of ${conversation.key}`;
    const sorted = [...conversation.members].sort(([a, aOnline], [b, bOnline]) => Number(bOnline) - Number(aOnline) || a.localeCompare(b));
    // Drawn again only when something changed, so that a focused member keeps its focus.
    const awayOf = (nick) => (nick === model.me ? model.ownAway : (model.away.get(nick) ?? null));
    const drawing = JSON.stringify([conversation.key, model.live, conversation.membersKnown, sorted, sorted.map(([nick]) => awayOf(nick))]);
    if (drawing === this.membersDrawn) return;
    this.membersDrawn = drawing;
    if (!model.live) {
      this.membersState.textContent = 'Members unknown while disconnected.';
    } else if (!conversation.membersKnown) {
      this.membersState.textContent = 'Asking the server who is here…';
    } else {
      const online = sorted.filter(([, isOnline]) => isOnline).length;
      this.membersState.textContent = `${online} online, ${sorted.length - online} offline`;
    }
    const items = sorted.map(([nick, online]) => {
      const item = element('li');
      const button = element('button');
      button.type = 'button';
      const dot = element('span', online && model.live ? 'presence-dot online' : 'presence-dot');
      dot.setAttribute('aria-hidden', 'true');
      const name = element('span', `member-name nick-${nickColour(nick)}`, nick);
      const state = element('span', 'visually-hidden', online ? ' (online)' : ' (offline)');
      button.append(dot, name, state);
      const away = awayOf(nick);
      if (away !== null) {
        item.className = 'away';
        const mark = element('span', 'away-mark', 'away');
        mark.title = away;
        button.append(mark, element('span', 'visually-hidden', `: ${away}`));
      }
      const awayTitle = away === null ? '' : ` (away: ${away})`;
      if (nick === model.me) {
        button.disabled = true;
        button.title = away === null ? '' : `You are away: ${away}`;
      } else {
        button.title = `Send a direct message to ${nick}${awayTitle}`;
        button.addEventListener('click', () => {
          this.handlers.onOpenDirect(nick);
          this.closeDrawer(false);
          this.input.focus();
        });
      }
      item.append(button);
      return item;
    });
    this.members.replaceChildren(...items);
  }

  /// The connection banner: `text`, whether it is good news (`ok`), whether "Retry now" is offered (`retry`) and
  /// why the connection is down (`title`); null hides it.
  renderBanner(banner) {
    if (banner === null) {
      this.banner.hidden = true;
      this.bannerText.textContent = '';
      return;
    }
    this.banner.hidden = false;
    this.banner.classList.toggle('ok', banner.ok);
    this.bannerText.textContent = banner.text;
    this.banner.title = banner.title ?? '';
    this.retryNow.hidden = !banner.retry;
  }

  /// The "Enable notifications" control: shown only while the browser would still ask.
  renderNotifyButton(visible) {
    this.notifyButton.hidden = !visible;
  }
}
