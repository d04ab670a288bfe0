//! Pinned server certificates: one `SERVER FINGERPRINT` line per server, like SSH's `known_hosts`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use palomar_transport::Fingerprint;

use crate::owner_only;

pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    pub fn new(path: PathBuf) -> Self {
        KnownHosts { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entries(&self) -> std::io::Result<Vec<(String, String)>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once(' ').map(|(s, f)| (s.to_owned(), f.trim().to_owned())))
            .collect())
    }

    /// The pinned fingerprint of `server`, if any.
    pub fn get(&self, server: &str) -> std::io::Result<Option<Fingerprint>> {
        Ok(self.entries()?.into_iter().find(|(s, _)| s == server).and_then(|(_, f)| Fingerprint::parse(&f)))
    }

    /// Pins `fingerprint` for `server`, replacing an earlier pin.
    pub fn set(&self, server: &str, fingerprint: Fingerprint) -> std::io::Result<()> {
        let mut entries = self.entries()?;
        entries.retain(|(s, _)| s != server);
        entries.push((server.to_owned(), fingerprint.to_string()));
        self.write(&entries)
    }

    /// Removes the pin of `server`; false if there was none.
    pub fn forget(&self, server: &str) -> std::io::Result<bool> {
        let mut entries = self.entries()?;
        let before = entries.len();
        entries.retain(|(s, _)| s != server);
        self.write(&entries)?;
        Ok(entries.len() != before)
    }

    fn write(&self, entries: &[(String, String)]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            owner_only::create_dir_all(dir)?;
        }
        // Which servers a user talks to is theirs to know: the file is owner-only from the start, since the
        // rename gives the pins the temporary file's mode.
        let tmp = self.path.with_extension("tmp");
        let mut file = owner_only::create(&tmp)?;
        for (server, fingerprint) in entries {
            writeln!(file, "{server} {fingerprint}")?;
        }
        file.sync_all()?;
        fs::rename(tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_replaced_and_forgotten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hosts = KnownHosts::new(dir.path().join("known_hosts"));
        assert_eq!(hosts.get("a:1").expect("reads"), None);
        hosts.set("a:1", Fingerprint([1; 32])).expect("writes");
        hosts.set("b:2", Fingerprint([2; 32])).expect("writes");
        hosts.set("a:1", Fingerprint([3; 32])).expect("writes");
        assert_eq!(hosts.get("a:1").expect("reads"), Some(Fingerprint([3; 32])));
        assert!(hosts.forget("b:2").expect("forgets"));
        assert_eq!(hosts.get("b:2").expect("reads"), None);
        let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(hosts.path()).expect("pins").permissions());
        assert_eq!(mode & 0o777, 0o600, "which servers one uses is nobody else's business");
    }
}
