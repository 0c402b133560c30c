//! The back-off after wrong passwords: per charge-point id and per source address, the first
//! [`FREE_FAILURES`] wrong passwords in a row cost nothing more, and each one after them shuts
//! that key out for twice as long as the last (from one second up to [`MAX_BACKOFF`]), so
//! guessing costs the guesser time and the gateway no argon2 runs. A right password clears the
//! id's and the address's record. The table is bounded ([`MAX_KEYS`]): stale records go first,
//! then the ones whose last failure is oldest. Sans-IO: the caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passwords in a row a key may give before it is shut out.
pub const FREE_FAILURES: u32 = 3;
/// The longest shut-out.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A key with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Keys tracked at most.
pub const MAX_KEYS: usize = 16_384;

/// Whose failures a record counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Id(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// Shut out until then.
    until: Instant,
    last: Instant,
}

/// The failure records of every id and address.
#[derive(Debug, Default)]
pub struct Backoff {
    records: Mutex<HashMap<Key, Record>>,
}

impl Backoff {
    /// `Err(wait)` while charge point `id` or address `addr` is shut out.
    pub fn check(&self, id: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let records = self.records.lock().expect("not poisoned");
        let wait = keys(id, addr)
            .filter_map(|key| records.get(&key))
            .map(|r| r.until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// A wrong password for `id` from `addr`.
    pub fn failed(&self, id: &str, addr: Option<IpAddr>, now: Instant) {
        let mut records = self.records.lock().expect("not poisoned");
        for key in keys(id, addr) {
            if !records.contains_key(&key) && records.len() >= MAX_KEYS {
                make_room(&mut records, now);
            }
            let record = records.entry(key).or_insert(Record {
                failures: 0,
                until: now,
                last: now,
            });
            record.failures = record.failures.saturating_add(1);
            record.last = now;
            if record.failures > FREE_FAILURES {
                let doublings = (record.failures - FREE_FAILURES - 1).min(16);
                let wait = Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF);
                record.until = now + wait;
            }
        }
    }

    /// A right password for `id` from `addr`: their records go.
    pub fn succeeded(&self, id: &str, addr: Option<IpAddr>) {
        let mut records = self.records.lock().expect("not poisoned");
        for key in keys(id, addr) {
            records.remove(&key);
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.lock().expect("not poisoned").len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn keys(id: &str, addr: Option<IpAddr>) -> impl Iterator<Item = Key> {
    [Some(Key::Id(id.to_owned())), addr.map(Key::Addr)]
        .into_iter()
        .flatten()
}

/// Frees a place: the stale records, else the quarter whose last failure is oldest.
fn make_room(records: &mut HashMap<Key, Record>, now: Instant) {
    records.retain(|_, r| now.saturating_duration_since(r.last) < FORGET_AFTER);
    if records.len() < MAX_KEYS {
        return;
    }
    let mut lasts: Vec<Instant> = records.values().map(|r| r.last).collect();
    let cut = lasts.len() / 4;
    lasts.select_nth_unstable(cut);
    let oldest_kept = lasts[cut];
    records.retain(|_, r| r.last >= oldest_kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn the_free_failures_pass_then_each_one_doubles_the_wait() {
        let backoff = Backoff::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(backoff.check("CP1", addr(1), t0), Ok(()));
            backoff.failed("CP1", addr(1), t0);
        }
        assert_eq!(backoff.check("CP1", addr(1), t0), Ok(()));
        backoff.failed("CP1", addr(1), t0);
        assert_eq!(
            backoff.check("CP1", addr(1), t0),
            Err(Duration::from_secs(1))
        );
        assert_eq!(
            backoff.check("CP1", addr(2), t0),
            Err(Duration::from_secs(1)),
            "the id is shut out from any address"
        );
        assert_eq!(
            backoff.check("CP2", addr(1), t0),
            Err(Duration::from_secs(1)),
            "and the address for any id"
        );
        assert_eq!(backoff.check("CP2", addr(2), t0), Ok(()));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(backoff.check("CP1", addr(1), t1), Ok(()));
        backoff.failed("CP1", addr(1), t1);
        assert_eq!(backoff.check("CP1", None, t1), Err(Duration::from_secs(2)));
        for _ in 0..20 {
            backoff.failed("CP1", None, t1);
        }
        assert_eq!(backoff.check("CP1", None, t1), Err(MAX_BACKOFF));
        backoff.succeeded("CP1", addr(1));
        assert_eq!(backoff.check("CP1", addr(1), t1), Ok(()));
        assert!(backoff.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_keeps_the_latest() {
        let backoff = Backoff::default();
        let t0 = Instant::now();
        for i in 0..MAX_KEYS + 100 {
            let at = t0 + Duration::from_millis(i as u64);
            backoff.failed(&format!("cp{i}"), None, at);
        }
        assert!(backoff.len() <= MAX_KEYS, "{}", backoff.len());
        let last = format!("cp{}", MAX_KEYS + 99);
        let records = backoff.records.lock().unwrap();
        assert!(records.contains_key(&Key::Id(last)));
        assert!(!records.contains_key(&Key::Id("cp0".into())));
    }
}
