//! Keeping in step with the other server nodes on a shared PostgreSQL store: a thread of its own (PostgreSQL's
//! client blocks) listens for their notices and hands what they point at to the [`Hub`] and the login limiter,
//! sends this node's own notices (presence, joins, leaves, logins judged, typing, read markers moved; the writer
//! sends those of its commits itself, inside them), and beats.
//!
//! A node is taken for dead by the others when it has not beaten for [`EXPIRY`]: its users are then shown offline
//! wherever they are not online on a live node. So a node that dies without a word has its sessions expire
//! within `EXPIRY` plus one [`HEARTBEAT`].
//!
//! When the link is lost (the database restarted, the network failed) notices may have been missed: the thread
//! connects again with backoff, and the hub catches up from the database (who is online where, each
//! conversation's last seq), each session reading back what it may have missed.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palomar_proto::RoomName;
use palomar_store::postgres::Peers;
use palomar_store::{AccountId, ConvId, ConvKey, Envelope, NodeId, Notice, PostgresSettings, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::auth::LoginLimiter;
use crate::hub::Hub;
use crate::moderation::{RoomWrite, canonical_nick};
use crate::rate::Address;

/// What on this node acts on the other nodes' notices.
pub struct Local {
    pub hub: Arc<Hub>,
    pub logins: Arc<LoginLimiter>,
}

/// How often a node records that it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long after its last heartbeat a node is taken for dead.
pub const EXPIRY: Duration = Duration::from_secs(10);
/// Longest the thread waits for a notice before it looks at what the hub has to say: the delay of a presence
/// or join notice on its way out.
const LISTEN_TURN: Duration = Duration::from_millis(50);
/// Messages read per query for an `Appended` notice.
const PAGE: u32 = 512;
/// The longest wait between two attempts to connect again.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Starts the thread that links `node` to its peers, until `stop` is cancelled; `outgoing` is what this node says.
pub fn start(
    settings: PostgresSettings,
    node: NodeId,
    local: Local,
    outgoing: Receiver<Notice>,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("palomar-peers".into()).spawn(move || {
        let mut retry = Duration::from_millis(100);
        loop {
            match Peers::connect(&settings, node) {
                Ok(peers) => {
                    retry = Duration::from_millis(100);
                    match follow(&peers, &local, &outgoing, &stop) {
                        Ok(()) => {
                            if let Err(error) = peers.leave() {
                                tracing::warn!(%error, "could not take this node off the database");
                            }
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "lost the link to the other nodes; connecting again"),
                    }
                }
                Err(error) => tracing::warn!(%error, ?retry, "cannot link to the other nodes; trying again"),
            }
            let until = Instant::now() + retry;
            while Instant::now() < until {
                if stop.is_cancelled() {
                    return;
                }
                std::thread::sleep(LISTEN_TURN);
            }
            retry = (retry * 2).min(MAX_RETRY);
        }
    })
}

/// Follows the peers on one connection until `stop` (then `Ok`) or until the connection fails.
fn follow(
    peers: &Peers,
    local: &Local,
    outgoing: &Receiver<Notice>,
    stop: &CancellationToken,
) -> Result<(), StoreError> {
    let hub = &*local.hub;
    // Listening started with the connection: what happened before it is read from the tables.
    catch_up(peers, hub)?;
    peers.announce_all(&hub.announced_here())?;
    let mut next_beat = Instant::now() + HEARTBEAT;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        let said: Vec<Notice> = outgoing.try_iter().collect();
        if !said.is_empty() {
            peers.announce(&said)?;
        }
        if Instant::now() >= next_beat {
            let beat = peers.heartbeat(EXPIRY)?;
            if beat.was_forgotten {
                // The others took this node for dead (a long pause, an outage) and forgot who is online here.
                peers.announce_all(&hub.announced_here())?;
            }
            hub.peers_alive(&beat.alive);
            next_beat = Instant::now() + HEARTBEAT;
        }
        for Envelope { from, notice } in peers.receive(LISTEN_TURN)? {
            act_on(peers.store(), local, from, notice)?;
        }
    }
}

fn catch_up(peers: &Peers, hub: &Hub) -> Result<(), StoreError> {
    let mut present = Vec::new();
    for (node, account) in peers.presence()? {
        let rooms = rooms_of(peers.store(), account.id)?;
        present.push((node, account, rooms));
    }
    let latest = peers.store().all_conversations()?.into_iter().map(|row| (row.id, row.last_seq)).collect();
    hub.catch_up_with_peers(present, latest);
    Ok(())
}

fn rooms_of(store: &dyn Store, account: AccountId) -> Result<Vec<(ConvId, RoomName)>, StoreError> {
    Ok(store
        .conversations_of(account)?
        .into_iter()
        .filter_map(|row| match row.key {
            ConvKey::Room(room) => Some((row.id, room)),
            ConvKey::Direct(..) => None,
        })
        .collect())
}

fn act_on(store: &dyn Store, local: &Local, from: NodeId, notice: Notice) -> Result<(), StoreError> {
    let hub = &*local.hub;
    match notice {
        Notice::Appended { conv, first, last } => {
            // A conversation deleted since (with a removed account) has nothing left to deliver.
            let Some(row) = store.conversation_by_id(conv)? else { return Ok(()) };
            let mut after = first.saturating_sub(1);
            while after < last {
                let limit = u32::try_from(last - after).unwrap_or(PAGE).min(PAGE);
                let page = store.messages_after(&row, after, limit)?;
                let Some(newest) = page.last().map(|message| message.seq) else { break };
                for message in page.into_iter().filter(|message| message.seq <= last) {
                    hub.publish(conv, message);
                }
                after = newest;
            }
        }
        Notice::Online { account } => {
            let rooms = rooms_of(store, account.id)?;
            let away = store.away_of(account.id)?;
            hub.heard(from, Notice::Online { account: account.clone() }, rooms);
            if let Some(message) = away {
                hub.away_of_arrival(&account, message);
            }
        }
        Notice::Away { account } => hub.away_changed(&account, store.away_of(account.id)?),
        Notice::Typing { conv, account, typing } => {
            if let Some(row) = store.conversation_by_id(conv)? {
                hub.typing(conv, &row.key, &account, typing, false);
            }
        }
        Notice::Read { conv, account, seq } => {
            if let Some(row) = store.conversation_by_id(conv)? {
                hub.read_marker_moved(conv, &row.key, &account, seq, false);
            }
        }
        Notice::Moderated { conv, room, audit } => {
            let Some(entry) = store.audit_entry(audit)? else { return Ok(()) };
            let Some((write, target)) = RoomWrite::from_audit(&entry) else {
                tracing::warn!(audit, action = %entry.action, "a peer's moderation notice names an entry that is none");
                return Ok(());
            };
            let Some(change) = write.change(target.as_ref()) else { return Ok(()) };
            let by = canonical_nick(&entry.actor);
            hub.room_changed(conv, &room, by.as_ref(), &change, None);
            if let (RoomWrite::Invite, Some(nick)) = (&write, &target)
                && let Some(account) = store.account(nick)?
            {
                hub.invited(account.id, &room, by.as_ref());
            }
        }
        Notice::LoginFailed { nick, address } => {
            local.logins.heard_failure(&nick, Address::of(address), Instant::now())
        }
        Notice::LoginSucceeded { nick, address } => local.logins.heard_success(&nick, Address::of(address)),
        notice => hub.heard(from, notice, Vec::new()),
    }
    Ok(())
}
