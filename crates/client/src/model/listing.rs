//! The rooms' listing in people's words: one line per room and the command that shows the next page, the same in
//! every front end (line mode prints these lines too).

use palomar_proto::RoomListing;

/// One page of `/list`'s answer: "#garden  3 members  invite-only  Seeds" for each room, then, when `more`, the
/// command that shows the rooms after the last; or one line saying there is nothing to list.
pub fn room_listing_lines(rooms: &[RoomListing], more: bool) -> Vec<String> {
    let Some(last) = rooms.last() else { return vec!["there are no rooms to list".to_owned()] };
    let mut lines: Vec<String> = rooms.iter().map(listing_line).collect();
    if more {
        lines.push(format!("more rooms after #{0}: /list {0} shows the next ones", last.room));
    }
    lines
}

fn listing_line(listing: &RoomListing) -> String {
    let mut line = match listing.members {
        1 => format!("#{}  1 member", listing.room),
        n => format!("#{}  {n} members", listing.room),
    };
    if listing.invite_only {
        line.push_str("  invite-only");
    }
    // A topic may span lines; the listing keeps to one line per room.
    let topic = listing.topic.split_whitespace().collect::<Vec<_>>().join(" ");
    if !topic.is_empty() {
        line.push_str("  ");
        line.push_str(&topic);
    }
    line
}
