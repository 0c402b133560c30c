//! Realtime's sans-IO parts: the plan (rooms, publishers per room, the JWT
//! secret), who is a member of which room, each member's upgrade target
//! (`?token=JWT&room_id=ROOM`), the JSON envelope a publisher sends (the
//! fanout header as 40 hex digits in `data.h`, padding in `data.p`), and the
//! member side ([`Member`], [`RealtimeSink`]) that reads the server's
//! envelopes with a few byte searches, not a JSON parse: it notes the
//! `room_joined`, counts `error`s, ignores everything else, and checks each
//! `room_message` against its room's publishers' sequences.
//!
//! Room `r` is `load-r`. Listening member `s` (0..subscribers) is in room
//! `s % rooms`, publisher `p` (0..rooms × per room) in room `p / per room`;
//! every connection is user `load-N` (listeners first, then publishers).

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use ringgate::protocol::frame::OpCode;
use serde::Serialize;

use crate::conn::{answer_control, Msgs};
use crate::fanout::{parse_header, Seen, Subscriber, HEADER_LEN};
use crate::stats::{Cause, Stats};
use crate::wire::{FrameSink, MessageTemplate};

/// Hex digits of the header in `data.h`.
pub const HEX_LEN: usize = 2 * HEADER_LEN;
/// The smallest data object: `{"h":"` + 40 hex digits + `"}`.
pub const MIN_DATA: usize = DATA_HEAD.len() + HEX_LEN + 2;
/// What padding adds besides its `x`s: `,"p":""`.
const PAD_OVERHEAD: usize = 7;
/// The data object up to the hex digits.
const DATA_HEAD: &[u8] = b"{\"h\":\"";
/// Most rooms one run may ask for.
pub const MAX_ROOMS: u32 = 100_000;
/// Bytes of one server message kept for the searches; the rest of a longer
/// one is not looked at.
const MAX_KEPT: usize = 64 * 1024;

/// A secret given on the command line or in the environment: compared and
/// cloned like a string, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A realtime run's settings beyond the common ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimePlan {
    /// Messages per second from each publisher.
    pub rate: u64,
    /// How long to publish.
    pub duration: Duration,
    pub rooms: u32,
    pub publishers_per_room: u32,
    /// Signs each member's HS256 token; without it members connect with none.
    pub jwt_secret: Option<Secret>,
    /// `Authorization: Bearer` of the room-creating requests.
    pub admin_token: Option<Secret>,
    /// Before publishing, wait until no member has heard from the server
    /// for this long (zero: do not wait).
    pub settle: Duration,
}

impl RealtimePlan {
    /// The room of listening member `s`.
    pub fn room_of_listener(&self, s: u64) -> u32 {
        (s % u64::from(self.rooms)) as u32
    }

    /// The room of publisher `p`.
    pub fn room_of_publisher(&self, p: u32) -> u32 {
        p / self.publishers_per_room
    }

    /// The publishers (global indices) of room `room`.
    pub fn publishers_of(&self, room: u32) -> Range<usize> {
        let per = self.publishers_per_room as usize;
        room as usize * per..(room as usize + 1) * per
    }
}

/// The name of room `r`.
pub fn room_name(r: u32) -> String {
    format!("load-{r}")
}

/// Checks that a data object of `payload` bytes can be built: 48 (the
/// header alone) or at least 55 (the header and a padding field).
pub fn check_payload(payload: usize) -> Result<(), String> {
    if payload == MIN_DATA || payload >= MIN_DATA + PAD_OVERHEAD {
        Ok(())
    } else {
        Err(format!(
            "--payload {payload}: the data object is {MIN_DATA} bytes with the header alone, \
             or at least {} with padding",
            MIN_DATA + PAD_OVERHEAD
        ))
    }
}

/// The `x`s of a `payload`-byte data object's padding (`None`: no `p`).
fn padding(payload: usize) -> Option<usize> {
    payload.checked_sub(MIN_DATA + PAD_OVERHEAD)
}

