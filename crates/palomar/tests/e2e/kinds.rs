//! Kinds of messages over the wire (protocol versions 3 and 4), with the real server: actions, edits and deletions
//! are entries of the log that revise what they refer to, for readers live, catching up and scrolling back; a
//! moderator deletes another's message and the audit log says so; replies and reactions are judged and delivered
//! alike; and a client of an older version is sent text it can show instead of kinds it does not know.

use palomar_proto::{
    ClientMsg, Conversation, ErrorCode, Message, MessageId, MessageKind, Nick, PROTOCOL_VERSION, RoomName, ServerMsg,
};
use serde::{Deserialize, Serialize};

use crate::common::{BIN, PATIENCE, RawReader, RawWriter, Server, first_answer, raw_connection};

pub(crate) async fn log_in(server: &Server, nick: &str, version: u16) -> (RawReader, RawWriter) {
    let (mut reader, mut writer) = raw_connection(&server.addr, "127.0.0.1".parse().expect("ip")).await.expect("TLS");
    let hello = ClientMsg::Hello { version, nick: nick.into(), password: "a password".into(), positions: vec![] };
    writer.send(&hello).await.expect("sends");
    let answer = tokio::time::timeout(PATIENCE, first_answer(&mut reader)).await.expect("in time");
    assert!(matches!(answer, Ok(Some(ServerMsg::Welcome { .. }))), "{answer:?}");
    (reader, writer)
}

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

async fn post(writer: &mut RawWriter, id: u8, kind: MessageKind, text: &str) {
    let post = ClientMsg::Post { id: MessageId([id; 16]), to: lobby(), kind, text: text.into() };
    writer.send(&post).await.expect("sends");
}

/// Frames until `wanted` says one is the last wanted, which it returns; messages on the way are gathered in `seen`.
pub(crate) async fn read_until<T>(
    reader: &mut RawReader,
    seen: &mut Vec<Message>,
    wanted: impl Fn(&ServerMsg) -> Option<T>,
) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let frame = reader.read_msg::<ServerMsg>().await.expect("reads").expect("open");
            if let Some(found) = wanted(&frame) {
                return found;
            }
            if let ServerMsg::Messages(messages) = frame {
                seen.extend(messages);
            }
        }
    })
    .await
    .expect("in time")
}

/// The answer to post `id`: its seq, or the refusal's code.
async fn answer(reader: &mut RawReader, seen: &mut Vec<Message>, id: u8) -> Result<u64, ErrorCode> {
    read_until(reader, seen, |frame| match frame {
        ServerMsg::Accepted { id: answered, seq, .. } if *answered == MessageId([id; 16]) => Some(Ok(*seq)),
        ServerMsg::Error { code, id: Some(answered), .. } if *answered == MessageId([id; 16]) => Some(Err(*code)),
        _ => None,
    })
    .await
}

/// Reads frames until message `seq` of the lobby has come.
async fn until_seq(reader: &mut RawReader, seen: &mut Vec<Message>, seq: u64) {
    while !seen.iter().any(|m| m.seq == seq) {
        let messages = read_until(reader, &mut Vec::new(), |frame| match frame {
            ServerMsg::Messages(messages) => Some(messages.clone()),
            _ => None,
        })
        .await;
        seen.extend(messages);
    }
}

fn shown(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| format!("{} {} {:?} {:?} {}", m.seq, m.from, m.kind, m.revision, m.text)).collect()
}

/// What a version 2 client decodes: a message without kind or revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Version2Message {
    conversation: Conversation,
    seq: u64,
    id: MessageId,
    from: Nick,
    ts: u64,
    text: String,
}

/// The messages of a frame sent to a version 2 client, decoded as version 2 did: `Messages` and `History` only
/// (variants 3 and 9), and exactly (encoding them again gives the same bytes: nothing of version 3 is left over).
fn version_2_messages(payload: &[u8]) -> Vec<Version2Message> {
    let (variant, body) = payload.split_first().expect("a variant");
    let messages: Vec<Version2Message> = match variant {
        3 => palomar_proto::decode(body).expect("version 2 messages"),
        9 => {
            let page: (Conversation, Vec<Version2Message>, u64) =
                palomar_proto::decode(body).expect("a version 2 page");
            assert_eq!(palomar_proto::encode(&page), body, "a version 2 page, exactly");
            return page.1;
        }
        _ => return Vec::new(),
    };
    assert_eq!(palomar_proto::encode(&messages), body, "version 2 messages, exactly");
    messages
}

