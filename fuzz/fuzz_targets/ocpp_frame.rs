// Checks that the OCPP-J framing never panics: any input is parsed by `frame::parse` (bytes that
// are not UTF-8 are cut to their valid start, as a text frame could never carry them). A frame
// that parses has a payload text that is a JSON object, and is written back and parses to the
// same frame; a refused one gets a CALLERROR
// (under its id, or "-1") that parses as one, with the code spelled for the version. A CALL of an
// action with a vendored schema is validated by `schema::validate`: it never panics, and a refusal
// has a short description and a code whose spelling for the version parses back. A CALL that
// passes is answered by the embedded central system (`central::answer`), whose answer is an
// object, and what it taught is applied to a `Station`, whose JSON view is written: no panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::services::ocpp::central::{self, BootStatus, Policy, TransactionIds};
use ringgate::services::ocpp::errors::{ErrorCode, Version};
use ringgate::services::ocpp::frame::{
    encode_call, encode_error, encode_result, parse, Frame, FrameError, MessageType, MAX_MESSAGE_ID,
};
use ringgate::services::ocpp::schema;
use ringgate::services::ocpp::station::Station;

/// The items a message may hold: `OCPP_MAX_MESSAGE_ITEMS`'s default.
const MAX_ITEMS: usize = 10_000;

/// `text` parsed as the gateway does; a parsed message's payload text parses to an object.
fn frame_of(text: &str, scratch: &mut Vec<u8>) -> Result<Frame, FrameError> {
    let parsed = parse(text, scratch, MAX_ITEMS)?;
    let payload: serde_json::Value =
        serde_json::from_str(parsed.payload_text).expect("the payload text is JSON");
    assert!(payload.is_object(), "{}", parsed.payload_text);
    Ok(parsed.frame)
}

// Input layout: [version, text...]; the low bit of `version` picks ocpp1.6 (0) or ocpp2.0.1 (1).
fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 {
        Version::V16
    } else {
        Version::V201
    };
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid_up_to is valid"),
    };
    let mut scratch = Vec::new();
    let frame = match frame_of(text, &mut scratch) {
        Ok(frame) => frame,
        Err(e) => {
            let id = e.id.as_deref().unwrap_or("-1");
            let reply = encode_error(id, e.code, version, &e.description, &serde_json::json!({}));
            // An echoed id may be the very problem (empty or too long): then the reply is
            // refused for it in turn, still under that id.
            let id_ok = !id.is_empty() && id.chars().count() <= MAX_MESSAGE_ID;
            match frame_of(&reply, &mut scratch) {
                Ok(Frame::CallError {
                    id: got,
                    code,
                    description,
                    details,
                }) => {
                    assert!(id_ok, "{reply}");
                    assert_eq!(got, id);
                    assert_eq!(code, e.code.name(version));
                    assert_eq!(
                        ErrorCode::parse(&code, version).map(|c| c.name(version)),
                        Some(e.code.name(version))
                    );
                    assert_eq!(description, e.description);
                    assert_eq!(details, serde_json::json!({}));
                }
                Ok(other) => panic!("{reply} parsed as {other:?}"),
                Err(again) => {
                    assert!(!id_ok, "{reply}: {again:?}");
                    assert_eq!(again.id.as_deref(), Some(id));
                    assert_eq!(again.message_type, Some(MessageType::CallError));
                    assert_eq!(again.code, ErrorCode::Format);
                }
            }
            return;
        }
    };
    // Parsing again with the scratch buffer reused gives the same frame.
    assert_eq!(frame_of(text, &mut scratch).as_ref(), Ok(&frame));

    if let Frame::Call {
        action, payload, ..
    } = &frame
    {
        if schema::knows(version, action) {
            if let Err(violation) = schema::validate(version, action, payload) {
                let name = violation.code.name(version);
                assert_eq!(
                    ErrorCode::parse(name, version).map(|c| c.name(version)),
                    Some(name)
                );
                assert!(!violation.description.is_empty());
                // OCPP 2.0.1 caps an errorDescription at 255 characters.
                assert!(
                    violation.description.chars().count() <= 255,
                    "{}",
                    violation.description
                );
                // The reply carrying it parses as a CALLERROR with that code.
                let reply = encode_error(
                    "1",
                    violation.code,
                    version,
                    &violation.description,
                    &serde_json::json!({}),
                );
                let Ok(Frame::CallError { code, .. }) = frame_of(&reply, &mut scratch) else {
                    panic!("{reply}");
                };
                assert_eq!(code, name);
            } else {
                answer_as_central_system(version, action, payload);
            }
        } else {
            assert_eq!(schema::validate(version, action, payload), Ok(()));
        }
    }

    let encoded = match &frame {
        Frame::Call {
            id,
            action,
            payload,
        } => encode_call(id, action, payload),
        Frame::CallResult { id, payload } => encode_result(id, payload),
        // The code is kept as sent, which `encode_error` (taking an `ErrorCode`) cannot write.
        Frame::CallError {
            id,
            code,
            description,
            details,
        } => serde_json::json!([4, id, code, description, details]).to_string(),
    };
    assert_eq!(
        frame_of(&encoded, &mut scratch).as_ref(),
        Ok(&frame),
        "{encoded}"
    );
    if let Frame::CallError {
        id,
        code,
        description,
        details,
    } = &frame
    {
        if let Some(known) = ErrorCode::parse(code, version) {
            let reply = encode_error(id, known, version, description, details);
            let Ok(Frame::CallError { code: written, .. }) = frame_of(&reply, &mut scratch) else {
                panic!("{reply}");
            };
            assert_eq!(written, known.name(version));
        }
    }
});

/// The embedded central system answers a schema-valid CALL with an object (or refuses it), and
/// a station learns what it taught.
fn answer_as_central_system(version: Version, action: &str, payload: &serde_json::Value) {
    let policy = Policy {
        boot_status: BootStatus::Accepted,
        heartbeat_interval: std::time::Duration::from_secs(300),
        id_tags: ["TAG".to_owned()].into_iter().collect(),
    };
    let now = std::time::SystemTime::now();
    match central::answer(
        version,
        action,
        payload,
        &policy,
        &TransactionIds::new(),
        now,
    ) {
        Ok(answer) => {
            assert!(answer.payload.is_object(), "{action}: {}", answer.payload);
            let mut station = Station::new("fuzz");
            station.connected(version, None, now);
            if let Some(update) = &answer.update {
                station.apply(update, now);
            }
            assert!(station.to_json().is_object());
        }
        Err(refusal) => assert!(!refusal.description.is_empty()),
    }
}
