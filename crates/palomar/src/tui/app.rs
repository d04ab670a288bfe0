//! The full-screen client's state and behaviour, without a terminal: engine events and keys in, engine
//! commands out. The conversations themselves are the shared [`ChatModel`]; this adds what only a terminal
//! has: the line editor, the panes that can be hidden, scrolling by rows (to the message `/jump` or Alt+J asks
//! for too, marked until the next key), and whether the terminal has focus; it tells the model when the entry line
//! changes (typing notices) and, every tick, whether what is shown is being read (read markers). The view only reads
//! it, so everything here is testable as plain functions.

use std::cell::Cell;
use std::collections::HashMap;

use chrono::FixedOffset;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use palomar_client::command_line::{COMMANDS, Typed};
use palomar_client::engine::{Command, Event};
use palomar_client::model::{ChatModel, Entry};
use palomar_proto::{Conversation, MessageKind, Nick};

use super::input::Input;

pub use palomar_client::model::{Action, TICK};

/// `/help` after the commands: the keys, in the commands' two columns.
const HELP_KEYS: &[&str] = &[
    "Ctrl+N / Ctrl+P   next / previous conversation",
    "Alt+1…9           the n-th conversation",
    "Alt+A             the next one with activity (Act: in the status bar when the list is hidden)",
    "PgUp / PgDn       scroll; past the top loads older messages",
    "Alt+J             to the message quoted by the reply on screen",
    "Tab               complete a nickname or a command; again for the next",
    "Up / Down         what you typed before",
    "F2 / F3           hide or show the conversations / members pane",
    "Ctrl+C            quit; messages not yet sent wait for next time",
];

pub struct App {
    pub model: ChatModel,
    pub input: Input,
    pub show_conversations: bool,
    pub show_members: bool,
    /// The time zone timestamps are shown in.
    pub offset: FixedOffset,
    /// Rows of the message pane at the last render, for paging and for knowing when the top is reached.
    pub page_rows: Cell<usize>,
    /// Rows of text the message pane showed at the last render, for bringing a message into its middle.
    pub pane_height: Cell<usize>,
    /// How far the current conversation can scroll, as of the last render.
    pub max_scroll: Cell<usize>,
    /// Columns of the message pane at the last render, for counting the rows of messages that arrive.
    pub text_width: Cell<usize>,
    /// Rows scrolled up from the bottom, per conversation.
    scroll: HashMap<Conversation, usize>,
    /// The message last jumped to, marked until the next key.
    marked: Option<(Conversation, u64)>,
    /// Whether the terminal has focus: true unless it said it lost it (not every terminal reports focus).
    pub focused: bool,
}

impl App {
    pub fn new(me: Nick, server: String, offset: FixedOffset) -> Self {
        let mut model = ChatModel::new(me, server);
        model.help_keys = HELP_KEYS;
        model.offset = offset;
        App {
            model,
            input: Input::default(),
            show_conversations: true,
            show_members: true,
            offset,
            page_rows: Cell::new(10),
            pane_height: Cell::new(11),
            max_scroll: Cell::new(0),
            text_width: Cell::new(80),
            scroll: HashMap::new(),
            marked: None,
            focused: true,
        }
    }

    /// The seq of the message of the conversation shown that was just jumped to.
    pub fn marked(&self) -> Option<u64> {
        self.marked.as_ref().filter(|(id, _)| *id == self.model.current().id).map(|(_, seq)| *seq)
    }

    /// Scrolls to the message the model was asked to bring on screen, if any: into the middle of the pane (its top
    /// at the top when it is taller), and marks it.
    fn follow_jump(&mut self) {
        let Some(seq) = self.model.take_jump() else { return };
        let (width, height) = (self.text_width.get(), self.pane_height.get());
        let Some((below, rows)) = super::view::rows_around(self, seq, width) else { return };
        let scroll = if rows >= height { below + rows - height } else { below.saturating_sub((height - rows) / 2) };
        self.set_scroll(scroll);
        self.marked = Some((self.model.current().id.clone(), seq));
    }

