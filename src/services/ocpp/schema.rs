//! Payload validation of the CALLs a charge point sends: each core-profile action's payload is
//! checked against the Open Charge Alliance's request schema for its version ([`validate`]),
//! and a refusal says which CALLERROR code it deserves ([`Violation`]). The schemas are vendored
//! unchanged in `schemas/v16/` (draft-04) and `schemas/v201/` (draft-06), embedded with
//! `include_str!`, and compiled once per version by the `jsonschema` crate, with format
//! validation on (so a `date-time` must be RFC 3339, offset included).
//!
//! Which code a broken rule gets ([`code_for`]):
//!
//! | schema keyword | code | python `ocpp` 2.1.0 (`messages.py`, `_validate_payload`) |
//! | --- | --- | --- |
//! | `type` | `TypeConstraint` | the same |
//! | `additionalProperties` | `Format` | the same (`FormatViolation`) |
//! | `required` | `Occurrence` | `ProtocolError` |
//! | `minItems`, `maxItems` | `Occurrence` | `FormatViolation` |
//! | `maxLength`, `minLength` | `PropertyConstraint` | `TypeConstraintViolation` for `maxLength`, `FormatViolation` for `minLength` |
//! | `enum`, `const`, `minimum`, `maximum` (and the exclusive ones), `multipleOf`, `pattern`, `format` | `PropertyConstraint` | `FormatViolation` (and it checks no `format` at all) |
//! | anything else | `Format` | the same |
//!
//! The deviations follow the codes' definitions in OCPP-J 1.6 section 4.2.3 and OCPP 2.0.1
//! part 4 section 4.3: a field that is absent, or an array with too few or too many items,
//! breaks an occurrence (cardinality) constraint; a value of the right type outside its allowed
//! values or length breaks a property constraint; `ProtocolError` ("payload incomplete") is left
//! to the framing. The python library always writes 2.0.1's `FormatViolation`; here
//! [`ErrorCode::Format`] is spelled for the connection's version (1.6 `FormationViolation`).
//!
//! A payload breaking several rules gets the code of one violation, chosen in a fixed order and
//! without walking all of them (a payload may break thousands): the payload's own level first
//! (a missing field, an unexpected one, the wrong type), by the JSON pointer of the value at
//! fault and then by the schema keyword's path; below it, the first violation the validator
//! meets (it checks keywords in name order, members in name order, items in order, and stops
//! there). The cost of a check is thus bounded by the payload's size, which the frame parser
//! bounds in items (`OCPP_MAX_MESSAGE_ITEMS`).

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::Location;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

use super::errors::{ErrorCode, Version};

/// Why a payload was refused: the CALLERROR code and a description naming the field (JSON
/// pointer) and rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct Violation {
    pub code: ErrorCode,
    pub description: String,
}

/// The 1.6 request schemas, by action (file names as in the python package).
const V16: [(&str, &str); 8] = [
    ("Authorize", include_str!("schemas/v16/Authorize.json")),
    (
        "BootNotification",
        include_str!("schemas/v16/BootNotification.json"),
    ),
    (
        "DataTransfer",
        include_str!("schemas/v16/DataTransfer.json"),
    ),
    ("Heartbeat", include_str!("schemas/v16/Heartbeat.json")),
    ("MeterValues", include_str!("schemas/v16/MeterValues.json")),
    (
        "StartTransaction",
        include_str!("schemas/v16/StartTransaction.json"),
    ),
    (
        "StatusNotification",
        include_str!("schemas/v16/StatusNotification.json"),
    ),
    (
        "StopTransaction",
        include_str!("schemas/v16/StopTransaction.json"),
    ),
];

