//! The faults, injected into a running chat for the scenario's time: which one comes next, and how each is
//! done, with the checks that belong to it (a silent connection noticed in time, a dead node's clients moved to
//! another node, sends refused while the store could not take them and accepted once it could, nothing
//! acknowledged while the database was down).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::Value;

use crate::client::ClientProcess;
use crate::disk::{ReadOnlyFault, fill_disk, truncate_wal};
use crate::proxy::Flow;
use crate::scenario::{Fault, Scenario};
use crate::{Chat, PATIENCE, Run};

/// Longest time the disk-full fault keeps the disk full.
const DISK_FULL_HOLD: Duration = Duration::from_secs(12);
/// Longest time the read-only fault keeps the server's writes failing.
const READ_ONLY_HOLD: Duration = Duration::from_secs(12);
/// Longest time the database is kept down waiting for a send to meet the outage.
const DATABASE_DOWN_HOLD: Duration = Duration::from_secs(8);
/// A silent connection must be noticed within the heartbeat bound (3 × 2 s) plus this slack.
const HALF_OPEN_BOUND: Duration = Duration::from_secs(10);
/// The clients of a killed node must be connected through another within this: they try the next address at
/// once, and a TLS handshake and a login take a moment on a loaded machine.
const MOVE_BOUND: Duration = Duration::from_secs(10);
/// A send refused while the store could not take it must be accepted within this once it can again.
const RECOVERY_BOUND: Duration = Duration::from_secs(PATIENCE.as_secs() / 6);
/// How long after the database's restart began a commit that started before it may still have reached it: the
/// writer reads the clock, then connects; a thread descheduled in between is not the server's fault.
const CLOCK_SLACK_MS: u64 = 1_000;

