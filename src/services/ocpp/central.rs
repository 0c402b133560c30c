//! The embedded central system: the answer to each CALL a charge point sends ([`answer`]), made
//! from the gateway's [`Policy`], and what the CALL taught about the charge point ([`Update`],
//! which the caller applies to its [`Station`](super::station::Station)). Sans-IO: payloads
//! arrive already checked against their schemas ([`schema`](super::schema)), yet every field is
//! read with `get`, so an odd value drops an update rather than panicking.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::errors::{ErrorCode, Version};

/// The registration status a BootNotification is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootStatus {
    Accepted,
    Pending,
    Rejected,
}

impl BootStatus {
    /// `"accepted"`, `"pending"` or `"rejected"`, in any case.
    pub fn parse(text: &str) -> Option<BootStatus> {
        [
            BootStatus::Accepted,
            BootStatus::Pending,
            BootStatus::Rejected,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(text))
    }

    /// The wire name, the same in both versions: `"Accepted"`, `"Pending"`, `"Rejected"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BootStatus::Accepted => "Accepted",
            BootStatus::Pending => "Pending",
            BootStatus::Rejected => "Rejected",
        }
    }
}

/// How the embedded central system answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub boot_status: BootStatus,
    pub heartbeat_interval: Duration,
    /// The id tags (1.6) and id tokens (2.0.1) accepted; empty accepts every one.
    pub id_tags: HashSet<String>,
}

impl Policy {
    fn authorizes(&self, id_tag: Option<&str>) -> &'static str {
        let known = id_tag.is_some_and(|tag| self.id_tags.contains(tag));
        if self.id_tags.is_empty() || known {
            "Accepted"
        } else {
            "Invalid"
        }
    }
}

/// The process's 1.6 transaction ids: 1, 2, … up to `i32::MAX`, then 1 again; never 0 or
/// negative.
#[derive(Debug)]
pub struct TransactionIds(AtomicI32);

impl TransactionIds {
    pub fn new() -> TransactionIds {
        TransactionIds(AtomicI32::new(1))
    }

    /// The next id.
    pub fn next(&self) -> i32 {
        let following = |id: i32| {
            Some(if (1..i32::MAX).contains(&id) {
                id + 1
            } else {
                1
            })
        };
        match self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, following)
        {
            Ok(id) | Err(id) => id.max(1),
        }
    }
}

impl Default for TransactionIds {
    fn default() -> TransactionIds {
        TransactionIds::new()
    }
}

/// What a CALL taught about the charge point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Boot {
        vendor: String,
        model: String,
        firmware: Option<String>,
        serial: Option<String>,
        status: BootStatus,
    },
    Heartbeat,
    Status {
        /// The 2.0.1 evseId; `None` in 1.6.
        evse: Option<u32>,
        connector: u32,
        status: String,
        error_code: Option<String>,
        info: Option<String>,
    },
    TransactionStarted {
        id: String,
        evse: Option<u32>,
        connector: Option<u32>,
        id_tag: Option<String>,
        /// Wh.
        meter_start: Option<i64>,
        /// The charge point's timestamp, as sent.
        started_at: Option<String>,
    },
    TransactionEnded {
        id: String,
        /// Wh.
        meter_stop: Option<i64>,
        reason: Option<String>,
        stopped_at: Option<String>,
    },
    MeterValues {
        /// The 1.6 connectorId or the 2.0.1 evseId.
        evse_or_connector: u32,
        transaction_id: Option<String>,
    },
}

/// The CALLRESULT payload, and what the CALL taught.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub payload: Value,
    pub update: Option<Update>,
}

/// A CALL the embedded central system does not answer: the CALLERROR to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub description: String,
}

/// The answer to the CALL `action` with a schema-valid `payload`.
pub fn answer(
    version: Version,
    action: &str,
    payload: &Value,
    policy: &Policy,
    ids: &TransactionIds,
    now: SystemTime,
) -> Result<Answer, Refusal> {
    let answered = match version {
        Version::V16 => answer_v16(action, payload, policy, ids, now),
        Version::V201 => answer_v201(action, payload, policy, now),
    };
    answered.ok_or_else(|| Refusal {
        code: ErrorCode::NotImplemented,
        description: format!(
            "{action} is not implemented by the gateway's embedded central system"
        ),
    })
}

