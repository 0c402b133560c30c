//! OCPP-J RPC framing, sans-IO: parses one text message into a [`Frame`] (CALL, CALLRESULT,
//! CALLERROR) and its payload's text, or a [`FrameError`] naming the CALLERROR code it deserves
//! and the id to answer under, and writes frames. It never looks inside a payload beyond "is an
//! object", knows actions only as names, and never answers anything itself.

use serde_json::Value;

use super::errors::{ErrorCode, Version};
use super::rawjson::{self, Exceeded, Limits, Shape};

/// Longest message id, in characters (both versions: `string[36]`).
pub const MAX_MESSAGE_ID: usize = 36;

/// Longest action name, in ASCII letters and digits (OCPP's longest is 32).
pub const MAX_ACTION: usize = 64;

/// Longest id, in characters, a [`FrameError`] echoes when the id itself is what is wrong
/// (empty or over [`MAX_MESSAGE_ID`]): enough for the sender to match the CALLERROR to its
/// call, bounded so a reply and a log line stay small.
const MAX_ECHOED_ID: usize = 128;

/// Deepest nesting of arrays and objects (the frame's array counts as one). simd-json and
/// serde build values recursively, and a `Value` drops recursively; OCPP's deepest payloads
/// (charging profiles) nest under ten levels.
const MAX_DEPTH: usize = 64;

/// The three message types; the discriminant is the MessageTypeId on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Call = 2,
    CallResult = 3,
    CallError = 4,
}

impl MessageType {
    /// Where the payload (CALL, CALLRESULT) or the details (CALLERROR) is in the array.
    fn payload_index(self) -> usize {
        match self {
            MessageType::Call => 3,
            MessageType::CallResult => 2,
            MessageType::CallError => 4,
        }
    }
}

/// A well-formed OCPP-J message. Payloads and error details are JSON objects; the id is
/// 1..=36 characters; a CALLERROR's code is kept as sent (see [`ErrorCode::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    CallResult {
        id: String,
        payload: Value,
    },
    CallError {
        id: String,
        code: String,
        description: String,
        details: Value,
    },
}

/// A [`Frame`] and the text of its payload (a CALLERROR's details) as the message held it,
/// from its first byte to its last: what an event passes on, with no second encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'t> {
    pub frame: Frame,
    pub payload_text: &'t str,
}

/// Why a frame was refused, and the id to answer under when one could be read.
///
/// `id` is the frame's element 1 when it is a string of at most 128 characters, even when that
/// string is the problem (empty, or over 36 characters): echoing it lets the sender match the
/// error to its call. It is `None` when the text is not JSON (or nests too deep), is not an
/// array, or element 1 is absent or not a string: the caller then logs the frame, and may answer
/// under `"-1"`, which OCPP 2.0.1 part 4 provides for an unreadable id (1.6 has no rule).
///
/// `message_type` is set when element 0 is 2, 3 or 4. The caller answers only a refused CALL
/// (or a frame of unknown type) with a CALLERROR: nobody waits for an answer to a CALLRESULT or
/// a CALLERROR, and two peers could bounce errors forever; a refused response's id tells the
/// caller which of its own calls failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct FrameError {
    pub id: Option<String>,
    pub message_type: Option<MessageType>,
    pub code: ErrorCode,
    pub description: String,
}

