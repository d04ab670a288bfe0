//! Drawing the full-screen client: conversations, messages (a reply with its quote, reactions counted under their
//! message, who has seen it, the "new messages" divider, the one jumped to marked), who is typing, members (away
//! ones with their message), input line and status bar (our own away message in it), plus the certificate question
//! and the warning screen. Reads the [`App`]; changes nothing but its render hints. It also says where a message is
//! in rows, for scrolling to it.

use chrono::{DateTime, Datelike};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::app::App;
use palomar_client::model::{
    Entry, MessageEntry, NEW_MESSAGES, Quote, Status, member_text, nick_colour, standing_text,
};
use palomar_client::rich_text::{Piece, pieces};
use palomar_proto::{Conversation, Nick};

/// Below these widths the side panes make room for the messages.
const MEMBERS_MIN_WIDTH: u16 = 70;
const CONVERSATIONS_MIN_WIDTH: u16 = 45;
const SIDE_WIDTH: u16 = 18;

const NICK_COLORS: [Color; 10] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightBlue,
    Color::LightMagenta,
];

/// The same colour for a nickname everywhere and every time, and in the desktop client too.
pub fn nick_color(nick: &Nick) -> Color {
    NICK_COLORS[nick_colour(nick, NICK_COLORS.len())]
}

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if let Some(message) = &app.model.fatal {
        render_fatal(message, frame, area);
        return;
    }
    let [main, input, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let show_conversations = app.show_conversations && area.width >= CONVERSATIONS_MIN_WIDTH;
    let show_members = app.show_members && area.width >= MEMBERS_MIN_WIDTH;
    let mut constraints = Vec::new();
    if show_conversations {
        constraints.push(Constraint::Length(SIDE_WIDTH));
    }
    constraints.push(Constraint::Min(20));
    if show_members {
        constraints.push(Constraint::Length(SIDE_WIDTH));
    }
    let panes = Layout::horizontal(constraints).split(main);
    let mut next = 0;
    if show_conversations {
        render_conversations(app, frame, panes[next]);
        next += 1;
    }
    render_messages(app, frame, panes[next]);
    if show_members {
        render_members(app, frame, panes[next + 1]);
    }
    render_input(app, frame, input);
    render_status(app, frame, status, !show_conversations);
    if app.model.prompt.is_some() {
        render_prompt(app, frame, area);
    }
}

fn title(id: &Conversation) -> String {
    id.to_string()
}

