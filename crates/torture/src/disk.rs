//! The disk faults, for the SQLite store: a small file system that can be filled, and a disk that turns
//! read-only under the running server.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Size of the small file system the disk-full scenario puts the store on.
const SMALL_DISK: &str = "size=48m";
/// The system calls by which the server writes files (SQLite's database and write-ahead log); sockets and
/// logs use others, so only the store is hit.
const FILE_WRITES: &str = "pwrite64,pwritev,pwritev2,ftruncate,fallocate";

/// A tmpfs mounted on a directory for the time of a run, so the store can run out of space.
pub(crate) struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    pub fn mount(path: &Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", SMALL_DISK, "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status();
        mounted.ok()?.success().then(|| SmallDisk { path: path.to_owned() })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).stderr(Stdio::null()).status();
    }
}

/// Makes every file write of a running process fail with EROFS, as on a file system remounted read-only,
/// until dropped. A real remount is refused while the store has its files open for writing ("mount point is
/// busy"); the kernel does it anyway after disk errors, and this is what the process then sees. Done with
/// `strace --inject` attached to every thread of the process; detaching lifts it.
pub(crate) struct ReadOnlyFault {
    strace: Child,
}

impl ReadOnlyFault {
    /// Whether strace is there and may attach to another child of ours, as it will to the server.
    pub fn available() -> bool {
        let Ok(mut target) = Command::new("sleep").arg("60").stdin(Stdio::null()).spawn() else { return false };
        let attached = ReadOnlyFault::inject(target.id()).is_ok();
        let _ = target.kill();
        let _ = target.wait();
        attached
    }

    pub fn inject(pid: u32) -> anyhow::Result<ReadOnlyFault> {
        let mut strace = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e"])
            .arg(format!("trace={FILE_WRITES}"))
            .arg("-e")
            .arg(format!("inject={FILE_WRITES}:error=EROFS"))
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start strace")?;
        // strace says "Process N attached" once it holds the process (messages go to stderr, the trace to
        // /dev/null); it ends at once when it may not trace it.
        let mut lines = BufReader::new(strace.stderr.take().context("strace stderr")?).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("attached") => {}
            other => {
                let _ = strace.kill();
                let _ = strace.wait();
                bail!("strace could not attach to the server: {other:?}");
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ReadOnlyFault { strace })
    }
}

impl Drop for ReadOnlyFault {
    fn drop(&mut self) {
        // SIGINT makes strace detach cleanly, leaving the process running untouched.
        let _ = Command::new("kill").args(["-INT", &self.strace.id().to_string()]).status();
        let _ = self.strace.wait();
    }
}

/// Checkpoints the store's write-ahead log into the database and truncates it, from a connection of our
/// own (the server's keeps working: SQLite coordinates them).
pub(crate) fn truncate_wal(store: &Path) {
    if let Ok(conn) = rusqlite::Connection::open(store) {
        let _ = conn.busy_timeout(Duration::from_secs(5));
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// Writes a file into `dir` until the file system is full; returns it so it can be removed again. `None`
/// when `dir` did not fill up (it is not on a small file system).
pub(crate) fn fill_disk(dir: &Path) -> Option<PathBuf> {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).ok()?;
    let block = vec![0u8; 1 << 20];
    for _ in 0..4_096 {
        if file.write_all(&block).is_err() {
            return Some(path);
        }
    }
    let _ = std::fs::remove_file(&path);
    None
}