/// The data object of `payload` bytes, header digits zero.
pub fn data_object(payload: usize) -> Vec<u8> {
    let mut out = DATA_HEAD.to_vec();
    out.extend_from_slice(&[b'0'; HEX_LEN]);
    if let Some(pad) = padding(payload) {
        out.extend_from_slice(b"\",\"p\":\"");
        out.resize(out.len() + pad, b'x');
    }
    out.extend_from_slice(b"\"}");
    out
}

/// What a publisher in `room` sends: a text `room_message` whose data object
/// is `payload` bytes, the header's digits written per message by
/// [`MessageTemplate::append_with`] with [`hex_header`].
pub fn publish_template(room: u32, payload: usize, mask: [u8; 4]) -> MessageTemplate {
    let mut msg = format!(
        "{{\"message_type\":\"room_message\",\"room\":\"{}\",\"data\":",
        room_name(room)
    )
    .into_bytes();
    let stamp_at = msg.len() + DATA_HEAD.len();
    msg.extend_from_slice(&data_object(payload));
    msg.push(b'}');
    MessageTemplate::of_payload(&msg, true, mask, stamp_at)
}

/// The header as 40 lowercase hex digits.
pub fn hex_header(h: &[u8; HEADER_LEN]) -> [u8; HEX_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; HEX_LEN];
    for (i, b) in h.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xF)];
    }
    out
}

/// The header from its 40 hex digits (either case).
pub fn unhex_header(digits: &[u8]) -> Option<[u8; HEADER_LEN]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let digits = digits.get(..HEX_LEN)?;
    let mut out = [0; HEADER_LEN];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while let Some(i) = hay[at..].iter().position(|&b| b == first) {
        let start = at + i;
        if hay[start + 1..].starts_with(rest) {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

/// The kinds of server message a member tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RoomMessage,
    RoomJoined,
    /// An `error`; whether its code is `rate_limited`.
    Error {
        rate_limited: bool,
    },
    /// Anything else (`welcome`, presence, ...): ignored.
    Other,
}

/// The value of the first string field `"key"` in `msg` (no escapes
/// expected), wherever it is nested.
pub fn string_field<'a>(msg: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut at = 0;
    loop {
        let i = at + find(&msg[at..], key)?;
        at = i + key.len();
        let quoted = i > 0 && msg[i - 1] == b'"' && msg.get(at) == Some(&b'"');
        if !quoted {
            continue;
        }
        let rest = msg[at + 1..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let value = rest.trim_ascii_start().strip_prefix(b"\"")?;
        return Some(&value[..value.iter().position(|&b| b == b'"')?]);
    }
}

/// The kind of the server message `msg` (its `"message_type"`).
pub fn kind(msg: &[u8]) -> Kind {
    match string_field(msg, b"message_type") {
        Some(b"room_message") => Kind::RoomMessage,
        Some(b"room_joined") => Kind::RoomJoined,
        Some(b"error") => Kind::Error {
            rate_limited: string_field(msg, b"code") == Some(b"rate_limited"),
        },
        _ => Kind::Other,
    }
}

/// The header of a `room_message` whose data object is intact: `"h"` with
/// 40 hex digits, followed by exactly the padding of a `payload`-byte
/// object (the server re-serializes compactly: same fields, same order).
pub fn room_delivery(msg: &[u8], payload: usize) -> Option<[u8; HEADER_LEN]> {
    let at = find(msg, DATA_HEAD)? + DATA_HEAD.len();
    let header = unhex_header(msg.get(at..)?)?;
    let rest = &msg[at + HEX_LEN..];
    let rest = match padding(payload) {
        None => rest,
        Some(pad) => {
            let rest = rest.strip_prefix(b"\",\"p\":\"")?;
            let (xs, rest) = (rest.get(..pad)?, &rest[pad..]);
            if !xs.iter().all(|&b| b == b'x') {
                return None;
            }
            rest
        }
    };
    rest.starts_with(b"\"}").then_some(header)
}

/// A `--jwt-secret`-signed HS256 token for user `load-{user}`, valid until
/// `exp` (Unix seconds).
pub fn token(secret: &Secret, user: u64, exp: u64) -> String {
    #[derive(Serialize)]
    struct Claims {
        sub: String,
        username: String,
        exp: u64,
    }
    let name = format!("load-{user}");
    let claims = Claims {
        sub: name.clone(),
        username: name,
        exp,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.0.as_bytes()),
    )
    .expect("HS256 signs any claims")
}