fn render_conversations(app: &App, frame: &mut Frame, area: Rect) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .model
        .convs
        .iter()
        .enumerate()
        .map(|(index, conv)| {
            let name = title(&conv.id);
            let badge = match (conv.unread, conv.mentioned) {
                (0, _) => String::new(),
                (n, true) => format!("@{n}"),
                (n, false) => n.to_string(),
            };
            let room = inner_width.saturating_sub(badge.len() + 1);
            let name: String = name.chars().take(room).collect();
            let gap = inner_width.saturating_sub(name.chars().count() + badge.len());
            let silenced = app.model.is_silenced(&conv.id);
            let mut style = Style::default();
            if index == app.model.current {
                style = style.add_modifier(Modifier::REVERSED);
            } else if conv.unread > 0 && !silenced {
                style = style.add_modifier(Modifier::BOLD);
            }
            // A silenced conversation's count is there to see, not to call: dimmed, never yellow.
            let badge_style = match (silenced, conv.mentioned) {
                (true, _) => style.add_modifier(Modifier::DIM),
                (false, true) => style.fg(Color::Yellow),
                (false, false) => style,
            };
            Line::from(vec![
                Span::styled(name, style),
                Span::styled(" ".repeat(gap), style),
                Span::styled(badge, badge_style),
            ])
        })
        .collect();
    let block = Block::default().borders(Borders::ALL).title(" conversations ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_members(app: &App, frame: &mut Frame, area: Rect) {
    let conv = app.model.current();
    let mut lines = Vec::new();
    match &conv.id {
        Conversation::Room(_) if !app.model.members_known() && app.model.connected_once => {
            // Presence is not replayed: who came or went while we were away is unknown until we are back.
            let dim = Style::default().add_modifier(Modifier::DIM);
            lines.push(Line::from(Span::styled("members unknown while disconnected", dim.fg(Color::Yellow))));
            for nick in conv.online.union(&conv.offline) {
                lines.push(Line::from(Span::styled(format!("? {nick}"), dim)));
            }
        }
        Conversation::Room(_) => {
            let room = (area.width as usize).saturating_sub(4);
            for nick in &conv.online {
                // Away: dimmed, with the message as far as the pane lets it show (`/whois` and `/users` say it all).
                let (text, style) = match app.model.away_of(nick) {
                    Some(away) => (member_text(nick, Some(away)), Style::default().add_modifier(Modifier::DIM)),
                    None => (nick.to_string(), Style::default().fg(nick_color(nick))),
                };
                lines.push(Line::from(vec![
                    Span::styled("● ", Style::default().fg(Color::Green)),
                    Span::styled(one_row(&text, room), style),
                ]));
            }
            for nick in &conv.offline {
                lines.push(Line::from(Span::styled(format!("○ {nick}"), Style::default().add_modifier(Modifier::DIM))));
            }
        }
        Conversation::Direct(peer) => {
            for nick in [&app.model.me, peer] {
                lines.push(Line::from(Span::styled(nick.to_string(), Style::default().fg(nick_color(nick)))));
            }
        }
    }
    let block = Block::default().borders(Borders::ALL).title(" members ");
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

/// Splits `text` into rows: the first `first` columns wide, the rest `rest` wide, breaking at spaces when it
/// can and inside a word when it must, counting wide characters (CJK, emoji) as two columns.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let cells: Vec<(char, ())> = text.chars().map(|c| (c, ())).collect();
    wrap_cells(&cells, first, rest).into_iter().map(|row| row.into_iter().map(|(c, ())| c).collect()).collect()
}

/// [`wrap`] for characters that carry a style along, so a link or inline code broken over two rows keeps its
/// look on both.
fn wrap_cells<S: Copy>(cells: &[(char, S)], first: usize, rest: usize) -> Vec<Vec<(char, S)>> {
    let mut rows: Vec<Vec<(char, S)>> = Vec::new();
    for paragraph in cells.split(|(c, _)| *c == '\n') {
        let mut row = Vec::new();
        let mut width = 0;
        let mut word_start: usize = 0;
        for word in paragraph.split(|(c, _)| *c == ' ') {
            // The space before the word, whose style (inside inline code, say) it keeps when it joins the row.
            let space = word_start.checked_sub(1).and_then(|at| paragraph.get(at)).copied();
            word_start += word.len() + 1;
            let limit = if rows.is_empty() { first } else { rest }.max(1);
            let word_width = columns(word);
            let needed = if width == 0 { word_width } else { width + 1 + word_width };
            if needed <= limit {
                if width > 0 {
                    row.extend(space);
                    width += 1;
                }
                row.extend_from_slice(word);
                width += word_width;
                continue;
            }
            if width > 0 {
                rows.push(std::mem::take(&mut row));
                width = 0;
            }
            for &cell in word {
                let limit = if rows.is_empty() { first } else { rest }.max(1);
                push_cell(&mut rows, &mut row, &mut width, cell, limit);
            }
        }
        rows.push(row);
    }
    rows
}

fn local(app: &App, ts: u64) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::from_timestamp_millis(i64::try_from(ts).ok()?).map(|t| t.with_timezone(&app.offset))
}