/// Whether `action` is an action name: 1 to [`MAX_ACTION`] ASCII letters and digits, as every
/// OCPP action is.
pub fn is_action_name(action: &str) -> bool {
    (1..=MAX_ACTION).contains(&action.len()) && action.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Parses one text message holding at most `max_items` items (array elements and object members,
/// all levels together, the frame's own elements included). The text is scanned first
/// ([`rawjson::scan`]): a message nested too deep or holding too many items is refused before
/// any value is built, so its cost to the shard is that of the scan up to the limit. simd-json
/// parses in place, so `text` is then copied into `scratch` (cleared first), which the caller
/// reuses across calls. Whitespace around the array is allowed; numbers are kept as simd-json
/// reads them (integers within i64/u64 exactly, floats as the nearest f64; beyond u64 or f64 the
/// text is refused as not JSON). A key repeated in one object keeps its last value.
///
/// The codes (spelled per version by [`encode_error`]): `Format` for text that is not JSON or
/// nests too deep, an empty or too long id, and a payload or details that is not an object;
/// `Occurrence` for more than `max_items` items (answered under the id when elements 0 and 1,
/// which come before the bulk, can be read on their own); `RpcFramework` for JSON that is not an
/// RPC message (not an array, no message type number, an id that is not a string, the wrong
/// number of elements, an action, code or description that is not a string);
/// `MessageTypeNotSupported` for a type number other than 2, 3 or 4.
pub fn parse<'t>(
    text: &'t str,
    scratch: &mut Vec<u8>,
    max_items: usize,
) -> Result<Parsed<'t>, FrameError> {
    let unreadable = |code, description: String| FrameError {
        id: None,
        message_type: None,
        code,
        description,
    };
    let limits = Limits {
        depth: MAX_DEPTH,
        items: max_items,
    };
    let shape = rawjson::scan(text.as_bytes(), limits);
    match shape.exceeded {
        Some(Exceeded::Depth) => {
            return Err(unreadable(
                ErrorCode::Format,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ))
        }
        Some(Exceeded::Items) => return Err(too_many_items(text, &shape, max_items)),
        None => {}
    }
    scratch.clear();
    scratch.extend_from_slice(text.as_bytes());
    // Through serde rather than simd-json's own values, whose objects keep a repeated key
    // twice and iterate in hash order: serde_json's map keeps the last value, as it would.
    let value: Value = simd_json::serde::from_slice(scratch)
        .map_err(|e| unreadable(ErrorCode::Format, format!("not JSON: {e}")))?;
    let Value::Array(mut elements) = value else {
        return Err(unreadable(
            ErrorCode::RpcFramework,
            "a message must be a JSON array".to_owned(),
        ));
    };

    let type_number = type_number(elements.first());
    let id = match elements.get_mut(1).map(Value::take) {
        Some(Value::String(id)) => Ok(id),
        Some(_) => Err("the message id must be a string"),
        None => Err("the message has no id"),
    };
    let echoed_id = id.as_ref().ok().and_then(|id| echoed(id));
    let known_type = known(type_number);
    let refuse = |code, description: String| FrameError {
        id: echoed_id.clone(),
        message_type: known_type,
        code,
        description,
    };

    let Some(message_type) = known_type else {
        return Err(match type_number {
            Ok(n) => refuse(
                ErrorCode::MessageTypeNotSupported,
                format!("message type id {n} is not 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR)"),
            ),
            Err(description) => refuse(ErrorCode::RpcFramework, description.to_owned()),
        });
    };
    let id = id.map_err(|description| refuse(ErrorCode::RpcFramework, description.to_owned()))?;
    match id.chars().count() {
        0 => {
            return Err(refuse(
                ErrorCode::Format,
                "the message id is empty".to_owned(),
            ))
        }
        n if n > MAX_MESSAGE_ID => {
            return Err(refuse(
                ErrorCode::Format,
                format!("the message id is longer than {MAX_MESSAGE_ID} characters"),
            ))
        }
        _ => {}
    }

    let length = elements.len();
    let wrong_length = |name: &str, expected: usize| {
        refuse(
            ErrorCode::RpcFramework,
            format!("{name} has {expected} elements, not {length}"),
        )
    };
    let frame = match message_type {
        MessageType::Call => {
            let [_, _, action, payload] =
                exactly(elements).ok_or_else(|| wrong_length("a CALL", 4))?;
            let action = string(action).ok_or_else(|| {
                refuse(
                    ErrorCode::RpcFramework,
                    "the action must be a string".to_owned(),
                )
            })?;
            let payload = object(payload).ok_or_else(|| {
                refuse(
                    ErrorCode::Format,
                    "a CALL payload must be a JSON object".to_owned(),
                )
            })?;
            Frame::Call {
                id,
                action,
                payload,
            }
        }
        MessageType::CallResult => {
            let [_, _, payload] =
                exactly(elements).ok_or_else(|| wrong_length("a CALLRESULT", 3))?;
            let payload = object(payload).ok_or_else(|| {
                refuse(
                    ErrorCode::Format,
                    "a CALLRESULT payload must be a JSON object".to_owned(),
                )
            })?;
            Frame::CallResult { id, payload }
        }
        MessageType::CallError => {
            let [_, _, code, description, details] =
                exactly(elements).ok_or_else(|| wrong_length("a CALLERROR", 5))?;
            let code = string(code).ok_or_else(|| {
                refuse(
                    ErrorCode::RpcFramework,
                    "the error code must be a string".to_owned(),
                )
            })?;
            let description = string(description).ok_or_else(|| {
                refuse(
                    ErrorCode::RpcFramework,
                    "the error description must be a string".to_owned(),
                )
            })?;
            let details = object(details).ok_or_else(|| {
                refuse(
                    ErrorCode::Format,
                    "the error details must be a JSON object".to_owned(),
                )
            })?;
            Frame::CallError {
                id,
                code,
                description,
                details,
            }
        }
    };
    // The scan found every element of the array the parser accepted.
    let payload_text = shape
        .elements
        .get(message_type.payload_index())
        .map(|at| &text[at.clone()])
        .ok_or_else(|| unreadable(ErrorCode::Format, "not JSON".to_owned()))?;
    Ok(Parsed {
        frame,
        payload_text,
    })
}

