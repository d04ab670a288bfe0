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
        return ask(prompt);
    }
    bail!("no password: set PALOMAR_PASSWORD, pass --password-file FILE, or run on a terminal to be asked")
}

/// Whether [`password`] asks on the terminal (no file, no `PALOMAR_PASSWORD`): only then can it ask again.
pub fn asks(file: Option<&Path>) -> bool {
    file.is_none()
        && std::env::var("PALOMAR_PASSWORD").map_or(true, |password| password.is_empty())
        && std::io::stdin().is_terminal()
}

/// Asks on the terminal, without echo.
pub fn ask(prompt: &str) -> anyhow::Result<String> {
    let password = rpassword::prompt_password(prompt).context("cannot read the password from the terminal")?;
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(password)
}

/// Asks for a password that may register a new account: twice, until both agree, so that a typo does not
/// become the account's password.
pub fn ask_new(prompt: &str, again: &str) -> anyhow::Result<String> {
    for _ in 0..3 {
        let password = ask(prompt)?;
        if ask(again)? == password {
            return Ok(password);
        }
        eprintln!("the two passwords differ; once more");
    }
    bail!("the passwords did not match three times")
}
