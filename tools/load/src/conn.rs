//! One client connection: its nonblocking socket (opened with an optional
//! source address), its state and role, its pending output, and the
//! [`EchoSink`] that checks echoes and answers pings and closes (fanout
//! subscribers and soak connections use `fanout::DeliverySink` instead,
//! realtime members `realtime::RealtimeSink`, OCPP charge points
//! `ocpp::OcppSink`, idle `--expect-marker` listeners
//! `marker::MarkerSink`), each behind the connection's permessage-deflate codec
//! when one was agreed (`deflate_codec::Inflating`).
//! Owns no event loop; the worker drives it.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd as _;

use mio::net::TcpStream;
use ringgate::protocol::frame::OpCode;
use ringgate::protocol::writer::encode_client_frame;
use socket2::{Domain, Protocol, Socket, Type};

use crate::deflate_codec::{Codec, Inflating};
use crate::fanout::{DeliverySink, Subscriber};
use crate::marker::{Listener, MarkerSink};
use crate::ocpp::{ChargePoint, OcppSink};
use crate::realtime::{Member, RealtimeSink};
use crate::soak::Life;
use crate::stats::{Cause, Stats};
use crate::wire::{stamp, DecodeError, FrameDecoder, FrameSink};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// connect() in progress.
    Connecting,
    /// Request sent, waiting for the 101.
    Handshaking,
    /// Upgraded.
    Open,
    /// Close frame sent or received; waiting for the server to end TCP.
    Closing,
}

/// What a connection does in the run.
#[derive(Debug)]
pub enum Role {
    /// Sends messages and checks their echoes (or only holds, or only
    /// publishes: anything it receives is checked against what it sent).
    Echo,
    /// Fanout publisher number `index` over all threads.
    Publisher { index: u32 },
    /// Fanout subscriber.
    Subscriber(Box<Subscriber>),
    /// Soak connection: a subscriber with a behaviour.
    Soak(Box<Life>),
    /// Realtime room member (a publishing one too).
    Member(Box<Member>),
    /// OCPP charge point.
    ChargePoint(Box<ChargePoint>),
    /// Idle with `--expect-marker`: counts the server's messages holding it.
    Listener(Box<Listener>),
}

impl Role {
    /// Whether the worker reads this connection (a soak never-reader does not).
    pub fn reads(&self) -> bool {
        match self {
            Role::Soak(life) => life.reads(),
            _ => true,
        }
    }

    /// The subscriber whose deliveries must all arrive: a fanout subscriber
    /// or a polite soak subscriber.
    pub fn checked_subscriber(&self) -> Option<&Subscriber> {
        match self {
            Role::Subscriber(sub) => Some(sub),
            Role::Soak(life) => life.checked_subscriber(),
            _ => None,
        }
    }

    /// Messages of `published` (a count per publisher) this connection
    /// should have had and has not: a fanout subscriber's, a polite soak
    /// subscriber's, a realtime member's (of its room's publishers).
    pub fn undelivered(&self, published: &[u64]) -> u64 {
        match self {
            Role::Member(m) => m.missing(published),
            _ => self
                .checked_subscriber()
                .map_or(0, |sub| sub.missing(published)),
        }
    }

    /// The publisher index of a fanout or soak publisher or a publishing
    /// realtime member.
    pub fn publisher_index(&self) -> Option<u32> {
        match self {
            Role::Publisher { index } => Some(*index),
            Role::Member(m) => m.publisher,
            _ => None,
        }
    }

    /// Upgraded, but still waiting for the server's first word: a realtime
    /// member for its `room_joined`, a charge point for the answer to its
    /// BootNotification.
    pub fn joining(&self) -> bool {
        match self {
            Role::Member(m) => !m.joined,
            Role::ChargePoint(cp) => cp.booting(),
            _ => false,
        }
    }
}

/// The handshake's key and the response bytes so far.
#[derive(Debug)]
pub struct Pending {
    pub key: String,
    pub response: Vec<u8>,
}

/// Per-connection message accounting.
#[derive(Debug, Default)]
pub struct Msgs {
    /// Messages sent (the next sequence number).
    pub sent: u64,
    /// Echoes received (the sequence number expected next).
    pub received: u64,
    /// Send time (ns since the worker's epoch) of `seq`, at `seq % len`.
    pub ring: Box<[u64]>,
    /// The current incoming message failed the stamp check.
    pub bad_stamp: bool,
    /// A Close frame arrived.
    pub got_close: bool,
    /// Its status code (1005 when it carried none).
    pub close_code: Option<u16>,
    /// Our Close frame was queued.
    pub close_sent: bool,
    /// All `target` echoes arrived (count mode).
    pub done: bool,
}