fn message_rows(app: &App, message: &MessageEntry, width: usize) -> Vec<Line<'static>> {
    let time = local(app, message.ts).map(|t| t.format("%H:%M").to_string()).unwrap_or_default();
    let mark = match (message.own, message.seq) {
        (true, None) => "… ",
        (true, Some(_)) => "✓ ",
        (false, _) => "  ",
    };
    let nick = if message.is_action() { format!("* {}", message.from) } else { format!("<{}>", message.from) };
    let prefix_width = time.len() + 1 + mark.chars().count() + nick.chars().count() + 1;
    // Typed offline and stored much later: the time shown is the server's, and this says when it was written.
    let typed = message
        .typed_long_before()
        .and_then(|typed| local(app, typed))
        .map(|t| format!(" (typed {})", t.format("%H:%M")))
        .unwrap_or_default();
    let edited = if message.is_edited() { " (edited)" } else { "" };
    let mut text_style = Style::default();
    if message.mention {
        text_style = text_style.fg(Color::Yellow).add_modifier(Modifier::BOLD);
    }
    if message.own && message.seq.is_none() {
        text_style = text_style.add_modifier(Modifier::DIM);
    }
    let mut chunks = match message.deleted_text() {
        // A placeholder is the client's words, not the author's: nothing in it is a link or code.
        Some(deleted) => {
            vec![Chunk::Prose(cells(&deleted, Style::default().add_modifier(Modifier::DIM | Modifier::ITALIC)))]
        }
        None => chunks(&message.text, text_style),
    };
    // Marks said by the client, not by the author, are quieter than the text.
    let marks = format!("{edited}{typed}");
    let quiet = Style::default().add_modifier(Modifier::DIM);
    match chunks.last_mut() {
        Some(Chunk::Prose(last)) => last.extend(cells(&marks, quiet)),
        _ if marks.is_empty() => {}
        // After a code block, on a row of their own: they are not code.
        _ => chunks.push(Chunk::Prose(cells(marks.trim_start(), quiet))),
    }
    let room = width.saturating_sub(prefix_width);
    // A reply's quote comes first, beside the nickname: indented like the text, it would pass for the end of the
    // message above.
    let quote = message.reply_to().filter(|_| message.deleted_text().is_none()).map(|of| {
        let quote = match app.model.current().quote(of) {
            Quote::Message { from, line } => format!("↪ {from}: {line}"),
            Quote::Deleted => "↪ a deleted message".to_owned(),
            Quote::Ignored => "↪ a message from someone you ignore".to_owned(),
            Quote::NotHere => format!("↪ #{of}"),
        };
        cells(&one_row(&quote, room), quiet)
    });
    let rows: Vec<Vec<Cell>> = quote
        .into_iter()
        .chain(chunks.iter().flat_map(|chunk| match chunk {
            Chunk::Prose(cells) => wrap_cells(cells, room, room),
            Chunk::Code { language, code } => code_rows(language, code, text_style, room),
        }))
        .chain(reaction_rows(app, message, room))
        .collect();
    // Who has read up to this message, on a quiet row of its own under it (the last lines of the conversation only).
    let seen_by = message.seq.and_then(|seq| app.model.seen_by(app.model.current(), seq));
    let rows = rows.into_iter().chain(seen_by.map(|seen| cells(&one_row(&seen, room), quiet))).collect::<Vec<_>>();
    let mark_style =
        if message.seq.is_none() { Style::default().fg(Color::DarkGray) } else { Style::default().fg(Color::Green) };
    // The message `/jump` brought on screen: its left margin shows it, until the next key.
    let marked = message.seq.is_some_and(|seq| app.marked() == Some(seq));
    let margin = if marked { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut spans = if i == 0 {
                vec![
                    Span::styled(format!("{time} "), Style::default().add_modifier(Modifier::DIM).patch(margin)),
                    Span::styled(mark.to_owned(), mark_style.patch(margin)),
                    Span::styled(
                        nick.clone(),
                        Style::default().fg(nick_color(&message.from)).add_modifier(Modifier::BOLD).patch(margin),
                    ),
                    Span::styled(" ", margin),
                ]
            } else {
                vec![Span::styled(" ".repeat(prefix_width), margin)]
            };
            spans.extend(spans_of(row));
            Line::from(spans)
        })
        .collect()
}

/// `text` on one row of `room` columns, cut with "…" when longer. Widths are counted as ratatui counts them, a
/// string at a time (a heart with its emoji selector is two columns, as each of its characters alone is not).
fn one_row(text: &str, room: usize) -> String {
    if text.width() <= room {
        return text.to_owned();
    }
    let mut cut = String::new();
    for c in text.chars() {
        cut.push(c);
        if cut.width() + 1 > room {
            cut.pop();
            break;
        }
    }
    cut.push('…');
    cut
}

