//! Line mode's input when stdin is a terminal. In its usual (canonical) mode the kernel edits the line itself but
//! keeps at most 4,095 bytes of it and drops the rest without a word, so a long paste would go out cut. While line
//! mode reads a terminal, the terminal is in non-canonical mode without echo, and [`LineEditor`] edits and echoes
//! the line instead: Backspace, Ctrl+W, Ctrl+U, and Ctrl+D on an empty line for the end of input. Ctrl+C still
//! interrupts (the signal stays on); [`RawInput`] puts the terminal back as it was.

use std::io::{Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthChar;

/// The terminal's settings from before line mode changed them, put back when this is dropped.
pub struct RawInput {
    saved: Termios,
}

impl RawInput {
    /// Switches the terminal on stdin to non-canonical mode without echo.
    pub fn enter() -> std::io::Result<RawInput> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(RawInput { saved })
    }
}

impl Drop for RawInput {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// What a key completed.
#[derive(Debug, PartialEq)]
pub enum Typed {
    Line(String),
    /// Ctrl+D on an empty line.
    End,
}

/// Where an escape sequence (an arrow key, a function key, Alt+key) is: its bytes are not text.
#[derive(Debug, Default, PartialEq)]
enum Escape {
    #[default]
    Outside,
    /// After ESC.
    Started,
    /// Inside `ESC [` or `ESC O`, until the final byte.
    Sequence,
}

/// The line being typed, fed byte by byte as the terminal sends them.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: Vec<u8>,
    escape: Escape,
}

const BACKSPACE: u8 = 0x08;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;
const CTRL_W: u8 = 0x17;
const DELETE: u8 = 0x7f;
const ESC: u8 = 0x1b;

impl LineEditor {
    /// Takes one byte; what to write back to the terminal is appended to `echo`.
    pub fn feed(&mut self, byte: u8, echo: &mut Vec<u8>) -> Option<Typed> {
        match self.escape {
            Escape::Started => {
                self.escape = if matches!(byte, b'[' | b'O') { Escape::Sequence } else { Escape::Outside };
                return None;
            }
            Escape::Sequence => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::Outside;
                }
                return None;
            }
            Escape::Outside => {}
        }
        match byte {
            b'\r' | b'\n' => {
                echo.extend_from_slice(b"\r\n");
                let line = std::mem::take(&mut self.line);
                return Some(Typed::Line(String::from_utf8_lossy(&line).into_owned()));
            }
            CTRL_D if self.line.is_empty() => return Some(Typed::End),
            DELETE | BACKSPACE => {
                self.erase_char(echo);
            }
            CTRL_W => {
                while self.last_char().is_some_and(char::is_whitespace) {
                    self.erase_char(echo);
                }
                while self.last_char().is_some_and(|c| !c.is_whitespace()) {
                    self.erase_char(echo);
                }
            }
            CTRL_U => while self.erase_char(echo) {},
            ESC => self.escape = Escape::Started,
            b'\t' => {
                self.line.push(byte);
                echo.push(byte);
            }
            // Other control characters are keys with no meaning here; the text could not carry them anyway.
            0..0x20 => {}
            _ => {
                self.line.push(byte);
                echo.push(byte);
            }
        }
        None
    }

    /// The last whole character typed (a character still arriving byte by byte is not whole).
    fn last_char(&self) -> Option<char> {
        let start = self.last_char_start()?;
        std::str::from_utf8(&self.line[start..]).ok()?.chars().next()
    }

    fn last_char_start(&self) -> Option<usize> {
        let mut start = self.line.len().checked_sub(1)?;
        while start > 0 && self.line[start] & 0xc0 == 0x80 {
            start -= 1;
        }
        Some(start)
    }

    /// Removes the last character and rubs it out on the screen; `false` if the line was empty.
    fn erase_char(&mut self, echo: &mut Vec<u8>) -> bool {
        let Some(start) = self.last_char_start() else { return false };
        let width = self.last_char().and_then(UnicodeWidthChar::width).unwrap_or(1);
        self.line.truncate(start);
        for _ in 0..width {
            echo.extend_from_slice(b"\x08 \x08");
        }
        true
    }
}

/// Reads lines from the terminal on stdin (which must be in [`RawInput`]'s mode), echoing what is typed to the
/// terminal, until Ctrl+D on an empty line, the end of input or a read error.
pub fn read_lines(tx: mpsc::Sender<String>) {
    // The echo belongs on the terminal even when stdout is a pipe or a file.
    let mut terminal = std::fs::OpenOptions::new().write(true).open("/dev/tty").ok();
    let mut editor = LineEditor::default();
    let mut stdin = std::io::stdin().lock();
    let mut chunk = [0; 4096];
    let mut echo = Vec::new();
    loop {
        let read = match stdin.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let mut lines = Vec::new();
        for &byte in &chunk[..read] {
            match editor.feed(byte, &mut echo) {
                Some(Typed::Line(line)) => lines.push(line),
                Some(Typed::End) => {
                    lines.into_iter().for_each(|line| drop(tx.blocking_send(line)));
                    return;
                }
                None => {}
            }
        }
        if let Some(terminal) = &mut terminal {
            let _ = terminal.write_all(&echo).and_then(|()| terminal.flush());
        }
        echo.clear();
        for line in lines {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(bytes: &[u8]) -> (Vec<Typed>, Vec<u8>) {
        let mut editor = LineEditor::default();
        let mut echo = Vec::new();
        let typed = bytes.iter().filter_map(|&b| editor.feed(b, &mut echo)).collect();
        (typed, echo)
    }

    fn line(text: &str) -> Typed {
        Typed::Line(text.to_owned())
    }

    #[test]
    fn a_line_longer_than_the_kernels_limit_arrives_whole() {
        let long = "x".repeat(5_000);
        let (lines, echo) = typed(format!("{long}\r").as_bytes());
        assert_eq!(lines, vec![line(&long)]);
        assert_eq!(echo.len(), 5_002, "echoed, then a new line");
    }

    #[test]
    fn backspace_rubs_out_whole_characters_by_their_width() {
        let (lines, echo) = typed("né日\x7f\x7fo\n".as_bytes());
        assert_eq!(lines, vec![line("no")]);
        assert!(echo.ends_with(b"\x08 \x08\x08 \x08\x08 \x08o\r\n"), "日 is two columns: {echo:?}");
    }

    #[test]
    fn ctrl_w_ctrl_u_and_escape_sequences() {
        let (lines, _) = typed(b"hello big  world\x17there\r\x1b[Agone\x15\x1b[1;5Dok\x1bb\n");
        assert_eq!(lines, vec![line("hello big  there"), line("ok")]);
    }

    #[test]
    fn ctrl_d_ends_the_input_only_on_an_empty_line() {
        assert_eq!(typed(b"half\x04\n\x04").0, vec![line("half"), Typed::End]);
    }
}
