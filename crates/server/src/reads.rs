//! Reads from the store, off the async threads, on a small pool of read-only connections (WAL lets them
//! run beside the writer).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use palomar_store::{Db, StoreError};

pub struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Db>>,
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
        Arc::new(Reads { path: path.to_owned(), idle: Mutex::new(Vec::new()) })
    }

    /// Runs `read` on a pooled connection in the blocking thread pool.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, ReadFailed>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let reads = self.clone();
        tokio::task::spawn_blocking(move || {
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
