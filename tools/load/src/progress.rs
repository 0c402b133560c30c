//! The live progress line on stderr: connections up, handshakes/s, msgs/s
//! and failures, at most twice a second; rewritten in place on a terminal,
//! one line per update otherwise (`--progress` into a file or pipe).

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use crate::stats::LiveSum;

const EVERY: Duration = Duration::from_millis(500);

/// Progress printer state.
pub struct Progress {
    enabled: bool,
    in_place: bool,
    mode: &'static str,
    start: Instant,
    last_at: Instant,
    last: LiveSum,
    printed: bool,
}

impl Progress {
    pub fn new(enabled: bool, mode: &'static str, start: Instant) -> Progress {
        Progress {
            enabled,
            in_place: std::io::stderr().is_terminal(),
            mode,
            start,
            last_at: start,
            last: LiveSum::default(),
            printed: false,
        }
    }

    /// Prints a line if enabled and at least half a second passed.
    pub fn tick(&mut self, now_sum: LiveSum) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let dt = now.duration_since(self.last_at);
        if dt < EVERY {
            return;
        }
        let secs = dt.as_secs_f64();
        let line = format!(
            "{} {:>6.1}s  up {:>7}  hs/s {:>8}  msgs/s {:>10}  failures {}",
            self.mode,
            now.duration_since(self.start).as_secs_f64(),
            now_sum.up,
            group((now_sum.handshakes.saturating_sub(self.last.handshakes)) as f64 / secs),
            group((now_sum.received.saturating_sub(self.last.received)) as f64 / secs),
            now_sum.failures,
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.in_place {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.printed = true;
        self.last_at = now;
        self.last = now_sum;
    }

    /// Ends the in-place line.
    pub fn finish(&mut self) {
        if self.enabled && self.in_place && self.printed {
            eprintln!();
        }
    }
}

/// `1234567.8` as `1,234,568`.
pub fn group(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.4), "999");
        assert_eq!(group(1000.0), "1,000");
        assert_eq!(group(1_234_567.8), "1,234,568");
        assert_eq!(group(-5.0), "0");
    }
}
