//! OCPP-J 1.6's sans-IO parts for the `ocpp` mode: the plan (charge point
//! ids, status, heartbeats, the Basic password), the upgrade each charge
//! point asks for (`/{id}` added to the URL's path, subprotocol `ocpp1.6`),
//! the frames it sends (CALLs numbered per connection, CALLRESULTs to the
//! server's CALLs), reading the server's frames, and the charge point side
//! ([`ChargePoint`]: what it sends next, the one CALL outstanding) with the
//! [`OcppSink`] that checks each reply against it and answers the server's
//! CALLs. What a run measured beyond the common counters is [`OcppStats`].

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::Histogram;
use ringgate::protocol::frame::OpCode;
use ringgate::protocol::writer::encode_client_frame;
use serde_json::{json, Value};

use crate::commands::CommandPlan;
use crate::conn::{answer_control, Msgs};
use crate::realtime::{percent_encode, Secret};
use crate::stats::{new_histogram, Cause, Stats};
use crate::wire::FrameSink;

/// The subprotocol every charge point offers and the server must select.
pub const SUBPROTOCOL: &str = "ocpp1.6";
/// Bytes of one server message kept; a longer one is a `bad_frame`.
const MAX_KEPT: usize = 64 * 1024;
/// Distinct server CALL actions counted by name; the rest count as `other`.
const MAX_ACTIONS: usize = 32;

/// An ocpp run's settings beyond the common ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcppPlan {
    /// Charge point `i` is `{id_prefix}{i}`.
    pub id_prefix: String,
    /// Send one StatusNotification after the boot.
    pub status: bool,
    /// Heartbeats per charge point, each `heartbeat_interval` after the
    /// previous CALL was answered.
    pub heartbeats: u64,
    pub heartbeat_interval: Duration,
    /// How long to stay connected once every charge point here is done.
    pub hold: Duration,
    /// HTTP Basic password (user: the charge point's id).
    pub password: Option<Secret>,
    /// Downlink commands through the admin API while the charge points are up.
    pub commands: Option<CommandPlan>,
}

impl OcppPlan {
    /// The id of charge point `i`.
    pub fn id_of(&self, i: u64) -> String {
        format!("{}{i}", self.id_prefix)
    }

    /// The upgrade target of charge point `id`: `base` with `/{id}` added
    /// to its path.
    pub fn target(&self, base: &str, id: &str) -> String {
        crate::url::add_path_segment(base, &percent_encode(id))
    }

    /// The upgrade's headers beyond the usual ones: the subprotocol offer,
    /// and `Authorization: Basic` with a password.
    pub fn headers(&self, id: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![("Sec-WebSocket-Protocol", SUBPROTOCOL.to_owned())];
        if let Some(password) = &self.password {
            let credentials = STANDARD.encode(format!("{id}:{}", password.0));
            headers.push(("Authorization", format!("Basic {credentials}")));
        }
        headers
    }
}

/// The CALLs a charge point makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    BootNotification,
    StatusNotification,
    Heartbeat,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::BootNotification => "BootNotification",
            Action::StatusNotification => "StatusNotification",
            Action::Heartbeat => "Heartbeat",
        }
    }

    fn payload(self) -> &'static str {
        match self {
            Action::BootNotification => {
                r#"{"chargePointVendor":"ringgate-load","chargePointModel":"sim"}"#
            }
            Action::StatusNotification => {
                r#"{"connectorId":1,"errorCode":"NoError","status":"Available"}"#
            }
            Action::Heartbeat => "{}",
        }
    }
}

/// The CALL `[2,"<msg_id>","<action>",{payload}]`.
pub fn call(msg_id: u64, action: Action) -> String {
    format!(
        "[2,\"{msg_id}\",\"{}\",{}]",
        action.name(),
        action.payload()
    )
}

/// The CALLRESULT answering the server's CALL `action` sent under `msg_id`:
/// `{"configurationKey":[],"unknownKey":[]}` for GetConfiguration,
/// `{"status":"Accepted"}` for anything else.
pub fn call_result(msg_id: &str, action: &str) -> Vec<u8> {
    let payload = match action {
        "GetConfiguration" => json!({"configurationKey": [], "unknownKey": []}),
        _ => json!({"status": "Accepted"}),
    };
    serde_json::to_vec(&json!([3, msg_id, payload])).expect("JSON values serialize")
}

