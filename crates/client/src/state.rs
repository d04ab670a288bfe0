//! The client's durable state for one account in one chat (one server, or every node of one, which share a
//! store): the outbox (messages not yet acknowledged) and the cursors (the highest seq seen per conversation),
//! in one SQLite file.

use std::path::Path;
use std::time::Duration;

use palomar_proto::{Conversation, MessageId};
use rusqlite::{Connection, params};

use crate::owner_only;

/// A message typed but not yet acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: MessageId,
    pub to: Conversation,
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

impl ClientState {
    /// Opens (creating if needed) the state file `path`, owner-only, like the directories leading to it that
    /// it creates: the outbox holds what was typed, direct messages too.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(dir) = path.parent() {
            owner_only::create_dir_all(dir)?;
        }
        owner_only::prepare_database(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(ClientState { conn })
    }

    /// Adds messages to the outbox in one synced transaction.
    pub fn push_outbox(&mut self, entries: &[OutboxEntry]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT OR IGNORE INTO outbox (id, conversation, text) VALUES (?1, ?2, ?3)")?;
            for entry in entries {
                insert.execute(params![&entry.id.0[..], entry.to.to_string(), entry.text])?;
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
        let mut stmt = self.conn.prepare("SELECT id, conversation, text FROM outbox ORDER BY position")?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, to, text) = row?;
            // A row this program could not have written is skipped rather than blocking the rest.
            if let (Ok(id), Ok(to)) = (<[u8; 16]>::try_from(id.as_slice()), Conversation::parse(&to)) {
                entries.push(OutboxEntry { id: MessageId(id), to, text });
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
                .map(|i| OutboxEntry { id: MessageId([i; 16]), to: lobby.clone(), text: format!("m{i}") })
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
}
