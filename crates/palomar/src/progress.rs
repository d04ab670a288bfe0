//! Progress of a long offline command (`palomar store copy`, `palomar backup`) on stderr: a bar on a terminal;
//! otherwise plain lines (a log or a cron mail has no use for a redrawn bar), at each phase's start and end and
//! every [`LINE_EVERY`] between.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often progress is said when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Rows,
    Pages,
    Bytes,
}

impl Unit {
    fn template(self) -> &'static str {
        match self {
            Unit::Rows => "{msg:9} [{bar:30}] {human_pos}/{human_len} rows, {eta} left",
            Unit::Pages => "{msg:9} [{bar:30}] {human_pos}/{human_len} pages, {eta} left",
            Unit::Bytes => "{msg:9} [{bar:30}] {bytes}/{total_bytes}, {eta} left",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Rows => "rows",
            Unit::Pages => "pages",
            Unit::Bytes => "bytes",
        }
    }
}

pub struct Shown {
    bar: Option<ProgressBar>,
    phase: Option<&'static str>,
    last_line: Instant,
    /// What the last line said was done, so that the same is not said twice.
    last_done: Option<u64>,
}

impl Shown {
    pub fn new() -> Shown {
        let bar = std::io::stderr().is_terminal().then(ProgressBar::hidden);
        Shown { bar, phase: None, last_line: Instant::now(), last_done: None }
    }

    /// `done` of `total` in the phase `name`; a phase with no total (0) is a spinner, or one line.
    pub fn update(&mut self, name: &'static str, unit: Unit, done: u64, total: u64) {
        let new_phase = self.phase.replace(name) != Some(name);
        match &self.bar {
            Some(bar) => {
                if new_phase {
                    // Set up unseen, so that the first frame drawn is a whole one.
                    bar.set_draw_target(ProgressDrawTarget::hidden());
                    let style = if total == 0 {
                        ProgressStyle::with_template("{spinner} {msg}…")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    } else {
                        ProgressStyle::with_template(unit.template())
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> ")
                    };
                    bar.set_style(style);
                    bar.set_length(total);
                    bar.set_message(name);
                    bar.reset();
                    bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
                    if total == 0 {
                        bar.enable_steady_tick(Duration::from_millis(100));
                    } else {
                        bar.disable_steady_tick();
                    }
                }
                bar.set_position(done);
            }
            None if total == 0 && new_phase => {
                eprintln!("{name}…");
                self.last_line = Instant::now();
            }
            None if total == 0 => {}
            None if self.last_done == Some(done) && !new_phase => {}
            None if new_phase || done == total || self.last_line.elapsed() >= LINE_EVERY => {
                eprintln!("{name}: {done} of {total} {}", unit.name());
                self.last_line = Instant::now();
                self.last_done = Some(done);
            }
            None => {}
        }
    }

    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