/// A server frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Call { id: String, action: String },
    Result { id: String, payload: Value },
    Error { id: String, code: String },
}

/// Reads one OCPP-J frame; `None` if it is not one (not JSON, not an array
/// of the right length, a field of the wrong type).
pub fn parse_frame(text: &[u8]) -> Option<Frame> {
    let Value::Array(mut v) = serde_json::from_slice(text).ok()? else {
        return None;
    };
    let kind = v.first()?.as_u64()?;
    let shaped = match (kind, v.len()) {
        (2, 4) => v[3].is_object(),
        (3, 3) => v[2].is_object(),
        (4, 5) => v[3].is_string() && v[4].is_object(),
        _ => false,
    };
    if !shaped {
        return None;
    }
    let id = take_string(&mut v, 1)?;
    Some(match kind {
        2 => Frame::Call {
            id,
            action: take_string(&mut v, 2)?,
        },
        3 => Frame::Result {
            id,
            payload: v.pop()?,
        },
        _ => Frame::Error {
            id,
            code: take_string(&mut v, 2)?,
        },
    })
}

/// Element `i` of `v`, if it is a string.
fn take_string(v: &mut [Value], i: usize) -> Option<String> {
    match v.get_mut(i)? {
        Value::String(s) => Some(std::mem::take(s)),
        _ => None,
    }
}

/// What a CALLRESULT's payload says about the CALL it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// A BootNotification answered `Pending` or `Rejected`.
    BootRejected,
    /// The payload lacks what the action's answer needs.
    Malformed,
}

/// Checks the answer to `action`: a boot's `status` (with `currentTime` and
/// `interval` when `Accepted`), a heartbeat's `currentTime`.
pub fn check_result(action: Action, payload: &Value) -> Verdict {
    let time = payload.get("currentTime").is_some_and(Value::is_string);
    match action {
        Action::BootNotification => match payload.get("status").and_then(Value::as_str) {
            Some("Accepted") if time && payload.get("interval").is_some_and(Value::is_i64) => {
                Verdict::Ok
            }
            Some("Pending" | "Rejected") => Verdict::BootRejected,
            _ => Verdict::Malformed,
        },
        Action::Heartbeat if !time => Verdict::Malformed,
        _ => Verdict::Ok,
    }
}

/// Where a charge point's boot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boot {
    /// Not sent yet.
    Due,
    /// Sent, not answered.
    Sent,
    Accepted,
    /// Answered otherwise (rejected, a CALLERROR, a malformed answer): the
    /// charge point does nothing more.
    Failed,
}

/// The CALL a charge point waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outstanding {
    pub msg_id: u64,
    pub action: Action,
    /// ns since the run's epoch.
    pub sent_ns: u64,
}

/// What a charge point does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send this CALL now.
    Call(Action),
    /// The next heartbeat is due then (ns since the run's epoch).
    At(u64),
    /// A CALL is outstanding.
    Waiting,
    /// Booted (or failed to) and sent everything.
    Done,
}

/// One simulated charge point.
#[derive(Debug)]
pub struct ChargePoint {
    pub id: String,
    boot: Boot,
    status_due: bool,
    heartbeats_due: u64,
    /// The next CALL's message id.
    next_msg: u64,
    outstanding: Option<Outstanding>,
    /// When the last CALL was answered, ns since the run's epoch.
    answered_ns: u64,
    /// A heartbeat timer is set for it.
    pub timer_set: bool,
    /// The first [`MAX_KEPT`] bytes of the server message being read.
    buf: Vec<u8>,
    /// The message being read outgrew [`MAX_KEPT`].
    overlong: bool,
}

impl ChargePoint {
    /// Charge point `i` of `plan`.
    pub fn new(plan: &OcppPlan, i: u64) -> ChargePoint {
        ChargePoint {
            id: plan.id_of(i),
            boot: Boot::Due,
            status_due: plan.status,
            heartbeats_due: plan.heartbeats,
            next_msg: 1,
            outstanding: None,
            answered_ns: 0,
            timer_set: false,
            buf: Vec::new(),
            overlong: false,
        }
    }

    /// Whether its BootNotification is still unanswered (or unsent).
    pub fn booting(&self) -> bool {
        matches!(self.boot, Boot::Due | Boot::Sent)
    }

