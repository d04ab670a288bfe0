//! What every store must do, checked on each: every test here runs once on a fresh SQLite file and once on a
//! fresh PostgreSQL database (see `palomar-test-postgres` for which server). What only one of them does (SQLite's
//! migrations of old files, PostgreSQL's writers on several nodes) is tested beside it.

use palomar_proto::{MessageId, MessageKind, Nick, Revision, Role, RoomListing, RoomName};
use palomar_test_postgres::TestDatabase;

use crate::Store;
use crate::keys::{Account, AccountId, ConvId, ConvKey};
use crate::location::{Location, PostgresSettings};
use crate::records::{
    Appended, ConvRow, DeletedDirect, Durability, NewMessage, RoomModeration, RoomSettings, RoomStanding, Sanction,
    SearchPage, SearchRequest, Standing, StoreError, StoredMessage,
};

/// A fresh, empty store, removed when this is dropped.
pub(crate) struct Fresh {
    pub(crate) location: Location,
    _sqlite_dir: Option<tempfile::TempDir>,
    pub(crate) postgres: Option<TestDatabase>,
}

impl Fresh {
    pub(crate) fn sqlite() -> Fresh {
        let dir = tempfile::tempdir().expect("temp dir");
        Fresh { location: Location::Sqlite(dir.path().join("store.sqlite")), _sqlite_dir: Some(dir), postgres: None }
    }

    pub(crate) fn postgres() -> Fresh {
        let database = TestDatabase::create();
        let settings = PostgresSettings::parse(database.url(), None).expect("a test database URL");
        Fresh { location: Location::Postgres(Box::new(settings)), _sqlite_dir: None, postgres: Some(database) }
    }

    /// A writer's connection (the first one creates the schema).
    pub(crate) fn writer(&self) -> Box<dyn Store> {
        self.location.open(Durability::Full).expect("opens the store")
    }

    pub(crate) fn reader(&self) -> Box<dyn Store> {
        self.location.open_reader().expect("opens a reader")
    }
}

/// Runs each named test (a function taking a [`Fresh`] store) on both stores.
macro_rules! on_both_stores {
    ($($test:ident),+ $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $test() { super::$test(super::Fresh::sqlite()) } )+
        }
        mod on_postgres {
            $( #[test] fn $test() { super::$test(super::Fresh::postgres()) } )+
        }
    };
}

on_both_stores!(
    appends_get_gap_free_seqs_and_retries_are_recognised,
    a_rolled_back_append_leaves_no_gap,
    a_commit_writes_the_counters_that_other_connections_read,
    reads_agree_with_a_model_across_commits_rollbacks_retention_and_reopening,
    retention_moves_the_first_seq,
    cursors_only_move_forward_and_membership_sets_the_start,
    accounts_are_unique_and_ids_are_never_given_out_again,
    a_removed_accounts_direct_conversations_go_with_it_and_its_nickname_starts_anew,
    a_message_after_the_newest_ones_were_deleted_is_found,
    an_append_to_a_deleted_conversation_fails_alone,
    removals_asked_of_a_server_are_answered_once_done,
    a_retry_through_another_connection_is_recognised,
    a_batch_of_appends_is_stored_as_one_by_one_would_be,
    a_batch_with_retries_in_it_still_leaves_no_gap,
    cursors_saved_together_move_as_one_by_one_would,
    a_write_probe_writes_and_changes_nothing,
    suspensions_are_replaced_lifted_expire_and_go_with_their_account,
    the_audit_log_keeps_its_order_and_gives_out_no_id_twice,
    operators_are_made_unmade_and_listed,
    room_settings_are_the_defaults_until_set,
    roles_are_given_and_member_takes_them_away,
    mutes_are_replaced_and_lifted_and_say_whether_anything_changed,
    a_ban_ends_membership_role_and_invitation_until_lifted,
    invitations_are_given_and_used_up,
    standings_of_an_account_are_its_rooms_with_something_set,
    room_moderation_lists_everything_set_in_a_room_by_nickname,
    a_removed_account_and_a_deleted_conversation_take_their_moderation_with_them,
    the_room_listing_pages_by_name_counts_members_and_hides_invite_only_rooms_from_outsiders,
    edits_and_deletions_revise_the_message_they_refer_to,
    replies_and_reactions_leave_their_message_and_a_deletion_blanks_its_reactions,
    a_message_is_found_by_seq_in_the_index_and_in_the_tail,
    an_account_knows_when_it_was_created,
    search_finds_current_texts_in_the_searchers_conversations_newest_first_by_pages,
    search_follows_retention_and_removed_accounts,
    away_messages_are_set_cleared_kept_across_reopening_and_go_with_their_account,
    read_markers_only_move_forward_and_only_while_a_member,
    read_markers_end_with_the_membership_the_account_and_the_conversation,
);

pub(crate) fn nick(s: &str) -> Nick {
    Nick::parse(s).expect("valid")
}

pub(crate) fn lobby(db: &dyn Store) -> ConvRow {
    db.conversation(&ConvKey::Room(RoomName::lobby())).expect("reads").expect("lobby exists")
}

fn account(db: &dyn Store, who: &str) -> Account {
    db.create_account(&nick(who), "hash", 1).expect("creates").expect("the nickname is free")
}

fn send(db: &dyn Store, conv: ConvId, from: &Account, id: u8, text: &str) -> u64 {
    db.append(conv, &from.nick, MessageId([id; 16]), text, 1).expect("appends").seq
}

fn appends_get_gap_free_seqs_and_retries_are_recognised(store: Fresh) {
    let db = store.writer();
    let conv = lobby(&*db);
    db.begin().expect("begin");
    let first = db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 10).expect("append");
    let second = db.append(conv.id, &nick("ana"), MessageId([2; 16]), "two", 11).expect("append");
    let retry = db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 12).expect("append");
    db.commit().expect("commit");
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(retry, Appended { seq: 1, ts: 10, duplicate: true });
    let other_sender =
        db.append(conv.id, &nick("bob"), MessageId([1; 16]), "same id, other sender", 13).expect("append");
    assert_eq!(other_sender.seq, 3);
    let page = db.messages_after(&conv, 1, 10).expect("read");
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);
    let older = db.messages_before(&conv, 3, 1).expect("read");
    assert_eq!(older.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["two"]);
}

fn a_rolled_back_append_leaves_no_gap(store: Fresh) {
    let db = store.writer();
    let conv = lobby(&*db);
    db.begin().expect("begin");
    db.append(conv.id, &nick("ana"), MessageId([1; 16]), "lost", 1).expect("append");
    db.rollback();
    let appended = db.append(conv.id, &nick("ana"), MessageId([2; 16]), "kept", 2).expect("append");
    assert_eq!(appended.seq, 1);
}

fn a_write_probe_writes_and_changes_nothing(store: Fresh) {
    let db = store.writer();
    let conv = lobby(&*db);
    let wal = |location: &Location| match location {
        Location::Sqlite(path) => std::fs::metadata(path.with_extension("sqlite-wal")).map_or(0, |m| m.len()),
        Location::Postgres(_) => 0,
    };
    let before = wal(&store.location);
    db.begin().expect("begin");
    db.write_probe().expect("probes");
    db.commit().expect("commit");
    if let Location::Sqlite(_) = store.location {
        assert!(wal(&store.location) > before, "the commit went through the write-ahead log");
    }
    assert_eq!(lobby(&*db), conv, "nothing changed");
    assert_eq!(db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 1).expect("append").seq, 1);
}

fn a_commit_writes_the_counters_that_other_connections_read(store: Fresh) {
    let db = store.writer();
    let conv = lobby(&*db);
    db.begin().expect("begin");
    db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 1).expect("append");
    db.append(conv.id, &nick("ana"), MessageId([2; 16]), "two", 1).expect("append");
    assert_eq!(lobby(&*db).last_seq, 2, "the writer sees its own transaction");
    let reader = store.reader();
    assert_eq!(lobby(&*reader).last_seq, 0, "nothing is visible before the commit");
    assert!(reader.messages_after(&conv, 0, 10).expect("reads").is_empty());
    db.commit().expect("commit");
    assert_eq!(lobby(&*reader).last_seq, 2);
    drop(db);
    let reopened = store.writer();
    assert_eq!(reopened.append(conv.id, &nick("bob"), MessageId([3; 16]), "three", 2).expect("append").seq, 3);
}