impl Run<'_> {
    /// Injects faults until the scenario's time is up; returns how many of each kind.
    pub(crate) fn inject_faults(
        &mut self,
        chat: &mut Chat,
        anomalies: &mut Vec<String>,
    ) -> anyhow::Result<BTreeMap<Fault, usize>> {
        let end = Instant::now() + Duration::from_secs(self.args.seconds);
        let mut injected = BTreeMap::new();
        let mut count = 0;
        // A mix deals its faults like cards, each once before any twice: a short run still sees many kinds.
        let mut deck = Vec::new();
        // The faults `--mix` named are each dealt at least once, however short the time: a run that left one out
        // would not have checked what was asked.
        let mut first_deal = match self.scenario {
            Scenario::Mix if self.deck_named => self.deck.len(),
            _ => 0,
        };
        while Instant::now() < end || first_deal > 0 {
            self.pause(300, 2_000);
            let fault = match self.scenario {
                Scenario::Only(fault) => fault,
                Scenario::Mix => {
                    if deck.is_empty() {
                        deck = self.deck.clone();
                        deck.shuffle(&mut self.rng);
                    }
                    let Some(fault) = deck.pop() else { bail!("a mix with no fault to deal") };
                    fault
                }
            };
            first_deal = first_deal.saturating_sub(1);
            count += 1;
            *injected.entry(fault).or_default() += 1;
            self.inject(fault, count, chat, anomalies)?;
        }
        Ok(injected)
    }

    /// Injects one fault, the `count`th of the scenario (which keeps the lines typed for it unique).
    fn inject(
        &mut self,
        fault: Fault,
        count: usize,
        chat: &mut Chat,
        anomalies: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        match fault {
            Fault::Kill | Fault::Graceful => {
                let node = self.random_node(chat);
                if fault == Fault::Kill {
                    chat.nodes.kill(node)
                } else {
                    chat.nodes.terminate(node)
                }
                self.pause(100, 1_500);
                chat.nodes.restart(node)?;
            }
            Fault::NodeKill => self.node_kill(chat, anomalies)?,
            // The network faults hit the links to every node, so that every client meets them.
            Fault::Cut => chat.nodes.proxies().for_each(|proxy| proxy.cut_all()),
            Fault::CutMidFrame => chat.nodes.proxies().for_each(|proxy| proxy.cut_mid_frame()),
            Fault::Corrupt => chat.nodes.proxies().for_each(|proxy| proxy.corrupt_next()),
            Fault::Delay => {
                let flow = Flow::Delay(Duration::from_millis(self.rng.random_range(2..40)));
                chat.nodes.proxies().for_each(|proxy| proxy.set_flow(flow));
                self.pause(500, 2_500);
                chat.nodes.proxies().for_each(|proxy| proxy.set_flow(Flow::Pass));
            }
            Fault::HalfOpen => half_open(chat, anomalies),
            Fault::DiskFull => self.disk_full(chat, count),
            Fault::ReadOnly => self.read_only(chat, count, anomalies)?,
            Fault::DbRestart => self.db_restart(chat, count, anomalies)?,
            Fault::ClientRestart => {
                let which = self.rng.random_range(0..chat.senders.len());
                chat.senders[which].restart(&self.bin)?;
            }
        }
        Ok(())
    }

    /// A node to hit (with one node, that one, without drawing: a run on one node replays as it always did).
    fn random_node(&mut self, chat: &Chat) -> usize {
        match chat.nodes.len() {
            1 => 0,
            count => self.rng.random_range(0..count),
        }
    }

    /// SIGKILL a node that serves clients and keep it down while they move to the others (each must, within
    /// [`MOVE_BOUND`]), and a while longer, then start it again on its address.
    fn node_kill(&mut self, chat: &mut Chat, anomalies: &mut Vec<String>) -> anyhow::Result<()> {
        // A node that serves someone: clients stay where a fault moved them, so some nodes may serve nobody.
        let now = Instant::now();
        let serving: Vec<usize> = (0..chat.nodes.len())
            .filter(|&node| {
                let proxy = chat.nodes.proxy_addr(node);
                chat.clients().any(|client| client.connected_through(now).as_deref() == Some(proxy))
            })
            .collect();
        let node = match serving.len() {
            0 => self.random_node(chat),
            count => serving[self.rng.random_range(0..count)],
        };
        let proxy = chat.nodes.proxy_addr(node).to_owned();
        chat.nodes.kill(node);
        let since = Instant::now();
        let its_clients: Vec<&ClientProcess> = chat
            .clients()
            .filter(|client| client.connected_through(since).as_deref() == Some(proxy.as_str()))
            .collect();
        let moved = |client: &&ClientProcess| {
            client.with_events(|events| {
                events.iter().any(|(at, e)| *at > since && e["state"] == "connected" && e["server"] != proxy.as_str())
            })
        };
        while since.elapsed() < MOVE_BOUND && !its_clients.iter().all(moved) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for client in its_clients.iter().filter(|client| !moved(client)) {
            anomalies.push(format!(
                "{} was not connected through another node within {} s of its node ({proxy}) being killed",
                client.nick,
                MOVE_BOUND.as_secs()
            ));
        }
        // Down a while longer, the other nodes serving everyone.
        self.pause(500, 3_000);
        chat.nodes.restart(node)
    }

    /// Only where the store sits on the small file system (not in a mix). SQLite reuses the space of its
    /// write-ahead log, so a full disk shows only when the log must grow: empty it first, then fill the disk,
    /// and hold it full until a send is refused (or long enough that one should have been).
    fn disk_full(&mut self, chat: &mut Chat, count: usize) {
        let data = chat.nodes.first_data().to_owned();
        truncate_wal(&data.join("store.sqlite"));
        if let Some(filler) = fill_disk(&data) {
            let since = Instant::now();
            self.type_one_more(chat, &format!("while the disk is full ({count})"));
            while since.elapsed() < DISK_FULL_HOLD && refused_since(&chat.senders, since).is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.pause(200, 1_500);
            let _ = std::fs::remove_file(filler);
        }
    }

    /// The store's disk turns read-only: every file write of the server fails with EROFS until the fault is
    /// lifted. Sends must be refused, not acknowledged, while reads go on; then the same process must accept
    /// them; then a SIGKILL, after which an acknowledgement of anything that was not on disk would show as a loss.
    fn read_only(&mut self, chat: &mut Chat, count: usize, anomalies: &mut Vec<String>) -> anyhow::Result<()> {
        let Some(pid) = chat.nodes.pid(0) else { bail!("the server is not running") };
        let fault = ReadOnlyFault::inject(pid)?;
        let since = Instant::now();
        self.type_one_more(chat, &format!("while the disk is read-only ({count})"));
        while since.elapsed() < READ_ONLY_HOLD && refused_since(&chat.senders, since).is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.pause(200, 1_500);
        drop(fault);
        let refused = refused_since(&chat.senders, since);
        await_recovery(
            &chat.senders,
            &refused,
            "while the disk was read-only",
            "of it being writable again",
            anomalies,
        );
        chat.nodes.kill(0);
        chat.nodes.restart(0)
    }

    /// The database crashes under the nodes (`pg_ctl stop -m immediate`) and is held down until a send meets
    /// the outage (or long enough that one should have), then started again: the nodes must refuse sends
    /// meanwhile, acknowledge nothing, and take every refused send once it is back. What was acknowledged
    /// before must survive the crash, which the final check sees.
    fn db_restart(&mut self, chat: &mut Chat, count: usize, anomalies: &mut Vec<String>) -> anyhow::Result<()> {
        let Some(cluster) = self.store.and_then(|store| store.own()) else {
            bail!("db-restart needs a PostgreSQL cluster of the checker's own")
        };
        cluster.crash()?;
        let since = Instant::now();
        let down_ms = unix_ms();
        self.type_one_more(chat, &format!("while the database is down ({count})"));
        while since.elapsed() < DATABASE_DOWN_HOLD && refused_since(&chat.senders, since).is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.pause(200, 1_500);
        let up_ms = unix_ms();
        cluster.start_again()?;
        // A message's time is read before its group's transaction begins, so one stamped while the database was
        // down can only have been acknowledged without being committed.
        let window = down_ms..up_ms.saturating_sub(CLOCK_SLACK_MS);
        for sender in &chat.senders {
            sender.with_events(|events| {
                for (_, e) in events.iter().filter(|(_, e)| e["event"] == "accepted") {
                    if e["ts"].as_u64().is_some_and(|ts| window.contains(&ts)) {
                        anomalies.push(format!(
                            "{}: message {} acknowledged as stored at {} ms, while the database was down ({} to {} ms)",
                            sender.nick, e["id"], e["ts"], down_ms, up_ms
                        ));
                    }
                }
            });
        }
        let refused = refused_since(&chat.senders, since);
        await_recovery(&chat.senders, &refused, "while the database was down", "of its restart", anomalies);
        Ok(())
    }

    /// Typing may be over by the time a store fault holds: one more line from a sender makes sure that a send
    /// meets it.
    fn type_one_more(&mut self, chat: &Chat, during: &str) {
        let which = self.rng.random_range(0..chat.senders.len());
        chat.senders[which].type_line(&format!("s{which} typed {during}"));
    }
}

