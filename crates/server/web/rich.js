// How a message's text is shown: fenced code blocks, `inline code`, https links and line breaks, by the rules every
// Palomar front end follows (the Rust ones share palomar_client::rich_text, this is its mirror). Messages stay
// plain text on the wire; nothing else of Markdown is read, so `*bold*` stays `*bold*`. The DOM side (ui.js)
// builds the pieces with createElement and textContent.

import { linkPieces } from './links.js';

const FENCE = '```';

/// The text cut into pieces in order: `{ text }` for plain text (line breaks kept), `{ text, href }` for a link,
/// `{ code }` for inline code and `{ block, language }` for a fenced block (`language` may be ''). A block takes
/// whole lines, so the line breaks that separate it from the text around it are not in any piece: it is shown
/// on lines of its own anyway.
export function richPieces(text) {
  const pieces = [];
  const lines = text.split('\n');
  const isClosing = (line) => line.trim() === FENCE;
  // Known once, so that a message of many unclosed fences does not cost a search to its end for each of them.
  const lastClosing = lines.findLastIndex(isClosing);
  let plain = [];
  const flushPlain = () => {
    if (plain.length > 0) pieces.push(...inlinePieces(plain.join('\n')));
    plain = [];
  };
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index];
    const trimmed = line.trim();
    if (!trimmed.startsWith(FENCE)) {
      plain.push(line);
      continue;
    }
    if (trimmed.length > 2 * FENCE.length && trimmed.endsWith(FENCE)) {
      flushPlain();
      pieces.push({ block: trimmed.slice(FENCE.length, -FENCE.length), language: '' });
      continue;
    }
    // An unclosed fence is not a block: the sender may be quoting backticks, or still typing.
    if (index >= lastClosing) {
      plain.push(line);
      continue;
    }
    let closing = index + 1;
    while (!isClosing(lines[closing])) closing += 1;
    flushPlain();
    pieces.push({ block: lines.slice(index + 1, closing).join('\n'), language: trimmed.slice(FENCE.length).trim() });
    index = closing;
  }
  flushPlain();
  return pieces;
}

/// Text outside blocks: inline code between two backticks of one line with something between, links in the rest.
/// A backtick that closes nothing on its line stays text, and so do two adjacent ones (an empty pair).
function inlinePieces(text) {
  const pieces = [];
  let plainFrom = 0;
  let from = 0;
  for (;;) {
    const opening = text.indexOf('`', from);
    if (opening === -1) break;
    const closing = text.indexOf('`', opening + 1);
    if (closing === -1) break;
    const code = text.slice(opening + 1, closing);
    if (code.includes('\n')) {
      from = opening + 1;
      continue;
    }
    if (code === '') {
      from = closing + 1;
      continue;
    }
    if (opening > plainFrom) pieces.push(...linkPieces(text.slice(plainFrom, opening)));
    pieces.push({ code });
    plainFrom = closing + 1;
    from = plainFrom;
  }
  if (plainFrom < text.length) pieces.push(...linkPieces(text.slice(plainFrom)));
  return pieces;
}
