//! A store with a past (removed accounts, a direct conversation opened again after a removal, retention,
//! cursors, removals done and pending, suspensions, the audit log, operators and rooms' moderation) goes from
//! SQLite to PostgreSQL and back, and each copy carries on where the source stopped; a target that holds data is
//! refused unless replaced; a failed copy leaves the target as it was; bad sources and targets are refused with
//! what is wrong.

use palomar_proto::{MessageId, MessageKind, Nick, Role, RoomName};
use rusqlite::Connection;

use super::*;
use crate::keys::{Account, AccountId, ConvId, ConvKey};
use crate::location::PostgresSettings;
use crate::postgres::SERVER_APPLICATION;
use crate::records::{
    Appended, AuditEntry, Credentials, NewMessage, RemovalRequest, RoomModeration, RoomSettings, RoomStanding,
    Sanction, SearchRequest, Suspension,
};
use crate::tests::{Fresh, lobby, nick};

/// Messages in `#lobby`: more than two pages of the copy, and than a batch of SQLite's index of runs.
const LOBBY_MESSAGES: u32 = 2_500;
/// What retention keeps of it, so that the copy starts at a `first_seq` above 1.
const LOBBY_KEPT: u64 = 2_400;

fn copy_quietly(from: &Fresh, to: &Fresh, replace: bool) -> std::result::Result<CopySummary, CopyError> {
    copy(&from.location, &to.location, CopyOptions { replace }, &mut |_| {})
}

