//! Where a user's client state (pins, outboxes, cursors) lives: the directory given on the command line,
//! else `PALOMAR_HOME`, else the platform's data directory (`~/.local/share/palomar` on Linux). Every front
//! end finds it the same way, so trust decisions and outboxes are shared between them.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory; set PALOMAR_HOME or pass --home")]
pub struct NoHome;

/// `flag`, else `PALOMAR_HOME`, else the platform's data directory.
pub fn client_home(flag: Option<PathBuf>) -> Result<PathBuf, NoHome> {
    if let Some(home) = flag {
        return Ok(home);
    }
    if let Some(home) = std::env::var_os("PALOMAR_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    directories::ProjectDirs::from("", "", "palomar").map(|dirs| dirs.data_dir().to_owned()).ok_or(NoHome)
}