    /// Whether it has nothing left to send or wait for (whatever the time).
    pub fn done(&self) -> bool {
        self.next(0, 0) == Next::Done
    }

    /// What to do at `now_ns`, heartbeats `interval_ns` apart.
    pub fn next(&self, now_ns: u64, interval_ns: u64) -> Next {
        if self.outstanding.is_some() {
            return Next::Waiting;
        }
        match self.boot {
            Boot::Due => Next::Call(Action::BootNotification),
            Boot::Sent => Next::Waiting,
            Boot::Failed => Next::Done,
            Boot::Accepted if self.status_due => Next::Call(Action::StatusNotification),
            Boot::Accepted if self.heartbeats_due > 0 => {
                let at = self.answered_ns.saturating_add(interval_ns);
                if at <= now_ns {
                    Next::Call(Action::Heartbeat)
                } else {
                    Next::At(at)
                }
            }
            Boot::Accepted => Next::Done,
        }
    }

    /// Appends the CALL `action`, masked with `mask`, to `out` and makes it
    /// the outstanding one.
    pub fn call(&mut self, action: Action, now_ns: u64, mask: [u8; 4], out: &mut Vec<u8>) {
        let msg_id = self.next_msg;
        self.next_msg += 1;
        let text = call(msg_id, action);
        encode_client_frame(out, true, OpCode::Text, text.as_bytes(), mask);
        self.outstanding = Some(Outstanding {
            msg_id,
            action,
            sent_ns: now_ns,
        });
        match action {
            Action::BootNotification => self.boot = Boot::Sent,
            Action::StatusNotification => self.status_due = false,
            Action::Heartbeat => self.heartbeats_due -= 1,
        }
    }

    /// Takes the outstanding CALL if `msg_id` is its id.
    pub fn take_reply(&mut self, msg_id: &str) -> Option<Outstanding> {
        let o = self.outstanding?;
        (msg_id == o.msg_id.to_string()).then(|| {
            self.outstanding = None;
            o
        })
    }

    /// The CALL `o` was answered at `now_ns`, well (`ok`) or not.
    pub fn answered(&mut self, o: Outstanding, ok: bool, now_ns: u64) {
        self.answered_ns = now_ns;
        if o.action == Action::BootNotification {
            self.boot = if ok { Boot::Accepted } else { Boot::Failed };
        }
    }
}

/// What an ocpp run's charge points saw beyond the common counters
/// (`Stats::rtt` holds the latency of every CALL); merged across threads.
#[derive(Debug, Clone)]
pub struct OcppStats {
    /// BootNotification and Heartbeat CALL-to-CALLRESULT latency, µs.
    pub boot: Histogram<u64>,
    pub heartbeat: Histogram<u64>,
    /// BootNotifications answered (in any way), and accepted.
    pub boots_answered: u64,
    pub boots_accepted: u64,
    /// The first charge point's connect() and the last boot's answer, ns
    /// since the run's epoch.
    pub first_connect_ns: Option<u64>,
    pub last_boot_ns: Option<u64>,
    /// Server CALLs answered, by action.
    pub server_calls: BTreeMap<String, u64>,
}

impl Default for OcppStats {
    fn default() -> Self {
        OcppStats {
            boot: new_histogram(),
            heartbeat: new_histogram(),
            boots_answered: 0,
            boots_accepted: 0,
            first_connect_ns: None,
            last_boot_ns: None,
            server_calls: BTreeMap::new(),
        }
    }
}

impl OcppStats {
    /// Notes a charge point's connect() at `ns`.
    pub fn connecting(&mut self, ns: u64) {
        self.first_connect_ns = Some(self.first_connect_ns.map_or(ns, |f| f.min(ns)));
    }

    /// Counts a server CALL `action` answered.
    fn server_call(&mut self, action: &str) {
        let known = self.server_calls.len() < MAX_ACTIONS || self.server_calls.contains_key(action);
        let key = if known { action } else { "other" };
        *self.server_calls.entry(key.to_owned()).or_default() += 1;
    }

