//! The writer thread: it takes every queued change at once (up to [`MAX_GROUP`]), applies them in one
//! transaction with the pending cursors and read markers, commits, then publishes the new messages to the [`Hub`] and answers each
//! change. If anything in the group fails, nothing in it is kept and every change is answered with the failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use palomar_proto::{ErrorCode, MessageId, MessageKind, Nick, Revision, Role, RoomName, unix_ms};
use palomar_store::{
    Account, AccountId, ConvId, ConvKey, NewMessage, NodeId, Notice, Removed, Store, StoreError, StoredMessage,
};
use tokio::sync::mpsc;

use super::{AppendOutcome, Change, JoinOutcome, PendingPositions, Reply, Request, SendOrder, WriteFailed};
use crate::hub::Hub;
use crate::moderation;
use crate::telemetry::Metrics;

/// Most operations applied in one transaction.
const MAX_GROUP: usize = 2_048;

/// The positions that wait for a commit, shared with the sessions' side.
pub(super) struct Pending {
    pub(super) cursors: Arc<PendingPositions<AccountId>>,
    pub(super) read_markers: Arc<PendingPositions<Account>>,
}

/// Sends a change's answer once its group has committed, or the group's failure.
type Answer = Box<dyn FnOnce(Result<(), &WriteFailed>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, value: T) -> Answer {
    Box::new(move |committed| {
        let _ = reply.send(committed.map(|()| value).map_err(WriteFailed::clone));
    })
}

/// The answer of a change that was not applied: only the group's failure can be sent.
fn failure<T: Send + 'static>(reply: Reply<T>) -> Answer {
    Box::new(move |committed| {
        if let Err(failed) = committed {
            let _ = reply.send(Err(failed.clone()));
        }
    })
}

impl Change {
    /// The answer that tells whoever waits for this change that it failed.
    fn into_failure(self) -> Option<Answer> {
        match self {
            Change::Append { reply, .. } => Some(failure(reply)),
            Change::SaveCursors { reply } => reply.map(failure),
            Change::JoinRoom { reply, .. } => Some(failure(reply)),
            Change::LeaveRoom { reply, .. } => Some(failure(reply)),
            Change::OpenDirect { reply, .. } => Some(failure(reply)),
            Change::Register { reply, .. } => Some(failure(reply)),
            Change::Prune { .. } => None,
            Change::RemoveAccount { reply, .. } => Some(failure(reply)),
            Change::SetAway { reply, .. } => Some(failure(reply)),
            Change::Probe { reply } | Change::IndexForSearch { reply } => Some(failure(reply)),
            Change::Moderate { reply, .. } => Some(failure(reply)),
        }
    }
}

/// What a committed change leaves to do besides answering: a message to publish, an account removal to tell the
/// hub about.
enum Aftermath {
    Nothing,
    Publish(ConvId, StoredMessage),
    AccountRemoved(Removed),
    AwayChanged(Account, Option<String>),
}

/// A change applied in the open transaction: its answer and aftermath, for once the group commits.
struct Applied {
    answer: Option<Answer>,
    aftermath: Aftermath,
}

/// A change that failed, which fails its whole group: the error, and the answer that tells its requester.
type NotApplied = (StoreError, Option<Answer>);

/// Answers `reply` with `result` once the group commits, or fails the group.
fn answered<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Result<Applied, NotApplied> {
    match result {
        Ok(value) => Ok(Applied { answer: Some(answer(reply, value)), aftermath: Aftermath::Nothing }),
        Err(error) => Err((error, Some(failure(reply)))),
    }
}