/// A message as the model of the test below keeps it: its seq and its text.
type Modelled = (u64, String);

fn page(messages: Vec<StoredMessage>) -> Vec<Modelled> {
    messages.into_iter().map(|m| (m.seq, m.text)).collect()
}

/// Appends in groups to several conversations, with rollbacks, retention and reopening, and checks every kind
/// of read against a plain list of what was committed. On SQLite the run crosses several batches of the index
/// of runs (its `UNINDEXED_MAX`), so reads come from runs, from the tail and from both.
fn reads_agree_with_a_model_across_commits_rollbacks_retention_and_reopening(store: Fresh) {
    let mut db = store.writer();
    let rooms: Vec<ConvRow> = ["lobby", "a", "b", "c"]
        .iter()
        .map(|name| db.ensure_conversation(&ConvKey::Room(RoomName::parse(name).expect("valid"))).expect("creates"))
        .collect();
    let mut model: Vec<Vec<Modelled>> = vec![Vec::new(); rooms.len()];
    let mut state = 0x2545_f491_u64;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut next_id = 0u64;
    for round in 0..100 {
        db.begin().expect("begin");
        let mut staged: Vec<(usize, Modelled)> = Vec::new();
        for _ in 0..random(400) {
            let room = random([4, 2, 1][round % 3]) as usize;
            next_id += 1;
            let mut id = [0; 16];
            id[..8].copy_from_slice(&next_id.to_be_bytes());
            let text = format!("m{next_id}");
            let appended = db.append(rooms[room].id, &nick("ana"), MessageId(id), &text, 1).expect("append");
            staged.push((room, (appended.seq, text)));
        }
        if random(8) == 0 {
            db.rollback();
        } else {
            db.commit().expect("commit");
            for (room, message) in staged {
                model[room].push(message);
            }
        }
        if random(10) == 0 {
            let keep = if random(4) == 0 { 0 } else { 50 + random(300) };
            db.prune(keep).expect("prune");
            for messages in &mut model {
                let cut = messages.len().saturating_sub(keep as usize);
                messages.drain(..cut);
            }
        }
        if random(6) == 0 {
            drop(db);
            db = store.writer();
        }
        let reader = store.reader();
        for (room, messages) in model.iter().enumerate() {
            let conv = reader.conversation_by_id(rooms[room].id).expect("reads").expect("exists");
            let newest = conv.last_seq;
            assert_eq!(newest, messages.last().map_or(newest, |m| m.0), "last seq of room {room}");
            let first = messages.first().map_or(newest + 1, |m| m.0);
            assert_eq!(conv.first_seq, first, "first seq of room {room}");
            let after = random(newest + 2);
            let limit = 1 + random(300) as u32;
            let expected: Vec<Modelled> =
                messages.iter().filter(|m| m.0 > after).take(limit as usize).cloned().collect();
            assert_eq!(
                page(reader.messages_after(&conv, after, limit).expect("read")),
                expected,
                "room {room} after {after}"
            );
            assert_eq!(page(db.messages_after(&conv, after, limit).expect("read")), expected, "the writer reads alike");
            let before = random(newest + 2);
            let older: Vec<&Modelled> = messages.iter().filter(|m| m.0 < before).collect();
            let expected: Vec<Modelled> =
                older[older.len().saturating_sub(limit as usize)..].iter().map(|m| (*m).clone()).collect();
            assert_eq!(
                page(reader.messages_before(&conv, before, limit).expect("read")),
                expected,
                "room {room} before {before}"
            );
        }
    }
    assert!(next_id > 3 * crate::sqlite::UNINDEXED_MAX as u64, "the test crossed several batches of the index");
}

fn retention_moves_the_first_seq(store: Fresh) {
    let db = store.writer();
    let conv = lobby(&*db);
    for i in 0..10u8 {
        db.append(conv.id, &nick("ana"), MessageId([i; 16]), "m", 1).expect("append");
    }
    assert_eq!(db.prune(4).expect("prune"), 6);
    let conv = lobby(&*db);
    assert_eq!((conv.first_seq, conv.last_seq), (7, 10));
    assert_eq!(db.messages_after(&conv, 0, 100).expect("read").len(), 4);
    assert_eq!(db.prune(4).expect("prune again"), 0);
}

fn cursors_only_move_forward_and_membership_sets_the_start(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let conv = lobby(db);
    let ana = account(db, "ana");
    assert!(db.add_member(conv.id, ana.id, 5).expect("add"));
    assert!(!db.add_member(conv.id, ana.id, 0).expect("add again"));
    assert_eq!(db.cursor(ana.id, conv.id).expect("cursor"), 5);
    db.advance_cursor(ana.id, conv.id, 9).expect("advance");
    db.advance_cursor(ana.id, conv.id, 7).expect("stale ack");
    assert_eq!(db.cursor(ana.id, conv.id).expect("cursor"), 9);
    assert_eq!(db.memberships_of(ana.id).expect("list"), vec![(9, lobby(db))]);
    assert!(db.is_member(conv.id, ana.id).expect("reads"));
    assert_eq!(db.room_count(ana.id).expect("counts"), 1);
    assert!(db.remove_member(conv.id, ana.id).expect("remove"));
    assert!(db.conversations_of(ana.id).expect("list").is_empty());
    db.advance_cursor(ana.id, conv.id, 12).expect("a late ack");
    assert_eq!(db.cursor(ana.id, conv.id).expect("cursor"), 0, "no cursor outside a membership");
    assert!(!db.add_member(conv.id, AccountId(999), 0).expect("add"), "no member without an account");
}

fn accounts_are_unique_and_ids_are_never_given_out_again(store: Fresh) {
    let db = store.writer();
    let first = account(&*db, "ana");
    assert_eq!(db.create_account(&nick("ana"), "h2", 2).expect("create"), None, "taken");
    assert_eq!(db.credentials(&nick("ana")).expect("read").map(|c| c.password_hash).as_deref(), Some("hash"));
    assert!(db.set_password_hash(&nick("ana"), "h3").expect("set"));
    assert!(!db.set_password_hash(&nick("zed"), "h3").expect("set"), "no such account");
    for who in ["ab", "a_c", "a-b"] {
        account(&*db, who);
    }
    let names: Vec<String> = db.accounts().expect("list").into_iter().map(|(nick, _)| nick.to_string()).collect();
    assert_eq!(names, ["a-b", "a_c", "ab", "ana"], "by nickname, in byte order whatever the database's collation");
    assert_eq!(db.remove_account(&nick("ana")).expect("remove").map(|r| r.account), Some(first.clone()));
    assert_eq!(db.credentials(&nick("ana")).expect("read"), None);
    assert_eq!(db.remove_account(&nick("ana")).expect("remove"), None);
    let second = account(&*db, "ana");
    assert!(second.id > first.id, "a new account of the nickname is a new identity");
    let bob = account(&*db, "bob");
    db.remove_account(&nick("bob")).expect("remove");
    drop(db);
    let db = store.writer();
    assert!(account(&*db, "carol").id > bob.id, "not even the newest id comes back after a restart");
}

