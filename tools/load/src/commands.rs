//! The ocpp mode's downlink commands (`--commands RATE`): from the end of
//! the boots until every worker is done, `POST {path}/{id}/commands` to the
//! admin API at RATE per second over all charge points, from a few threads
//! of their own (one command in flight each); every answer is judged (200
//! `accepted`, or a failure by status and error code) and timed. It never
//! touches the charge points' sockets: the gateway routes each command to
//! the tool's charge point, which answers it like any server CALL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Mode, Plan};
use crate::http::{exchange, json_request};
use crate::pace::Pacer;
use crate::progress::group;
use crate::realtime::{percent_encode, Secret};
use crate::report::{fmt_percentiles, Percentiles};
use crate::stats::new_histogram;

/// The `timeout_ms` each command asks for.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// What the HTTP exchange allows beyond it (queueing, the answer's way back).
const HTTP_SLACK: Duration = Duration::from_secs(5);
/// Threads sending, each with one command in flight: the most in flight.
const SENDERS: usize = 16;
/// The actions sent in turn, with payloads the tool's charge points answer
/// (`ocpp::call_result`).
const COMMANDS: [(&str, &str); 3] = [
    ("GetConfiguration", r#"{"key":["HeartbeatInterval"]}"#),
    (
        "ChangeConfiguration",
        r#"{"key":"HeartbeatInterval","value":"300"}"#,
    ),
    ("TriggerMessage", r#"{"requestedMessage":"Heartbeat"}"#),
];
/// Distinct failure keys counted; the rest count as `other`.
const MAX_FAILURE_KEYS: usize = 32;

/// `--commands` and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPlan {
    /// Commands per second over all charge points.
    pub rate: u64,
    /// `Authorization: Bearer` for the admin API.
    pub admin_token: Option<Secret>,
}

/// What the commands got.
#[derive(Debug, Clone)]
pub struct CommandStats {
    /// Slots the rate called for while commands were being sent.
    pub due: u64,
    pub sent: u64,
    /// 200 with `"status":"accepted"`.
    pub answered: u64,
    /// Everything else, by `STATUS code` (the error body's code) or
    /// `no answer: KIND`.
    pub failed: BTreeMap<String, u64>,
    /// POST to answer, of the answered ones, µs.
    pub latency: Histogram<u64>,
    pub by_action: BTreeMap<&'static str, u64>,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            due: 0,
            sent: 0,
            answered: 0,
            failed: BTreeMap::new(),
            latency: new_histogram(),
            by_action: BTreeMap::new(),
        }
    }
}

impl CommandStats {
    fn fail(&mut self, key: String) {
        let key = if self.failed.len() < MAX_FAILURE_KEYS || self.failed.contains_key(&key) {
            key
        } else {
            "other".to_owned()
        };
        *self.failed.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: &CommandStats) {
        self.sent += other.sent;
        self.answered += other.answered;
        for (k, n) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += n;
        }
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        for (k, n) in &other.by_action {
            *self.by_action.entry(k).or_default() += n;
        }
    }
}

/// The sending threads.
pub struct Commander {
    pacer: Arc<Pacer>,
    senders: Vec<JoinHandle<CommandStats>>,
}

/// Where the commands go and how.
struct Target {
    addr: std::net::SocketAddr,
    host: String,
    /// The URL's path, without a trailing `/`: the gateway's prefix.
    prefix: String,
    token: Option<String>,
    id_prefix: String,
    charge_points: u64,
}

impl Commander {
    /// Starts sending for the ocpp run `plan` (which has `--commands`).
    pub fn start(plan: &Plan, commands: &CommandPlan) -> Commander {
        let Mode::Ocpp(ocpp) = &plan.mode else {
            unreachable!("commands only in ocpp runs")
        };
        let path = plan.url.target.split('?').next().unwrap_or("/");
        let target = Arc::new(Target {
            addr: plan.url.addr,
            host: plan.url.host_header.clone(),
            prefix: path.trim_end_matches('/').to_owned(),
            token: commands.admin_token.as_ref().map(|t| t.0.clone()),
            id_prefix: ocpp.id_prefix.clone(),
            charge_points: plan.connections,
        });
        let pacer = Arc::new(Pacer::new(commands.rate as f64, Instant::now(), None));
        let senders = (0..SENDERS)
            .map(|i| {
                let (target, pacer) = (target.clone(), pacer.clone());
                std::thread::Builder::new()
                    .name(format!("commands-{i}"))
                    .spawn(move || send(&target, &pacer))
                    .expect("spawning a command thread")
            })
            .collect();
        Commander { pacer, senders }
    }

    /// Stops sending, waits for the commands in flight (each bounded by
    /// [`COMMAND_TIMEOUT`] and the exchange's slack) and adds up.
    pub fn stop(self) -> CommandStats {
        let stopped_at = Instant::now();
        self.pacer.stop();
        let mut stats = CommandStats::default();
        for h in self.senders {
            match h.join() {
                Ok(s) => stats.merge(&s),
                Err(_) => eprintln!("ringgate-load: a command thread panicked"),
            }
        }
        stats.due = self.pacer.due_by(stopped_at);
        stats
    }
}

