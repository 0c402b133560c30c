//! The per-connection message rate limit (`WS_RATE_LIMIT_PER_MINUTE`): a token bucket in
//! 16 bytes, exact integer arithmetic on a millisecond clock the caller supplies. It never
//! reads a clock, never allocates and never panics, whatever the clock does.

/// One token, in refill units: the bucket gains `per_minute` units a millisecond, so a
/// token is 60 000 of them and refilling is exact integer arithmetic.
const UNITS_PER_TOKEN: u64 = 60_000;

/// A token bucket: `per_minute` messages a minute on average, bursts up to `burst`.
///
/// Kept as a GCRA ("virtual scheduling"): instead of a level and a last-refill time it
/// stores the theoretical arrival time `tat`, the instant at which the bucket will be full
/// again, in units of 1/`per_minute` ms (`now_ms * per_minute`), so one token is exactly
/// 60 000 units for any rate and no fraction is ever rounded away.
///
/// `tat` is kept modulo 2^64 (the scaled clock wraps after 2^64 / `per_minute` ms: 49.7 days
/// at `per_minute = u32::MAX`, 9.7 million years at 60). A `tat` more than a full bucket
/// ahead of now therefore means "in the past": the bucket is full. The blind spots, neither
/// of which can panic: an idle gap within one full bucket's time of a whole wrap period
/// counts as almost no time; a clock that steps back counts the step as owed, unless that
/// puts `tat` more than a full bucket ahead, which reads as a full bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// `now_ms * per_minute` (mod 2^64) at which the bucket is full again.
    tat: u64,
    per_minute: u32,
    burst: u32,
}

impl TokenBucket {
    /// A full bucket. `burst` 0 counts as 1 (a bucket that holds nothing would refuse every
    /// message); `per_minute` 0 never refills, so only the first `burst` messages pass.
    pub fn new(per_minute: u32, burst: u32, now_ms: u64) -> TokenBucket {
        let bucket = TokenBucket {
            tat: 0,
            per_minute,
            burst: burst.max(1),
        };
        TokenBucket {
            tat: bucket.scaled(now_ms),
            ..bucket
        }
    }

    /// Takes one token if there is one (`true`); a refusal costs nothing.
    pub fn try_take(&mut self, now_ms: u64) -> bool {
        let now = self.scaled(now_ms);
        // What the bucket owes: how far `tat` is ahead of now, in units; at most a full
        // bucket, else `tat` is in the past (see the type's doc).
        let ahead = self.tat.wrapping_sub(now);
        let owed = if ahead <= self.capacity() { ahead } else { 0 };
        if owed + UNITS_PER_TOKEN > self.capacity() {
            return false;
        }
        self.tat = now.wrapping_add(owed + UNITS_PER_TOKEN);
        true
    }

    /// The clock in units: `now_ms * per_minute`, modulo 2^64.
    fn scaled(&self, now_ms: u64) -> u64 {
        now_ms.wrapping_mul(u64::from(self.per_minute))
    }