fn a_removed_accounts_direct_conversations_go_with_it_and_its_nickname_starts_anew(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    assert_eq!(db.open_direct(&bob, &ana).expect("opens"), Some(dm.clone()), "one conversation for both");
    for i in 1..=3 {
        send(db, dm.id, &ana, i, "a secret");
    }
    let lobby_id = lobby(db).id;
    db.add_member(lobby_id, ana.id, 0).expect("joins");
    db.add_member(lobby_id, bob.id, 0).expect("joins");
    send(db, lobby_id, &ana, 9, "hello room");

    let removed = db.remove_account(&nick("ana")).expect("removes").expect("existed");
    assert_eq!(removed.deleted_directs, vec![DeletedDirect { conversation: dm.id, peer: bob.clone() }]);
    assert_eq!(db.conversation_by_id(dm.id).expect("reads"), None);
    assert_eq!(db.conversations_of(bob.id).expect("list"), vec![lobby(db)], "bob keeps the room only");
    assert_eq!(db.members(lobby_id).expect("members"), vec![nick("bob")]);
    let room = db.messages_after(&lobby(db), 0, 10).expect("reads");
    assert_eq!(room.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["hello room"], "room messages stay");
    assert_eq!(db.open_direct(&ana, &bob).expect("opens"), None, "not with a removed account");

    let stranger = account(db, "ana");
    assert!(db.conversations_of(stranger.id).expect("list").is_empty(), "no past");
    let fresh = db.open_direct(&stranger, &bob).expect("opens").expect("both exist");
    assert_ne!(fresh.id, dm.id);
    assert_eq!((fresh.first_seq, fresh.last_seq), (1, 3), "seqs continue after the deleted conversation's");
    assert!(db.messages_after(&fresh, 0, 10).expect("reads").is_empty());
    assert_eq!(db.cursor(bob.id, fresh.id).expect("cursor"), 3);
    assert_eq!(send(db, fresh.id, &stranger, 4, "hi, I am new"), 4);
    assert_eq!(db.messages_before(&fresh, 100, 10).expect("reads").len(), 1);
    assert_eq!(db.messages_after(&fresh, 0, 10).expect("reads").len(), 1, "the new message is found");
}

fn a_message_after_the_newest_ones_were_deleted_is_found(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    send(db, dm.id, &ana, 1, "the newest message of the log");
    db.remove_account(&nick("ana")).expect("removes");
    let lobby = lobby(db);
    send(db, lobby.id, &bob, 2, "its row id is given out again");
    assert_eq!(db.messages_after(&lobby, 0, 10).expect("reads").len(), 1);
}

fn an_append_to_a_deleted_conversation_fails_alone(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    send(db, dm.id, &bob, 1, "one");
    db.remove_account(&nick("ana")).expect("removes");
    db.begin().expect("begin");
    db.lock_for_appends(&[lobby(db).id, dm.id]).expect("locks what is left");
    let late = db.append(dm.id, &bob.nick, MessageId([2; 16]), "too late", 1);
    assert!(matches!(late, Err(StoreError::NoConversation(id)) if id == dm.id));
    assert_eq!(db.append(lobby(db).id, &bob.nick, MessageId([3; 16]), "fine", 1).expect("appends").seq, 1);
    db.commit().expect("the rest commits");
    assert_eq!(lobby(db).last_seq, 1);
}

fn removals_asked_of_a_server_are_answered_once_done(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    account(db, "ana");
    let asked = db.request_removal(&nick("ana"), 5).expect("asks");
    let unknown = db.request_removal(&nick("zed"), 5).expect("asks");
    assert_eq!(db.removal_outcome(asked).expect("reads"), None);
    let pending = db.pending_removals().expect("reads");
    assert_eq!(pending.iter().map(|r| (r.id, r.nick.as_str())).collect::<Vec<_>>(), [(asked, "ana"), (unknown, "zed")]);
    db.finish_removal(asked, true, 6).expect("records");
    db.finish_removal(unknown, false, 6).expect("records");
    db.finish_removal(asked, false, 7).expect("a second server's late answer");
    assert_eq!(db.removal_outcome(asked).expect("reads"), Some(true), "the first answer stands");
    assert_eq!(db.removal_outcome(unknown).expect("reads"), Some(false));
    assert!(db.pending_removals().expect("reads").is_empty());
}

/// A client that sent through one server and retries through another (or the same one after a restart): the
/// retry is recognised whichever connection stores it.
fn a_retry_through_another_connection_is_recognised(store: Fresh) {
    let first = store.writer();
    let conv = lobby(&*first);
    let sent = first.append(conv.id, &nick("ana"), MessageId([7; 16]), "once", 3).expect("appends");
    drop(first);
    let second = store.writer();
    let retry = second.append(conv.id, &nick("ana"), MessageId([7; 16]), "once", 4).expect("appends");
    assert_eq!(retry, Appended { seq: sent.seq, ts: 3, duplicate: true });
    assert_eq!(lobby(&*second).last_seq, 1);
    assert!(second.sent_before(&nick("ana"), MessageId([7; 16])).expect("reads"));
    assert!(!second.sent_before(&nick("bob"), MessageId([7; 16])).expect("reads"), "ids are the sender's own");
    assert!(!second.sent_before(&nick("ana"), MessageId([8; 16])).expect("reads"));
}

fn new_message<'a>(conversation: ConvId, sender: &'a Nick, id: u8, text: &'a str) -> NewMessage<'a> {
    NewMessage { conversation, sender, id: MessageId([id; 16]), text, kind: MessageKind::Text }
}

/// Several conversations in one batch, one of them deleted meanwhile: each message gets the seq it would get
/// alone, the deleted conversation's is refused alone, and the counters other connections read move.
fn a_batch_of_appends_is_stored_as_one_by_one_would_be(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    let room = lobby(db);
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    let gone = db.open_direct(&account(db, "cy"), &bob).expect("opens").expect("both exist");
    send(db, room.id, &ana, 1, "before");
    db.remove_account(&nick("cy")).expect("removes");
    db.begin().expect("begin");
    db.lock_for_appends(&[room.id, dm.id, gone.id]).expect("locks");
    let batch = [
        new_message(room.id, &ana.nick, 2, "r2"),
        new_message(dm.id, &bob.nick, 3, "d1"),
        new_message(gone.id, &bob.nick, 4, "lost"),
        new_message(room.id, &bob.nick, 5, "r3"),
        new_message(dm.id, &ana.nick, 6, "d2"),
    ];
    let outcomes = db.append_all(&batch, 42).expect("appends");
    db.commit().expect("commits");
    let seqs: Vec<Option<u64>> = outcomes.iter().map(|outcome| outcome.as_ref().map(|appended| appended.seq)).collect();
    assert_eq!(seqs, [Some(2), Some(1), None, Some(3), Some(2)]);
    assert!(outcomes.iter().flatten().all(|appended| !appended.duplicate && appended.ts == 42));
    let reader = store.reader();
    assert_eq!(lobby(&*reader).last_seq, 3);
    let texts = |conv: &ConvRow| -> Vec<String> {
        reader
            .messages_after(conv, 0, 10)
            .expect("reads")
            .into_iter()
            .map(|m| format!("{}:{}", m.from, m.text))
            .collect()
    };
    assert_eq!(texts(&room), ["ana:before", "ana:r2", "bob:r3"]);
    assert_eq!(texts(&dm), ["bob:d1", "ana:d2"]);
    let outside = db.append_all(&[new_message(room.id, &ana.nick, 7, "alone")], 43).expect("appends");
    assert_eq!(outside[0].as_ref().map(|appended| appended.seq), Some(4), "outside a transaction it commits itself");
    assert_eq!(lobby(&*reader).last_seq, 4);
}

/// A batch holding a retry of a stored message and the same message twice: the retries get the first copy's
/// seq and the others follow without a gap.
fn a_batch_with_retries_in_it_still_leaves_no_gap(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let ana = account(db, "ana");
    let room = lobby(db);
    assert_eq!(send(db, room.id, &ana, 1, "one"), 1);
    db.begin().expect("begin");
    db.lock_for_appends(&[room.id]).expect("locks");
    let batch = [
        new_message(room.id, &ana.nick, 2, "two"),
        new_message(room.id, &ana.nick, 1, "one"),
        new_message(room.id, &ana.nick, 3, "three"),
        new_message(room.id, &ana.nick, 3, "three"),
        new_message(room.id, &ana.nick, 4, "four"),
    ];
    let outcomes: Vec<(u64, bool)> = db
        .append_all(&batch, 9)
        .expect("appends")
        .into_iter()
        .map(|outcome| outcome.map(|appended| (appended.seq, appended.duplicate)).expect("the room exists"))
        .collect();
    db.commit().expect("commits");
    assert_eq!(outcomes, [(2, false), (1, true), (3, false), (3, true), (4, false)]);
    let stored: Vec<(u64, String)> = page(db.messages_after(&room, 0, 10).expect("reads"));
    assert_eq!(stored, [(1, "one".into()), (2, "two".into()), (3, "three".into()), (4, "four".into())]);
    assert_eq!(lobby(db).last_seq, 4);
}

