//! A node's connection to the other server nodes on the same database: it listens for their [`Notice`]s, says
//! its own that are not part of a store transaction (presence, joins, leaves), keeps the node's heartbeat, and
//! reads what a notice points at.
//!
//! Who is online on which node is also kept in the `presence` table, so that a node that starts, or listens
//! again after losing its connection, learns what it did not hear. A node that stops beating is taken for dead
//! once its heartbeat is older than the expiry its peers use: they then forget its rows, and with them its
//! users' presence.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::{NOTICES, PostgresStore, col, parse_nick};
use crate::keys::{Account, AccountId};
use crate::location::PostgresSettings;
use crate::notices::{Envelope, NodeId, Notice};
use crate::records::Durability;
use crate::{Result, Store};

/// Most notifications taken in one [`Peers::receive`]: the caller acts on them before it takes more.
const MAX_RECEIVED: usize = 1_024;

/// What a heartbeat found.
#[derive(Debug)]
pub struct Heartbeat {
    /// The other nodes, alive.
    pub alive: Vec<NodeId>,
    /// This node's row was gone: the others had taken it for dead, and forgotten who is online on it.
    pub was_forgotten: bool,
}

/// One node's link to its peers. Any error means the connection (and the listening with it) may be gone: the
/// caller opens a new one and reads again what it may have missed.
pub struct Peers {
    store: PostgresStore,
    node: NodeId,
}

impl Peers {
    /// Connects as `node`, listens for the peers' notices, and records the node's first heartbeat.
    pub fn connect(settings: &PostgresSettings, node: NodeId) -> Result<Peers> {
        let store = PostgresStore::open(settings, Durability::Full)?;
        store.batch(&format!("LISTEN {NOTICES}"))?;
        let peers = Peers { store, node };
        peers.beat()?;
        Ok(peers)
    }

    /// The connection as a store, for reading what notices point at.
    pub fn store(&self) -> &dyn Store {
        &self.store
    }

    /// Records the node's heartbeat; true when its row had to be made anew.
    fn beat(&self) -> Result<bool> {
        // `xmax` is 0 in a row version that an insert made, not an update.
        let row = self.store.query_one(
            "INSERT INTO nodes (id, heartbeat) VALUES ($1, now())
             ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat RETURNING xmax = 0",
            &[&self.node.0],
        )?;
        col(&row, 0)
    }

    /// Records this node's heartbeat, forgets the nodes whose last one is older than `expiry` (with their
    /// presence), and says which other nodes are still alive. The database's clock judges, so the nodes' clocks
    /// need not agree.
    pub fn heartbeat(&self, expiry: Duration) -> Result<Heartbeat> {
        let was_forgotten = self.beat()?;
        let seconds = expiry.as_secs_f64();
        self.store.in_transaction(|| {
            self.store.execute(
                "DELETE FROM presence WHERE node IN
                 (SELECT id FROM nodes WHERE heartbeat < now() - make_interval(secs => $1))",
                &[&seconds],
            )?;
            self.store.execute("DELETE FROM nodes WHERE heartbeat < now() - make_interval(secs => $1)", &[&seconds])?;
            Ok(())
        })?;
        let rows = self.store.query("SELECT id FROM nodes WHERE id <> $1 ORDER BY id", &[&self.node.0])?;
        let alive = rows.iter().map(|row| Ok(NodeId(col(row, 0)?))).collect::<Result<_>>()?;
        Ok(Heartbeat { alive, was_forgotten })
    }

    /// Who the other live nodes have online.
    pub fn presence(&self) -> Result<Vec<(NodeId, Account)>> {
        let rows = self.store.query(
            "SELECT p.node, p.account, p.nick FROM presence p JOIN nodes n ON n.id = p.node
             WHERE p.node <> $1 ORDER BY p.node, p.account",
            &[&self.node.0],
        )?;
        rows.iter()
            .map(|row| {
                Ok((NodeId(col(row, 0)?), Account { id: AccountId(col(row, 1)?), nick: parse_nick(col(row, 2)?)? }))
            })
            .collect()
    }

    /// Tells the peers `notices`, in one transaction with the presence rows that `Online` and `Offline` change.
    pub fn announce(&self, notices: &[Notice]) -> Result<()> {
        self.store.in_transaction(|| {
            for notice in notices {
                match notice {
                    Notice::Online { account } => self.store.execute(
                        "INSERT INTO presence (node, account, nick) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        &[&self.node.0, &account.id.0, &account.nick.as_str()],
                    )?,
                    Notice::Offline { account } => self.store.execute(
                        "DELETE FROM presence WHERE node = $1 AND account = $2",
                        &[&self.node.0, &account.0],
                    )?,
                    _ => 0,
                };
            }
            self.store.notify(self.node, notices)
        })
    }

    /// Replaces this node's presence rows with `online`, telling the peers who arrived: after a lost connection,
    /// during which they may have taken this node for dead and forgotten its rows.
    pub fn announce_all(&self, online: &[Account]) -> Result<()> {
        self.store.in_transaction(|| {
            self.store.execute("DELETE FROM presence WHERE node = $1", &[&self.node.0])?;
            let notices: Vec<Notice> =
                online.iter().map(|account| Notice::Online { account: account.clone() }).collect();
            self.announce(&notices)
        })
    }

    /// The peers' notices that arrive within `wait` (those already arrived at once), oldest first; this node's
    /// own are left out. A notice this release cannot read is logged and skipped.
    pub fn receive(&self, wait: Duration) -> Result<Vec<Envelope>> {
        let mut client = self.store.client()?;
        let mut notifications = client.notifications();
        let mut received = Vec::new();
        let first = notifications.timeout_iter(wait).next()?;
        let rest = notifications.iter();
        for notification in first.into_iter().map(Ok).chain(rest.iterator()).take(MAX_RECEIVED) {
            match Envelope::decode(notification?.payload()) {
                Ok(envelope) if envelope.from == self.node => {}
                Ok(envelope) => received.push(envelope),
                Err(unreadable) => tracing::warn!(%unreadable, "a peer's notice was skipped"),
            }
        }
        Ok(received)
    }

    /// Takes this node off the database as it stops, telling the peers that its users left it: they need not
    /// wait for its heartbeat to expire.
    pub fn leave(&self) -> Result<()> {
        self.store.in_transaction(|| {
            let rows = self.store.query("DELETE FROM presence WHERE node = $1 RETURNING account", &[&self.node.0])?;
            let notices: Vec<Notice> = rows
                .iter()
                .map(|row| Ok(Notice::Offline { account: AccountId(col(row, 0)?) }))
                .collect::<Result<_>>()?;
            self.store.execute("DELETE FROM nodes WHERE id = $1", &[&self.node.0])?;
            self.store.notify(self.node, &notices)
        })
    }
}
