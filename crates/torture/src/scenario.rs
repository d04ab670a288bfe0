//! The faults a run can inject, which of them a setup (its store, its number of nodes) can take, and what
//! `all` and `mix` mean there. A fault a setup cannot take is refused by name, with the reason, before
//! anything starts: a run must never print "anomalies 0" for a fault it did not inject.

use anyhow::bail;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Fault {
    Kill,
    Graceful,
    Cut,
    CutMidFrame,
    HalfOpen,
    Delay,
    Corrupt,
    ClientRestart,
    DiskFull,
    ReadOnly,
    NodeKill,
    DbRestart,
}

impl Fault {
    /// In the order `all` runs them.
    pub const ALL: [Fault; 12] = [
        Fault::Kill,
        Fault::Graceful,
        Fault::Cut,
        Fault::CutMidFrame,
        Fault::HalfOpen,
        Fault::Delay,
        Fault::Corrupt,
        Fault::ClientRestart,
        Fault::DiskFull,
        Fault::ReadOnly,
        Fault::NodeKill,
        Fault::DbRestart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Graceful => "graceful",
            Fault::Cut => "cut",
            Fault::CutMidFrame => "cut-mid-frame",
            Fault::HalfOpen => "half-open",
            Fault::Delay => "delay",
            Fault::Corrupt => "corrupt",
            Fault::ClientRestart => "client-restart",
            Fault::DiskFull => "disk-full",
            Fault::ReadOnly => "read-only",
            Fault::NodeKill => "node-kill",
            Fault::DbRestart => "db-restart",
        }
    }

    fn named(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|fault| fault.name() == name)
    }

    /// Why `setup` cannot take this fault, if it cannot.
    pub fn refused_by(self, setup: Setup) -> Option<&'static str> {
        let postgres = setup.store != StoreKind::Sqlite;
        match self {
            Fault::DiskFull if postgres => Some(
                "disk-full fills the file system under SQLite's file; on PostgreSQL the nodes keep no store file \
                 (the database server's disk is not the checker's to fill)",
            ),
            Fault::ReadOnly if postgres => Some(
                "read-only makes the server's writes to SQLite's file fail; on PostgreSQL the nodes write no store \
                 file (db-restart is the store's fault there)",
            ),
            Fault::NodeKill if setup.nodes < 2 => {
                Some("node-kill needs several nodes (--nodes 2 or more): it keeps one down while the others serve")
            }
            Fault::DbRestart => match setup.store {
                StoreKind::OwnPostgres => None,
                StoreKind::PostgresServer => Some(
                    "db-restart restarts the database server, which the checker does only to a cluster of its own \
                     (--store postgres-cluster), never to one given by URL",
                ),
                StoreKind::Sqlite => Some("db-restart restarts PostgreSQL: run with --store postgres-cluster"),
            },
            _ => None,
        }
    }
}

/// What the nodes keep their store in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Sqlite,
    /// A PostgreSQL server given by URL: shared, so never restarted.
    PostgresServer,
    /// A throwaway PostgreSQL cluster of the checker's own.
    OwnPostgres,
}

/// What a run runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    pub store: StoreKind,
    pub nodes: usize,
}

/// One scenario: a fault, again and again, or a mix of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    Only(Fault),
    Mix,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Only(fault) => fault.name(),
            Scenario::Mix => "mix",
        }
    }
}