#[tokio::test]
async fn edits_and_deletions_revise_the_log_for_every_reader_and_an_older_client_reads_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    let (mut ana_seen, mut bob_seen) = (Vec::new(), Vec::new());

    post(&mut ana_out, 1, MessageKind::Action, "waves").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 1).await, Ok(1));
    ana_out.send(&ClientMsg::Send { id: MessageId([2; 16]), to: lobby(), text: "helo".into() }).await.expect("sends");
    assert_eq!(answer(&mut ana, &mut ana_seen, 2).await, Ok(2));
    post(&mut ana_out, 3, MessageKind::Edit { of: 2 }, "hello").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 3).await, Ok(3));
    post(&mut bob_out, 4, MessageKind::Edit { of: 2 }, "mine").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 4).await, Err(ErrorCode::NotAllowed), "only the author edits");
    post(&mut bob_out, 5, MessageKind::Deletion { of: 2 }, "").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 5).await, Err(ErrorCode::NotAllowed), "bob moderates nothing");
    post(&mut bob_out, 6, MessageKind::Deletion { of: 3 }, "").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 6).await, Err(ErrorCode::UnknownMessage), "an edit is no message");
    post(&mut bob_out, 7, MessageKind::Text, "spam spam").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 7).await, Ok(4));
    until_seq(&mut bob, &mut bob_seen, 3).await;
    // bob's own message (seq 4) may have come with its answer already.
    bob_seen.retain(|message| message.seq <= 3);
    assert_eq!(
        shown(&bob_seen),
        ["1 ana Action Original waves", "2 ana Text Original helo", "3 ana Edit { of: 2 } Original hello"],
        "live, each entry as it was stored"
    );

    // ana, the lobby's first member, does not moderate it: the operator makes her a moderator.
    let promoted = std::process::Command::new(BIN)
        .args(["room", "--data"])
        .arg(&server.data)
        .args(["role", "lobby", "ana", "moderator"])
        .output()
        .expect("palomar room runs");
    assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
    post(&mut ana_out, 8, MessageKind::Deletion { of: 4 }, "spam").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 8).await, Ok(5));
    post(&mut bob_out, 9, MessageKind::Deletion { of: 4 }, "").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 9).await, Err(ErrorCode::UnknownMessage), "deleted already");
    post(&mut ana_out, 8, MessageKind::Deletion { of: 4 }, "spam").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 8).await, Ok(5), "a retry is answered as the first attempt was");
    until_seq(&mut bob, &mut bob_seen, 5).await;
    let deletion = bob_seen.iter().find(|m| m.seq == 5).expect("the deletion");
    assert_eq!((deletion.kind, &*deletion.text), (MessageKind::Deletion { of: 4 }, "spam"));
    let audit = std::process::Command::new(BIN).arg("audit").arg("--data").arg(&server.data).output().expect("runs");
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.lines().any(|line| line.contains("\tana\tmessage delete\t#lobby #4 by bob\tspam")),
        "the moderator's deletion is audited: {audit}"
    );

    // carol, catching up, sees each message as it is now; then scrolls back.
    let (mut carol, mut carol_out) = log_in(&server, "carol", PROTOCOL_VERSION).await;
    let mut carol_seen = Vec::new();
    until_seq(&mut carol, &mut carol_seen, 5).await;
    let now = [
        "1 ana Action Original waves",
        "2 ana Text Edited hello",
        "3 ana Edit { of: 2 } Original hello",
        "4 bob Text Deleted ",
        "5 ana Deletion { of: 4 } Original spam",
    ];
    assert_eq!(shown(&carol_seen), now, "catching up");
    carol_out.send(&ClientMsg::History { conversation: lobby(), before: 6, limit: 10 }).await.expect("sends");
    let page = read_until(&mut carol, &mut carol_seen, |frame| match frame {
        ServerMsg::History(page) => Some(page.messages.clone()),
        _ => None,
    })
    .await;
    assert_eq!(shown(&page), now, "scrolling back");

    // dave speaks version 2: kinds come to him as text.
    let (mut dave, mut dave_out) = log_in(&server, "dave", 2).await;
    let mut dave_seen = Vec::new();
    let texts = |messages: &[Version2Message]| -> Vec<String> {
        messages.iter().map(|m| format!("{} {}", m.seq, m.text)).collect()
    };
    while dave_seen.len() < 5 {
        let payload = tokio::time::timeout(PATIENCE, dave.read_payload()).await.expect("in time").expect("reads");
        dave_seen.extend(version_2_messages(&payload.expect("open")));
    }
    let as_text = ["1 /me waves", "2 hello", "3 (edited) hello", "4 (deleted)", "5 (deleted a message: spam)"];
    assert_eq!(texts(&dave_seen), as_text);
    dave_out.send(&ClientMsg::History { conversation: lobby(), before: 6, limit: 10 }).await.expect("sends");
    let page = loop {
        let payload = tokio::time::timeout(PATIENCE, dave.read_payload()).await.expect("in time").expect("reads");
        let payload = payload.expect("open");
        if payload.first() == Some(&9) {
            break version_2_messages(&payload);
        }
    };
    assert_eq!(texts(&page), as_text, "scrolling back too");
    post(&mut ana_out, 10, MessageKind::Action, "leaves").await;
    let live = loop {
        let payload = tokio::time::timeout(PATIENCE, dave.read_payload()).await.expect("in time").expect("reads");
        let messages = version_2_messages(&payload.expect("open"));
        if !messages.is_empty() {
            break messages;
        }
    };
    assert_eq!(texts(&live), ["6 /me leaves"], "live");
}