/// The proxies silently drop all traffic, keeping the connections open, until every receiver has had
/// [`HALF_OPEN_BOUND`] since it met the silence; each must have noticed it by then.
fn half_open(chat: &mut Chat, anomalies: &mut Vec<String>) {
    let since = Instant::now();
    chat.nodes.proxies().for_each(|proxy| proxy.set_flow(Flow::Blackhole));
    // A receiver waiting to reconnect when the silence began meets it only at its next attempt (up to the 10 s
    // of the longest backoff later): it is held to the bound from then on.
    let deadlines: Vec<Instant> =
        chat.receivers.iter().map(|client| client.next_attempt(since) + HALF_OPEN_BOUND).collect();
    let until = deadlines.iter().copied().max().unwrap_or(since + HALF_OPEN_BOUND);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    chat.nodes.proxies().for_each(|proxy| proxy.set_flow(Flow::Pass));
    for (client, deadline) in chat.receivers.iter().zip(deadlines) {
        let noticed = client.with_events(|events| {
            events.iter().rev().any(|(at, e)| *at > since && *at <= deadline && e["state"] == "disconnected")
        });
        if !noticed {
            // Where the client stood when the silence began, to tell a connection it missed from one it was still
            // making.
            let before = client.with_events(|events| {
                events.iter().rev().find(|(at, e)| *at <= since && e["event"] == "status").map_or_else(
                    || "nothing".to_owned(),
                    |(at, e)| format!("{} {:.1} s before", e, since.duration_since(*at).as_secs_f64()),
                )
            });
            anomalies.push(format!(
                "{} did not notice a silent connection within {} s of meeting it (its last status before: {before})",
                client.nick,
                HALF_OPEN_BOUND.as_secs()
            ));
        }
    }
    chat.nodes.proxies().for_each(|proxy| proxy.cut_all());
}

/// The ids of the sends refused since `since` because the store could not take them.
fn refused_since(senders: &[ClientProcess], since: Instant) -> HashSet<String> {
    let refused = |events: &[(Instant, Value)]| -> Vec<String> {
        events
            .iter()
            .filter(|(at, e)| *at > since && e["code"] == "StoreUnavailable")
            .filter_map(|(_, e)| e["id"].as_str().map(str::to_owned))
            .collect()
    };
    senders.iter().flat_map(|sender| sender.with_events(refused)).collect()
}

/// The ids of every send acknowledged so far.
fn accepted(senders: &[ClientProcess]) -> HashSet<String> {
    let accepted = |events: &[(Instant, Value)]| -> Vec<String> {
        events
            .iter()
            .filter(|(_, e)| e["event"] == "accepted")
            .filter_map(|(_, e)| e["id"].as_str().map(str::to_owned))
            .collect()
    };
    senders.iter().flat_map(|sender| sender.with_events(accepted)).collect()
}

/// The store is back: every send it `refused` meanwhile must be accepted when its client retries, by the same
/// server processes, within [`RECOVERY_BOUND`].
fn await_recovery(
    senders: &[ClientProcess],
    refused: &HashSet<String>,
    during: &str,
    after: &str,
    anomalies: &mut Vec<String>,
) {
    let lifted = Instant::now();
    while lifted.elapsed() < RECOVERY_BOUND && !refused.is_subset(&accepted(senders)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stuck = refused.difference(&accepted(senders)).count();
    if stuck > 0 {
        anomalies.push(format!(
            "{stuck} send(s) refused {during} were not accepted within {} s {after}",
            RECOVERY_BOUND.as_secs()
        ));
    }
}

/// The wall clock as the server stamps messages: milliseconds since the epoch.
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}
