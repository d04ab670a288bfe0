// What a person types into the composer: a message, or a slash command (`/join ROOM`, `/msg NICK`, …), read
// into one object or refused with words that say how to write it. The same commands and words as the native
// clients (crates/client/src/command_line.rs), so a user moving between them finds the same chat.

import { parseNick, parseRoom } from './protocol.js';

/// What `/help` says: how each entry is written, and what it does.
export const HELP = [
  ['/join ROOM', 'join ROOM (creating it) and talk there'],
  ['/leave [ROOM]', 'leave ROOM (default: the current one)'],
  ['/msg NICK [TEXT]', 'open a direct conversation with NICK, sending TEXT'],
  ['/users [ROOM]', 'who is in ROOM, online and offline'],
  ['/history [N]', 'show N older messages of this conversation (default 20)'],
  ['/help', 'this list'],
  ['/quit', 'sign out; messages not yet sent wait for next time'],
  ['//text', 'send a line that starts with /'],
];

/// Messages `/history` fetches without a number, as its help says.
export const TYPED_HISTORY = 20;

function usageError(usage, reason) {
  return { kind: 'error', message: `${usage}: ${reason}` };
}

/// Reads one entry (it may span several lines). The result's `kind` is one of `text` (with `text`), `join`
/// (`room`), `leave` (`room` or null for the current one), `msg` (`nick`, `text` or null), `users` (`room` or
/// null), `history` (`count` or null), `help`, `quit`, or `error` (`message`); null when the entry is blank.
export function parseEntry(line) {
  if (line.trim().length === 0) return null;
  if (line.startsWith('//')) return { kind: 'text', text: line.slice(1) };
  if (!line.startsWith('/')) return { kind: 'text', text: line };
  const command = line.slice(1);
  const space = command.search(/\s/);
  const name = space < 0 ? command : command.slice(0, space);
  const rest = space < 0 ? '' : command.slice(space).trim();
  const optionalRoom = (usage, kind) => {
    if (rest.length === 0) return { kind, room: null };
    const parsed = parseRoom(rest);
    return parsed.error ? usageError(usage, parsed.error) : { kind, room: parsed.name };
  };
  switch (name.toLowerCase()) {
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
    case 'help':
      return { kind: 'help' };
    case 'quit':
      return { kind: 'quit' };
    default:
      return { kind: 'error', message: `unknown command /${name}; /help lists them` };
  }
}