fn cursors_saved_together_move_as_one_by_one_would(store: Fresh) {
    let db = store.writer();
    let db = &*db;
    let room = lobby(db);
    let (ana, bob, gone) = (account(db, "ana"), account(db, "bob"), account(db, "cy"));
    for who in [&ana, &bob] {
        db.add_member(room.id, who.id, 5).expect("adds");
    }
    db.begin().expect("begin");
    db.advance_cursors(&[(bob.id, room.id, 8), (ana.id, room.id, 3), (gone.id, room.id, 9)]).expect("saves");
    db.commit().expect("commits");
    assert_eq!(db.cursor(ana.id, room.id).expect("reads"), 5, "never backwards");
    assert_eq!(db.cursor(bob.id, room.id).expect("reads"), 8);
    assert_eq!(db.cursor(gone.id, room.id).expect("reads"), 0, "no cursor outside a membership");
    db.advance_cursors(&[]).expect("nothing to save");
}

fn suspensions_are_replaced_lifted_expire_and_go_with_their_account(fresh: Fresh) {
    let db = fresh.writer();
    let ana = db.create_account(&nick("ana"), "h", 1).expect("creates").expect("new");
    db.create_account(&nick("bob"), "h", 1).expect("creates").expect("new");
    assert_eq!(db.suspend(&nick("cy"), None, "no one", 10).expect("suspends"), None);
    assert_eq!(db.suspend(&nick("ana"), Some(100), "spam", 10).expect("suspends"), Some(ana.clone()));
    db.suspend(&nick("bob"), None, "abuse", 20).expect("suspends");
    let active: Vec<_> = db.suspensions(50).expect("reads").into_iter().map(|s| (s.account.nick, s.until_ms)).collect();
    assert_eq!(active, [(nick("ana"), Some(100)), (nick("bob"), None)]);
    // Expired at its `until_ms`, without anyone lifting it.
    assert_eq!(db.suspension_of(ana.id, 100).expect("reads"), None);
    db.suspend(&nick("ana"), Some(500), "spam again", 60).expect("suspends");
    let again = db.suspension_of(ana.id, 100).expect("reads").expect("replaced");
    assert_eq!((again.until_ms, again.reason.as_str(), again.since_ms), (Some(500), "spam again", 60));
    assert!(db.unsuspend(&nick("ana")).expect("lifts"));
    assert!(!db.unsuspend(&nick("ana")).expect("lifts"));
    assert!(!db.unsuspend(&nick("cy")).expect("lifts"));
    db.remove_account(&nick("bob")).expect("removes");
    let bob = db.create_account(&nick("bob"), "h", 2).expect("creates").expect("new");
    assert_eq!(db.suspension_of(bob.id, 50).expect("reads"), None);
    assert!(db.suspensions(50).expect("reads").is_empty());
}

fn the_audit_log_keeps_its_order_and_gives_out_no_id_twice(fresh: Fresh) {
    let db = fresh.writer();
    assert!(db.audit_log(10).expect("reads").is_empty());
    let ids: Vec<i64> =
        (0..5u64).map(|n| db.record_audit(n, "operator", "user add", &format!("n{n}"), "").expect("records")).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    let last = db.audit_log(3).expect("reads");
    let targets: Vec<&str> = last.iter().map(|entry| entry.target.as_str()).collect();
    assert_eq!(targets, ["n2", "n3", "n4"]);
    assert_eq!((last[2].id, last[2].at_ms, last[2].actor.as_str()), (ids[4], 4, "operator"));
    assert_eq!(db.audit_entry(ids[4]).expect("reads").as_ref(), Some(&last[2]), "one entry by its id");
    assert_eq!(db.audit_entry(ids[4] + 100).expect("reads"), None);
    let after: Vec<i64> = db.audit_entries_after(ids[1], 2).expect("reads").iter().map(|entry| entry.id).collect();
    assert_eq!(after, [ids[2], ids[3]], "the next ones, oldest first");
    assert!(db.audit_entries_after(ids[4], 10).expect("reads").is_empty());
    drop(db);
    let reopened = fresh.writer();
    assert!(reopened.record_audit(9, "operator", "user remove", "n0", "").expect("records") > ids[4]);
}

fn room(db: &dyn Store, name: &str) -> ConvId {
    db.ensure_conversation(&ConvKey::Room(RoomName::parse(name).expect("valid"))).expect("creates").id
}

fn sanction(reason: &str, by: &str, since_ms: u64) -> Sanction {
    Sanction { reason: reason.into(), by: by.into(), since_ms }
}

fn operators_are_made_unmade_and_listed(fresh: Fresh) {
    let db = fresh.writer();
    let (ana, bob) = (account(&*db, "ana"), account(&*db, "bob"));
    assert!(db.operators().expect("lists").is_empty());
    assert_eq!(db.set_operator(&nick("cy"), true).expect("sets"), None, "no such account");
    assert_eq!(db.set_operator(&nick("bob"), true).expect("sets"), Some(bob.clone()));
    assert_eq!(db.set_operator(&nick("ana"), true).expect("sets"), Some(ana.clone()));
    db.set_operator(&nick("ana"), true).expect("again, changing nothing");
    assert_eq!(db.operators().expect("lists"), [nick("ana"), nick("bob")]);
    assert!(db.is_operator(ana.id).expect("reads"));
    assert_eq!(db.set_operator(&nick("ana"), false).expect("unsets"), Some(ana.clone()));
    assert!(!db.is_operator(ana.id).expect("reads"));
    assert!(fresh.reader().is_operator(bob.id).expect("reads"), "another connection sees it");
    assert_eq!(db.operators().expect("lists"), [nick("bob")]);
}

fn room_settings_are_the_defaults_until_set(fresh: Fresh) {
    let db = fresh.writer();
    let garden = room(&*db, "garden");
    assert_eq!(db.room_settings(garden).expect("reads"), RoomSettings::default());
    let set = RoomSettings { topic: "roses ✓".into(), invite_only: true, moderated: false };
    db.set_room_settings(garden, &set).expect("sets");
    assert_eq!(fresh.reader().room_settings(garden).expect("reads"), set);
    assert_eq!(db.room_settings(lobby(&*db).id).expect("reads"), RoomSettings::default(), "one room's only");
    let changed = RoomSettings { topic: String::new(), invite_only: false, moderated: true };
    db.set_room_settings(garden, &changed).expect("sets");
    assert_eq!(db.room_settings(garden).expect("reads"), changed);
    db.set_room_settings(garden, &RoomSettings::default()).expect("sets");
    assert_eq!(db.room_settings(garden).expect("reads"), RoomSettings::default());
}

fn roles_are_given_and_member_takes_them_away(fresh: Fresh) {
    let db = fresh.writer();
    let garden = room(&*db, "garden");
    let (ana, bob, cy) = (account(&*db, "ana"), account(&*db, "bob"), account(&*db, "cy"));
    db.set_role(garden, ana.id, Role::Owner).expect("sets");
    db.set_role(garden, bob.id, Role::Moderator).expect("sets");
    db.set_role(garden, cy.id, Role::Voice).expect("sets");
    let role = |account: &Account| db.standing(garden, account.id).expect("reads").role;
    assert_eq!([role(&ana), role(&bob), role(&cy)], [Role::Owner, Role::Moderator, Role::Voice]);
    assert_eq!(db.standing(lobby(&*db).id, ana.id).expect("reads"), Standing::default(), "one room's only");
    db.set_role(garden, bob.id, Role::Voice).expect("replaces");
    assert_eq!(role(&bob), Role::Voice);
    db.set_role(garden, cy.id, Role::Member).expect("takes away");
    assert_eq!(db.standing(garden, cy.id).expect("reads"), Standing::default());
    assert_eq!(
        db.room_moderation(garden).expect("reads").roles,
        [(nick("ana"), Role::Owner), (nick("bob"), Role::Voice)],
        "a member has no row"
    );
}

