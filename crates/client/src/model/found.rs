//! Search in people's words: what `/search` and `/goto` do, the search the model keeps (its hits, page after
//! page, for `/goto` and for a window's results panel), and the lines an answer is shown as, the same in every
//! front end (line mode prints them too).

use chrono::{DateTime, Datelike, FixedOffset};
use palomar_proto::{Conversation, ErrorCode, Message, MessageKind};

use super::conv::first_line;
use super::{Action, ChatModel, Status};
use crate::command_line::{SearchScope, SearchTyped};
use crate::engine::Command;

/// Most characters of a hit's text shown on its line.
pub const HIT_CHARS: usize = 120;

/// What ends an answer that has older hits to find.
pub const MORE_FOUND: &str = "/search shows older ones";

/// The last search and what it found so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The words as sent (and echoed by the server).
    pub query: String,
    /// Where it looks; `None`: every conversation.
    pub conversation: Option<Conversation>,
    /// The hits of every page received, newest first: `/goto N` opens `hits[N - 1]`.
    pub hits: Vec<Message>,
    /// Where the next page starts; `None` when there is nothing older to find.
    pub next: Option<String>,
    /// A page was asked for and has not come.
    pub pending: bool,
    /// Why the server refused it.
    pub refused: Option<String>,
}

/// The first line of an answer: "3 messages found for “lunch” in #lobby"; `later` for a page after the first.
pub fn found_header(query: &str, conversation: Option<&Conversation>, count: usize, later: bool) -> String {
    let place = match conversation {
        None => String::new(),
        Some(room @ Conversation::Room(_)) => format!(" in {room}"),
        Some(direct @ Conversation::Direct(_)) => format!(" with {direct}"),
    };
    match (count, later) {
        (0, false) => format!("nothing found for “{query}”{place}"),
        (0, true) => format!("nothing more found for “{query}”{place}"),
        (1, false) => format!("1 message found for “{query}”{place}"),
        (count, false) => format!("{count} messages found for “{query}”{place}"),
        (count, true) => format!("{count} more found for “{query}”{place}"),
    }
}

/// One hit: "[3] #lobby  ana  14:05  lunch at noon?" (an action's text as "* ana waves"), its text's first line
/// cut at [`HIT_CHARS`]; `time` as the front end writes it ([`hit_time`]).
pub fn hit_line(number: usize, hit: &Message, time: &str) -> String {
    let (mut text, cut) = first_line(&hit.text, HIT_CHARS);
    if cut {
        text.push('…');
    }
    if hit.kind == MessageKind::Action {
        text = format!("* {} {text}", hit.from);
    }
    format!("[{number}] {}  {}  {time}  {text}", hit.conversation, hit.from)
}

/// When a hit was said, seen from `now_ms` at `offset`: "14:05" today, "3 Dec 14:05" this year, "2025-12-03"
/// before.
pub fn hit_time(ts: u64, now_ms: u64, offset: FixedOffset) -> String {
    let at = |ms: u64| DateTime::from_timestamp_millis(i64::try_from(ms).ok()?).map(|t| t.with_timezone(&offset));
    let (Some(then), Some(now)) = (at(ts), at(now_ms)) else { return String::new() };
    if then.date_naive() == now.date_naive() {
        then.format("%H:%M").to_string()
    } else if then.year() == now.year() {
        then.format("%-d %b %H:%M").to_string()
    } else {
        then.format("%Y-%m-%d").to_string()
    }
}

impl ChatModel {
    /// `/search WORDS` (a new search) or `/search` alone (the next page of the last one).
    pub(super) fn search(&mut self, typed: Option<SearchTyped>) -> Vec<Action> {
        if self.status != Status::Connected {
            self.notice_here("not connected: search once reconnected".to_owned(), true);
            return Vec::new();
        }
        let Some(typed) = typed else { return self.search_further() };
        let conversation = match typed.scope {
            SearchScope::Everywhere => None,
            SearchScope::Here => Some(self.current().id.clone()),
            SearchScope::In(conversation) => Some(conversation),
        };
        self.search = Some(Search {
            query: typed.query.clone(),
            conversation: conversation.clone(),
            hits: Vec::new(),
            next: None,
            pending: true,
            refused: None,
        });
        vec![Action::Engine(Command::Search { query: typed.query, conversation, before: None })]
    }