/// A message id that no other message of these tests has.
fn id(n: u32, tag: u8) -> MessageId {
    let mut id = [tag; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    MessageId(id)
}

/// Registers `who` as a server does: an account in `#lobby`.
fn register(db: &dyn Store, who: &str) -> Account {
    let account = db.create_account(&nick(who), &format!("hash of {who}"), 7).expect("creates").expect("free");
    db.add_member(lobby(db).id, account.id, 0).expect("joins #lobby");
    account
}

/// What the source left for the checks after the copy.
struct Past {
    bob: Account,
    /// The second `carol`, whose direct conversation with bob continues that of the first.
    carol: Account,
    /// Banned from `garden`, and in no conversation.
    eve: Account,
    /// The newest account, removed: the id counter is above every id left.
    dave: Account,
    /// A room with settings, roles, a ban and an invitation.
    garden: ConvId,
    /// The newest conversation, deleted with dave.
    newest_conversation: ConvId,
    newest_removal: i64,
    newest_audit: i64,
}

/// Builds a store with a past: every row a copy must carry, and counters above the rows that are left.
fn store_with_a_past(fresh: &Fresh) -> Past {
    let db = fresh.writer();
    let db = &*db;
    let ana = register(db, "ana");
    let bob = register(db, "bob");
    let first_carol = register(db, "carol");
    let room = lobby(db);
    db.begin().expect("begins");
    for n in 0..LOBBY_MESSAGES {
        let from = if n % 2 == 0 { &ana } else { &bob };
        db.append(room.id, &from.nick, id(n, 1), &format!("lobby {n}: ünïcode ✓"), 1_000 + u64::from(n))
            .expect("appends");
    }
    db.commit().expect("commits");
    let garden = db.ensure_conversation(&ConvKey::Room(RoomName::parse("garden").expect("valid"))).expect("creates");
    db.add_member(garden.id, ana.id, 0).expect("joins");
    db.add_member(garden.id, bob.id, 0).expect("joins");
    for n in 0..3 {
        db.append(garden.id, &ana.nick, id(n, 2), &format!("garden {n}"), 5_000).expect("appends");
    }
    // Kinds and revisions are copied too: an action, an edited message and a deleted one.
    for (n, kind, text) in [
        (3, MessageKind::Action, "waves"),
        (4, MessageKind::Edit { of: 1 }, "garden 1, edited"),
        (5, MessageKind::Deletion { of: 2 }, "a reason"),
    ] {
        let post = NewMessage { conversation: garden.id, sender: &ana.nick, id: id(n, 2), text, kind };
        db.append_message(&post, 5_001).expect("appends");
    }
    db.advance_cursor(bob.id, room.id, 2_000).expect("moves");
    db.advance_cursor(ana.id, garden.id, 2).expect("moves");

    let first_dm = db.open_direct(&bob, &first_carol).expect("opens").expect("both exist");
    for n in 0..3 {
        db.append(first_dm.id, &bob.nick, id(n, 3), "to the first carol", 6_000).expect("appends");
    }
    db.remove_account(&first_carol.nick).expect("removes").expect("existed");
    let carol = register(db, "carol");
    let dm = db.open_direct(&bob, &carol).expect("opens").expect("both exist");
    assert_eq!(dm.last_seq, 3, "continues the first carol's seqs");
    assert_eq!(db.append(dm.id, &carol.nick, id(0, 4), "I am the new carol", 7_000).expect("appends").seq, 4);
    db.advance_cursor(bob.id, dm.id, 4).expect("moves");
    db.set_away(ana.id, Some("in the garden ✓"), 7_100).expect("sets");
    db.advance_read_markers(&[(ana.id, garden.id, 3), (bob.id, garden.id, 1), (carol.id, dm.id, 4)]).expect("moves");

    let eve = db.create_account(&nick("eve"), "hash of eve", 7).expect("creates").expect("free");
    let sanction =
        |reason: &str, since_ms| Sanction { reason: reason.into(), by: "operator (uid 1, ana)".into(), since_ms };
    db.set_operator(&bob.nick, true).expect("sets").expect("exists");
    let settings = RoomSettings { topic: "roses ✓".into(), invite_only: true, moderated: false };
    db.set_room_settings(garden.id, &settings).expect("sets");
    db.set_role(garden.id, ana.id, Role::Owner).expect("sets");
    db.set_role(garden.id, bob.id, Role::Voice).expect("sets");
    db.set_banned(garden.id, eve.id, Some(&sanction("spam ✓", 9_400))).expect("bans");
    db.set_muted(room.id, bob.id, Some(&sanction("loud", 9_401))).expect("mutes");
    db.set_invited(garden.id, carol.id, true).expect("invites");

    let dave = register(db, "dave");
    // All of it goes with dave, or with the conversation deleted with dave.
    db.set_operator(&dave.nick, true).expect("sets").expect("exists");
    db.set_role(garden.id, dave.id, Role::Moderator).expect("sets");
    db.set_muted(garden.id, dave.id, Some(&sanction("loud", 9_402))).expect("mutes");
    db.set_invited(room.id, dave.id, true).expect("invites");
    db.set_away(dave.id, Some("leaving"), 8_001).expect("sets");
    let dave_dm = db.open_direct(&ana, &dave).expect("opens").expect("both exist");
    db.set_room_settings(dave_dm.id, &settings).expect("sets");
    for n in 0..2 {
        db.append(dave_dm.id, &dave.nick, id(n, 5), "from dave", 8_000).expect("appends");
    }
    db.remove_account(&dave.nick).expect("removes").expect("existed");
    assert_eq!(db.prune(LOBBY_KEPT).expect("prunes") as u64, u64::from(LOBBY_MESSAGES) - LOBBY_KEPT);

    let done = db.request_removal(&nick("zed"), 9_000).expect("asks");
    db.finish_removal(done, false, 9_001).expect("done");
    let pending = db.request_removal(&nick("ana"), 9_002).expect("asks");

    db.suspend(&bob.nick, None, "until lifted ✓", 9_100).expect("suspends").expect("exists");
    // Expired, and copied all the same: the copy is of the tables, not of what is in force.
    db.suspend(&carol.nick, Some(9_200), "briefly", 9_150).expect("suspends").expect("exists");
    let mut newest_audit = 0;
    for (n, action) in ["user suspend", "user suspend", "user remove"].into_iter().enumerate() {
        newest_audit =
            db.record_audit(9_300 + n as u64, "operator (uid 1, ana)", action, "bob", "détail").expect("records");
    }
    Past {
        bob,
        carol,
        eve,
        dave,
        garden: garden.id,
        newest_conversation: dave_dm.id,
        newest_removal: pending,
        newest_audit,
    }
}

/// Everything a server can read of a store, through the server's own reads.
#[derive(Debug, PartialEq)]
struct Everything {
    accounts: Vec<(Nick, u64, Option<Credentials>)>,
    conversations: Vec<ConvRow>,
    members: Vec<Vec<Nick>>,
    memberships: Vec<Vec<(u64, ConvRow)>>,
    messages: Vec<Vec<StoredMessage>>,
    pending: Vec<RemovalRequest>,
    suspensions: Vec<Suspension>,
    audit: Vec<AuditEntry>,
    operators: Vec<Nick>,
    moderation: Vec<RoomModeration>,
    standings: Vec<Vec<RoomStanding>>,
    away: Vec<Option<String>>,
    read_markers: Vec<Vec<(ConvId, Nick, u64)>>,
    /// What each account's searches find (by conversation and seq, sorted: each store has its own order).
    found: Vec<Vec<(String, u64)>>,
}

fn everything(fresh: &Fresh) -> Everything {
    fresh.writer().index_for_search().expect("indexes");
    let db = fresh.reader();
    let accounts: Vec<(Nick, u64, Option<Credentials>)> = db
        .accounts()
        .expect("lists")
        .into_iter()
        .map(|(nick, created)| {
            let credentials = db.credentials(&nick).expect("reads");
            (nick, created, credentials)
        })
        .collect();
    let conversations = db.all_conversations().expect("lists");
    let account_ids: Vec<AccountId> = accounts
        .iter()
        .map(|(_, _, credentials)| credentials.as_ref().map_or(AccountId(0), |c| c.account.id))
        .collect();
    Everything {
        members: conversations.iter().map(|c| db.members(c.id).expect("lists")).collect(),
        memberships: account_ids.iter().map(|&id| db.memberships_of(id).expect("lists")).collect(),
        standings: account_ids.iter().map(|&id| db.standings_of(id).expect("lists")).collect(),
        moderation: conversations.iter().map(|c| db.room_moderation(c.id).expect("reads")).collect(),
        operators: db.operators().expect("lists"),
        away: account_ids.iter().map(|&id| db.away_of(id).expect("reads")).collect(),
        read_markers: account_ids.iter().map(|&id| db.read_markers_of(id).expect("reads")).collect(),
        messages: conversations.iter().map(|c| db.messages_after(c, 0, 10_000).expect("reads")).collect(),
        pending: db.pending_removals().expect("lists"),
        suspensions: db.suspensions(0).expect("lists"),
        audit: db.audit_log(100).expect("reads"),
        found: account_ids
            .iter()
            .map(|&id| {
                let mut found: Vec<(String, u64)> = ["garden", "carol", "edited"]
                    .into_iter()
                    .flat_map(|word| {
                        let words = [word.to_owned()];
                        let search = SearchRequest { words: &words, within: None, before: None, limit: 50 };
                        db.search(id, &search).expect("searches").hits
                    })
                    .map(|hit| (hit.message.key.to_column(), hit.message.seq))
                    .collect();
                found.sort();
                found
            })
            .collect(),
        accounts,
        conversations,
    }
}

/// A server on the copy carries on: the next seq, a retry recognised, ids above the old ones (removed included),
/// seq floors of direct conversations, the pending removal.
fn carries_on(fresh: &Fresh, past: &Past) {
    let db = fresh.writer();
    let db = &*db;
    let room = lobby(db);
    assert_eq!(room.first_seq, u64::from(LOBBY_MESSAGES) - LOBBY_KEPT + 1);
    let next = db.append(room.id, &nick("ana"), id(0, 9), "after the copy", 10_000).expect("appends");
    assert_eq!(next.seq, u64::from(LOBBY_MESSAGES) + 1, "the next seq");
    let retry = db.append(room.id, &nick("bob"), id(LOBBY_MESSAGES - 1, 1), "retried", 10_001).expect("appends");
    assert_eq!(
        retry,
        Appended { seq: u64::from(LOBBY_MESSAGES), ts: 1_000 + u64::from(LOBBY_MESSAGES - 1), duplicate: true }
    );
    let reader = fresh.reader();
    let tail: Vec<u64> = reader.messages_after(&room, 2_390, 20).expect("reads").iter().map(|m| m.seq).collect();
    assert_eq!(tail, (2_391..=2_410).collect::<Vec<_>>(), "found through the index of the copy");

    let room = db.ensure_conversation(&ConvKey::Room(RoomName::parse("new").expect("valid"))).expect("creates");
    assert!(room.id > past.newest_conversation, "a conversation id is not given out again");
    let erin = register(db, "erin");
    assert!(erin.id > past.dave.id, "an account id is not given out again, not even the removed newest");
    let dm = db.open_direct(&past.bob, &past.carol).expect("opens").expect("both exist");
    assert_eq!(db.append(dm.id, &past.carol.nick, id(1, 4), "still me", 10_002).expect("appends").seq, 5);
    let dave = register(db, "dave");
    let ana = db.account(&nick("ana")).expect("reads").expect("exists");
    let again = db.open_direct(&ana, &dave).expect("opens").expect("both exist");
    assert_eq!(again.last_seq, 2, "a new direct conversation continues after the deleted one");
    assert_eq!(db.pending_removals().expect("lists"), [RemovalRequest { id: past.newest_removal, nick: nick("ana") }]);
    assert!(db.request_removal(&nick("zed"), 10_003).expect("asks") > past.newest_removal);
    assert!(db.suspension_of(past.bob.id, 10_004).expect("reads").is_some(), "bob is still suspended");
    assert!(db.record_audit(10_005, "operator", "user add", "erin", "").expect("records") > past.newest_audit);
    assert!(db.is_operator(past.bob.id).expect("reads"), "bob is still an operator");
    assert!(!db.is_operator(dave.id).expect("reads"), "the new dave is not");
    assert!(db.standing(past.garden, past.carol.id).expect("reads").invited, "carol is still invited");
    assert!(db.set_banned(past.garden, past.eve.id, None).expect("unbans"), "eve was banned");
}

#[test]
fn a_store_goes_to_postgres_and_back_and_carries_on_in_each() {
    let source = Fresh::sqlite();
    let past = store_with_a_past(&source);
    let on_postgres = Fresh::postgres();
    // A database a server opened once: its schema and an empty #lobby are no data.
    drop(on_postgres.writer());
    let mut seen = Vec::new();
    let summary = copy(&source.location, &on_postgres.location, CopyOptions::default(), &mut |p| seen.push(p))
        .expect("copies to PostgreSQL");
    let expected = Counts {
        accounts: 4,
        conversations: 3,
        members: 3 + 2 + 2,
        cursors: 3 + 2 + 2,
        direct_seq_floors: 2,
        account_removals: 2,
        pending_removals: 1,
        suspensions: 2,
        audit_entries: 3,
        operators: 1,
        room_settings: 1,
        room_roles: 2,
        room_bans: 1,
        room_mutes: 1,
        room_invites: 1,
        away: 1,
        read_markers: 3,
        messages: LOBBY_KEPT + 6 + 1,
    };
    assert_eq!(summary.counts, expected);
    let total = expected.rows();
    for phase in [Phase::Copying, Phase::Verifying] {
        assert_eq!(seen.iter().rfind(|p| p.phase == phase), Some(&Progress { phase, done: total, total }));
    }
    let back = Fresh::sqlite();
    let summary = copy_quietly(&on_postgres, &back, false).expect("copies back to SQLite");
    assert_eq!(summary.counts, expected);

    let original = everything(&source);
    assert_eq!(original.messages.iter().map(Vec::len).sum::<usize>() as u64, expected.messages);
    assert!(original.found.iter().map(Vec::len).sum::<usize>() > 5, "searches find something: {:?}", original.found);
    assert_eq!(everything(&on_postgres), original);
    assert_eq!(everything(&back), original);
    carries_on(&on_postgres, &past);
    carries_on(&back, &past);
}

/// A target holding data is refused and left alone; `replace` empties it in the copy's transaction.
fn a_target_that_holds_data_is_refused_unless_replaced(source: Fresh, target: Fresh) {
    {
        let db = source.writer();
        let ana = register(&*db, "ana");
        db.append(lobby(&*db).id, &ana.nick, id(1, 1), "from the source", 1).expect("appends");
    }
    {
        let db = target.writer();
        let zoe = register(&*db, "zoe");
        db.append(lobby(&*db).id, &zoe.nick, id(1, 2), "from the target", 1).expect("appends");
    }
    let refused = copy_quietly(&source, &target, false);
    assert!(
        matches!(&refused, Err(CopyError::TargetHoldsData { found, .. }) if found.contains("1 accounts") && found.contains("1 messages")),
        "{refused:?}"
    );
    assert!(refused.map_err(|e| e.to_string()).err().is_some_and(|why| why.contains("--replace")));
    assert_eq!(everything(&target).accounts.len(), 1, "left alone");
    assert!(target.reader().account(&nick("zoe")).expect("reads").is_some());

    copy_quietly(&source, &target, true).expect("replaces");
    assert_eq!(everything(&target), everything(&source));
    assert!(target.reader().account(&nick("zoe")).expect("reads").is_none(), "what was there is gone");
    assert!(matches!(copy_quietly(&source, &target, false), Err(CopyError::TargetHoldsData { .. })));
}

#[test]
fn a_sqlite_target_that_holds_data_is_refused_unless_replaced() {
    a_target_that_holds_data_is_refused_unless_replaced(Fresh::sqlite(), Fresh::sqlite());
}

#[test]
fn a_postgres_target_that_holds_data_is_refused_unless_replaced() {
    a_target_that_holds_data_is_refused_unless_replaced(Fresh::postgres(), Fresh::postgres());
}

/// A copy that fails half-way (an unreadable message in the source) leaves the target as it was, even when it
/// was to be replaced.
#[test]
fn a_copy_that_fails_leaves_the_target_as_it_was() {
    let source = Fresh::sqlite();
    {
        let db = source.writer();
        let ana = register(&*db, "ana");
        for n in 0..1_500 {
            db.append(lobby(&*db).id, &ana.nick, id(n, 1), "fine", 1).expect("appends");
        }
    }
    let Location::Sqlite(path) = &source.location else { unreachable!("a SQLite store") };
    Connection::open(path)
        .and_then(|conn| {
            conn.execute(
                "INSERT INTO messages (conversation, seq, sender, client_id, ts, text)
                 SELECT id, last_seq + 1, 'ana', x'0102', 1, 'an id two bytes long' FROM conversations WHERE key = '#lobby'",
                [],
            )?;
            conn.execute("UPDATE conversations SET last_seq = last_seq + 1 WHERE key = '#lobby'", [])
        })
        .expect("spoils the source");
    let target = Fresh::postgres();
    register(&*target.writer(), "zoe");
    let failed = copy_quietly(&source, &target, true);
    assert!(matches!(failed, Err(CopyError::Store(StoreError::Corrupt(_)))), "{failed:?}");
    let left = everything(&target);
    assert_eq!(left.accounts.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["zoe"]);
    assert!(left.messages.iter().all(Vec::is_empty));
}

#[test]
fn bad_sources_and_targets_are_refused_with_what_is_wrong() {
    let no_store = Fresh::sqlite();
    let target = Fresh::sqlite();
    let refused = copy_quietly(&no_store, &target, false);
    assert!(matches!(refused, Err(CopyError::NoSource(_))), "{refused:?}");
    let Location::Sqlite(path) = &no_store.location else { unreachable!("a SQLite store") };
    assert!(!path.exists(), "no store is created at the source");

    let empty_database = Fresh::postgres();
    let refused = copy_quietly(&empty_database, &target, false);
    assert!(matches!(&refused, Err(CopyError::NoSource(why)) if why.contains("no Palomar tables")), "{refused:?}");
    let Location::Postgres(settings) = &empty_database.location else { unreachable!("a PostgreSQL store") };
    assert!(PostgresStore::open_existing(settings).expect("connects").is_none(), "nothing created at the source");

    let source = Fresh::sqlite();
    register(&*source.writer(), "ana");
    assert!(matches!(copy_quietly(&source, &source, true), Err(CopyError::SameStore(_))));
    let on_postgres = Fresh::postgres();
    copy_quietly(&source, &on_postgres, false).expect("copies");
    let same_database = Location::Postgres(Box::new(
        PostgresSettings::parse(&format!("{settings}?connect_timeout=10", settings = settings_of(&on_postgres)), None)
            .expect("a URL"),
    ));
    let refused = copy(&on_postgres.location, &same_database, CopyOptions { replace: true }, &mut |_| {});
    assert!(matches!(refused, Err(CopyError::SameStore(_))), "the same database under another URL: {refused:?}");

    let unreachable = Location::Postgres(Box::new(
        PostgresSettings::parse("postgres://postgres@127.0.0.1:1/palomar", None).expect("a URL"),
    ));
    let refused = copy(&unreachable, &target.location, CopyOptions::default(), &mut |_| {});
    assert!(matches!(refused, Err(CopyError::Open { role: "source", .. })), "{refused:?}");
    let refused = copy(&source.location, &unreachable, CopyOptions::default(), &mut |_| {});
    assert!(matches!(refused, Err(CopyError::Open { role: "target", .. })), "{refused:?}");

    let newer = Fresh::sqlite();
    drop(newer.writer());
    let Location::Sqlite(newer_path) = &newer.location else { unreachable!("a SQLite store") };
    Connection::open(newer_path).and_then(|conn| conn.pragma_update(None, "user_version", 99)).expect("updates");
    let refused = copy_quietly(&newer, &target, false);
    assert!(
        matches!(&refused, Err(CopyError::Open { role: "source", error: StoreError::Corrupt(why), .. }) if why.contains("newer")),
        "{refused:?}"
    );
    let refused = copy_quietly(&source, &newer, true);
    assert!(matches!(&refused, Err(CopyError::Open { role: "target", .. })), "{refused:?}");
}

fn settings_of(fresh: &Fresh) -> String {
    match &fresh.location {
        Location::Postgres(settings) => settings.to_string(),
        Location::Sqlite(_) => unreachable!("a PostgreSQL store"),
    }
}

/// A server connected to either database stops the copy before it writes anything.
#[test]
fn a_postgres_store_with_a_server_connected_is_refused() {
    let source = Fresh::postgres();
    register(&*source.writer(), "ana");
    let target = Fresh::postgres();
    for (store, role) in [(&source, "source"), (&target, "target")] {
        let server = store.location.clone().with_application(SERVER_APPLICATION).open(crate::Durability::Full);
        let _server = server.expect("a server's connection");
        let refused = copy_quietly(&source, &target, false);
        assert!(matches!(refused, Err(CopyError::ServersConnected { servers: 1, .. })), "{role}: {refused:?}");
    }
    assert!(target.reader().account(&nick("ana")).expect("reads").is_none());
    copy_quietly(&source, &target, false).expect("copies once they are gone");
}

#[test]
fn a_difference_is_named_by_table_and_conversation() {
    let table = |rows| TableDigest { name: "accounts", rows, hash: rows };
    let conversation = |messages| ConvDigest { id: 7, last_seq: 9, first_seq: 1, messages, max_seq: messages, hash: 0 };
    let sent = Digest { tables: vec![table(3)], conversations: vec![conversation(9)] };
    let read_back = Digest { tables: vec![table(2)], conversations: vec![conversation(8)] };
    let counts = Counts::default();
    assert!(compare(&counts, &counts, &sent, &sent).is_ok());
    let Err(CopyError::Mismatch(why)) = compare(&counts, &counts, &sent, &read_back) else { panic!("a mismatch") };
    assert!(why.contains("table accounts: 3 rows went out, 2 came back"), "{why}");
    assert!(why.contains("conversation 7: 9 messages up to seq 9"), "{why}");
}