fn mutes_are_replaced_and_lifted_and_say_whether_anything_changed(fresh: Fresh) {
    let db = fresh.writer();
    let garden = room(&*db, "garden");
    let ana = account(&*db, "ana");
    let first = sanction("spam", "bob", 10);
    assert!(db.set_muted(garden, ana.id, Some(&first)).expect("mutes"));
    assert_eq!(db.standing(garden, ana.id).expect("reads").muted, Some(first.clone()));
    assert!(!db.set_muted(garden, ana.id, Some(&first)).expect("mutes"), "the same mute again");
    let second = sanction("more spam", "operator (uid 0)", 20);
    assert!(db.set_muted(garden, ana.id, Some(&second)).expect("mutes"), "replaced");
    assert_eq!(fresh.reader().standing(garden, ana.id).expect("reads").muted, Some(second));
    assert!(db.set_muted(garden, ana.id, None).expect("lifts"));
    assert!(!db.set_muted(garden, ana.id, None).expect("lifts"), "nothing to lift");
    assert_eq!(db.standing(garden, ana.id).expect("reads"), Standing::default());
}

fn a_ban_ends_membership_role_and_invitation_until_lifted(fresh: Fresh) {
    let db = fresh.writer();
    let garden = room(&*db, "garden");
    let (ana, bob) = (account(&*db, "ana"), account(&*db, "bob"));
    db.add_member(garden, ana.id, 0).expect("joins");
    db.add_member(garden, bob.id, 0).expect("joins");
    send(&*db, garden, &ana, 1, "hi");
    db.advance_cursor(ana.id, garden, 1).expect("moves");
    db.set_role(garden, ana.id, Role::Moderator).expect("sets");
    db.set_invited(garden, ana.id, true).expect("invites");
    let ban = sanction("abuse", "bob", 30);
    assert!(db.set_banned(garden, ana.id, Some(&ban)).expect("bans"));
    assert!(!db.is_member(garden, ana.id).expect("reads"));
    assert_eq!(db.cursor(ana.id, garden).expect("reads"), 0, "its cursor went with the membership");
    assert_eq!(db.members(garden).expect("lists"), [nick("bob")]);
    let standing = db.standing(garden, ana.id).expect("reads");
    assert_eq!(standing, Standing { banned: Some(ban.clone()), ..Standing::default() });
    assert!(!db.set_banned(garden, ana.id, Some(&ban)).expect("bans"), "banned already, nothing else to end");
    assert!(db.set_banned(garden, bob.id, Some(&ban)).expect("bans"));
    assert!(db.set_banned(garden, ana.id, None).expect("unbans"));
    assert!(!db.set_banned(garden, ana.id, None).expect("unbans"), "no ban to lift");
    assert_eq!(db.standing(garden, ana.id).expect("reads"), Standing::default());
    assert!(!db.is_member(garden, ana.id).expect("reads"), "unbanned is not rejoined");
    assert!(db.add_member(garden, ana.id, 1).expect("joins again"));
    assert!(fresh.reader().standing(garden, bob.id).expect("reads").banned.is_some(), "bob's ban stays");
}

fn invitations_are_given_and_used_up(fresh: Fresh) {
    let db = fresh.writer();
    let garden = room(&*db, "garden");
    let ana = account(&*db, "ana");
    db.set_invited(garden, ana.id, true).expect("invites");
    db.set_invited(garden, ana.id, true).expect("invites again");
    assert!(db.standing(garden, ana.id).expect("reads").invited);
    assert_eq!(db.room_moderation(garden).expect("reads").invited, [nick("ana")]);
    db.set_invited(garden, ana.id, false).expect("uses up");
    assert!(!db.standing(garden, ana.id).expect("reads").invited);
    db.set_invited(garden, ana.id, false).expect("nothing to use up");
    assert!(db.room_moderation(garden).expect("reads").invited.is_empty());
}

fn standings_of_an_account_are_its_rooms_with_something_set(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    let rooms: Vec<ConvId> = (0..40).map(|n| room(db, &format!("room{n}"))).collect();
    db.begin().expect("begins");
    for &id in &rooms {
        db.add_member(id, ana.id, 0).expect("joins");
    }
    db.commit().expect("commits");
    assert!(db.standings_of(ana.id).expect("reads").is_empty(), "nothing set anywhere");

    let topic = RoomSettings { topic: "news".into(), ..RoomSettings::default() };
    let mute = sanction("loud", "bob", 5);
    db.set_room_settings(rooms[3], &topic).expect("sets");
    db.set_role(rooms[7], ana.id, Role::Owner).expect("sets");
    db.set_muted(rooms[11], ana.id, Some(&mute)).expect("mutes");
    db.set_invited(rooms[13], ana.id, true).expect("invites");
    db.set_role(rooms[17], bob.id, Role::Moderator).expect("bob's role is not ana's standing");
    db.set_role(rooms[19], ana.id, Role::Voice).expect("sets");
    db.set_banned(rooms[19], ana.id, Some(&mute)).expect("bans: ana is no longer a member there");
    let outside = room(db, "outside");
    db.set_room_settings(outside, &topic).expect("a room ana is not in");
    db.set_role(outside, ana.id, Role::Moderator).expect("a role outlives membership");

    assert_eq!(
        db.standings_of(ana.id).expect("reads"),
        [
            RoomStanding { conversation: rooms[3], settings: topic.clone(), standing: Standing::default() },
            RoomStanding {
                conversation: rooms[7],
                settings: RoomSettings::default(),
                standing: Standing { role: Role::Owner, ..Standing::default() },
            },
            RoomStanding {
                conversation: rooms[11],
                settings: RoomSettings::default(),
                standing: Standing { muted: Some(mute.clone()), ..Standing::default() },
            },
            RoomStanding {
                conversation: rooms[13],
                settings: RoomSettings::default(),
                standing: Standing { invited: true, ..Standing::default() },
            },
        ]
    );
    assert!(db.standings_of(bob.id).expect("reads").is_empty(), "bob is a member of none of them");
    db.add_member(rooms[17], bob.id, 0).expect("joins");
    let of_bob = fresh.reader().standings_of(bob.id).expect("reads");
    assert_eq!(
        of_bob.iter().map(|s| (s.conversation, s.standing.role)).collect::<Vec<_>>(),
        [(rooms[17], Role::Moderator)]
    );
}

fn room_moderation_lists_everything_set_in_a_room_by_nickname(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let garden = room(db, "garden");
    assert_eq!(db.room_moderation(garden).expect("reads"), RoomModeration::default());
    // Created in reverse order, so that the order of ids is not that of nicknames.
    let (dee, cy, bob, ana) = (account(db, "dee"), account(db, "cy"), account(db, "bob"), account(db, "ana"));
    let settings = RoomSettings { topic: "roses".into(), invite_only: true, moderated: true };
    db.set_room_settings(garden, &settings).expect("sets");
    db.set_role(garden, dee.id, Role::Voice).expect("sets");
    db.set_role(garden, cy.id, Role::Owner).expect("sets");
    db.set_invited(garden, dee.id, true).expect("invites");
    db.set_invited(garden, bob.id, true).expect("invites");
    let (ban, mute) = (sanction("abuse", "cy", 1), sanction("spam", "operator", 2));
    db.set_banned(garden, bob.id, Some(&ban)).expect("bans");
    db.set_banned(garden, ana.id, Some(&ban)).expect("bans");
    db.set_muted(garden, dee.id, Some(&mute)).expect("mutes");
    db.set_role(lobby(db).id, ana.id, Role::Owner).expect("another room's");
    assert_eq!(
        fresh.reader().room_moderation(garden).expect("reads"),
        RoomModeration {
            settings,
            roles: vec![(nick("cy"), Role::Owner), (nick("dee"), Role::Voice)],
            bans: vec![(nick("ana"), ban.clone()), (nick("bob"), ban)],
            mutes: vec![(nick("dee"), mute)],
            invited: vec![nick("dee")],
        },
        "bob's invitation went with its ban"
    );
}