#[tokio::test]
async fn replies_and_reactions_reach_every_reader_and_an_older_client_reads_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    let (mut ana_seen, mut bob_seen) = (Vec::new(), Vec::new());
    let react = |of, added| MessageKind::Reaction { of, added };

    post(&mut ana_out, 1, MessageKind::Text, "lunch?").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 1).await, Ok(1));
    post(&mut bob_out, 2, MessageKind::Reply { of: 1 }, "yes").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 2).await, Ok(2));
    post(&mut bob_out, 3, react(1, true), "👍").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 3).await, Ok(3));
    post(&mut bob_out, 4, react(1, true), "👍").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 4).await, Err(ErrorCode::NotAllowed), "once");
    post(&mut bob_out, 5, react(1, true), "🙂").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 5).await, Err(ErrorCode::InvalidText), "one of the eight");
    post(&mut bob_out, 6, react(3, true), "👍").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 6).await, Err(ErrorCode::UnknownMessage), "a reaction is no message");
    post(&mut ana_out, 7, react(2, true), "❤\u{fe0f}").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 7).await, Ok(4));
    post(&mut ana_out, 8, MessageKind::Reply { of: 2 }, "see you").await;
    assert_eq!(answer(&mut ana, &mut ana_seen, 8).await, Ok(5));
    post(&mut bob_out, 9, react(1, false), "👍").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 9).await, Ok(6));
    post(&mut bob_out, 10, MessageKind::Deletion { of: 2 }, "").await;
    assert_eq!(answer(&mut bob, &mut bob_seen, 10).await, Ok(7));
    until_seq(&mut ana, &mut ana_seen, 7).await;
    assert_eq!(
        shown(&ana_seen),
        [
            "1 ana Text Original lunch?",
            "2 bob Reply { of: 1 } Original yes",
            "3 bob Reaction { of: 1, added: true } Original 👍",
            "4 ana Reaction { of: 2, added: true } Original ❤\u{fe0f}",
            "5 ana Reply { of: 2 } Original see you",
            "6 bob Reaction { of: 1, added: false } Original 👍",
            "7 bob Deletion { of: 2 } Original ",
        ],
        "live, as stored"
    );

    // carol catches up: the deleted reply and its reaction are blank, the reply to it is kept.
    let (mut carol, mut carol_out) = log_in(&server, "carol", PROTOCOL_VERSION).await;
    let mut carol_seen = Vec::new();
    until_seq(&mut carol, &mut carol_seen, 7).await;
    let now = [
        "1 ana Text Original lunch?",
        "2 bob Reply { of: 1 } Deleted ",
        "3 bob Reaction { of: 1, added: true } Original 👍",
        "4 ana Reaction { of: 2, added: true } Deleted ",
        "5 ana Reply { of: 2 } Original see you",
        "6 bob Reaction { of: 1, added: false } Original 👍",
        "7 bob Deletion { of: 2 } Original ",
    ];
    assert_eq!(shown(&carol_seen), now, "catching up");
    carol_out.send(&ClientMsg::History { conversation: lobby(), before: 8, limit: 10 }).await.expect("sends");
    let page = read_until(&mut carol, &mut carol_seen, |frame| match frame {
        ServerMsg::History(page) => Some(page.messages.clone()),
        _ => None,
    })
    .await;
    assert_eq!(shown(&page), now, "scrolling back");

    // dave speaks version 3: replies and reactions come to him as texts, the rest as it is.
    let (mut dave, _dave_out) = log_in(&server, "dave", 3).await;
    let mut dave_seen = Vec::new();
    until_seq(&mut dave, &mut dave_seen, 7).await;
    assert_eq!(
        shown(&dave_seen),
        [
            "1 ana Text Original lunch?",
            "2 bob Text Deleted ",
            "3 bob Text Original (reacted 👍 to #1)",
            "4 ana Text Deleted ",
            "5 ana Text Original (reply to #2) see you",
            "6 bob Text Original (took back 👍 from #1)",
            "7 bob Deletion { of: 2 } Original ",
        ]
    );
}
