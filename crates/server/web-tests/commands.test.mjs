// Slash commands: the same commands and words as the native clients' parser (crates/client/src/command_line.rs),
// and what the search field takes (the words of /search).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HELP, parseEntry, parseSearch } from '../web/commands.js';

test('text is sent as typed, a double slash escapes, blank is nothing', () => {
  assert.deepEqual(parseEntry('  hello  '), { kind: 'text', text: '  hello  ' });
  assert.deepEqual(parseEntry('//join me'), { kind: 'text', text: '/join me' });
  assert.deepEqual(parseEntry('line one\nline two'), { kind: 'text', text: 'line one\nline two' });
  assert.equal(parseEntry(' \n\t '), null);
});

test('commands and their arguments', () => {
  assert.deepEqual(parseEntry('/join #Garden'), { kind: 'join', room: 'garden' });
  assert.deepEqual(parseEntry('/leave'), { kind: 'leave', room: null });
  assert.deepEqual(parseEntry('/leave garden'), { kind: 'leave', room: 'garden' });
  assert.deepEqual(parseEntry('/msg bob'), { kind: 'msg', nick: 'bob', text: null });
  assert.deepEqual(parseEntry('/msg Bob  hi there\nsecond line '), { kind: 'msg', nick: 'bob', text: 'hi there\nsecond line' });
  assert.deepEqual(parseEntry('/users'), { kind: 'users', room: null });
  assert.deepEqual(parseEntry('/users lobby'), { kind: 'users', room: 'lobby' });
  assert.deepEqual(parseEntry('/history'), { kind: 'history', count: null });
  assert.deepEqual(parseEntry('/history 10'), { kind: 'history', count: 10 });
  assert.deepEqual(parseEntry('/list'), { kind: 'list', after: '' });
  assert.deepEqual(parseEntry('/LIST  #Garden '), { kind: 'list', after: 'garden' });
  assert.deepEqual(parseEntry('/HELP'), { kind: 'help' });
  assert.deepEqual(parseEntry('/quit now'), { kind: 'quit' });
});

test('mistakes say how to write the command, and nothing is sent', () => {
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.equal(error('/join'), '/join ROOM: room name must not be empty');
  assert.match(error('/join two words'), /^\/join ROOM: room name may only contain/);
  assert.match(error('/msg 9lives hi'), /^\/msg NICK \[TEXT\]: nickname may only contain/);
  assert.equal(error('/history 0'), '/history [N]: N must be a whole number of messages, 1 or more');
  assert.equal(error('/history ten'), '/history [N]: N must be a whole number of messages, 1 or more');
  assert.match(error('/list two words'), /^\/list \[ROOM\]: room name may only contain/);
  assert.match(error('/list 9rooms'), /^\/list \[ROOM\]: room name may only contain/);
  assert.equal(error('/dance'), 'unknown command /dance; /help lists them');
  assert.equal(error('/'), 'unknown command /; /help lists them');
});

test('moderation commands, read into the action they ask of the current room', () => {
  const action = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'moderate', line);
    return [parsed.command, parsed.action];
  };
  assert.deepEqual(action('/kick Bob  spamming, again '), ['/kick', { Kick: { nick: 'bob', reason: 'spamming, again' } }]);
  assert.deepEqual(action('/ban bob'), ['/ban', { Ban: { nick: 'bob', reason: '' } }]);
  assert.deepEqual(action('/unban bob'), ['/unban', { Unban: { nick: 'bob' } }]);
  assert.deepEqual(action('/mute bob flooding'), ['/mute', { Mute: { nick: 'bob', reason: 'flooding' } }]);
  assert.deepEqual(action('/unmute bob'), ['/unmute', { Unmute: { nick: 'bob' } }]);
  assert.deepEqual(action('/op bob'), ['/op', { SetRole: { nick: 'bob', role: 'Moderator' } }]);
  assert.deepEqual(action('/deop bob'), ['/deop', { SetRole: { nick: 'bob', role: 'Member' } }]);
  assert.deepEqual(action('/voice bob'), ['/voice', { SetRole: { nick: 'bob', role: 'Voice' } }]);
  assert.deepEqual(action('/devoice bob'), ['/devoice', { SetRole: { nick: 'bob', role: 'Member' } }]);
  assert.deepEqual(action('/invite Carol'), ['/invite', { Invite: { nick: 'carol' } }]);
  assert.deepEqual(action('/topic Roses <img src=x onerror=alert(1)>'), ['/topic', { Topic: { text: 'Roses <img src=x onerror=alert(1)>' } }]);
  assert.deepEqual(action('/cleartopic'), ['/cleartopic', { Topic: { text: '' } }]);
  assert.deepEqual(action('/invite-only on'), ['/invite-only', { InviteOnly: true }]);
  assert.deepEqual(action('/Moderated OFF'), ['/moderated', { Moderated: false }]);
  assert.deepEqual(parseEntry('/topic'), { kind: 'topic' });
  assert.deepEqual(parseEntry('/topic   '), { kind: 'topic' });
});