/// The refusal of a message holding more than `max` items, which was not parsed: elements 0 and
/// 1 are read on their own when the scan saw them end, to answer under the id.
fn too_many_items(text: &str, shape: &Shape, max: usize) -> FrameError {
    let element = |n: usize| -> Option<Value> {
        let at = shape.elements.get(n)?;
        serde_json::from_str(&text[at.clone()]).ok()
    };
    let id = match element(1) {
        Some(Value::String(id)) => echoed(&id),
        _ => None,
    };
    FrameError {
        id,
        message_type: known(type_number(element(0).as_ref())),
        code: ErrorCode::Occurrence,
        description: format!(
            "the message holds more than {max} items (array elements and object members)"
        ),
    }
}

/// Element 0 as a number, or what is wrong with it.
fn type_number(first: Option<&Value>) -> Result<i128, &'static str> {
    match first {
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(n), _) => Ok(i128::from(n)),
            (None, Some(n)) => Ok(i128::from(n)),
            (None, None) => Err("the message type id must be an integer"),
        },
        Some(_) => Err("the message type id must be an integer"),
        None => Err("the array is empty"),
    }
}

fn known(type_number: Result<i128, &str>) -> Option<MessageType> {
    match type_number {
        Ok(2) => Some(MessageType::Call),
        Ok(3) => Some(MessageType::CallResult),
        Ok(4) => Some(MessageType::CallError),
        _ => None,
    }
}

/// `id`, when it is short enough to echo in a [`FrameError`].
fn echoed(id: &str) -> Option<String> {
    (id.chars().count() <= MAX_ECHOED_ID).then(|| id.to_owned())
}

/// `[2,id,action,payload]`, compact. The payload should be an object: [`parse`] refuses
/// anything else.
pub fn encode_call(id: &str, action: &str, payload: &Value) -> String {
    encode(&(MessageType::Call as u8, id, action, payload))
}

/// `[3,id,payload]`, compact. The payload should be an object: [`parse`] refuses anything else.
pub fn encode_result(id: &str, payload: &Value) -> String {
    encode(&(MessageType::CallResult as u8, id, payload))
}

/// `[4,id,code,description,details]`, compact, with `code` spelled for `version`. The details
/// should be an object (`{}` when there are none). The id is written as given: `"-1"` answers a
/// frame whose id could not be read (OCPP 2.0.1).
pub fn encode_error(
    id: &str,
    code: ErrorCode,
    version: Version,
    description: &str,
    details: &Value,
) -> String {
    encode(&(
        MessageType::CallError as u8,
        id,
        code.name(version),
        description,
        details,
    ))
}

fn encode(frame: &impl serde::Serialize) -> String {
    serde_json::to_string(frame).expect("integers, strings and JSON values always serialize")
}

/// The elements, when there are exactly `N` of them.
fn exactly<const N: usize>(elements: Vec<Value>) -> Option<[Value; N]> {
    elements.try_into().ok()
}