fn a_removed_account_and_a_deleted_conversation_take_their_moderation_with_them(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let garden = room(db, "garden");
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    db.add_member(garden, ana.id, 0).expect("joins");
    db.set_operator(&ana.nick, true).expect("sets");
    db.set_role(garden, ana.id, Role::Owner).expect("sets");
    db.set_muted(garden, ana.id, Some(&sanction("loud", "bob", 1))).expect("mutes");
    db.set_invited(lobby(db).id, ana.id, true).expect("invites");
    db.set_banned(lobby(db).id, ana.id, Some(&sanction("abuse", "bob", 1))).expect("bans");
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    db.set_room_settings(dm.id, &RoomSettings { topic: "ours".into(), ..RoomSettings::default() }).expect("sets");
    db.set_role(dm.id, bob.id, Role::Moderator).expect("sets");
    db.set_invited(dm.id, bob.id, true).expect("invites");

    db.remove_account(&ana.nick).expect("removes").expect("existed");
    assert!(db.operators().expect("lists").is_empty());
    assert_eq!(db.room_moderation(garden).expect("reads"), RoomModeration::default());
    assert_eq!(db.room_moderation(lobby(db).id).expect("reads"), RoomModeration::default());
    assert_eq!(db.room_moderation(dm.id).expect("reads"), RoomModeration::default(), "deleted with its conversation");
    assert_eq!(db.standing(dm.id, bob.id).expect("reads"), Standing::default());

    let again = account(db, "ana");
    db.add_member(garden, again.id, 0).expect("joins");
    assert!(!db.is_operator(again.id).expect("reads"));
    assert_eq!(db.standing(garden, again.id).expect("reads"), Standing::default());
    assert_eq!(db.standing(lobby(db).id, again.id).expect("reads"), Standing::default(), "not banned");
    assert!(db.standings_of(again.id).expect("reads").is_empty(), "a new account of the nickname has no past");
}

fn the_room_listing_pages_by_name_counts_members_and_hides_invite_only_rooms_from_outsiders(fresh: Fresh) {
    let db = fresh.writer();
    let (ana, bob) = (account(&*db, "ana"), account(&*db, "bob"));
    let (apple, cave, garden) = (room(&*db, "apple"), room(&*db, "cave"), room(&*db, "garden"));
    for conv in [apple, garden] {
        db.add_member(conv, ana.id, 0).expect("adds");
    }
    db.add_member(garden, bob.id, 0).expect("adds");
    db.add_member(cave, ana.id, 0).expect("adds");
    db.set_room_settings(cave, &RoomSettings { topic: "secret".into(), invite_only: true, moderated: false })
        .expect("sets");
    db.set_room_settings(garden, &RoomSettings { topic: "roses".into(), ..RoomSettings::default() }).expect("sets");
    db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    let names = |listing: Vec<RoomListing>| listing.into_iter().map(|r| r.room.to_string()).collect::<Vec<_>>();
    let reader = fresh.reader();
    let by_bob = reader.room_listing(bob.id, false, None, 10).expect("lists");
    assert_eq!(names(by_bob.clone()), ["apple", "garden", "lobby"], "no invite-only room bob is not in, no DM");
    assert_eq!(
        by_bob[1],
        RoomListing {
            room: RoomName::parse("garden").expect("valid"),
            members: 2,
            topic: "roses".into(),
            invite_only: false
        }
    );
    assert_eq!(
        names(reader.room_listing(ana.id, false, None, 10).expect("lists")),
        ["apple", "cave", "garden", "lobby"]
    );
    assert_eq!(
        names(reader.room_listing(bob.id, true, None, 10).expect("lists")),
        ["apple", "cave", "garden", "lobby"]
    );
    let first = reader.room_listing(ana.id, false, None, 2).expect("lists");
    assert_eq!(names(first.clone()), ["apple", "cave"]);
    let next = reader.room_listing(ana.id, false, Some(&first[1].room), 2).expect("lists");
    assert_eq!(names(next.clone()), ["garden", "lobby"], "the page after the last one seen");
    assert!(reader.room_listing(ana.id, false, Some(&next[1].room), 2).expect("lists").is_empty());
}

fn post<'a>(conversation: ConvId, sender: &'a Nick, id: u8, kind: MessageKind, text: &'a str) -> NewMessage<'a> {
    NewMessage { conversation, sender, id: MessageId([id; 16]), text, kind }
}

/// Each message of `conv` as `seq kind revision text`.
fn log_of(db: &dyn Store, conv: &ConvRow) -> Vec<String> {
    let messages = db.messages_after(conv, 0, 100).expect("reads");
    messages.iter().map(|m| format!("{} {:?} {:?} {}", m.seq, m.kind, m.revision, m.text)).collect()
}

/// Edits and deletions are entries of their own, appended alone or in a batch; each changes the message it refers
/// to (a deletion, that message's edits too), a retry changes nothing again, and readers see the result.
fn edits_and_deletions_revise_the_message_they_refer_to(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let ana = nick("ana");
    let room = lobby(db);
    let appended = |message: NewMessage<'_>| db.append_message(&message, 5).expect("appends");
    appended(post(room.id, &ana, 1, MessageKind::Text, "helo"));
    appended(post(room.id, &ana, 2, MessageKind::Action, "waves"));
    appended(post(room.id, &ana, 3, MessageKind::Edit { of: 1 }, "hello"));
    db.begin().expect("begin");
    db.lock_for_appends(&[room.id]).expect("locks");
    let batch = [
        post(room.id, &ana, 4, MessageKind::Edit { of: 2 }, "waves back"),
        post(room.id, &ana, 5, MessageKind::Text, "plain"),
        post(room.id, &ana, 6, MessageKind::Edit { of: 1 }, "hello all"),
        post(room.id, &ana, 7, MessageKind::Deletion { of: 2 }, "wrong room"),
    ];
    let outcomes = db.append_all(&batch, 6).expect("appends");
    db.commit().expect("commits");
    let seqs: Vec<Option<u64>> = outcomes.iter().map(|outcome| outcome.as_ref().map(|appended| appended.seq)).collect();
    assert_eq!(seqs, [Some(4), Some(5), Some(6), Some(7)]);
    let expected = [
        "1 Text Edited hello all",
        "2 Action Deleted ",
        "3 Edit { of: 1 } Original hello",
        "4 Edit { of: 2 } Deleted ",
        "5 Text Original plain",
        "6 Edit { of: 1 } Original hello all",
        "7 Deletion { of: 2 } Original wrong room",
    ];
    assert_eq!(log_of(db, &room), expected);
    let retry = appended(post(room.id, &ana, 3, MessageKind::Edit { of: 1 }, "hello"));
    assert_eq!(retry, Appended { seq: 3, ts: 5, duplicate: true });
    let reader = fresh.reader();
    assert_eq!(log_of(&*reader, &room), expected, "a retry changes nothing, and readers see the revisions");
    let at = |seq| reader.message_at(&room, seq).expect("reads").map(|m| (m.kind, m.revision, m.text));
    assert_eq!(at(1), Some((MessageKind::Text, Revision::Edited, "hello all".into())));
    assert_eq!(at(7), Some((MessageKind::Deletion { of: 2 }, Revision::Original, "wrong room".into())));
    assert_eq!(at(8), None);
    assert_eq!(at(0), None);
}

