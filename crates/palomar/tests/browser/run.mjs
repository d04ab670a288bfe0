// The browser client as a person uses it, in a real headless Chromium against the real `palomar` binary: a
// server on free ports and a temp directory, `palomar chat --plain --json` as the other person (bob), and ana in
// the page. Signing up (the password typed twice), messages both ways in #lobby and in a direct conversation, an
// action, an edit and a deletion through a message's menu, a reply and a reaction through the menu, from a
// second page (carol) and from the terminal, a reply's quote that shows what it answers, a code block, inline code and a link, history and
// unread counts after a reload, search (the field, its panel, a result brought on screen, /search and /goto), an away
// message in the top bar and the member list, someone typing, "seen by" and /whois (protocol version 6), a
// message typed while the server is SIGKILLed arriving exactly once after it
// restarts, hostile text shown as text, and the layout at 360x640 and 1280x800. Run by
// crates/palomar/tests/browser.rs with PALOMAR_BIN set; screenshots go to a temp dir, and to PALOMAR_SCREENSHOTS
// if set.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const BIN = process.env.PALOMAR_BIN;
/// The whole run stops after this, whatever hangs.
const RUN_LIMIT_MS = 240_000;
/// Waiting for one thing to happen (a reconnection after a restart takes up to the 10 s backoff).
const WAIT_MS = 30_000;
const ANA_PASSWORD = 'ana has a long password';
const BOB_PASSWORD = 'bob has another one';

function log(line) {
  process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).on('error', reject));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/// Resolves once `check()` is truthy (polled), or fails saying what was awaited.
