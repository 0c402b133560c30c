//! The bound on a `/metrics` answer (`RINGGATE_METRICS_MAX_BYTES`): metric
//! families are kept whole, in order, while they fit; one that would pass the
//! bound is left out whole and counted in `ringgate_metrics_dropped_families`,
//! so Prometheus always gets a complete, parseable scrape, never a cut one.
//! It never changes a family it keeps.

use std::fmt::Error as FmtError;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::metrics::single;

/// Room kept for the dropped-families gauge and `# EOF`.
const TAIL_ROOM: usize = 512;

/// A scrape within its bound, and the names of the families left out.
pub(super) struct Fitted<'a> {
    pub(super) text: String,
    pub(super) dropped: Vec<&'a str>,
}

/// `encoded` (OpenMetrics families without `# EOF`) cut to `max` bytes at
/// family boundaries, with the dropped-families gauge and `# EOF` after it.
pub(super) fn fit(encoded: &str, max: usize) -> Result<Fitted<'_>, FmtError> {
    let budget = max.saturating_sub(TAIL_ROOM);
    let mut text = String::with_capacity(encoded.len().min(budget) + TAIL_ROOM);
    let mut dropped = Vec::new();
    for family in families(encoded) {
        if text.len() + family.len() <= budget {
            text.push_str(family);
        } else {
            dropped.push(name(family));
        }
    }
    let mut tail = Registry::default();
    tail.register_collector(Box::new(Dropped(dropped.len())));
    prometheus_client::encoding::text::encode(&mut text, &tail)?;
    Ok(Fitted { text, dropped })
}

/// Each family of `encoded`: its `# HELP` line up to the next one. Label
/// values are escaped, so a line can only start with `# HELP` at a family.
fn families(encoded: &str) -> impl Iterator<Item = &str> {
    let mut rest = encoded;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest[1..].find("\n# HELP ").map_or(rest.len(), |at| at + 2);
        let (family, after) = rest.split_at(end);
        rest = after;
        Some(family)
    })
}

/// The metric name of a family (the word after `# HELP`).
fn name(family: &str) -> &str {
    family
        .strip_prefix("# HELP ")
        .and_then(|line| line.split([' ', '\n']).next())
        .unwrap_or("?")
}

/// The gauge of families left out of this scrape.
#[derive(Debug)]
struct Dropped(usize);

impl Collector for Dropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), FmtError> {
        single(
            &mut encoder,
            "ringgate_metrics_dropped_families",
            "Metric families left out of this scrape because it would have passed RINGGATE_METRICS_MAX_BYTES",
            &ConstGauge::new(self.0 as i64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str, lines: usize) -> String {
        let mut out = format!("# HELP {name} help\n# TYPE {name} gauge\n");
        for i in 0..lines {
            out.push_str(&format!("{name}{{n=\"{i}\"}} {i}\n"));
        }
        out
    }

    #[test]
    fn whole_families_are_kept_while_they_fit() {
        let (small, big, last) = (family("a", 2), family("b", 500), family("c", 3));
        let encoded = format!("{small}{big}{last}");
        let fitted = fit(&encoded, 2048).unwrap();
        assert!(fitted.text.len() <= 2048, "{}", fitted.text.len());
        assert_eq!(fitted.dropped, ["b"]);
        assert!(fitted.text.starts_with(&format!("{small}{last}")));
        assert!(fitted
            .text
            .ends_with("ringgate_metrics_dropped_families 1\n# EOF\n"));

        let all = fit(&encoded, 1 << 20).unwrap();
        assert!(all.dropped.is_empty());
        assert!(all.text.starts_with(&encoded));
        assert!(all.text.contains("ringgate_metrics_dropped_families 0\n"));
    }

    #[test]
    fn families_split_at_help_lines_only() {
        let encoded = format!("{}{}", family("x", 1), family("y", 1));
        let names: Vec<&str> = families(&encoded).map(name).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(families("").count(), 0);
    }
}