/// The reactions to a message, under its text: "👍 2  🎉 1", each emoji with how many reacted so, ours marked
/// (reversed), as many on a row as fit in `room` columns.
fn reaction_rows(app: &App, message: &MessageEntry, room: usize) -> Vec<Vec<Cell>> {
    const GAP: usize = 2;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    let mut width = 0;
    for reaction in &message.reactions {
        let mine = reaction.by.contains(&app.model.me);
        let style =
            if mine { Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD) } else { Style::default() };
        let item = format!("{} {}", reaction.emoji, reaction.by.len());
        let item_width = item.width();
        if width > 0 && width + GAP + item_width > room {
            rows.push(std::mem::take(&mut row));
            width = 0;
        }
        if width > 0 {
            row.extend(cells(&" ".repeat(GAP), Style::default()));
            width += GAP;
        }
        row.extend(cells(&item, style));
        width += item_width;
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

/// A character of a message as drawn, with its look.
type Cell = (char, Style);

/// A part of a message laid out on its own: running text (links and inline code among it) wraps at spaces, a
/// code block keeps its lines as typed.
enum Chunk<'a> {
    Prose(Vec<Cell>),
    Code { language: &'a str, code: &'a str },
}

fn cells(text: &str, style: Style) -> Vec<Cell> {
    text.chars().map(|c| (c, style)).collect()
}

/// Code on a shaded background, legible on light and dark terminals alike; it keeps the text's other marks (dim
/// while unsent, bold when it mentions us).
fn code_style(text_style: Style) -> Style {
    text_style.fg(Color::White).bg(Color::DarkGray)
}

/// `text` by the rules every front end follows (`palomar_client::rich_text`).
fn chunks(text: &str, text_style: Style) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut prose: Vec<Cell> = Vec::new();
    for piece in pieces(text) {
        match piece {
            Piece::Text(part) => prose.extend(cells(part, text_style)),
            // No OSC 8 hyperlink around it: ratatui would count the escape's characters as columns and drop its
            // control characters. Terminals that find URLs in what they show still find an unwrapped one.
            Piece::Link(link) => prose.extend(cells(link, text_style.add_modifier(Modifier::UNDERLINED))),
            Piece::Code(code) => prose.extend(cells(code, code_style(text_style))),
            Piece::CodeBlock { language, code } => {
                if !prose.is_empty() {
                    chunks.push(Chunk::Prose(std::mem::take(&mut prose)));
                }
                chunks.push(Chunk::Code { language, code });
            }
        }
    }
    if !prose.is_empty() || chunks.is_empty() {
        chunks.push(Chunk::Prose(prose));
    }
    chunks
}

/// The emoji presentation selector: after a character one column wide (❤), it makes both one emoji two wide (❤️).
const EMOJI_SELECTOR: char = '\u{fe0f}';

/// Columns `cells` take, counted as ratatui counts them: a string at a time, so that a heart with its emoji
/// selector is two.
fn columns<S>(cells: &[(char, S)]) -> usize {
    cells.iter().map(|(c, _)| *c).collect::<String>().width()
}

/// Adds `cell` to the row being filled (`width` columns so far), starting the next row first when it would go past
/// `limit`: a word too long for a row, or a line of code, is cut between any two characters, but never between a
/// character and the emoji selector that widens it.
fn push_cell<S>(
    rows: &mut Vec<Vec<(char, S)>>,
    row: &mut Vec<(char, S)>,
    width: &mut usize,
    cell: (char, S),
    limit: usize,
) {
    let widens = cell.0 == EMOJI_SELECTOR && row.last().is_some_and(|(base, _)| base.width() == Some(1));
    let w = if widens { 1 } else { cell.0.width().unwrap_or(0) };
    if *width + w > limit && *width > 0 {
        let base = if widens { row.pop() } else { None };
        if !row.is_empty() {
            rows.push(std::mem::take(row));
        }
        *width = 0;
        if let Some(base) = base {
            row.push(base);
            *width = 1;
        }
    }
    row.push(cell);
    *width += w;
}

/// Columns between tab stops in code, which is the one place a tab's width matters.
const TAB_WIDTH: usize = 4;

