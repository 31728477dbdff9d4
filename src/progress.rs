//! Progress of long CLI commands on stderr: a bar redrawn in place when
//! stderr is a terminal, one plain line per phase otherwise (logs, cron
//! mail, pipes); and [`Throttle`], which decides when a job's progress is
//! worth recording in the catalog.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Passes every change of phase, and a change of percent at most once a
/// second (and 100 always): what the catalog records of a job's progress.
pub struct Throttle {
    last: Option<(Instant, String)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle { last: None }
    }

    /// Whether `phase` at `percent` is worth recording now.
    pub fn pass(&mut self, phase: &str, percent: u32) -> bool {
        let due = match &self.last {
            None => true,
            Some((at, last)) => {
                last != phase || percent >= 100 || at.elapsed() >= Duration::from_secs(1)
            }
        };
        if due {
            self.last = Some((Instant::now(), phase.to_string()));
        }
        due
    }
}

pub struct Progress {
    label: &'static str,
    terminal: bool,
    phase: String,
    drawn: bool,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Progress {
            label,
            terminal: std::io::stderr().is_terminal(),
            phase: String::new(),
            drawn: false,
        }
    }

    /// Shows phase and percent.
    pub fn update(&mut self, phase: &str, percent: u32) {
        let percent = percent.min(100);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let filled = (percent / 5) as usize;
            let _ = write!(
                err,
                "\r{}: [{}{}] {percent:>3}% {phase:<10}",
                self.label,
                "#".repeat(filled),
                " ".repeat(20 - filled)
            );
            let _ = err.flush();
            self.drawn = true;
        } else if phase != self.phase {
            let _ = writeln!(err, "{}: {phase}", self.label);
        }
        self.phase = phase.to_string();
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

/// A bar left unfinished (an error returned early) ends its line too.
impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
