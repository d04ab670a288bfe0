//! The entry-line parser every front end shares (`palomar_client::command_line`) on arbitrary input: never a
//! panic; text comes back exactly as typed (a leading `//` as `/`); names in parsed commands are valid and
//! parse back to themselves, message numbers are 1 or more; a refused line is a command line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palomar_client::command_line::{Target, Typed, parse};
use palomar_proto::{Nick, RoomName};

fuzz_target!(|line: &str| {
    let Ok(parsed) = parse(line) else {
        assert!(line.starts_with('/') && !line.starts_with("//"), "only commands are refused: {line:?}");
        return;
    };
    let Some(typed) = parsed else {
        assert!(line.trim().is_empty());
        return;
    };
    match typed {
        Typed::Text(text) => match line.strip_prefix("//") {
            Some(rest) => assert_eq!(text, format!("/{rest}")),
            None => assert_eq!(text, line),
        },
        Typed::Join(room) | Typed::Leave(Some(room)) | Typed::Users(Some(room)) | Typed::List(Some(room)) => {
            assert_eq!(RoomName::parse(room.as_str()).as_ref(), Ok(&room));
        }
        Typed::Msg { to, text } => {
            assert_eq!(Nick::parse(to.as_str()).as_ref(), Ok(&to));
            if let Some(text) = text {
                assert!(!text.trim().is_empty() && text.trim() == text);
            }
        }
        Typed::History(Some(n)) => assert!(n > 0),
        Typed::Me(text) => assert!(!text.is_empty() && text.trim() == text),
        Typed::Edit { of, text } => {
            assert!(of.is_none_or(|seq| seq > 0));
            assert!(!text.is_empty() && text.trim() == text);
        }
        Typed::Delete { of, reason } => {
            assert_eq!(reason.trim(), reason);
            match of {
                Target::Seq(seq) => assert!(seq > 0),
                Target::LatestOf(nick) => assert_eq!(Nick::parse(nick.as_str()).as_ref(), Ok(&nick)),
                Target::MyLatest => {}
            }
        }
        Typed::Moderate(action) => {
            // A nickname in an action was checked: what the server gets parses back to itself.
            if let Some(nick) = action.target() {
                assert_eq!(Nick::parse(nick).map(|n| n.to_string()).as_deref(), Ok(nick));
            }
        }
        Typed::ShowTopic
        | Typed::Leave(None)
        | Typed::Users(None)
        | Typed::List(None)
        | Typed::History(None)
        | Typed::Help
        | Typed::Quit => {}
    }
});