    /// Alt+J: to the message quoted by the reply marked (the last one jumped to), else by the lowest reply on
    /// screen; the model fetches it first when it is older than those loaded.
    fn jump_to_quoted(&mut self, marked: Option<u64>) -> Vec<Action> {
        let conv = self.model.current();
        let of = marked.and_then(|seq| conv.message(seq)).and_then(|message| message.reply_to()).or_else(|| {
            super::view::quoted_on_screen(self, self.text_width.get(), self.scroll(), self.pane_height.get())
        });
        let Some(of) = of else { return Vec::new() };
        let actions = self.model.apply(Typed::Jump(of));
        self.follow_jump();
        actions
    }

    /// Rows the conversation shown is scrolled up from its bottom.
    pub fn scroll(&self) -> usize {
        self.scroll.get(&self.model.current().id).copied().unwrap_or(0)
    }

    fn set_scroll(&mut self, rows: usize) {
        let id = self.model.current().id.clone();
        self.scroll.insert(id, rows);
    }

    pub fn on_engine(&mut self, event: Event) -> Vec<Action> {
        // A conversation scrolled up stays where it is when messages arrive below: what was on screen stays on
        // screen, and `↓ N more` counts the new rows too.
        let scrolled: Vec<(Conversation, Entry)> = self
            .scroll
            .iter()
            .filter(|(_, rows)| **rows > 0)
            .filter_map(|(id, _)| {
                let conv = self.model.convs.iter().find(|conv| &conv.id == id)?;
                Some((id.clone(), conv.entries.last()?.clone()))
            })
            .collect();
        let actions = self.model.on_engine(event);
        let width = self.text_width.get();
        for (id, last) in scrolled {
            let Some(conv) = self.model.convs.iter().find(|conv| conv.id == id) else { continue };
            let Some(at) = conv.entries.iter().rposition(|entry| same_entry(entry, &last)) else { continue };
            let added: usize =
                conv.entries[at + 1..].iter().map(|entry| super::view::rows_of(self, entry, width)).sum();
            if let Some(rows) = self.scroll.get_mut(&id) {
                *rows += added;
            }
        }
        // A `/jump` to a message that older history has just brought.
        self.follow_jump();
        actions
    }