test('moderation mistakes say how to write the command', () => {
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.equal(error('/kick'), '/kick NICK [REASON]: nickname must not be empty');
  assert.match(error('/ban 9lives spam'), /^\/ban NICK \[REASON\]: nickname may only contain/);
  assert.match(error('/unban bob and carol'), /^\/unban NICK: nickname may only contain/);
  assert.equal(error('/op'), '/op NICK: nickname must not be empty');
  assert.equal(error('/invite-only'), '/invite-only on|off: say on or off');
  assert.equal(error('/moderated yes'), '/moderated on|off: say on or off');
});

test('kinds of messages: /me, /edit [#SEQ] and /delete [#SEQ|NICK] [REASON]', () => {
  assert.deepEqual(parseEntry('/me waves  at\nall '), { kind: 'action', text: 'waves  at\nall' });
  assert.deepEqual(parseEntry('/edit hello again'), { kind: 'edit', seq: null, text: 'hello again' });
  assert.deepEqual(parseEntry('/EDIT  #41  hello <b>x</b>'), { kind: 'edit', seq: 41, text: 'hello <b>x</b>' });
  assert.deepEqual(parseEntry('/delete'), { kind: 'delete', seq: null, nick: null, reason: '' });
  assert.deepEqual(parseEntry('/delete #41'), { kind: 'delete', seq: 41, nick: null, reason: '' });
  assert.deepEqual(parseEntry('/delete #41 spam, obviously '), { kind: 'delete', seq: 41, nick: null, reason: 'spam, obviously' });
  assert.deepEqual(parseEntry('/delete Bob'), { kind: 'delete', seq: null, nick: 'bob', reason: '' });
  assert.deepEqual(parseEntry('/delete bob  spam'), { kind: 'delete', seq: null, nick: 'bob', reason: 'spam' });
  assert.deepEqual(parseEntry('//me is not a command'), { kind: 'text', text: '/me is not a command' });
});

