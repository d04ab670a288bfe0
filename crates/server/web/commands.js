// What a person types into the composer: a message, or a slash command (`/join ROOM`, `/msg NICK`, …), read
// into one object or refused with words that say how to write it. The same commands and words as the native
// clients (crates/client/src/command_line.rs), so a user moving between them finds the same chat.

import { REACTIONS, awayMessage, parseNick, parseRoom, reactionEmoji, reasonProblem, roomKey, searchProblem } from './protocol.js';

/// Rooms `/list` asks for at a time, as its help says.
export const LIST_PAGE = 50;

/// What `/help` says: how each entry is written, and what it does.
export const HELP = [
  ['/join ROOM', 'join ROOM (creating it) and talk there'],
  ['/leave [ROOM]', 'leave ROOM (default: the current one)'],
  ['/msg NICK [TEXT]', 'open a direct conversation with NICK, sending TEXT'],
  ['/users [ROOM]', 'who is in ROOM, online and offline'],
  ['/whois NICK', 'who NICK is: online since when, idle, away, registered, rooms in common'],
  ['/away [MESSAGE]', 'say you are away, with MESSAGE; alone: back'],
  ['/back', 'you are back: the away message goes'],
  ['/history [N]', 'show N older messages of this conversation (default 20)'],
  ['/me TEXT', 'say what you do: * you TEXT'],
  ['/edit [#SEQ] TEXT', 'change your latest message here (or message SEQ) to TEXT'],
  ['/delete [#SEQ|NICK] [REASON]', "delete your latest message here, message SEQ, or NICK's latest (moderators)"],
  ['/reply [#SEQ] TEXT', 'answer the latest message here that is not yours (or message SEQ) with TEXT'],
  ['/react [#SEQ] EMOJI', 'react to the latest message here that is not yours (or message SEQ); again takes it back'],
  ['/unreact [#SEQ] EMOJI', 'take back your reaction to the latest message here that is not yours (or message SEQ)'],
  ['/search [WORDS]', 'find messages with WORDS (in:#ROOM, in:@NICK, in:here); alone: older ones'],
  ['/goto N', 'open search result N where it was said'],
  ['/list [ROOM]', `list the rooms, ${LIST_PAGE} at a time; /list ROOM for those after ROOM`],
  ['/topic [TEXT]', "show the room's topic, or set it to TEXT"],
  ['/cleartopic', "clear the room's topic"],
  ['/kick NICK [REASON]', 'put NICK out of the room (it may join again)'],
  ['/ban NICK [REASON]', 'put NICK out of the room and keep it out'],
  ['/unban NICK', 'let NICK join the room again'],
  ['/mute NICK [REASON]', 'NICK stays and reads, but may not send to the room'],
  ['/unmute NICK', 'let NICK send to the room again'],
  ['/silence [CONV]', 'no alerts from this conversation (or #ROOM, @NICK)'],
  ['/unsilence [CONV]', 'alerts from that conversation again'],
  ['/highlight [WORD]', 'list the highlight words, or add WORD: a message with it counts as a mention'],
  ['/unhighlight WORD', 'stop highlighting WORD'],
  ['/ignore [NICK]', "list who is ignored, or hide NICK's messages, reactions and replies"],
  ['/unignore NICK', "show NICK's messages again"],
  ['/receipts [on|off]', 'show and send how far you read, or not; alone: which it is'],
  ['/typing [on|off]', 'show and send who is typing, or not; alone: which it is'],
  ['/op NICK', 'make NICK a moderator of the room'],
  ['/deop NICK', 'make NICK a plain member again'],
  ['/voice NICK', 'let NICK speak while the room is moderated'],
  ['/devoice NICK', 'take voice from NICK'],
  ['/invite NICK', 'let NICK join the room while it is invite-only'],
  ['/invite-only on|off', 'only members and invited users may join'],
  ['/moderated on|off', 'only members with voice, and moderators, may speak'],
  ['/help', 'this list'],
  ['/quit', 'sign out; messages not yet sent wait for next time'],
  ['//text', 'send a line that starts with /'],
];

/// Messages `/history` fetches without a number, as its help says.
export const TYPED_HISTORY = 20;

/// What a highlight word may be: one word, matched as a nickname is (ASCII letters and digits, `-` and `_`).
const HIGHLIGHT_WORD = /^[A-Za-z0-9_-]+$/;

/// The reactions `/react` takes, each with its name, for the words of its mistakes.
const REACTION_LIST = REACTIONS.map(({ emoji, name }) => `${emoji} ${name}`).join(', ');

