//! Files and directories only their owner can read, whatever the umask: the client's home holds the pins,
//! the outboxes (the text of messages not yet sent, direct ones too) and the cursors.
//!
//! SQLite gives a database's `-wal` and `-shm` files the mode of the database file, so creating the database
//! file owner-only before SQLite opens it covers them; ones left over from an earlier run are restricted too.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` and its missing parents, each 0700. A directory that exists is left as it is: it may be one
/// the user chose and shares on purpose; the files in it are what is restricted.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens `path` for writing, empty, created 0600; an existing file is made owner-only too.
pub fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    restrict(&file)?;
    Ok(file)
}

/// Makes the SQLite database `path` and the files SQLite keeps beside it owner-only, creating the database
/// file (empty, which SQLite takes for a new database) if there is none yet.
pub fn prepare_database(path: &Path) -> io::Result<()> {
    restrict(&OpenOptions::new().append(true).create(true).mode(0o600).open(path)?)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut beside = path.as_os_str().to_owned();
        beside.push(suffix);
        restrict_existing(&PathBuf::from(beside))?;
    }
    Ok(())
}

/// Makes `path` 0600 if it exists and its group or others have any permission on it.
pub fn restrict_existing(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => restrict(&file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn restrict(file: &File) -> io::Result<()> {
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_owner_only_and_loose_ones_are_tightened() {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home/servers");
        create_dir_all(&home).expect("creates");
        assert_eq!(mode(&dir.path().join("home")), 0o700);
        assert_eq!(mode(&home), 0o700);

        let pins = home.join("known_hosts.tmp");
        fs::write(&pins, "old").expect("writes");
        fs::set_permissions(&pins, Permissions::from_mode(0o666)).expect("loosens");
        create(&pins).expect("opens");
        assert_eq!((mode(&pins), fs::read_to_string(&pins).expect("reads")), (0o600, String::new()));

        let db = home.join("state.sqlite");
        let wal = home.join("state.sqlite-wal");
        fs::write(&wal, "frames").expect("writes");
        fs::set_permissions(&wal, Permissions::from_mode(0o644)).expect("loosens");
        prepare_database(&db).expect("prepares");
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        assert_eq!(fs::read_to_string(&wal).expect("reads"), "frames", "nothing is truncated");
        assert!(!home.join("state.sqlite-shm").exists(), "nothing else is created");

        fs::set_permissions(&db, Permissions::from_mode(0o640)).expect("loosens");
        prepare_database(&db).expect("prepares again");
        assert_eq!(mode(&db), 0o600);
    }
}
