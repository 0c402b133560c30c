//! Log lines that remote peers can trigger, kept cheap: [`LogBudget`] and [`rate_limited!`]
//! cap a call site's lines a second, and [`dropped_lines_metric`] shows on `/metrics` what a
//! lossy writer dropped. It never installs a subscriber or picks a writer (the binary does).

use std::fmt::Error as FmtError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;

use crate::control::{metric_single, MetricsSource};

#[doc(hidden)]
pub use tracing as __tracing;

/// How many lines one call site may log a second; past it, lines are counted and the next
/// admitted line comes with that count. One `static` per call site, shared by every thread;
/// [`admit`](LogBudget::admit) is lock-free and never allocates.
///
/// ```
/// use ringgate::logging::LogBudget;
///
/// static REFUSED: LogBudget = LogBudget::per_second(10);
/// if let Some(suppressed) = REFUSED.admit() {
///     if suppressed > 0 {
///         tracing::info!("{suppressed} similar lines suppressed");
///     }
///     tracing::info!("upgrade refused");
/// }
/// ```
///
/// [`rate_limited!`] writes those lines for you. Lines suppressed at the end of a burst are
/// reported with the next admitted line, so not before the call site logs again.
#[derive(Debug)]
pub struct LogBudget {
    per_second: u32,
    /// The current one-second window (seconds since the first use of any budget) in the
    /// high 32 bits, the lines it admitted in the low 32.
    window: AtomicU64,
    /// Lines refused since the last admitted one.
    suppressed: AtomicU64,
}

impl LogBudget {
    /// A budget of `lines` a second (0 admits none and counts them all).
    pub const fn per_second(lines: u32) -> LogBudget {
        LogBudget {
            per_second: lines,
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a line may be logged now: `Some(n)`, `n` being the lines suppressed since
    /// the last admitted one (log a summary of them first when it is not 0); `None`: drop
    /// the line, it has been counted.
    pub fn admit(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let second = START.get_or_init(Instant::now).elapsed().as_secs();
        self.admit_at(u32::try_from(second).unwrap_or(u32::MAX))
    }

    fn admit_at(&self, second: u32) -> Option<u64> {
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (window, used) = ((current >> 32) as u32, current as u32);
            // A thread that read the clock just before another moved the window on counts
            // against the newer window.
            let (window, used) = if second > window {
                (second, 0)
            } else {
                (window, used)
            };
            if used >= self.per_second {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            let next = (u64::from(window) << 32) | u64::from(used + 1);
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::Relaxed)),
                Err(actual) => current = actual,
            }
        }
    }
}

/// Logs a `tracing` event at most `per_second` times a second from this call site; the
/// first line after suppressed ones is preceded by "N similar lines suppressed". Takes the
/// rate (a constant), the level (`error`, `warn`, `info`, `debug`, `trace`) and then what
/// the `tracing` macro of that level takes:
///
/// ```
/// # let id = "CP1";
/// ringgate::logging::rate_limited!(10, info, charge_point = %id, "OCPP upgrade refused");
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __log_rate_limited {
    ($per_second:expr, $level:ident, $($event:tt)+) => {{
        static BUDGET: $crate::logging::LogBudget =
            $crate::logging::LogBudget::per_second($per_second);
        if let Some(suppressed) = BUDGET.admit() {
            if suppressed > 0 {
                $crate::logging::__tracing::$level!(
                    "{} similar lines suppressed (this one's call site logs at most {}/s)",
                    suppressed,
                    $per_second
                );
            }
            $crate::logging::__tracing::$level!($($event)+);
        }
    }};
}

#[doc(inline)]
pub use crate::__log_rate_limited as rate_limited;

/// The `/metrics` source of `ringgate_log_lines_dropped_total`: log lines a lossy writer
/// dropped because its output was too slow, read through `dropped` on each scrape.
pub fn dropped_lines_metric(dropped: impl Fn() -> u64 + Send + Sync + 'static) -> MetricsSource {
    let dropped = Arc::new(dropped);
    Arc::new(move |_hub| {
        let lines = dropped();
        Box::pin(async move { Box::new(DroppedLines(lines)) as Box<dyn Collector> })
    })
}

#[derive(Debug)]
struct DroppedLines(u64);

impl Collector for DroppedLines {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), FmtError> {
        metric_single(
            &mut encoder,
            "ringgate_log_lines_dropped",
            "Log lines dropped because the log output (stderr) was not read fast enough",
            &ConstCounter::new(self.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_admits_its_lines_a_second_then_counts_the_rest() {
        let budget = LogBudget::per_second(3);
        let first_second: Vec<_> = (0..10).map(|_| budget.admit_at(7)).collect();
        assert_eq!(
            first_second,
            [
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None,
                None,
                None,
                None,
                None
            ]
        );
        assert_eq!(budget.admit_at(8), Some(7), "the next second says how many");
        assert_eq!(budget.admit_at(8), Some(0), "and only once");
        assert_eq!(budget.admit_at(8), Some(0));
        assert_eq!(budget.admit_at(8), None);
        assert_eq!(budget.admit_at(20), Some(1));
    }

    #[test]
    fn a_late_reader_of_the_clock_counts_against_the_newer_window() {
        let budget = LogBudget::per_second(1);
        assert_eq!(budget.admit_at(5), Some(0));
        assert_eq!(budget.admit_at(4), None);
        assert_eq!(budget.admit_at(6), Some(1));
    }

    #[test]
    fn a_zero_budget_admits_nothing() {
        let budget = LogBudget::per_second(0);
        assert!((0..5).all(|s| budget.admit_at(s).is_none()));
        assert_eq!(budget.suppressed.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn threads_share_one_budget_exactly() {
        let budget = LogBudget::per_second(100);
        let admitted: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| budget.admit_at(1).is_some()).count()))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(admitted, 100);
        assert_eq!(budget.admit_at(2), Some(3900));
    }

    #[test]
    fn the_macro_logs_its_budget_and_then_the_summary() {
        use std::io::Write;
        use std::sync::Mutex;

        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for id in 0..50 {
                rate_limited!(2, warn, charge_point = id, "refused");
            }
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logged: Vec<&str> = text.lines().collect();
        // Two lines, unless the test straddled a second boundary (then up to four, with a
        // summary of what the first second suppressed).
        assert!((2..=5).contains(&logged.len()), "{text}");
        assert!(logged[0].contains("refused") && logged[0].contains("charge_point=0"));
        assert!(logged.iter().all(|l| l.contains("WARN")), "{text}");
    }
}
