//! The realtime JSON envelope, sans-IO: parses a client's text message into an [`Inbound`]
//! (seed-002 aliases included) and writes server messages ([`Outbound`], [`error_message`]).
//! It never routes, authorizes or sends anything, and never trusts a client's `from_user_id`.

use std::fmt::Write as _;
use std::time::SystemTime;

use simd_json::prelude::Writable as _;
use simd_json::{BorrowedValue, StaticNode};

use crate::services::json_depth::nesting_exceeds;

/// Deepest nesting of arrays and objects (the envelope itself counts as one) a client
/// message may have: simd-json builds, writes and drops values recursively, so an
/// unbounded depth would overflow a shard's stack.
const MAX_DEPTH: usize = 128;

/// Longest room or user id, in bytes.
const MAX_ID_BYTES: usize = 128;

/// How much of an unknown `message_type` an [`EnvelopeError::UnknownType`] keeps.
const MAX_ECHOED_TYPE_BYTES: usize = 64;

/// The message types a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    RoomMessage,
    PrivateMessage,
    Broadcast,
    Notification,
    SystemMessage,
    Join,
    Leave,
    Ping,
    Pong,
}

impl Kind {
    /// Every kind, in declaration order (`kind as usize` is its index).
    pub const ALL: [Kind; 10] = [
        Kind::Text,
        Kind::RoomMessage,
        Kind::PrivateMessage,
        Kind::Broadcast,
        Kind::Notification,
        Kind::SystemMessage,
        Kind::Join,
        Kind::Leave,
        Kind::Ping,
        Kind::Pong,
    ];

