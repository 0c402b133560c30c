//! Who gets in. The connection limit with its admin reserve: past
//! MAX_CONNECTIONS a few more sockets are taken for plain HTTP only, so
//! `/health` and the admin routes still answer when the server is full. And
//! the back-off after failed accepts (descriptors exhausted, memory short):
//! accepting pauses instead of spinning, one log line per interval carries a
//! count, existing connections are served throughout, and accepting resumes
//! as soon as a connection frees its descriptor or the pause ends.

use std::io;
use std::sync::atomic::Ordering;

use super::Shard;

/// What the driver's own table has room for (process descriptors: always
/// `Normal`; a registered file table keeps entries for the admin reserve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    Normal,
    ReserveOnly,
    Full,
}

/// First pause after a resource failure; it doubles up to `MAX_PAUSE_MS`.
const FIRST_PAUSE_MS: u64 = 50;
const MAX_PAUSE_MS: u64 = 1000;
/// At most one log line about failed accepts per interval.
const LOG_INTERVAL_MS: u64 = 5000;

/// Accept failures and the pause they caused.
#[derive(Default)]
pub(super) struct AcceptBackoff {
    /// Shard clock (ms) until which accepting pauses; 0 = not paused.
    paused_until: u64,
    /// The next pause's length.
    pause_ms: u64,
    /// Failures not yet reported in a log line.
    unreported: u64,
    last_error: Option<i32>,
    /// When the last line was logged.
    logged_at: Option<u64>,
}

/// Failures that mean "no resources right now": accepting again at once
/// would fail the same way.
fn is_resource_error(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

impl Shard {
    /// Decides on an accepted socket: `Some(reserve)` admits it (`reserve`:
    /// past MAX_CONNECTIONS, plain HTTP only); `None` refuses it (503).
    pub(super) fn admit(&self, room: Room) -> Option<bool> {
        let limits = &self.shared.capacity;
        let before = self.shared.sockets.fetch_add(1, Ordering::Relaxed);
        let admitted = match room {
            _ if !self.accepting() => None,
            Room::Normal if before < limits.max_connections => Some(false),
            Room::Normal | Room::ReserveOnly
                if before < limits.max_connections + limits.admin_reserve =>
            {
                Some(true)
            }
            _ => None,
        };
        if admitted.is_none() {
            self.shared.sockets.fetch_sub(1, Ordering::Relaxed);
        }
        admitted
    }

    /// True when the driver should have an accept armed.
    pub(crate) fn may_accept(&self) -> bool {
        self.accepting() && self.now >= self.backoff.paused_until
    }

    /// When a paused accept should be tried again, if paused.
    pub(crate) fn accept_resumes_at(&self) -> Option<u64> {
        (self.backoff.paused_until > self.now).then_some(self.backoff.paused_until)
    }

    /// An accept succeeded: failures are over.
    pub(super) fn accept_succeeded(&mut self) {
        self.backoff.pause_ms = 0;
    }

    /// An accept failed with `errno`. Resource errors pause accepting.
    pub(crate) fn accept_failed(&mut self, errno: i32) {
        let b = &mut self.backoff;
        b.unreported += 1;
        b.last_error = Some(errno);
        if is_resource_error(errno) {
            b.pause_ms = (b.pause_ms * 2).clamp(FIRST_PAUSE_MS, MAX_PAUSE_MS);
            b.paused_until = self.now + b.pause_ms;
        }
        self.report_accept_failures();
    }

    /// A connection freed its descriptor: a paused accept may succeed now.
    pub(super) fn descriptor_freed(&mut self) {
        if self.backoff.paused_until > self.now {
            self.backoff.paused_until = self.now;
        }
    }

    /// Logs the failures since the last line, at most one line per interval;
    /// the timer sweep calls it too, so a burst's count is reported after it.
    pub(super) fn report_accept_failures(&mut self) {
        let b = &mut self.backoff;
        let Some(errno) = b.last_error.filter(|_| b.unreported > 0) else {
            return;
        };
        let since = b.logged_at.map(|at| self.now.saturating_sub(at));
        if since.is_some_and(|ms| ms < LOG_INTERVAL_MS) {
            return;
        }
        let error = io::Error::from_raw_os_error(errno);
        match since {
            Some(ms) if ms < 2 * LOG_INTERVAL_MS || b.unreported > 1 => tracing::warn!(
                shard = self.index,
                "accept failed {} times in the last {:.1} s (last: {error}); open connections are served, accepting resumes as descriptors free up",
                b.unreported,
                ms as f64 / 1000.0
            ),
            _ => tracing::warn!(
                shard = self.index,
                "accept failed: {error}; pausing accepts for {} ms, open connections are served",
                b.pause_ms
            ),
        }
        b.unreported = 0;
        b.logged_at = Some(self.now);
    }
}
