//! The client's durable state for one account in one chat (one server, or every node of one, which share a
//! store): the outbox (messages not yet acknowledged) and the cursors (the highest seq seen per conversation),
//! in one SQLite file. The file's `user_version` says which of the [`MIGRATIONS`] it has had.

use std::path::Path;
use std::time::Duration;

use palomar_proto::{Conversation, MessageId, MessageKind};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::owner_only;

/// A message typed but not yet acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: MessageId,
    pub to: Conversation,
    pub kind: MessageKind,
    /// The message's text, an edit's new text, or a deletion's reason.
    pub text: String,
}

pub struct ClientState {
    conn: Connection,
}

/// Why the state file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    conversation TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    conversation TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
";

/// Changes to [`SCHEMA`] since the first version, in order: a file whose `user_version` is `n` has had the first
/// `n`. [`SCHEMA`] stays as the first version wrote it, so that new and old files take the same path.
const MIGRATIONS: &[&str] = &[
    // Kinds of messages (protocol 3): what an older client queued was text. `refers_to` is the message an edit or a
    // deletion refers to.
    "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
     ALTER TABLE outbox ADD COLUMN refers_to INTEGER;",
];

impl ClientState {
    /// Opens (creating if needed) the state file `path`, owner-only, like the directories leading to it that
    /// it creates: the outbox holds what was typed, direct messages too.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(dir) = path.parent() {
            owner_only::create_dir_all(dir)?;
        }
        owner_only::prepare_database(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        Ok(ClientState { conn })
    }

    /// Adds messages to the outbox in one synced transaction.
    pub fn push_outbox(&mut self, entries: &[OutboxEntry]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox (id, conversation, kind, refers_to, text) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for entry in entries {
                let (kind, of) = kind_column(entry.kind);
                let of = of.map(|seq| i64::try_from(seq).unwrap_or(i64::MAX));
                insert.execute(params![&entry.id.0[..], entry.to.to_string(), kind, of, entry.text])?;
            }
        }
        tx.commit()
    }

    /// Removes acknowledged messages in one transaction. Not losing this on a crash matters less: a message
    /// left behind is sent again and the server recognises its id.
    pub fn remove_outbox(&mut self, ids: &[MessageId]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                delete.execute([&id.0[..]])?;
            }
        }
        tx.commit()
    }

    /// The outbox in the order the messages were typed.
    pub fn outbox(&self) -> rusqlite::Result<Vec<OutboxEntry>> {
        let mut stmt =
            self.conn.prepare("SELECT id, conversation, kind, refers_to, text FROM outbox ORDER BY position")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, to, kind, of, text) = row?;
            // A row this program could not have written is skipped rather than blocking the rest.
            if let (Ok(id), Ok(to), Some(kind)) =
                (<[u8; 16]>::try_from(id.as_slice()), Conversation::parse(&to), read_kind(&kind, of))
            {
                entries.push(OutboxEntry { id: MessageId(id), to, kind, text });
            }
        }
        Ok(entries)
    }

    pub fn cursors(&self) -> rusqlite::Result<Vec<(Conversation, u64)>> {
        let mut stmt = self.conn.prepare("SELECT conversation, seq FROM cursors")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        let mut cursors = Vec::new();
        for row in rows {
            let (conversation, seq) = row?;
            if let Ok(conversation) = Conversation::parse(&conversation) {
                cursors.push((conversation, u64::try_from(seq).unwrap_or(0)));
            }
        }
        Ok(cursors)
    }

    /// Saves cursors in one transaction.
    pub fn save_cursors<'a>(
        &mut self,
        cursors: impl IntoIterator<Item = (&'a Conversation, u64)>,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO cursors (conversation, seq) VALUES (?1, ?2)
                 ON CONFLICT (conversation) DO UPDATE SET seq = max(seq, excluded.seq)",
            )?;
            for (conversation, seq) in cursors {
                upsert.execute(params![conversation.to_string(), i64::try_from(seq).unwrap_or(i64::MAX)])?;
            }
        }
        tx.commit()
    }

    pub fn forget_cursor(&self, conversation: &Conversation) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM cursors WHERE conversation = ?1", [conversation.to_string()])?;
        Ok(())
    }
}

/// Brings a state file written by an older client up to [`MIGRATIONS`], in one transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    // Immediate: a second client opening the same file at the same time waits here, then finds it migrated,
    // instead of migrating it again.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done: usize = tx.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))?.try_into().unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(done) {
        tx.execute_batch(migration)?;
    }
    if done < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    }
    tx.commit()
}