/// A code block's rows, each behind a bar, `room` columns wide at most: a line too long goes on in the next row
/// (cut anywhere, as its spaces are part of it), a tab becomes the spaces to the next stop.
fn code_rows(language: &str, code: &str, text_style: Style, room: usize) -> Vec<Vec<Cell>> {
    let style = code_style(text_style);
    let bar = cells("│ ", style);
    let limit = room.saturating_sub(bar.len()).max(1);
    let mut rows = Vec::new();
    if !language.is_empty() {
        let label: Vec<Cell> = cells(language, style.add_modifier(Modifier::DIM));
        rows.extend(wrap_cells(&label, limit, limit));
    }
    for line in code.split('\n') {
        let mut expanded = Vec::new();
        let mut column = 0;
        for c in line.chars() {
            if c == '\t' {
                let spaces = TAB_WIDTH - column % TAB_WIDTH;
                expanded.extend(std::iter::repeat_n((' ', style), spaces));
                column += spaces;
            } else {
                expanded.push((c, style));
                column += c.width().unwrap_or(0);
            }
        }
        let mut row = Vec::new();
        let mut width = 0;
        for cell in expanded {
            push_cell(&mut rows, &mut row, &mut width, cell, limit);
        }
        rows.push(row);
    }
    rows.into_iter().map(|row| bar.iter().copied().chain(row).collect()).collect()
}

/// A row's characters as spans, one for each run of a look.
fn spans_of(row: Vec<Cell>) -> Vec<Span<'static>> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    for (c, style) in row {
        match spans.last_mut() {
            Some(span) if span.style == style => span.content.to_mut().push(c),
            _ => spans.push(Span::styled(c.to_string(), style)),
        }
    }
    spans
}

/// How many rows `entry` takes in a message pane `width` columns wide.
pub fn rows_of(app: &App, entry: &Entry, width: usize) -> usize {
    entry_rows(app, entry, width).len()
}

fn entry_rows(app: &App, entry: &Entry, width: usize) -> Vec<Line<'static>> {
    match entry {
        Entry::Message(message) if !message.is_drawn() => Vec::new(),
        Entry::Message(message) => message_rows(app, message, width),
        Entry::Notice { ts, text, alert } => {
            let time = local(app, *ts).map(|t| t.format("%H:%M").to_string()).unwrap_or_default();
            let style =
                if *alert { Style::default().fg(Color::Red) } else { Style::default().add_modifier(Modifier::DIM) };
            let lead = format!("{time}    * ");
            let lead_width = lead.chars().count();
            let room = width.saturating_sub(lead_width);
            let hang = hanging_indent(text).filter(|hang| room.saturating_sub(*hang) >= 20).unwrap_or(0);
            wrap(text, room, room - hang)
                .into_iter()
                .enumerate()
                .map(|(i, row)| {
                    let lead = if i == 0 { lead.clone() } else { " ".repeat(lead_width + hang) };
                    Line::from(vec![Span::styled(lead, style), Span::styled(row, style)])
                })
                .collect()
        }
    }
}

/// Where a notice laid out in two columns (`/help`'s `USAGE  WHAT IT DOES`) has its second one: its
/// wrapped rows line up there, so the table still reads as one entry a line.
fn hanging_indent(text: &str) -> Option<usize> {
    let gap = text.find("  ")?;
    let column = gap + text[gap..].chars().take_while(|c| *c == ' ').count();
    Some(text[..column].chars().count())
}

fn day_separator(app: &App, ts: u64, width: usize) -> Option<Line<'static>> {
    let date = local(app, ts)?.date_naive();
    let label = format!(" {} {} {} {} ", date.weekday(), date.day(), month_name(date.month()), date.year());
    let side = width.saturating_sub(label.chars().count()) / 2;
    let line = format!("{}{label}{}", "─".repeat(side), "─".repeat(side));
    Some(Line::from(Span::styled(line, Style::default().add_modifier(Modifier::DIM))))
}

/// The line above the first message not read yet when the conversation was opened.
fn new_messages_divider(width: usize) -> Line<'static> {
    let label = format!(" {NEW_MESSAGES} ");
    let side = width.saturating_sub(label.chars().count()) / 2;
    let line = format!("{}{label}{}", "─".repeat(side), "─".repeat(side));
    Line::from(Span::styled(line, Style::default().fg(Color::Red)))
}