impl Msgs {
    /// Messages sent and not yet echoed.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.received
    }
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub sock: TcpStream,
    pub state: State,
    /// When connect() was called, ns since the worker's epoch.
    pub started_ns: u64,
    pub handshake: Option<Box<Pending>>,
    pub decoder: FrameDecoder,
    /// permessage-deflate's state, when the answer agreed to it.
    pub codec: Option<Box<Codec>>,
    /// Bytes that did not fit the socket yet.
    pub out: Vec<u8>,
    pub out_pos: usize,
    pub msgs: Msgs,
    pub role: Role,
}

/// Creates a nonblocking TCP socket, binds it to `source` (port chosen at
/// connect time) and starts connecting. `Ok(true)` if already connected.
pub fn open_socket(addr: SocketAddr, source: Option<IpAddr>) -> Result<(TcpStream, bool), Cause> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
    .map_err(|_| Cause::SocketError)?;
    socket.set_nodelay(true).map_err(|_| Cause::SocketError)?;
    if let Some(ip) = source {
        if ip.is_ipv4() {
            let one: libc::c_int = 1;
            // SAFETY: a plain int option on a socket we own. Failure only
            // means the port is picked at bind time (fewer ports overall).
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        socket
            .bind(&SocketAddr::new(ip, 0).into())
            .map_err(|e| Cause::of_connect_error(&e))?;
    }
    let connected = match socket.connect(&addr.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(Cause::of_connect_error(&e)),
    };
    Ok((TcpStream::from_std(socket.into()), connected))
}

/// Result of a read pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// Nothing more to read for now.
    Drained,
    /// The server ended its side.
    Eof,
    /// A read error.
    Error,
}

impl Conn {
    /// Whether `connect()` finished: `Ok(true)` connected, `Ok(false)` not yet.
    pub fn connect_done(&self) -> Result<bool, Cause> {
        if let Ok(Some(e)) | Err(e) = self.sock.take_error() {
            return Err(Cause::of_connect_error(&e));
        }
        match self.sock.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(Cause::of_connect_error(&e)),
        }
    }

    /// Writes `bytes` now, queueing whatever the socket does not take.
    /// False on a write error.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        if self.out_pos < self.out.len() {
            self.out.extend_from_slice(bytes);
            return true;
        }
        self.out.clear();
        self.out_pos = 0;
        let mut done = 0;
        while done < bytes.len() {
            match self.sock.write(&bytes[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.extend_from_slice(&bytes[done..]);
        true
    }

    /// Writes queued output. False on a write error.
    pub fn flush(&mut self) -> bool {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out_pos = 0;
        self.out.clear();
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::new();
        }
        true
    }

    /// Feeds server bytes to the decoder with the sink this connection's
    /// role needs; returns the echoes (OCPP: CALLs answered) completed.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        spec: EchoSpec,
        stats: &mut Stats,
        replies: &mut Vec<u8>,
        now_ns: u64,
        slot: Option<usize>,
    ) -> Result<u64, DecodeError> {
        if let Role::Member(member) = &mut self.role {
            let mut sink = RealtimeSink {
                member,
                msgs: &mut self.msgs,
                stats,
                replies,
                mask: spec.mask,
                payload: spec.payload_len as usize,
                now_ns,
            };
            return decode(&mut self.decoder, &mut self.codec, bytes, &mut sink).map(|()| 0);
        }
        if let Role::Listener(listener) = &mut self.role {
            let mut sink = MarkerSink {
                listener,
                msgs: &mut self.msgs,
                stats: &mut stats.marker,
                replies,
                mask: spec.mask,
            };
            return decode(&mut self.decoder, &mut self.codec, bytes, &mut sink).map(|()| 0);
        }
        if let Role::ChargePoint(cp) = &mut self.role {
            let mut sink = OcppSink {
                cp,
                msgs: &mut self.msgs,
                stats,
                replies,
                mask: spec.mask,
                now_ns,
                completed: 0,
            };
            decode(&mut self.decoder, &mut self.codec, bytes, &mut sink)?;
            return Ok(sink.completed);
        }
        let sub = match &mut self.role {
            Role::Subscriber(sub) => Some(&mut **sub),
            Role::Soak(life) => Some(&mut life.sub),
            _ => None,
        };
        if let Some(sub) = sub {
            let mut sink = DeliverySink {
                sub,
                msgs: &mut self.msgs,
                stats,
                replies,
                spec,
                now_ns,
            };
            return decode(&mut self.decoder, &mut self.codec, bytes, &mut sink).map(|()| 0);
        }
        let mut sink = EchoSink {
            spec,
            msgs: &mut self.msgs,
            stats,
            replies,
            now_ns,
            slot,
            completed: 0,
            unsolicited: 0,
        };
        decode(&mut self.decoder, &mut self.codec, bytes, &mut sink)?;
        Ok(sink.completed)
    }

    /// Reads into `buf` until the socket is drained, handing each chunk to
    /// `on_bytes` (which returns false to stop). With `until_block`, reads
    /// until `WouldBlock`; otherwise a short read counts as drained, as
    /// edge-triggered readiness fires again on new data.
    pub fn read_into(
        &mut self,
        buf: &mut [u8],
        until_block: bool,
        mut on_bytes: impl FnMut(&mut Conn, &[u8]) -> bool,
    ) -> ReadEnd {
        loop {
            match self.sock.read(buf) {
                Ok(0) => return ReadEnd::Eof,
                Ok(n) => {
                    if !on_bytes(self, &buf[..n]) {
                        return ReadEnd::Drained;
                    }
                    if n < buf.len() && !until_block {
                        return ReadEnd::Drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadEnd::Error,
            }
        }
    }
}

/// Feeds `bytes` to `decoder` for `sink`, through `codec` when the
/// connection agreed to permessage-deflate.
pub(crate) fn decode(
    decoder: &mut FrameDecoder,
    codec: &mut Option<Box<Codec>>,
    bytes: &[u8],
    sink: &mut impl FrameSink,
) -> Result<(), DecodeError> {
    match codec {
        Some(codec) => decoder.feed(bytes, &mut Inflating { codec, inner: sink }),
        None => decoder.feed(bytes, sink),
    }
}

/// What the echo checker needs to know about the run.
#[derive(Debug, Clone, Copy)]
pub struct EchoSpec {
    pub payload_len: u64,
    pub stamp_len: usize,
    pub text: bool,
    pub mask: [u8; 4],
}

/// Checks echoes against what was sent and records their round trip;
/// queues Pong and Close replies into `replies`.
pub struct EchoSink<'a> {
    pub spec: EchoSpec,
    pub msgs: &'a mut Msgs,
    pub stats: &'a mut Stats,
    pub replies: &'a mut Vec<u8>,
    /// Receive time, ns since the worker's epoch.
    pub now_ns: u64,
    /// Sustained mode: the time slot to also record into.
    pub slot: Option<usize>,
    /// Echoes completed by this feed.
    pub completed: u64,
    /// Data messages that arrived with nothing in flight.
    pub unsolicited: u64,
}

