//! The backup file: what `palomar backup` writes and `palomar restore` reads. A tar archive (ustar, so `tar tvf
//! FILE` lists it and any tar extracts it by hand) of these entries, in this order:
//!
//! 1. `palomar-backup.json`, the [`Manifest`]: that this is a Palomar backup and of which format, what it was
//!    made from, the certificate's fingerprint, what the store holds, and every other entry with its size and
//!    SHA-256. First, so that a file that is not a backup, or one of a newer format, is refused before anything
//!    is written.
//! 2. `store.sqlite`, the copy of the store (absent when the store is in PostgreSQL).
//! 3. `tls/cert.pem` and `tls/key.pem`, the server's identity, which clients have pinned.
//!
//! Tar checks its headers but not what follows them, so the SHA-256s are what finds a damaged or truncated file.
//! Reading extracts only the entries the manifest lists, under names of this module's choosing and never a path
//! taken from the archive, so a crafted file cannot write outside the directory it is extracted into.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first entry's name.
const MANIFEST: &str = "palomar-backup.json";
/// The format this Palomar writes, and the newest it reads. Raised when a change would make an older Palomar
/// restore a backup wrongly (a new entry it must not ignore); fields added to the manifest do not raise it.
pub const FORMAT: u32 = 1;
/// Largest manifest read: it lists three files.
const MANIFEST_MAX: u64 = 64 * 1024;
/// Buffer of the reads and writes.
const CHUNK: usize = 256 * 1024;

/// An entry of the archive other than the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    #[serde(rename = "store.sqlite")]
    Store,
    #[serde(rename = "tls/cert.pem")]
    Cert,
    #[serde(rename = "tls/key.pem")]
    Key,
}

impl Part {
    /// Its name in the archive, which is also its path in a data directory.
    pub fn path(self) -> &'static str {
        match self {
            Part::Store => "store.sqlite",
            Part::Cert => "tls/cert.pem",
            Part::Key => "tls/key.pem",
        }
    }

    /// The mode it is extracted with: the store holds the password hashes and every message, the key is the
    /// server's identity; only the certificate is public.
    fn mode(self) -> u32 {
        match self {
            Part::Store | Part::Key => 0o600,
            Part::Cert => 0o644,
        }
    }

    fn from_path(path: &str) -> Option<Part> {
        [Part::Store, Part::Cert, Part::Key].into_iter().find(|part| part.path() == path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The version of Palomar that wrote it.
    pub palomar: String,
    /// When the store's copy was taken (Unix milliseconds).
    pub created_ms: u64,
    /// The data directory it was made from, as given.
    pub data: String,
    pub store: StoreInfo,
    /// Where the certificate was read from: `<data>/tls/cert.pem`, or the configuration's `tls.cert`.
    pub cert_from: String,
    /// The certificate's fingerprint, as `palomar serve` prints it.
    pub fingerprint: String,
    pub files: Vec<FileInfo>,
}

/// What the backup holds of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreInfo {
    /// The embedded store, in `store.sqlite`.
    Sqlite { accounts: u64, conversations: u64, messages: u64, schema_version: i64 },
    /// The store is in this PostgreSQL database (a URL without password), and not in the backup.
    Postgres { database: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub part: Part,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// What goes into an entry: a file of the caller's (the store's copy, large), or bytes read already (the
/// certificate and key, read once so that what is hashed is what is written, even if they are renewed meanwhile).
pub enum Content<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl Content<'_> {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Content::File(path) => Box::new(BufReader::with_capacity(CHUNK, File::open(path)?)),
            Content::Bytes(bytes) => Box::new(*bytes),
        })
    }

    /// Its size and SHA-256.
    pub fn describe(&self, part: Part) -> io::Result<FileInfo> {
        let mut hashing = Hashing::new(io::sink());
        let bytes = io::copy(&mut self.open()?, &mut hashing)?;
        Ok(FileInfo { part, bytes, sha256: hashing.hex() })
    }
}

