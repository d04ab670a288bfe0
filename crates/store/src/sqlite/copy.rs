//! The SQLite side of `palomar store copy` ([`Copyable`]): whole tables read in key order, and written with
//! prepared statements inside the target's one transaction, the index of the log (`message_runs`) built as the
//! messages go in rather than copied.

use rusqlite::{Row, params};

use super::{SqliteStore, to_i64, to_u64};
use crate::Result;
use crate::copy::{
    AccountRecord, AuditRecord, AwayRecord, ConversationRecord, Copyable, Counts, CursorRecord, FloorRecord, HighWater,
    InviteRecord, MemberRecord, OperatorRecord, PAGE, ReadMarkerRecord, RemovalRecord, RoomRoleRecord,
    RoomSettingsRecord, SanctionRecord, SuspensionRecord,
};
use crate::keys::ConvId;
use crate::records::{StoredMessage, kind_columns, revision_column};

/// `LIMIT` of every page.
const LIMIT: i64 = PAGE as i64;

impl SqliteStore {
    fn count(&self, sql: &str) -> Result<u64> {
        Ok(to_u64(self.conn.query_row(sql, [], |row| row.get(0))?))
    }

    /// A page of `table` (`room_bans` or `room_mutes`) after `key`.
    fn sanctions_after(&self, table: &str, key: (i64, i64)) -> Result<Vec<SanctionRecord>> {
        self.page(
            &format!(
                "SELECT conversation, account, reason, by_actor, since_ms FROM {table}
                 WHERE (conversation, account) > (?1, ?2) ORDER BY conversation, account LIMIT ?3"
            ),
            params![key.0, key.1, LIMIT],
            |row| {
                Ok(SanctionRecord {
                    conversation: row.get(0)?,
                    account: row.get(1)?,
                    reason: row.get(2)?,
                    by_actor: row.get(3)?,
                    since_ms: row.get(4)?,
                })
            },
        )
    }

    fn insert_sanctions(&self, table: &str, rows: &[SanctionRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO {table} (conversation, account, reason, by_actor, since_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
        ))?;
        for row in rows {
            insert.execute(params![row.conversation, row.account, row.reason, row.by_actor, row.since_ms])?;
        }
        Ok(())
    }

