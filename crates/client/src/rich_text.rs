//! What a message's text is made of when it is shown: plain text, `https://` links, `inline code` and fenced code
//! blocks, the small part of Markdown that chat users type everywhere (Slack, Discord, Element). Messages stay plain
//! text on the wire and in the store; this only says how the front ends draw them, by the same rules as the browser
//! client's (`crates/server/web/`), so a message looks alike everywhere. Pure: no I/O.

/// One piece of a message's text, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// An `https://` URL as typed, safe to open.
    Link(&'a str),
    /// Text between single backticks on one line, without them.
    Code(&'a str),
    /// The lines between a line that starts with three backticks (the rest of it is the language, maybe empty)
    /// and a line of three backticks; or what is between the fences of a one-line block.
    CodeBlock {
        language: &'a str,
        code: &'a str,
    },
}

const FENCE: &str = "```";

/// `text` cut into pieces. A fence that is never closed is plain text, as is a lone backtick.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut cut = Cutter { text, pieces: Vec::new(), plain: None };
    let mut plain_from = 0;
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = text[line_start..].find('\n').map_or(text.len(), |at| line_start + at);
        if let Some((block, end)) = block_at(text, line_start, line_end) {
            // A block is on lines of its own: the line break before it ends the text, as the one after it ends the
            // block.
            cut.inline(plain_from, line_start.saturating_sub(1).max(plain_from));
            cut.push(block);
            // The line break after the closing fence belongs to the block.
            plain_from = (end + 1).min(text.len());
            line_start = plain_from;
            continue;
        }
        line_start = line_end + 1;
    }
    cut.inline(plain_from, text.len());
    cut.finish()
}

/// The code block that starts with the line `start..line_end` of `text`, with where it ends (its closing fence's
/// end).
fn block_at(text: &str, start: usize, line_end: usize) -> Option<(Piece<'_>, usize)> {
    let opening = text[start..line_end].trim().strip_prefix(FENCE)?;
    if let Some(code) = opening.strip_suffix(FENCE).filter(|code| !code.is_empty()) {
        return Some((Piece::CodeBlock { language: "", code }, line_end));
    }
    let language = opening.trim();
    let body_start = line_end + 1;
    let mut at = body_start;
    while at <= text.len() {
        let end = text[at..].find('\n').map_or(text.len(), |found| at + found);
        if text[at..end].trim() == FENCE {
            // The line break before the closing fence ends the code's last line; it is not part of the code.
            let code = if at > body_start { &text[body_start..at - 1] } else { "" };
            return Some((Piece::CodeBlock { language, code }, end));
        }
        at = end + 1;
    }
    None
}

/// The pieces found so far, with the plain text not yet pushed (as a range of `text`), so that text around a
/// backtick or a refused link stays one piece.
struct Cutter<'a> {
    text: &'a str,
    pieces: Vec<Piece<'a>>,
    plain: Option<(usize, usize)>,
}

impl<'a> Cutter<'a> {
    /// Inline code, links and the plain text around them, in `text[from..to]` (outside code blocks).
    fn inline(&mut self, from: usize, to: usize) {
        let mut at = from;
        while let Some(open) = self.text[at..to].find('`').map(|found| at + found) {
            let after = open + 1;
            let close = self.text[after..to].find(['`', '\n']).map(|found| after + found);
            match close {
                Some(close) if close > after && self.text.as_bytes()[close] == b'`' => {
                    self.links(at, open);
                    self.push(Piece::Code(&self.text[after..close]));
                    at = close + 1;
                }
                // Two backticks together are text, both of them: neither opens code.
                Some(close) if self.text.as_bytes()[close] == b'`' => {
                    self.links(at, close + 1);
                    at = close + 1;
                }
                // A backtick with no partner on its line is text; look again after it.
                _ => {
                    self.links(at, after);
                    at = after;
                }
            }
        }
        self.links(at, to);
    }

    /// Links and the plain text around them, in `text[from..to]` (no code in it).
    fn links(&mut self, from: usize, to: usize) {
        let mut plain_from = from;
        let mut search_from = from;
        while let Some(start) = find_scheme(&self.text[search_from..to]).map(|found| search_from + found) {
            let candidate_end = self.text[start..to]
                .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
                .map_or(to, |end| start + end);
            let candidate =
                self.text[start..candidate_end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
            if is_safe_link(candidate) {
                self.plain(plain_from, start);
                self.push(Piece::Link(candidate));
                plain_from = start + candidate.len();
            }
            search_from = candidate_end.max(start + 1);
        }
        self.plain(plain_from, to);
    }

    fn plain(&mut self, from: usize, to: usize) {
        if from < to {
            self.plain = Some(match self.plain {
                Some((start, end)) if end == from => (start, to),
                _ => {
                    self.flush();
                    (from, to)
                }
            });
        }
    }

    fn push(&mut self, piece: Piece<'a>) {
        self.flush();
        self.pieces.push(piece);
    }

    fn flush(&mut self) {
        if let Some((from, to)) = self.plain.take() {
            self.pieces.push(Piece::Text(&self.text[from..to]));
        }
    }

    fn finish(mut self) -> Vec<Piece<'a>> {
        self.flush();
        self.pieces
    }
}

/// Where `https://` first starts in `text`, in any case.
fn find_scheme(text: &str) -> Option<usize> {
    let scheme = b"https://";
    text.as_bytes().windows(scheme.len()).position(|window| window.eq_ignore_ascii_case(scheme))
}