    /// Server CALLs answered, all actions.
    pub fn server_calls_answered(&self) -> u64 {
        self.server_calls.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &OcppStats) {
        self.boot.add(&other.boot).expect("same histogram bounds");
        self.heartbeat
            .add(&other.heartbeat)
            .expect("same histogram bounds");
        self.boots_answered += other.boots_answered;
        self.boots_accepted += other.boots_accepted;
        if let Some(ns) = other.first_connect_ns {
            self.connecting(ns);
        }
        self.last_boot_ns = self.last_boot_ns.max(other.last_boot_ns);
        for (action, n) in &other.server_calls {
            *self.server_calls.entry(action.clone()).or_default() += n;
        }
    }
}

/// Reads server frames for one charge point: matches each CALLRESULT and
/// CALLERROR to its outstanding CALL, checks it and records its latency;
/// answers the server's CALLs, pings and closes into `replies`.
pub struct OcppSink<'a> {
    pub cp: &'a mut ChargePoint,
    pub msgs: &'a mut Msgs,
    pub stats: &'a mut Stats,
    pub replies: &'a mut Vec<u8>,
    pub mask: [u8; 4],
    /// Receive time, ns since the run's epoch.
    pub now_ns: u64,
    /// CALLs answered by this feed.
    pub completed: u64,
}

impl OcppSink<'_> {
    fn frame(&mut self, frame: Frame) {
        match frame {
            Frame::Call { id, action } => {
                let text = call_result(&id, &action);
                encode_client_frame(self.replies, true, OpCode::Text, &text, self.mask);
                self.stats.ocpp.server_call(&action);
            }
            Frame::Result { id, payload } => match self.cp.take_reply(&id) {
                Some(o) => self.result(o, &payload),
                None => self.stats.fail(Cause::ReplyMismatch, 1),
            },
            Frame::Error { id, .. } => {
                self.stats.fail(Cause::CallError, 1);
                if let Some(o) = self.cp.take_reply(&id) {
                    self.answered(o, false);
                }
            }
        }
    }

    fn result(&mut self, o: Outstanding, payload: &Value) {
        let verdict = check_result(o.action, payload);
        match verdict {
            Verdict::Ok => {}
            Verdict::BootRejected => self.stats.fail(Cause::BootRejected, 1),
            Verdict::Malformed => self.stats.fail(Cause::BadFrame, 1),
        }
        self.stats.received += 1;
        let us = (self.now_ns.saturating_sub(o.sent_ns) / 1000).max(1);
        self.stats.rtt.saturating_record(us);
        match o.action {
            Action::BootNotification => self.stats.ocpp.boot.saturating_record(us),
            Action::Heartbeat => self.stats.ocpp.heartbeat.saturating_record(us),
            Action::StatusNotification => {}
        }
        self.answered(o, verdict == Verdict::Ok);
    }

    fn answered(&mut self, o: Outstanding, ok: bool) {
        self.cp.answered(o, ok, self.now_ns);
        self.msgs.received += 1;
        self.completed += 1;
        if o.action == Action::BootNotification {
            let s = &mut self.stats.ocpp;
            s.boots_answered += 1;
            s.boots_accepted += u64::from(ok);
            s.last_boot_ns = s.last_boot_ns.max(Some(self.now_ns));
        }
    }
}

