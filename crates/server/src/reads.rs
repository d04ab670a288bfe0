//! Reads from the store, off the async threads, on a few threads of their own, each with its own read-only
//! connection (SQLite's WAL, or PostgreSQL, lets them run beside the writer).

use std::panic::AssertUnwindSafe;

use crossbeam_channel::Sender;
use metrics::Gauge;
use palomar_store::{Location, Store, StoreError};
use tokio::sync::oneshot;

use crate::workers::{self, JobQueue};

/// Threads, and so connections and reads at once: twice the cores, so that a read waiting for the disk leaves
/// the CPU to another, within 4 to 16. Fixed, rather than tokio's blocking pool: there every read started as the
/// last one's thread was still going idle, so the pool kept starting threads (70 of them in the open-loop
/// benchmark), and each thread's allocations stayed in a heap of its own. More threads than that only cost
/// memory: in the open loop on two cores, 4, 8 and 16 delivered the same, with peaks of 107–113, 127–135 and
/// 167–194 MiB.
fn read_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| 2 * cores.get()).clamp(4, 16)
}

/// A read with its reply, given the thread's connection, or why there is none.
type Job = Box<dyn FnOnce(Result<&dyn Store, StoreError>) + Send>;

pub struct Reads {
    jobs: Sender<Job>,
    in_flight: Gauge,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadFailed {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store read was interrupted")]
    Interrupted,
}

impl Reads {
    /// Starts the threads; each opens its connection to the store at `location` with its first read.
    /// `in_flight` counts the reads queued or running.
    pub fn start(location: &Location, in_flight: Gauge) -> std::io::Result<Reads> {
        let location = location.clone();
        let jobs = workers::start("palomar-reads", read_threads(), move |queue| serve_reads(&location, queue))?;
        Ok(Reads { jobs, in_flight })
    }

    /// Runs `read` on one of the read threads. A caller dropped while it waits leaves the read to finish there.
    pub async fn run<T, F>(&self, read: F) -> Result<T, ReadFailed>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let counted = InFlight::count(&self.in_flight);
        let job: Job = Box::new(move |db| {
            let _counted = counted;
            let _ = reply.send(db.and_then(read));
        });
        self.jobs.send(job).map_err(|_| ReadFailed::Interrupted)?;
        Ok(answer.await.map_err(|_| ReadFailed::Interrupted)??)
    }
}

/// A read counted in the gauge of reads in flight until it is done, or dropped unread.
struct InFlight(Gauge);

impl InFlight {
    fn count(gauge: &Gauge) -> InFlight {
        gauge.increment(1.0);
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// One read thread: takes reads from the shared queue until the server drops it. A connection that cannot be
/// opened fails the read that needed it, and the next read tries again.
fn serve_reads(location: &Location, queue: &JobQueue<Job>) {
    let mut connection: Option<Box<dyn Store>> = None;
    while let Some(job) = queue.next() {
        let db = match connection.take() {
            Some(db) => db,
            None => match location.open_reader() {
                Ok(db) => db,
                Err(error) => {
                    job(Err(error));
                    continue;
                }
            },
        };
        // A read that panics costs its caller an error, not the thread: the pool never shrinks. Its connection
        // may be mid-transaction, so the next read opens a fresh one.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&*db)))).is_ok() {
            connection = Some(db);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Long enough for a loaded machine; a read pool that lost its threads would wait forever instead.
    const PATIENCE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_panicking_read_fails_alone_and_the_threads_go_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        palomar_store::sqlite::SqliteStore::open(&path).expect("creates the store");
        let reads = Reads::start(&Location::Sqlite(path), Gauge::noop()).expect("starts");
        for _ in 0..2 * read_threads() {
            let failed =
                tokio::time::timeout(PATIENCE, reads.run(|_| -> Result<(), StoreError> { panic!("a bad read") }))
                    .await
                    .expect("answers in time");
            assert!(matches!(failed, Err(ReadFailed::Interrupted)));
        }
        let rooms = tokio::time::timeout(PATIENCE, reads.run(|db| db.all_conversations()))
            .await
            .expect("answers in time")
            .expect("reads");
        assert_eq!(rooms.len(), 1, "the lobby");
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_opened_fails_every_read_that_needs_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let reads = Reads::start(&Location::Sqlite(dir.path().join("missing").join("store.db")), Gauge::noop())
            .expect("starts");
        for _ in 0..2 {
            let failed =
                tokio::time::timeout(PATIENCE, reads.run(|db| db.all_conversations())).await.expect("answers in time");
            assert!(matches!(failed, Err(ReadFailed::Store(_))));
        }
    }
}
