use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Content, FORMAT, Manifest, Part, ReadError, StoreInfo, extract, write};

const STORE: &[u8] = b"pretend this is an SQLite file, long enough to span blocks of the archive";
const CERT: &[u8] = b"-----BEGIN CERTIFICATE-----\n...\n";
const KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\n...\n";

fn manifest(contents: &[(Part, Content<'_>)]) -> Manifest {
    Manifest {
        format: FORMAT,
        palomar: "0.1.0".into(),
        created_ms: 1_700_000_000_000,
        data: "palomar-data".into(),
        store: StoreInfo::Sqlite { accounts: 1, conversations: 2, messages: 3, schema_version: 4 },
        cert_from: "palomar-data/tls/cert.pem".into(),
        fingerprint: "SHA256:00".into(),
        files: contents.iter().map(|(part, content)| content.describe(*part).expect("describes")).collect(),
    }
}

/// A backup of [`STORE`], [`CERT`] and [`KEY`] at `path`; its manifest.
fn backup(dir: &Path, path: &Path) -> Manifest {
    let store = dir.join("store-copy");
    std::fs::write(&store, STORE.repeat(1_000)).expect("writes");
    let contents =
        [(Part::Store, Content::File(&store)), (Part::Cert, Content::Bytes(CERT)), (Part::Key, Content::Bytes(KEY))];
    let manifest = manifest(&contents);
    let out = File::create(path).expect("creates");
    let mut reports = Vec::new();
    let contents: Vec<Content<'_>> = contents.into_iter().map(|(_, content)| content).collect();
    write(&out, &manifest, &contents, &mut |done, total| reports.push((done, total))).expect("writes");
    let total = (STORE.len() * 1_000 + CERT.len() + KEY.len()) as u64;
    assert_eq!(reports.last(), Some(&(total, total)), "progress to the end");
    manifest
}

fn extract_from(path: &Path, into: &Path) -> Result<Manifest, ReadError> {
    extract(&mut File::open(path).expect("opens"), into)
}

#[test]
fn what_is_written_is_read_back_with_its_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.tar");
    let written = backup(dir.path(), &file);
    let into = dir.path().join("into");
    std::fs::create_dir(&into).expect("creates");
    assert_eq!(extract_from(&file, &into).expect("extracts"), written);
    assert_eq!(std::fs::read(into.join("store.sqlite")).expect("reads"), STORE.repeat(1_000));
    assert_eq!(std::fs::read(into.join("tls/cert.pem")).expect("reads"), CERT);
    assert_eq!(std::fs::read(into.join("tls/key.pem")).expect("reads"), KEY);
    let mode = |part: &str| std::fs::metadata(into.join(part)).expect("exists").permissions().mode() & 0o777;
    assert_eq!((mode("store.sqlite"), mode("tls/key.pem"), mode("tls/cert.pem")), (0o600, 0o600, 0o644));
}

#[test]
fn a_truncated_file_is_said_to_be() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.tar");
    backup(dir.path(), &file);
    let whole = std::fs::read(&file).expect("reads");
    // The end: two empty blocks after the key's header and its one block of data, the certificate's before.
    let key_header = whole.len() - 1024 - 512 - 512;
    let cert_data = key_header - 512;
    // Within the manifest's header, within the manifest, within the store, within the certificate, between the
    // certificate and the key, within the key's header.
    for length in [100, 600, whole.len() / 2, cert_data + 10, key_header, key_header + 100] {
        let cut = dir.path().join(format!("cut-{length}.tar"));
        std::fs::write(&cut, &whole[..length]).expect("writes");
        let into = tempfile::tempdir().expect("temp dir");
        let error = extract_from(&cut, into.path()).expect_err("refused");
        assert!(matches!(error, ReadError::Truncated(_)), "cut at {length} of {}: {error}", whole.len());
    }
}