/// The current conversation's entries from the newest up, each with its rows at this width: a day separator above
/// the first entry of a day is among them.
fn entries_from_bottom(app: &App, width: usize) -> impl Iterator<Item = (&Entry, Vec<Line<'static>>)> {
    let day = move |entry: &Entry| local(app, entry.ts()).map(|t| t.date_naive());
    // Edits, deletions, reactions and what ignored people send take no row, and do not start a day either.
    let shown = |entry: &&Entry| !matches!(entry, Entry::Message(message) if !message.is_drawn());
    let mut entries = app.model.current().entries.iter().rev().filter(shown).peekable();
    std::iter::from_fn(move || {
        let entry = entries.next()?;
        let mut rows = Vec::new();
        if entries.peek().is_none_or(|previous| day(previous) != day(entry)) {
            rows.extend(day_separator(app, entry.ts(), width));
        }
        if let Entry::Message(message) = entry
            && message.seq.is_some()
            && message.seq == app.model.current().new_messages
        {
            rows.push(new_messages_divider(width));
        }
        rows.extend(entry_rows(app, entry, width));
        Some((entry, rows))
    })
}

/// The last `wanted` rows of the current conversation at this width, oldest first, with day separators,
/// built from the end so a long conversation costs only what is shown. The flag says whether they reach
/// the conversation's first entry.
fn last_rows(app: &App, width: usize, wanted: usize) -> (Vec<Line<'static>>, bool) {
    let mut entries = entries_from_bottom(app, width).peekable();
    let mut chunks: Vec<Vec<Line<'static>>> = Vec::new();
    let mut count = 0;
    while let Some((_, chunk)) = entries.next() {
        count += chunk.len();
        chunks.push(chunk);
        if count >= wanted {
            let reached_first = entries.peek().is_none();
            return (chunks.into_iter().rev().flatten().collect(), reached_first);
        }
    }
    (chunks.into_iter().rev().flatten().collect(), true)
}

/// Where message `seq` of the current conversation is at this width: the rows below it, and its own (its day's
/// separator included); `None` when it is not shown.
pub fn rows_around(app: &App, seq: u64, width: usize) -> Option<(usize, usize)> {
    let mut below = 0;
    for (entry, rows) in entries_from_bottom(app, width) {
        if matches!(entry, Entry::Message(message) if message.seq == Some(seq)) {
            return Some((below, rows.len()));
        }
        below += rows.len();
    }
    None
}

/// The message quoted by the lowest reply on screen (`scroll` rows up from the bottom, `height` rows shown) at
/// this width, as Alt+J follows it.
pub fn quoted_on_screen(app: &App, width: usize, scroll: usize, height: usize) -> Option<u64> {
    let mut below = 0;
    for (entry, rows) in entries_from_bottom(app, width) {
        if below >= scroll + height {
            return None;
        }
        below += rows.len();
        if below > scroll
            && let Entry::Message(message) = entry
            && let Some(of) = message.reply_to()
        {
            return Some(of);
        }
    }
    None
}

fn month_name(month: u32) -> &'static str {
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [(month as usize).saturating_sub(1).min(11)]
}