impl FrameSink for EchoSink<'_> {
    fn data(&mut self, offset: u64, chunk: &[u8]) {
        let stamp_len = self.spec.stamp_len as u64;
        if offset >= stamp_len || self.msgs.in_flight() == 0 {
            return;
        }
        // The usual case: a whole 8-byte binary stamp, one integer compare.
        if !self.spec.text && offset == 0 && stamp_len == 8 {
            if let Some(head) = chunk.first_chunk::<8>() {
                if u64::from_le_bytes(*head) != self.msgs.received {
                    self.msgs.bad_stamp = true;
                }
                return;
            }
        }
        let expected = stamp(self.msgs.received, self.spec.text);
        let end = stamp_len.min(offset + chunk.len() as u64) as usize;
        let want = &expected[offset as usize..end];
        if chunk[..want.len()] != *want {
            self.msgs.bad_stamp = true;
        }
    }

    fn message_end(&mut self, len: u64, text: bool) {
        if self.msgs.in_flight() == 0 {
            self.unsolicited += 1;
            return;
        }
        let seq = self.msgs.received;
        self.msgs.received += 1;
        self.completed += 1;
        let bad = std::mem::take(&mut self.msgs.bad_stamp);
        if bad || len != self.spec.payload_len || text != self.spec.text {
            self.stats.fail(Cause::EchoMismatch, 1);
            return;
        }
        self.stats.received += 1;
        self.stats.bytes_received += len;
        let sent_at = self.msgs.ring[(seq % self.msgs.ring.len() as u64) as usize];
        let us = self.now_ns.saturating_sub(sent_at) / 1000;
        self.stats.rtt.saturating_record(us.max(1));
        if let Some(slot) = self.slot {
            self.stats.record_slot_rtt(slot, us);
        }
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        answer_control(self.msgs, self.replies, self.spec.mask, opcode, payload);
    }
}

