//! The input line: editing keys, the history of what was typed, and Tab completion (the shared
//! `palomar_client::completion`).

use palomar_client::completion::{self, Completion};

/// An editable line; the cursor is an index in characters.
#[derive(Debug, Default)]
pub struct Input {
    text: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing the history with Up/Down; `None` when editing a fresh line.
    browsing: Option<usize>,
    /// The line being typed before browsing started, restored after the newest entry.
    draft: String,
    completion: Option<Completion>,
}

fn is_word(c: char) -> bool {
    !c.is_whitespace()
}

impl Input {
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn edited(&mut self) {
        self.completion = None;
        self.browsing = None;
    }

    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += 1;
        self.edited();
    }

    /// Inserts pasted text as it is, line breaks included: a paste is one message, sent when Enter is pressed.
    /// Terminals send the line breaks of a paste as CR (some as CR LF); each is one newline here.
    pub fn paste(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        for c in text.chars() {
            self.text.insert(self.cursor, c);
            self.cursor += 1;
        }
        self.edited();
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.text.remove(self.cursor);
        }
        self.edited();
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
        self.edited();
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
        self.completion = None;
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.len());
        self.completion = None;
    }

    pub fn home(&mut self) {
        self.cursor = 0;
        self.completion = None;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
        self.completion = None;
    }

    fn previous_word_start(&self) -> usize {
        let mut at = self.cursor;
        while at > 0 && !is_word(self.text[at - 1]) {
            at -= 1;
        }
        while at > 0 && is_word(self.text[at - 1]) {
            at -= 1;
        }
        at
    }

    pub fn word_left(&mut self) {
        self.cursor = self.previous_word_start();
        self.completion = None;
    }

    pub fn word_right(&mut self) {
        let len = self.text.len();
        while self.cursor < len && !is_word(self.text[self.cursor]) {
            self.cursor += 1;
        }
        while self.cursor < len && is_word(self.text[self.cursor]) {
            self.cursor += 1;
        }
        self.completion = None;
    }

    /// Ctrl+W: deletes the word before the cursor.
    pub fn delete_word_back(&mut self) {
        let start = self.previous_word_start();
        self.text.drain(start..self.cursor);
        self.cursor = start;
        self.edited();
    }

    /// Ctrl+U: deletes everything before the cursor.
    pub fn delete_to_start(&mut self) {
        self.text.drain(..self.cursor);
        self.cursor = 0;
        self.edited();
    }

    /// Ctrl+K: deletes everything from the cursor on.
    pub fn delete_to_end(&mut self) {
        self.text.truncate(self.cursor);
        self.edited();
    }

    fn set(&mut self, text: &str) {
        self.text = text.chars().collect();
        self.cursor = self.text.len();
        self.completion = None;
    }

    /// Takes the line (for sending) and remembers it in the history.
    pub fn take(&mut self) -> String {
        let line = self.text();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        self.text.clear();
        self.cursor = 0;
        self.edited();
        line
    }

    pub fn history_up(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let index = match self.browsing {
            None => {
                self.draft = self.text();
                self.history.len() - 1
            }
            Some(index) => index.saturating_sub(1),
        };
        let entry = self.history[index].clone();
        self.set(&entry);
        self.browsing = Some(index);
    }

    pub fn history_down(&mut self) {
        let Some(index) = self.browsing else { return };
        if index + 1 < self.history.len() {
            let entry = self.history[index + 1].clone();
            self.set(&entry);
            self.browsing = Some(index + 1);
        } else {
            let draft = std::mem::take(&mut self.draft);
            self.set(&draft);
            self.browsing = None;
        }
    }

    /// Tab: completes the word before the cursor from `commands` (for a leading `/word`) or `nicks`;
    /// pressed again, it cycles through the candidates.
    pub fn complete(&mut self, commands: &[&str], nicks: &[String]) {
        let previous = self.completion.take();
        self.completion = completion::complete(&mut self.text, &mut self.cursor, previous, commands, nicks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Input {
        let mut input = Input::default();
        text.chars().for_each(|c| input.insert(c));
        input
    }

    #[test]
    fn editing_keys_move_and_delete_by_character_and_word() {
        let mut input = typed("hello wide world");
        input.word_left();
        assert_eq!(input.cursor(), 11);
        input.delete_word_back();
        assert_eq!(input.text(), "hello world");
        input.home();
        input.delete();
        input.end();
        input.backspace();
        assert_eq!(input.text(), "ello worl");
        input.home();
        input.word_right();
        input.delete_to_end();
        assert_eq!(input.text(), "ello");
        input.delete_to_start();
        assert!(input.is_empty());
    }

    #[test]
    fn the_history_comes_back_with_up_and_down() {
        let mut input = typed("first");
        input.take();
        "second".chars().for_each(|c| input.insert(c));
        input.take();
        "draft".chars().for_each(|c| input.insert(c));
        input.history_up();
        assert_eq!(input.text(), "second");
        input.history_up();
        assert_eq!(input.text(), "first");
        input.history_down();
        input.history_down();
        assert_eq!(input.text(), "draft");
    }

    #[test]
    fn tab_completes_nicknames_and_commands_and_cycles() {
        let nicks = vec!["carol".to_owned(), "carla".to_owned(), "bob".to_owned()];
        let commands = ["/join", "/leave", "/msg"];
        let mut input = typed("ca");
        input.complete(&commands, &nicks);
        assert_eq!(input.text(), "carol: ");
        input.complete(&commands, &nicks);
        assert_eq!(input.text(), "carla: ");
        let mut input = typed("hi b");
        input.complete(&commands, &nicks);
        assert_eq!(input.text(), "hi bob ");
        let mut input = typed("/j");
        input.complete(&commands, &nicks);
        assert_eq!(input.text(), "/join ");
    }

    #[test]
    fn a_paste_keeps_its_lines_together() {
        let mut input = typed("> ");
        input.paste("one\r\ntwo\rthree\n");
        assert_eq!(input.take(), "> one\ntwo\nthree\n");
    }
}