/// Applies `change` in the open transaction; a message joins `run`, which the caller appends with its neighbours.
fn apply(db: &dyn Store, change: Change, now: u64, run: &mut Vec<QueuedAppend>) -> Result<Option<Applied>, NotApplied> {
    let applied = match change {
        Change::Append { order, reply, .. } if order.is_halted() => {
            let refused =
                WriteFailed("an earlier message of this connection could not be stored; it goes first".into());
            Ok(Applied {
                answer: Some(Box::new(move |_| drop(reply.send(Err(refused))))),
                aftermath: Aftermath::Nothing,
            })
        }
        Change::Append { conv, key, sender, id, text, kind, reply, .. } => {
            if kind.refers_to().is_some() {
                match reference_refused(db, conv, (&sender, id), kind, &text, now) {
                    Ok(None) => {}
                    Ok(Some(refused)) => {
                        return Ok(Some(Applied {
                            answer: Some(answer(reply, refused)),
                            aftermath: Aftermath::Nothing,
                        }));
                    }
                    Err(error) => return Err((error, Some(failure(reply)))),
                }
            }
            run.push(QueuedAppend { conv, key, sender, id, text, kind, reply });
            return Ok(None);
        }
        Change::SaveCursors { reply } => {
            Ok(Applied { answer: reply.map(|reply| answer(reply, ())), aftermath: Aftermath::Nothing })
        }
        Change::JoinRoom { room, account, window, max_rooms, reply } => {
            answered(reply, join_room(db, room, account, window, max_rooms))
        }
        Change::LeaveRoom { conv, account, reply } => answered(reply, db.remove_member(conv, account)),
        Change::OpenDirect { a, b, reply } => answered(reply, db.open_direct(&a, &b)),
        Change::Register { nick, password_hash, window, reply } => {
            answered(reply, register(db, &nick, &password_hash, window, now))
        }
        Change::Prune { keep } => match db.prune(keep) {
            Ok(removed) => {
                if removed > 0 {
                    tracing::info!(removed, keep, "retention removed old messages");
                }
                Ok(Applied { answer: None, aftermath: Aftermath::Nothing })
            }
            Err(error) => Err((error, None)),
        },
        Change::RemoveAccount { request, nick, reply } => match remove_account(db, request, &nick, now) {
            Ok(removed) => {
                let aftermath = removed.map_or(Aftermath::Nothing, Aftermath::AccountRemoved);
                Ok(Applied { answer: Some(answer(reply, ())), aftermath })
            }
            Err(error) => Err((error, Some(failure(reply)))),
        },
        Change::SetAway { account, message, reply } => match db.set_away(account.id, message.as_deref(), now) {
            Ok(()) => {
                Ok(Applied { answer: Some(answer(reply, ())), aftermath: Aftermath::AwayChanged(account, message) })
            }
            Err(error) => Err((error, Some(failure(reply)))),
        },
        Change::Probe { reply } => answered(reply, db.write_probe()),
        Change::IndexForSearch { reply } => answered(reply, db.index_for_search()),
        Change::Moderate { conv, target, write, audit, reply } => {
            answered(reply, moderation::apply(db, conv, target, &write, &audit, now))
        }
    };
    applied.map(Some)
}

/// A message of the group waiting to be appended with the others next to it.
struct QueuedAppend {
    conv: ConvId,
    key: ConvKey,
    sender: Account,
    id: MessageId,
    text: String,
    kind: MessageKind,
    reply: Reply<AppendOutcome>,
}

