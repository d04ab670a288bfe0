//! Search over the wire with the real server, on both stores: a user finds what was said in its own
//! conversations only, newest first, a page at a time, an edited message by its latest text and a deleted one not
//! at all; what cannot be searched is refused with a reason; a client of an older version is told search needs
//! the new one; and a line-mode script gets the hits as a JSON line.

use palomar_proto::{
    ClientMsg, Conversation, ErrorCode, Message, MessageId, MessageKind, PROTOCOL_VERSION, RoomName, ServerMsg,
};

use crate::common::{Backend, ClientSpec, RawReader, RawWriter, Server, run_client};
use crate::kinds::{log_in, read_until};

on_both_stores!(sync: [a_line_mode_script_searches_and_pages_by_slash_search], async: [a_search_finds_the_latest_texts_of_ones_own_conversations_page_by_page]);

fn room(name: &str) -> Conversation {
    Conversation::Room(RoomName::parse(name).expect("valid"))
}

/// Stores `text` of `kind` in `to`, and waits until the server has it.
async fn said(reader: &mut RawReader, writer: &mut RawWriter, id: u8, to: Conversation, kind: MessageKind, text: &str) {
    let message_id = MessageId([id; 16]);
    writer.send(&ClientMsg::Post { id: message_id, to, kind, text: text.into() }).await.expect("sends");
    read_until(reader, &mut Vec::new(), |frame| match frame {
        ServerMsg::Accepted { id, .. } if *id == message_id => Some(()),
        ServerMsg::Error { id: Some(id), message, .. } if *id == message_id => panic!("refused: {message}"),
        _ => None,
    })
    .await;
}

/// The answer to a search: its hits and next position, or the error's code.
async fn search(
    reader: &mut RawReader,
    writer: &mut RawWriter,
    query: &str,
    conversation: Option<Conversation>,
    before: Option<String>,
) -> Result<(Vec<Message>, Option<String>), ErrorCode> {
    let asked = ClientMsg::Search { query: query.into(), conversation: conversation.clone(), before, limit: 20 };
    writer.send(&asked).await.expect("sends");
    read_until(reader, &mut Vec::new(), |frame| match frame {
        ServerMsg::Found { query: echoed, conversation: echoed_in, hits, next } => {
            assert_eq!((echoed.as_str(), echoed_in), (query, &conversation), "the answer names its search");
            Some(Ok((hits.clone(), next.clone())))
        }
        ServerMsg::Error { code, id: None, .. } => Some(Err(*code)),
        _ => None,
    })
    .await
}

fn texts(hits: &[Message]) -> Vec<String> {
    hits.iter().map(|m| format!("{} {} {}", m.conversation, m.seq, m.text)).collect()
}

async fn a_search_finds_the_latest_texts_of_ones_own_conversations_page_by_page(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    ana_out.send(&ClientMsg::Join { room: "garden".into() }).await.expect("sends");
    read_until(&mut ana, &mut Vec::new(), |frame| matches!(frame, ServerMsg::Joined { .. }).then_some(())).await;

    let lobby = room("lobby");
    said(&mut ana, &mut ana_out, 1, lobby.clone(), MessageKind::Text, "Lunch at noon?").await;
    said(&mut ana, &mut ana_out, 2, lobby.clone(), MessageKind::Text, "lunch moved to one").await;
    said(&mut ana, &mut ana_out, 3, lobby.clone(), MessageKind::Edit { of: 2 }, "dinner instead").await;
    said(&mut ana, &mut ana_out, 4, lobby.clone(), MessageKind::Text, "a secret lunch").await;
    said(&mut ana, &mut ana_out, 5, lobby.clone(), MessageKind::Deletion { of: 4 }, "").await;
    said(&mut ana, &mut ana_out, 6, room("garden"), MessageKind::Text, "lunch among the lettuces").await;
    let direct = Conversation::Direct(palomar_testkit::nick("bob"));
    said(&mut ana, &mut ana_out, 7, direct, MessageKind::Action, "brings lunch").await;
    for id in 8..=30 {
        said(&mut ana, &mut ana_out, id, lobby.clone(), MessageKind::Text, &format!("lunch number {id}")).await;
    }

    // bob is in the lobby and in the direct conversation, not in #garden: 23 numbered lunches, the direct
    // message and the first one, newest first, in two pages.
    let (first, next) = search(&mut bob, &mut bob_out, "LUNCH", None, None).await.expect("found");
    assert_eq!(first.len(), 20);
    assert_eq!(texts(&first[..1]), ["#lobby 28 lunch number 30"]);
    let (second, last) = search(&mut bob, &mut bob_out, "LUNCH", None, next).await.expect("found");
    assert_eq!(
        texts(&second),
        [
            "#lobby 8 lunch number 10",
            "#lobby 7 lunch number 9",
            "#lobby 6 lunch number 8",
            "@ana 1 brings lunch",
            "#lobby 1 Lunch at noon?"
        ]
    );
    assert_eq!(last, None, "nothing older");
    let (dinner, _) = search(&mut bob, &mut bob_out, "dinn", None, None).await.expect("found");
    assert_eq!(texts(&dinner), ["#lobby 2 dinner instead"], "an edited message by its latest text");
    let (lettuces, _) =
        search(&mut ana, &mut ana_out, "lettuce lunch", Some(room("garden")), None).await.expect("found");
    assert_eq!(texts(&lettuces), ["#garden 1 lunch among the lettuces"]);

    assert_eq!(search(&mut bob, &mut bob_out, "lunch", Some(room("garden")), None).await, Err(ErrorCode::NotMember));
    assert_eq!(search(&mut bob, &mut bob_out, " ?! ", None, None).await, Err(ErrorCode::InvalidText));
    assert_eq!(search(&mut bob, &mut bob_out, "lunch", None, Some("x".into())).await, Err(ErrorCode::Protocol));

    let (mut old, mut old_out) = log_in(&server, "carol", 4).await;
    assert_eq!(search(&mut old, &mut old_out, "lunch", None, None).await, Err(ErrorCode::Protocol), "version 4");
}

fn a_line_mode_script_searches_and_pages_by_slash_search(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let spec = |nick, home| ClientSpec { server: &server.addr, nick, password: "pw", home, extra: &[] };
    let ana = dir.path().join("ana");
    let lines: String = (1..=25).map(|n| format!("recipe {n}\n")).collect();
    let (status, events) = run_client(spec("ana", &ana), &lines);
    assert!(status.success(), "{events:#?}");

    let (status, events) = run_client(spec("ana", &ana), "/search Recipe\n/search\n/search\n/goto 1\n");
    assert_eq!(status.code(), Some(4), "/goto is refused in line mode: {events:#?}");
    let found: Vec<_> = events.iter().filter(|e| e["event"] == "found").collect();
    let counts: Vec<_> = found.iter().map(|e| (e["hits"].as_array().map_or(0, Vec::len), e["more"].clone())).collect();
    assert_eq!(counts, [(20, true.into()), (5, false.into())], "{found:#?}");
    assert_eq!(found[0]["query"], "Recipe");
    assert_eq!(found[0]["hits"][0]["text"], "recipe 25", "newest first");
    assert_eq!(found[1]["hits"][4]["text"], "recipe 1");
    assert!(
        events.iter().any(|e| e["event"] == "notice" && e["text"] == "nothing more to find for “Recipe”"),
        "{events:#?}"
    );
}