fn answer_v16(
    action: &str,
    payload: &Value,
    policy: &Policy,
    ids: &TransactionIds,
    now: SystemTime,
) -> Option<Answer> {
    Some(match action {
        "BootNotification" => boot(payload, BOOT_V16, policy, now),
        "Heartbeat" => heartbeat(now),
        "StatusNotification" => {
            let update = connector_at(payload, "/connectorId").and_then(|connector| {
                Some(Update::Status {
                    evse: None,
                    connector,
                    status: text(payload, "/status")?,
                    error_code: text(payload, "/errorCode"),
                    info: text(payload, "/info"),
                })
            });
            with(json!({}), update)
        }
        "Authorize" => {
            let status = policy.authorizes(str_at(payload, "/idTag"));
            with(json!({"idTagInfo": {"status": status}}), None)
        }
        "StartTransaction" => start_transaction(payload, policy, ids),
        "StopTransaction" => stop_transaction(payload, policy),
        "MeterValues" => {
            let update = connector_at(payload, "/connectorId").map(|id| Update::MeterValues {
                evse_or_connector: id,
                transaction_id: integer(payload, "/transactionId").map(|id| id.to_string()),
            });
            with(json!({}), update)
        }
        "DataTransfer" => with(json!({"status": "Accepted"}), None),
        _ => return None,
    })
}

fn answer_v201(action: &str, payload: &Value, policy: &Policy, now: SystemTime) -> Option<Answer> {
    Some(match action {
        "BootNotification" => boot(payload, BOOT_V201, policy, now),
        "Heartbeat" => heartbeat(now),
        "StatusNotification" => {
            let update = connector_at(payload, "/connectorId").and_then(|connector| {
                Some(Update::Status {
                    evse: Some(connector_at(payload, "/evseId")?),
                    connector,
                    status: text(payload, "/connectorStatus")?,
                    error_code: None,
                    info: None,
                })
            });
            with(json!({}), update)
        }
        "Authorize" => {
            let status = policy.authorizes(str_at(payload, "/idToken/idToken"));
            with(json!({"idTokenInfo": {"status": status}}), None)
        }
        "TransactionEvent" => transaction_event(payload, policy),
        "MeterValues" => {
            let update = connector_at(payload, "/evseId").map(|id| Update::MeterValues {
                evse_or_connector: id,
                transaction_id: None,
            });
            with(json!({}), update)
        }
        _ => return None,
    })
}

fn with(payload: Value, update: Option<Update>) -> Answer {
    Answer { payload, update }
}

/// Where a BootNotification holds the vendor, model, firmware version and serial number.
const BOOT_V16: [&str; 4] = [
    "/chargePointVendor",
    "/chargePointModel",
    "/firmwareVersion",
    "/chargePointSerialNumber",
];
const BOOT_V201: [&str; 4] = [
    "/chargingStation/vendorName",
    "/chargingStation/model",
    "/chargingStation/firmwareVersion",
    "/chargingStation/serialNumber",
];

/// BootNotification of either version, its fields at `pointers` ([`BOOT_V16`], [`BOOT_V201`]).
fn boot(payload: &Value, pointers: [&str; 4], policy: &Policy, now: SystemTime) -> Answer {
    let [vendor, model, firmware, serial] = pointers.map(|pointer| text(payload, pointer));
    let update = Update::Boot {
        vendor: vendor.unwrap_or_default(),
        model: model.unwrap_or_default(),
        firmware,
        serial,
        status: policy.boot_status,
    };
    let interval = policy.heartbeat_interval.as_secs().min(i32::MAX as u64);
    let payload = json!({
        "status": policy.boot_status.as_str(),
        "currentTime": crate::control::rfc3339(now),
        "interval": interval,
    });
    with(payload, Some(update))
}

fn heartbeat(now: SystemTime) -> Answer {
    let payload = json!({"currentTime": crate::control::rfc3339(now)});
    with(payload, Some(Update::Heartbeat))
}

fn start_transaction(payload: &Value, policy: &Policy, ids: &TransactionIds) -> Answer {
    let id_tag = str_at(payload, "/idTag");
    let status = policy.authorizes(id_tag);
    let transaction_id = ids.next();
    let update = (status == "Accepted").then(|| Update::TransactionStarted {
        id: transaction_id.to_string(),
        evse: None,
        connector: connector_at(payload, "/connectorId"),
        id_tag: id_tag.map(str::to_owned),
        meter_start: integer(payload, "/meterStart"),
        started_at: text(payload, "/timestamp"),
    });
    let payload = json!({"transactionId": transaction_id, "idTagInfo": {"status": status}});
    with(payload, update)
}

