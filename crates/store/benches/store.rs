//! Micro-benchmarks of the store: appending messages (alone inside an open transaction, and as a group
//! committed with each durability, which is what the server's writer does), reading a range of a log, as
//! catching up does, and a page of a search. `cargo bench -p palomar-store`.

use divan::Bencher;
use palomar_proto::{MessageId, Nick, RoomName};
use palomar_store::sqlite::SqliteStore;
use palomar_store::{ConvId, ConvKey, ConvRow, Durability, SearchRequest, Store};

fn main() {
    divan::main();
}

/// 100 bytes in 17 words, as people write: the search index takes every word of it.
fn text() -> String {
    let text =
        "are we still on for lunch at noon tomorrow, or should we move it to one? bring the garden plans!!".to_owned();
    debug_assert_eq!(text.len(), 100);
    text
}

fn sender() -> Nick {
    Nick::parse("b0").expect("valid nick")
}

/// A fresh store in a temporary directory (kept alive by the returned guard) and its lobby.
fn store(durability: Durability) -> (tempfile::TempDir, SqliteStore, ConvRow) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SqliteStore::open_with(&dir.path().join("store.sqlite"), durability).expect("opens");
    let lobby = db.conversation(&ConvKey::Room(RoomName::lobby())).expect("reads").expect("the lobby exists");
    (dir, db, lobby)
}

/// Unique ids, so no append is taken for a retry.
fn id(n: u64) -> MessageId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    MessageId(id)
}

/// One append inside a transaction that stays open: the SQL work without the commit.
#[divan::bench]
fn append_in_open_transaction(bencher: Bencher) {
    let (_dir, db, lobby) = store(Durability::Full);
    let (sender, text) = (sender(), text());
    let mut next = 0;
    db.begin().expect("begins");
    bencher.bench_local(|| {
        next += 1;
        db.append(lobby.id, &sender, id(next), &text, 1_700_000_000_000).expect("appends")
    });
    db.commit().expect("commits");
}

/// `count` appends and their commit, as one group of the server's writer, synced to disk (`Full`): this
/// measures the disk as much as the code.
#[divan::bench(args = [1, 100])]
fn group_commit_full(bencher: Bencher, count: usize) {
    group_commit(bencher, count, Durability::Full);
}

/// The same group committed with `Normal` durability: written to the OS, synced at checkpoints.
#[divan::bench(args = [1, 100])]
fn group_commit_normal(bencher: Bencher, count: usize) {
    group_commit(bencher, count, Durability::Normal);
}

fn group_commit(bencher: Bencher, count: usize, durability: Durability) {
    let (_dir, db, lobby) = store(durability);
    commit_groups(bencher, &db, &vec![lobby.id; count]);
}

/// 100 appends, one in each of 100 rooms, and their synced commit: the ingest benchmark's pattern, where every
/// message of a group goes to another conversation (and every 41st commit indexes the tail, 100 runs).
#[divan::bench]
fn group_commit_full_100_rooms(bencher: Bencher) {
    let (_dir, db, _lobby) = store(Durability::Full);
    let rooms: Vec<ConvId> = (0..100)
        .map(|n| {
            let room = RoomName::parse(&format!("bench-{n}")).expect("valid room name");
            db.ensure_conversation(&ConvKey::Room(room)).expect("creates").id
        })
        .collect();
    commit_groups(bencher, &db, &rooms);
}

/// One group per iteration: an append to each of `conversations`, in order, then the commit.
fn commit_groups(bencher: Bencher, db: &SqliteStore, conversations: &[ConvId]) {
    let (sender, text) = (sender(), text());
    let mut next = 0;
    bencher.counter(divan::counter::ItemsCount::new(conversations.len())).bench_local(|| {
        db.begin().expect("begins");
        for &conversation in conversations {
            next += 1;
            db.append(conversation, &sender, id(next), &text, 1_700_000_000_000).expect("appends");
        }
        db.commit().expect("commits");
    });
}

/// A page of `limit` messages from the middle of a 10,000-message log.
#[divan::bench(args = [1, 256])]
fn messages_after(bencher: Bencher, limit: u32) {
    let (_dir, db, lobby) = store(Durability::Normal);
    let (sender, text) = (sender(), text());
    db.begin().expect("begins");
    for n in 1..=10_000 {
        db.append(lobby.id, &sender, id(n), &text, 1_700_000_000_000).expect("appends");
    }
    db.commit().expect("commits");
    let lobby = db.conversation(&lobby.key).expect("reads").expect("the lobby exists");
    bencher
        .counter(divan::counter::ItemsCount::new(limit))
        .bench_local(|| db.messages_after(&lobby, divan::black_box(5_000), limit).expect("reads"));
}

/// A page of 20 hits for a word in every message of a 10,000-message log, asked by a member of the room (the
/// newest 20 match) and by an account in no conversation of it (every match is read and left out: the worst
/// case, which grows with the matches in other people's conversations).
#[divan::bench(args = ["member", "outsider"])]
fn search(bencher: Bencher, who: &str) {
    let (_dir, db, lobby) = store(Durability::Normal);
    let member = db.create_account(&sender(), "hash", 1).expect("creates").expect("the nickname is free");
    db.add_member(lobby.id, member.id, 0).expect("joins");
    let outsider = db.create_account(&Nick::parse("c0").expect("valid"), "hash", 1).expect("creates").expect("free");
    let text = text();
    db.begin().expect("begins");
    for n in 1..=10_000 {
        db.append(lobby.id, &member.nick, id(n), &text, 1_700_000_000_000).expect("appends");
    }
    db.commit().expect("commits");
    db.index_for_search().expect("indexes");
    let words = vec!["lunch".to_owned()];
    let request = SearchRequest { words: &words, within: None, before: None, limit: 20 };
    let searcher = if who == "member" { member.id } else { outsider.id };
    bencher.bench_local(|| db.search(searcher, divan::black_box(&request)).expect("searches"));
}