/// Why an entry by `sender` that refers to an earlier message (an edit, a deletion, a reply, a reaction) may not be
/// stored (`None`: it may), judged against that message as committed so far, in the open transaction: so of two
/// deletions of one message, or two equal reactions, the second is refused. A moderator's deletion of another's
/// message is written to the audit log here.
fn reference_refused(
    db: &dyn Store,
    conv: ConvId,
    (sender, id): (&Account, MessageId),
    kind: MessageKind,
    text: &str,
    now: u64,
) -> Result<Option<AppendOutcome>, StoreError> {
    // A retry is answered as the first attempt was, whatever became of the message since.
    if db.sent_before(&sender.nick, id)? {
        return Ok(None);
    }
    let unknown = |why: String| Ok(Some(AppendOutcome::Refused { code: ErrorCode::UnknownMessage, why }));
    let not_allowed = |why: String| Ok(Some(AppendOutcome::Refused { code: ErrorCode::NotAllowed, why }));
    let Some(of) = kind.refers_to() else { return Ok(None) };
    let Some(row) = db.conversation_by_id(conv)? else { return Ok(Some(AppendOutcome::Gone)) };
    let Some(target) = db.message_at(&row, of)? else {
        return unknown(format!("there is no message #{of} here (or it is too old to be kept)"));
    };
    if !target.kind.is_message() {
        return unknown(format!("#{of} is an edit, a deletion or a reaction, not a message"));
    }
    if target.revision == Revision::Deleted {
        return unknown(format!("#{of} was deleted"));
    }
    // A nickname names one account at a time: a message under it was this account's if sent since it was created
    // (not a removed account's of the same name).
    let created = db.account_created_ms(sender.id)?;
    let own = target.from == sender.nick && created.is_some_and(|created| target.ts >= created);
    match (kind, &row.key) {
        (MessageKind::Reply { .. }, _) => Ok(None),
        (MessageKind::Reaction { added, .. }, _) => {
            let reacted = db.has_reacted(conv, of, (&sender.nick, created.unwrap_or(u64::MAX)), text)?;
            match (added, reacted) {
                (true, true) => not_allowed(format!("you reacted {text} to #{of} already")),
                (false, false) => not_allowed(format!("you have no {text} on #{of} to take back")),
                _ => Ok(None),
            }
        }
        (_, _) if own => Ok(None),
        (MessageKind::Edit { .. }, _) => not_allowed("only its author can edit a message".into()),
        (MessageKind::Deletion { .. }, ConvKey::Room(room)) => {
            let moderates = db.standing(conv, sender.id)?.role >= Role::Moderator || db.is_operator(sender.id)?;
            if !moderates {
                return not_allowed("only its author or a moderator of the room can delete a message".into());
            }
            let target_of = format!("#{room} #{of} by {}", target.from);
            db.record_audit(now, sender.nick.as_str(), "message delete", &target_of, text)?;
            Ok(None)
        }
        _ => not_allowed("only its author can delete a message here".into()),
    }
}

/// Appends a run of the group's messages in one call to the store (one statement on PostgreSQL) and empties
/// `run`. On a failure, the answers that tell their senders.
fn append_run(
    db: &dyn Store,
    run: &mut Vec<QueuedAppend>,
    now: u64,
    applied: &mut Vec<Applied>,
) -> Result<(), (StoreError, Vec<Answer>)> {
    if run.is_empty() {
        return Ok(());
    }
    let messages: Vec<NewMessage<'_>> = run
        .iter()
        .map(|queued| NewMessage {
            conversation: queued.conv,
            sender: &queued.sender.nick,
            id: queued.id,
            text: &queued.text,
            kind: queued.kind,
        })
        .collect();
    let outcomes = match db.append_all(&messages, now) {
        Ok(outcomes) if outcomes.len() == messages.len() => Ok(outcomes),
        Ok(_) => Err(StoreError::Corrupt("the store answered a batch of appends with another count".into())),
        Err(error) => Err(error),
    };
    drop(messages);
    let outcomes = outcomes.map_err(|error| (error, run.drain(..).map(|queued| failure(queued.reply)).collect()))?;
    for (queued, outcome) in run.drain(..).zip(outcomes) {
        let QueuedAppend { conv, key, sender, id, text, kind, reply } = queued;
        applied.push(match outcome {
            Some(outcome) => {
                let aftermath = if outcome.duplicate {
                    Aftermath::Nothing
                } else {
                    let stored = StoredMessage {
                        key,
                        seq: outcome.seq,
                        id,
                        from: sender.nick,
                        ts: outcome.ts,
                        text,
                        kind,
                        revision: Revision::Original,
                    };
                    Aftermath::Publish(conv, stored)
                };
                Applied { answer: Some(answer(reply, AppendOutcome::Appended(outcome))), aftermath }
            }
            // Refused alone: the rest of the group commits.
            None => Applied { answer: Some(answer(reply, AppendOutcome::Gone)), aftermath: Aftermath::Nothing },
        });
    }
    Ok(())
}