#[test]
fn a_changed_byte_anywhere_in_the_contents_is_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.tar");
    backup(dir.path(), &file);
    let whole = std::fs::read(&file).expect("reads");
    // Within the store's contents (after the manifest's header and text, and the store's header), and in the
    // key's, near the end.
    for at in [512 * 4, whole.len() / 2, whole.len() - 1024 - 512 + 10] {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x20;
        let changed = dir.path().join(format!("changed-{at}.tar"));
        std::fs::write(&changed, &bytes).expect("writes");
        let into = tempfile::tempdir().expect("temp dir");
        let error = extract_from(&changed, into.path()).expect_err("refused");
        assert!(matches!(error, ReadError::Damaged(_)), "byte {at}: {error}");
    }
}

#[test]
fn what_is_not_a_backup_is_said_to_be_not_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty", Vec::new(), "empty"),
        ("short", b"a line\n".to_vec(), "not a tar archive"),
        ("text", b"hello, this is a text file and nothing else\n".repeat(30), "not a tar archive"),
        ("gzip", b"\x1f\x8b\x08\x00 and so on".to_vec(), "gzip-compressed"),
        (
            "other tar",
            {
                let mut tar = tar::Builder::new(Vec::new());
                let mut header = tar::Header::new_ustar();
                header.set_size(5);
                header.set_cksum();
                tar.append_data(&mut header, "notes.txt", &b"notes"[..]).expect("appends");
                tar.into_inner().expect("ends")
            },
            "first entry is \"notes.txt\"",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("writes");
        let into = tempfile::tempdir().expect("temp dir");
        let error = extract_from(&path, into.path()).expect_err("refused");
        assert!(matches!(error, ReadError::NotABackup(_)) && error.to_string().contains(says), "{name}: {error}");
        assert_eq!(std::fs::read_dir(into.path()).expect("lists").count(), 0, "{name}: nothing extracted");
    }
}

/// A manifest of a newer format is refused before anything is extracted, even if it does not read as ours.
#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("newer.tar");
    let mut tar = tar::Builder::new(File::create(&path).expect("creates"));
    let text = format!("{{\"format\": {}, \"everything\": \"else is new\"}}", FORMAT + 1);
    let mut header = tar::Header::new_ustar();
    header.set_size(text.len() as u64);
    header.set_cksum();
    tar.append_data(&mut header, "palomar-backup.json", text.as_bytes()).expect("appends");
    tar.into_inner().expect("ends").flush().expect("flushes");
    let error = extract_from(&path, dir.path()).expect_err("refused");
    assert!(matches!(error, ReadError::Newer(n) if n == FORMAT + 1), "{error}");
}

/// An entry the manifest does not list, however it is named (a path out of the directory), is never written.
#[test]
fn an_entry_not_listed_is_refused_and_not_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crafted.tar");
    let contents = [(Part::Cert, Content::Bytes(CERT)), (Part::Key, Content::Bytes(KEY))];
    let mut listed = manifest(&contents);
    listed.store = StoreInfo::Postgres { database: "postgres://palomar@db/palomar".into() };
    let mut tar = tar::Builder::new(File::create(&path).expect("creates"));
    let text = serde_json::to_vec(&listed).expect("encodes");
    let mut header = tar::Header::new_ustar();
    header.set_size(text.len() as u64);
    header.set_cksum();
    tar.append_data(&mut header, "palomar-backup.json", text.as_slice()).expect("appends");
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    // Written by hand: the tar crate refuses to build a path with `..`.
    let name = b"../escaped";
    if let Some(gnu) = header.as_gnu_mut() {
        gnu.name[..name.len()].copy_from_slice(name);
    }
    header.set_cksum();
    tar.append(&header, &b"evil"[..]).expect("appends");
    tar.into_inner().expect("ends").flush().expect("flushes");
    let into = dir.path().join("into");
    std::fs::create_dir(&into).expect("creates");
    let error = extract_from(&path, &into).expect_err("refused");
    assert!(matches!(error, ReadError::Damaged(_)) && error.to_string().contains("does not list"), "{error}");
    assert!(!dir.path().join("escaped").exists());
}