async function until(check, what, limit = WAIT_MS) {
  const deadline = Date.now() + limit;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/// Every process started, to be killed however the run ends.
const children = [];

/// A child process whose output is kept for the failure report.
class Child {
  constructor(name, args, env = {}) {
    this.name = name;
    this.lines = [];
    this.process = spawn(BIN, args, { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.process.on('exit', (code, signal) => resolve({ code, signal })));
    children.push(this);
    createInterface({ input: this.process.stdout }).on('line', (line) => this.onLine(line));
    createInterface({ input: this.process.stderr }).on('line', (line) => this.lines.push(`[stderr] ${line}`));
  }

  onLine(line) {
    this.lines.push(line);
  }

  async kill(signal = 'SIGKILL') {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(signal);
    await this.exited;
  }

  tail(count = 40) {
    return `--- last lines of ${this.name}:\n${this.lines.slice(-count).join('\n')}`;
  }
}

class Server extends Child {
  constructor(dataDir, chatPort, webPort) {
    super('palomar serve', ['serve', '--listen', `127.0.0.1:${chatPort}`, '--web-listen', `127.0.0.1:${webPort}`, '--data', dataDir]);
    this.url = `https://127.0.0.1:${webPort}/`;
  }

  async ready() {
    await until(() => this.lines.some((line) => line.includes(`web client: ${this.url}`)), `the server's line "web client: ${this.url}"`);
  }
}

/// bob, in line mode: commands and messages go to its stdin (plain lines to #lobby, `/msg` to a direct
/// conversation), its JSON events come back on stdout.
class LineClient extends Child {
  constructor(nick, password, home, chatPort) {
    super(`palomar chat (${nick})`, ['chat', '--plain', '--json', '--server', `127.0.0.1:${chatPort}`, '--nick', nick, '--home', home], {
      PALOMAR_PASSWORD: password,
    });
    this.events = [];
  }

  onLine(line) {
    super.onLine(line);
    try {
      this.events.push(JSON.parse(line));
    } catch {
      // Not an event: kept in `lines` for the report only.
    }
  }

  type(line) {
    this.process.stdin.write(`${line}\n`);
  }

  async waitFor(predicate, what) {
    return until(() => this.events.find(predicate), `${this.name} to see ${what}`);
  }

  messages(text) {
    return this.events.filter((event) => event.event === 'message' && event.text === text);
  }

  /// Types a message and waits until the server stored it.
  async say(line) {
    const before = this.events.length;
    this.type(line);
    await until(() => this.events.slice(before).some((event) => event.event === 'accepted'), `${this.name}'s "${line}" to be accepted`);
  }
}

async function main() {
  assert.ok(BIN, 'PALOMAR_BIN must name the palomar binary');
  const work = await mkdtemp(path.join(os.tmpdir(), 'palomar-browser-'));
  // Kept after the run (the rest of `work` is not), for a person to look at.
  const shots = await mkdtemp(path.join(os.tmpdir(), 'palomar-browser-screenshots-'));
  const chatPort = await freePort();
  const webPort = await freePort();
  const dataDir = path.join(work, 'data');
  let browser = null;
  let page = null;
  const problems = { dialogs: [], pageErrors: [], consoleErrors: [] };

  const startServer = async () => {
    const server = new Server(dataDir, chatPort, webPort);
    await server.ready();
    return server;
  };

  const screenshot = async (page, name) => {
    const file = path.join(shots, name);
    await page.screenshot({ path: file });
    if (process.env.PALOMAR_SCREENSHOTS) {
      await mkdir(process.env.PALOMAR_SCREENSHOTS, { recursive: true });
      await copyFile(file, path.join(process.env.PALOMAR_SCREENSHOTS, name));
    }
    log(`screenshot ${file}`);
  };

  try {
    let server = await startServer();
    log(`server up: ${server.url} (chat port ${chatPort})`);
    const bob = new LineClient('bob', BOB_PASSWORD, path.join(work, 'bob'), chatPort);
    await bob.waitFor((event) => event.event === 'status' && event.state === 'connected', 'its login');

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--ignore-certificate-errors'],
    });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    let webSockets = 0;
    page.on('websocket', () => {
      webSockets += 1;
    });
    page.on('dialog', async (dialog) => {
      problems.dialogs.push(dialog.message());
      await dialog.dismiss();
    });
    page.on('pageerror', (error) => problems.pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.consoleErrors.push(message.text());
    });

    /// Signs a free nickname up in `page`, the password typed twice, and waits for the chat.
    const signUp = async (page, nick, password) => {
      await page.goto(server.url);
      await page.fill('#signin-nick', nick);
      await page.fill('#signin-password', password);
      await page.fill('#signin-confirm', password);
      await page.click('#signin-submit');
      await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT_MS });
    };
    const messageList = page.locator('#messages');
    const conversationButton = (key) => page.locator('#conversation-list button', { has: page.locator('.conversation-name', { hasText: key }) });
    const typeEntry = async (text) => {
      await page.fill('#composer-input', text);
      await page.press('#composer-input', 'Enter');
    };
    // A message whose whole text is `text`.
    const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const shownMessage = (text) => messageList.locator('li.message', { has: page.locator('.message-text', { hasText: exactly(text) }) });
    const bannerText = () => page.locator('#banner-text').textContent();

    // ---- signing up: a free nickname asks for its password twice
    log('sign-up');
    await page.goto(server.url);
    await page.fill('#signin-nick', 'ana');
    assert.equal(await page.locator('#signin-confirm-row').isVisible(), true, 'a new nickname asks twice');
    await page.fill('#signin-password', ANA_PASSWORD);
    await page.fill('#signin-confirm', 'a typo');
    await page.click('#signin-submit');
    await until(async () => (await page.locator('#signin-error').textContent()).includes('differ'), 'the passwords-differ error');
    assert.equal(await page.locator('#chat').isVisible(), false);
    await page.fill('#signin-password', ANA_PASSWORD);
    await page.fill('#signin-confirm', ANA_PASSWORD);
    await screenshot(page, 'web-client-signin.png');
    await page.click('#signin-submit');
    await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT_MS });
    await until(async () => (await page.title()) === 'Palomar' && (await page.locator('#conversation-title').textContent()) === '#lobby', 'the lobby');

    // ---- #lobby, both ways; bob's mention of ana is highlighted
    log('lobby');
    await typeEntry('hello from the browser');
    const fromBrowser = await bob.waitFor((event) => event.event === 'message' && event.text === 'hello from the browser', 'the browser\'s message');
    assert.equal(fromBrowser.conversation, '#lobby');
    assert.equal(fromBrowser.from, 'ana');
    await shownMessage('hello from the browser').and(page.locator('li.own:not(.pending)')).waitFor({ timeout: WAIT_MS });
    await bob.say('hi ana, from the terminal');
    await shownMessage('hi ana, from the terminal').and(page.locator('li.mention')).waitFor({ timeout: WAIT_MS });

    // ---- an action; an edit and a deletion through the message's menu, shown on the message and gone from IndexedDB
    log('actions, edits and deletions');
    await typeEntry('/me waves from the browser');
    await shownMessage('waves from the browser').and(page.locator('li.action:not(.pending)')).waitFor({ timeout: WAIT_MS });
    await bob.waitFor((event) => event.event === 'message' && event.text === 'waves from the browser', 'the action');
    await typeEntry('a typo in teh browser');
    const typo = await bob.waitFor((event) => event.event === 'message' && event.text === 'a typo in teh browser', 'the message to edit');
    const typoItem = shownMessage('a typo in teh browser').and(page.locator('li:not(.pending)'));
    await typoItem.waitFor({ timeout: WAIT_MS });
    await typoItem.locator('.message-menu-button').click();
    await typoItem.locator('.message-menu button', { hasText: 'Edit' }).click();
    assert.equal(await page.inputValue('#composer-input'), `/edit #${typo.seq} a typo in teh browser`);
    await typeEntry(`/edit #${typo.seq} no typo in the browser`);
    const edited = shownMessage('no typo in the browser');
    await edited.locator('.message-edited').waitFor({ timeout: WAIT_MS });
    await bob.waitFor((event) => event.event === 'message' && event.text === 'no typo in the browser', 'the edit');
    await edited.locator('.message-menu-button').click();
    await edited.locator('.message-menu button', { hasText: 'Delete' }).click();
    assert.equal(await page.inputValue('#composer-input'), `/delete #${typo.seq} `);
    await typeEntry(`/delete #${typo.seq} oops`);
    await shownMessage('(deleted by ana: oops)').and(page.locator('li.deleted')).waitFor({ timeout: WAIT_MS });
    await bob.waitFor((event) => event.event === 'message' && event.text === 'oops', 'the deletion');
    await until(
      () =>
        page.evaluate(async () => {
          const database = await new Promise((resolve, reject) => {
            const request = indexedDB.open('palomar:ana');
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
          });
          const rows = await new Promise((resolve, reject) => {
            const request = database.transaction('messages').objectStore('messages').getAll();
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
          });
          database.close();
          const texts = rows.map((row) => row.text);
          return !texts.includes('a typo in teh browser') && !texts.includes('no typo in the browser');
        }),
      'the deleted texts to be blanked in IndexedDB',
    );

    // ---- replies and reactions: through a message's menu here, from carol's page and bob's terminal there, both
    // ways; a reply's quote shows what it answers, highlighted
    log('replies and reactions');
    const carolPage = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } })).newPage();
    carolPage.on('pageerror', (error) => problems.pageErrors.push(`carol: ${error.message}`));
    await signUp(carolPage, 'carol', 'carol has a password too');
    const carolSees = (text) =>
      carolPage.locator('#messages li.message', { has: carolPage.locator('.message-text', { hasText: exactly(text) }) });
    await bob.say('which release do we ship?');
    const questionSeq = bob.events.findLast((event) => event.event === 'accepted').seq;
    const question = shownMessage('which release do we ship?');
    await question.waitFor({ timeout: WAIT_MS });
    await question.locator('.message-menu-button').click();
    await question.locator('.message-menu button', { hasText: 'Reply' }).click();
    await page.locator('#reply-bar').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await page.locator('#reply-bar-text').textContent(), 'Replying to bob: which release do we ship?');
    await typeEntry('the one from friday');
    const answer = shownMessage('the one from friday').and(page.locator('li.own:not(.pending)'));
    await answer.waitFor({ timeout: WAIT_MS });
    assert.equal(await answer.locator('.reply-quote').textContent(), 'bobwhich release do we ship?');
    assert.equal(await page.locator('#reply-bar').isVisible(), false, 'the reply bar goes once the reply is sent');
    const answerSeen = await bob.waitFor((event) => event.event === 'message' && event.kind === 'reply' && event.text === 'the one from friday', 'ana\'s reply');
    assert.equal(answerSeen.of, questionSeq);
    await question.locator('.message-menu-button').click();
    await question.locator('.message-menu-reactions button[aria-label="React with +1"]').click();
    const thumbs = question.locator('.reaction', { hasText: '👍' });
    await until(async () => (await thumbs.textContent()) === '👍1' && (await thumbs.getAttribute('aria-pressed')) === 'true', 'our 👍 on bob\'s question');
    assert.equal(await thumbs.getAttribute('title'), 'ana');
    await bob.waitFor(
      (event) => event.event === 'message' && event.kind === 'reaction' && event.from === 'ana' && event.of === questionSeq && event.added === true && event.text === '👍',
      'ana\'s 👍',
    );
    // carol sees both, adds her 👍 with a click on the chip, and answers ana with a reaction and a reply typed.
    const carolThumbs = carolSees('which release do we ship?').locator('.reaction', { hasText: '👍' });
    await until(async () => (await carolThumbs.count()) === 1 && (await carolThumbs.textContent()) === '👍1', 'carol to see ana\'s 👍');
    assert.equal(await carolSees('the one from friday').locator('.reply-quote').textContent(), 'bobwhich release do we ship?');
    await carolThumbs.click();
    await until(async () => (await thumbs.textContent()) === '👍2' && (await thumbs.getAttribute('title')) === 'ana, carol', 'carol\'s 👍 here too');
    await carolPage.fill('#composer-input', '/react tada');
    await carolPage.press('#composer-input', 'Enter');
    await until(async () => (await answer.locator('.reaction').allTextContents()).join(' ') === '🎉1', 'carol\'s 🎉 on our reply');
    await carolPage.fill('#composer-input', '/reply friday it is');
    await carolPage.press('#composer-input', 'Enter');
    const carolAnswer = shownMessage('friday it is');
    await carolAnswer.waitFor({ timeout: WAIT_MS });
    assert.equal(await carolAnswer.locator('.reply-quote').textContent(), 'anathe one from friday');
    await bob.say(`/react #${answerSeen.seq} eyes`);
    await until(async () => (await answer.locator('.reaction').allTextContents()).join(' ') === '🎉1 👀1', 'bob\'s 👀 beside carol\'s 🎉, in their order');
    await bob.say(`/reply #${answerSeen.seq} sounds good`);
    await shownMessage('sounds good').waitFor({ timeout: WAIT_MS });
    assert.equal(await shownMessage('sounds good').locator('.reply-quote').textContent(), 'anathe one from friday');
    // Taking ours back with a click on its chip; bob's question keeps carol's.
    await thumbs.click();
    await until(async () => (await thumbs.textContent()) === '👍1' && (await thumbs.getAttribute('aria-pressed')) === 'false', 'our 👍 taken back');
    await until(async () => (await carolThumbs.getAttribute('title')) === 'carol', 'carol to see ours taken back');
    // The quote shows the message it answers.
    await page.evaluate(() => {
      document.getElementById('scroller').scrollTop = 0;
    });
    await carolAnswer.locator('.reply-quote').click();
    await answer.and(page.locator('li.highlighted')).waitFor({ timeout: WAIT_MS });
    assert.ok(await answer.isVisible(), 'scrolled to');

    // ---- knowing who is there (protocol version 6): /away in the top bar and in carol's member list, carol typing
    // shown then gone, "seen by carol" once she has read, /whois in lines
    log('away, typing, seen by, whois');
    const noticeShown = (text) => messageList.locator('li.notice', { hasText: exactly(text) });
    await page.evaluate(() => {
      const scroller = document.getElementById('scroller');
      scroller.scrollTop = scroller.scrollHeight;
    });
    await typeEntry('/away lunch, back at 2');
    await noticeShown('you are away: lunch, back at 2').waitFor({ timeout: WAIT_MS });
    await until(async () => (await page.locator('#away-status').textContent()) === 'away: lunch, back at 2', 'our away message in the top bar');
    assert.equal(await page.locator('#away-button').textContent(), 'Back');
    const anaAtCarol = carolPage.locator('#member-list li.away', { hasText: 'ana' });
    await anaAtCarol.waitFor({ timeout: WAIT_MS });
    assert.equal(await anaAtCarol.locator('.away-mark').getAttribute('title'), 'lunch, back at 2');
    await carolPage.fill('#composer-input', 'let me think');
    await until(async () => (await page.locator('#typing').textContent()) === 'carol is typing…', 'carol typing, shown');
    await carolPage.fill('#composer-input', '');
    await until(async () => (await page.locator('#typing').textContent()) === '', 'carol no longer typing');
    await typeEntry('did you read this, carol?');
    const readByCarol = shownMessage('did you read this, carol?').and(page.locator('li.own:not(.pending)'));
    await readByCarol.waitFor({ timeout: WAIT_MS });
    await carolSees('did you read this, carol?').waitFor({ timeout: WAIT_MS });
    await until(async () => (await readByCarol.locator('.seen-by').count()) === 1 && (await readByCarol.locator('.seen-by').textContent()) === 'seen by carol', '"seen by carol"');
    // All of it on one screen, for the README: away in the top bar, seen by, carol typing an answer.
    await carolPage.fill('#composer-input', 'yes, just now');
    await until(async () => (await page.locator('#typing').textContent()) === 'carol is typing…', 'carol typing again');
    await screenshot(page, 'web-client-who-is-there.png');
    await carolPage.fill('#composer-input', '');
    await until(async () => (await page.locator('#typing').textContent()) === '', 'carol no longer typing again');
    await typeEntry('/whois carol');
    await noticeShown('carol: rooms in common: #lobby').waitFor({ timeout: WAIT_MS });
    const whois = (await messageList.locator('li.notice').allTextContents()).slice(-3);
    assert.match(whois[0], /^carol: online since \d\d:\d\d \(\d+ (s|min)\)(, idle \d+ (s|min))?$/);
    assert.match(whois[1], /^carol: registered \d{4}-\d\d-\d\d$/);
    await typeEntry('/whois nobody-here');
    await noticeShown('no such user: nobody-here').waitFor({ timeout: WAIT_MS });
    await page.click('#away-button');
    await noticeShown('you are back').waitFor({ timeout: WAIT_MS });
    await until(async () => !(await page.locator('#away-status').isVisible()), 'our away message gone from the top bar');
    await until(async () => (await anaAtCarol.count()) === 0, 'ana no longer away at carol');
    await carolPage.context().close();

    // ---- code and links: a block typed in the page, inline code and a link from the terminal
    log('code and links');
    await typeEntry('```rust\nfn main() {\n    println!("hi");\n}\n```');
    await bob.waitFor((event) => event.event === 'message' && event.text.startsWith('```rust\nfn main()'), 'the code block');
    const block = messageList.locator('pre.code-block').last();
    await block.waitFor({ timeout: WAIT_MS });
    assert.equal(await block.locator('code').textContent(), 'fn main() {\n    println!("hi");\n}');
    await bob.say('try `cargo test` as https://example.com/docs says');
    await messageList.locator('code.inline-code', { hasText: 'cargo test' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await messageList.locator('a[href="https://example.com/docs"]').count(), 1);

    // ---- the page's own preferences: someone ignored is hidden until unignored, a silenced room drawn so
    log('ignore and silence');
    await typeEntry('/ignore bob');
    await until(async () => (await shownMessage('sounds good').count()) === 0, 'bob\'s messages hidden');
    assert.equal(await shownMessage('the one from friday').count(), 1, 'ours stay');
    await typeEntry('/unignore bob');
    await shownMessage('sounds good').waitFor({ timeout: WAIT_MS });
    await typeEntry('/silence');
    const silencedLobby = async () => ((await conversationButton('#lobby').getAttribute('class')) ?? '').split(' ').includes('silenced');
    await until(silencedLobby, 'the lobby drawn silenced');
    await typeEntry('/unsilence');
    await until(async () => !(await silencedLobby()), 'the lobby no longer silenced');

    // ---- a direct conversation, both ways
    log('direct messages');
    await typeEntry('/msg bob a private hello');
    const direct = await bob.waitFor((event) => event.event === 'message' && event.text === 'a private hello', 'the direct message');
    assert.equal(direct.conversation, '@ana');
    assert.equal(await page.locator('#conversation-title').textContent(), '@bob');
    await bob.say('/msg ana a private answer');
    await shownMessage('a private answer').waitFor({ timeout: WAIT_MS });

    // ---- unread while looking at another conversation
    log('unread counts');
    await conversationButton('#lobby').click();
    await bob.say('/msg ana unread while you look elsewhere');
    await until(async () => ((await conversationButton('@bob').getAttribute('aria-label')) ?? '').includes('1 unread'), '@bob to count 1 unread');
    await until(async () => (await page.title()) === '(1) Palomar', 'the title to count 1 unread');

    const stored = await page.evaluate(async (password) => {
      const everything = [JSON.stringify({ ...localStorage }), JSON.stringify({ ...sessionStorage })];
      const database = await new Promise((resolve, reject) => {
        const request = indexedDB.open('palomar:ana');
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      for (const name of database.objectStoreNames) {
        const rows = await new Promise((resolve, reject) => {
          const request = database.transaction(name).objectStore(name).getAll();
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
        everything.push(JSON.stringify(rows));
      }
      database.close();
      return everything.some((text) => text.includes(password));
    }, ANA_PASSWORD);
    assert.equal(stored, false, 'the password is in no storage');

    // ---- a reload: sign in again (once, the nickname is known); history and unread counts are there
    log('reload');
    await page.reload();
    await page.locator('#signin').waitFor({ state: 'visible' });
    assert.equal(await page.inputValue('#signin-nick'), 'ana', 'the nickname is filled in');
    assert.equal(await page.locator('#signin-confirm-row').isVisible(), false, 'a known nickname asks once');
    await bob.say('/msg ana while you were away 1');
    await bob.say('/msg ana while you were away 2');
    await page.fill('#signin-password', ANA_PASSWORD);
    await page.click('#signin-submit');
    await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT_MS });
    // The server resends nothing at or below the cursors Hello gave, so these came from IndexedDB.
    await shownMessage('hello from the browser').waitFor({ timeout: WAIT_MS });
    await shownMessage('hi ana, from the terminal').waitFor({ timeout: WAIT_MS });
    assert.equal(await shownMessage('friday it is').locator('.reply-quote').textContent(), 'anathe one from friday');
    assert.deepEqual(await shownMessage('which release do we ship?').locator('.reaction').allTextContents(), ['👍1'], 'reactions kept');
    await until(async () => ((await conversationButton('@bob').getAttribute('aria-label')) ?? '').includes('3 unread'), '@bob to count 3 unread after the reload');
    assert.equal(await page.title(), '(3) Palomar');
    await conversationButton('@bob').click();
    for (const text of ['a private hello', 'a private answer', 'unread while you look elsewhere', 'while you were away 1', 'while you were away 2']) {
      await shownMessage(text).waitFor({ timeout: WAIT_MS });
    }
    await until(async () => (await page.title()) === 'Palomar', 'no unread once read');
    await conversationButton('#lobby').click();

    // ---- scrollback: a room joined late shows the last 50 messages; "Load older" fetches the rest, to the start
    log('scrollback');
    bob.type('/join history');
    await bob.waitFor((event) => event.event === 'joined' && event.conversation === '#history', 'its join of #history');
    for (let line = 1; line <= 60; line += 1) bob.type(`history line ${line}`);
    await until(() => bob.events.filter((event) => event.event === 'accepted' && event.conversation === '#history').length === 60, 'bob\'s 60 messages in #history to be stored');
    bob.type('/join lobby');
    await typeEntry('/join history');
    await until(async () => (await page.locator('#conversation-title').textContent()) === '#history', 'the browser in #history');
    await shownMessage('history line 60').waitFor({ timeout: WAIT_MS });
    assert.equal(await messageList.locator('li.message').count(), 50, 'a new member starts 50 messages back');
    // Clicked where it is: a click that scrolled to it first would also reach the top of the list, which fetches
    // the older page by itself and hides the button while it comes (under load, before the click lands).
    await page.locator('#load-older').dispatchEvent('click');
    await shownMessage('history line 1').waitFor({ timeout: WAIT_MS });
    assert.equal(await messageList.locator('li.message').count(), 60);
    await until(async () => (await page.locator('#history-state').textContent()) === 'Start of conversation', 'the start of the conversation said');
    assert.equal(await page.locator('#load-older').isVisible(), false, 'nothing older to load');

    // ---- the keyboard: arrows move through the conversations, Enter opens one; roles for screen readers
    log('keyboard');
    await conversationButton('#history').focus();
    await page.keyboard.press('Home');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), '#lobby');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await until(async () => (await page.locator('#conversation-title').textContent()) === '#history', 'Enter to open the focused conversation');
    assert.equal(await conversationButton('#history').getAttribute('aria-current'), 'true');
    assert.equal(await conversationButton('#lobby').getAttribute('aria-current'), 'false');
    assert.equal(await messageList.getAttribute('role'), 'log');
    await until(async () => (await messageList.getAttribute('aria-live')) === 'polite', 'the log to announce new messages again');
    assert.equal(await page.locator('#banner-text').getAttribute('role'), 'status');
    await conversationButton('#lobby').click();

    // ---- search: from the field (every conversation, then this one only), a result in a room whose message is
    // older than what the page holds brought on screen, "More" for the next page, and /search and /goto typed
    log('search');
    bob.type('/join archive');
    await bob.waitFor((event) => event.event === 'joined' && event.conversation === '#archive', 'its join of #archive');
    await bob.say('the wombat report is due');
    for (let line = 1; line <= 55; line += 1) bob.type(`archive filler ${line}`);
    await until(() => bob.events.filter((event) => event.event === 'accepted' && event.conversation === '#archive').length === 56, 'bob\'s 56 messages in #archive to be stored');
    bob.type('/join lobby');
    await typeEntry('/join archive');
    await until(async () => (await page.locator('#conversation-title').textContent()) === '#archive', 'the browser in #archive');
    await shownMessage('archive filler 55').waitFor({ timeout: WAIT_MS });
    assert.equal(await shownMessage('the wombat report is due').count(), 0, 'older than the join window');
    await conversationButton('#lobby').click();
    await typeEntry('is the wombat report done?');
    await shownMessage('is the wombat report done?').and(page.locator('li.own:not(.pending)')).waitFor({ timeout: WAIT_MS });
    await bob.say('/msg ana Wombats! snacks tomorrow');
    await page.keyboard.press('Control+f');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'search-input', 'Ctrl+F goes to the search field');
    await page.keyboard.type('wombat');
    await page.keyboard.press('Enter');
    const searchSummary = page.locator('#search-summary');
    const results = page.locator('#search-results .search-hit');
    await until(async () => (await searchSummary.textContent()) === '3 messages found for “wombat”', 'the search\'s header');
    assert.deepEqual(
      await results.locator('.search-hit-key').allTextContents(),
      ['@bob', '#lobby', '#archive'],
      'newest first, from every conversation',
    );
    assert.deepEqual(await results.locator('.search-hit-text').allTextContents(), ['Wombats! snacks tomorrow', 'is the wombat report done?', 'the wombat report is due']);
    assert.deepEqual(await results.locator('mark').allTextContents(), ['Wombat', 'wombat', 'wombat'], 'the words found marked');
    assert.equal(await page.locator('#search-more').isVisible(), false, 'nothing older');
    await page.check('#search-here');
    await page.press('#search-input', 'Enter');
    await until(async () => (await searchSummary.textContent()) === '1 message found for “wombat” in #lobby', 'the search of #lobby only');
    await page.uncheck('#search-here');
    await page.press('#search-input', 'Enter');
    await until(async () => (await results.count()) === 3, 'every conversation searched again');
    // Enter on the result in #archive: its conversation opens at the message, fetched with the pages before it.
    await results.nth(2).focus();
    await page.keyboard.press('Enter');
    await until(async () => (await page.locator('#conversation-title').textContent()) === '#archive', 'the result\'s conversation');
    const wombat = shownMessage('the wombat report is due');
    await wombat.and(page.locator('li.highlighted')).waitFor({ timeout: WAIT_MS });
    assert.ok(await wombat.isVisible(), 'brought on screen');
    await page.fill('#search-input', 'archive filler');
    await page.press('#search-input', 'Enter');
    await until(async () => (await searchSummary.textContent()) === '20 messages found for “archive filler”', 'the first page');
    assert.equal(await results.first().locator('.search-hit-text').textContent(), 'archive filler 55');
    await page.click('#search-more');
    await until(async () => (await searchSummary.textContent()) === '40 messages found for “archive filler”', 'the second page');
    await page.click('#search-close');
    await page.locator('#search-panel').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await page.fill('#search-input', '');
    await conversationButton('#lobby').click();
    await typeEntry('/search wombat report');
    const notice = (text) => messageList.locator('li.notice', { hasText: exactly(text) });
    await notice('2 messages found for “wombat report”').waitFor({ timeout: WAIT_MS });
    const lines = await messageList.locator('li.notice').allTextContents();
    assert.match(lines.at(-2), /^\[1\] #lobby {2}ana {2}\d\d:\d\d {2}is the wombat report done\?$/);
    assert.match(lines.at(-1), /^\[2\] #archive {2}bob {2}\d\d:\d\d {2}the wombat report is due$/);
    await typeEntry('/search');
    await notice('nothing more to find for “wombat report”').waitFor({ timeout: WAIT_MS });
    await typeEntry('/goto 2');
    await until(async () => (await page.locator('#conversation-title').textContent()) === '#archive', '/goto to open #archive');
    await wombat.and(page.locator('li.highlighted')).waitFor({ timeout: WAIT_MS });
    await conversationButton('#lobby').click();

    // ---- the server SIGKILLed: a message typed meanwhile waits, then arrives once after the restart
    log('server killed');
    await server.kill('SIGKILL');
    await until(async () => (await bannerText()).startsWith('Reconnecting in'), 'the reconnecting banner');
    await typeEntry('sent while the server was down');
    await shownMessage('sent while the server was down').and(page.locator('li.pending')).waitFor({ timeout: WAIT_MS });
    await until(async () => (await bannerText()).includes('(1 message waiting)'), 'the banner to count 1 message waiting');
    assert.match(await bannerText(), /^Reconnecting in \d+ s… \(1 message waiting\)$/);
    // "Retry now" tries at once, rather than at the end of a countdown of several seconds.
    await until(async () => /^Reconnecting in ([3-9]|\d\d) s/.test(await bannerText()), 'a countdown of 3 s or more');
    const attempts = webSockets;
    await page.click('#retry-now');
    await until(() => webSockets > attempts, '"Retry now" to connect at once', 1500);
    server = await startServer();
    log('server restarted');
    await until(async () => (await bannerText()) === 'Connected', 'the connected banner');
    await shownMessage('sent while the server was down').and(page.locator('li.own:not(.pending)')).waitFor({ timeout: WAIT_MS });
    await bob.waitFor((event) => event.event === 'message' && event.text === 'sent while the server was down', 'the message typed while the server was down');
    // Long enough for a duplicate to show up if the resend after the reconnection stored it twice.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(bob.messages('sent while the server was down').length, 1, 'exactly once');
    assert.equal(await shownMessage('sent while the server was down').count(), 1, 'shown once in the page too');

    // ---- hostile text stays text; only https links are links
    log('hostile text');
    await bob.say('<img src=x onerror=alert(1)>');
    const linkText = 'docs at https://example.org/guide, not javascript:alert(2) nor http://example.org';
    await bob.say(linkText);
    await shownMessage('<img src=x onerror=alert(1)>').waitFor({ timeout: WAIT_MS });
    await shownMessage(linkText).waitFor({ timeout: WAIT_MS });
    assert.equal(await messageList.locator('img').count(), 0, 'no img element in the message list');
    assert.equal(await shownMessage('<img src=x onerror=alert(1)>').locator('.message-text').textContent(), '<img src=x onerror=alert(1)>');
    const links = await shownMessage(linkText).locator('a').evaluateAll((anchors) => anchors.map((anchor) => [anchor.href, anchor.target, anchor.rel]));
    assert.deepEqual(links, [['https://example.org/guide', '_blank', 'noopener noreferrer']]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(problems.dialogs, [], 'no script ran');

    // ---- layout: wide and phone, nothing wider than the viewport, the composer visible
    log('layout');
    const layout = () =>
      page.evaluate(() => {
        const width = window.innerWidth;
        const overflowing = [...document.querySelectorAll('body *')]
          .filter((node) => {
            const box = node.getBoundingClientRect();
            return box.width > 0 && box.height > 0 && box.right > width + 0.5;
          })
          .map((node) => `${node.tagName.toLowerCase()}#${node.id}.${node.className}`);
        const composer = document.getElementById('composer-input').getBoundingClientRect();
        const composerVisible = composer.top >= 0 && composer.bottom <= window.innerHeight && composer.left >= 0 && composer.right <= width;
        return { scrollWidth: document.documentElement.scrollWidth, width, overflowing, composerVisible };
      });
    for (const [width, height, name] of [[1280, 800, 'web-client.png'], [360, 640, 'web-client-phone.png']]) {
      await page.setViewportSize({ width, height });
      await page.waitForTimeout(300);
      const measured = await layout();
      assert.ok(measured.scrollWidth <= measured.width, `${width}x${height}: scrollWidth ${measured.scrollWidth} > ${measured.width}`);
      assert.deepEqual(measured.overflowing, [], `${width}x${height}: elements past the right edge`);
      assert.ok(measured.composerVisible, `${width}x${height}: the composer is visible`);
      await screenshot(page, name);
    }
    // On a phone the conversations are a drawer: it opens, lists them, and Esc closes it.
    assert.equal(await page.locator('#conversation-list').isVisible(), false, 'the drawer starts closed');
    await page.click('#drawer-toggle');
    await conversationButton('@bob').waitFor({ state: 'visible' });
    await page.waitForTimeout(300);
    assert.deepEqual((await layout()).overflowing, [], 'the open drawer fits');
    await screenshot(page, 'web-client-drawer.png');
    await page.keyboard.press('Escape');
    await until(async () => !(await page.locator('#conversation-list').isVisible()), 'Esc to close the drawer');
    await page.setViewportSize({ width: 1280, height: 800 });

    // ---- signing out, and a wrong password said on the form
    log('sign out');
    await typeEntry('/quit');
    await page.locator('#signin').waitFor({ state: 'visible', timeout: WAIT_MS });
    await page.fill('#signin-password', 'not the password');
    await page.click('#signin-submit');
    await until(async () => (await page.locator('#signin-error').textContent()).includes('wrong password'), 'the wrong-password error');
    assert.equal(await page.locator('#chat').isVisible(), false);

    const csp = problems.consoleErrors.filter((text) => /Content Security Policy|Refused to/i.test(text));
    assert.deepEqual(csp, [], 'nothing the Content-Security-Policy refused');
    assert.deepEqual(problems.pageErrors, [], 'no uncaught error in the page');
    log(`screenshots in ${shots}`);
    log('1 passed, 0 failed');
  } catch (error) {
    for (const child of children) process.stdout.write(`${child.tail()}\n`);
    process.stdout.write(`--- page problems: ${JSON.stringify(problems)}\n`);
    if (page !== null) {
      const file = path.join(shots, 'failure.png');
      await page.screenshot({ path: file }).catch(() => {});
      const shown = await page.evaluate(() => document.body.innerText).catch((reason) => `(unreadable: ${reason})`);
      process.stdout.write(`--- the page showed (screenshot ${file}):\n${shown}\n`);
    }
    throw error;
  } finally {
    if (browser !== null) await browser.close();
    for (const child of children) await child.kill();
    if (!process.env.PALOMAR_KEEP_TEMP) await rm(work, { recursive: true, force: true });
  }
}

const limit = setTimeout(() => {
  process.stderr.write(`the browser test ran over ${RUN_LIMIT_MS / 1000} s\n`);
  for (const child of children) {
    process.stdout.write(`${child.tail()}\n`);
    child.process.kill('SIGKILL');
  }
  process.exit(1);
}, RUN_LIMIT_MS);
limit.unref();
await main();
