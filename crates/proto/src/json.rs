//! The JSON encoding of the same payloads, for the browser client's WebSocket (PROTOCOL.md, "The browser's
//! encoding"): one message per WebSocket text message, in serde's externally tagged form, with message ids as
//! their 32 hex digits. Names and texts are checked on decoding exactly as in the binary encoding.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a JSON text could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed JSON payload: {0}")]
pub struct JsonError(#[from] serde_json::Error);

pub fn to_json<T: Serialize>(msg: &T) -> String {
    // These plain data types have string keys only and no floats, which is all serde_json can refuse.
    serde_json::to_string(msg).unwrap_or_default()
}

pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    Ok(serde_json::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ClientMsg, Conversation, ConversationInfo, ErrorCode, Message, MessageId, MessageKind, Nick, Revision,
        ServerMsg,
    };

    fn id() -> MessageId {
        MessageId::from_hex("0190abcdef0123456789abcdef012345").expect("hex")
    }

    #[test]
    fn the_documented_forms_decode_and_encode() {
        let send = r#"{"Send":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"lobby"},"text":"hi"}}"#;
        let decoded: ClientMsg = from_json(send).expect("decodes");
        let lobby = Conversation::parse("lobby").expect("room");
        assert_eq!(decoded, ClientMsg::Send { id: id(), to: lobby.clone(), text: "hi".into() });
        assert_eq!(to_json(&decoded), send);
        assert_eq!(from_json::<ClientMsg>(r#""Bye""#).expect("unit variant"), ClientMsg::Bye);

        let ana = Nick::parse("ana").expect("nick");
        let message = Message {
            conversation: lobby.clone(),
            seq: 7,
            id: id(),
            from: ana,
            ts: 1,
            text: "hi".into(),
            kind: MessageKind::Text,
            revision: Revision::Original,
        };
        assert_eq!(
            to_json(&ServerMsg::Messages(vec![message])),
            r#"{"Messages":[{"conversation":{"Room":"lobby"},"seq":7,"id":"0190abcdef0123456789abcdef012345","from":"ana","ts":1,"text":"hi","kind":"Text","revision":"Original"}]}"#
        );
        let error = ServerMsg::Error { code: ErrorCode::AuthFailed, message: "no".into(), id: None };
        assert_eq!(to_json(&error), r#"{"Error":{"code":"AuthFailed","message":"no","id":null}}"#);
        let info = ConversationInfo { conversation: lobby, latest_seq: 0, first_seq: 1 };
        assert_eq!(
            to_json(&ServerMsg::Joined { info }),
            r#"{"Joined":{"info":{"conversation":{"Room":"lobby"},"latest_seq":0,"first_seq":1}}}"#
        );
    }

    /// Version 6's forms as PROTOCOL.md shows them, byte for byte.
    #[test]
    fn the_documented_awareness_forms_round_trip() {
        for client in [
            r#"{"SetAway":{"message":"lunch, back at 2"}}"#,
            r#"{"Whois":{"nick":"bob"}}"#,
            r#"{"Typing":{"conversation":{"Direct":"bob"},"typing":true}}"#,
            r#"{"MarkRead":{"conversation":{"Room":"lobby"},"seq":42}}"#,
        ] {
            let decoded: ClientMsg = from_json(client).expect("decodes");
            assert_eq!(to_json(&decoded), client);
        }
        for server in [
            r#"{"Away":{"nick":"bob","message":"lunch, back at 2"}}"#,
            r#"{"Away":{"nick":"bob","message":null}}"#,
            r#"{"Whois":{"nick":"bob","registered_ms":1764000000000,"online":true,"online_since_ms":1765000000000,"idle_ms":120000,"away":null,"rooms":["lobby","rust"]}}"#,
            r#"{"Typing":{"conversation":{"Room":"lobby"},"nick":"bob","typing":true}}"#,
            r#"{"ReadMarkers":{"markers":[{"conversation":{"Room":"lobby"},"nick":"bob","seq":42}]}}"#,
        ] {
            let decoded: ServerMsg = from_json(server).expect("decodes");
            assert_eq!(to_json(&decoded), server);
        }
    }

    /// The moderation forms PROTOCOL.md shows, byte for byte.
    #[test]
    fn the_documented_moderation_forms_round_trip() {
        for client in [
            r#"{"Moderate":{"room":"rust","action":{"Ban":{"nick":"eve","reason":"spam"}}}}"#,
            r#"{"Moderate":{"room":"rust","action":{"SetRole":{"nick":"bob","role":"Moderator"}}}}"#,
            r#"{"Moderate":{"room":"rust","action":{"InviteOnly":true}}}"#,
            r#"{"ListRooms":{"after":"","limit":50}}"#,
        ] {
            let decoded: ClientMsg = from_json(client).expect("decodes");
            assert_eq!(to_json(&decoded), client);
        }
        for server in [
            r#"{"RoomState":{"room":"rust","topic":"Rust talk","invite_only":false,"moderated":false,"role":"Owner","muted":false,"operator":false}}"#,
            r#"{"RoomEvent":{"room":"rust","by":"ana","change":{"Banned":{"nick":"eve","reason":"spam"}}}}"#,
            r#"{"RoomEvent":{"room":"rust","by":"ana","change":{"Moderated":true}}}"#,
            r#"{"Invited":{"room":"rust","by":"ana"}}"#,
            r#"{"Rooms":{"rooms":[{"room":"rust","members":12,"topic":"Rust talk","invite_only":false}],"more":true}}"#,
            r#"{"Error":{"code":"NotAllowed","message":"no","id":null}}"#,
        ] {
            let decoded: ServerMsg = from_json(server).expect("decodes");
            assert_eq!(to_json(&decoded), server);
        }
        let bad_nick = r#"{"RoomEvent":{"room":"rust","by":"Ana","change":{"Moderated":true}}}"#;
        assert!(from_json::<ServerMsg>(bad_nick).is_err(), "names are checked here too");
    }

    /// The kinds of messages (version 3) as PROTOCOL.md shows them, byte for byte.
    #[test]
    fn the_documented_forms_of_kinds_round_trip() {
        for client in [
            r#"{"Post":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"rust"},"kind":"Action","text":"waves"}}"#,
            r#"{"Post":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"rust"},"kind":{"Edit":{"of":41}},"text":"hello"}}"#,
            r#"{"Post":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"rust"},"kind":{"Deletion":{"of":41}},"text":""}}"#,
            r#"{"Post":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"rust"},"kind":{"Reply":{"of":41}},"text":"yes"}}"#,
            r#"{"Post":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"rust"},"kind":{"Reaction":{"of":41,"added":true}},"text":"👍"}}"#,
        ] {
            let decoded: ClientMsg = from_json(client).expect("decodes");
            assert_eq!(to_json(&decoded), client);
        }
        for server in [
            r#"{"Messages":[{"conversation":{"Room":"rust"},"seq":41,"id":"0190abcdef0123456789abcdef012345","from":"ana","ts":1,"text":"","kind":"Text","revision":"Deleted"}]}"#,
            r#"{"Messages":[{"conversation":{"Room":"rust"},"seq":43,"id":"0190abcdef0123456789abcdef012345","from":"bob","ts":1,"text":"spam","kind":{"Deletion":{"of":41}},"revision":"Original"}]}"#,
            r#"{"Messages":[{"conversation":{"Room":"rust"},"seq":44,"id":"0190abcdef0123456789abcdef012345","from":"bob","ts":1,"text":"👀","kind":{"Reaction":{"of":41,"added":false}},"revision":"Original"}]}"#,
            r#"{"Error":{"code":"UnknownMessage","message":"no","id":"0190abcdef0123456789abcdef012345"}}"#,
        ] {
            let decoded: ServerMsg = from_json(server).expect("decodes");
            assert_eq!(to_json(&decoded), server);
        }
    }

    /// Search (version 5) as PROTOCOL.md shows it, byte for byte.
    #[test]
    fn the_documented_forms_of_search_round_trip() {
        for client in [
            r#"{"Search":{"query":"lunch friday","conversation":null,"before":null,"limit":20}}"#,
            r#"{"Search":{"query":"lunch","conversation":{"Direct":"bob"},"before":"r812","limit":20}}"#,
        ] {
            let decoded: ClientMsg = from_json(client).expect("decodes");
            assert_eq!(to_json(&decoded), client);
        }
        let found = r#"{"Found":{"query":"lunch","conversation":null,"hits":[{"conversation":{"Room":"lobby"},"seq":12,"id":"0190abcdef0123456789abcdef012345","from":"ana","ts":1765000000000,"text":"Lunch at noon?","kind":"Text","revision":"Original"}],"next":"r812"}}"#;
        let decoded: ServerMsg = from_json(found).expect("decodes");
        assert_eq!(to_json(&decoded), found);
    }

    #[test]
    fn what_the_binary_encoding_refuses_the_json_one_refuses_too() {
        for bad in [
            r#"{"Send":{"id":"0190abcdef0123456789abcdef01234","to":{"Room":"lobby"},"text":"hi"}}"#,
            r#"{"Send":{"id":"+190abcdef0123456789abcdef012345","to":{"Room":"lobby"},"text":"hi"}}"#,
            r#"{"Send":{"id":"0190abcdef0123456789abcdef012345","to":{"Room":"Lobby"},"text":"hi"}}"#,
            r#"{"Ack":{"conversation":{"Direct":"ana"},"seq":-1}}"#,
            r#"{"Shout":{}}"#,
            "not json",
        ] {
            assert!(from_json::<ClientMsg>(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn ids_keep_their_binary_encoding() {
        assert_eq!(crate::encode(&id()), id().0.to_vec(), "postcard still writes the 16 bytes as they are");
        assert_eq!(crate::decode::<MessageId>(&id().0).expect("decodes"), id());
    }
}