    /// A full bucket in units: at most (2^32 - 1) * 60 000 < 2^48, so sums never overflow.
    fn capacity(&self) -> u64 {
        u64::from(self.burst) * UNITS_PER_TOKEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `attempts` takes, one every `step_ms` from `start_ms`, pass.
    fn passes(bucket: &mut TokenBucket, start_ms: u64, step_ms: u64, attempts: u64) -> u64 {
        (0..attempts)
            .filter(|i| bucket.try_take(start_ms + i * step_ms))
            .count() as u64
    }

    #[test]
    fn fits_in_sixteen_bytes() {
        assert!(std::mem::size_of::<TokenBucket>() <= 16);
    }

    #[test]
    fn burst_then_refusal() {
        let mut bucket = TokenBucket::new(60, 5, 1_000);
        for _ in 0..5 {
            assert!(bucket.try_take(1_000));
        }
        assert!(!bucket.try_take(1_000));
        assert!(!bucket.try_take(1_999));
        // 60 a minute: one token a second.
        assert!(bucket.try_take(2_000));
        assert!(!bucket.try_take(2_000));
    }

    #[test]
    fn refusals_cost_nothing() {
        let mut bucket = TokenBucket::new(60, 1, 0);
        assert!(bucket.try_take(0));
        for t in 0..1_000 {
            assert!(!bucket.try_take(t));
        }
        assert!(bucket.try_take(1_000));
    }

    #[test]
    fn refill_caps_at_burst() {
        let mut bucket = TokenBucket::new(60, 3, 0);
        assert_eq!(passes(&mut bucket, 0, 0, 10), 3);
        // An hour idle refills 3 tokens, not 3 600.
        assert_eq!(passes(&mut bucket, 3_600_000, 0, 10), 3);
    }

    #[test]
    fn steady_rate_without_drift() {
        // 7 a minute is one token every 8 571.43 ms: no whole number of ms, yet polling
        // every ms for an hour passes exactly the burst plus 7 * 60.
        let mut bucket = TokenBucket::new(7, 2, 0);
        assert_eq!(passes(&mut bucket, 0, 1, 3_600_001), 2 + 7 * 60);
        // The k-th refill lands at ceil(k * 60 000 / 7) ms while the bucket is not full.
        let mut bucket = TokenBucket::new(7, 2, 0);
        assert!(bucket.try_take(0) && bucket.try_take(0));
        assert!(!bucket.try_take(8_571));
        assert!(bucket.try_take(8_572));
        assert!(!bucket.try_take(17_142));
        assert!(bucket.try_take(17_143));
        assert!(!bucket.try_take(25_714));
        assert!(bucket.try_take(25_715));
    }

    #[test]
    fn one_a_minute() {
        let mut bucket = TokenBucket::new(1, 1, 500);
        assert!(bucket.try_take(500));
        assert!(!bucket.try_take(60_499));
        assert!(bucket.try_take(60_500));
        // Polling every second for ten minutes passes ten.
        assert_eq!(passes(&mut bucket, 60_501, 1_000, 600), 10 - 1);
    }

    #[test]
    fn very_large_values() {
        let mut bucket = TokenBucket::new(u32::MAX, u32::MAX, 0);
        assert_eq!(passes(&mut bucket, 0, 0, 100_000), 100_000);
        // A rate beyond one a ms still refills exactly: u32::MAX a minute is 71 582.79 a ms.
        let mut bucket = TokenBucket::new(u32::MAX, 3, 0);
        assert_eq!(passes(&mut bucket, 0, 0, 10), 3);
        assert_eq!(passes(&mut bucket, 1, 0, 10), 3);
        let mut bucket = TokenBucket::new(u32::MAX, 1_000_000, 0);
        assert_eq!(passes(&mut bucket, 0, 0, 2_000_000), 1_000_000);
        assert_eq!(passes(&mut bucket, 10, 0, 2_000_000), 715_827);
        // Large bursts at a slow rate.
        let mut bucket = TokenBucket::new(1, u32::MAX, 0);
        assert_eq!(passes(&mut bucket, 0, 0, 1_000), 1_000);
    }

    #[test]
    fn wrapping_scaled_clock() {
        // At u32::MAX a minute the scaled clock wraps every 2^32 ms: still exact across it.
        let wrap_ms = 1u64 << 32;
        let mut bucket = TokenBucket::new(u32::MAX, 2, wrap_ms - 1);
        assert_eq!(passes(&mut bucket, wrap_ms - 1, 0, 5), 2);
        assert_eq!(passes(&mut bucket, wrap_ms, 0, 5), 2);
        assert_eq!(passes(&mut bucket, wrap_ms + 1_000_000, 0, 5), 2);
    }

    #[test]
    fn zero_rate_and_zero_burst() {
        let mut bucket = TokenBucket::new(0, 3, 0);
        assert_eq!(passes(&mut bucket, 0, 1_000_000, 10), 3);
        assert!(!bucket.try_take(u64::MAX));
        let mut bucket = TokenBucket::new(60, 0, 0);
        assert!(bucket.try_take(0));
        assert!(!bucket.try_take(999));
        assert!(bucket.try_take(1_000));
    }

    #[test]
    fn clock_going_backwards_never_panics() {
        let mut bucket = TokenBucket::new(60, 3, 10_000);
        assert!(bucket.try_take(10_000));
        // A step back counts against the client: the half second is owed back.
        assert!(bucket.try_take(9_500));
        assert!(!bucket.try_take(9_500));
        // A step back past a full bucket's worth reads as a full bucket (documented).
        assert!(bucket.try_take(7_000));
        // Whatever else the clock does, nothing panics.
        for now in [0, 1, 5_000, u64::MAX, 0, u64::MAX / 2, 3] {
            let _ = bucket.try_take(now);
        }
        let mut bucket = TokenBucket::new(u32::MAX, u32::MAX, u64::MAX);
        for now in [u64::MAX, 0, u64::MAX, 1] {
            let _ = bucket.try_take(now);
        }
    }

    #[test]
    fn huge_gaps_refill() {
        for per_minute in [1, 60, 1_000_000] {
            let mut bucket = TokenBucket::new(per_minute, 2, 0);
            assert_eq!(passes(&mut bucket, 0, 0, 5), 2);
            assert_eq!(passes(&mut bucket, 1 << 40, 0, 5), 2, "{per_minute}");
            assert_eq!(passes(&mut bucket, u64::MAX / 2, 0, 5), 2, "{per_minute}");
        }
    }
}