/// Writes the archive into `out`: the manifest, then each of `contents` (which the manifest's `files` describe,
/// in the same order), calling `progress` with the bytes written so far, of the total. `out` is synced.
pub fn write(
    out: &File,
    manifest: &Manifest,
    contents: &[Content<'_>],
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<()> {
    let total: u64 = manifest.files.iter().map(|file| file.bytes).sum();
    let mut tar = tar::Builder::new(BufWriter::with_capacity(CHUNK, out));
    let text = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
    tar.append(&header(MANIFEST, text.len() as u64, manifest.created_ms), text.as_slice())?;
    let mut done = 0;
    for (content, file) in contents.iter().zip(&manifest.files) {
        let mut counted = Counted { inner: content.open()?, done: &mut done, total, progress: &mut *progress };
        tar.append(&header(file.part.path(), file.bytes, manifest.created_ms), &mut counted)?;
    }
    // The two empty blocks that end an archive.
    let mut buffered = tar.into_inner()?;
    buffered.flush()?;
    out.sync_all()
}

/// A header of a regular file, owner-only, dated `ms`: the archive is a backup, not a copy of modes and owners.
fn header(path: &str, size: u64, ms: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(ms / 1_000);
    // Our names are short ASCII: this cannot fail, and a failure would show as a missing entry on restore.
    let _ = header.set_path(path);
    header.set_cksum();
    header
}

/// A reader that reports the bytes read through it.
struct Counted<'a, 'p> {
    inner: Box<dyn Read + 'a>,
    done: &'a mut u64,
    total: u64,
    progress: &'a mut (dyn FnMut(u64, u64) + 'p),
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.done += n as u64;
        (self.progress)(*self.done, self.total);
        Ok(n)
    }
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing { inner, hash: Sha256::new() }
    }

    fn hex(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a file could not be read as a backup.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is not a Palomar backup: {0}")]
    NotABackup(String),
    #[error("it was made by a newer Palomar (backup format {0}, this one reads up to {FORMAT}): use a newer release")]
    Newer(u32),
    #[error("it is truncated: {0} (was it copied whole?)")]
    Truncated(String),
    #[error("it is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The magic numbers of compressors people put backups through, to say so rather than "not a tar archive".
const COMPRESSED: [(&[u8], &str); 4] =
    [(b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2")];

/// Reads the backup `file` into the directory `into` (which the caller made, empty and private): every entry the
/// manifest lists, each checked against its size and SHA-256 and synced. Returns the manifest. On an error,
/// `into` may hold part of it; the caller removes it.
pub fn extract(file: &mut File, into: &Path) -> Result<Manifest, ReadError> {
    // A backup's first bytes are the manifest's name: the first field of the first header.
    let mut start = Vec::new();
    (&mut *file).take(MANIFEST.len() as u64 + 1).read_to_end(&mut start)?;
    if let Some((_, name)) = COMPRESSED.iter().find(|(magic, _)| start.starts_with(magic)) {
        return Err(ReadError::NotABackup(format!("it is {name}-compressed: decompress it first")));
    }
    let ours = start.starts_with(MANIFEST.as_bytes()) && start.get(MANIFEST.len()) == Some(&0);
    io::Seek::rewind(file)?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(CHUNK, &*file));
    let mut entries = archive.entries().map_err(|e| ReadError::NotABackup(format!("not a tar archive ({e})")))?;
    let manifest = match entries.next() {
        None => return Err(ReadError::NotABackup("it is empty".into())),
        Some(Err(e)) if ours && is_cut(&e) => {
            return Err(ReadError::Truncated("it ends within its first header".into()));
        }
        Some(Err(e)) => return Err(ReadError::NotABackup(format!("not a tar archive ({e})"))),
        Some(Ok(entry)) => read_manifest(entry)?,
    };
    let mut seen: Vec<Part> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| cut_or_damaged(e, "an entry's header"))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(file) = Part::from_path(&name).and_then(|part| manifest.files.iter().find(|f| f.part == part)) else {
            return Err(ReadError::Damaged(format!("it holds {name:?}, which its manifest does not list")));
        };
        if seen.contains(&file.part) {
            return Err(ReadError::Damaged(format!("it holds {name} twice")));
        }
        if entry.header().entry_type() != tar::EntryType::Regular || entry.size() != file.bytes {
            return Err(ReadError::Damaged(format!(
                "{name} is not the file of {} bytes its manifest lists",
                file.bytes
            )));
        }
        extract_one(&mut entry, file, into)?;
        seen.push(file.part);
    }
    if let Some(missing) = manifest.files.iter().find(|file| !seen.contains(&file.part)) {
        return Err(ReadError::Truncated(format!("it ends before {}", missing.part.path())));
    }
    Ok(manifest)
}