/// A reply or a reaction changes nothing in the message it refers to; whether someone's reaction stands is their
/// latest of that emoji (and only their own since their account was created); deleting the message blanks its
/// edits and reactions, not its replies.
fn replies_and_reactions_leave_their_message_and_a_deletion_blanks_its_reactions(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let (ana, bob) = (nick("ana"), nick("bob"));
    let room = lobby(db);
    let appended = |message: NewMessage<'_>| db.append_message(&message, 5).expect("appends");
    let reaction = |of, added| MessageKind::Reaction { of, added };
    appended(post(room.id, &ana, 1, MessageKind::Text, "lunch?"));
    appended(post(room.id, &bob, 2, MessageKind::Reply { of: 1 }, "yes"));
    appended(post(room.id, &bob, 3, reaction(1, true), "👍"));
    appended(post(room.id, &bob, 4, reaction(1, true), "🎉"));
    appended(post(room.id, &bob, 5, reaction(1, false), "👍"));
    appended(post(room.id, &ana, 6, reaction(2, true), "👍"));
    let reacted = |of, who: &Nick, since, emoji| db.has_reacted(room.id, of, (who, since), emoji).expect("reads");
    assert!(!reacted(1, &bob, 0, "👍"), "taken back");
    assert!(reacted(1, &bob, 0, "🎉"));
    assert!(!reacted(1, &bob, 6, "🎉"), "sent before the account's creation");
    assert!(!reacted(1, &ana, 0, "🎉"), "someone else's");
    assert!(reacted(2, &ana, 0, "👍"));
    assert!(!reacted(2, &bob, 0, "👍"), "a reaction to another message");
    appended(post(room.id, &ana, 7, MessageKind::Edit { of: 1 }, "lunch at 1?"));
    appended(post(room.id, &ana, 8, MessageKind::Deletion { of: 1 }, ""));
    let expected = [
        "1 Text Deleted ",
        "2 Reply { of: 1 } Original yes",
        "3 Reaction { of: 1, added: true } Deleted ",
        "4 Reaction { of: 1, added: true } Deleted ",
        "5 Reaction { of: 1, added: false } Deleted ",
        "6 Reaction { of: 2, added: true } Original 👍",
        "7 Edit { of: 1 } Deleted ",
        "8 Deletion { of: 1 } Original ",
    ];
    assert_eq!(log_of(db, &room), expected);
    assert_eq!(log_of(&*fresh.reader(), &room), expected, "readers see the same");
    assert!(!reacted(1, &bob, 0, "🎉"), "a deleted message's reactions are gone");
}

/// `message_at` finds a message whether the index of the log holds it or it is still in the tail, and not once
/// retention removed it; an edit of an indexed message revises it.
fn a_message_is_found_by_seq_in_the_index_and_in_the_tail(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let ana = nick("ana");
    let room = lobby(db);
    let count = crate::sqlite::UNINDEXED_MAX as u64 + 100;
    let texts: Vec<String> = (1..=count).map(|seq| format!("m{seq}")).collect();
    db.begin().expect("begin");
    db.lock_for_appends(&[room.id]).expect("locks");
    let batch: Vec<NewMessage<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            NewMessage { conversation: room.id, sender: &ana, id: MessageId(id), text, kind: MessageKind::Text }
        })
        .collect();
    db.append_all(&batch, 1).expect("appends");
    db.commit().expect("commits");
    let edit = db.append_message(&post(room.id, &ana, 0xee, MessageKind::Edit { of: 3 }, "third"), 2).expect("edits");
    let tail = db.append(room.id, &ana, MessageId([0xff; 16]), "newest", 3).expect("appends");
    let room = lobby(db);
    for (seq, text) in [(1, "m1"), (3, "third"), (count, &*format!("m{count}")), (tail.seq, "newest")] {
        let found = db.message_at(&room, seq).expect("reads").map(|m| (m.seq, m.text));
        assert_eq!(found, Some((seq, text.to_owned())), "seq {seq}");
    }
    assert_eq!(db.message_at(&room, edit.seq).expect("reads").map(|m| m.kind), Some(MessageKind::Edit { of: 3 }));
    db.prune(10).expect("prunes");
    let room = lobby(db);
    assert_eq!(db.message_at(&room, 3).expect("reads"), None, "removed by retention");
    assert!(db.message_at(&room, tail.seq).expect("reads").is_some());
}

fn an_account_knows_when_it_was_created(fresh: Fresh) {
    let db = fresh.writer();
    let ana = db.create_account(&nick("ana"), "hash", 1234).expect("creates").expect("free");
    assert_eq!(db.account_created_ms(ana.id).expect("reads"), Some(1234));
    db.remove_account(&nick("ana")).expect("removes");
    assert_eq!(db.account_created_ms(ana.id).expect("reads"), None);
}

fn words(query: &str) -> Vec<String> {
    palomar_proto::search_words(query).expect("a query with words")
}

/// Each hit of `page` as `conversation seq text`.
fn hits(page: &SearchPage) -> Vec<String> {
    page.hits
        .iter()
        .map(|hit| format!("{} {} {}", hit.message.key.to_column(), hit.message.seq, hit.message.text))
        .collect()
}

/// Search sees the latest text of texts, actions and replies (not edits, deletions, reactions, nor a deleted
/// message), in the searcher's conversations only, every word as the start of a word, newest first; a page ends
/// at its limit and the next starts after its last hit's position.
fn search_finds_current_texts_in_the_searchers_conversations_newest_first_by_pages(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let (ana, bob, carol) = (account(db, "ana"), account(db, "bob"), account(db, "carol"));
    let room = lobby(db);
    db.add_member(room.id, ana.id, 0).expect("joins");
    db.add_member(room.id, bob.id, 0).expect("joins");
    let garden = db.ensure_conversation(&ConvKey::Room(RoomName::parse("garden").expect("valid"))).expect("creates");
    db.add_member(garden.id, carol.id, 0).expect("joins");
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    let appended = |message: NewMessage<'_>| db.append_message(&message, 5).expect("appends");
    appended(post(room.id, &ana.nick, 1, MessageKind::Text, "Lunch at noon?"));
    appended(post(room.id, &bob.nick, 2, MessageKind::Reply { of: 1 }, "lunchtime is fine"));
    appended(post(room.id, &bob.nick, 3, MessageKind::Reaction { of: 1, added: true }, "👍"));
    appended(post(room.id, &ana.nick, 4, MessageKind::Text, "brunch then"));
    // Indexed now: the edit and the deletion that follow change what was indexed; the message after them is
    // indexed as it is by then.
    db.index_for_search().expect("indexes");
    appended(post(room.id, &ana.nick, 5, MessageKind::Edit { of: 4 }, "no, lunch then"));
    appended(post(room.id, &bob.nick, 6, MessageKind::Text, "secret lunch plans"));
    appended(post(room.id, &bob.nick, 7, MessageKind::Deletion { of: 6 }, "lunch"));
    appended(post(garden.id, &carol.nick, 8, MessageKind::Text, "lunch among the lettuces"));
    appended(post(dm.id, &bob.nick, 9, MessageKind::Action, "brings lunch"));
    appended(post(room.id, &ana.nick, 10, MessageKind::Text, "dinner"));
    db.index_for_search().expect("indexes");

    let reader = fresh.reader();
    let search = |who: &Account, query: &str, within: Option<ConvId>, before: Option<&str>, limit: u32| {
        let words = words(query);
        reader.search(who.id, &SearchRequest { words: &words, within, before, limit }).expect("searches")
    };
    let all = search(&ana, "LUN", None, None, 10);
    let dm_column = dm.key.to_column();
    assert_eq!(
        hits(&all),
        [
            format!("{dm_column} 1 brings lunch"),
            "#lobby 4 no, lunch then".into(),
            "#lobby 2 lunchtime is fine".into(),
            "#lobby 1 Lunch at noon?".into()
        ],
        "the edit's text is found on its message, not the edit itself, the deletion or the deleted message"
    );
    assert_eq!(all.next, None);
    assert_eq!(hits(&search(&ana, "lunch noon", None, None, 10)), ["#lobby 1 Lunch at noon?"], "every word");
    assert_eq!(hits(&search(&ana, "unch", None, None, 10)), Vec::<String>::new(), "words are found by their start");
    assert_eq!(hits(&search(&ana, "lunch", Some(dm.id), None, 10)), [format!("{dm_column} 1 brings lunch")]);
    assert_eq!(hits(&search(&carol, "lunch", None, None, 10)), ["#garden 1 lunch among the lettuces"]);
    assert_eq!(hits(&search(&ana, "lunch", Some(garden.id), None, 10)), Vec::<String>::new(), "not a member");

    let first = search(&bob, "lunch", None, None, 2);
    assert_eq!(first.hits.len(), 2);
    assert_eq!(first.next.as_deref(), Some(first.hits[1].position.as_str()));
    let next = search(&bob, "lunch", None, Some(&first.hits[1].position), 2);
    assert_eq!(hits(&next), ["#lobby 2 lunchtime is fine", "#lobby 1 Lunch at noon?"]);
    assert_eq!(next.next, None, "nothing after the last");
    let bad =
        reader.search(bob.id, &SearchRequest { words: &words("lunch"), within: None, before: Some("x1"), limit: 2 });
    assert!(matches!(bad, Err(StoreError::UnknownSearchPosition(_))), "{bad:?}");
}