    /// A key, a paste or a change of focus from the terminal.
    pub fn on_terminal(&mut self, event: TermEvent) -> Vec<Action> {
        match event {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            TermEvent::Paste(text) => self.on_paste(&text),
            TermEvent::FocusGained => {
                self.focused = true;
                Vec::new()
            }
            TermEvent::FocusLost => {
                self.focused = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Called every tick: the read marker of the conversation shown, to send when it is being read (the terminal
    /// has focus and the view is at its newest message).
    pub fn read_tick(&mut self) -> Option<Action> {
        let at_newest = self.scroll() == 0;
        self.model.read_tick(self.focused, at_newest)
    }

    /// Tells the model what the entry line holds when it, or the conversation it writes to, changed since
    /// `before`: the typing notices to send come back.
    fn entry_changed(&mut self, before: (String, Conversation)) -> Vec<Action> {
        let now = (self.input.text(), self.model.current().id.clone());
        if now == before {
            return Vec::new();
        }
        self.model.entry_changed(&now.0)
    }

    fn entry(&self) -> (String, Conversation) {
        (self.input.text(), self.model.current().id.clone())
    }

    /// Conversations with unread messages, as (position from 1, as Alt+1…9 count; wants attention): a mention or a
    /// direct message wants it, like irssi's highlighted `Act:` entries, unless the conversation is silenced.
    pub fn activity(&self) -> Vec<(usize, bool)> {
        self.model
            .convs
            .iter()
            .enumerate()
            .filter(|(_, conv)| conv.unread > 0)
            .map(|(index, conv)| {
                let calls = conv.mentioned || matches!(conv.id, Conversation::Direct(_));
                (index + 1, calls && !self.model.is_silenced(&conv.id))
            })
            .collect()
    }

    /// Alt+A: to a conversation that wants attention, else to one with unread messages.
    fn switch_to_activity(&mut self) {
        let activity = self.activity();
        if let Some((position, _)) = activity.iter().find(|(_, urgent)| *urgent).or(activity.first()) {
            self.switch(position - 1);
        }
    }

    pub fn on_paste(&mut self, text: &str) -> Vec<Action> {
        if self.model.prompt.is_some() || self.model.fatal.is_some() {
            return Vec::new();
        }
        let before = self.entry();
        self.input.paste(text);
        self.entry_changed(before)
    }

    fn switch(&mut self, index: usize) {
        self.model.switch(index);
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if self.model.fatal.is_some() {
            return vec![Action::Quit];
        }
        if self.model.prompt.is_some() {
            let accept = match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => true,
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => false,
                _ => return Vec::new(),
            };
            return vec![self.model.answer_certificate(accept)];
        }
        let before = self.entry();
        let mut actions = self.editing_key(key);
        actions.extend(self.entry_changed(before));
        actions
    }

    /// A key while the entry line is in use: editing, switching, scrolling, sending.
    fn editing_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let marked = self.marked();
        self.marked = None;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let count = self.model.convs.len();
        let current = self.model.current;
        match key.code {
            KeyCode::Char('c') if ctrl => return vec![Action::Quit],
            KeyCode::Char('d') if ctrl && self.input.is_empty() => return vec![Action::Quit],
            KeyCode::Char('n') if ctrl => self.switch((current + 1) % count),
            KeyCode::Char('p') if ctrl => self.switch((current + count - 1) % count),
            KeyCode::Char(digit @ '1'..='9') if alt => self.switch(digit as usize - '1' as usize),
            KeyCode::Char('a') if alt => self.switch_to_activity(),
            KeyCode::Char('j') if alt => return self.jump_to_quoted(marked),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('w') if ctrl => self.input.delete_word_back(),
            KeyCode::Char('u') if ctrl => self.input.delete_to_start(),
            KeyCode::Char('k') if ctrl => self.input.delete_to_end(),
            KeyCode::Char('b') if alt => self.input.word_left(),
            KeyCode::Char('f') if alt => self.input.word_right(),
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Left if ctrl => self.input.word_left(),
            KeyCode::Right if ctrl => self.input.word_right(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Up => self.input.history_up(),
            KeyCode::Down => self.input.history_down(),
            KeyCode::Tab => {
                let me = &self.model.me;
                let nicks: Vec<String> =
                    self.model.known_nicks().iter().filter(|n| *n != me).map(|n| n.to_string()).collect();
                self.input.complete(COMMANDS, &nicks);
            }
            KeyCode::PageUp => return self.scroll_up(),
            KeyCode::PageDown => {
                let page = self.page_rows.get().max(1);
                self.set_scroll(self.scroll().saturating_sub(page));
            }
            KeyCode::F(2) => self.show_conversations = !self.show_conversations,
            KeyCode::F(3) => self.show_members = !self.show_members,
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        Vec::new()
    }

    fn scroll_up(&mut self) -> Vec<Action> {
        let page = self.page_rows.get().max(1);
        let max = self.max_scroll.get();
        let scroll = self.scroll();
        self.set_scroll((scroll + page).min(max));
        if scroll + page >= max {
            return self.model.fetch_older().into_iter().collect();
        }
        Vec::new()
    }

    fn submit(&mut self) -> Vec<Action> {
        let line = self.input.take();
        let actions = self.model.submit(&line);
        let new_line = |a: &Action| {
            matches!(
                a,
                Action::Engine(Command::Send {
                    kind: MessageKind::Text | MessageKind::Action | MessageKind::Reply { .. },
                    ..
                })
            )
        };
        if actions.iter().any(new_line) {
            // What you send is shown at the bottom: back to it. An edit, a deletion or a reaction changes a message
            // where it is, which may be what is being read.
            self.set_scroll(0);
        }
        self.follow_jump();
        actions
    }
}

/// Whether two entries are the same one (a message keeps its id when the server stores it).
fn same_entry(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (Entry::Message(a), Entry::Message(b)) => a.id == b.id,
        (Entry::Notice { ts: a_ts, text: a_text, .. }, Entry::Notice { ts: b_ts, text: b_text, .. }) => {
            a_ts == b_ts && a_text == b_text
        }
        _ => false,
    }
}
