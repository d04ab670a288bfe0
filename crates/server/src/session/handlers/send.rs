//! `Send` and `Post`: a log entry handed to the store writer, answered with `Accepted` (or why not) in the order
//! the client sent them; the first message to a user opens the direct conversation with them. Whether an entry
//! referring to another (an edit, a deletion, a reply, a reaction) may be stored is the writer's to judge, in the
//! transaction that would store it.

use std::collections::VecDeque;

use palomar_proto::{Conversation, ErrorCode, MessageId, MessageKind, Nick, REACTIONS, ServerMsg, validate_text};
use palomar_store::ConvId;
use tokio::sync::oneshot;

use crate::moderation;
use crate::session::{Session, SessionEnd};
use crate::writer::{AppendOutcome, SendOrder, WriteResult};

/// A message sent by this client, waiting for the store.
struct Pending {
    id: MessageId,
    conversation: Conversation,
    /// Its text's length, counted in [`Sends::bytes`].
    bytes: usize,
    answer: oneshot::Receiver<WriteResult<AppendOutcome>>,
}

/// The client's messages waiting for the store, in the order they came.
#[derive(Default)]
pub(in crate::session) struct Sends {
    queue: VecDeque<Pending>,
    bytes: usize,
    order: SendOrder,
}

impl Sends {
    fn push(&mut self, pending: Pending) {
        self.bytes += pending.bytes;
        self.queue.push_back(pending);
    }

    fn pop(&mut self) -> Option<Pending> {
        let pending = self.queue.pop_front()?;
        self.bytes -= pending.bytes;
        if self.queue.is_empty() {
            self.order.resume();
        }
        Some(pending)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Bytes of text waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The answer to the oldest pending send if it has already come, without waiting; `Some(None)` when the
/// writer dropped it.
pub(in crate::session) fn ready_answer(pending: &mut Sends) -> Option<Option<WriteResult<AppendOutcome>>> {
    match pending.queue.front_mut()?.answer.try_recv() {
        Ok(result) => Some(Some(result)),
        Err(oneshot::error::TryRecvError::Closed) => Some(None),
        Err(oneshot::error::TryRecvError::Empty) => None,
    }
}

/// The answer to the oldest pending send; `None` when the writer dropped it. Never resolves when nothing is
/// pending, so it can sit in a `select!`.
pub(in crate::session) async fn next_answer(pending: &mut Sends) -> Option<WriteResult<AppendOutcome>> {
    match pending.queue.front_mut() {
        Some(front) => (&mut front.answer).await.ok(),
        None => std::future::pending().await,
    }
}

impl Session {
    /// Answers the oldest pending send and any others already settled behind it, in order.
    pub(in crate::session) fn answer_sends(&mut self, pending: &mut Sends, first: Option<WriteResult<AppendOutcome>>) {
        let mut answer = Some(first);
        while let Some(result) = answer.take() {
            let Some(Pending { id, conversation, .. }) = pending.pop() else { return };
            match result {
                Some(Ok(AppendOutcome::Appended(appended))) => {
                    if !appended.duplicate {
                        self.shared.metrics.messages_accepted.increment(1);
                    }
                    self.out.queue(&ServerMsg::Accepted { id, conversation, seq: appended.seq, ts: appended.ts })
                }
                Some(Ok(AppendOutcome::Gone)) => {
                    self.error(ErrorCode::NotMember, format!("{conversation} no longer exists"), Some(id))
                }
                Some(Ok(AppendOutcome::Refused { code, why })) => self.error(code, why, Some(id)),
                Some(Err(failed)) => self.refuse_for_now(id, failed.0.to_string()),
                None => self.refuse_for_now(id, "the store did not answer; try again".into()),
            }
            answer = ready_answer(pending);
        }
    }

    /// Tells the client that the store could not take message `id`; the connection's later messages wait for it,
    /// unless it was delivered to this connection already: then it was stored after all (the answer to its commit
    /// was lost), its client took it as accepted, and nothing is to wait for it.
    fn refuse_for_now(&mut self, id: MessageId, why: String) {
        if !self.own_delivered.contains(&id) {
            self.awaiting_resend.get_or_insert(id);
        }
        self.error(ErrorCode::StoreUnavailable, why, Some(id));
    }

    pub(super) async fn post(
        &mut self,
        id: MessageId,
        to: Conversation,
        (kind, text): (MessageKind, String),
        pending: &mut Sends,
    ) -> Result<(), SessionEnd> {
        let checked = match kind {
            MessageKind::Deletion { .. } => moderation::check_reason(&text),
            MessageKind::Reaction { .. } if !REACTIONS.iter().any(|(emoji, _)| *emoji == text) => {
                let known: Vec<&str> = REACTIONS.iter().map(|(emoji, _)| *emoji).collect();
                Err(format!("a reaction is one of {}", known.join(" ")))
            }
            _ => validate_text(&text).map_err(|error| error.to_string()),
        };
        if let Err(why) = checked {
            self.error(ErrorCode::InvalidText, why, Some(id));
            return Ok(());
        }
        match self.awaiting_resend {
            Some(first) if first == id => self.awaiting_resend = None,
            Some(_) => {
                let why = "an earlier message of yours could not be stored yet; send it again first";
                self.error(ErrorCode::StoreUnavailable, why, Some(id));
                return Ok(());
            }
            None => {}
        }
        let conv = match (self.by_view.get(&to), &to) {
            (Some(&conv), _) => conv,
            (None, Conversation::Room(room)) => {
                self.error(ErrorCode::NotMember, format!("you are not in #{room}; join it first"), Some(id));
                return Ok(());
            }
            (None, Conversation::Direct(peer)) if kind.refers_to().is_some() => {
                self.error(ErrorCode::UnknownMessage, format!("you have no messages with {peer}"), Some(id));
                return Ok(());
            }
            (None, Conversation::Direct(peer)) => match self.open_direct(peer).await? {
                Some(conv) => conv,
                None => {
                    self.error(ErrorCode::UnknownNick, format!("there is no user named {peer}"), Some(id));
                    return Ok(());
                }
            },
        };
        // Deleting is not speaking: a muted user may still take back what it said.
        if !matches!(kind, MessageKind::Deletion { .. })
            && let Some(why) = self.speech_refused(conv)
        {
            self.error(ErrorCode::NotAllowed, why, Some(id));
            return Ok(());
        }
        let Some(key) = self.keys_of.get(&conv).cloned() else { return Ok(()) };
        let bytes = text.len();
        let order = pending.order.clone();
        match self.shared.writer.append(conv, key, self.account.clone(), id, (kind, text), order).await {
            Ok(answer) => pending.push(Pending { id, conversation: to, bytes, answer }),
            Err(failed) => self.refuse_for_now(id, failed.0.to_string()),
        }
        Ok(())
    }

    /// Creates the direct conversation with `peer`, if `peer` has an account.
    async fn open_direct(&mut self, peer: &Nick) -> Result<Option<ConvId>, SessionEnd> {
        let lookup = peer.clone();
        let Some(peer) = self.read(move |db| db.account(&lookup)).await? else {
            return Ok(None);
        };
        match self.shared.writer.open_direct(self.account.clone(), peer).await {
            Ok(Some(row)) => {
                let id = row.id;
                self.track_new_direct(id, row.key);
                Ok(Some(id))
            }
            Ok(None) => Ok(None),
            Err(failed) => Err(SessionEnd::Broken(failed.0.to_string())),
        }
    }
}