test('kinds of messages: mistakes say how to write the command, and nothing is sent', () => {
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.equal(error('/me'), '/me TEXT: say what you do');
  assert.equal(error('/me   '), '/me TEXT: say what you do');
  assert.equal(error('/edit'), '/edit [#SEQ] TEXT: say the new text');
  assert.equal(error('/edit #41'), '/edit [#SEQ] TEXT: say the new text');
  assert.equal(error('/edit #abc x'), '/edit [#SEQ] TEXT: SEQ is the number of a message, as in #41');
  assert.equal(error('/edit #0 x'), '/edit [#SEQ] TEXT: SEQ is the number of a message, as in #41');
  assert.equal(error('/edit #99999999999999999999 x'), '/edit [#SEQ] TEXT: SEQ is the number of a message, as in #41');
  assert.equal(error('/delete #4x spam'), '/delete [#SEQ|NICK] [REASON]: SEQ is the number of a message, as in #41');
  assert.match(error('/delete 9lives spam'), /^\/delete \[#SEQ\|NICK\] \[REASON\]: nickname may only contain/);
  assert.equal(error('/delete #41 two\nlines'), '/delete [#SEQ|NICK] [REASON]: a reason is one line of text, without control characters');
  assert.equal(error(`/delete bob ${'x'.repeat(513)}`), '/delete [#SEQ|NICK] [REASON]: a reason is at most 512 bytes');
});

test('replies and reactions: /reply [#SEQ] TEXT, /react [#SEQ] EMOJI|NAME and /unreact [#SEQ] EMOJI|NAME', () => {
  assert.deepEqual(parseEntry('/reply sure, why not'), { kind: 'reply', seq: null, text: 'sure, why not' });
  assert.deepEqual(parseEntry('/reply #41  yes\nand more '), { kind: 'reply', seq: 41, text: 'yes\nand more' });
  assert.deepEqual(parseEntry('/react 👍'), { kind: 'react', seq: null, emoji: '👍', takeBack: false });
  assert.deepEqual(parseEntry('/react #41 tada'), { kind: 'react', seq: 41, emoji: '🎉', takeBack: false });
  assert.deepEqual(parseEntry('/REACT #41 :heart:'), { kind: 'react', seq: 41, emoji: '\u2764\ufe0f', takeBack: false });
  assert.deepEqual(parseEntry('/react \u2764'), { kind: 'react', seq: null, emoji: '\u2764\ufe0f', takeBack: false });
  assert.deepEqual(parseEntry('/react -1'), { kind: 'react', seq: null, emoji: '👎', takeBack: false });
  assert.deepEqual(parseEntry('/unreact #41 +1'), { kind: 'react', seq: 41, emoji: '👍', takeBack: true });
  assert.deepEqual(parseEntry('/unreact eyes'), { kind: 'react', seq: null, emoji: '👀', takeBack: true });
});

test('replies and reactions: mistakes say how to write the command, and name the eight reactions', () => {
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  const list = '👍 +1, 👎 -1, \u2764\ufe0f heart, 😂 joy, 😮 open_mouth, 😢 cry, 🎉 tada, 👀 eyes';
  assert.equal(error('/reply'), '/reply [#SEQ] TEXT: say the reply');
  assert.equal(error('/reply #41  '), '/reply [#SEQ] TEXT: say the reply');
  assert.equal(error('/reply #x hi'), '/reply [#SEQ] TEXT: SEQ is the number of a message, as in #41');
  assert.equal(error('/react'), `/react [#SEQ] EMOJI: say which reaction: ${list}`);
  assert.equal(error('/react #41'), `/react [#SEQ] EMOJI: say which reaction: ${list}`);
  assert.equal(error('/react smile'), `/react [#SEQ] EMOJI: "smile" is not a reaction; the reactions are ${list}`);
  assert.equal(error('/react #41 👍 👍'), `/react [#SEQ] EMOJI: "👍 👍" is not a reaction; the reactions are ${list}`);
  assert.equal(error('/react #0 👍'), '/react [#SEQ] EMOJI: SEQ is the number of a message, as in #41');
  assert.equal(error('/unreact #41 nope'), `/unreact [#SEQ] EMOJI: "nope" is not a reaction; the reactions are ${list}`);
});

test('help names every command once', () => {
  assert.deepEqual(HELP.find(([usage]) => usage === '/list [ROOM]'), [
    '/list [ROOM]',
    'list the rooms, 50 at a time; /list ROOM for those after ROOM',
  ]);
  const usages = HELP.map(([usage]) => usage.split(' ')[0]);
  const moderation = ['/topic', '/cleartopic', '/kick', '/ban', '/unban', '/mute', '/unmute', '/op', '/deop', '/voice', '/devoice', '/invite', '/invite-only', '/moderated'];
  const kinds = ['/me', '/edit', '/delete', '/reply', '/react', '/unreact'];
  const preferences = ['/silence', '/unsilence', '/highlight', '/unhighlight', '/ignore', '/unignore', '/receipts', '/typing'];
  const awareness = ['/whois', '/away', '/back'];
  for (const command of ['/join', '/leave', '/msg', '/users', '/history', '/list', '/search', '/goto', '/help', '/quit', '//text', ...moderation, ...kinds, ...preferences, ...awareness]) {
    assert.equal(usages.filter((usage) => usage === command).length, 1, command);
  }
  assert.equal(new Set(usages).size, usages.length, 'no command twice');
  assert.deepEqual(
    HELP.filter(([usage]) => /silence|mute/.test(usage)),
    [
      ['/mute NICK [REASON]', 'NICK stays and reads, but may not send to the room'],
      ['/unmute NICK', 'let NICK send to the room again'],
      ['/silence [CONV]', 'no alerts from this conversation (or #ROOM, @NICK)'],
      ['/unsilence [CONV]', 'alerts from that conversation again'],
    ],
  );
});

test('/mute and /unmute are only the moderators\' commands; /silence and /unsilence the conversation\'s alerts', () => {
  assert.deepEqual(parseEntry('/mute bob'), { kind: 'moderate', command: '/mute', action: { Mute: { nick: 'bob', reason: '' } } });
  assert.deepEqual(parseEntry('/mute bob spam'), { kind: 'moderate', command: '/mute', action: { Mute: { nick: 'bob', reason: 'spam' } } });
  assert.deepEqual(parseEntry('/silence'), { kind: 'silence', key: null });
  assert.deepEqual(parseEntry('/silence #room'), { kind: 'silence', key: '#room' });
  assert.deepEqual(parseEntry('/silence @bob'), { kind: 'silence', key: '@bob' });
  assert.deepEqual(parseEntry('/unsilence room'), { kind: 'unsilence', key: '#room' });
});

test('preferences: /silence and /unsilence a conversation (the one shown, a #room or a bare room name, an @nick)', () => {
  assert.deepEqual(parseEntry('/SILENCE  #Ops '), { kind: 'silence', key: '#ops' });
  assert.deepEqual(parseEntry('/silence ops'), { kind: 'silence', key: '#ops' });
  assert.deepEqual(parseEntry('/silence @Bob'), { kind: 'silence', key: '@bob' });
  assert.deepEqual(parseEntry('/unsilence'), { kind: 'unsilence', key: null });
  assert.deepEqual(parseEntry('/unsilence #ops'), { kind: 'unsilence', key: '#ops' });
  assert.deepEqual(parseEntry('/unsilence @bob'), { kind: 'unsilence', key: '@bob' });
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.match(error('/silence #9ops'), /^\/silence \[#ROOM\|@NICK\]: room name may only contain/);
  assert.match(error('/silence #ops now'), /^\/silence \[#ROOM\|@NICK\]: room name may only contain/);
  assert.equal(error('/silence @'), '/silence [#ROOM|@NICK]: nickname must not be empty');
  assert.match(error('/unsilence @b@d'), /^\/unsilence \[#ROOM\|@NICK\]: nickname may only contain/);
  assert.equal(error(`/silence #${'a'.repeat(65)}`), '/silence [#ROOM|@NICK]: room name is longer than 64 characters');
  assert.match(error('/mute #ops'), /^\/mute NICK \[REASON\]: nickname may only contain/, 'a #room is no nickname');
  assert.match(error('/unmute @bob'), /^\/unmute NICK: nickname may only contain/);
});

test('preferences: /highlight [WORD] and /unhighlight WORD take one word, lower-cased', () => {
  assert.deepEqual(parseEntry('/highlight'), { kind: 'highlight', word: null });
  assert.deepEqual(parseEntry('/highlight  Deploy '), { kind: 'highlight', word: 'deploy' });
  assert.deepEqual(parseEntry('/highlight db-2_primary'), { kind: 'highlight', word: 'db-2_primary' });
  assert.deepEqual(parseEntry('/unhighlight OUTAGE'), { kind: 'unhighlight', word: 'outage' });
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  const oneWord = "one word only: letters a-z, digits, '-' and '_'";
  assert.equal(error('/highlight two words'), `/highlight [WORD]: ${oneWord}`);
  assert.equal(error('/highlight déploy'), `/highlight [WORD]: ${oneWord}`);
  assert.equal(error('/highlight <b>'), `/highlight [WORD]: ${oneWord}`);
  assert.equal(error('/unhighlight'), '/unhighlight WORD: say which word');
  assert.equal(error('/unhighlight a.b'), `/unhighlight WORD: ${oneWord}`);
});

test('preferences: /ignore [NICK] and /unignore NICK take a valid nickname', () => {
  assert.deepEqual(parseEntry('/ignore'), { kind: 'ignore', nick: null });
  assert.deepEqual(parseEntry('/ignore Mallory'), { kind: 'ignore', nick: 'mallory' });
  assert.deepEqual(parseEntry('/unignore mallory '), { kind: 'unignore', nick: 'mallory' });
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.match(error('/ignore 9lives'), /^\/ignore \[NICK\]: nickname may only contain/);
  assert.match(error('/ignore bob carol'), /^\/ignore \[NICK\]: nickname may only contain/);
  assert.equal(error('/unignore'), '/unignore NICK: nickname must not be empty');
  assert.equal(error(`/unignore ${'a'.repeat(33)}`), '/unignore NICK: nickname is longer than 32 characters');
});

test('preferences: /receipts [on|off] and /typing [on|off]; alone, which it is; in /help', () => {
  assert.deepEqual(parseEntry('/receipts'), { kind: 'receipts', on: null });
  assert.deepEqual(parseEntry('/receipts off'), { kind: 'receipts', on: false });
  assert.deepEqual(parseEntry('/RECEIPTS  On '), { kind: 'receipts', on: true });
  assert.deepEqual(parseEntry('/typing'), { kind: 'typing', on: null });
  assert.deepEqual(parseEntry('/typing OFF'), { kind: 'typing', on: false });
  assert.deepEqual(parseEntry('/typing on'), { kind: 'typing', on: true });
  const error = (line) => {
    const parsed = parseEntry(line);
    assert.equal(parsed.kind, 'error', line);
    return parsed.message;
  };
  assert.equal(error('/receipts maybe'), '/receipts [on|off]: say on or off');
  assert.equal(error('/receipts on off'), '/receipts [on|off]: say on or off');
  assert.equal(error('/typing yes'), '/typing [on|off]: say on or off');
  assert.equal(error('/typing offf'), '/typing [on|off]: say on or off');
  assert.deepEqual(
    HELP.filter(([usage]) => /^\/(receipts|typing) /.test(usage)).map(([usage]) => usage),
    ['/receipts [on|off]', '/typing [on|off]'],
  );
});

test('search: /search [in:#ROOM|in:@NICK|in:here] WORDS, the in: anywhere; /search alone; /goto N', () => {
  assert.deepEqual(parseEntry('/search lunch'), { kind: 'search', query: 'lunch', scope: null });
  assert.deepEqual(parseEntry('/search  Lunch   Friday '), { kind: 'search', query: 'Lunch Friday', scope: null });
  assert.deepEqual(parseEntry('/search in:#Garden seeds'), { kind: 'search', query: 'seeds', scope: '#garden' });
  assert.deepEqual(parseEntry('/search seeds IN:garden'), { kind: 'search', query: 'seeds', scope: '#garden' });
  assert.deepEqual(parseEntry('/search seeds in:@Bob now'), { kind: 'search', query: 'seeds now', scope: '@bob' });
  assert.deepEqual(parseEntry('/SEARCH lunch? in:HERE'), { kind: 'search', query: 'lunch?', scope: 'here' });
  assert.deepEqual(parseEntry('/search'), { kind: 'search', query: null, scope: null });
  assert.deepEqual(parseEntry('/goto 3'), { kind: 'goto', number: 3 });
  assert.deepEqual(parseSearch('lunch in:#lobby'), { query: 'lunch', scope: '#lobby' });
  assert.deepEqual(parseSearch('in:here'), { error: 'search for at least one word' });
  const usage = '/search [in:#ROOM|in:@NICK|in:here] WORDS';
  for (const [line, reason] of [
    ['/search in:here', 'search for at least one word'],
    ['/search ???', 'search for at least one word'],
    ['/search a b c d e f g h i', 'search for at most 8 words'],
    [`/search ${'x'.repeat(257)}`, 'a search is at most 256 bytes long'],
    ['/search in:here in:#garden x', 'one in: at most'],
    ['/search a in:@', 'nickname must not be empty'],
  ]) {
    assert.equal(parseEntry(line).message, `${usage}: ${reason}`, line);
  }
  assert.match(parseEntry('/search a in:#9x').message, /^\/search \[in:#ROOM\|in:@NICK\|in:here\] WORDS: room name may only contain/);
  for (const line of ['/goto', '/goto 0', '/goto two', '/goto 3 4', '/goto -1', '/goto +3', '/goto #3']) {
    assert.equal(parseEntry(line).message, '/goto N: N is the number of a search result, as in [3]', line);
  }
  assert.deepEqual(HELP.filter(([usage]) => /^\/(search|goto)/.test(usage)), [
    ['/search [WORDS]', 'find messages with WORDS (in:#ROOM, in:@NICK, in:here); alone: older ones'],
    ['/goto N', 'open search result N where it was said'],
  ]);
});

test('/away MESSAGE, /away alone and /back, /whois NICK (or @NICK), with the mistakes said before sending', () => {
  assert.deepEqual(parseEntry('/away  lunch, back at 2 '), { kind: 'away', message: 'lunch, back at 2' });
  assert.deepEqual(parseEntry('/away'), { kind: 'away', message: null });
  assert.deepEqual(parseEntry('/AWAY   '), { kind: 'away', message: null });
  assert.deepEqual(parseEntry('/back'), { kind: 'away', message: null });
  assert.deepEqual(parseEntry('/away out\nback soon'), { kind: 'error', message: '/away [MESSAGE]: an away message is one line, without control characters' });
  assert.deepEqual(parseEntry(`/away ${'x'.repeat(201)}`), { kind: 'error', message: '/away [MESSAGE]: an away message is at most 200 bytes long' });
  assert.deepEqual(parseEntry('/whois Bob'), { kind: 'whois', nick: 'bob' });
  assert.deepEqual(parseEntry('/whois @bob'), { kind: 'whois', nick: 'bob' });
  assert.equal(parseEntry('/whois').kind, 'error');
  assert.match(parseEntry('/whois no one').message, /^\/whois NICK: nickname may only contain/);
  assert.deepEqual(HELP.filter(([usage]) => /^\/(whois|away|back)/.test(usage)), [
    ['/whois NICK', 'who NICK is: online since when, idle, away, registered, rooms in common'],
    ['/away [MESSAGE]', 'say you are away, with MESSAGE; alone: back'],
    ['/back', 'you are back: the away message goes'],
  ]);
});
