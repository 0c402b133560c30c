//! A steady rate shared by any number of threads: slot `i` is due
//! `i / rate` seconds after the start, each slot is claimed by one thread,
//! and claims end at the pacer's end or when it is stopped. It never lets
//! slots bunch up beyond what their due times say; a thread behind schedule
//! sends late, not twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest sleep between two looks at the stop flag.
const NAP: Duration = Duration::from_millis(50);

/// Hands out the due times of a rate.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    /// Time between two slots, ns (at least 1).
    interval_ns: u64,
    /// Slots due at or after this are never handed out.
    end: Option<Instant>,
    next: AtomicU64,
    stopped: AtomicBool,
}

impl Pacer {
    /// `per_second` slots a second from `start`, the last one before `end`
    /// (none: until stopped). `per_second` must be above 0.
    pub fn new(per_second: f64, start: Instant, end: Option<Instant>) -> Pacer {
        Pacer {
            start,
            interval_ns: ((1e9 / per_second) as u64).max(1),
            end,
            next: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    fn due(&self, slot: u64) -> Instant {
        let ns = u128::from(slot) * u128::from(self.interval_ns);
        self.start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Claims the next slot: its number (0, 1, ...) and due time, or `None`
    /// once the pacer ended or was stopped.
    pub fn claim(&self) -> Option<(u64, Instant)> {
        if self.stopped() {
            return None;
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.due(slot);
        self.end.is_none_or(|end| due < end).then_some((slot, due))
    }

    /// Sleeps until `due`; false if the pacer was stopped meanwhile.
    pub fn wait_for(&self, due: Instant) -> bool {
        loop {
            if self.stopped() {
                return false;
            }
            let Some(left) = due.checked_duration_since(Instant::now()) else {
                return true;
            };
            std::thread::sleep(left.min(NAP));
        }
    }

    /// No more claims.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Slots due at or before `at` (and before the end).
    pub fn due_by(&self, at: Instant) -> u64 {
        let at = match self.end {
            Some(end) if end <= at => end - Duration::from_nanos(1),
            _ => at,
        };
        match at.checked_duration_since(self.start) {
            Some(d) => (d.as_nanos() / u128::from(self.interval_ns)) as u64 + 1,
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_each_slot_once_until_the_end() {
        let t0 = Instant::now();
        let p = Pacer::new(4.0, t0, Some(t0 + Duration::from_secs(1)));
        let dues: Vec<_> = std::iter::from_fn(|| p.claim()).collect();
        assert_eq!(
            dues,
            [0, 250, 500, 750].map(|ms| (ms / 250, t0 + Duration::from_millis(ms)))
        );
        assert_eq!(p.due_by(t0), 1);
        assert_eq!(p.due_by(t0 + Duration::from_millis(600)), 3);
        assert_eq!(p.due_by(t0 + Duration::from_secs(9)), 4);
        assert_eq!(p.due_by(t0 - Duration::from_millis(1)), 0);
    }

    #[test]
    fn fractional_rates_and_stopping() {
        let t0 = Instant::now();
        let p = Pacer::new(0.5, t0, None);
        assert_eq!(p.claim(), Some((0, t0)));
        assert_eq!(p.claim(), Some((1, t0 + Duration::from_secs(2))));
        assert!(p.wait_for(t0));
        p.stop();
        assert_eq!(p.claim(), None);
        assert!(
            !p.wait_for(t0 + Duration::from_secs(60)),
            "a stop ends the wait"
        );
    }
}