/// How /search is written, for the words of its mistakes.
const SEARCH_USAGE = '/search [in:#ROOM|in:@NICK|in:here] WORDS';

/// What to search for, as typed in the search field or after /search: `{ query, scope }`, `scope` null for every
/// conversation, 'here' for the one shown, or the key of the one a word `in:#ROOM` (or `in:ROOM`) or `in:@NICK`
/// names (anywhere among the words, at most one); or `{ error }`, also when the other words, the query, one space
/// apart, are not what the server searches for (protocol.js's searchProblem).
export function parseSearch(text) {
  let scope = null;
  const words = [];
  for (const word of text.trim().split(/\s+/).filter((piece) => piece !== '')) {
    if (!/^in:/i.test(word)) {
      words.push(word);
      continue;
    }
    if (scope !== null) return { error: 'one in: at most' };
    const named = word.slice(3);
    if (named.toLowerCase() === 'here') {
      scope = 'here';
    } else {
      const parsed = named.startsWith('@') ? parseNick(named.slice(1)) : parseRoom(named);
      if (parsed.error) return { error: parsed.error };
      scope = named.startsWith('@') ? `@${parsed.name}` : roomKey(parsed.name);
    }
  }
  const query = words.join(' ');
  const problem = searchProblem(query);
  return problem === null ? { query, scope } : { error: problem };
}

function usageError(usage, reason) {
  return { kind: 'error', message: `${usage}: ${reason}` };
}

