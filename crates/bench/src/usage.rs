//! CPU time and peak memory from Linux's /proc: of another process (a spawned server), of this process, and
//! of this process's threads with a given name (the reference relay). Elsewhere the figures are missing.

use std::path::Path;
use std::sync::OnceLock;

/// What the load is measured against, as far as its resource use can be observed.
pub trait Target: Sync {
    /// CPU seconds (user and system) used so far; `None` when it cannot be observed.
    fn cpu_secs(&self) -> Option<f64>;
    /// Resident memory now, in bytes.
    fn memory_bytes(&self) -> Option<u64>;
    /// Starts measuring the peak memory afresh (from the memory in use now), where the kernel allows it.
    fn reset_peak_memory(&self);
    /// Peak resident memory since the last reset (or since start), in bytes.
    fn peak_memory_bytes(&self) -> Option<u64>;
    /// CPU seconds used so far by the database server the target keeps its store in, when it is another
    /// process on this machine.
    fn database_cpu_secs(&self) -> Option<f64> {
        None
    }
}

/// A server that is not ours to observe.
pub struct Unobserved;

impl Target for Unobserved {
    fn cpu_secs(&self) -> Option<f64> {
        None
    }

    fn memory_bytes(&self) -> Option<u64> {
        None
    }

    fn reset_peak_memory(&self) {}

    fn peak_memory_bytes(&self) -> Option<u64> {
        None
    }
}

/// Clock ticks per second of the CPU times in /proc (`getconf CLK_TCK`, nearly always 100).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// The command name and user + system CPU seconds in a `stat` file of /proc.
fn read_stat(path: &Path) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The name sits in parentheses and may itself contain spaces and parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt,
    // utime, stime.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / clock_ticks()))
}

pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    read_stat(Path::new(&format!("/proc/{pid}/stat"))).map(|(_, secs)| secs)
}

pub fn own_cpu_secs() -> Option<f64> {
    read_stat(Path::new("/proc/self/stat")).map(|(_, secs)| secs)
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
pub fn own_threads_cpu_secs(prefix: &str) -> Option<f64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let total = tasks
        .flatten()
        .filter_map(|task| read_stat(&task.path().join("stat")))
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, secs)| secs)
        .sum();
    Some(total)
}

/// CPU seconds of every process on this machine whose command is `name`, alive now. A server's connections
/// live as long as the run, so their CPU is all there at its end.
pub fn processes_cpu_secs(name: &str) -> Option<f64> {
    let processes = std::fs::read_dir("/proc").ok()?;
    let total = processes
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|entry| read_stat(&entry.path().join("stat")))
        .filter(|(command, _)| command == name)
        .map(|(_, secs)| secs)
        .sum();
    Some(total)
}

/// Resets the peak resident memory (`VmHWM`) of a process; ignored where the kernel does not allow it.
pub fn reset_peak_memory(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// A memory figure of a process's `status` file (`VmRSS`, `VmHWM`), in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

pub fn memory_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS")
}

/// Peak resident memory (`VmHWM`) of a process, in bytes.
pub fn peak_memory_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_observed() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        assert!(own_cpu_secs().is_some_and(|secs| secs >= 0.0));
        let pid = std::process::id();
        assert!(process_cpu_secs(pid).is_some());
        assert!(peak_memory_bytes(pid).is_some_and(|bytes| bytes > 0));
        assert!(memory_bytes(pid).is_some_and(|bytes| bytes > 0));
        assert_eq!(own_threads_cpu_secs("no-such-thread-name"), Some(0.0));
        assert_eq!(processes_cpu_secs("no-such-program"), Some(0.0));
    }
}