    /// The kind with this wire name (exact, case-sensitive).
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The wire name, e.g. `"room_message"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::RoomMessage => "room_message",
            Kind::PrivateMessage => "private_message",
            Kind::Broadcast => "broadcast",
            Kind::Notification => "notification",
            Kind::SystemMessage => "system_message",
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Ping => "ping",
            Kind::Pong => "pong",
        }
    }
}

/// A parsed client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub id: Option<String>,
    pub kind: Kind,
    pub room: Option<String>,
    pub to_user_id: Option<String>,
    /// `data` re-serialized as compact JSON text, `{}` when absent; a top-level `content`
    /// is folded in as `data.content` unless `data` has one.
    pub data: String,
}

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the message is not a JSON object")]
    NotObject,
    #[error("the message has no message_type")]
    MissingType,
    /// Holds at most the first 64 bytes of the type, so an error reply stays small.
    #[error("unknown message_type {0:?}")]
    UnknownType(String),
    #[error("{field} must be {expected}")]
    BadField {
        field: &'static str,
        expected: &'static str,
    },
}

impl EnvelopeError {
    /// The machine code for the `error` reply: `bad_json` (NotJson, NotObject), `bad_message`
    /// (MissingType, BadField), `unknown_type`.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::NotJson(_) | EnvelopeError::NotObject => "bad_json",
            EnvelopeError::MissingType | EnvelopeError::BadField { .. } => "bad_message",
            EnvelopeError::UnknownType(_) => "unknown_type",
        }
    }
}

/// Parses a client's text message. simd-json parses in place, so `text` is copied into
/// `scratch` (cleared first), which the caller reuses across calls. A client's `from_user_id`
/// and `timestamp`, and any unknown field, are ignored.
pub fn parse_inbound(text: &str, scratch: &mut Vec<u8>) -> Result<Inbound, EnvelopeError> {
    if nesting_exceeds(text.as_bytes(), MAX_DEPTH) {
        return Err(EnvelopeError::NotJson(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    scratch.clear();
    scratch.extend_from_slice(text.as_bytes());
    let value =
        simd_json::to_borrowed_value(scratch).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let BorrowedValue::Object(mut message) = value else {
        return Err(EnvelopeError::NotObject);
    };

    let message_type = string_field(&message, &["message_type", "type"])?;
    let message_type = message_type.ok_or(EnvelopeError::MissingType)?;
    let kind = Kind::parse(message_type)
        .ok_or_else(|| EnvelopeError::UnknownType(truncated(message_type).to_owned()))?;

    let id = string_field(&message, &["id"])?.map(str::to_owned);
    let room = id_field(&message, &["room", "room_id"])?;
    let to_user_id = id_field(&message, &["to_user_id", "to"])?;

    let mut data = match message.remove("data") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => Box::default(),
        Some(BorrowedValue::Object(data)) => data,
        Some(_) => return Err(bad("data", "an object")),
    };
    if let Some(content) = message.remove("content") {
        if !data.contains_key("content") {
            data.insert("content".into(), content);
        }
    }
    let data = BorrowedValue::Object(data).encode();

    Ok(Inbound {
        id,
        kind,
        room,
        to_user_id,
        data,
    })
}

/// A server message; [`encode`](Outbound::encode) adds `id` (a fresh UUID v4) and `timestamp`
/// (RFC 3339 UTC with milliseconds) and writes `{"id","message_type","data","timestamp"`, then
/// `"from_user_id","to_user_id","room"` only when `Some`. `data` is inserted verbatim: it is
/// already JSON text (the caller's to vouch for; [`Inbound::data`] always is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound<'a> {
    pub message_type: &'a str,
    /// JSON text, inserted verbatim; an empty string is written as `{}`.
    pub data: &'a str,
    pub from_user_id: Option<&'a str>,
    pub to_user_id: Option<&'a str>,
    pub room: Option<&'a str>,
}

impl<'a> Outbound<'a> {
    pub fn new(message_type: &'a str, data: &'a str) -> Self {
        Outbound {
            message_type,
            data,
            from_user_id: None,
            to_user_id: None,
            room: None,
        }
    }

    pub fn from_user(self, id: &'a str) -> Self {
        Outbound {
            from_user_id: Some(id),
            ..self
        }
    }

    pub fn to_user(self, id: &'a str) -> Self {
        Outbound {
            to_user_id: Some(id),
            ..self
        }
    }

    pub fn in_room(self, room: &'a str) -> Self {
        Outbound {
            room: Some(room),
            ..self
        }
    }

    /// The message as JSON text.
    pub fn encode(&self) -> String {
        let data = if self.data.is_empty() {
            "{}"
        } else {
            self.data
        };
        let mut out = String::with_capacity(160 + self.message_type.len() + data.len());
        out.push_str("{\"id\":\"");
        out.push_str(
            uuid::Uuid::new_v4()
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
        out.push_str("\",\"message_type\":");
        push_json_str(&mut out, self.message_type);
        out.push_str(",\"data\":");
        out.push_str(data);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            ",\"timestamp\":\"{}\"",
            humantime::format_rfc3339_millis(SystemTime::now())
        );
        let optional = [
            ("from_user_id", self.from_user_id),
            ("to_user_id", self.to_user_id),
            ("room", self.room),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out.push_str(",\"");
                out.push_str(name);
                out.push_str("\":");
                push_json_str(&mut out, value);
            }
        }
        out.push('}');
        out
    }
}

/// An `error` message: data {"code":code,"message":message}.
pub fn error_message(code: &str, message: &str) -> String {
    let mut data = String::with_capacity(24 + code.len() + message.len());
    data.push_str("{\"code\":");
    push_json_str(&mut data, code);
    data.push_str(",\"message\":");
    push_json_str(&mut data, message);
    data.push('}');
    Outbound::new("error", &data).encode()
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly `"`, `\` and the C0 controls; text without them goes as is.
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&serde_json::Value::from(s).to_string());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// The first of `keys` (a field's name, then its seed-002 alias) present and not `null`,
/// with its value.
fn field<'m, 'v>(
    message: &'m simd_json::borrowed::Object<'v>,
    keys: &[&'static str],
) -> Option<(&'static str, &'m BorrowedValue<'v>)> {
    keys.iter().find_map(|&key| match message.get(key) {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => None,
        Some(value) => Some((key, value)),
    })
}

/// A string field: absent (or `null`) is `None`, any other non-string a `BadField`.
fn string_field<'m>(
    message: &'m simd_json::borrowed::Object<'_>,
    keys: &[&'static str],
) -> Result<Option<&'m str>, EnvelopeError> {
    match field(message, keys) {
        None => Ok(None),
        Some((_, BorrowedValue::String(s))) => Ok(Some(s)),
        Some((key, _)) => Err(bad(key, "a string")),
    }
}

/// A room or user id field: a string of 1..=128 bytes.
fn id_field(
    message: &simd_json::borrowed::Object<'_>,
    keys: &[&'static str],
) -> Result<Option<String>, EnvelopeError> {
    match field(message, keys) {
        None => Ok(None),
        Some((_, BorrowedValue::String(s))) if (1..=MAX_ID_BYTES).contains(&s.len()) => {
            Ok(Some(s.to_string()))
        }
        Some((key, BorrowedValue::String(_))) => Err(bad(key, "a string of 1 to 128 bytes")),
        Some((key, _)) => Err(bad(key, "a string")),
    }
}

fn bad(field: &'static str, expected: &'static str) -> EnvelopeError {
    EnvelopeError::BadField { field, expected }
}

/// At most [`MAX_ECHOED_TYPE_BYTES`] of `s`, cut at a character boundary.
fn truncated(s: &str) -> &str {
    let mut end = s.len().min(MAX_ECHOED_TYPE_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(text: &str) -> Result<Inbound, EnvelopeError> {
        parse_inbound(text, &mut Vec::new())
    }

    fn data(inbound: &Inbound) -> Value {
        serde_json::from_str(&inbound.data).expect("data is JSON")
    }

    fn decoded(text: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str(text).expect("encode writes JSON") {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::RoomMessage.as_str(), "room_message");
        assert_eq!(Kind::parse("Room_Message"), None);
        assert_eq!(Kind::parse("welcome"), None);
    }

    #[test]
    fn full_envelope() {
        let inbound = parse(
            r#"{"id":"m1","message_type":"room_message","room":"lobby","data":{"content":"hi"},
                "timestamp":"2020-01-01T00:00:00Z","from_user_id":"forged"}"#,
        )
        .unwrap();
        assert_eq!(
            inbound,
            Inbound {
                id: Some("m1".into()),
                kind: Kind::RoomMessage,
                room: Some("lobby".into()),
                to_user_id: None,
                data: r#"{"content":"hi"}"#.into(),
            }
        );
    }

    #[test]
    fn minimal_message_has_empty_data() {
        let inbound = parse(r#"{"message_type":"ping"}"#).unwrap();
        assert_eq!(inbound.kind, Kind::Ping);
        assert_eq!(inbound.data, "{}");
        assert_eq!(
            (inbound.id, inbound.room, inbound.to_user_id),
            (None, None, None)
        );
        assert_eq!(parse(r#"{"type":"ping","data":null}"#).unwrap().data, "{}");
    }

    #[test]
    fn seed_002_aliases() {
        let inbound = parse(r#"{"type":"private_message","to":"u2","content":"psst"}"#).unwrap();
        assert_eq!(inbound.kind, Kind::PrivateMessage);
        assert_eq!(inbound.to_user_id.as_deref(), Some("u2"));
        assert_eq!(data(&inbound), json!({"content": "psst"}));

        let inbound = parse(r#"{"type":"join","room_id":"r1"}"#).unwrap();
        assert_eq!(
            (inbound.kind, inbound.room.as_deref()),
            (Kind::Join, Some("r1"))
        );
    }

    #[test]
    fn canonical_names_win_over_aliases() {
        let inbound = parse(
            r#"{"message_type":"text","type":"ping","room":"a","room_id":"b","to_user_id":"x","to":"y"}"#,
        )
        .unwrap();
        assert_eq!(inbound.kind, Kind::Text);
        assert_eq!(inbound.room.as_deref(), Some("a"));
        assert_eq!(inbound.to_user_id.as_deref(), Some("x"));
        // A null canonical field is absent, so the alias is used.
        let inbound =
            parse(r#"{"message_type":null,"type":"leave","room":null,"room_id":"b"}"#).unwrap();
        assert_eq!(
            (inbound.kind, inbound.room.as_deref()),
            (Kind::Leave, Some("b"))
        );
    }

    #[test]
    fn content_is_folded_into_data() {
        let inbound =
            parse(r#"{"type":"text","room":"r","content":{"a":[1,2]},"data":{"x":1}}"#).unwrap();
        assert_eq!(data(&inbound), json!({"x": 1, "content": {"a": [1, 2]}}));
        // data's own content wins.
        let inbound =
            parse(r#"{"type":"text","content":"outer","data":{"content":"inner"}}"#).unwrap();
        assert_eq!(data(&inbound), json!({"content": "inner"}));
        let inbound = parse(r#"{"type":"text","content":null}"#).unwrap();
        assert_eq!(data(&inbound), json!({"content": null}));
    }

    #[test]
    fn null_optional_fields_are_absent() {
        let inbound = parse(r#"{"type":"text","id":null,"room":null,"to_user_id":null}"#).unwrap();
        assert_eq!(
            (inbound.id, inbound.room, inbound.to_user_id),
            (None, None, None)
        );
    }

    #[test]
    fn not_json() {
        for text in [
            "",
            "   ",
            "{",
            r#"{"type":"ping""#,
            "{'type':'ping'}",
            r#"{"a":1}x"#,
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(err, EnvelopeError::NotJson(_)),
                "{text:?}: {err:?}"
            );
            assert_eq!(err.code(), "bad_json");
        }
    }

    #[test]
    fn not_an_object() {
        for text in [
            "[]",
            "1",
            r#""ping""#,
            "null",
            "true",
            r#"[{"type":"ping"}]"#,
        ] {
            assert_eq!(parse(text), Err(EnvelopeError::NotObject), "{text:?}");
        }
        assert_eq!(EnvelopeError::NotObject.code(), "bad_json");
    }

    #[test]
    fn missing_type() {
        for text in [
            "{}",
            r#"{"message_type":null}"#,
            r#"{"data":{"type":"ping"}}"#,
        ] {
            assert_eq!(parse(text), Err(EnvelopeError::MissingType), "{text:?}");
        }
        assert_eq!(EnvelopeError::MissingType.code(), "bad_message");
    }

    #[test]
    fn unknown_type() {
        let err = parse(r#"{"type":"PING"}"#).unwrap_err();
        assert_eq!(err, EnvelopeError::UnknownType("PING".into()));
        assert_eq!(err.code(), "unknown_type");
        assert_eq!(
            parse(r#"{"type":""}"#),
            Err(EnvelopeError::UnknownType(String::new()))
        );
        // A long type is cut at a character boundary.
        let long = "é".repeat(100);
        let Err(EnvelopeError::UnknownType(kept)) = parse(&format!(r#"{{"type":"{long}"}}"#))
        else {
            panic!("expected UnknownType");
        };
        assert_eq!(kept, "é".repeat(32));
    }

    #[test]
    fn bad_fields() {
        let cases = [
            (r#"{"message_type":1}"#, "message_type", "a string"),
            (r#"{"type":["ping"]}"#, "type", "a string"),
            (r#"{"type":"ping","id":7}"#, "id", "a string"),
            (r#"{"type":"join","room":5}"#, "room", "a string"),
            (r#"{"type":"join","room_id":{}}"#, "room_id", "a string"),
            (r#"{"type":"text","to":true}"#, "to", "a string"),
            (
                r#"{"type":"join","room":""}"#,
                "room",
                "a string of 1 to 128 bytes",
            ),
            (
                r#"{"type":"text","to_user_id":""}"#,
                "to_user_id",
                "a string of 1 to 128 bytes",
            ),
            (r#"{"type":"text","data":"hi"}"#, "data", "an object"),
            (r#"{"type":"text","data":[1]}"#, "data", "an object"),
            (r#"{"type":"text","data":0}"#, "data", "an object"),
        ];
        for (text, field, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err, EnvelopeError::BadField { field, expected }, "{text}");
            assert_eq!(err.code(), "bad_message");
        }
    }

    #[test]
    fn id_length_limits_are_in_bytes() {
        let ok = "r".repeat(128);
        let inbound = parse(&format!(r#"{{"type":"join","room":"{ok}"}}"#)).unwrap();
        assert_eq!(inbound.room.as_deref(), Some(ok.as_str()));
        // 64 two-byte characters are 128 bytes; 65 are too many.
        let ok = "é".repeat(64);
        assert!(parse(&format!(r#"{{"type":"text","to":"{ok}"}}"#)).is_ok());
        let too_long = "é".repeat(65);
        let err = parse(&format!(r#"{{"type":"text","to":"{too_long}"}}"#)).unwrap_err();
        assert!(matches!(err, EnvelopeError::BadField { field: "to", .. }));
        let too_long = "r".repeat(129);
        assert!(parse(&format!(r#"{{"type":"join","room_id":"{too_long}"}}"#)).is_err());
    }

    #[test]
    fn client_from_user_id_and_timestamp_are_ignored_whatever_their_type() {
        let inbound = parse(r#"{"type":"ping","from_user_id":{"x":1},"timestamp":[1,2]}"#).unwrap();
        assert_eq!(inbound.kind, Kind::Ping);
        assert_eq!(inbound.data, "{}");
    }

    #[test]
    fn unicode_and_escapes() {
        let text = r#"{"type":"text","room":"caf\u00e9 ☕","data":{"content":"Zoë \ud83d\ude00 \"q\" \\ \n \u0001 \u2028"}}"#;
        let inbound = parse(text).unwrap();
        assert_eq!(inbound.room.as_deref(), Some("café ☕"));
        assert_eq!(
            data(&inbound),
            json!({"content": "Zoë 😀 \"q\" \\ \n \u{1} \u{2028}"})
        );
        // A lone low surrogate is refused; simd-json 0.14 reads a lone high one as U+0000.
        let err = parse(r#"{"type":"text","data":{"content":"\udc00"}}"#).unwrap_err();
        assert!(matches!(err, EnvelopeError::NotJson(_)), "{err:?}");
        let inbound = parse(r#"{"type":"text","data":{"content":"\ud800"}}"#).unwrap();
        assert_eq!(inbound.data, r#"{"content":"\u0000"}"#);
        // Raw control characters are not JSON.
        assert!(matches!(
            parse("{\"type\":\"text\",\"room\":\"a\u{1}\"}"),
            Err(EnvelopeError::NotJson(_))
        ));
    }

    #[test]
    fn nested_data_round_trips() {
        let value = json!({
            "content": "hi",
            "nested": {"list": [1, -2, 3.5, true, false, null, "s", {"deep": [[[]]]}], "empty": {}},
            "float": 0.1,
            "exp": 1.5e300,
        });
        let text = json!({"type": "notification", "data": value}).to_string();
        let inbound = parse(&text).unwrap();
        assert_eq!(data(&inbound), value);
        let encoded = Outbound::new(inbound.kind.as_str(), &inbound.data).encode();
        assert_eq!(decoded(&encoded)["data"], value);
    }

    #[test]
    fn big_numbers_as_far_as_simd_json_goes() {
        // u64 and i64 extremes are kept exactly.
        let inbound =
            parse(r#"{"type":"text","data":{"u":18446744073709551615,"i":-9223372036854775808}}"#)
                .unwrap();
        assert_eq!(
            inbound.data,
            r#"{"u":18446744073709551615,"i":-9223372036854775808}"#
        );
        // Past them (and past f64's range) simd-json refuses the number: bad JSON.
        for number in ["18446744073709551616", "-9223372036854775809", "1e400"] {
            let text = format!(r#"{{"type":"text","data":{{"n":{number}}}}}"#);
            assert!(
                matches!(parse(&text), Err(EnvelopeError::NotJson(_))),
                "{number}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            // The envelope is level 1, data level 2, so `depth - 2` arrays inside.
            let inner = "[".repeat(depth - 2) + &"]".repeat(depth - 2);
            format!(r#"{{"type":"text","data":{{"x":{inner}}}}}"#)
        };
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let err = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(matches!(err, EnvelopeError::NotJson(_)), "{err:?}");
        // Deep enough to overflow the stack if it reached simd-json.
        assert!(parse(&"[".repeat(1_000_000)).is_err());
        // Brackets inside strings (escaped quotes included) do not count.
        let text = format!(
            r#"{{"type":"text","data":{{"s":"\"{}"}}}}"#,
            "[".repeat(10 * MAX_DEPTH)
        );
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn scratch_is_reused() {
        let mut scratch = Vec::new();
        let first = parse_inbound(r#"{"type":"join","room":"a-long-room-name"}"#, &mut scratch);
        assert_eq!(first.unwrap().room.as_deref(), Some("a-long-room-name"));
        let second = parse_inbound(r#"{"type":"ping"}"#, &mut scratch).unwrap();
        assert_eq!((second.kind, second.room), (Kind::Ping, None));
        assert!(scratch.capacity() >= 40);
    }

    #[test]
    fn encode_writes_every_field() {
        let text = Outbound::new("room_message", r#"{"content":"hi"}"#)
            .from_user("u1")
            .to_user("u2")
            .in_room("lobby")
            .encode();
        let keys: Vec<&str> = text
            .trim_start_matches('{')
            .split(",\"")
            .map(|part| part.trim_start_matches('"').split('"').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "message_type",
                "data",
                "timestamp",
                "from_user_id",
                "to_user_id",
                "room"
            ]
        );
        let map = decoded(&text);
        assert_eq!(map["message_type"], "room_message");
        assert_eq!(map["data"], json!({"content": "hi"}));
        assert_eq!(map["from_user_id"], "u1");
        assert_eq!(map["to_user_id"], "u2");
        assert_eq!(map["room"], "lobby");
        let id = map["id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        let timestamp = map["timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(timestamp).is_ok(), "{timestamp}");
        assert!(
            timestamp.ends_with('Z') && timestamp.len() == 24,
            "{timestamp}"
        );
    }

    #[test]
    fn encode_leaves_out_absent_fields() {
        let map = decoded(&Outbound::new("pong", "{}").encode());
        let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["data", "id", "message_type", "timestamp"]);
        assert_eq!(
            decoded(&Outbound::new("pong", "").encode())["data"],
            json!({})
        );
    }

    #[test]
    fn encode_ids_are_fresh() {
        let a = decoded(&Outbound::new("pong", "{}").encode());
        let b = decoded(&Outbound::new("pong", "{}").encode());
        assert_ne!(a["id"], b["id"]);
    }

    #[test]
    fn encode_escapes_strings() {
        let odd = "quote\" back\\ nl\n tab\t nul\u{0} é 😀 </script>";
        let text = Outbound::new(odd, "[]")
            .from_user(odd)
            .to_user(odd)
            .in_room(odd)
            .encode();
        let map = decoded(&text);
        for key in ["message_type", "from_user_id", "to_user_id", "room"] {
            assert_eq!(map[key], odd, "{key}");
        }
    }

    #[test]
    fn error_message_shape() {
        let map = decoded(&error_message("rate_limited", "slow \"down\""));
        assert_eq!(map["message_type"], "error");
        assert_eq!(
            map["data"],
            json!({"code": "rate_limited", "message": "slow \"down\""})
        );
        let err = parse("nope").unwrap_err();
        let map = decoded(&error_message(err.code(), &err.to_string()));
        assert_eq!(map["data"]["code"], "bad_json");
    }
}
