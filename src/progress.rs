//! Progress of long CLI commands on stderr: a bar redrawn in place when
//! stderr is a terminal, one plain line per phase otherwise (logs, cron
//! mail, pipes).

use std::io::{IsTerminal, Write};

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