/// The 2.0.1 request schemas, by action (the files are `<action>Request.json`).
const V201: [(&str, &str); 6] = [
    (
        "Authorize",
        include_str!("schemas/v201/AuthorizeRequest.json"),
    ),
    (
        "BootNotification",
        include_str!("schemas/v201/BootNotificationRequest.json"),
    ),
    (
        "Heartbeat",
        include_str!("schemas/v201/HeartbeatRequest.json"),
    ),
    (
        "MeterValues",
        include_str!("schemas/v201/MeterValuesRequest.json"),
    ),
    (
        "StatusNotification",
        include_str!("schemas/v201/StatusNotificationRequest.json"),
    ),
    (
        "TransactionEvent",
        include_str!("schemas/v201/TransactionEventRequest.json"),
    ),
];

/// At most this many characters of a JSON pointer (escaped) go into a description, which stays
/// under the 255 characters OCPP 2.0.1 allows a CALLERROR's errorDescription.
const MAX_POINTER_CHARS: usize = 100;

/// One action's checks.
struct Checks {
    /// The whole schema.
    full: Validator,
    /// The payload's own level only: the schema with every property's schema emptied.
    top: Validator,
}

type Validators = HashMap<&'static str, Checks>;

/// The compiled validators of `version`, compiled on first use.
fn validators(version: Version) -> &'static Validators {
    static V16_VALIDATORS: OnceLock<Validators> = OnceLock::new();
    static V201_VALIDATORS: OnceLock<Validators> = OnceLock::new();
    let (cell, schemas, draft): (_, &[(&'static str, &'static str)], _) = match version {
        Version::V16 => (&V16_VALIDATORS, &V16, Draft::Draft4),
        Version::V201 => (&V201_VALIDATORS, &V201, Draft::Draft6),
    };
    cell.get_or_init(|| {
        schemas
            .iter()
            .map(|&(action, text)| (action, compile(action, text, draft)))
            .collect()
    })
}

fn compile(action: &str, text: &str, draft: Draft) -> Checks {
    // The 2.0.1 files of some releases start with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let schema: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("vendored schema for {action} is not JSON: {e}"));
    let mut top = schema.clone();
    if let Some(Value::Object(properties)) = top.get_mut("properties") {
        for property in properties.values_mut() {
            *property = Value::Object(serde_json::Map::new());
        }
    }
    let build = |schema: &Value| {
        jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .build(schema)
            .unwrap_or_else(|e| panic!("vendored schema for {action} does not compile: {e}"))
    };
    Checks {
        full: build(&schema),
        top: build(&top),
    }
}

/// Whether `action` (a CALL from a charge point) has a schema in `version`.
pub fn knows(version: Version, action: &str) -> bool {
    let schemas: &[(&str, &str)] = match version {
        Version::V16 => &V16,
        Version::V201 => &V201,
    };
    schemas.iter().any(|&(known, _)| known == action)
}

/// Checks `payload` against `action`'s request schema; `Ok` for an action without one (the
/// caller decides NotImplemented).
pub fn validate(version: Version, action: &str, payload: &Value) -> Result<(), Violation> {
    let Some(checks) = validators(version).get(action) else {
        return Ok(());
    };
    let Err(met_first) = checks.full.validate(payload) else {
        return Ok(());
    };
    // The payload's own level breaks a handful of rules at most (one per required field, one
    // for every unexpected field together, one for its type): all of them are looked at.
    let top_level = checks.top.iter_errors(payload).min_by(|a, b| {
        (a.instance_path.as_str(), a.schema_path.as_str())
            .cmp(&(b.instance_path.as_str(), b.schema_path.as_str()))
    });
    let error = top_level.unwrap_or(met_first);
    Err(Violation {
        code: code_for(&error.kind),
        description: describe(&error),
    })
}

