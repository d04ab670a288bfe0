//! Reads from the store, off the async threads, on a small pool of read-only connections (WAL lets them
//! run beside the writer).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use palomar_store::{Db, StoreError};
use tokio::sync::Semaphore;

/// Most reads running at once, and so most connections. Without a bound every lagging session had a blocking
/// thread and a connection of its own, each with its own page cache: 140 of them in the open-loop benchmark,
/// for no gain on two cores.
const CONCURRENT_READS: usize = 16;

pub struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Db>>,
    slots: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadFailed {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store read was interrupted")]
    Interrupted,
}

impl Reads {
    pub fn new(path: &Path) -> Arc<Reads> {
        Arc::new(Reads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(CONCURRENT_READS)),
        })
    }

    /// Runs `read` on a pooled connection in the blocking thread pool.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, ReadFailed>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        // The slot goes with the read to its thread: a session dropped while it waits must not free the slot of a
        // read still running.
        let slot = self.slots.clone().acquire_owned().await.map_err(|_| ReadFailed::Interrupted)?;
        let reads = self.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = reads.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let db = match pooled {
                Some(db) => db,
                None => Db::open_reader(&reads.path)?,
            };
            let result = read(&db);
            reads.idle.lock().unwrap_or_else(|p| p.into_inner()).push(db);
            Ok(result?)
        })
        .await
        .map_err(|_| ReadFailed::Interrupted)?
    }
}
