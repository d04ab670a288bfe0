//! The progress bar on stderr while a run goes on: clients connected, then time (or messages) done with the
//! current rates. Hidden for `--json` and when stderr is not a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::scenario::Stop;

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(visible: bool) -> Progress {
        let target = if visible { ProgressDrawTarget::stderr_with_hz(10) } else { ProgressDrawTarget::hidden() };
        Progress { bar: ProgressBar::with_draw_target(None, target) }
    }

    pub fn connecting(&self, target: &str, clients: usize) {
        self.bar.reset();
        self.bar.set_style(style("{prefix:>15} connecting {pos}/{len} clients {wide_msg}"));
        self.bar.set_prefix(target.to_owned());
        self.bar.set_length(clients as u64);
        self.bar.set_position(0);
        self.bar.set_message("");
    }

    pub fn connected(&self) {
        self.bar.inc(1);
    }

    /// Switches to the sending phase: the bar counts milliseconds, or messages when the run has a count.
    pub fn sending(&self, stop: Stop, senders: usize) {
        let length = match stop {
            Stop::After(duration) => duration.as_millis() as u64,
            Stop::Messages(per_sender) => per_sender * senders as u64,
        };
        self.bar.set_style(style("{prefix:>15} [{bar:30}] {wide_msg}"));
        self.bar.set_length(length);
        self.bar.set_position(0);
    }

    /// `elapsed` or `acked` moves the bar, depending on the phase; the message shows the rates so far.
    pub fn update(&self, stop: Stop, elapsed: Duration, acked: u64, delivered: u64) {
        let position = match stop {
            Stop::After(_) => elapsed.as_millis() as u64,
            Stop::Messages(_) => acked,
        };
        self.bar.set_position(position);
        let secs = elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{:.1} s  {:.0} acks/s  {:.0} deliveries/s",
            elapsed.as_secs_f64(),
            acked as f64 / secs,
            delivered as f64 / secs
        ));
    }

    pub fn draining(&self) {
        self.bar.set_message("waiting for the last deliveries");
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}