fn stop_transaction(payload: &Value, policy: &Policy) -> Answer {
    let mut answer = Map::new();
    if let Some(id_tag) = str_at(payload, "/idTag") {
        let status = policy.authorizes(Some(id_tag));
        answer.insert("idTagInfo".to_owned(), json!({"status": status}));
    }
    let update = integer(payload, "/transactionId").map(|id| Update::TransactionEnded {
        id: id.to_string(),
        meter_stop: integer(payload, "/meterStop"),
        reason: text(payload, "/reason"),
        stopped_at: text(payload, "/timestamp"),
    });
    with(Value::Object(answer), update)
}

/// TransactionEvent (2.0.1): the station chose the transaction id, and reports it started
/// whatever the authorization says (it stops it itself when refused).
fn transaction_event(payload: &Value, policy: &Policy) -> Answer {
    let mut answer = Map::new();
    let id_token = str_at(payload, "/idToken/idToken");
    if id_token.is_some() {
        let status = policy.authorizes(id_token);
        answer.insert("idTokenInfo".to_owned(), json!({"status": status}));
    }
    let update = text(payload, "/transactionInfo/transactionId").and_then(|id| {
        let evse = connector_at(payload, "/evse/id");
        match str_at(payload, "/eventType")? {
            "Started" => Some(Update::TransactionStarted {
                id,
                evse,
                connector: connector_at(payload, "/evse/connectorId"),
                id_tag: id_token.map(str::to_owned),
                meter_start: energy_wh(payload),
                started_at: text(payload, "/timestamp"),
            }),
            "Ended" => Some(Update::TransactionEnded {
                id,
                meter_stop: energy_wh(payload),
                reason: text(payload, "/transactionInfo/stoppedReason"),
                stopped_at: text(payload, "/timestamp"),
            }),
            _ => evse.map(|evse| Update::MeterValues {
                evse_or_connector: evse,
                transaction_id: Some(id),
            }),
        }
    });
    with(Value::Object(answer), update)
}

/// The last total active energy import register reading (2.0.1's default measurand) among the
/// payload's `meterValue`s, in Wh.
fn energy_wh(payload: &Value) -> Option<i64> {
    let meter_values = payload.get("meterValue")?.as_array()?;
    let sampled = meter_values
        .iter()
        .filter_map(|meter_value| meter_value.get("sampledValue")?.as_array())
        .flatten();
    let reading = sampled.rev().find(|sample| {
        let measurand = str_at(sample, "/measurand").unwrap_or("Energy.Active.Import.Register");
        measurand == "Energy.Active.Import.Register" && sample.get("phase").is_none()
    })?;
    let value = reading.get("value")?.as_f64()?;
    let multiplier = integer(reading, "/unitOfMeasure/multiplier").unwrap_or(0);
    let unit_wh = match str_at(reading, "/unitOfMeasure/unit") {
        Some("kWh") => 1000.0,
        _ => 1.0,
    };
    let wh = value * unit_wh * 10f64.powi(i32::try_from(multiplier).ok()?);
    wh.is_finite().then(|| wh.round() as i64)
}

fn str_at<'a>(payload: &'a Value, pointer: &str) -> Option<&'a str> {
    payload.pointer(pointer)?.as_str()
}

fn text(payload: &Value, pointer: &str) -> Option<String> {
    str_at(payload, pointer).map(str::to_owned)
}

fn integer(payload: &Value, pointer: &str) -> Option<i64> {
    payload.pointer(pointer)?.as_i64()
}

/// A connector or EVSE id, when it is a non-negative integer.
fn connector_at(payload: &Value, pointer: &str) -> Option<u32> {
    u32::try_from(integer(payload, pointer)?).ok()
}

#[cfg(test)]
mod tests {
    use super::super::schema::validate;
    use super::*;

    const NOW: &str = "2023-11-14T22:13:20.123Z";
    const T0: &str = "2024-01-01T00:00:00Z";
    const T1: &str = "2024-01-01T01:00:00Z";