/// Reads one entry (it may span several lines). The result's `kind` is one of `text` (with `text`), `join`
/// (`room`), `leave` (`room` or null for the current one), `msg` (`nick`, `text` or null), `users` (`room` or
/// null), `history` (`count` or null), `list` (`after`: '' for the first rooms, else the room they follow),
/// `action` (`text`), `edit` (`seq` or null for our latest message here, `text`), `delete` (`seq`, or `nick` for
/// their latest message here, both null for our own latest; `reason`, maybe ''), `reply` (`seq` or null for the
/// latest message here not ours, `text`), `react` (`seq` likewise, `emoji`: one of protocol.js's REACTIONS, to
/// add, or to take back if we have it; `takeBack` for `/unreact`, which only takes back), `topic` (show the current
/// room's), `moderate` (`command` as typed, for messages, and `action`, a `RoomAction` in its JSON form, for the
/// current room), `silence` and `unsilence` (`key` of a conversation, or null for the one shown), `highlight` (`word`,
/// lower-case, or null to list them), `unhighlight` (`word`), `ignore` (`nick`, or null to list them), `unignore`
/// (`nick`), `receipts` and `typing` (`on`: true, false, or null to say which), `search` (`query` and `scope` as
/// parseSearch reads them, or `query` null for the next page of the last search), `goto` (`number`, of a search
/// result), `away` (`message`, trimmed, or null for back: `/away` alone and `/back`), `whois` (`nick`, `@NICK`
/// taken too), `help`, `quit`, or `error` (`message`); null when the entry is blank.
export function parseEntry(line) {
  if (line.trim().length === 0) return null;
  if (line.startsWith('//')) return { kind: 'text', text: line.slice(1) };
  if (!line.startsWith('/')) return { kind: 'text', text: line };
  const command = line.slice(1);
  const space = command.search(/\s/);
  const name = space < 0 ? command : command.slice(0, space);
  const rest = space < 0 ? '' : command.slice(space).trim();
  const moderate = (action) => ({ kind: 'moderate', command: `/${name.toLowerCase()}`, action });
  const nickAndReason = (usage, variant) => {
    const gap = rest.search(/\s/);
    const parsed = parseNick(gap < 0 ? rest : rest.slice(0, gap));
    if (parsed.error) return usageError(usage, parsed.error);
    return moderate({ [variant]: { nick: parsed.name, reason: gap < 0 ? '' : rest.slice(gap).trim() } });
  };
  const nickOnly = (usage, action) => {
    const parsed = parseNick(rest);
    return parsed.error ? usageError(usage, parsed.error) : moderate(action(parsed.name));
  };
  const onOff = (usage, variant) => {
    const word = rest.toLowerCase();
    if (word !== 'on' && word !== 'off') return usageError(usage, 'say on or off');
    return moderate({ [variant]: word === 'on' });
  };
  // `/receipts` and `/typing`: `on` or `off`, or nothing to say which it is; the client's own.
  const setting = (kind) => {
    const word = rest.toLowerCase();
    if (word === '') return { kind, on: null };
    if (word !== 'on' && word !== 'off') return usageError(`/${kind} [on|off]`, 'say on or off');
    return { kind, on: word === 'on' };
  };
  const optionalRoom = (usage, kind) => {
    if (rest.length === 0) return { kind, room: null };
    const parsed = parseRoom(rest);
    return parsed.error ? usageError(usage, parsed.error) : { kind, room: parsed.name };
  };
  // `#SEQ` as the first word of the rest: `{ seq, after }`, `{ error }`, or null when the rest starts otherwise.
  const leadingSeq = () => {
    if (!rest.startsWith('#')) return null;
    const gap = rest.search(/\s/);
    const word = gap < 0 ? rest : rest.slice(0, gap);
    const seq = /^#\d+$/.test(word) ? Number(word.slice(1)) : 0;
    if (!Number.isSafeInteger(seq) || seq < 1) return { error: 'SEQ is the number of a message, as in #41' };
    return { seq, after: gap < 0 ? '' : rest.slice(gap).trim() };
  };
  // `/silence` and `/unsilence` with nothing (the conversation shown), an `@nick` (the direct one), or a room,
  // `#room` or its bare name: the client's own, no alerts from that conversation.
  const conversation = (kind) => {
    const usage = `/${kind} [#ROOM|@NICK]`;
    if (rest.length === 0) return { kind, key: null };
    if (rest.startsWith('@')) {
      const parsed = parseNick(rest.slice(1));
      return parsed.error ? usageError(usage, parsed.error) : { kind, key: `@${parsed.name}` };
    }
    const parsed = parseRoom(rest);
    return parsed.error ? usageError(usage, parsed.error) : { kind, key: roomKey(parsed.name) };
  };
  const highlightWord = (kind, usage) => {
    if (!HIGHLIGHT_WORD.test(rest)) return usageError(usage, "one word only: letters a-z, digits, '-' and '_'");
    return { kind, word: rest.toLowerCase() };
  };
  switch (name.toLowerCase()) {
    case 'me':
      return rest.length === 0 ? usageError('/me TEXT', 'say what you do') : { kind: 'action', text: rest };
    case 'edit': {
      const usage = '/edit [#SEQ] TEXT';
      const numbered = leadingSeq() ?? { seq: null, after: rest };
      if (numbered.error) return usageError(usage, numbered.error);
      if (numbered.after.length === 0) return usageError(usage, 'say the new text');
      return { kind: 'edit', seq: numbered.seq, text: numbered.after };
    }
    case 'delete': {
      const usage = '/delete [#SEQ|NICK] [REASON]';
      const numbered = leadingSeq();
      if (numbered?.error) return usageError(usage, numbered.error);
      let nick = null;
      let reason = numbered?.after ?? '';
      if (numbered === null && rest.length > 0) {
        const gap = rest.search(/\s/);
        const parsed = parseNick(gap < 0 ? rest : rest.slice(0, gap));
        if (parsed.error) return usageError(usage, parsed.error);
        nick = parsed.name;
        reason = gap < 0 ? '' : rest.slice(gap).trim();
      }
      const problem = reasonProblem(reason);
      if (problem !== null) return usageError(usage, problem);
      return { kind: 'delete', seq: numbered?.seq ?? null, nick, reason };
    }
    case 'reply': {
      const usage = '/reply [#SEQ] TEXT';
      const numbered = leadingSeq() ?? { seq: null, after: rest };
      if (numbered.error) return usageError(usage, numbered.error);
      if (numbered.after.length === 0) return usageError(usage, 'say the reply');
      return { kind: 'reply', seq: numbered.seq, text: numbered.after };
    }
    case 'react':
    case 'unreact': {
      const takeBack = name.toLowerCase() === 'unreact';
      const usage = `/${takeBack ? 'unreact' : 'react'} [#SEQ] EMOJI`;
      const numbered = leadingSeq() ?? { seq: null, after: rest };
      if (numbered.error) return usageError(usage, numbered.error);
      if (numbered.after.length === 0) return usageError(usage, `say which reaction: ${REACTION_LIST}`);
      const emoji = reactionEmoji(numbered.after);
      if (emoji === null) return usageError(usage, `"${numbered.after}" is not a reaction; the reactions are ${REACTION_LIST}`);
      return { kind: 'react', seq: numbered.seq, emoji, takeBack };
    }
    case 'join': {
      const parsed = parseRoom(rest);
      return parsed.error ? usageError('/join ROOM', parsed.error) : { kind: 'join', room: parsed.name };
    }
    case 'leave':
      return optionalRoom('/leave [ROOM]', 'leave');
    case 'msg': {
      const gap = rest.search(/\s/);
      const nickText = gap < 0 ? rest : rest.slice(0, gap);
      const text = gap < 0 ? '' : rest.slice(gap).trim();
      const parsed = parseNick(nickText);
      if (parsed.error) return usageError('/msg NICK [TEXT]', parsed.error);
      return { kind: 'msg', nick: parsed.name, text: text.length > 0 ? text : null };
    }
    case 'users':
      return optionalRoom('/users [ROOM]', 'users');
    case 'history': {
      if (rest.length === 0) return { kind: 'history', count: null };
      const count = /^\d+$/.test(rest) ? Number(rest) : 0;
      if (count < 1 || count > 0xffffffff) {
        return usageError('/history [N]', 'N must be a whole number of messages, 1 or more');
      }
      return { kind: 'history', count };
    }
    case 'list': {
      if (rest.length === 0) return { kind: 'list', after: '' };
      const parsed = parseRoom(rest);
      return parsed.error ? usageError('/list [ROOM]', parsed.error) : { kind: 'list', after: parsed.name };
    }
    case 'topic':
      return rest.length === 0 ? { kind: 'topic' } : moderate({ Topic: { text: rest } });
    case 'cleartopic':
      return moderate({ Topic: { text: '' } });
    case 'kick':
      return nickAndReason('/kick NICK [REASON]', 'Kick');
    case 'ban':
      return nickAndReason('/ban NICK [REASON]', 'Ban');
    case 'unban':
      return nickOnly('/unban NICK', (nick) => ({ Unban: { nick } }));
    case 'mute':
      return nickAndReason('/mute NICK [REASON]', 'Mute');
    case 'unmute':
      return nickOnly('/unmute NICK', (nick) => ({ Unmute: { nick } }));
    case 'silence':
      return conversation('silence');
    case 'unsilence':
      return conversation('unsilence');
    case 'highlight':
      return rest.length === 0 ? { kind: 'highlight', word: null } : highlightWord('highlight', '/highlight [WORD]');
    case 'unhighlight':
      return rest.length === 0 ? usageError('/unhighlight WORD', 'say which word') : highlightWord('unhighlight', '/unhighlight WORD');
    case 'ignore': {
      if (rest.length === 0) return { kind: 'ignore', nick: null };
      const parsed = parseNick(rest);
      return parsed.error ? usageError('/ignore [NICK]', parsed.error) : { kind: 'ignore', nick: parsed.name };
    }
    case 'unignore': {
      const parsed = parseNick(rest);
      return parsed.error ? usageError('/unignore NICK', parsed.error) : { kind: 'unignore', nick: parsed.name };
    }
    case 'receipts':
      return setting('receipts');
    case 'typing':
      return setting('typing');
    case 'op':
      return nickOnly('/op NICK', (nick) => ({ SetRole: { nick, role: 'Moderator' } }));
    case 'deop':
      return nickOnly('/deop NICK', (nick) => ({ SetRole: { nick, role: 'Member' } }));
    case 'voice':
      return nickOnly('/voice NICK', (nick) => ({ SetRole: { nick, role: 'Voice' } }));
    case 'devoice':
      return nickOnly('/devoice NICK', (nick) => ({ SetRole: { nick, role: 'Member' } }));
    case 'invite':
      return nickOnly('/invite NICK', (nick) => ({ Invite: { nick } }));
    case 'invite-only':
      return onOff('/invite-only on|off', 'InviteOnly');
    case 'moderated':
      return onOff('/moderated on|off', 'Moderated');
    case 'search': {
      if (rest.length === 0) return { kind: 'search', query: null, scope: null };
      const parsed = parseSearch(rest);
      return parsed.error ? usageError(SEARCH_USAGE, parsed.error) : { kind: 'search', ...parsed };
    }
    case 'goto': {
      const number = /^\d+$/.test(rest) ? Number(rest) : 0;
      if (!Number.isSafeInteger(number) || number < 1) return usageError('/goto N', 'N is the number of a search result, as in [3]');
      return { kind: 'goto', number };
    }
    case 'away': {
      const parsed = awayMessage(rest);
      return parsed.error ? usageError('/away [MESSAGE]', parsed.error) : { kind: 'away', message: parsed.message };
    }
    case 'back':
      return { kind: 'away', message: null };
    case 'whois': {
      const parsed = parseNick(rest.startsWith('@') ? rest.slice(1) : rest);
      return parsed.error ? usageError('/whois NICK', parsed.error) : { kind: 'whois', nick: parsed.name };
    }
    case 'help':
      return { kind: 'help' };
    case 'quit':
      return { kind: 'quit' };
    default:
      return { kind: 'error', message: `unknown command /${name}; /help lists them` };
  }
}