/// `s` with everything but RFC 3986's unreserved characters percent-encoded.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The upgrade target of a member of `room`: `base` (the URL's path and
/// query) with `token=` (when there is one) and `room_id=` added.
pub fn member_target(base: &str, token: Option<&str>, room: u32) -> String {
    let mut target = base.to_owned();
    if let Some(token) = token {
        target = crate::url::add_query_param(&target, &format!("token={}", percent_encode(token)));
    }
    let room = percent_encode(&room_name(room));
    crate::url::add_query_param(&target, &format!("room_id={room}"))
}

/// The path rooms are created at: the URL's path (without its query) and
/// `/rooms` (`/ws` gives `/ws/rooms`).
pub fn rooms_path(target: &str) -> String {
    let path = target
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_end_matches('/');
    format!("{path}/rooms")
}

/// One member's state: its room, its publishers' sequences, whether it
/// joined, and the server message being read.
#[derive(Debug)]
pub struct Member {
    pub room: u32,
    /// User number: the connection is `load-{user}`.
    pub user: u64,
    /// Its publisher index, for a publishing member.
    pub publisher: Option<u32>,
    /// The global index of its room's first publisher.
    first_publisher: u32,
    /// Where it is in each of its room's publishers' sequences.
    pub sub: Subscriber,
    /// The server sent `room_joined`.
    pub joined: bool,
    /// The first [`MAX_KEPT`] bytes of the server message being read.
    buf: Vec<u8>,
}

impl Member {
    /// Listening member `s`.
    pub fn listener(plan: &RealtimePlan, s: u64) -> Member {
        Member::new(plan, plan.room_of_listener(s), s, None)
    }

    /// Publisher `p` of `subscribers` listeners.
    pub fn publisher(plan: &RealtimePlan, p: u32, subscribers: u64) -> Member {
        let room = plan.room_of_publisher(p);
        Member::new(plan, room, subscribers + u64::from(p), Some(p))
    }

    fn new(plan: &RealtimePlan, room: u32, user: u64, publisher: Option<u32>) -> Member {
        Member {
            room,
            user,
            publisher,
            first_publisher: room * plan.publishers_per_room,
            sub: Subscriber::new(plan.publishers_per_room as usize),
            joined: false,
            buf: Vec::new(),
        }
    }

    /// Messages of `published` (a count per publisher, all rooms) this
    /// member has neither received nor counted as skipped.
    pub fn missing(&self, published: &[u64]) -> u64 {
        let first = self.first_publisher as usize;
        let n = self.sub.publishers();
        published
            .get(first..first + n)
            .map_or(0, |mine| self.sub.missing(mine))
    }
}

/// What members of one thread saw beyond the common counters; merged
/// across threads.
#[derive(Debug, Clone, Default)]
pub struct RealtimeStats {
    /// Members that had their `room_joined`, in all and per room.
    pub joins: u64,
    pub room_members: Vec<u64>,
    /// Deliveries members should have had: for each room, its members
    /// (joined) × what its publishers published.
    pub expected: u64,
    /// Server messages ignored (welcome, presence, ...).
    pub ignored: u64,
    /// Threads whose settling ended at the deadline instead of in quiet.
    pub unsettled: u64,
}