    /// Runs `sql` (whose last parameter is the page's `LIMIT`) with `key`, mapping each row with `map`.
    fn page<T>(
        &self,
        sql: &str,
        key: impl rusqlite::Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(key, map)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Copyable for SqliteStore {
    fn identity(&self) -> Result<String> {
        let path = self.conn.path().unwrap_or_default();
        Ok(format!("sqlite {}", std::fs::canonicalize(path)?.display()))
    }

    fn hold(&self) -> Result<u64> {
        Ok(0)
    }

    fn begin_snapshot(&self) -> Result<()> {
        // In WAL mode a read transaction sees the database as of its first read until it ends.
        self.conn.execute_batch("BEGIN")?;
        self.count("SELECT count(*) FROM sqlite_master")?;
        Ok(())
    }

    fn counts(&self) -> Result<Counts> {
        Ok(Counts {
            accounts: self.count("SELECT count(*) FROM accounts")?,
            conversations: self.count("SELECT count(*) FROM conversations")?,
            members: self.count("SELECT count(*) FROM members")?,
            cursors: self.count("SELECT count(*) FROM cursors")?,
            direct_seq_floors: self.count("SELECT count(*) FROM direct_seq_floors")?,
            account_removals: self.count("SELECT count(*) FROM account_removals")?,
            pending_removals: self.count("SELECT count(*) FROM account_removals WHERE done_ms IS NULL")?,
            suspensions: self.count("SELECT count(*) FROM suspensions")?,
            audit_entries: self.count("SELECT count(*) FROM audit_log")?,
            operators: self.count("SELECT count(*) FROM operators")?,
            room_settings: self.count("SELECT count(*) FROM room_settings")?,
            room_roles: self.count("SELECT count(*) FROM room_roles")?,
            room_bans: self.count("SELECT count(*) FROM room_bans")?,
            room_mutes: self.count("SELECT count(*) FROM room_mutes")?,
            room_invites: self.count("SELECT count(*) FROM room_invites")?,
            away: self.count("SELECT count(*) FROM away")?,
            read_markers: self.count("SELECT count(*) FROM read_markers")?,
            messages: self.count("SELECT count(*) FROM messages")?,
        })
    }

    fn conversations_in_use(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM conversations WHERE key <> '#lobby' OR last_seq > 0")
    }

    fn high_water(&self) -> Result<HighWater> {
        let of = |table: &str| -> Result<i64> {
            Ok(self.conn.query_row(
                &format!(
                    "SELECT max(ifnull((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0),
                                ifnull((SELECT max(id) FROM {table}), 0))"
                ),
                [table],
                |row| row.get(0),
            )?)
        };
        Ok(HighWater {
            accounts: of("accounts")?,
            conversations: of("conversations")?,
            account_removals: of("account_removals")?,
            audit_log: of("audit_log")?,
        })
    }

    fn accounts_after(&self, id: i64) -> Result<Vec<AccountRecord>> {
        self.page(
            "SELECT id, nick, password_hash, created_ms FROM accounts WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![id, LIMIT],
            |row| {
                Ok(AccountRecord {
                    id: row.get(0)?,
                    nick: row.get(1)?,
                    password_hash: row.get(2)?,
                    created_ms: row.get(3)?,
                })
            },
        )
    }

    fn conversations_after(&self, id: i64) -> Result<Vec<ConversationRecord>> {
        self.page(
            "SELECT id, key, last_seq, first_seq FROM conversations WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![id, LIMIT],
            |row| {
                Ok(ConversationRecord {
                    id: row.get(0)?,
                    key: row.get(1)?,
                    last_seq: row.get(2)?,
                    first_seq: row.get(3)?,
                })
            },
        )
    }

    fn members_after(&self, key: (i64, i64)) -> Result<Vec<MemberRecord>> {
        self.page(
            "SELECT conversation, account FROM members WHERE (conversation, account) > (?1, ?2)
             ORDER BY conversation, account LIMIT ?3",
            params![key.0, key.1, LIMIT],
            |row| Ok(MemberRecord { conversation: row.get(0)?, account: row.get(1)? }),
        )
    }

    fn cursors_after(&self, key: (i64, i64)) -> Result<Vec<CursorRecord>> {
        self.page(
            "SELECT account, conversation, seq FROM cursors WHERE (account, conversation) > (?1, ?2)
             ORDER BY account, conversation LIMIT ?3",
            params![key.0, key.1, LIMIT],
            |row| Ok(CursorRecord { account: row.get(0)?, conversation: row.get(1)?, seq: row.get(2)? }),
        )
    }

    fn floors_after(&self, nicks: &str) -> Result<Vec<FloorRecord>> {
        // SQLite compares text by its bytes unless told otherwise.
        self.page(
            "SELECT nicks, last_seq FROM direct_seq_floors WHERE nicks > ?1 ORDER BY nicks LIMIT ?2",
            params![nicks, LIMIT],
            |row| Ok(FloorRecord { nicks: row.get(0)?, last_seq: row.get(1)? }),
        )
    }

    fn removals_after(&self, id: i64) -> Result<Vec<RemovalRecord>> {
        self.page(
            "SELECT id, nick, requested_ms, done_ms, removed FROM account_removals WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![id, LIMIT],
            |row| {
                Ok(RemovalRecord {
                    id: row.get(0)?,
                    nick: row.get(1)?,
                    requested_ms: row.get(2)?,
                    done_ms: row.get(3)?,
                    removed: row.get(4)?,
                })
            },
        )
    }

    fn suspensions_after(&self, account: i64) -> Result<Vec<SuspensionRecord>> {
        self.page(
            "SELECT account, until_ms, reason, since_ms FROM suspensions WHERE account > ?1 ORDER BY account LIMIT ?2",
            params![account, LIMIT],
            |row| {
                Ok(SuspensionRecord {
                    account: row.get(0)?,
                    until_ms: row.get(1)?,
                    reason: row.get(2)?,
                    since_ms: row.get(3)?,
                })
            },
        )
    }

    fn audit_after(&self, id: i64) -> Result<Vec<AuditRecord>> {
        self.page(
            "SELECT id, at_ms, actor, action, target, detail FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![id, LIMIT],
            |row| {
                Ok(AuditRecord {
                    id: row.get(0)?,
                    at_ms: row.get(1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    target: row.get(4)?,
                    detail: row.get(5)?,
                })
            },
        )
    }

    fn operators_after(&self, account: i64) -> Result<Vec<OperatorRecord>> {
        self.page(
            "SELECT account FROM operators WHERE account > ?1 ORDER BY account LIMIT ?2",
            params![account, LIMIT],
            |row| Ok(OperatorRecord { account: row.get(0)? }),
        )
    }

    fn room_settings_after(&self, conversation: i64) -> Result<Vec<RoomSettingsRecord>> {
        self.page(
            "SELECT conversation, topic, invite_only, moderated FROM room_settings WHERE conversation > ?1
             ORDER BY conversation LIMIT ?2",
            params![conversation, LIMIT],
            |row| {
                Ok(RoomSettingsRecord {
                    conversation: row.get(0)?,
                    topic: row.get(1)?,
                    invite_only: row.get(2)?,
                    moderated: row.get(3)?,
                })
            },
        )
    }

    fn room_roles_after(&self, key: (i64, i64)) -> Result<Vec<RoomRoleRecord>> {
        self.page(
            "SELECT conversation, account, role FROM room_roles WHERE (conversation, account) > (?1, ?2)
             ORDER BY conversation, account LIMIT ?3",
            params![key.0, key.1, LIMIT],
            |row| Ok(RoomRoleRecord { conversation: row.get(0)?, account: row.get(1)?, role: row.get(2)? }),
        )
    }

    fn room_bans_after(&self, key: (i64, i64)) -> Result<Vec<SanctionRecord>> {
        self.sanctions_after("room_bans", key)
    }

    fn room_mutes_after(&self, key: (i64, i64)) -> Result<Vec<SanctionRecord>> {
        self.sanctions_after("room_mutes", key)
    }

    fn room_invites_after(&self, key: (i64, i64)) -> Result<Vec<InviteRecord>> {
        self.page(
            "SELECT conversation, account FROM room_invites WHERE (conversation, account) > (?1, ?2)
             ORDER BY conversation, account LIMIT ?3",
            params![key.0, key.1, LIMIT],
            |row| Ok(InviteRecord { conversation: row.get(0)?, account: row.get(1)? }),
        )
    }

    fn away_after(&self, account: i64) -> Result<Vec<AwayRecord>> {
        self.page(
            "SELECT account, message, since_ms FROM away WHERE account > ?1 ORDER BY account LIMIT ?2",
            params![account, LIMIT],
            |row| Ok(AwayRecord { account: row.get(0)?, message: row.get(1)?, since_ms: row.get(2)? }),
        )
    }

    fn read_markers_after(&self, key: (i64, i64)) -> Result<Vec<ReadMarkerRecord>> {
        self.page(
            "SELECT conversation, account, seq FROM read_markers WHERE (conversation, account) > (?1, ?2)
             ORDER BY conversation, account LIMIT ?3",
            params![key.0, key.1, LIMIT],
            |row| Ok(ReadMarkerRecord { conversation: row.get(0)?, account: row.get(1)?, seq: row.get(2)? }),
        )
    }

    fn empty(&self) -> Result<()> {
        // `sqlite_sequence` stays: the counters are only ever raised, by `finish`.
        self.conn.execute_batch(
            "DELETE FROM accounts;
             DELETE FROM conversations;
             DELETE FROM members;
             DELETE FROM cursors;
             DELETE FROM direct_seq_floors;
             DELETE FROM account_removals;
             DELETE FROM suspensions;
             DELETE FROM audit_log;
             DELETE FROM operators;
             DELETE FROM room_settings;
             DELETE FROM room_roles;
             DELETE FROM room_bans;
             DELETE FROM room_mutes;
             DELETE FROM room_invites;
             DELETE FROM away;
             DELETE FROM read_markers;
             DELETE FROM messages;
             DELETE FROM message_runs;
             UPDATE message_runs_state SET indexed_through = 0;
             UPDATE message_search_state SET indexed_through = 0;",
        )?;
        *self.counters.borrow_mut() = super::Counters::default();
        Ok(())
    }

    fn insert_accounts(&self, rows: &[AccountRecord]) -> Result<()> {
        let mut insert = self
            .conn
            .prepare_cached("INSERT INTO accounts (id, nick, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)")?;
        for row in rows {
            insert.execute(params![row.id, row.nick, row.password_hash, row.created_ms])?;
        }
        Ok(())
    }

    fn insert_conversations(&self, rows: &[ConversationRecord]) -> Result<()> {
        let mut insert = self
            .conn
            .prepare_cached("INSERT INTO conversations (id, key, last_seq, first_seq) VALUES (?1, ?2, ?3, ?4)")?;
        for row in rows {
            insert.execute(params![row.id, row.key, row.last_seq, row.first_seq])?;
        }
        Ok(())
    }

    fn insert_members(&self, rows: &[MemberRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached("INSERT INTO members (conversation, account) VALUES (?1, ?2)")?;
        for row in rows {
            insert.execute(params![row.conversation, row.account])?;
        }
        Ok(())
    }

    fn insert_cursors(&self, rows: &[CursorRecord]) -> Result<()> {
        let mut insert =
            self.conn.prepare_cached("INSERT INTO cursors (account, conversation, seq) VALUES (?1, ?2, ?3)")?;
        for row in rows {
            insert.execute(params![row.account, row.conversation, row.seq])?;
        }
        Ok(())
    }

    fn insert_floors(&self, rows: &[FloorRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached("INSERT INTO direct_seq_floors (nicks, last_seq) VALUES (?1, ?2)")?;
        for row in rows {
            insert.execute(params![row.nicks, row.last_seq])?;
        }
        Ok(())
    }

    fn insert_removals(&self, rows: &[RemovalRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO account_removals (id, nick, requested_ms, done_ms, removed) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for row in rows {
            insert.execute(params![row.id, row.nick, row.requested_ms, row.done_ms, row.removed])?;
        }
        Ok(())
    }

    fn insert_suspensions(&self, rows: &[SuspensionRecord]) -> Result<()> {
        let mut insert = self
            .conn
            .prepare_cached("INSERT INTO suspensions (account, until_ms, reason, since_ms) VALUES (?1, ?2, ?3, ?4)")?;
        for row in rows {
            insert.execute(params![row.account, row.until_ms, row.reason, row.since_ms])?;
        }
        Ok(())
    }

    fn insert_audit(&self, rows: &[AuditRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO audit_log (id, at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for row in rows {
            insert.execute(params![row.id, row.at_ms, row.actor, row.action, row.target, row.detail])?;
        }
        Ok(())
    }

    fn insert_operators(&self, rows: &[OperatorRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached("INSERT INTO operators (account) VALUES (?1)")?;
        for row in rows {
            insert.execute([row.account])?;
        }
        Ok(())
    }

    fn insert_room_settings(&self, rows: &[RoomSettingsRecord]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO room_settings (conversation, topic, invite_only, moderated) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for row in rows {
            insert.execute(params![row.conversation, row.topic, row.invite_only, row.moderated])?;
        }
        Ok(())
    }

    fn insert_room_roles(&self, rows: &[RoomRoleRecord]) -> Result<()> {
        let mut insert =
            self.conn.prepare_cached("INSERT INTO room_roles (conversation, account, role) VALUES (?1, ?2, ?3)")?;
        for row in rows {
            insert.execute(params![row.conversation, row.account, row.role])?;
        }
        Ok(())
    }

    fn insert_room_bans(&self, rows: &[SanctionRecord]) -> Result<()> {
        self.insert_sanctions("room_bans", rows)
    }

    fn insert_room_mutes(&self, rows: &[SanctionRecord]) -> Result<()> {
        self.insert_sanctions("room_mutes", rows)
    }

    fn insert_room_invites(&self, rows: &[InviteRecord]) -> Result<()> {
        let mut insert =
            self.conn.prepare_cached("INSERT INTO room_invites (conversation, account) VALUES (?1, ?2)")?;
        for row in rows {
            insert.execute(params![row.conversation, row.account])?;
        }
        Ok(())
    }

    fn insert_away(&self, rows: &[AwayRecord]) -> Result<()> {
        let mut insert =
            self.conn.prepare_cached("INSERT INTO away (account, message, since_ms) VALUES (?1, ?2, ?3)")?;
        for row in rows {
            insert.execute(params![row.account, row.message, row.since_ms])?;
        }
        Ok(())
    }

    fn insert_read_markers(&self, rows: &[ReadMarkerRecord]) -> Result<()> {
        let mut insert =
            self.conn.prepare_cached("INSERT INTO read_markers (conversation, account, seq) VALUES (?1, ?2, ?3)")?;
        for row in rows {
            insert.execute(params![row.conversation, row.account, row.seq])?;
        }
        Ok(())
    }

    fn insert_messages(&self, conversation: ConvId, messages: &[StoredMessage]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO messages (conversation, seq, sender, client_id, ts, text, kind, of_seq, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut indexed = Vec::with_capacity(messages.len());
        for message in messages {
            let (kind, of_seq) = kind_columns(message.kind);
            let row = insert.insert(params![
                conversation,
                to_i64(message.seq),
                message.from.as_str(),
                &message.id.0[..],
                to_i64(message.ts),
                message.text,
                kind,
                of_seq,
                revision_column(message.revision)
            ])?;
            indexed.push((message.seq, row));
        }
        // Conversation by conversation in seq order, so each conversation's row ids grow with its seqs, as the
        // runs require.
        self.add_to_runs(conversation, &indexed)
    }

    fn finish(&self, high: &HighWater) -> Result<()> {
        // The `AUTOINCREMENT` tables: `sqlite_sequence` keeps the highest id each gave out.
        for (table, value) in high.by_table() {
            // A table has a row in `sqlite_sequence` once it gave out an id (or had one inserted).
            let raised = self
                .conn
                .execute("UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1", params![table, value])?;
            if raised == 0 {
                self.conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)", params![table, value])?;
            }
        }
        self.mark_all_indexed()?;
        // Indexed for search in one statement, rather than message by message as they went in.
        self.index_waiting_for_search(1)
    }
}