    fn search_further(&mut self) -> Vec<Action> {
        let said = match &mut self.search {
            None => "no search to go on with: /search WORDS finds messages".to_owned(),
            Some(search) if search.pending => "the search's answer is on its way".to_owned(),
            Some(Search { next: None, query, .. }) => format!("nothing more to find for “{query}”"),
            Some(search) => {
                search.pending = true;
                return vec![Action::Engine(Command::Search {
                    query: search.query.clone(),
                    conversation: search.conversation.clone(),
                    before: search.next.clone(),
                })];
            }
        };
        self.notice_here(said, false);
        Vec::new()
    }

    /// The answer to a search: dropped unless it answers the search asked last. A page the server ended before
    /// it found anything (it looks at a bounded number of matches) is not shown: the next one is asked at once.
    pub(super) fn found(
        &mut self,
        query: String,
        conversation: Option<Conversation>,
        hits: Vec<Message>,
        next: Option<String>,
    ) -> Vec<Action> {
        let Some(search) = self.search.as_mut() else { return Vec::new() };
        if !search.pending || search.query != query || search.conversation != conversation {
            return Vec::new();
        }
        if hits.is_empty()
            && let Some(before) = next
        {
            return vec![Action::Engine(Command::Search { query, conversation, before: Some(before) })];
        }
        let first = search.hits.len();
        search.pending = false;
        search.next = next;
        search.hits.extend(hits);
        if !self.search_as_notices {
            return Vec::new();
        }
        let search = search.clone();
        let now = (self.clock)();
        let found = &search.hits[first..];
        self.notice_here(found_header(&query, conversation.as_ref(), found.len(), first > 0), false);
        for (number, hit) in (first + 1..).zip(found) {
            self.notice_here(hit_line(number, hit, &hit_time(hit.ts, now, self.offset)), false);
        }
        if search.next.is_some() {
            self.notice_here(MORE_FOUND.to_owned(), false);
        }
        Vec::new()
    }

    /// An error the server sent with no message id while a search waited: a refusal of the search (its words,
    /// its conversation, its position), kept for a window to show beside the search; other errors are not. Only a
    /// search limited to one conversation can be refused as not a member's: the same refusal of a history page
    /// (of a direct conversation opened but not started yet) is not the search's.
    pub(super) fn search_refused(&mut self, code: Option<ErrorCode>, message: &str) {
        if let Some(search) = self.search.as_mut().filter(|search| search.pending)
            && match code {
                Some(ErrorCode::InvalidText | ErrorCode::Protocol) => true,
                Some(ErrorCode::NotMember) => search.conversation.is_some(),
                _ => false,
            }
        {
            search.pending = false;
            search.refused = Some(message.to_owned());
        }
    }

    /// The connection ended with a page on its way: it will not come.
    pub(super) fn search_interrupted(&mut self) {
        if let Some(search) = self.search.as_mut().filter(|search| search.pending) {
            search.pending = false;
            if search.hits.is_empty() {
                self.search = None;
            }
            self.notice_here("the search was cut off by the disconnection: search again once reconnected".into(), true);
        }
    }

    /// `/goto N`: opens hit `N` of the last search in its conversation, at that message.
    pub(super) fn goto(&mut self, number: usize) -> Vec<Action> {
        let hit = self.search.as_ref().and_then(|search| search.hits.get(number - 1));
        let Some(hit) = hit.map(|hit| (hit.conversation.clone(), hit.seq)) else {
            self.notice_here(format!("no search result [{number}]"), true);
            return Vec::new();
        };
        self.open_at(&hit.0, hit.1)
    }

    /// Shows `conversation` and brings message `seq` on screen (fetching older pages until it comes): where a
    /// search result, clicked or named by `/goto`, leads.
    pub fn open_at(&mut self, conversation: &Conversation, seq: u64) -> Vec<Action> {
        let index = match self.convs.iter().position(|conv| &conv.id == conversation) {
            Some(index) => index,
            // A direct conversation closed here is still the server's: opening it again fetches its messages.
            None if matches!(conversation, Conversation::Direct(_)) => self.conv_index(conversation),
            None => {
                self.notice_here(format!("you are no longer in {conversation}"), true);
                return Vec::new();
            }
        };
        self.switch(index);
        self.jump_wanted = None;
        self.jump(index, seq)
    }
}