fn render_messages(app: &App, frame: &mut Frame, area: Rect) {
    let conv = app.model.current();
    // The border clips a topic too long for it; its line breaks would be dropped, joining the words they parted.
    let heading = match conv.topic() {
        Some(topic) => format!(" {} · {} ", title(&conv.id), topic.replace('\n', " ")),
        None => format!(" {} ", title(&conv.id)),
    };
    let block = Block::default().borders(Borders::ALL).title(heading);
    let inner = block.inner(area);
    let height = inner.height as usize;
    let (rows, complete) = last_rows(app, inner.width as usize, height + app.scroll() + 1);
    // Until the first entry is among the rows there is more above: allow one more page.
    let max_scroll = if complete { rows.len().saturating_sub(height) } else { rows.len() };
    app.page_rows.set(height.saturating_sub(1).max(1));
    app.pane_height.set(height);
    app.text_width.set(inner.width as usize);
    app.max_scroll.set(max_scroll);
    let scroll = app.scroll().min(rows.len().saturating_sub(height));
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    let visible: Vec<Line> = rows[start..end].to_vec();
    frame.render_widget(block, area);
    // Like every chat, the newest message sits at the bottom, right above the input line.
    let top_padding = height.saturating_sub(visible.len()) as u16;
    let text_area = Rect { y: inner.y + top_padding, height: inner.height - top_padding, ..inner };
    frame.render_widget(Paragraph::new(visible), text_area);
    let hint_width = if scroll > 0 { format!(" ↓ {scroll} more ").chars().count() + 2 } else { 0 };
    // Who is typing: under the messages, right above the entry line, on the pane's border.
    if let Some(typing) = app.model.typing_status() {
        let room = (area.width as usize).saturating_sub(hint_width + 2);
        let words = one_row(&format!(" {typing} "), room);
        let at = Rect { x: area.x + 1, y: area.bottom().saturating_sub(1), width: words.width() as u16, height: 1 };
        let style = Style::default().add_modifier(Modifier::ITALIC | Modifier::DIM);
        frame.render_widget(Paragraph::new(words).style(style), at.intersection(area));
    }
    if scroll > 0 {
        let hint = format!(" ↓ {scroll} more ");
        let width = hint.chars().count() as u16;
        let at = Rect {
            x: area.right().saturating_sub(width + 1),
            y: area.bottom().saturating_sub(1),
            width: width.min(area.width),
            height: 1,
        };
        frame.render_widget(Paragraph::new(hint).style(Style::default().add_modifier(Modifier::REVERSED)), at);
    }
}

fn render_input(app: &App, frame: &mut Frame, area: Rect) {
    let prompt = format!("{} > ", title(&app.model.current().id));
    let text = app.input.text();
    // A pasted multi-line message shows its line breaks as ⏎ until it is sent.
    let shown: String = text.chars().map(|c| if c == '\n' { '⏎' } else { c }).collect();
    let before_cursor: usize = shown.chars().take(app.input.cursor()).map(|c| c.width().unwrap_or(0)).sum();
    let prompt_width = prompt.chars().count();
    let room = (area.width as usize).saturating_sub(prompt_width + 1);
    let skip_width = before_cursor.saturating_sub(room);
    let mut skipped = 0;
    let visible: String = shown
        .chars()
        .skip_while(|c| {
            let skip = skipped < skip_width;
            skipped += c.width().unwrap_or(0);
            skip
        })
        .collect();
    let line =
        Line::from(vec![Span::styled(prompt, Style::default().add_modifier(Modifier::BOLD)), Span::raw(visible)]);
    frame.render_widget(Paragraph::new(line), area);
    if app.model.prompt.is_none() {
        let x = area.x + (prompt_width + before_cursor - skip_width.min(before_cursor)) as u16;
        frame.set_cursor_position(Position { x: x.min(area.right().saturating_sub(1)), y: area.y });
    }
}