    fn policy(id_tags: &[&str]) -> Policy {
        let id_tags = id_tags.iter().map(|tag| tag.to_string()).collect();
        let heartbeat_interval = Duration::from_secs(300);
        Policy {
            boot_status: BootStatus::Pending,
            heartbeat_interval,
            id_tags,
        }
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    fn boot(firmware: Option<String>, serial: Option<String>) -> Update {
        let (vendor, model) = ("V".to_owned(), "M".to_owned());
        Update::Boot {
            vendor,
            model,
            firmware,
            serial,
            status: BootStatus::Pending,
        }
    }

    fn status(evse: Option<u32>, error_code: Option<String>, info: Option<String>) -> Update {
        let status = "Faulted".to_owned();
        Update::Status {
            evse,
            connector: 2,
            status,
            error_code,
            info,
        }
    }

    fn meter(evse_or_connector: u32, transaction_id: Option<String>) -> Update {
        Update::MeterValues {
            evse_or_connector,
            transaction_id,
        }
    }

    fn started(id: &str, evse: Option<u32>, meter_start: i64) -> Update {
        let (id, connector, id_tag) = (id.to_owned(), Some(1), some("TAG1"));
        let (meter_start, started_at) = (Some(meter_start), some(T0));
        Update::TransactionStarted {
            id,
            evse,
            connector,
            id_tag,
            meter_start,
            started_at,
        }
    }

    fn ended(id: &str, meter_stop: i64, reason: &str) -> Update {
        let (id, meter_stop, reason, stopped_at) =
            (id.to_owned(), Some(meter_stop), some(reason), some(T1));
        Update::TransactionEnded {
            id,
            meter_stop,
            reason,
            stopped_at,
        }
    }

    /// Each case of `cases` (`[action, request, answer]`, the requests valid for their schemas,
    /// as the handler only passes those) answered in turn under `policy`, with its update.
    fn check(version: Version, policy: &Policy, cases: Value, updates: &[Option<Update>]) {
        let ids = TransactionIds::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let cases = cases.as_array().unwrap();
        assert_eq!(cases.len(), updates.len());
        for (case, update) in cases.iter().zip(updates) {
            let (action, request) = (case[0].as_str().unwrap(), &case[1]);
            assert_eq!(validate(version, action, request), Ok(()), "{request}");
            let answer = answer(version, action, request, policy, &ids, now);
            let answer = answer.unwrap();
            assert_eq!(
                (&answer.payload, &answer.update),
                (&case[2], update),
                "{case}"
            );
        }
    }

    #[test]
    fn boot_status_parses_in_any_case() {
        assert_eq!(BootStatus::parse("ACCEPTED"), Some(BootStatus::Accepted));
        assert_eq!(BootStatus::parse("pending"), Some(BootStatus::Pending));
        assert_eq!(BootStatus::parse("Rejected"), Some(BootStatus::Rejected));
        assert_eq!(BootStatus::parse("accept"), None);
        assert_eq!(BootStatus::Pending.as_str(), "Pending");
    }

    #[test]
    fn v16_answers() {
        let cases = json!([
            ["BootNotification", {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1.2"},
             {"status": "Pending", "currentTime": NOW, "interval": 300}],
            ["Heartbeat", {}, {"currentTime": NOW}],
            ["StatusNotification", {"connectorId": 2, "status": "Faulted", "errorCode": "GroundFailure", "info": "x"}, {}],
            ["StatusNotification", {"connectorId": -1, "status": "Faulted", "errorCode": "NoError"}, {}],
            ["Authorize", {"idTag": "TAG1"}, {"idTagInfo": {"status": "Accepted"}}],
            ["Authorize", {"idTag": "TAG2"}, {"idTagInfo": {"status": "Invalid"}}],
            ["StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": T0},
             {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}],
            ["StartTransaction", {"connectorId": 1, "idTag": "TAG2", "meterStart": 1000, "timestamp": T0},
             {"transactionId": 2, "idTagInfo": {"status": "Invalid"}}],
            ["StopTransaction", {"transactionId": 1, "meterStop": 1500, "timestamp": T1, "reason": "Local"}, {}],
            ["StopTransaction", {"transactionId": 1, "meterStop": 1500, "timestamp": T1, "reason": "Local",
             "idTag": "TAG2"}, {"idTagInfo": {"status": "Invalid"}}],
            ["MeterValues", {"connectorId": 1, "transactionId": 7,
             "meterValue": [{"timestamp": T0, "sampledValue": [{"value": "10"}]}]}, {}],
            ["DataTransfer", {"vendorId": "acme", "data": "x"}, {"status": "Accepted"}],
        ]);
        let updates = [
            Some(boot(some("1.2"), None)),
            Some(Update::Heartbeat),
            Some(status(None, some("GroundFailure"), some("x"))),
            None,
            None,
            None,
            Some(started("1", None, 1000)),
            None,
            Some(ended("1", 1500, "Local")),
            Some(ended("1", 1500, "Local")),
            Some(meter(1, some("7"))),
            None,
        ];
        check(Version::V16, &policy(&["TAG1"]), cases, &updates);
    }

    #[test]
    fn v201_answers() {
        let token = |token: &str| json!({"idToken": token, "type": "ISO14443"});
        let reading = |value: f64, unit: &str| {
            json!([{"timestamp": T0, "sampledValue": [
            {"value": 230.0, "measurand": "Voltage"}, {"value": value, "unitOfMeasure": {"unit": unit}}]}])
        };
        let event = |kind: &str, extra: Value| {
            let mut event = json!({"eventType": kind, "timestamp": T0, "triggerReason": "Trigger",
                "seqNo": 0, "transactionInfo": {"transactionId": "abc"}});
            event
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            event
        };
        let cases = json!([
            ["BootNotification", {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M",
             "serialNumber": "S"}}, {"status": "Pending", "currentTime": NOW, "interval": 300}],
            ["Heartbeat", {}, {"currentTime": NOW}],
            ["StatusNotification", {"timestamp": T0, "connectorStatus": "Faulted", "evseId": 1, "connectorId": 2}, {}],
            ["Authorize", {"idToken": token("TAG2")}, {"idTokenInfo": {"status": "Invalid"}}],
            ["TransactionEvent", event("Started", json!({"idToken": token("TAG1"),
             "evse": {"id": 1, "connectorId": 1}, "meterValue": reading(1.5, "kWh")})),
             {"idTokenInfo": {"status": "Accepted"}}],
            ["TransactionEvent", event("Updated", json!({"evse": {"id": 1}})), {}],
            ["TransactionEvent", event("Updated", json!({})), {}],
            ["TransactionEvent", event("Ended", json!({"timestamp": T1, "meterValue": reading(2500.0, "Wh"),
             "transactionInfo": {"transactionId": "abc", "stoppedReason": "EVDisconnected"}})), {}],
            ["MeterValues", {"evseId": 3, "meterValue": [{"timestamp": T0, "sampledValue": [{"value": 1.0}]}]}, {}],
        ]);
        let updates = [
            Some(boot(None, some("S"))),
            Some(Update::Heartbeat),
            Some(status(Some(1), None, None)),
            None,
            Some(started("abc", Some(1), 1500)),
            Some(meter(1, some("abc"))),
            None,
            Some(ended("abc", 2500, "EVDisconnected")),
            Some(meter(3, None)),
        ];
        check(Version::V201, &policy(&["TAG1"]), cases, &updates);
    }

