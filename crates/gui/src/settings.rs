//! What the desktop client remembers between runs: the last server and nickname and the theme, in
//! `gui.toml` in the user's configuration directory (`~/.config/palomar/` on Linux). Never the password:
//! there is no field for it.

use std::io::Write;
use std::path::{Path, PathBuf};

use palomar_client::owner_only;
use serde::{Deserialize, Serialize};

use crate::theme::ThemeChoice;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: Option<String>,
    pub nick: Option<String>,
    pub theme: ThemeChoice,
}

/// `gui.toml` in the platform's configuration directory, if there is one.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "palomar").map(|dirs| dirs.config_dir().join("gui.toml"))
}

impl Settings {
    /// The settings in `path`; defaults when it is missing or unreadable (a broken file costs a retyped
    /// server name, nothing more, so it is not worth stopping for).
    pub fn load(path: &Path) -> Settings {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "ignoring unreadable settings");
                Settings::default()
            }),
            Err(_) => Settings::default(),
        }
    }

    /// Writes the settings owner-only, whatever the umask: which servers one uses, under which nickname, is
    /// nobody else's business (the pins in the client's home are kept the same way).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            owner_only::create_dir_all(dir)?;
        }
        owner_only::create(path)?.write_all(toml::to_string(self)?.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn saved_settings_load_back_and_a_broken_file_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("palomar").join("gui.toml");
        assert_eq!(Settings::load(&path), Settings::default());
        let settings =
            Settings { server: Some("chat.example:5555".into()), nick: Some("ana".into()), theme: ThemeChoice::Dark };
        settings.save(&path).expect("saves");
        assert_eq!(Settings::load(&path), settings);
        assert!(!std::fs::read_to_string(&path).expect("reads").contains("password"));
        let mode = |path: &Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(dir.path().join("palomar").as_path())), (0o600, 0o700));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("loosens");
        settings.save(&path).expect("saves again");
        assert_eq!(mode(&path), 0o600, "a file saved by an older version is tightened");
        std::fs::write(&path, "server = [").expect("writes");
        assert_eq!(Settings::load(&path), Settings::default());
    }
}
