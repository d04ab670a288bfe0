//! The PostgreSQL side of `palomar store copy` ([`Copyable`]): whole tables read in key order inside a
//! `REPEATABLE READ` transaction, and written with binary `COPY` inside the target's one transaction; the identity
//! sequences raised past the source's; the migration lock held so that no server starts meanwhile.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

use super::{
    Durability, MIGRATION_LOCK, PostgresStore, SERVER_APPLICATION, SERVERS_CONNECTED, col, connect, migrate, to_i64,
    to_u64,
};
use crate::Result;
use crate::copy::{
    AccountRecord, AuditRecord, AwayRecord, ConversationRecord, Copyable, Counts, CursorRecord, FloorRecord, HighWater,
    InviteRecord, MemberRecord, OperatorRecord, PAGE, ReadMarkerRecord, RemovalRecord, RoomRoleRecord,
    RoomSettingsRecord, SanctionRecord, SuspensionRecord,
};
use crate::keys::ConvId;
use crate::location::PostgresSettings;
use crate::records::{StoredMessage, kind_columns, revision_column};

/// `LIMIT` of every page.
const LIMIT: i64 = PAGE as i64;

impl PostgresStore {
    /// Opens the writer's connection to a database that holds a Palomar store, migrating it to this release's
    /// schema; `None` when the database holds none (no `palomar_schema`), which is left as it is.
    pub(crate) fn open_existing(settings: &PostgresSettings) -> Result<Option<PostgresStore>> {
        let mut client = connect(settings, Some(Durability::Full))?;
        let row = client.query_one("SELECT to_regclass('palomar_schema') IS NOT NULL", &[])?;
        if !col::<bool>(&row, 0)? {
            return Ok(None);
        }
        migrate(&mut client)?;
        Ok(Some(Self::with(client, settings, Some(Durability::Full))))
    }

    /// Writes `rows` with `statement` (a `COPY … FROM STDIN BINARY` of columns of `types`), each row's values as
    /// `values` hands them to the writer.
    fn copy_in<T>(
        &self,
        statement: &str,
        types: &[Type],
        rows: &[T],
        values: impl Fn(&mut BinaryCopyInWriter<'_>, &T) -> std::result::Result<(), postgres::Error>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let result = (|| {
            let mut client = self.client()?;
            let mut writer = BinaryCopyInWriter::new(client.copy_in(statement)?, types);
            for row in rows {
                values(&mut writer, row)?;
            }
            writer.finish()?;
            Ok(())
        })();
        self.note(result)
    }

    /// A page of bans or mutes after `key`, as `sql` selects them.
    fn sanctions_after(&self, sql: &'static str, key: (i64, i64)) -> Result<Vec<SanctionRecord>> {
        let rows = self.query(sql, &[&key.0, &key.1, &LIMIT])?;
        rows.iter()
            .map(|row| {
                Ok(SanctionRecord {
                    conversation: col(row, 0)?,
                    account: col(row, 1)?,
                    reason: col(row, 2)?,
                    by_actor: col(row, 3)?,
                    since_ms: col(row, 4)?,
                })
            })
            .collect()
    }

    /// Writes bans or mutes with `statement`, a `COPY` of their five columns.
    fn copy_sanctions_in(&self, statement: &str, rows: &[SanctionRecord]) -> Result<()> {
        self.copy_in(statement, &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::INT8], rows, |writer, row| {
            writer.write(&[&row.conversation, &row.account, &row.reason, &row.by_actor, &row.since_ms])
        })
    }
}

impl Copyable for PostgresStore {
    fn identity(&self) -> Result<String> {
        // The server's start time tells two servers on one port apart; the port, two started at one moment.
        let row = self.query_one(
            "SELECT current_database() || ' ' || pg_postmaster_start_time()::text || ' '
                 || coalesce(inet_server_port(), 0)::text",
            &[],
        )?;
        Ok(format!("postgres {}", col::<String>(&row, 0)?))
    }

    fn hold(&self) -> Result<u64> {
        // The lock a server's start takes to migrate (`migrate`), held by this session until it closes: a server
        // that starts now waits for the copy. One that started before is counted.
        self.query_one("SELECT pg_advisory_lock($1)::text", &[&MIGRATION_LOCK])?;
        let row = self.query_one(SERVERS_CONNECTED, &[&SERVER_APPLICATION])?;
        Ok(to_u64(col(&row, 0)?))
    }