/// How a kind is kept in the `kind` and `refers_to` columns.
fn kind_column(kind: MessageKind) -> (&'static str, Option<u64>) {
    match kind {
        MessageKind::Text => ("text", None),
        MessageKind::Action => ("action", None),
        MessageKind::Edit { of } => ("edit", Some(of)),
        MessageKind::Deletion { of } => ("deletion", Some(of)),
        MessageKind::Reply { of } => ("reply", Some(of)),
        MessageKind::Reaction { of, added: true } => ("reaction", Some(of)),
        MessageKind::Reaction { of, added: false } => ("reaction taken back", Some(of)),
    }
}

/// The kind [`kind_column`] wrote; `None` for anything else.
fn read_kind(kind: &str, of: Option<i64>) -> Option<MessageKind> {
    let of = of.and_then(|of| u64::try_from(of).ok());
    match (kind, of) {
        ("text", _) => Some(MessageKind::Text),
        ("action", _) => Some(MessageKind::Action),
        ("edit", Some(of)) => Some(MessageKind::Edit { of }),
        ("deletion", Some(of)) => Some(MessageKind::Deletion { of }),
        ("reply", Some(of)) => Some(MessageKind::Reply { of }),
        ("reaction", Some(of)) => Some(MessageKind::Reaction { of, added: true }),
        ("reaction taken back", Some(of)) => Some(MessageKind::Reaction { of, added: false }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_proto::RoomName;

    #[test]
    fn the_outbox_and_cursors_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.sqlite");
        let lobby = Conversation::Room(RoomName::lobby());
        {
            let mut state = ClientState::open(&path).expect("opens");
            let entries: Vec<_> = (0..3u8)
                .map(|i| OutboxEntry {
                    id: MessageId([i; 16]),
                    to: lobby.clone(),
                    kind: MessageKind::Text,
                    text: format!("m{i}"),
                })
                .collect();
            state.push_outbox(&entries).expect("pushes");
            state.remove_outbox(&[MessageId([1; 16])]).expect("removes");
            state.save_cursors([(&lobby, 7)]).expect("saves");
            state.save_cursors([(&lobby, 5)]).expect("stale save");
        }
        let state = ClientState::open(&path).expect("reopens");
        let texts: Vec<_> = state.outbox().expect("reads").into_iter().map(|e| e.text).collect();
        assert_eq!(texts, vec!["m0", "m2"]);
        assert_eq!(state.cursors().expect("reads"), vec![(lobby, 7)]);
    }

    #[test]
    fn posts_keep_their_kind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.sqlite");
        let lobby = Conversation::Room(RoomName::lobby());
        let kinds = [
            MessageKind::Text,
            MessageKind::Action,
            MessageKind::Edit { of: 41 },
            MessageKind::Deletion { of: u64::from(u32::MAX) + 1 },
            MessageKind::Reply { of: 41 },
            MessageKind::Reaction { of: 41, added: true },
            MessageKind::Reaction { of: 41, added: false },
        ];
        let entries: Vec<_> = (0..7u8)
            .map(|i| OutboxEntry {
                id: MessageId([i; 16]),
                to: lobby.clone(),
                kind: kinds[usize::from(i)],
                text: format!("m{i}"),
            })
            .collect();
        ClientState::open(&path).expect("opens").push_outbox(&entries).expect("pushes");
        assert_eq!(ClientState::open(&path).expect("reopens").outbox().expect("reads"), entries);
    }

    #[test]
    fn an_outbox_written_before_kinds_reads_as_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.sqlite");
        {
            // What a client before protocol 3 left: the first schema, user_version 0.
            let conn = Connection::open(&path).expect("creates");
            conn.execute_batch(SCHEMA).expect("old schema");
            conn.execute(
                "INSERT INTO outbox (id, conversation, text) VALUES (?1, '#lobby', '/me is old')",
                [&[7u8; 16][..]],
            )
            .expect("old row");
        }
        let mut state = ClientState::open(&path).expect("migrates");
        let lobby = Conversation::Room(RoomName::lobby());
        let old = OutboxEntry {
            id: MessageId([7; 16]),
            to: lobby.clone(),
            kind: MessageKind::Text,
            text: "/me is old".into(),
        };
        assert_eq!(state.outbox().expect("reads"), vec![old.clone()]);
        let edit =
            OutboxEntry { id: MessageId([8; 16]), to: lobby, kind: MessageKind::Edit { of: 3 }, text: "new".into() };
        state.push_outbox(std::slice::from_ref(&edit)).expect("pushes");
        drop(state);
        assert_eq!(ClientState::open(&path).expect("opens again").outbox().expect("reads"), vec![old, edit]);
    }
}
