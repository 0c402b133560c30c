//! The ocpp section of the report: charge points booted, the storm (first
//! connect to last boot answered) and its boots/s, CALL-to-CALLRESULT
//! latency per action, the server's CALLs answered, the `--commands` sent
//! through the admin API, and whether the run passed (every charge point
//! booted, nothing counted as an error, every command answered).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::commands::{CommandStats, CommandsReport};
use crate::ocpp::{OcppPlan, SUBPROTOCOL};
use crate::progress::group;
use crate::report::{fmt_percentiles, round, Percentiles};
use crate::stats::Stats;

/// An ocpp run's own figures.
#[derive(Debug, Clone, Serialize)]
pub struct OcppReport {
    pub subprotocol: &'static str,
    pub id_prefix: String,
    pub status: bool,
    pub heartbeats: u64,
    pub heartbeat_interval_s: f64,
    pub hold_s: f64,
    pub basic_auth: bool,
    /// Charge points upgraded, and BootNotifications answered and accepted.
    pub charge_points_connected: u64,
    pub boots_answered: u64,
    pub boots_accepted: u64,
    /// First connect() to the last boot answered, and boots accepted per
    /// second over it.
    pub storm_s: Option<f64>,
    pub boots_per_s: Option<f64>,
    /// Boots accepted per server CPU-second of the connect phase (--pid).
    pub boots_per_server_cpu_s: Option<f64>,
    /// CALL-to-CALLRESULT latency, µs: BootNotification, Heartbeat, and
    /// every CALL (StatusNotification included).
    pub boot_us: Option<Percentiles>,
    pub heartbeat_us: Option<Percentiles>,
    pub call_us: Option<Percentiles>,
    pub calls_sent: u64,
    /// CALLRESULTs that matched their CALL.
    pub call_results: u64,
    /// The server's CALLs answered, in all and by action.
    pub server_calls_answered: u64,
    pub server_calls: BTreeMap<String, u64>,
    /// `--commands` (null without it).
    pub commands: Option<CommandsReport>,
    /// Every charge point booted, no error was counted, no --timeout, every
    /// command answered.
    pub passed: bool,
}

impl OcppReport {
    pub fn new(
        plan: &OcppPlan,
        charge_points: u64,
        s: &Stats,
        commands: Option<&CommandStats>,
        connect_server_cpu: Option<f64>,
        timed_out: bool,
    ) -> OcppReport {
        let o = &s.ocpp;
        let storm_s = match (o.first_connect_ns, o.last_boot_ns) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e9),
            _ => None,
        };
        let boots = o.boots_accepted as f64;
        let per = |secs: Option<f64>| secs.filter(|&t| t > 0.0).map(|t| round(boots / t, 1));
        let commands = plan
            .commands
            .as_ref()
            .map(|c| CommandsReport::new(c, commands));
        let commands_passed = commands.as_ref().is_none_or(|c| c.all_answered);
        OcppReport {
            subprotocol: SUBPROTOCOL,
            id_prefix: plan.id_prefix.clone(),
            status: plan.status,
            heartbeats: plan.heartbeats,
            heartbeat_interval_s: plan.heartbeat_interval.as_secs_f64(),
            hold_s: plan.hold.as_secs_f64(),
            basic_auth: plan.password.is_some(),
            charge_points_connected: s.handshakes,
            boots_answered: o.boots_answered,
            boots_accepted: o.boots_accepted,
            storm_s: storm_s.map(|t| round(t, 4)),
            boots_per_s: per(storm_s),
            boots_per_server_cpu_s: per(connect_server_cpu),
            boot_us: Percentiles::of(&o.boot),
            heartbeat_us: Percentiles::of(&o.heartbeat),
            call_us: Percentiles::of(&s.rtt),
            calls_sent: s.sent,
            call_results: s.received,
            server_calls_answered: o.server_calls_answered(),
            server_calls: o.server_calls.clone(),
            commands,
            passed: o.boots_accepted == charge_points
                && s.total_failures() == 0
                && !timed_out
                && commands_passed,
        }
    }

    /// The ocpp rows of the table.
    pub fn write_rows(&self, row: &mut impl FnMut(&str, String)) {
        let mut calls = vec!["BootNotification".to_owned()];
        if self.status {
            calls.push("StatusNotification".into());
        }
        if self.heartbeats > 0 {
            calls.push(format!(
                "{} Heartbeat{} {} s apart",
                group(self.heartbeats as f64),
                if self.heartbeats == 1 { "" } else { "s" },
                self.heartbeat_interval_s
            ));
        }
        row(
            "charge points",
            format!(
                "{} connected as {}N ({}{}), {} boots accepted of {} answered",
                group(self.charge_points_connected as f64),
                self.id_prefix,
                self.subprotocol,
                if self.basic_auth { ", Basic auth" } else { "" },
                group(self.boots_accepted as f64),
                group(self.boots_answered as f64)
            ),
        );
        let mut storm = match (self.storm_s, self.boots_per_s) {
            (Some(t), Some(r)) => {
                format!("{t:.3} s first connect to last boot, {} boots/s", group(r))
            }
            (Some(t), None) => format!("{t:.3} s first connect to last boot"),
            _ => "no boot answered".to_owned(),
        };
        if let Some(r) = self.boots_per_server_cpu_s {
            let _ = write!(storm, ", {} per server CPU-second", group(r));
        }
        row("storm", storm);
        row(
            "calls",
            format!(
                "{}, then hold {} s: {} sent, {} CALLRESULTs matched",
                calls.join(", "),
                self.hold_s,
                group(self.calls_sent as f64),
                group(self.call_results as f64)
            ),
        );
        for (name, p) in [
            ("boot µs", &self.boot_us),
            ("heartbeat µs", &self.heartbeat_us),
            ("any call µs", &self.call_us),
        ] {
            if let Some(p) = p {
                row(name, fmt_percentiles(p));
            }
        }
        let by_action: Vec<String> = self
            .server_calls
            .iter()
            .map(|(action, n)| format!("{action} {}", group(*n as f64)))
            .collect();
        let mut server = format!("{} answered", group(self.server_calls_answered as f64));
        if !by_action.is_empty() {
            let _ = write!(server, " ({})", by_action.join(", "));
        }
        row("server calls", server);
        if let Some(c) = &self.commands {
            c.write_rows(row);
        }
    }
}
