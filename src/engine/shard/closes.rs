//! Why the server closed connections that did not ask to go: counts by
//! reason, published with the shard's counters and summed in one info line a
//! minute (so a connection that vanished from a long idle run leaves a trace
//! without a log line per close at a million connections).

use super::Shard;
use crate::hub::CloseReason;

/// How often the summary line may be logged.
const SUMMARY_MS: u64 = 60_000;

/// Counts by reason, and those not yet in a summary line.
#[derive(Default)]
pub(super) struct CloseCounts {
    pub(super) total: [u64; CloseReason::COUNT],
    unreported: [u64; CloseReason::COUNT],
    reported_at: u64,
}

impl Shard {
    /// The server is closing a connection for `reason`.
    pub(super) fn count_close(&mut self, reason: CloseReason) {
        self.closes.total[reason as usize] += 1;
        self.closes.unreported[reason as usize] += 1;
    }

    /// Logs what was closed since the last line, at most once a minute.
    pub(super) fn report_closes(&mut self) {
        let c = &mut self.closes;
        if self.now.saturating_sub(c.reported_at) < SUMMARY_MS {
            return;
        }
        let seconds = (self.now - c.reported_at) / 1000;
        c.reported_at = self.now;
        if c.unreported.iter().all(|&n| n == 0) {
            return;
        }
        let parts: Vec<String> = CloseReason::ALL
            .iter()
            .zip(&c.unreported)
            .filter(|(_, &n)| n > 0)
            .map(|(reason, n)| format!("{} {n}", reason.name()))
            .collect();
        tracing::info!(
            shard = self.index,
            "server closed {} connections in the last {seconds} s: {}",
            c.unreported.iter().sum::<u64>(),
            parts.join(", ")
        );
        c.unreported = [0; CloseReason::COUNT];
    }
}
