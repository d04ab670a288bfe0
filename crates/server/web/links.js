// Which parts of a message's text become links. Only `https://` URLs that the URL parser accepts with that
// protocol do: anything else (`javascript:`, `data:`, `http:`, a malformed URL) stays text, so a message can
// never make the page run or load something by being clicked. The DOM side (ui.js) builds the links from these
// pieces with createElement and textContent.

// A candidate starts at `https://` and runs to white space or a character that cannot end a URL in prose.
const CANDIDATE = /https:\/\/[^\s<>"'`]+/gi;
// Punctuation that ends a sentence rather than the URL.
const TRAILING = /[.,;:!?)\]}]+$/;
// What the link text shows as its host: up to the first `/`, `?` or `#`. User info is refused, since in
// `https://good.example@evil.example` the reader sees one host and the browser goes to the other.
const SHOWN_HOST = /^https:\/\/([^/?#]*)/i;

/// The text cut into pieces in order: `{ text }` for plain text, `{ text, href }` for a link, `href` being the
/// URL as the parser wrote it. Joining the pieces' `text` gives the original text back.
export function linkPieces(text) {
  const pieces = [];
  let plainFrom = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const candidate = match[0].replace(TRAILING, '');
    const href = safeHref(candidate);
    if (href === null) continue;
    if (match.index > plainFrom) pieces.push({ text: text.slice(plainFrom, match.index) });
    pieces.push({ text: candidate, href });
    plainFrom = match.index + candidate.length;
  }
  if (plainFrom < text.length) pieces.push({ text: text.slice(plainFrom) });
  return pieces;
}

/// The URL to link `candidate` to, or null unless it shows a host without `@` and parses as an `https:` URL with
/// a host.
export function safeHref(candidate) {
  const host = SHOWN_HOST.exec(candidate)?.[1] ?? '';
  if (host === '' || host.includes('@')) return null;
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' || url.hostname.length === 0) return null;
  return url.href;
}
