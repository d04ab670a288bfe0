//! Client messages as the server decodes them, the first one (`Hello`) above all: decoding never panics, a
//! decoded message re-encodes to something that decodes to the same message, and the names in it are
//! validated without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palomar_proto::{ClientMsg, Nick, RoomName, decode, encode, validate_text};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = decode::<ClientMsg>(data) else { return };
    assert_eq!(decode::<ClientMsg>(&encode(&msg)).ok(), Some(msg.clone()));
    match msg {
        ClientMsg::Hello { nick, password, .. } => {
            let _ = Nick::parse(&nick);
            let _ = password.expose().len();
        }
        ClientMsg::Send { text, .. } | ClientMsg::Post { text, .. } => {
            let _ = validate_text(&text);
        }
        ClientMsg::Join { room } | ClientMsg::Leave { room } | ClientMsg::Users { room } => {
            let _ = RoomName::parse(&room);
        }
        _ => {}
    }
});