/// An `https://` URL with a host (letters, digits, `-`, `.`, a port, or an IPv6 address in brackets) and no user
/// info: `https://good.example@evil.example` would show one host and open another.
fn is_safe_link(candidate: &str) -> bool {
    let Some(after) = candidate.get("https://".len()..) else { return false };
    let host = after.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty()
        && host.chars().any(|c| c.is_ascii_alphanumeric())
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::Piece::{Code, CodeBlock, Link, Text};
    use super::*;

    #[test]
    fn plain_text_is_one_piece() {
        assert_eq!(pieces("hello\nworld *not bold*"), [Text("hello\nworld *not bold*")]);
        assert_eq!(pieces(""), []);
    }

    #[test]
    fn links_are_https_with_a_host_and_end_before_the_sentence_does() {
        assert_eq!(
            pieces("see https://example.com/a?b=1#c, then (https://x.org/y)."),
            [Text("see "), Link("https://example.com/a?b=1#c"), Text(", then ("), Link("https://x.org/y"), Text(").")]
        );
        assert_eq!(pieces("HTTPS://Example.com"), [Link("HTTPS://Example.com")]);
        for refused in ["http://example.com", "javascript:alert(1)", "https://", "https:///path", "https://a@b.example"]
        {
            assert_eq!(pieces(refused), [Text(refused)], "{refused}");
        }
        assert_eq!(pieces("<https://a.example>"), [Text("<"), Link("https://a.example"), Text(">")]);
        assert_eq!(pieces("https://[::1]:8443/x"), [Link("https://[::1]:8443/x")]);
        // Control characters never reach a client from the server, but a link would never carry one either.
        assert_eq!(pieces("https://a.example/\u{1b}[31m"), [Link("https://a.example/"), Text("\u{1b}[31m")]);
    }

    #[test]
    fn inline_code_is_on_one_line_between_two_backticks() {
        assert_eq!(pieces("run `cargo test` now"), [Text("run "), Code("cargo test"), Text(" now")]);
        assert_eq!(pieces("`a`"), [Code("a")]);
        assert_eq!(pieces("a lone ` backtick"), [Text("a lone ` backtick")]);
        assert_eq!(pieces("empty `` pair"), [Text("empty `` pair")]);
        assert_eq!(pieces("`` and `"), [Text("`` and `")], "two backticks together open nothing");
        assert_eq!(pieces("not `across\nlines`"), [Text("not `across\nlines`")]);
        assert_eq!(pieces("`https://a.example` is code"), [Code("https://a.example"), Text(" is code")]);
    }

    #[test]
    fn fenced_blocks_keep_their_lines_and_need_a_closing_fence() {
        let text = "look:\n```rust\nfn main() {\n    println!(\"https://a.example\");\n}\n```\nnice";
        assert_eq!(
            pieces(text),
            [
                Text("look:"),
                CodeBlock { language: "rust", code: "fn main() {\n    println!(\"https://a.example\");\n}" },
                Text("nice"),
            ]
        );
        assert_eq!(pieces("```\n  indented\n\n```"), [CodeBlock { language: "", code: "  indented\n" }]);
        assert_eq!(pieces("```\n```"), [CodeBlock { language: "", code: "" }]);
        assert_eq!(pieces("```x = 1```"), [CodeBlock { language: "", code: "x = 1" }]);
        assert_eq!(pieces("  ```x```  \nafter"), [CodeBlock { language: "", code: "x" }, Text("after")]);
        assert_eq!(pieces("``````"), [Text("``````")]);
        let unclosed = "```\nnever closed `x`";
        assert_eq!(pieces(unclosed), [Text("```\nnever closed "), Code("x")]);
        assert_eq!(
            pieces("a\n```\nb\n```\nc\n```\nd\n```"),
            [Text("a"), CodeBlock { language: "", code: "b" }, Text("c"), CodeBlock { language: "", code: "d" }]
        );
    }

    proptest::proptest! {
        /// Whatever is typed, the pieces cover it in order: nothing is lost or shown twice (fences and backticks
        /// aside; without them, exactly the text), and every link is one a reader may safely open.
        #[test]
        fn pieces_cover_the_text_in_order(text in "[a-z `\n:/.@h]{0,60}|(https://[a-z.@/]{0,12} ?`?){0,4}") {
            let mut rebuilt = String::new();
            for piece in pieces(&text) {
                match piece {
                    Text(part) | Link(part) => rebuilt.push_str(part),
                    Code(code) => rebuilt.push_str(code),
                    CodeBlock { code, .. } => rebuilt.push_str(code),
                }
                if let Link(link) = piece {
                    proptest::prop_assert!(is_safe_link(link));
                }
            }
            if !text.contains('`') {
                proptest::prop_assert_eq!(&rebuilt, &text);
            }
            let without_marks: String = text.chars().filter(|&c| c != '`').collect();
            let rebuilt_without_marks: String = rebuilt.chars().filter(|&c| c != '`').collect();
            proptest::prop_assert!(is_subsequence(&rebuilt_without_marks, &without_marks));
        }
    }

    fn is_subsequence(part: &str, whole: &str) -> bool {
        let mut whole = whole.chars();
        part.chars().all(|c| whole.any(|w| w == c))
    }
}