/// What retention removes, and the direct conversations of a removed account, are not found any more.
fn search_follows_retention_and_removed_accounts(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let (ana, bob) = (account(db, "ana"), account(db, "bob"));
    let room = lobby(db);
    db.add_member(room.id, bob.id, 0).expect("joins");
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    for id in 2..=5 {
        db.append(room.id, &ana.nick, MessageId([id; 16]), &format!("recipe number {id}"), 10).expect("appends");
    }
    // The newest message: hits come newest first.
    db.append(dm.id, &ana.nick, MessageId([1; 16]), "the secret recipe", 30).expect("appends");
    let found = |who: &Account, word: &str| {
        db.index_for_search().expect("indexes");
        let words = words(word);
        let page = db.search(who.id, &SearchRequest { words: &words, within: None, before: None, limit: 10 });
        hits(&page.expect("searches"))
    };
    assert_eq!(found(&bob, "recipe").len(), 5);
    db.prune(2).expect("prunes");
    assert_eq!(
        found(&bob, "recipe"),
        [
            format!("{} 1 the secret recipe", dm.key.to_column()),
            "#lobby 4 recipe number 5".to_owned(),
            "#lobby 3 recipe number 4".into(),
        ]
    );
    db.remove_account(&nick("ana")).expect("removes");
    assert_eq!(found(&bob, "recipe"), ["#lobby 4 recipe number 5", "#lobby 3 recipe number 4"]);
    // The removed account's direct message was the newest: the next message may be given its row id, and is
    // found by its own words only.
    db.append(room.id, &bob.nick, MessageId([9; 16]), "a new recipe", 40).expect("appends");
    assert_eq!(found(&bob, "recipe")[0], "#lobby 5 a new recipe");
    assert_eq!(found(&bob, "secret"), Vec::<String>::new());
}

fn away_messages_are_set_cleared_kept_across_reopening_and_go_with_their_account(fresh: Fresh) {
    let (ana, bob, cy) = {
        let db = fresh.writer();
        let db = &*db;
        let (ana, bob, cy) = (account(db, "ana"), account(db, "bob"), account(db, "cy"));
        let garden = room(db, "garden");
        for who in [&ana, &bob, &cy] {
            db.add_member(garden, who.id, 0).expect("joins");
        }
        assert_eq!(db.away_of(ana.id).expect("reads"), None);
        db.set_away(ana.id, Some("lunch"), 5).expect("sets");
        db.set_away(ana.id, Some("lunch, back at 2"), 6).expect("replaces");
        db.set_away(bob.id, Some("out"), 7).expect("sets");
        db.set_away(cy.id, Some("gone"), 7).expect("sets");
        db.set_away(cy.id, None, 8).expect("clears");
        db.set_away(AccountId(9_999), Some("nobody"), 8).expect("an unknown account sets nothing");
        (ana, bob, cy)
    };
    let db = fresh.reader();
    let db = &*db;
    assert_eq!(db.away_of(ana.id).expect("reads"), Some("lunch, back at 2".into()), "kept across reopening");
    assert_eq!(db.away_of(cy.id).expect("reads"), None, "back");
    assert_eq!(db.away_of(AccountId(9_999)).expect("reads"), None);
    let garden = db.conversation(&ConvKey::Room(RoomName::parse("garden").expect("valid"))).expect("reads");
    let garden = garden.expect("exists").id;
    let away = db.away_in(garden).expect("reads");
    assert_eq!(away, vec![(nick("ana"), "lunch, back at 2".to_owned()), (nick("bob"), "out".to_owned())]);
    assert!(db.away_in(lobby(db).id).expect("reads").is_empty(), "none of them is in the lobby");

    let db = fresh.writer();
    let db = &*db;
    db.remove_account(&ana.nick).expect("removes").expect("existed");
    assert_eq!(db.away_of(ana.id).expect("reads"), None);
    let again = account(db, "ana");
    assert_eq!(db.away_of(again.id).expect("reads"), None, "a new account of the nickname is not away");
    assert_eq!(db.away_of(bob.id).expect("reads"), Some("out".into()));
}

fn read_markers_only_move_forward_and_only_while_a_member(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let (ana, bob, cy) = (account(db, "ana"), account(db, "bob"), account(db, "cy"));
    let garden = room(db, "garden");
    db.add_member(garden, ana.id, 0).expect("joins");
    db.add_member(garden, bob.id, 0).expect("joins");
    let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
    let other = db.open_direct(&bob, &cy).expect("opens").expect("both exist");
    assert_eq!(db.read_marker(ana.id, garden).expect("reads"), 0);

    db.advance_read_markers(&[(ana.id, garden, 5), (bob.id, garden, 2), (ana.id, dm.id, 3)]).expect("saves");
    db.advance_read_markers(&[(ana.id, garden, 4), (bob.id, garden, 3), (bob.id, garden, 1)]).expect("saves");
    db.advance_read_markers(&[(cy.id, garden, 9), (bob.id, dm.id, 7), (cy.id, other.id, 2)]).expect("saves");
    db.advance_read_markers(&[(ana.id, lobby(db).id, 4)]).expect("not a member: nothing saved");
    assert_eq!(db.read_marker(ana.id, garden).expect("reads"), 5, "never backwards");
    assert_eq!(db.read_marker(bob.id, garden).expect("reads"), 3);
    assert_eq!(db.read_marker(cy.id, garden).expect("reads"), 0, "cy is not in the garden");
    assert_eq!(db.read_marker(ana.id, lobby(db).id).expect("reads"), 0);
    assert_eq!(db.read_markers_in(garden).expect("reads"), vec![(nick("ana"), 5), (nick("bob"), 3)]);
    assert_eq!(db.read_markers_in(dm.id).expect("reads"), vec![(nick("ana"), 3), (nick("bob"), 7)]);

    let mut of_ana = db.read_markers_of(ana.id).expect("reads");
    of_ana.sort();
    let mut expected = vec![(garden, nick("ana"), 5), (dm.id, nick("ana"), 3), (dm.id, nick("bob"), 7)];
    expected.sort();
    assert_eq!(of_ana, expected, "her own everywhere, and bob's in their direct conversation only");
    let mut of_bob = db.read_markers_of(bob.id).expect("reads");
    of_bob.sort();
    let mut expected =
        vec![(garden, nick("bob"), 3), (dm.id, nick("ana"), 3), (dm.id, nick("bob"), 7), (other.id, nick("cy"), 2)];
    expected.sort();
    assert_eq!(of_bob, expected);
}

fn read_markers_end_with_the_membership_the_account_and_the_conversation(fresh: Fresh) {
    let db = fresh.writer();
    let db = &*db;
    let (ana, bob, cy) = (account(db, "ana"), account(db, "bob"), account(db, "cy"));
    let garden = room(db, "garden");
    for who in [&ana, &bob, &cy] {
        db.add_member(garden, who.id, 0).expect("joins");
    }
    let dm = db.open_direct(&ana, &cy).expect("opens").expect("both exist");
    db.advance_read_markers(&[(ana.id, garden, 4), (bob.id, garden, 4), (cy.id, garden, 4), (cy.id, dm.id, 2)])
        .expect("saves");

    db.remove_member(garden, ana.id).expect("leaves");
    assert_eq!(db.read_marker(ana.id, garden).expect("reads"), 0, "gone with the membership");
    db.add_member(garden, ana.id, 0).expect("joins again");
    assert_eq!(db.read_marker(ana.id, garden).expect("reads"), 0, "a new membership starts with none");
    db.set_banned(garden, bob.id, Some(&sanction("spam", "mo", 1))).expect("bans");
    assert_eq!(db.read_marker(bob.id, garden).expect("reads"), 0, "gone with the ban");
    db.remove_account(&cy.nick).expect("removes").expect("existed");
    assert!(db.read_markers_in(garden).expect("reads").is_empty(), "gone with the account");
    assert!(db.read_markers_in(dm.id).expect("reads").is_empty(), "gone with the conversation");
    assert!(db.read_markers_of(ana.id).expect("reads").is_empty());
}