    fn begin_snapshot(&self) -> Result<()> {
        self.open_transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    fn counts(&self) -> Result<Counts> {
        let row = self.query_one(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM conversations),
                    (SELECT count(*) FROM members), (SELECT count(*) FROM cursors),
                    (SELECT count(*) FROM direct_seq_floors), (SELECT count(*) FROM account_removals),
                    (SELECT count(*) FROM account_removals WHERE done_ms IS NULL), (SELECT count(*) FROM messages),
                    (SELECT count(*) FROM suspensions), (SELECT count(*) FROM audit_log),
                    (SELECT count(*) FROM operators), (SELECT count(*) FROM room_settings),
                    (SELECT count(*) FROM room_roles), (SELECT count(*) FROM room_bans),
                    (SELECT count(*) FROM room_mutes), (SELECT count(*) FROM room_invites),
                    (SELECT count(*) FROM away), (SELECT count(*) FROM read_markers)",
            &[],
        )?;
        let count = |index| -> Result<u64> { Ok(to_u64(col(&row, index)?)) };
        Ok(Counts {
            accounts: count(0)?,
            conversations: count(1)?,
            members: count(2)?,
            cursors: count(3)?,
            direct_seq_floors: count(4)?,
            account_removals: count(5)?,
            pending_removals: count(6)?,
            messages: count(7)?,
            suspensions: count(8)?,
            audit_entries: count(9)?,
            operators: count(10)?,
            room_settings: count(11)?,
            room_roles: count(12)?,
            room_bans: count(13)?,
            room_mutes: count(14)?,
            room_invites: count(15)?,
            away: count(16)?,
            read_markers: count(17)?,
        })
    }

    fn conversations_in_use(&self) -> Result<u64> {
        let row = self.query_one("SELECT count(*) FROM conversations WHERE key <> '#lobby' OR last_seq > 0", &[])?;
        Ok(to_u64(col(&row, 0)?))
    }