/// Answers a Ping with a Pong and the server's first Close with a Close
/// (echoing its code), into `replies`; notes the Close and its code in `msgs`.
pub fn answer_control(
    msgs: &mut Msgs,
    replies: &mut Vec<u8>,
    mask: [u8; 4],
    opcode: OpCode,
    payload: &[u8],
) {
    match opcode {
        OpCode::Ping => encode_client_frame(replies, true, OpCode::Pong, payload, mask),
        OpCode::Close => {
            msgs.got_close = true;
            msgs.close_code = Some(
                payload
                    .first_chunk::<2>()
                    .map_or(1005, |c| u16::from_be_bytes(*c)),
            );
            if !msgs.close_sent {
                msgs.close_sent = true;
                let code = payload.get(..2).unwrap_or(&[]);
                encode_client_frame(replies, true, OpCode::Close, code, mask);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{stamp_len, MessageTemplate};
    use ringgate::protocol::frame::decode_header;
    use ringgate::protocol::writer::encode_frame;

    fn spec(len: usize, text: bool) -> EchoSpec {
        EchoSpec {
            payload_len: len as u64,
            stamp_len: stamp_len(len, text),
            text,
            mask: [1, 2, 3, 4],
        }
    }

    /// The unmasked payload of message `seq`, as an echo server sends it back.
    /// A sink at time 0 outside any sustained-mode slot.
    fn sink<'a>(
        spec: EchoSpec,
        msgs: &'a mut Msgs,
        stats: &'a mut Stats,
        replies: &'a mut Vec<u8>,
    ) -> EchoSink<'a> {
        EchoSink {
            spec,
            msgs,
            stats,
            replies,
            now_ns: 0,
            slot: None,
            completed: 0,
            unsolicited: 0,
        }
    }

    fn echo_of(len: usize, text: bool, seq: u64) -> Vec<u8> {
        let mut frame = Vec::new();
        MessageTemplate::new(len, text, [0; 4]).append(&mut frame, seq);
        let (h, n) = decode_header(&frame).unwrap().unwrap();
        let mut out = Vec::new();
        let op = if text { OpCode::Text } else { OpCode::Binary };
        assert_eq!(h.payload_len as usize, len);
        encode_frame(&mut out, op, &frame[n..]);
        out
    }

    #[test]
    fn checks_echoes_and_answers_controls() {
        let mut stats = Stats::default();
        let mut msgs = Msgs {
            sent: 3,
            ring: vec![0; 2].into_boxed_slice(),
            ..Msgs::default()
        };
        let mut replies = Vec::new();
        let mut wire = echo_of(20, true, 0);
        wire.extend(echo_of(20, true, 7)); // wrong sequence
        wire.extend(echo_of(20, true, 2));
        encode_frame(&mut wire, OpCode::Ping, b"hi");
        wire.extend(echo_of(20, true, 3)); // nothing in flight
        ringgate::protocol::writer::encode_close(&mut wire, 1001, "bye");
        let mut sink = EchoSink {
            now_ns: 5_000,
            slot: Some(1),
            ..sink(spec(20, true), &mut msgs, &mut stats, &mut replies)
        };
        let mut dec = FrameDecoder::default();
        for piece in wire.chunks(5) {
            dec.feed(piece, &mut sink).unwrap();
        }
        assert_eq!((sink.completed, sink.unsolicited), (3, 1));
        assert_eq!(stats.received, 2);
        assert_eq!(stats.failures_of(Cause::EchoMismatch), 1);
        assert_eq!(stats.rtt.max(), 5);
        assert_eq!(stats.slots[1].rtt.len(), 2);
        assert!(msgs.got_close && msgs.close_sent);
        assert_eq!(msgs.close_code, Some(1001));
        let (pong, n) = decode_header(&replies).unwrap().unwrap();
        assert_eq!((pong.opcode, pong.payload_len), (OpCode::Pong, 2));
        let (close, _) = decode_header(&replies[n + 2..]).unwrap().unwrap();
        assert_eq!((close.opcode, close.payload_len), (OpCode::Close, 2));
    }

    #[test]
    fn binary_stamps_are_checked() {
        let mut stats = Stats::default();
        let mut msgs = Msgs {
            sent: 3,
            ring: vec![0; 4].into_boxed_slice(),
            ..Msgs::default()
        };
        let mut replies = Vec::new();
        let mut sink = sink(spec(100, false), &mut msgs, &mut stats, &mut replies);
        let mut wire = echo_of(100, false, 0);
        wire.extend(echo_of(100, false, 5));
        wire.extend(echo_of(100, false, 2));
        for step in [3, wire.len()] {
            sink.msgs.received = 0;
            let mut dec = FrameDecoder::default();
            for piece in wire.chunks(step) {
                dec.feed(piece, &mut sink).unwrap();
            }
        }
        assert_eq!(stats.received, 4);
        assert_eq!(stats.failures_of(Cause::EchoMismatch), 2);
    }

    #[test]
    fn wrong_length_is_a_mismatch() {
        let mut stats = Stats::default();
        let mut msgs = Msgs {
            sent: 1,
            ring: vec![0; 1].into_boxed_slice(),
            ..Msgs::default()
        };
        let mut replies = Vec::new();
        let mut sink = sink(spec(21, false), &mut msgs, &mut stats, &mut replies);
        FrameDecoder::default()
            .feed(&echo_of(20, false, 0), &mut sink)
            .unwrap();
        assert_eq!(stats.failures_of(Cause::EchoMismatch), 1);
        assert_eq!(stats.received, 0);
    }
}
