//! `all` (the seed's `--test-type all`): storm, then throughput, then
//! sustained against one URL. Owns which flag goes to which phase, running
//! the phases one after another, and the one report with a section and a
//! verdict per phase; each phase itself is an ordinary run of its mode.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::{parse_duration, parse_interval, Common, ModeCmd, PayloadArgs, Plan};
use crate::progress::group;
use crate::report::Report;

/// `all`'s flags.
#[derive(Debug, Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub common: Common,
    /// Throughput and sustained messages.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Storm: keep the connections open this long after the last handshake.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub hold: Duration,
    /// Throughput: messages per connection instead of sending for --duration.
    #[arg(long)]
    pub messages: Option<u64>,
    /// How long throughput (unless --messages) and sustained send.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Throughput: messages in flight per connection.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Sustained: time between two messages of one connection; a plain
    /// number is milliseconds.
    #[arg(long, value_parser = parse_interval, default_value = "1000")]
    pub message_interval: Duration,
    /// Sustained: width of one row of the latency-over-time table.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub report_interval: Duration,
}

/// Sustained's window in `all`: its own mode's default.
const SUSTAINED_WINDOW: usize = 64;

impl AllArgs {
    /// The three phases' plans: storm, throughput, sustained.
    pub fn into_plans(self) -> Result<Vec<Plan>, String> {
        let AllArgs {
            common,
            payload,
            hold,
            messages,
            duration,
            window,
            message_interval,
            report_interval,
        } = self;
        let phases = [
            ModeCmd::Storm {
                common: common.clone(),
                hold,
            },
            ModeCmd::Throughput {
                common: common.clone(),
                payload: payload.clone(),
                messages: messages.unwrap_or(1),
                duration: messages.is_none().then_some(duration),
                window,
            },
            ModeCmd::Sustained {
                common,
                payload,
                duration,
                message_interval,
                report_interval,
                window: SUSTAINED_WINDOW,
            },
        ];
        phases.into_iter().map(ModeCmd::into_plan).collect()
    }
}

/// One phase's report and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Every connection opened, no failure counted, no --timeout.
    pub passed: bool,
    /// Why not, in words (empty when it passed).
    pub problems: Vec<String>,
    #[serde(flatten)]
    pub report: Report,
}

impl PhaseReport {
    /// Judges `report`.
    pub fn judge(report: Report) -> PhaseReport {
        let mut problems = Vec::new();
        if report.connected < report.connections {
            problems.push(format!(
                "{} of {} connections did not open",
                group((report.connections - report.connected) as f64),
                group(report.connections as f64)
            ));
        }
        if !report.failures.is_empty() {
            let failures: Vec<String> = report
                .failures
                .iter()
                .map(|(k, n)| format!("{k} {}", group(*n as f64)))
                .collect();
            problems.push(format!("failures: {}", failures.join(", ")));
        }
        if report.messages_sent > 0 && report.messages == 0 {
            problems.push("no echo came back".to_owned());
        }
        if report.timed_out {
            problems.push("hit --timeout".to_owned());
        }
        PhaseReport {
            passed: problems.is_empty(),
            problems,
            report,
        }
    }
}

/// `all`'s report; serialized as is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub mode: &'static str,
    pub url: String,
    pub storm: PhaseReport,
    pub throughput: PhaseReport,
    pub sustained: PhaseReport,
    /// Every phase passed.
    pub passed: bool,
}

impl SuiteReport {
    /// The phases' reports, storm, throughput, sustained.
    pub fn new(reports: Vec<Report>) -> SuiteReport {
        let [storm, throughput, sustained] = <[Report; 3]>::try_from(reports)
            .unwrap_or_else(|r| panic!("three phases, not {}", r.len()))
            .map(PhaseReport::judge);
        SuiteReport {
            mode: "all",
            url: storm.report.url.clone(),
            passed: storm.passed && throughput.passed && sustained.passed,
            storm,
            throughput,
            sustained,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Each phase's table under its verdict, then the run's.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        for phase in [&self.storm, &self.throughput, &self.sustained] {
            let verdict = if phase.passed {
                "passed".to_owned()
            } else {
                format!("FAILED: {}", phase.problems.join("; "))
            };
            let _ = writeln!(t, "== {}: {verdict}", phase.report.mode);
            t.push_str(&phase.report.to_table());
            t.push('\n');
        }
        let _ = writeln!(
            t,
            "all: {}",
            if self.passed {
                "every phase passed"
            } else {
                "FAILED"
            }
        );
        t
    }
}