impl RealtimeStats {
    /// Counts a member of `room` joined.
    pub fn joined(&mut self, room: u32) {
        let room = room as usize;
        if self.room_members.len() <= room {
            self.room_members.resize(room + 1, 0);
        }
        self.room_members[room] += 1;
        self.joins += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &RealtimeStats) {
        if self.room_members.len() < other.room_members.len() {
            self.room_members.resize(other.room_members.len(), 0);
        }
        for (a, b) in self.room_members.iter_mut().zip(&other.room_members) {
            *a += b;
        }
        self.joins += other.joins;
        self.expected += other.expected;
        self.ignored += other.ignored;
        self.unsettled += other.unsettled;
    }

    /// Server messages heard so far other than deliveries and errors.
    pub fn heard(&self) -> u64 {
        self.joins + self.ignored
    }

    /// What this thread's members should have had of `published` (a count
    /// per publisher).
    pub fn expected_of(&self, plan: &RealtimePlan, published: &[u64]) -> u64 {
        self.room_members
            .iter()
            .enumerate()
            .map(|(room, members)| {
                let range = plan.publishers_of(room as u32);
                members * published.get(range).map_or(0, |p| p.iter().sum::<u64>())
            })
            .sum()
    }
}

/// Reads server messages for one member: keeps the first bytes of each, then
/// sorts it by kind; checks deliveries (header, data, publisher, sequence)
/// and records their latency; answers pings and closes into `replies`.
pub struct RealtimeSink<'a> {
    pub member: &'a mut Member,
    pub msgs: &'a mut Msgs,
    pub stats: &'a mut Stats,
    pub replies: &'a mut Vec<u8>,
    pub mask: [u8; 4],
    /// Bytes of the data object every publisher sends.
    pub payload: usize,
    /// Receive time, ns since the run's epoch.
    pub now_ns: u64,
}

impl RealtimeSink<'_> {
    fn room_message(&mut self) {
        let m = &mut *self.member;
        let Some(header) = room_delivery(&m.buf, self.payload) else {
            return self.stats.fail(Cause::EchoMismatch, 1);
        };
        let (seq, sent_ns, publisher) = parse_header(&header);
        let Some(local) = publisher.checked_sub(m.first_publisher) else {
            return self.stats.fail(Cause::EchoMismatch, 1);
        };
        match m.sub.see(local as usize, seq) {
            None => return self.stats.fail(Cause::EchoMismatch, 1),
            Some(Seen::Behind) => return self.stats.fail(Cause::Duplicate, 1),
            Some(Seen::After(skipped)) => self.stats.fail(Cause::FanoutGap, skipped),
            Some(Seen::InOrder) => {}
        }
        self.stats.received += 1;
        self.stats.bytes_received += self.payload as u64;
        let us = self.now_ns.saturating_sub(sent_ns) / 1000;
        self.stats.rtt.saturating_record(us.max(1));
    }
}