fn render_status(app: &App, frame: &mut Frame, area: Rect, show_activity: bool) {
    let state = match (&app.model.status, app.model.retry_in()) {
        (_, Some((seconds, attempt))) => format!("reconnecting in {seconds}s (attempt {attempt})"),
        (Status::Connecting, _) => "connecting…".to_owned(),
        (Status::Connected, _) => "connected".to_owned(),
        (Status::Stopped, _) => "stopped".to_owned(),
        (Status::Reconnecting { .. }, None) => "reconnecting".to_owned(),
    };
    let style = match app.model.status {
        Status::Connected => Style::default().bg(Color::Blue).fg(Color::White),
        _ => Style::default().bg(Color::Yellow).fg(Color::Black),
    };
    // Our standing in the room shown (a moderator, muted, ...), beside the connection's state it matters as much as.
    let state = match app.model.current().room_state.as_ref().and_then(standing_text) {
        Some(standing) => format!("{state} · {standing}"),
        None => state,
    };
    // Our own away message, set here or on another device, stays in sight while it is set.
    let state = match app.model.away_status() {
        Some(away) => format!("{state} · {away}"),
        None => state,
    };
    let left = format!(" {}@{} · {state}", app.model.me, app.model.node);
    // With the conversations pane hidden, this is where activity elsewhere shows (irssi's `Act:`): it is kept
    // whatever the width, the rest gives way first.
    let mut activity = Vec::new();
    if show_activity && !app.activity().is_empty() {
        activity.push(Span::styled(" Act: ", style));
        for (i, (position, urgent)) in app.activity().into_iter().enumerate() {
            if i > 0 {
                activity.push(Span::styled(",", style));
            }
            let mark = if urgent { style.add_modifier(Modifier::BOLD | Modifier::REVERSED) } else { style };
            activity.push(Span::styled(position.to_string(), mark));
        }
        activity.push(Span::styled(" ", style));
    }
    let pending = |long: bool| match (app.model.pending, long) {
        (0, _) => String::new(),
        (n, true) => format!(" {n} message(s) waiting to go out ·"),
        (n, false) => format!(" {n} to send ·"),
    };
    let candidates = [(pending(true), " /help "), (pending(true), ""), (pending(false), ""), (String::new(), "")];
    let width = area.width as usize;
    let activity_width: usize = activity.iter().map(|span| span.content.chars().count()).sum();
    let right_width = |(pending, help): &(String, &str)| pending.chars().count() + activity_width + help.len();
    let left_width = left.chars().count();
    let (pending, help) = candidates
        .iter()
        .find(|candidate| left_width + right_width(candidate) <= width)
        .unwrap_or(&candidates[candidates.len() - 1]);
    let room = width.saturating_sub(right_width(&(pending.clone(), help)));
    // Narrow: the server's address goes first, then the end of the state.
    let short = format!(" {} · {state}", app.model.me);
    let left = if left_width <= room { left } else { short };
    let left: String = match left.chars().count() <= room {
        true => left,
        false => left.chars().take(room.saturating_sub(1)).chain(['…']).collect(),
    };
    let gap = room.saturating_sub(left.chars().count());
    let mut spans = vec![Span::styled(format!("{left}{}{pending}", " ".repeat(gap)), style)];
    spans.extend(activity);
    spans.push(Span::styled(*help, style));
    frame.render_widget(Paragraph::new(Line::from(spans)).style(style), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

fn render_prompt(app: &App, frame: &mut Frame, area: Rect) {
    let Some(prompt) = &app.model.prompt else { return };
    let text = vec![
        Line::from(format!("This is the first connection to {}.", prompt.server)),
        Line::from("Its certificate fingerprint is:"),
        Line::from(Span::styled(prompt.fingerprint.to_string(), Style::default().add_modifier(Modifier::BOLD))),
        Line::from("Compare it with the one the server printed when it started (ask its operator)."),
        Line::from(""),
        Line::from("Trust this server and remember it?  [y] yes   [n] no"),
    ];
    let popup = centered(area, 84, 10);
    frame.render_widget(Clear, popup);
    let block =
        Block::default().borders(Borders::ALL).title(" new server ").border_style(Style::default().fg(Color::Yellow));
    frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: false }), popup);
}

fn render_fatal(message: &str, frame: &mut Frame, area: Rect) {
    let mut text: Vec<Line> = message.lines().map(|l| Line::from(l.to_owned())).collect();
    text.push(Line::from(""));
    text.push(Line::from(Span::styled("Press any key to quit.", Style::default().add_modifier(Modifier::DIM))));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" palomar cannot continue ")
        .title_alignment(Alignment::Center)
        .border_style(Style::default().fg(Color::Red));
    frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: false }), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_counts_wide_characters_and_breaks_at_spaces() {
        assert_eq!(wrap("hello wide world", 11, 11), vec!["hello wide", "world"]);
        assert_eq!(wrap("日本語のテキスト", 6, 6), vec!["日本語", "のテキ", "スト"]);
        assert_eq!(wrap("a\nb", 10, 10), vec!["a", "b"]);
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        // A heart with its emoji selector is drawn two columns wide, and stays whole.
        let heart = "\u{2764}\u{fe0f}";
        assert_eq!(wrap(&format!("ab {heart}"), 3, 3), vec!["ab".to_owned(), heart.to_owned()]);
        assert_eq!(wrap(&format!("a{heart}b"), 2, 2), vec!["a".to_owned(), heart.to_owned(), "b".to_owned()]);
        assert_eq!(wrap(&heart.repeat(3), 4, 4), vec![heart.repeat(2), heart.to_owned()]);
    }
}