fn join_room(
    db: &dyn Store,
    room: RoomName,
    account: AccountId,
    window: u64,
    max_rooms: u64,
) -> Result<JoinOutcome, StoreError> {
    let key = ConvKey::Room(room);
    let existing = db.conversation(&key)?;
    let mut invited = false;
    if let Some(row) = &existing
        && !db.is_member(row.id, account)?
    {
        let standing = db.standing(row.id, account)?;
        if let Some(ban) = standing.banned {
            return Ok(JoinOutcome::Banned(ban));
        }
        invited = standing.invited;
        if !invited
            && standing.role < Role::Moderator
            && db.room_settings(row.id)?.invite_only
            && !db.is_operator(account)?
        {
            return Ok(JoinOutcome::NotInvited);
        }
    }
    let row = db.ensure_conversation(&key)?;
    if !db.is_member(row.id, account)? && db.room_count(account)? >= max_rooms {
        return Ok(JoinOutcome::TooManyRooms);
    }
    let added = db.add_member(row.id, account, row.last_seq.saturating_sub(window))?;
    if existing.is_none() {
        db.set_role(row.id, account, Role::Owner)?;
    }
    if invited {
        db.set_invited(row.id, account, false)?;
    }
    Ok(JoinOutcome::Joined { row, added })
}

fn register(
    db: &dyn Store,
    nick: &Nick,
    password_hash: &str,
    window: u64,
    now: u64,
) -> Result<Option<Account>, StoreError> {
    let created = db.create_account(nick, password_hash, now)?;
    if let Some(account) = &created {
        let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
        db.add_member(lobby.id, account.id, lobby.last_seq.saturating_sub(window))?;
    }
    Ok(created)
}

fn remove_account(db: &dyn Store, request: i64, nick: &Nick, now: u64) -> Result<Option<Removed>, StoreError> {
    let removed = db.remove_account(nick)?;
    db.finish_removal(request, removed.is_some(), now)?;
    if let Some(removed) = &removed {
        tracing::info!(%nick, account = %removed.account.id, directs = removed.deleted_directs.len(), "account removed");
    }
    Ok(removed)
}

pub(super) fn run(
    db: Box<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    hub: Arc<Hub>,
    node: Option<NodeId>,
    pending: &Pending,
    metrics: &Metrics,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.blocking_recv_many(&mut group, MAX_GROUP) > 0 {
        commit_group(&*db, &mut group, &hub, node, pending, metrics);
    }
    // The sessions are gone: their last acknowledgements and read markers are saved on the way out.
    commit_group(&*db, &mut group, &hub, node, pending, metrics);
    tracing::debug!("store writer stopped");
}

/// What the other nodes must hear of the applied changes: the range of new seqs of each conversation, the
/// removals of accounts, and the away messages set.
fn notices(applied: &[Applied]) -> Vec<Notice> {
    let mut appended: BTreeMap<ConvId, (u64, u64)> = BTreeMap::new();
    let mut notices = Vec::new();
    for Applied { aftermath, .. } in applied {
        match aftermath {
            Aftermath::Nothing => {}
            Aftermath::Publish(conv, message) => {
                let range = appended.entry(*conv).or_insert((message.seq, message.seq));
                range.0 = range.0.min(message.seq);
                range.1 = range.1.max(message.seq);
            }
            Aftermath::AwayChanged(account, _) => notices.push(Notice::Away { account: account.clone() }),
            Aftermath::AccountRemoved(removed) => {
                notices.push(Notice::AccountRemoved { account: removed.account.id });
                notices.extend(removed.deleted_directs.iter().map(|deleted| Notice::DirectDeleted {
                    conv: deleted.conversation,
                    removed: removed.account.nick.clone(),
                    peer: deleted.peer.id,
                }));
            }
        }
    }
    appended.into_iter().map(|(conv, (first, last))| Notice::Appended { conv, first, last }).chain(notices).collect()
}