impl FrameSink for RealtimeSink<'_> {
    fn data(&mut self, offset: u64, chunk: &[u8]) {
        let kept = &mut self.member.buf;
        if offset == 0 {
            kept.clear();
        }
        let room = MAX_KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn message_end(&mut self, len: u64, text: bool) {
        if len == 0 {
            self.member.buf.clear();
        }
        match kind(&self.member.buf) {
            Kind::RoomMessage if text => self.room_message(),
            Kind::RoomJoined if !self.member.joined => {
                self.member.joined = true;
                self.stats.realtime.joined(self.member.room);
            }
            Kind::Error { rate_limited: true } => self.stats.fail(Cause::RateLimited, 1),
            Kind::Error { .. } => self.stats.fail(Cause::ServerError, 1),
            _ => self.stats.realtime.ignored += 1,
        }
        crate::wire::recycle(&mut self.member.buf);
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        answer_control(self.msgs, self.replies, self.mask, opcode, payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::header;
    use crate::wire::FrameDecoder;
    use ringgate::protocol::frame::decode_header;
    use ringgate::protocol::mask::apply_mask;
    use ringgate::protocol::writer::encode_frame;

    fn plan(rooms: u32, per_room: u32) -> RealtimePlan {
        RealtimePlan {
            rate: 10,
            duration: Duration::from_secs(1),
            rooms,
            publishers_per_room: per_room,
            jwt_secret: None,
            admin_token: None,
            settle: Duration::ZERO,
        }
    }

    #[test]
    fn members_and_publishers_spread_over_rooms() {
        let p = plan(4, 2);
        let rooms: Vec<u32> = (0..6).map(|s| p.room_of_listener(s)).collect();
        assert_eq!(rooms, [0, 1, 2, 3, 0, 1]);
        let rooms: Vec<u32> = (0..8).map(|i| p.room_of_publisher(i)).collect();
        assert_eq!(rooms, [0, 0, 1, 1, 2, 2, 3, 3]);
        assert_eq!(p.publishers_of(3), 6..8);
        let m = Member::publisher(&p, 5, 100);
        assert_eq!((m.room, m.user, m.publisher), (2, 105, Some(5)));
        let m = Member::listener(&p, 7);
        assert_eq!((m.room, m.user, m.publisher), (3, 7, None));
        assert_eq!(format!("{:?}", Secret("hush".into())), "Secret(..)");
    }

    #[test]
    fn payload_sizes() {
        assert_eq!(MIN_DATA, 48);
        for ok in [48, 55, 64, 4096] {
            assert!(check_payload(ok).is_ok(), "{ok}");
            let data = data_object(ok);
            assert_eq!(data.len(), ok);
            serde_json::from_slice::<serde_json::Value>(&data).unwrap();
        }
        for bad in [0, 47, 49, 54] {
            assert!(check_payload(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_headers_round_trip() {
        let h = header(0x0102_0304_0506_0708, 99, 7);
        let hex = hex_header(&h);
        assert_eq!(&hex[..16], b"0807060504030201");
        assert_eq!(unhex_header(&hex), Some(h));
        assert_eq!(unhex_header(&hex.to_ascii_uppercase()), Some(h));
        assert_eq!(unhex_header(&hex[..39]), None);
        let mut bad = hex;
        bad[3] = b'g';
        assert_eq!(unhex_header(&bad), None);
    }

    /// The JSON a client sends through `publish_template`, unmasked.
    fn published(room: u32, payload: usize, h: &[u8; HEADER_LEN]) -> serde_json::Value {
        let t = publish_template(room, payload, [1, 2, 3, 4]);
        let mut frame = Vec::new();
        t.append_with(&mut frame, &hex_header(h));
        let (fh, n) = decode_header(&frame).unwrap().unwrap();
        assert_eq!(fh.opcode, OpCode::Text);
        let mut body = frame[n..].to_vec();
        apply_mask(&mut body, fh.mask.unwrap(), 0);
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn publishes_a_room_message_envelope() {
        let h = header(3, 4, 5);
        let v = published(2, 64, &h);
        assert_eq!(v["message_type"], "room_message");
        assert_eq!(v["room"], "load-2");
        let data = serde_json::to_vec(&v["data"]).unwrap();
        assert_eq!(data.len(), 64);
        assert_eq!(v["data"]["h"].as_str().unwrap().as_bytes(), hex_header(&h));
        assert_eq!(v["data"]["p"].as_str().unwrap(), "x".repeat(64 - 55));
        assert!(published(0, 48, &h)["data"].get("p").is_none());
    }

    /// A server envelope around the data object `data`, fields in another order.
    fn envelope(kind: &str, data: &str) -> String {
        format!(
            "{{\"id\":\"6f1c\",\"message_type\":\"{kind}\",\"data\":{data},\
             \"timestamp\":\"2025-01-01T00:00:00Z\",\"from_user_id\":\"load-1\",\"room\":\"load-0\"}}"
        )
    }

    fn data_with(h: &[u8; HEADER_LEN], payload: usize) -> String {
        let mut data = data_object(payload);
        data[DATA_HEAD.len()..DATA_HEAD.len() + HEX_LEN].copy_from_slice(&hex_header(h));
        String::from_utf8(data).unwrap()
    }

    #[test]
    fn reads_envelopes() {
        let h = header(9, 10, 1);
        let msg = envelope("room_message", &data_with(&h, 64));
        assert_eq!(kind(msg.as_bytes()), Kind::RoomMessage);
        assert_eq!(room_delivery(msg.as_bytes(), 64), Some(h));
        assert_eq!(room_delivery(msg.as_bytes(), 65), None, "padding cut short");
        assert_eq!(
            room_delivery(msg.as_bytes(), 48),
            None,
            "padding not expected"
        );
        let bare = envelope("room_message", &data_with(&h, 48));
        assert_eq!(room_delivery(bare.as_bytes(), 48), Some(h));
        assert_eq!(
            kind(envelope("room_joined", "{}").as_bytes()),
            Kind::RoomJoined
        );
        assert_eq!(kind(envelope("welcome", "{}").as_bytes()), Kind::Other);
        assert_eq!(kind(envelope("user_joined", "{}").as_bytes()), Kind::Other);
        assert_eq!(kind(b"{\"data\":{}}"), Kind::Other);
        assert_eq!(kind(b"{\"message_type\"}"), Kind::Other);
        assert_eq!(
            kind(br#"{"x":"message_type", "message_type" : "room_joined"}"#),
            Kind::RoomJoined
        );
        assert_eq!(
            kind(br#"{ "message_type": "error", "data": { "code": "rate_limited" } }"#),
            Kind::Error { rate_limited: true }
        );
        assert_eq!(
            kind(envelope("error", r#"{"code":"rate_limited","message":"slow down"}"#).as_bytes()),
            Kind::Error { rate_limited: true }
        );
        assert_eq!(
            kind(envelope("error", r#"{"code":"room_not_found"}"#).as_bytes()),
            Kind::Error {
                rate_limited: false
            }
        );
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"a", b"ab"), None);
    }

    #[test]
    fn signs_tokens_and_builds_targets() {
        let secret = Secret("s3cret".into());
        let t = token(&secret, 42, 4_000_000_000);
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.validate_exp = false;
        let got = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        assert_eq!(got.claims["sub"], "load-42");
        assert_eq!(got.claims["username"], "load-42");
        assert_eq!(got.claims["exp"], 4_000_000_000u64);
        assert_eq!(percent_encode("a b/c~d.e_f-g"), "a%20b%2Fc~d.e_f-g");
        assert_eq!(
            member_target("/ws", Some("x.y"), 3),
            "/ws?token=x.y&room_id=load-3"
        );
        assert_eq!(member_target("/ws?v=1", None, 0), "/ws?v=1&room_id=load-0");
        assert_eq!(rooms_path("/ws?v=1"), "/ws/rooms");
        assert_eq!(rooms_path("/ws/"), "/ws/rooms");
        assert_eq!(rooms_path("/"), "/rooms");
    }

    fn frames(texts: &[String]) -> Vec<u8> {
        let mut wire = Vec::new();
        for t in texts {
            encode_frame(&mut wire, OpCode::Text, t.as_bytes());
        }
        wire
    }

    /// An unmasked frame with first byte `b0` (FIN, opcode) and `payload`.
    fn raw_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
        out.push(b0);
        match u16::try_from(payload.len()) {
            Ok(n) if n < 126 => out.push(n as u8),
            Ok(n) => {
                out.push(126);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Err(_) => unreachable!("small test frames"),
        }
        out.extend_from_slice(payload);
    }

    #[test]
    fn a_member_checks_its_rooms_deliveries() {
        let p = plan(2, 2);
        // A member of room 1: publishers 2 and 3.
        let mut wire = frames(&[
            envelope("welcome", "{}"),
            envelope("room_joined", "{}"),
            envelope("user_joined", "{}"),
            envelope("room_joined", "{}"),
        ]);
        let mut msgs = vec![];
        for (seq, publisher) in [(0, 2), (0, 3), (1, 2), (3, 2), (1, 3), (1, 3), (0, 0)] {
            msgs.push(envelope(
                "room_message",
                &data_with(&header(seq, 1_000, publisher), 64),
            ));
        }
        msgs.push(envelope("room_message", &data_with(&header(4, 0, 2), 70)));
        msgs.push(envelope("error", r#"{"code":"rate_limited"}"#));
        msgs.push(envelope("error", r#"{"code":"bad_request"}"#));
        wire.extend(frames(&msgs));
        encode_frame(&mut wire, OpCode::Ping, b"p");
        // A fragmented room message: text frame without FIN, then a continuation.
        let last = envelope("room_message", &data_with(&header(2, 1_000, 3), 64));
        let (a, b) = last.as_bytes().split_at(50);
        raw_frame(&mut wire, 0x01, a);
        raw_frame(&mut wire, 0x80, b);
        for piece in [1, 7, wire.len()] {
            let mut m = Member::listener(&p, 1);
            let mut stats = Stats::default();
            let (mut msgs, mut replies) = (Msgs::default(), Vec::new());
            let mut sink = RealtimeSink {
                member: &mut m,
                msgs: &mut msgs,
                stats: &mut stats,
                replies: &mut replies,
                mask: [1, 2, 3, 4],
                payload: 64,
                now_ns: 3_000,
            };
            let mut dec = FrameDecoder::default();
            for chunk in wire.chunks(piece) {
                dec.feed(chunk, &mut sink).unwrap();
            }
            assert!(m.joined);
            assert_eq!(stats.realtime.joins, 1, "one join counted");
            assert_eq!(stats.realtime.room_members, [0, 1]);
            assert_eq!(
                stats.realtime.ignored, 3,
                "welcome, presence, a second join"
            );
            // p2: 0, 1, 3 (2 skipped); p3: 0, 1, 2, and 1 again.
            assert_eq!(stats.received, 6);
            assert_eq!(m.sub.delivered, 6);
            assert_eq!(stats.failures_of(Cause::FanoutGap), 1);
            assert_eq!(stats.failures_of(Cause::Duplicate), 1);
            // Publisher 0 is in room 0; a 70-byte data object is not ours.
            assert_eq!(stats.failures_of(Cause::EchoMismatch), 2);
            assert_eq!(stats.failures_of(Cause::RateLimited), 1);
            assert_eq!(stats.failures_of(Cause::ServerError), 1);
            assert_eq!((stats.rtt.len(), stats.rtt.max()), (6, 2));
            assert_eq!(m.missing(&[9, 9, 4, 3]), 0);
            assert_eq!(m.missing(&[9, 9, 6, 5]), 2 + 2);
            assert_eq!(
                decode_header(&replies).unwrap().unwrap().0.opcode,
                OpCode::Pong
            );
        }
        let m = Member::listener(&p, 1);
        assert_eq!(m.missing(&[1, 1]), 0, "its publishers are not in the list");
    }

    #[test]
    fn expected_deliveries_per_room() {
        let p = plan(3, 1);
        let mut a = RealtimeStats::default();
        a.joined(0);
        a.joined(2);
        let mut b = RealtimeStats::default();
        b.joined(0);
        b.expected = 5;
        a.merge(&b);
        assert_eq!(a.room_members, [2, 0, 1]);
        assert_eq!((a.joins, a.expected), (3, 5));
        assert_eq!(a.expected_of(&p, &[10, 20, 30]), 2 * 10 + 30);
    }
}