fn string(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn object(value: Value) -> Option<Value> {
    value.is_object().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VERSIONS: [Version; 2] = [Version::V16, Version::V201];

    /// More items than any test message holds.
    const ITEMS: usize = 100_000;

    fn parsed(text: &str) -> Frame {
        match parse(text, &mut Vec::new(), ITEMS) {
            Ok(parsed) => parsed.frame,
            Err(e) => panic!("{text}: {e:?}"),
        }
    }

    fn refused(text: &str) -> FrameError {
        match parse(text, &mut Vec::new(), ITEMS) {
            Ok(parsed) => panic!("{text}: parsed as {:?}", parsed.frame),
            Err(e) => e,
        }
    }

    /// Checks the code, the echoed id and the message type of each refused text.
    fn assert_refused(
        cases: &[&str],
        code: ErrorCode,
        id: Option<&str>,
        message_type: Option<MessageType>,
    ) {
        for text in cases {
            let e = refused(text);
            assert_eq!(
                (e.code, e.id.as_deref(), e.message_type),
                (code, id, message_type),
                "{text}: {e:?}"
            );
            assert!(!e.description.is_empty());
            assert_eq!(e.to_string(), e.description);
        }
    }

    fn call(id: &str, action: &str, payload: Value) -> Frame {
        Frame::Call {
            id: id.into(),
            action: action.into(),
            payload,
        }
    }

    #[test]
    fn each_message_type() {
        assert_eq!(
            parsed(
                r#"[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}]"#
            ),
            call(
                "19223201",
                "BootNotification",
                json!({"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"})
            )
        );
        assert_eq!(
            parsed(
                r#"[3,"19223201",{"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]"#
            ),
            Frame::CallResult {
                id: "19223201".into(),
                payload: json!({"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z", "interval": 300}),
            }
        );
        assert_eq!(
            parsed(
                r#"[4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}]"#
            ),
            Frame::CallError {
                id: "162376037".into(),
                code: "NotSupported".into(),
                description: "SetDisplayMessageRequest not implemented".into(),
                details: json!({}),
            }
        );
        // Empty payloads, and a CALLERROR code is kept as sent, known or not.
        assert_eq!(
            parsed(r#"[2,"a","Heartbeat",{}]"#),
            call("a", "Heartbeat", json!({}))
        );
        let Frame::CallError { code, .. } = parsed(r#"[4,"a","NoSuchCode","",{"x":[1]}]"#) else {
            panic!("expected a CALLERROR");
        };
        assert_eq!(code, "NoSuchCode");
    }

    #[test]
    fn whitespace_around_and_inside_the_array() {
        let text = " \r\n\t[ 2 ,\n \"a\" ,\t\"Heartbeat\" , { } ]\n\n ";
        assert_eq!(parsed(text), call("a", "Heartbeat", json!({})));
        assert_eq!(
            parsed("\n[3,\"a\",{\"k\" : [ 1 , 2 ]}]  "),
            Frame::CallResult {
                id: "a".into(),
                payload: json!({"k": [1, 2]}),
            }
        );
    }

    #[test]
    fn not_json_has_no_id() {
        assert_refused(
            &[
                "",
                "   ",
                "[",
                "[2,\"a\",\"Heartbeat\",{}",
                "[2,\"a\",\"Heartbeat\",{}] x",
                "[2,\"a\",\"Heartbeat\",{}][]",
                "[2,'a','Heartbeat',{}]",
                "[2,\"a\",\"Heartbeat\",{},]",
                "[2,\"a\",\"Heartbeat\",{\"x\":NaN}]",
                "[2,\"a\u{1}\",\"Heartbeat\",{}]",
                "[2,\"a\",\"Heartbeat\",{\"n\":18446744073709551616}]",
                "[2,\"a\",\"Heartbeat\",{\"n\":1e400}]",
            ],
            ErrorCode::Format,
            None,
            None,
        );
    }

    #[test]
    fn not_an_array_has_no_id() {
        assert_refused(
            &[
                "{}",
                r#"{"0":2,"1":"a","2":"Heartbeat","3":{}}"#,
                "2",
                r#""[2,\"a\",\"Heartbeat\",{}]""#,
                "null",
                "true",
            ],
            ErrorCode::RpcFramework,
            None,
            None,
        );
    }

    #[test]
    fn too_few_elements() {
        assert_refused(&["[]"], ErrorCode::RpcFramework, None, None);
        assert_refused(
            &["[2]"],
            ErrorCode::RpcFramework,
            None,
            Some(MessageType::Call),
        );
        assert_refused(
            &[r#"[2,"a"]"#, r#"[2,"a","Heartbeat"]"#],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::Call),
        );
        assert_refused(
            &[r#"[3,"a"]"#],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::CallResult),
        );
        assert_refused(
            &[
                r#"[4,"a"]"#,
                r#"[4,"a","GenericError"]"#,
                r#"[4,"a","GenericError","no details"]"#,
            ],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::CallError),
        );
        assert_eq!(
            refused(r#"[4,"a","GenericError","no details"]"#).description,
            "a CALLERROR has 5 elements, not 4"
        );
    }

    #[test]
    fn too_many_elements() {
        assert_refused(
            &[r#"[2,"a","Heartbeat",{},{}]"#],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::Call),
        );
        assert_refused(
            &[r#"[3,"a",{},"x"]"#, r#"[3,"a","Heartbeat",{}]"#],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::CallResult),
        );
        assert_refused(
            &[r#"[4,"a","GenericError","",{},null]"#],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::CallError),
        );
    }

    #[test]
    fn message_type_id_not_an_integer() {
        assert_refused(
            &[
                r#"["2","a","Heartbeat",{}]"#,
                r#"[2.0,"a","Heartbeat",{}]"#,
                r#"[2e0,"a","Heartbeat",{}]"#,
                r#"[null,"a","Heartbeat",{}]"#,
                r#"[[2],"a","Heartbeat",{}]"#,
                r#"[true,"a"]"#,
                r#"[{},"a"]"#,
            ],
            ErrorCode::RpcFramework,
            Some("a"),
            None,
        );
        assert_refused(
            &[r#"["a"]"#, r#"[{}]"#],
            ErrorCode::RpcFramework,
            None,
            None,
        );
    }

    #[test]
    fn unknown_message_type_id() {
        assert_refused(
            &[
                r#"[5,"a",{}]"#,
                r#"[6,"a","Heartbeat",{}]"#,
                r#"[1,"a"]"#,
                r#"[0,"a","Heartbeat",{}]"#,
                r#"[-2,"a","Heartbeat",{}]"#,
                r#"[18446744073709551615,"a",{}]"#,
                r#"[-9223372036854775808,"a"]"#,
            ],
            ErrorCode::MessageTypeNotSupported,
            Some("a"),
            None,
        );
        // Whatever the rest holds: the type decides first.
        assert_refused(
            &["[5]", r#"[5,7]"#, r#"[7,null,"x"]"#],
            ErrorCode::MessageTypeNotSupported,
            None,
            None,
        );
        assert_refused(
            &[r#"[5,""]"#],
            ErrorCode::MessageTypeNotSupported,
            Some(""),
            None,
        );
        assert_eq!(
            refused(r#"[5,"a",{}]"#).description,
            "message type id 5 is not 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR)"
        );
    }

    #[test]
    fn id_not_a_string_has_no_id() {
        for (text, message_type) in [
            (r#"[2,1,"Heartbeat",{}]"#, MessageType::Call),
            (r#"[2,null,"Heartbeat",{}]"#, MessageType::Call),
            (r#"[2,["a"],"Heartbeat",{}]"#, MessageType::Call),
            (r#"[3,{"id":"a"},{}]"#, MessageType::CallResult),
            (r#"[4,7.5,"GenericError","",{}]"#, MessageType::CallError),
        ] {
            assert_refused(&[text], ErrorCode::RpcFramework, None, Some(message_type));
        }
    }

    #[test]
    fn empty_id_is_echoed() {
        assert_refused(
            &[r#"[2,"","Heartbeat",{}]"#],
            ErrorCode::Format,
            Some(""),
            Some(MessageType::Call),
        );
        assert_refused(
            &[r#"[3,"",{}]"#],
            ErrorCode::Format,
            Some(""),
            Some(MessageType::CallResult),
        );
    }

    #[test]
    fn id_length_is_counted_in_characters() {
        for unit in ["x", "é", "😀"] {
            let id = unit.repeat(MAX_MESSAGE_ID);
            let text = format!(r#"[2,"{id}","Heartbeat",{{}}]"#);
            assert_eq!(parsed(&text), call(&id, "Heartbeat", json!({})));
            // One more is refused, and echoed so the sender can match the error.
            let id = unit.repeat(MAX_MESSAGE_ID + 1);
            let text = format!(r#"[2,"{id}","Heartbeat",{{}}]"#);
            assert_refused(
                &[&text],
                ErrorCode::Format,
                Some(&id),
                Some(MessageType::Call),
            );
        }
        // A UUID (36 characters) fits.
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(
            parsed(&encode_result(id, &json!({}))),
            Frame::CallResult {
                id: id.into(),
                payload: json!({})
            }
        );
        // An escaped character counts once.
        let text = format!(r#"[3,"\u00e9{}",{{}}]"#, "x".repeat(MAX_MESSAGE_ID - 1));
        assert!(parse(&text, &mut Vec::new(), ITEMS).is_ok());
    }

    #[test]
    fn echoed_ids_are_bounded() {
        let id = "é".repeat(MAX_ECHOED_ID);
        let e = refused(&format!(r#"[2,"{id}","Heartbeat",{{}}]"#));
        assert_eq!(
            (e.code, e.id.as_deref()),
            (ErrorCode::Format, Some(id.as_str()))
        );
        let id = "é".repeat(MAX_ECHOED_ID + 1);
        let e = refused(&format!(r#"[2,"{id}","Heartbeat",{{}}]"#));
        assert_eq!((e.code, e.id), (ErrorCode::Format, None));
        assert_eq!(e.message_type, Some(MessageType::Call));
    }

    #[test]
    fn call_action_must_be_a_string() {
        assert_refused(
            &[
                r#"[2,"a",7,{}]"#,
                r#"[2,"a",null,{}]"#,
                r#"[2,"a",["Heartbeat"],{}]"#,
                r#"[2,"a",{},{}]"#,
            ],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::Call),
        );
    }

    #[test]
    fn payloads_must_be_objects() {
        assert_refused(
            &[
                r#"[2,"a","Heartbeat",[]]"#,
                r#"[2,"a","Heartbeat",null]"#,
                r#"[2,"a","Heartbeat","{}"]"#,
                r#"[2,"a","Heartbeat",0]"#,
            ],
            ErrorCode::Format,
            Some("a"),
            Some(MessageType::Call),
        );
        assert_refused(
            &[r#"[3,"a",[]]"#, r#"[3,"a",null]"#, r#"[3,"a",true]"#],
            ErrorCode::Format,
            Some("a"),
            Some(MessageType::CallResult),
        );
    }

    #[test]
    fn call_error_fields() {
        assert_refused(
            &[
                r#"[4,"a",1,"",{}]"#,
                r#"[4,"a",null,"",{}]"#,
                r#"[4,"a","GenericError",null,{}]"#,
                r#"[4,"a","GenericError",{},{}]"#,
            ],
            ErrorCode::RpcFramework,
            Some("a"),
            Some(MessageType::CallError),
        );
        assert_refused(
            &[
                r#"[4,"a","GenericError","",null]"#,
                r#"[4,"a","GenericError","",[]]"#,
                r#"[4,"a","GenericError","",""]"#,
            ],
            ErrorCode::Format,
            Some("a"),
            Some(MessageType::CallError),
        );
    }

    #[test]
    fn round_trips_in_both_versions() {
        let payload = json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-01-01T00:00:00Z",
            "sampledValue": [{"value": "12.5", "measurand": "Energy.Active.Import.Register"}]}]});
        for version in VERSIONS {
            let frame = call("c-1", "MeterValues", payload.clone());
            assert_eq!(parsed(&encode_call("c-1", "MeterValues", &payload)), frame);
            let frame = Frame::CallResult {
                id: "r-1".into(),
                payload: payload.clone(),
            };
            assert_eq!(parsed(&encode_result("r-1", &payload)), frame);
            for code in ErrorCode::ALL {
                let details = json!({"cause": "x", "n": [1, 2.5]});
                let text = encode_error("e-1", code, version, "went wrong", &details);
                let Frame::CallError {
                    id,
                    code: name,
                    description,
                    details: read,
                } = parsed(&text)
                else {
                    panic!("{text}");
                };
                assert_eq!(
                    (id.as_str(), name.as_str(), description.as_str(), read),
                    ("e-1", code.name(version), "went wrong", details)
                );
                let back = ErrorCode::parse(&name, version).unwrap();
                assert_eq!(back.name(version), name);
            }
        }
    }

    #[test]
    fn encodings_are_compact() {
        assert_eq!(
            encode_call("1", "Heartbeat", &json!({})),
            r#"[2,"1","Heartbeat",{}]"#
        );
        assert_eq!(
            encode_result("1", &json!({"currentTime": "2024-01-01T00:00:00Z"})),
            r#"[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]"#
        );
        assert_eq!(
            encode_error(
                "-1",
                ErrorCode::Format,
                Version::V16,
                "not JSON",
                &json!({})
            ),
            r#"[4,"-1","FormationViolation","not JSON",{}]"#
        );
        assert_eq!(
            encode_error(
                "-1",
                ErrorCode::Format,
                Version::V201,
                "not JSON",
                &json!({})
            ),
            r#"[4,"-1","FormatViolation","not JSON",{}]"#
        );
    }

    #[test]
    fn call_error_spellings_per_version() {
        let cases = [
            ("nope", "FormationViolation", "FormatViolation"),
            ("{}", "ProtocolError", "RpcFrameworkError"),
            (r#"[9,"a"]"#, "NotSupported", "MessageTypeNotSupported"),
            (
                r#"[2,"a","Heartbeat",[]]"#,
                "FormationViolation",
                "FormatViolation",
            ),
            (
                r#"[2,"a","Heartbeat"]"#,
                "ProtocolError",
                "RpcFrameworkError",
            ),
        ];
        for (text, v16, v201) in cases {
            let e = refused(text);
            for (version, name) in [(Version::V16, v16), (Version::V201, v201)] {
                let id = e.id.as_deref().unwrap_or("-1");
                let reply = encode_error(id, e.code, version, &e.description, &json!({}));
                let Frame::CallError { id: got, code, .. } = parsed(&reply) else {
                    panic!("{reply}");
                };
                assert_eq!((got.as_str(), code.as_str()), (id, name), "{text}");
            }
        }
        let occurrence = ErrorCode::Occurrence;
        assert!(encode_error("a", occurrence, Version::V16, "", &json!({}))
            .contains("\"OccurenceConstraintViolation\""));
        assert!(encode_error("a", occurrence, Version::V201, "", &json!({}))
            .contains("\"OccurrenceConstraintViolation\""));
    }

    #[test]
    fn unicode_and_escapes() {
        let text = r#"[2,"caf\u00e9-☕-\ud83d\ude00","Données",{"note":"Zoë \"q\" \\ \n \u0001 \u2028 😀","ключ":"значение"}]"#;
        let frame = parsed(text);
        let expected = call(
            "café-☕-😀",
            "Données",
            json!({"note": "Zoë \"q\" \\ \n \u{1} \u{2028} 😀", "ключ": "значение"}),
        );
        assert_eq!(frame, expected);
        let Frame::Call {
            id,
            action,
            payload,
        } = &frame
        else {
            unreachable!()
        };
        assert_eq!(parsed(&encode_call(id, action, payload)), frame);
        // Strings the encoder must escape.
        let odd = "quote\" back\\ nl\n tab\t nul\u{0} </script>";
        let text = encode_error(
            odd,
            ErrorCode::Generic,
            Version::V201,
            odd,
            &json!({ odd: odd }),
        );
        assert_eq!(
            parsed(&text),
            Frame::CallError {
                id: odd.into(),
                code: "GenericError".into(),
                description: odd.into(),
                details: json!({ odd: odd }),
            }
        );
        // A lone low surrogate is not JSON.
        assert_refused(
            &[r#"[2,"a","Heartbeat",{"s":"\udc00"}]"#],
            ErrorCode::Format,
            None,
            None,
        );
    }

    #[test]
    fn numbers_are_preserved() {
        let payload = r#"{"f":0.1,"g":1.5e300,"h":-2.5e-300,"i":-9223372036854775808,"j":12.0,"k":5e-324,"l":1.7976931348623157e308,"u":18446744073709551615,"z":0}"#;
        let frame = parsed(&format!(r#"[3,"n",{payload}]"#));
        let Frame::CallResult { payload: value, .. } = &frame else {
            panic!("{frame:?}");
        };
        assert_eq!(value["u"].as_u64(), Some(u64::MAX));
        assert_eq!(value["i"].as_i64(), Some(i64::MIN));
        assert_eq!(value["f"].as_f64(), Some(0.1));
        assert_eq!(value["g"].as_f64(), Some(1.5e300));
        assert_eq!(value["j"].as_f64(), Some(12.0));
        assert!(value["j"].is_f64() && value["z"].is_u64());
        assert_eq!(value["k"].as_f64(), Some(5e-324));
        assert_eq!(value["l"].as_f64(), Some(f64::MAX));
        // Written back as the same numbers (serde_json writes a positive exponent with `+`).
        let encoded = encode_result("n", value);
        let payload = payload.replace("e300", "e+300").replace("e308", "e+308");
        assert_eq!(encoded, format!(r#"[3,"n",{payload}]"#));
        assert_eq!(parsed(&encoded), frame);
    }

    #[test]
    fn a_repeated_key_keeps_the_last_value() {
        assert_eq!(
            parsed(r#"[2,"a","DataTransfer",{"k":1,"k":2}]"#),
            call("a", "DataTransfer", json!({"k": 2}))
        );
        // Also in objects large enough for simd-json to hash its keys.
        for n in [40, 100, 1000] {
            let mut members: Vec<String> = (0..n).map(|i| format!(r#""k{i}":{i}"#)).collect();
            members.extend([r#""k3":-1"#.to_owned(), r#""k7":-2"#.to_owned()]);
            let text = format!(r#"[3,"a",{{{}}}]"#, members.join(","));
            let Frame::CallResult { payload, .. } = parsed(&text) else {
                panic!("{text}");
            };
            assert_eq!(
                (&payload["k3"], &payload["k7"]),
                (&json!(-1), &json!(-2)),
                "{n}"
            );
            assert_eq!(payload.as_object().map(|o| o.len()), Some(n));
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // The frame's array is level 1, the payload level 2, so `depth - 2` arrays inside.
        let nested = |depth: usize| {
            let inner = "[".repeat(depth - 2) + &"]".repeat(depth - 2);
            format!(r#"[2,"a","DataTransfer",{{"x":{inner}}}]"#)
        };
        assert!(parse(&nested(MAX_DEPTH), &mut Vec::new(), ITEMS).is_ok());
        assert_refused(&[&nested(MAX_DEPTH + 1)], ErrorCode::Format, None, None);
        // Deep enough to overflow the stack if it reached simd-json.
        assert_refused(&[&"[".repeat(1_000_000)], ErrorCode::Format, None, None);
        // Brackets inside strings (escaped quotes included) do not count.
        let text = format!(
            r#"[2,"a","DataTransfer",{{"s":"\"{}"}}]"#,
            "[".repeat(10 * MAX_DEPTH)
        );
        assert!(parse(&text, &mut Vec::new(), ITEMS).is_ok());
    }

    #[test]
    fn scratch_is_reused() {
        let mut scratch = Vec::new();
        let long = format!(r#"[2,"a","DataTransfer",{{"data":"{}"}}]"#, "x".repeat(100));
        assert!(parse(&long, &mut scratch, ITEMS).is_ok());
        assert_eq!(
            parse(r#"[3,"b",{}]"#, &mut scratch, ITEMS).map(|p| p.frame),
            Ok(Frame::CallResult {
                id: "b".into(),
                payload: json!({}),
            })
        );
        assert!(parse("[", &mut scratch, ITEMS).is_err());
        assert!(scratch.capacity() >= long.len());
    }

    #[test]
    fn the_payload_text_is_kept_as_received() {
        let text = " [2 , \"a\" ,\"DataTransfer\",\n { \"k\" : [1 , 2.50, \"]\\\"\"] } \r\n] ";
        let parsed = parse(text, &mut Vec::new(), ITEMS).unwrap();
        assert_eq!(parsed.payload_text, r#"{ "k" : [1 , 2.50, "]\""] }"#);
        assert_eq!(
            parsed.frame,
            call("a", "DataTransfer", json!({"k": [1, 2.5, "]\""]}))
        );
        let text = r#"[3,"b",{"status":"Accepted","n":1e3}]"#;
        let parsed = parse(text, &mut Vec::new(), ITEMS).unwrap();
        assert_eq!(parsed.payload_text, r#"{"status":"Accepted","n":1e3}"#);
        let text = r#"[4,"c","GenericError","{}",{"why":"x"}]"#;
        let parsed = parse(text, &mut Vec::new(), ITEMS).unwrap();
        assert_eq!(parsed.payload_text, r#"{"why":"x"}"#);
    }

    #[test]
    fn a_message_with_too_many_items_is_refused_before_it_is_parsed() {
        // The frame's 4 elements and the payload's member and 4 array items: 9.
        let text = r#"[2,"m1","DataTransfer",{"data":[0,0,0,0]}]"#;
        assert!(parse(text, &mut Vec::new(), 9).is_ok());
        let e = parse(text, &mut Vec::new(), 8).unwrap_err();
        assert_eq!(
            (e.code, e.id.as_deref(), e.message_type),
            (ErrorCode::Occurrence, Some("m1"), Some(MessageType::Call))
        );
        assert_eq!(
            e.description,
            "the message holds more than 8 items (array elements and object members)"
        );
        // Invalid past the limit: the rest is never looked at.
        let text = format!(r#"[3,"r1",{{"x":[{}"#, "0,".repeat(1_000_000));
        let e = parse(&text, &mut Vec::new(), 1000).unwrap_err();
        assert_eq!(
            (e.code, e.id.as_deref(), e.message_type),
            (
                ErrorCode::Occurrence,
                Some("r1"),
                Some(MessageType::CallResult)
            )
        );
        // Unreadable type or id: nothing to echo, as for any other refusal.
        for text in [
            format!(r#"[[{}]]"#, "0,".repeat(20)),
            format!(r#"[2,{}]"#, "0,".repeat(20)),
            format!(r#"[9,7,{}]"#, "0,".repeat(20)),
            format!(r#"{{"a":[{}]}}"#, "0,".repeat(20)),
        ] {
            let e = parse(&text, &mut Vec::new(), 10).unwrap_err();
            assert_eq!((e.code, e.id), (ErrorCode::Occurrence, None), "{text}");
        }
        let text = format!(r#"[4,"e",{}]"#, "0,".repeat(20));
        let e = parse(&text, &mut Vec::new(), 10).unwrap_err();
        assert_eq!(e.message_type, Some(MessageType::CallError));
        let long_id = "i".repeat(MAX_ECHOED_ID + 1);
        let text = format!(r#"[2,"{long_id}",{}]"#, "0,".repeat(20));
        assert_eq!(parse(&text, &mut Vec::new(), 10).unwrap_err().id, None);
    }

    #[test]
    fn action_names_are_ascii_letters_and_digits() {
        for name in [
            "Reset",
            "BootNotification",
            "Get15118EVCertificate",
            &"A".repeat(64),
        ] {
            assert!(is_action_name(name), "{name}");
        }
        for name in ["", "Re set", "Données", "a-b", "x/y", &"A".repeat(65)] {
            assert!(!is_action_name(name), "{name}");
        }
    }
}
