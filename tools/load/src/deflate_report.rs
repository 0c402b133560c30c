//! The report's `--deflate` section: how many upgrades agreed to
//! permessage-deflate and what, and per direction the data messages on those
//! connections, their payload bytes and their bytes as framed (the
//! compression ratio).

use serde::Serialize;

use crate::deflate_codec::{DeflateStats, Traffic};
use crate::progress::group;
use crate::report::round;

/// One direction's data messages on the connections that agreed.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficReport {
    pub messages: u64,
    /// Of those, compressed (the others went as they were: the server sends
    /// messages under its threshold uncompressed).
    pub compressed: u64,
    /// Payload bytes before compressing or after inflating.
    pub payload_bytes: u64,
    /// Payload bytes as framed, compressed or not (frame headers not counted).
    pub wire_bytes: u64,
    /// `wire_bytes / payload_bytes`: under 1 saved bandwidth.
    pub ratio: Option<f64>,
}

impl TrafficReport {
    fn new(t: &Traffic) -> TrafficReport {
        TrafficReport {
            messages: t.messages,
            compressed: t.compressed,
            payload_bytes: t.payload_bytes,
            wire_bytes: t.wire_bytes,
            ratio: (t.payload_bytes > 0)
                .then(|| round(t.wire_bytes as f64 / t.payload_bytes as f64, 4)),
        }
    }

    fn row(&self) -> String {
        let ratio = self
            .ratio
            .map_or_else(String::new, |r| format!(" (ratio {r:.4})"));
        format!(
            "{} messages, {} compressed: {} B payload, {} B on the wire{ratio}",
            group(self.messages as f64),
            group(self.compressed as f64),
            group(self.payload_bytes as f64),
            group(self.wire_bytes as f64),
        )
    }
}

/// What `--deflate` did; the report has none without the flag.
#[derive(Debug, Clone, Serialize)]
pub struct DeflateReport {
    /// Upgrades whose answer agreed to permessage-deflate.
    pub negotiated: u64,
    /// Upgrades answered without it: uncompressed connections.
    pub uncompressed: u64,
    /// The first agreement's parameters, e.g. `server_no_context_takeover;
    /// client_no_context_takeover`.
    pub agreed: Option<String>,
    pub sent: TrafficReport,
    pub received: TrafficReport,
}

impl DeflateReport {
    pub fn new(s: &DeflateStats) -> DeflateReport {
        DeflateReport {
            negotiated: s.negotiated,
            uncompressed: s.declined,
            agreed: s.first.map(|a| a.describe()),
            sent: TrafficReport::new(&s.sent),
            received: TrafficReport::new(&s.received),
        }
    }

    /// The table's rows.
    pub fn write_rows(&self, row: &mut impl FnMut(&str, String)) {
        let mut v = format!(
            "offered: {} of {} upgrades agreed",
            group(self.negotiated as f64),
            group((self.negotiated + self.uncompressed) as f64)
        );
        if let Some(a) = &self.agreed {
            v.push_str(&format!(" ({a})"));
        }
        row("deflate", v);
        if self.negotiated > 0 {
            row("deflate sent", self.sent.row());
            row("deflate recv", self.received.row());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_rows() {
        let s = DeflateStats {
            negotiated: 3,
            declined: 1,
            sent: Traffic {
                messages: 2,
                compressed: 2,
                payload_bytes: 2000,
                wire_bytes: 50,
            },
            ..DeflateStats::default()
        };
        let r = DeflateReport::new(&s);
        assert_eq!(r.sent.ratio, Some(0.025));
        assert_eq!(r.received.ratio, None);
        let mut rows = Vec::new();
        r.write_rows(&mut |k: &str, v: String| rows.push(format!("{k}: {v}")));
        assert_eq!(rows[0], "deflate: offered: 3 of 4 upgrades agreed");
        assert!(rows[1].contains("2,000 B payload, 50 B on the wire (ratio 0.0250)"));
        assert_eq!(rows.len(), 3);
    }
}