fn read_manifest(entry: tar::Entry<'_, impl Read>) -> Result<Manifest, ReadError> {
    if entry.path_bytes().as_ref() != MANIFEST.as_bytes() {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        return Err(ReadError::NotABackup(format!("a tar archive whose first entry is {name:?}, not {MANIFEST}")));
    }
    if entry.size() > MANIFEST_MAX {
        return Err(ReadError::Damaged(format!("its {MANIFEST} is {} bytes long", entry.size())));
    }
    let size = entry.size();
    let mut text = Vec::new();
    entry.take(MANIFEST_MAX).read_to_end(&mut text).map_err(|e| cut_or_damaged(e, MANIFEST))?;
    if (text.len() as u64) < size {
        return Err(ReadError::Truncated(format!("it ends within {MANIFEST}")));
    }
    // The format first, alone: a newer format's manifest may not read as this one's.
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let format: Format =
        serde_json::from_slice(&text).map_err(|e| ReadError::Damaged(format!("its {MANIFEST} does not read: {e}")))?;
    if format.format > FORMAT {
        return Err(ReadError::Newer(format.format));
    }
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| ReadError::Damaged(format!("its {MANIFEST} does not read: {e}")))?;
    let has = |part| manifest.files.iter().any(|file| file.part == part);
    let store_listed = matches!(manifest.store, StoreInfo::Sqlite { .. });
    if !has(Part::Cert) || !has(Part::Key) || has(Part::Store) != store_listed {
        return Err(ReadError::Damaged(format!("its {MANIFEST} does not list the files a backup holds")));
    }
    Ok(manifest)
}

/// Writes one entry to its place under `into`, checking its size and hash, and syncs it.
fn extract_one(entry: &mut impl Read, file: &FileInfo, into: &Path) -> Result<(), ReadError> {
    let path = into.join(file.part.path());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let out = OpenOptions::new().write(true).create_new(true).mode(file.part.mode()).open(&path)?;
    let mut hashing = Hashing::new(BufWriter::with_capacity(CHUNK, &out));
    let written = io::copy(entry, &mut hashing).map_err(|e| cut_or_damaged(e, file.part.path()))?;
    hashing.flush()?;
    if written < file.bytes {
        return Err(ReadError::Truncated(format!("it ends within {}", file.part.path())));
    }
    if hashing.hex() != file.sha256 {
        return Err(ReadError::Damaged(format!(
            "{} is not what was backed up (its SHA-256 differs)",
            file.part.path()
        )));
    }
    out.sync_all()?;
    Ok(())
}

/// Whether an error of the tar reader is the end of the file where more was due. The tar crate says so only in
/// words ("failed to read entire block", "unexpected EOF during skip"), with `ErrorKind::Other`.
fn is_cut(error: &io::Error) -> bool {
    let text = error.to_string();
    error.kind() == io::ErrorKind::UnexpectedEof || text.contains("entire block") || text.contains("unexpected EOF")
}

/// An error of the tar reader: the end of the file where more was due is a truncation; anything else, damage.
fn cut_or_damaged(error: io::Error, what: &str) -> ReadError {
    if is_cut(&error) {
        ReadError::Truncated(format!("it ends within {what}"))
    } else {
        ReadError::Damaged(format!("{what} does not read: {error}"))
    }
}

#[cfg(test)]
mod tests;