fn commit_group(
    db: &dyn Store,
    group: &mut Vec<Request>,
    hub: &Hub,
    node: Option<NodeId>,
    pending: &Pending,
    metrics: &Metrics,
) {
    let now = unix_ms();
    let mut applied: Vec<Applied> = Vec::with_capacity(group.len());
    let mut answers_of_unapplied = Vec::new();
    let saving = pending.cursors.take();
    let saving_markers = pending.read_markers.take();
    if group.is_empty() && saving.is_empty() && saving_markers.is_empty() {
        return;
    }
    let started = Instant::now();
    metrics.commit_operations.record(group.len() as f64);
    let mut failure = db.begin().err();
    if failure.is_none() {
        let mut appending: Vec<ConvId> = group
            .iter()
            .filter_map(|request| match &request.change {
                Change::Append { conv, .. } => Some(*conv),
                _ => None,
            })
            .collect();
        appending.sort_unstable();
        appending.dedup();
        failure = db.lock_for_appends(&appending).err();
    }
    let orders: Vec<SendOrder> = group
        .iter()
        .filter_map(|request| match &request.change {
            Change::Append { order, .. } => Some(order.clone()),
            _ => None,
        })
        .collect();
    // Consecutive messages go to the store together; any other change first appends those queued before it,
    // so that it sees them done.
    let mut run = Vec::new();
    for Request { change, .. } in group.drain(..) {
        if failure.is_some() {
            answers_of_unapplied.extend(change.into_failure());
            continue;
        }
        // An entry referring to another is judged against what the messages before it in the group made of the log.
        let plain_append = matches!(&change, Change::Append { kind, .. } if kind.refers_to().is_none());
        if !plain_append && let Err((error, answers)) = append_run(db, &mut run, now, &mut applied) {
            failure = Some(error);
            answers_of_unapplied.extend(answers);
            answers_of_unapplied.extend(change.into_failure());
            continue;
        }
        match apply(db, change, now, &mut run) {
            Ok(done) => applied.extend(done),
            Err((error, answer)) => {
                failure = Some(error);
                answers_of_unapplied.extend(answer);
            }
        }
    }
    if failure.is_none()
        && let Err((error, answers)) = append_run(db, &mut run, now, &mut applied)
    {
        failure = Some(error);
        answers_of_unapplied.extend(answers);
    }
    if failure.is_none() {
        let cursors: Vec<(AccountId, ConvId, u64)> =
            saving.iter().map(|(&(account, conv), &seq)| (account, conv, seq)).collect();
        failure = db.advance_cursors(&cursors).err();
    }
    if failure.is_none() && !saving_markers.is_empty() {
        let markers: Vec<(AccountId, ConvId, u64)> =
            saving_markers.iter().map(|((account, conv), &seq)| (account.id, *conv, seq)).collect();
        failure = db.advance_read_markers(&markers).err();
    }
    if failure.is_none()
        && let Some(node) = node
    {
        failure = db.notify(node, &notices(&applied)).err();
    }
    if failure.is_none() {
        let syncing = Instant::now();
        failure = db.commit().err();
        metrics.sync_seconds.record(syncing.elapsed());
    }
    metrics.commits.increment(1);
    metrics.commit_seconds.record(started.elapsed());
    if failure.is_some() {
        pending.cursors.restore(saving);
        pending.read_markers.restore(saving_markers);
    }
    match failure {
        None => {
            for Applied { answer, aftermath } in applied {
                match aftermath {
                    Aftermath::Nothing => {}
                    Aftermath::Publish(conv, message) => hub.publish(conv, message),
                    Aftermath::AccountRemoved(removed) => hub.account_removed(&removed),
                    Aftermath::AwayChanged(account, message) => hub.away_changed(&account, message),
                }
                if let Some(answer) = answer {
                    answer(Ok(()));
                }
            }
        }
        Some(error) => {
            metrics.store_errors.increment(1);
            db.rollback();
            for order in orders {
                order.halt();
            }
            tracing::error!(%error, ops = applied.len() + answers_of_unapplied.len(), "store write failed; nothing in this group was accepted");
            let why =
                if error.is_disk_problem() { "its disk is full or read-only".to_owned() } else { error.to_string() };
            let failed = WriteFailed(format!("the server could not store this ({why}); try again later").into());
            let answers = applied.into_iter().filter_map(|done| done.answer).chain(answers_of_unapplied);
            for answer in answers {
                answer(Err(&failed));
            }
        }
    }
}
