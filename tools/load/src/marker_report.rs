//! The report's `--expect-marker` section: how many connections got the
//! marker exactly once, twice or more, or never, and when the first and the
//! last marker message arrived (Unix ms, for a caller that knows when it
//! sent them). Only reads what the workers counted.

use serde::Serialize;

use crate::marker::MarkerStats;
use crate::progress::group;

/// What `--expect-marker` saw; the report has none without the flag.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerReport {
    pub marker: String,
    /// Connections opened, each counted once by the marker messages it got
    /// (at its end, or when the hold ended); the ones that never opened are
    /// in `connected` and `failures`.
    pub exactly_once: u64,
    pub twice_or_more: u64,
    pub none: u64,
    /// Marker messages over all connections, and the other data messages
    /// (welcome, presence, ...).
    pub messages: u64,
    pub other_messages: u64,
    /// Arrival of the first and the last marker message, Unix ms.
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    /// Every connection asked for (`-c`) got the marker exactly once.
    pub all_exactly_once: bool,
}

impl MarkerReport {
    pub fn new(marker: &str, s: &MarkerStats, connections: u64) -> MarkerReport {
        MarkerReport {
            marker: marker.to_owned(),
            exactly_once: s.exactly_once,
            twice_or_more: s.twice_or_more,
            none: s.none,
            messages: s.messages,
            other_messages: s.other_messages,
            first_ms: s.first_ms,
            last_ms: s.last_ms,
            all_exactly_once: s.exactly_once == connections && s.twice_or_more == 0,
        }
    }

    /// The marker rows of the table.
    pub fn write_rows(&self, row: &mut impl FnMut(&str, String)) {
        let verdict = if self.all_exactly_once {
            " (every connection once)"
        } else {
            ""
        };
        row(
            "marker",
            format!(
                "{:?}: {} connections once, {} twice or more, {} never{verdict}",
                self.marker,
                group(self.exactly_once as f64),
                group(self.twice_or_more as f64),
                group(self.none as f64),
            ),
        );
        let span = match (self.first_ms, self.last_ms) {
            (Some(first), Some(last)) => format!(
                ", first at {first} ms, last at {last} ms (Unix), {} ms apart",
                group((last - first) as f64)
            ),
            _ => String::new(),
        };
        row(
            "marker msgs",
            format!(
                "{} with the marker, {} others{span}",
                group(self.messages as f64),
                group(self.other_messages as f64)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_once_or_not() {
        let mut s = MarkerStats::default();
        s.tally(1);
        s.tally(1);
        assert!(MarkerReport::new("m", &s, 2).all_exactly_once);
        assert!(
            !MarkerReport::new("m", &s, 3).all_exactly_once,
            "one never opened"
        );
        s.tally(2);
        assert!(!MarkerReport::new("m", &s, 2).all_exactly_once);
        s.receipt(5, true);
        s.receipt(1_005, true);
        let mut rows = Vec::new();
        MarkerReport::new("m", &s, 3).write_rows(&mut |k, v| rows.push(format!("{k}: {v}")));
        assert!(rows[1].contains("1,000 ms apart"), "{rows:?}");
    }
}
