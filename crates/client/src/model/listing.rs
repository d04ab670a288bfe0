//! The rooms' listing: what `/list` does, the listing the model keeps (its rooms, page after page, for a window's
//! room browser), and the lines an answer is shown as, one per room and the command that shows the next page, the
//! same in every front end (line mode prints these lines too).

use palomar_proto::{RoomListing, RoomName};

use super::{Action, ChatModel, Status};
use crate::engine::Command;

/// The listing being browsed and the rooms it has brought so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomBrowser {
    /// Where it starts: `None` at the first room, else after this one (`/list ROOM`).
    pub from: Option<RoomName>,
    /// The rooms of every page received, in the server's order (by name).
    pub rooms: Vec<RoomListing>,
    /// There are rooms after the last one.
    pub more: bool,
    /// A page was asked for and has not come.
    pub pending: bool,
    /// A page of this listing came: no rooms then means there are none to list, not that none were asked for.
    pub answered: bool,
}

/// One page of `/list`'s answer: "#garden  3 members  invite-only  Seeds" for each room, then, when `more`, the
/// command that shows the rooms after the last; or one line saying there is nothing to list.
pub fn room_listing_lines(rooms: &[RoomListing], more: bool) -> Vec<String> {
    let Some(last) = rooms.last() else { return vec![NO_ROOMS.to_owned()] };
    let mut lines: Vec<String> = rooms.iter().map(listing_line).collect();
    if more {
        lines.push(format!("more rooms after #{0}: /list {0} shows the next ones", last.room));
    }
    lines
}

/// What an empty listing says.
pub const NO_ROOMS: &str = "there are no rooms to list";

/// "1 member", "3 members".
pub fn members_text(members: u32) -> String {
    match members {
        1 => "1 member".to_owned(),
        n => format!("{n} members"),
    }
}

/// A topic on one line: it may span lines, and a listing keeps to one line per room.
pub fn one_line(topic: &str) -> String {
    topic.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn listing_line(listing: &RoomListing) -> String {
    let mut line = format!("#{}  {}", listing.room, members_text(listing.members));
    if listing.invite_only {
        line.push_str("  invite-only");
    }
    let topic = one_line(&listing.topic);
    if !topic.is_empty() {
        line.push_str("  ");
        line.push_str(&topic);
    }
    line
}

impl ChatModel {
    /// `/list [ROOM]`, and a window's room browser: the first page (`after` `None`), the rooms after `after`, or
    /// the next page of the listing kept when `after` is its last room. Asked only while connected: the answer to a
    /// listing asked offline would come, if ever, when nobody waits for it.
    pub fn list_rooms(&mut self, after: Option<RoomName>) -> Vec<Action> {
        if self.status != Status::Connected {
            self.notice_here("not connected: list the rooms once reconnected".to_owned(), true);
            return Vec::new();
        }
        let last = self.rooms.as_ref().and_then(|browser| browser.rooms.last()).map(|listing| listing.room.clone());
        match self.rooms.as_mut() {
            Some(browser) if after.is_some() && last == after => browser.pending = true,
            _ => self.rooms = Some(RoomBrowser { from: after.clone(), pending: true, ..RoomBrowser::default() }),
        }
        self.rooms_asked += 1;
        vec![Action::Engine(Command::ListRooms { after })]
    }

    /// The page after the last room of the listing kept, when there is one to ask for.
    pub fn more_rooms(&mut self) -> Vec<Action> {
        let last = self.rooms.as_ref().filter(|browser| browser.more && !browser.pending).and_then(|b| b.rooms.last());
        let Some(last) = last.map(|listing| listing.room.clone()) else { return Vec::new() };
        self.list_rooms(Some(last))
    }

    /// A page of rooms. Answers come in the order asked, so only the answer to the last listing asked goes to the
    /// listing kept: an earlier one (the next page, asked just before the first page again) is out of date.
    pub(super) fn rooms_listed(&mut self, rooms: Vec<RoomListing>, more: bool) {
        self.rooms_asked = self.rooms_asked.saturating_sub(1);
        if self.rooms_as_notices {
            for line in room_listing_lines(&rooms, more) {
                self.notice_here(line, false);
            }
        }
        if let Some(browser) = self.rooms.as_mut().filter(|browser| browser.pending && self.rooms_asked == 0) {
            browser.rooms.extend(rooms);
            browser.more = more;
            browser.pending = false;
            browser.answered = true;
        }
    }

    /// The connection ended: the pages asked for will not come.
    pub(super) fn listing_interrupted(&mut self) {
        self.rooms_asked = 0;
        if let Some(browser) = self.rooms.as_mut() {
            browser.pending = false;
        }
    }
}