/// One sender: claims slots and sends the command due in each (slot `n`
/// goes to charge point `n` modulo their number, with the `n`-th action in
/// turn).
fn send(target: &Target, pacer: &Pacer) -> CommandStats {
    let mut stats = CommandStats::default();
    while let Some((n, due)) = pacer.claim() {
        if !pacer.wait_for(due) {
            break;
        }
        let (action, payload) = COMMANDS[(n % COMMANDS.len() as u64) as usize];
        let id = format!("{}{}", target.id_prefix, n % target.charge_points);
        let body = format!(
            r#"{{"action":"{action}","payload":{payload},"timeout_ms":{}}}"#,
            COMMAND_TIMEOUT.as_millis()
        );
        let path = format!("{}/{}/commands", target.prefix, percent_encode(&id));
        let request = json_request("POST", &target.host, &path, target.token.as_deref(), &body);
        stats.sent += 1;
        *stats.by_action.entry(action).or_default() += 1;
        let sent_at = Instant::now();
        match exchange(target.addr, &request, COMMAND_TIMEOUT + HTTP_SLACK) {
            Ok((200, body)) if accepted(&body) => {
                stats.answered += 1;
                let us = sent_at.elapsed().as_micros() as u64;
                stats.latency.saturating_record(us.max(1));
            }
            Ok((status, body)) => stats.fail(failure_key(status, &body)),
            Err(e) => stats.fail(format!("no answer: {}", e.kind())),
        }
    }
    stats
}

/// Whether a 200's body says the charge point answered with a CALLRESULT.
fn accepted(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v.get("status").and_then(Value::as_str) == Some("accepted"))
}

/// `STATUS code` from an error answer's `{"error":{"code"}}` (the status
/// alone without one).
fn failure_key(status: u16, body: &[u8]) -> String {
    let code = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let code = v.get("error")?.get("code")?.as_str()?;
        // A code is a short word; anything else is not worth a key.
        (code.len() <= 40 && code.bytes().all(|b| b.is_ascii_graphic())).then(|| code.to_owned())
    });
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

/// The commands' part of the ocpp report.
#[derive(Debug, Clone, Serialize)]
pub struct CommandsReport {
    /// `--commands`, per second.
    pub rate: u64,
    /// Commands the rate called for while they were being sent; `sent` falls
    /// short when every sender waited on a slow answer.
    pub due: u64,
    pub sent: u64,
    pub answered: u64,
    pub failed: BTreeMap<String, u64>,
    /// POST to answer, answered commands only.
    pub latency_us: Option<Percentiles>,
    pub by_action: BTreeMap<&'static str, u64>,
    /// At least one was sent and every one was answered.
    pub all_answered: bool,
}

impl CommandsReport {
    /// The report of `plan`'s commands (none sent without `stats`).
    pub fn new(plan: &CommandPlan, stats: Option<&CommandStats>) -> CommandsReport {
        let none = CommandStats::default();
        let s = stats.unwrap_or(&none);
        CommandsReport {
            rate: plan.rate,
            due: s.due,
            sent: s.sent,
            answered: s.answered,
            failed: s.failed.clone(),
            latency_us: Percentiles::of(&s.latency),
            by_action: s.by_action.clone(),
            all_answered: s.sent > 0 && s.answered == s.sent,
        }
    }

    /// The commands rows of the ocpp table.
    pub fn write_rows(&self, row: &mut impl FnMut(&str, String)) {
        let failed = if self.failed.is_empty() {
            "none failed".to_owned()
        } else {
            let by_status: Vec<String> = self
                .failed
                .iter()
                .map(|(k, n)| format!("{k} × {}", group(*n as f64)))
                .collect();
            format!("FAILED: {}", by_status.join(", "))
        };
        row(
            "commands",
            format!(
                "{}/s: {} sent of {} due, {} answered, {failed}{}",
                group(self.rate as f64),
                group(self.sent as f64),
                group(self.due as f64),
                group(self.answered as f64),
                if self.all_answered {
                    " (all answered)"
                } else {
                    ""
                }
            ),
        );
        if let Some(p) = &self.latency_us {
            row("command µs", fmt_percentiles(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_answers() {
        assert!(accepted(
            br#"{"status":"accepted","result":{"status":"Accepted"}}"#
        ));
        assert!(!accepted(br#"{"status":"call_error"}"#));
        assert!(!accepted(b"not json"));
        assert_eq!(
            failure_key(404, br#"{"error":{"code":"not_connected","message":"m"}}"#),
            "404 not_connected"
        );
        assert_eq!(failure_key(500, b""), "500");
        assert_eq!(failure_key(502, br#"{"error":{"code":"a b"}}"#), "502");
    }

    #[test]
    fn counts_failures_by_a_bounded_set_of_keys() {
        let mut s = CommandStats::default();
        for i in 0..MAX_FAILURE_KEYS + 5 {
            s.fail(format!("{i}"));
        }
        s.fail("0".into());
        assert_eq!(s.failed.len(), MAX_FAILURE_KEYS + 1);
        assert_eq!(s.failed["other"], 5);
        assert_eq!(s.failed["0"], 2);
    }

    #[test]
    fn every_command_is_one_the_charge_points_answer() {
        for (action, payload) in COMMANDS {
            let v: Value = serde_json::from_str(payload).unwrap();
            assert!(v.is_object(), "{action}");
        }
    }
}
