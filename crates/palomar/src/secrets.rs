//! Where a password comes from: a file, the `PALOMAR_PASSWORD` variable, or a prompt on the terminal
//! (never echoed). Passwords are never printed or logged.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};

pub fn password(file: Option<&Path>, prompt: &str) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?;
        let password = text.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("the password file {} is empty", file.display());
        }
        return Ok(password);
    }
    if let Ok(password) = std::env::var("PALOMAR_PASSWORD")
        && !password.is_empty()
    {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password(prompt).context("cannot read the password from the terminal")?;
        if password.is_empty() {
            bail!("the password must not be empty");
        }
        return Ok(password);
    }
    bail!("no password: set PALOMAR_PASSWORD, pass --password-file FILE, or run on a terminal to be asked")
}