    fn high_water(&self) -> Result<HighWater> {
        // A sequence also counts the numbers it gave to rows rolled back or deleted since: all are used up.
        let row = self.query_one(
            "SELECT greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('accounts', 'id')::regclass), 0),
                             coalesce((SELECT max(id) FROM accounts), 0)),
                    greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('conversations', 'id')::regclass), 0),
                             coalesce((SELECT max(id) FROM conversations), 0)),
                    greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('account_removals', 'id')::regclass), 0),
                             coalesce((SELECT max(id) FROM account_removals), 0)),
                    greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('audit_log', 'id')::regclass), 0),
                             coalesce((SELECT max(id) FROM audit_log), 0))",
            &[],
        )?;
        Ok(HighWater {
            accounts: col(&row, 0)?,
            conversations: col(&row, 1)?,
            account_removals: col(&row, 2)?,
            audit_log: col(&row, 3)?,
        })
    }

    fn accounts_after(&self, id: i64) -> Result<Vec<AccountRecord>> {
        let rows = self.query(
            "SELECT id, nick, password_hash, created_ms FROM accounts WHERE id > $1 ORDER BY id LIMIT $2",
            &[&id, &LIMIT],
        )?;
        rows.iter()
            .map(|row| {
                Ok(AccountRecord {
                    id: col(row, 0)?,
                    nick: col(row, 1)?,
                    password_hash: col(row, 2)?,
                    created_ms: col(row, 3)?,
                })
            })
            .collect()
    }

    fn conversations_after(&self, id: i64) -> Result<Vec<ConversationRecord>> {
        let rows = self.query(
            "SELECT id, key, last_seq, first_seq FROM conversations WHERE id > $1 ORDER BY id LIMIT $2",
            &[&id, &LIMIT],
        )?;
        rows.iter()
            .map(|row| {
                Ok(ConversationRecord {
                    id: col(row, 0)?,
                    key: col(row, 1)?,
                    last_seq: col(row, 2)?,
                    first_seq: col(row, 3)?,
                })
            })
            .collect()
    }

    fn members_after(&self, key: (i64, i64)) -> Result<Vec<MemberRecord>> {
        let rows = self.query(
            "SELECT conversation, account FROM members WHERE (conversation, account) > ($1, $2)
             ORDER BY conversation, account LIMIT $3",
            &[&key.0, &key.1, &LIMIT],
        )?;
        rows.iter().map(|row| Ok(MemberRecord { conversation: col(row, 0)?, account: col(row, 1)? })).collect()
    }

    fn cursors_after(&self, key: (i64, i64)) -> Result<Vec<CursorRecord>> {
        let rows = self.query(
            "SELECT account, conversation, seq FROM cursors WHERE (account, conversation) > ($1, $2)
             ORDER BY account, conversation LIMIT $3",
            &[&key.0, &key.1, &LIMIT],
        )?;
        rows.iter()
            .map(|row| Ok(CursorRecord { account: col(row, 0)?, conversation: col(row, 1)?, seq: col(row, 2)? }))
            .collect()
    }

    fn floors_after(&self, nicks: &str) -> Result<Vec<FloorRecord>> {
        // Byte order, as SQLite's: the database's own collation may order "@a/b" strings otherwise.
        let rows = self.query(
            "SELECT nicks, last_seq FROM direct_seq_floors WHERE nicks COLLATE \"C\" > $1
             ORDER BY nicks COLLATE \"C\" LIMIT $2",
            &[&nicks, &LIMIT],
        )?;
        rows.iter().map(|row| Ok(FloorRecord { nicks: col(row, 0)?, last_seq: col(row, 1)? })).collect()
    }

    fn removals_after(&self, id: i64) -> Result<Vec<RemovalRecord>> {
        let rows = self.query(
            "SELECT id, nick, requested_ms, done_ms, removed FROM account_removals WHERE id > $1 ORDER BY id LIMIT $2",
            &[&id, &LIMIT],
        )?;
        rows.iter()
            .map(|row| {
                Ok(RemovalRecord {
                    id: col(row, 0)?,
                    nick: col(row, 1)?,
                    requested_ms: col(row, 2)?,
                    done_ms: col(row, 3)?,
                    removed: col(row, 4)?,
                })
            })
            .collect()
    }

    fn suspensions_after(&self, account: i64) -> Result<Vec<SuspensionRecord>> {
        let rows = self.query(
            "SELECT account, until_ms, reason, since_ms FROM suspensions WHERE account > $1 ORDER BY account LIMIT $2",
            &[&account, &LIMIT],
        )?;
        rows.iter()
            .map(|row| {
                Ok(SuspensionRecord {
                    account: col(row, 0)?,
                    until_ms: col(row, 1)?,
                    reason: col(row, 2)?,
                    since_ms: col(row, 3)?,
                })
            })
            .collect()
    }

    fn audit_after(&self, id: i64) -> Result<Vec<AuditRecord>> {
        let rows = self.query(
            "SELECT id, at_ms, actor, action, target, detail FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
            &[&id, &LIMIT],
        )?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: col(row, 0)?,
                    at_ms: col(row, 1)?,
                    actor: col(row, 2)?,
                    action: col(row, 3)?,
                    target: col(row, 4)?,
                    detail: col(row, 5)?,
                })
            })
            .collect()
    }

    fn operators_after(&self, account: i64) -> Result<Vec<OperatorRecord>> {
        let rows = self
            .query("SELECT account FROM operators WHERE account > $1 ORDER BY account LIMIT $2", &[&account, &LIMIT])?;
        rows.iter().map(|row| Ok(OperatorRecord { account: col(row, 0)? })).collect()
    }

    fn room_settings_after(&self, conversation: i64) -> Result<Vec<RoomSettingsRecord>> {
        let rows = self.query(
            "SELECT conversation, topic, invite_only, moderated FROM room_settings WHERE conversation > $1
             ORDER BY conversation LIMIT $2",
            &[&conversation, &LIMIT],
        )?;
        rows.iter()
            .map(|row| {
                Ok(RoomSettingsRecord {
                    conversation: col(row, 0)?,
                    topic: col(row, 1)?,
                    invite_only: col(row, 2)?,
                    moderated: col(row, 3)?,
                })
            })
            .collect()
    }

    fn room_roles_after(&self, key: (i64, i64)) -> Result<Vec<RoomRoleRecord>> {
        let rows = self.query(
            "SELECT conversation, account, role FROM room_roles WHERE (conversation, account) > ($1, $2)
             ORDER BY conversation, account LIMIT $3",
            &[&key.0, &key.1, &LIMIT],
        )?;
        rows.iter()
            .map(|row| Ok(RoomRoleRecord { conversation: col(row, 0)?, account: col(row, 1)?, role: col(row, 2)? }))
            .collect()
    }

    fn room_bans_after(&self, key: (i64, i64)) -> Result<Vec<SanctionRecord>> {
        self.sanctions_after(
            "SELECT conversation, account, reason, by_actor, since_ms FROM room_bans
             WHERE (conversation, account) > ($1, $2) ORDER BY conversation, account LIMIT $3",
            key,
        )
    }

    fn room_mutes_after(&self, key: (i64, i64)) -> Result<Vec<SanctionRecord>> {
        self.sanctions_after(
            "SELECT conversation, account, reason, by_actor, since_ms FROM room_mutes
             WHERE (conversation, account) > ($1, $2) ORDER BY conversation, account LIMIT $3",
            key,
        )
    }

    fn room_invites_after(&self, key: (i64, i64)) -> Result<Vec<InviteRecord>> {
        let rows = self.query(
            "SELECT conversation, account FROM room_invites WHERE (conversation, account) > ($1, $2)
             ORDER BY conversation, account LIMIT $3",
            &[&key.0, &key.1, &LIMIT],
        )?;
        rows.iter().map(|row| Ok(InviteRecord { conversation: col(row, 0)?, account: col(row, 1)? })).collect()
    }

    fn away_after(&self, account: i64) -> Result<Vec<AwayRecord>> {
        let rows = self.query(
            "SELECT account, message, since_ms FROM away WHERE account > $1 ORDER BY account LIMIT $2",
            &[&account, &LIMIT],
        )?;
        rows.iter()
            .map(|row| Ok(AwayRecord { account: col(row, 0)?, message: col(row, 1)?, since_ms: col(row, 2)? }))
            .collect()
    }

    fn read_markers_after(&self, key: (i64, i64)) -> Result<Vec<ReadMarkerRecord>> {
        let rows = self.query(
            "SELECT conversation, account, seq FROM read_markers WHERE (conversation, account) > ($1, $2)
             ORDER BY conversation, account LIMIT $3",
            &[&key.0, &key.1, &LIMIT],
        )?;
        rows.iter()
            .map(|row| Ok(ReadMarkerRecord { conversation: col(row, 0)?, account: col(row, 1)?, seq: col(row, 2)? }))
            .collect()
    }

    fn empty(&self) -> Result<()> {
        // `TRUNCATE` is transactional in PostgreSQL, and its lock keeps any other session off these tables until
        // the copy commits. Sequences keep their values: they are only ever raised, by `finish`. `nodes` and
        // `presence` only hold rows of servers that stopped without saying so (none runs during a copy).
        self.batch(
            "TRUNCATE accounts, conversations, members, cursors, direct_seq_floors, account_removals, messages,
                      suspensions, audit_log, operators, room_settings, room_roles, room_bans, room_mutes,
                      room_invites, away, read_markers, nodes, presence",
        )
    }

    fn insert_accounts(&self, rows: &[AccountRecord]) -> Result<()> {
        // `COPY` writes identity columns as given, as `INSERT … OVERRIDING SYSTEM VALUE` would.
        self.copy_in(
            "COPY accounts (id, nick, password_hash, created_ms) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.id, &row.nick, &row.password_hash, &row.created_ms]),
        )
    }

    fn insert_conversations(&self, rows: &[ConversationRecord]) -> Result<()> {
        self.copy_in(
            "COPY conversations (id, key, last_seq, first_seq) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::INT8, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.id, &row.key, &row.last_seq, &row.first_seq]),
        )
    }

    fn insert_members(&self, rows: &[MemberRecord]) -> Result<()> {
        self.copy_in(
            "COPY members (conversation, account) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.conversation, &row.account]),
        )
    }

    fn insert_cursors(&self, rows: &[CursorRecord]) -> Result<()> {
        self.copy_in(
            "COPY cursors (account, conversation, seq) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.account, &row.conversation, &row.seq]),
        )
    }

    fn insert_floors(&self, rows: &[FloorRecord]) -> Result<()> {
        self.copy_in(
            "COPY direct_seq_floors (nicks, last_seq) FROM STDIN BINARY",
            &[Type::TEXT, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.nicks, &row.last_seq]),
        )
    }

    fn insert_removals(&self, rows: &[RemovalRecord]) -> Result<()> {
        self.copy_in(
            "COPY account_removals (id, nick, requested_ms, done_ms, removed) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::INT8, Type::INT8, Type::BOOL],
            rows,
            |writer, row| writer.write(&[&row.id, &row.nick, &row.requested_ms, &row.done_ms, &row.removed]),
        )
    }

    fn insert_suspensions(&self, rows: &[SuspensionRecord]) -> Result<()> {
        self.copy_in(
            "COPY suspensions (account, until_ms, reason, since_ms) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8, Type::TEXT, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.account, &row.until_ms, &row.reason, &row.since_ms]),
        )
    }

    fn insert_audit(&self, rows: &[AuditRecord]) -> Result<()> {
        self.copy_in(
            "COPY audit_log (id, at_ms, actor, action, target, detail) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
            rows,
            |writer, row| writer.write(&[&row.id, &row.at_ms, &row.actor, &row.action, &row.target, &row.detail]),
        )
    }

    fn insert_operators(&self, rows: &[OperatorRecord]) -> Result<()> {
        self.copy_in("COPY operators (account) FROM STDIN BINARY", &[Type::INT8], rows, |writer, row| {
            writer.write(&[&row.account])
        })
    }

    fn insert_room_settings(&self, rows: &[RoomSettingsRecord]) -> Result<()> {
        self.copy_in(
            "COPY room_settings (conversation, topic, invite_only, moderated) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::BOOL, Type::BOOL],
            rows,
            |writer, row| writer.write(&[&row.conversation, &row.topic, &row.invite_only, &row.moderated]),
        )
    }

    fn insert_room_roles(&self, rows: &[RoomRoleRecord]) -> Result<()> {
        self.copy_in(
            "COPY room_roles (conversation, account, role) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8, Type::TEXT],
            rows,
            |writer, row| writer.write(&[&row.conversation, &row.account, &row.role]),
        )
    }

    fn insert_room_bans(&self, rows: &[SanctionRecord]) -> Result<()> {
        self.copy_sanctions_in(
            "COPY room_bans (conversation, account, reason, by_actor, since_ms) FROM STDIN BINARY",
            rows,
        )
    }

    fn insert_room_mutes(&self, rows: &[SanctionRecord]) -> Result<()> {
        self.copy_sanctions_in(
            "COPY room_mutes (conversation, account, reason, by_actor, since_ms) FROM STDIN BINARY",
            rows,
        )
    }

    fn insert_room_invites(&self, rows: &[InviteRecord]) -> Result<()> {
        self.copy_in(
            "COPY room_invites (conversation, account) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.conversation, &row.account]),
        )
    }

    fn insert_away(&self, rows: &[AwayRecord]) -> Result<()> {
        self.copy_in(
            "COPY away (account, message, since_ms) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.account, &row.message, &row.since_ms]),
        )
    }

    fn insert_read_markers(&self, rows: &[ReadMarkerRecord]) -> Result<()> {
        self.copy_in(
            "COPY read_markers (conversation, account, seq) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8, Type::INT8],
            rows,
            |writer, row| writer.write(&[&row.conversation, &row.account, &row.seq]),
        )
    }

    fn insert_messages(&self, conversation: ConvId, messages: &[StoredMessage]) -> Result<()> {
        self.copy_in(
            "COPY messages (conversation, seq, sender, client_id, ts, text, kind, of_seq, revision) FROM STDIN BINARY",
            &[
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::BYTEA,
                Type::INT8,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
            ],
            messages,
            |writer, message| {
                let (kind, of_seq) = kind_columns(message.kind);
                writer.write(&[
                    &conversation.0,
                    &to_i64(message.seq),
                    &message.from.as_str(),
                    &&message.id.0[..],
                    &to_i64(message.ts),
                    &message.text,
                    &kind,
                    &of_seq,
                    &revision_column(message.revision),
                ])
            },
        )
    }

    fn finish(&self, high: &HighWater) -> Result<()> {
        // The tables whose ids come from an identity sequence.
        for (table, value) in high.by_table() {
            if value > 0 {
                // The next id given out is above `value`, and above any the target's sequence gave out before.
                self.query_one(
                    "SELECT setval(pg_get_serial_sequence($1, 'id')::regclass, greatest($2::bigint,
                         coalesce(pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass), 0)))",
                    &[&table, &value],
                )?;
            }
        }
        Ok(())
    }
}