/// The CALLERROR code a broken schema rule deserves (the table in the module doc).
fn code_for(kind: &ValidationErrorKind) -> ErrorCode {
    use ValidationErrorKind as K;
    match kind {
        K::Type { .. } => ErrorCode::TypeConstraint,
        K::Required { .. } | K::MinItems { .. } | K::MaxItems { .. } => ErrorCode::Occurrence,
        K::Enum { .. }
        | K::Constant { .. }
        | K::MaxLength { .. }
        | K::MinLength { .. }
        | K::Minimum { .. }
        | K::Maximum { .. }
        | K::ExclusiveMinimum { .. }
        | K::ExclusiveMaximum { .. }
        | K::MultipleOf { .. }
        | K::Pattern { .. }
        | K::Format { .. } => ErrorCode::PropertyConstraint,
        _ => ErrorCode::Format,
    }
}

/// `"<pointer>" <what is wrong> (<keyword>)`, the pointer naming the field at fault (for a
/// missing or unexpected property, that property) and cut to [`MAX_POINTER_CHARS`].
fn describe(error: &ValidationError<'_>) -> String {
    use ValidationErrorKind as K;
    let at = &error.instance_path;
    let (field, what) = match &error.kind {
        K::Required { property } => {
            let name = property.as_str().map(str::to_owned);
            let name = name.unwrap_or_else(|| property.to_string());
            (at.join(&name), "is required but missing".to_owned())
        }
        K::AdditionalProperties { unexpected } => {
            let name = unexpected.iter().min().map_or("", String::as_str);
            (at.join(name), "is not allowed by the schema".to_owned())
        }
        K::Type { kind } => {
            let types: Vec<String> = match kind {
                TypeKind::Single(one) => vec![one.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            (at.clone(), format!("is not of type {}", types.join(" or ")))
        }
        K::Enum { .. } => (at.clone(), "is not one of the allowed values".to_owned()),
        K::Constant { .. } => (at.clone(), "is not the required value".to_owned()),
        K::MaxLength { limit } => (at.clone(), format!("is longer than {limit} characters")),
        K::MinLength { limit } => (at.clone(), format!("is shorter than {limit} characters")),
        K::Minimum { limit } => (at.clone(), format!("is less than {limit}")),
        K::Maximum { limit } => (at.clone(), format!("is greater than {limit}")),
        K::ExclusiveMinimum { limit } => (at.clone(), format!("is not greater than {limit}")),
        K::ExclusiveMaximum { limit } => (at.clone(), format!("is not less than {limit}")),
        K::MultipleOf { multiple_of } => {
            (at.clone(), format!("is not a multiple of {multiple_of}"))
        }
        K::Pattern { .. } => (at.clone(), "does not match the pattern".to_owned()),
        K::Format { format } if format == "date-time" => (
            at.clone(),
            "is not an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)".to_owned(),
        ),
        K::Format { format } => (at.clone(), format!("is not a valid {format}")),
        K::MinItems { limit } => (at.clone(), format!("has fewer than {limit} items")),
        K::MaxItems { limit } => (at.clone(), format!("has more than {limit} items")),
        _ => (at.clone(), "does not match the schema".to_owned()),
    };
    format!("{} {what} ({})", quote_pointer(&field), keyword(error))
}

/// The schema keyword that failed: the last segment of its schema path.
fn keyword<'e>(error: &'e ValidationError<'_>) -> &'e str {
    let path = error.schema_path.as_str();
    path.rsplit('/').next().unwrap_or(path)
}

/// The pointer as a JSON string (quotes, backslashes and control characters escaped), cut
/// with an ellipsis once the escaped text would pass [`MAX_POINTER_CHARS`].
fn quote_pointer(pointer: &Location) -> String {
    let mut quoted = String::from("\"");
    let mut chars = 0;
    for c in pointer.as_str().chars() {
        let escaped = match c {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() => format!("\\u{:04x}", u32::from(c)),
            c => c.to_string(),
        };
        chars += escaped.chars().count();
        if chars > MAX_POINTER_CHARS {
            quoted.push('…');
            break;
        }
        quoted.push_str(&escaped);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VERSIONS: [Version; 2] = [Version::V16, Version::V201];

    fn code(version: Version, action: &str, payload: Value) -> ErrorCode {
        match validate(version, action, &payload) {
            Ok(()) => panic!("{action} {payload} passed"),
            Err(violation) => violation.code,
        }
    }

    fn valid_16() -> Vec<(&'static str, Value)> {
        let meter_value = json!({
            "timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [
                {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"}
            ]
        });
        vec![
            ("Authorize", json!({"idTag": "TAG"})),
            (
                "BootNotification",
                json!({"chargePointVendor": "V", "chargePointModel": "M"}),
            ),
            (
                "BootNotification",
                json!({
                    "chargePointVendor": "VendorX",
                    "chargePointModel": "SingleSocketCharger",
                    "chargePointSerialNumber": "SN-1",
                    "firmwareVersion": "1.0.3",
                    "iccid": "",
                    "meterType": "AC",
                }),
            ),
            (
                "DataTransfer",
                json!({"vendorId": "com.example", "messageId": "m", "data": "{\"a\":1}"}),
            ),
            ("Heartbeat", json!({})),
            (
                "MeterValues",
                json!({"connectorId": 1, "transactionId": 7, "meterValue": [meter_value.clone()]}),
            ),
            (
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                       "timestamp": "2026-01-01T00:00:00Z"}),
            ),
            (
                "StartTransaction",
                json!({"connectorId": 2, "idTag": "TAG", "meterStart": 12, "reservationId": 3,
                       "timestamp": "2026-01-01T00:00:00.123+02:00"}),
            ),
            (
                "StatusNotification",
                json!({"connectorId": 0, "errorCode": "NoError", "status": "Available",
                       "timestamp": "2026-01-01T00:00:00Z"}),
            ),
            (
                "StopTransaction",
                json!({"transactionId": 7, "meterStop": 1500, "timestamp": "2026-01-01T01:00:00Z",
                       "idTag": "TAG", "reason": "Local", "transactionData": [meter_value]}),
            ),
        ]
    }

    fn valid_201() -> Vec<(&'static str, Value)> {
        let meter_value = json!({
            "timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [
                {"value": 1234.5, "measurand": "Energy.Active.Import.Register",
                 "unitOfMeasure": {"unit": "Wh"}}
            ]
        });
        vec![
            (
                "Authorize",
                json!({"idToken": {"idToken": "TAG", "type": "ISO14443"}}),
            ),
            (
                "BootNotification",
                json!({"reason": "PowerUp",
                       "chargingStation": {"model": "M", "vendorName": "V"}}),
            ),
            ("Heartbeat", json!({})),
            (
                "MeterValues",
                json!({"evseId": 1, "meterValue": [meter_value.clone()]}),
            ),
            (
                "StatusNotification",
                json!({"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available",
                       "evseId": 1, "connectorId": 1}),
            ),
            (
                "TransactionEvent",
                json!({"eventType": "Started", "timestamp": "2026-01-01T00:00:00Z",
                       "triggerReason": "Authorized", "seqNo": 0,
                       "transactionInfo": {"transactionId": "tx-1"}}),
            ),
            (
                "TransactionEvent",
                json!({"eventType": "Ended", "timestamp": "2026-01-01T01:00:00Z",
                       "triggerReason": "StopAuthorized", "seqNo": 3, "offline": false,
                       "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "Local"},
                       "idToken": {"idToken": "TAG", "type": "ISO14443"},
                       "evse": {"id": 1, "connectorId": 1}, "meterValue": [meter_value]}),
            ),
        ]
    }

    #[test]
    fn every_schema_compiles_and_is_known() {
        for (version, schemas) in [(Version::V16, &V16[..]), (Version::V201, &V201[..])] {
            assert_eq!(validators(version).len(), schemas.len());
            for (action, _) in schemas {
                assert!(knows(version, action), "{action}");
            }
        }
    }

    #[test]
    fn valid_payloads_pass() {
        for (version, payloads) in [(Version::V16, valid_16()), (Version::V201, valid_201())] {
            for (action, payload) in payloads {
                assert_eq!(
                    validate(version, action, &payload),
                    Ok(()),
                    "{action} {payload}"
                );
            }
        }
        // Every vendored action has at least one valid payload above.
        for (version, schemas, payloads) in [
            (Version::V16, &V16[..], valid_16()),
            (Version::V201, &V201[..], valid_201()),
        ] {
            for (action, _) in schemas {
                assert!(
                    payloads.iter().any(|(a, _)| a == action),
                    "{version:?} {action}"
                );
            }
        }
    }

    #[test]
    fn knows_only_the_vendored_uplink_actions() {
        for version in VERSIONS {
            for action in ["BootNotification", "Heartbeat", "Authorize", "MeterValues"] {
                assert!(knows(version, action), "{version:?} {action}");
            }
            for action in [
                "",
                "bootnotification",
                "BootNotificationRequest",
                "RemoteStartTransaction",
                "Reset",
                "FirmwareStatusNotification",
            ] {
                assert!(!knows(version, action), "{version:?} {action:?}");
            }
        }
        for action in ["StartTransaction", "StopTransaction", "DataTransfer"] {
            assert!(knows(Version::V16, action));
            assert!(!knows(Version::V201, action));
        }
        assert!(knows(Version::V201, "TransactionEvent"));
        assert!(!knows(Version::V16, "TransactionEvent"));
    }

    #[test]
    fn an_unknown_action_validates_ok() {
        for version in VERSIONS {
            for payload in [json!({}), json!({"anything": [1, 2]}), json!(null)] {
                assert_eq!(validate(version, "Reset", &payload), Ok(()));
                assert_eq!(validate(version, "NoSuchAction", &payload), Ok(()));
            }
        }
        // DataTransfer has no 2.0.1 schema vendored.
        assert_eq!(
            validate(Version::V201, "DataTransfer", &json!({"x": 1})),
            Ok(())
        );
    }

    #[test]
    fn missing_field_is_occurrence() {
        let violation = validate(
            Version::V16,
            "BootNotification",
            &json!({"chargePointVendor": "V"}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::Occurrence);
        assert_eq!(
            violation.description,
            r#""/chargePointModel" is required but missing (required)"#
        );
        assert_eq!(
            violation.code.name(Version::V16),
            "OccurenceConstraintViolation"
        );
        let violation = validate(
            Version::V201,
            "TransactionEvent",
            &json!({"eventType": "Started", "timestamp": "2026-01-01T00:00:00Z",
                    "triggerReason": "Authorized", "seqNo": 0, "transactionInfo": {}}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::Occurrence);
        assert!(
            violation
                .description
                .starts_with(r#""/transactionInfo/transactionId" is required"#),
            "{violation}"
        );
        // An empty array where the schema wants at least one item.
        assert_eq!(
            code(
                Version::V201,
                "MeterValues",
                json!({"evseId": 1, "meterValue": []})
            ),
            ErrorCode::Occurrence
        );
    }

    #[test]
    fn wrong_type_is_type_constraint() {
        let violation = validate(
            Version::V16,
            "StartTransaction",
            &json!({"connectorId": "1", "idTag": "TAG", "meterStart": 0,
                    "timestamp": "2026-01-01T00:00:00Z"}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::TypeConstraint);
        assert_eq!(
            violation.description,
            r#""/connectorId" is not of type integer (type)"#
        );
        assert_eq!(
            code(Version::V16, "Heartbeat", json!("not an object")),
            ErrorCode::TypeConstraint
        );
        // Draft-04 integers have no fractional part, not even a zero one (draft-06 allows 1.0).
        assert_eq!(
            code(
                Version::V16,
                "StartTransaction",
                json!({"connectorId": 1.0, "idTag": "TAG", "meterStart": 0,
                       "timestamp": "2026-01-01T00:00:00Z"})
            ),
            ErrorCode::TypeConstraint
        );
        assert_eq!(
            code(
                Version::V201,
                "StatusNotification",
                json!({"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available",
                       "evseId": 1.5, "connectorId": 1})
            ),
            ErrorCode::TypeConstraint
        );
    }

    #[test]
    fn bad_enum_value_is_property_constraint() {
        let violation = validate(
            Version::V16,
            "StatusNotification",
            &json!({"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::PropertyConstraint);
        assert_eq!(
            violation.description,
            r#""/status" is not one of the allowed values (enum)"#
        );
        assert_eq!(
            code(
                Version::V201,
                "BootNotification",
                json!({"reason": "Bored", "chargingStation": {"model": "M", "vendorName": "V"}})
            ),
            ErrorCode::PropertyConstraint
        );
    }

    #[test]
    fn too_long_string_is_property_constraint() {
        let violation = validate(
            Version::V16,
            "BootNotification",
            &json!({"chargePointVendor": "V".repeat(21), "chargePointModel": "M"}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::PropertyConstraint);
        assert_eq!(
            violation.description,
            r#""/chargePointVendor" is longer than 20 characters (maxLength)"#
        );
        // 20 characters, multi-byte ones included, are fine.
        let payload = json!({"chargePointVendor": "é".repeat(20), "chargePointModel": "M"});
        assert_eq!(validate(Version::V16, "BootNotification", &payload), Ok(()));
        assert_eq!(
            code(
                Version::V201,
                "Authorize",
                json!({"idToken": {"idToken": "T".repeat(37), "type": "ISO14443"}})
            ),
            ErrorCode::PropertyConstraint
        );
    }

    #[test]
    fn additional_property_is_format() {
        let violation = validate(Version::V16, "Heartbeat", &json!({"b": 1, "a": 2})).unwrap_err();
        assert_eq!(violation.code, ErrorCode::Format);
        assert_eq!(
            violation.description,
            r#""/a" is not allowed by the schema (additionalProperties)"#
        );
        assert_eq!(violation.code.name(Version::V16), "FormationViolation");
        let violation = validate(
            Version::V201,
            "BootNotification",
            &json!({"reason": "PowerUp",
                    "chargingStation": {"model": "M", "vendorName": "V", "colour": "red"}}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::Format);
        assert_eq!(
            violation.description,
            r#""/chargingStation/colour" is not allowed by the schema (additionalProperties)"#
        );
        assert_eq!(violation.code.name(Version::V201), "FormatViolation");
    }

    #[test]
    fn bad_date_time_is_property_constraint() {
        for timestamp in [
            "yesterday",
            "",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
            // RFC 3339 wants the offset.
            "2026-01-01T00:00:00",
        ] {
            let violation = validate(
                Version::V16,
                "StartTransaction",
                &json!({"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                        "timestamp": timestamp}),
            )
            .unwrap_err();
            assert_eq!(violation.code, ErrorCode::PropertyConstraint, "{timestamp}");
            assert!(
                violation
                    .description
                    .starts_with(r#""/timestamp" is not an RFC 3339"#),
                "{violation}"
            );
            assert!(violation.description.ends_with("(format)"), "{violation}");
        }
        // customData allows any other property, and checks no format in it.
        let payload = json!({"customData": {"vendorId": "v", "when": "yesterday"}});
        assert_eq!(validate(Version::V201, "Heartbeat", &payload), Ok(()));
        let violation = validate(
            Version::V201,
            "TransactionEvent",
            &json!({"eventType": "Started", "timestamp": "yesterday",
                    "triggerReason": "Authorized", "seqNo": 0,
                    "transactionInfo": {"transactionId": "tx-1"}}),
        )
        .unwrap_err();
        assert_eq!(violation.code, ErrorCode::PropertyConstraint);
    }

    #[test]
    fn the_first_violation_is_reported_in_a_fixed_order() {
        // Unexpected property, missing field (both on the payload) and a wrong type deeper down:
        // the payload's level first, then the schema path ("additionalProperties" < "required").
        let payload = json!({"chargePointVendor": 5, "x": 1});
        for _ in 0..20 {
            let violation = validate(Version::V16, "BootNotification", &payload).unwrap_err();
            assert_eq!(violation.code, ErrorCode::Format, "{violation}");
            assert_eq!(
                violation.description,
                r#""/x" is not allowed by the schema (additionalProperties)"#
            );
        }
        let payload = json!({"chargePointVendor": 5});
        let violation = validate(Version::V16, "BootNotification", &payload).unwrap_err();
        assert_eq!(violation.code, ErrorCode::Occurrence, "{violation}");
    }

    #[test]
    fn below_the_payload_level_the_first_violation_met_is_reported() {
        // Two bad meter values: the first one's fault is reported, whatever the second's.
        let meter_value =
            |sampled: Value| json!({"timestamp": "2026-01-01T00:00:00Z", "sampledValue": sampled});
        let payload = json!({"connectorId": 1, "meterValue": [
            meter_value(json!([{"value": 5}])),
            meter_value(json!([])),
        ]});
        let violation = validate(Version::V16, "MeterValues", &payload).unwrap_err();
        assert_eq!(violation.code, ErrorCode::TypeConstraint, "{violation}");
        assert_eq!(
            violation.description,
            r#""/meterValue/0/sampledValue/0/value" is not of type string (type)"#
        );
        // A wrong type at the payload's level comes before any deeper fault.
        let payload =
            json!({"connectorId": "one", "meterValue": [meter_value(json!([{"value": 5}]))]});
        let violation = validate(Version::V16, "MeterValues", &payload).unwrap_err();
        assert_eq!(
            violation.description,
            r#""/connectorId" is not of type integer (type)"#
        );
    }

    #[test]
    fn half_a_million_wrong_items_cost_one_violation() {
        let items = vec![json!(0); 500_000];
        let payload = json!({"connectorId": 1, "meterValue": [
            {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": items}
        ]});
        let started = std::time::Instant::now();
        let violation = validate(Version::V16, "MeterValues", &payload).unwrap_err();
        let took = started.elapsed();
        assert_eq!(violation.code, ErrorCode::TypeConstraint, "{violation}");
        assert!(violation
            .description
            .starts_with(r#""/meterValue/0/sampledValue/0" "#));
        // Walking every violation took seconds in a debug build; the first one, microseconds.
        assert!(took < std::time::Duration::from_millis(100), "{took:?}");
    }

    #[test]
    fn descriptions_stay_short_and_escaped() {
        let key = "k/~\n".repeat(200);
        let violation = validate(Version::V16, "Heartbeat", &json!({ key: 1 })).unwrap_err();
        assert_eq!(violation.code, ErrorCode::Format);
        assert!(violation.description.chars().count() <= 255, "{violation}");
        assert!(
            violation.description.starts_with(r#""/k~1~0\nk~1~0\n"#),
            "{violation}"
        );
        assert!(!violation.description.contains('\n'));
        // Escapes count towards the cut: a key of control characters stays short too.
        let key = "\u{1}\"\\".repeat(200);
        let violation = validate(Version::V201, "Heartbeat", &json!({ key: 1 })).unwrap_err();
        assert!(violation.description.chars().count() <= 255, "{violation}");
        assert!(
            violation.description.starts_with(r#""/\u0001\"\\\u0001"#),
            "{violation}"
        );
        assert!(
            violation
                .description
                .ends_with(r#"…" is not allowed by the schema (additionalProperties)"#),
            "{violation}"
        );
    }

    #[test]
    fn violation_codes_are_spelled_for_each_version() {
        for version in VERSIONS {
            let violation = validate(version, "Heartbeat", &json!({"x": 1})).unwrap_err();
            assert_eq!(
                ErrorCode::parse(violation.code.name(version), version),
                Some(violation.code)
            );
            assert_eq!(violation.to_string(), violation.description);
        }
    }
}