    #[test]
    fn an_empty_id_tag_list_accepts_every_tag() {
        let cases = json!([["Authorize", {"idTag": "ANY"}, {"idTagInfo": {"status": "Accepted"}}]]);
        check(Version::V16, &policy(&[]), cases, &[None]);
    }

    #[test]
    fn other_actions_are_not_implemented() {
        let (ids, open, now) = (TransactionIds::new(), policy(&[]), SystemTime::now());
        for (version, action) in [
            (Version::V16, "DiagnosticsStatusNotification"),
            (Version::V201, "DataTransfer"),
            (Version::V201, "StartTransaction"),
        ] {
            let refusal = answer(version, action, &json!({}), &open, &ids, now).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::NotImplemented);
            let description = refusal.description;
            assert!(description.contains(action), "{description}");
            assert!(description.contains("embedded central system"));
        }
    }

    #[test]
    fn transaction_ids_are_unique_and_positive() {
        let ids = TransactionIds::new();
        let taken: HashSet<i32> = (0..1000).map(|_| ids.next()).collect();
        assert_eq!(taken.len(), 1000);
        assert!(taken.iter().all(|&id| id > 0));
        assert_eq!(ids.next(), 1001);
        let near_end = TransactionIds(AtomicI32::new(i32::MAX - 1));
        let ids: Vec<i32> = (0..3).map(|_| near_end.next()).collect();
        assert_eq!(ids, [i32::MAX - 1, i32::MAX, 1]);
    }
}