/// The scenarios a run goes through, and what its mix draws from.
#[derive(Debug)]
pub(crate) struct Plan {
    pub scenarios: Vec<Scenario>,
    /// The faults a mix deals, each once before any twice.
    pub deck: Vec<Fault>,
    /// Whether the deck was asked for by name (`--mix`): then none of it may be left out at run time.
    pub deck_named: bool,
    /// The faults `all` leaves out on this setup, each with the reason.
    pub left_out: Vec<(Fault, &'static str)>,
}

/// Every fault's name, for the messages.
fn fault_names() -> String {
    Fault::ALL.iter().map(|fault| fault.name()).collect::<Vec<_>>().join(", ")
}

/// What `--scenario` and `--mix` mean on `setup`. `all` is every fault the setup can take, then a mix; a mix
/// draws from every fault the setup can take except `disk-full` (whose store must be on the small disk from
/// the start), or from those `--mix` names.
pub(crate) fn plan(scenario: &str, mix: &[String], setup: Setup) -> anyhow::Result<Plan> {
    let takes = |fault: &Fault| fault.refused_by(setup).is_none();
    let scenarios = match scenario {
        "all" => Fault::ALL.iter().copied().filter(takes).map(Scenario::Only).chain([Scenario::Mix]).collect(),
        "mix" => vec![Scenario::Mix],
        name => match Fault::named(name) {
            Some(fault) => match fault.refused_by(setup) {
                Some(reason) => bail!("cannot run {name} here: {reason}"),
                None => vec![Scenario::Only(fault)],
            },
            None => bail!("unknown scenario {name:?}; one of {}, mix or all", fault_names()),
        },
    };
    let left_out = match scenario {
        "all" => Fault::ALL.iter().filter_map(|fault| Some((*fault, fault.refused_by(setup)?))).collect(),
        _ => Vec::new(),
    };
    let deck_named = !mix.is_empty();
    let deck = if deck_named {
        if !scenarios.contains(&Scenario::Mix) {
            bail!("--mix names the faults of a mix: give it with --scenario mix or all");
        }
        let mut deck = Vec::new();
        for name in mix {
            let Some(fault) = Fault::named(name) else {
                bail!("unknown fault {name:?} in --mix; one of {}", fault_names());
            };
            if let Some(reason) = fault.refused_by(setup) {
                bail!("cannot mix in {name} here: {reason}");
            }
            if fault == Fault::DiskFull {
                bail!("disk-full cannot be mixed in: the store must be on the small disk from the start");
            }
            if !deck.contains(&fault) {
                deck.push(fault);
            }
        }
        deck
    } else {
        Fault::ALL.iter().copied().filter(|fault| takes(fault) && *fault != Fault::DiskFull).collect()
    };
    Ok(Plan { scenarios, deck, deck_named, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQLITE: Setup = Setup { store: StoreKind::Sqlite, nodes: 1 };
    const OWN_POSTGRES: Setup = Setup { store: StoreKind::OwnPostgres, nodes: 3 };

    fn names_of(scenarios: &[Scenario]) -> Vec<&'static str> {
        scenarios.iter().map(|scenario| scenario.name()).collect()
    }

    #[test]
    fn all_on_sqlite_is_every_fault_of_one_server_then_a_mix() {
        let plan = plan("all", &[], SQLITE).expect("a plan");
        assert_eq!(
            names_of(&plan.scenarios),
            [
                "kill",
                "graceful",
                "cut",
                "cut-mid-frame",
                "half-open",
                "delay",
                "corrupt",
                "client-restart",
                "disk-full",
                "read-only",
                "mix"
            ]
        );
        let left_out: Vec<_> = plan.left_out.iter().map(|(fault, _)| fault.name()).collect();
        assert_eq!(left_out, ["node-kill", "db-restart"]);
        assert!(!plan.deck.contains(&Fault::DiskFull) && plan.deck.contains(&Fault::ReadOnly));
    }

    #[test]
    fn all_on_a_cluster_of_our_own_trades_the_disk_faults_for_node_kills_and_database_restarts() {
        let plan = plan("all", &[], OWN_POSTGRES).expect("a plan");
        assert_eq!(
            names_of(&plan.scenarios),
            [
                "kill",
                "graceful",
                "cut",
                "cut-mid-frame",
                "half-open",
                "delay",
                "corrupt",
                "client-restart",
                "node-kill",
                "db-restart",
                "mix"
            ]
        );
        let left_out: Vec<_> = plan.left_out.iter().map(|(fault, _)| fault.name()).collect();
        assert_eq!(left_out, ["disk-full", "read-only"]);
        assert!(plan.deck.contains(&Fault::NodeKill) && plan.deck.contains(&Fault::DbRestart));
    }

    #[test]
    fn a_fault_the_setup_cannot_take_is_refused_with_the_reason() {
        let error = |scenario: &str, mix: &[&str], setup| {
            let mix: Vec<String> = mix.iter().map(|name| (*name).to_owned()).collect();
            plan(scenario, &mix, setup).expect_err("refused").to_string()
        };
        assert!(error("disk-full", &[], OWN_POSTGRES).contains("SQLite's file"));
        assert!(error("read-only", &[], OWN_POSTGRES).contains("SQLite's file"));
        assert!(error("node-kill", &[], SQLITE).contains("--nodes 2"));
        assert!(error("db-restart", &[], SQLITE).contains("--store postgres-cluster"));
        let shared = Setup { store: StoreKind::PostgresServer, nodes: 2 };
        assert!(error("db-restart", &[], shared).contains("never to one given by URL"));
        assert!(error("mix", &["cut", "read-only"], OWN_POSTGRES).contains("SQLite's file"));
        assert!(error("mix", &["disk-full"], SQLITE).contains("small disk"));
        assert!(error("cut", &["kill"], SQLITE).contains("--scenario mix or all"));
        assert!(error("mix", &["explode"], SQLITE).contains("unknown fault"));
    }

    #[test]
    fn a_named_mix_deals_what_it_names() {
        let mix = ["node-kill".to_owned(), "db-restart".to_owned(), "node-kill".to_owned()];
        let plan = plan("mix", &mix, OWN_POSTGRES).expect("a plan");
        assert_eq!(plan.deck, [Fault::NodeKill, Fault::DbRestart]);
        assert!(plan.deck_named);
    }
}