impl FrameSink for OcppSink<'_> {
    fn data(&mut self, offset: u64, chunk: &[u8]) {
        let cp = &mut *self.cp;
        if offset == 0 {
            cp.buf.clear();
            cp.overlong = false;
        }
        let room = MAX_KEPT - cp.buf.len();
        cp.overlong |= chunk.len() > room;
        cp.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn message_end(&mut self, len: u64, text: bool) {
        if len == 0 {
            self.cp.buf.clear();
        }
        let frame = (text && !self.cp.overlong)
            .then(|| parse_frame(&self.cp.buf))
            .flatten();
        match frame {
            Some(frame) => self.frame(frame),
            None => self.stats.fail(Cause::BadFrame, 1),
        }
        crate::wire::recycle(&mut self.cp.buf);
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        answer_control(self.msgs, self.replies, self.mask, opcode, payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameDecoder;
    use ringgate::protocol::frame::decode_header;
    use ringgate::protocol::mask::apply_mask;
    use ringgate::protocol::writer::encode_frame;

    fn plan() -> OcppPlan {
        OcppPlan {
            id_prefix: "cp-".into(),
            status: true,
            heartbeats: 2,
            heartbeat_interval: Duration::from_secs(1),
            hold: Duration::ZERO,
            password: None,
            commands: None,
        }
    }

    /// The unmasked texts of the client frames in `wire`.
    fn texts(mut wire: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((h, n)) = decode_header(wire).unwrap() {
            assert_eq!(h.opcode, OpCode::Text);
            let len = h.payload_len as usize;
            let mut body = wire[n..n + len].to_vec();
            apply_mask(&mut body, h.mask.unwrap(), 0);
            out.push(String::from_utf8(body).unwrap());
            wire = &wire[n + len..];
        }
        out
    }

    #[test]
    fn ids_targets_and_headers() {
        let mut p = plan();
        assert_eq!(p.id_of(7), "cp-7");
        assert_eq!(p.target("/ocpp", "cp-7"), "/ocpp/cp-7");
        assert_eq!(p.target("/ocpp/?a=b", "x y"), "/ocpp/x%20y?a=b");
        assert_eq!(
            p.headers("cp-7"),
            [("Sec-WebSocket-Protocol", "ocpp1.6".to_owned())]
        );
        p.password = Some(Secret("pw".into()));
        // base64("cp-7:pw")
        assert_eq!(
            p.headers("cp-7")[1],
            ("Authorization", "Basic Y3AtNzpwdw==".into())
        );
    }

    #[test]
    fn builds_calls_and_call_results() {
        let v: Value = serde_json::from_str(&call(12, Action::BootNotification)).unwrap();
        assert_eq!(
            v,
            json!([2, "12", "BootNotification",
                {"chargePointVendor": "ringgate-load", "chargePointModel": "sim"}])
        );
        let v: Value = serde_json::from_str(&call(3, Action::StatusNotification)).unwrap();
        assert_eq!(
            v[3],
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        );
        assert_eq!(call(4, Action::Heartbeat), r#"[2,"4","Heartbeat",{}]"#);
        assert_eq!(
            call_result("x1", "Reset"),
            br#"[3,"x1",{"status":"Accepted"}]"#
        );
        assert_eq!(
            call_result("a\"b", "GetConfiguration"),
            br#"[3,"a\"b",{"configurationKey":[],"unknownKey":[]}]"#
        );
    }

    #[test]
    fn parses_server_frames() {
        assert_eq!(
            parse_frame(br#"[2,"u-1","Reset",{"type":"Soft"}]"#),
            Some(Frame::Call {
                id: "u-1".into(),
                action: "Reset".into()
            })
        );
        assert_eq!(
            parse_frame(br#" [3, "7", {"currentTime": "2025-01-01T00:00:00Z"}] "#),
            Some(Frame::Result {
                id: "7".into(),
                payload: json!({"currentTime": "2025-01-01T00:00:00Z"})
            })
        );
        assert_eq!(
            parse_frame(br#"[4,"7","NotImplemented","no",{}]"#),
            Some(Frame::Error {
                id: "7".into(),
                code: "NotImplemented".into()
            })
        );
        for bad in [
            &b""[..],
            b"{}",
            b"[]",
            b"[3,\"7\"]",
            b"[3,7,{}]",
            b"[3,\"7\",[]]",
            b"[2,\"7\",\"Reset\"]",
            b"[2,\"7\",1,{}]",
            b"[4,\"7\",\"E\",{}]",
            b"[4,\"7\",\"E\",\"d\",{},1]",
            b"[5,\"7\",{}]",
            b"[\"3\",\"7\",{}]",
            b"[3,\"7\",{}",
        ] {
            assert_eq!(parse_frame(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn checks_results() {
        let boot = |v: Value| check_result(Action::BootNotification, &v);
        let t = "2025-01-01T00:00:00Z";
        assert_eq!(
            boot(json!({"status": "Accepted", "currentTime": t, "interval": 300})),
            Verdict::Ok
        );
        assert_eq!(
            boot(json!({"status": "Pending", "currentTime": t, "interval": 300})),
            Verdict::BootRejected
        );
        assert_eq!(boot(json!({"status": "Rejected"})), Verdict::BootRejected);
        assert_eq!(boot(json!({"status": "Accepted"})), Verdict::Malformed);
        assert_eq!(boot(json!({"status": "Yes"})), Verdict::Malformed);
        assert_eq!(boot(json!({})), Verdict::Malformed);
        let hb = |v: Value| check_result(Action::Heartbeat, &v);
        assert_eq!(hb(json!({"currentTime": t})), Verdict::Ok);
        assert_eq!(hb(json!({})), Verdict::Malformed);
        assert_eq!(
            check_result(Action::StatusNotification, &json!({})),
            Verdict::Ok
        );
    }

    #[test]
    fn a_charge_point_boots_reports_status_and_beats() {
        let p = plan();
        let mut cp = ChargePoint::new(&p, 3);
        let mut out = Vec::new();
        assert!(cp.booting());
        assert_eq!(cp.next(0, 10), Next::Call(Action::BootNotification));
        cp.call(Action::BootNotification, 5, [1, 2, 3, 4], &mut out);
        assert_eq!(cp.next(6, 10), Next::Waiting);
        assert_eq!(cp.take_reply("2"), None);
        assert_eq!(cp.take_reply("01"), None);
        let o = cp.take_reply("1").unwrap();
        assert_eq!(
            (o.msg_id, o.action, o.sent_ns),
            (1, Action::BootNotification, 5)
        );
        assert!(cp.booting(), "answered only when told");
        cp.answered(o, true, 20);
        assert!(!cp.booting());
        assert_eq!(cp.next(20, 10), Next::Call(Action::StatusNotification));
        cp.call(Action::StatusNotification, 20, [1, 2, 3, 4], &mut out);
        let o = cp.take_reply("2").unwrap();
        cp.answered(o, true, 25);
        assert_eq!(cp.next(30, 10), Next::At(35));
        assert!(!cp.done(), "heartbeats are due");
        assert_eq!(cp.next(35, 10), Next::Call(Action::Heartbeat));
        cp.call(Action::Heartbeat, 35, [1, 2, 3, 4], &mut out);
        let o = cp.take_reply("3").unwrap();
        cp.answered(o, true, 40);
        cp.call(Action::Heartbeat, 50, [1, 2, 3, 4], &mut out);
        let o = cp.take_reply("4").unwrap();
        cp.answered(o, true, 55);
        assert_eq!(cp.next(100, 10), Next::Done);
        assert!(cp.done());
        let sent = texts(&out);
        assert_eq!(sent.len(), 4);
        assert!(sent[0].starts_with(r#"[2,"1","BootNotification","#));
        assert!(sent[1].starts_with(r#"[2,"2","StatusNotification","#));
        assert_eq!(sent[3], r#"[2,"4","Heartbeat",{}]"#);

        let mut cp = ChargePoint::new(&p, 4);
        cp.call(Action::BootNotification, 0, [0; 4], &mut out);
        let o = cp.take_reply("1").unwrap();
        cp.answered(o, false, 1);
        assert!(!cp.booting());
        assert_eq!(cp.next(1, 0), Next::Done, "a failed boot ends it");
    }

    fn server_frames(texts: &[&str]) -> Vec<u8> {
        let mut wire = Vec::new();
        for t in texts {
            encode_frame(&mut wire, OpCode::Text, t.as_bytes());
        }
        wire
    }

    #[test]
    fn the_sink_matches_replies_and_answers_calls() {
        let p = plan();
        let boot_ok =
            r#"[3,"1",{"status":"Accepted","currentTime":"2025-01-01T00:00:00Z","interval":300}]"#;
        let mut wire = server_frames(&[
            r#"[3,"9",{}]"#, // nothing of ours has id 9
            boot_ok,
            boot_ok, // answered already
            r#"[2,"x1","Reset",{"type":"Soft"}]"#,
            r#"[2,"x2","GetConfiguration",{}]"#,
            "not json",
            r#"[4,"-1","FormationViolation","bad",{}]"#,
        ]);
        encode_frame(&mut wire, OpCode::Binary, b"[3,\"1\",{}]");
        encode_frame(&mut wire, OpCode::Ping, b"p");
        for piece in [1, 5, wire.len()] {
            let mut cp = ChargePoint::new(&p, 0);
            let mut sent = Vec::new();
            cp.call(Action::BootNotification, 1_000, [0; 4], &mut sent);
            let mut msgs = Msgs {
                sent: 1,
                ..Msgs::default()
            };
            let mut stats = Stats::default();
            let mut replies = Vec::new();
            let mut sink = OcppSink {
                cp: &mut cp,
                msgs: &mut msgs,
                stats: &mut stats,
                replies: &mut replies,
                mask: [9, 8, 7, 6],
                now_ns: 51_000,
                completed: 0,
            };
            let mut dec = FrameDecoder::default();
            for chunk in wire.chunks(piece) {
                dec.feed(chunk, &mut sink).unwrap();
            }
            assert_eq!(sink.completed, 1);
            assert_eq!((msgs.sent, msgs.received), (1, 1));
            assert!(!cp.booting());
            assert_eq!(cp.next(51_000, 0), Next::Call(Action::StatusNotification));
            let o = &stats.ocpp;
            assert_eq!((o.boots_answered, o.boots_accepted), (1, 1));
            assert_eq!(o.last_boot_ns, Some(51_000));
            assert_eq!((o.boot.len(), o.boot.max()), (1, 50));
            assert_eq!((stats.rtt.len(), stats.received), (1, 1));
            assert_eq!(stats.failures_of(Cause::ReplyMismatch), 2);
            assert_eq!(stats.failures_of(Cause::BadFrame), 2);
            assert_eq!(stats.failures_of(Cause::CallError), 1);
            assert_eq!(o.server_calls_answered(), 2);
            assert_eq!(o.server_calls["Reset"], 1);
            // Replies: the two CALLRESULTs, then the Pong.
            let (first, n) = decode_header(&replies).unwrap().unwrap();
            let len = n + first.payload_len as usize;
            let (second, m) = decode_header(&replies[len..]).unwrap().unwrap();
            let results = texts(&replies[..len + m + second.payload_len as usize]);
            assert_eq!(
                results,
                [
                    r#"[3,"x1",{"status":"Accepted"}]"#,
                    r#"[3,"x2",{"configurationKey":[],"unknownKey":[]}]"#
                ]
            );
        }
    }

    #[test]
    fn rejected_boots_and_call_errors_end_the_boot() {
        let p = plan();
        for (reply, cause) in [
            (
                r#"[3,"1",{"status":"Rejected","currentTime":"t","interval":60}]"#,
                Cause::BootRejected,
            ),
            (r#"[4,"1","InternalError","",{}]"#, Cause::CallError),
            (r#"[3,"1",{"status":"Accepted"}]"#, Cause::BadFrame),
        ] {
            let mut cp = ChargePoint::new(&p, 0);
            cp.call(Action::BootNotification, 0, [0; 4], &mut Vec::new());
            let (mut msgs, mut stats, mut replies) = (Msgs::default(), Stats::default(), vec![]);
            msgs.sent = 1;
            let mut sink = OcppSink {
                cp: &mut cp,
                msgs: &mut msgs,
                stats: &mut stats,
                replies: &mut replies,
                mask: [0; 4],
                now_ns: 10_000,
                completed: 0,
            };
            FrameDecoder::default()
                .feed(&server_frames(&[reply]), &mut sink)
                .unwrap();
            assert_eq!(sink.completed, 1, "{reply}");
            assert_eq!(stats.failures_of(cause), 1, "{reply}");
            assert_eq!(stats.total_failures(), 1, "{reply}");
            assert_eq!(
                (stats.ocpp.boots_answered, stats.ocpp.boots_accepted),
                (1, 0)
            );
            assert_eq!(cp.next(10_000, 0), Next::Done);
        }
    }

    #[test]
    fn stats_merge() {
        let mut a = OcppStats::default();
        let mut b = OcppStats::default();
        a.connecting(50);
        b.connecting(20);
        b.connecting(30);
        b.last_boot_ns = Some(900);
        b.boot.record(7).unwrap();
        b.server_call("Reset");
        a.server_call("Reset");
        a.merge(&b);
        assert_eq!((a.first_connect_ns, a.last_boot_ns), (Some(20), Some(900)));
        assert_eq!(a.boot.len(), 1);
        assert_eq!(a.server_calls["Reset"], 2);
        for i in 0..40 {
            a.server_call(&format!("A{i}"));
        }
        assert_eq!(a.server_calls.len(), MAX_ACTIONS + 1);
        assert_eq!(a.server_calls["other"], 9);
    }
}
