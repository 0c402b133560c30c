//! A blocking OCPP-J client for the attack streams: connect and upgrade
//! (subprotocol `ocpp1.6`, any extra headers, permessage-deflate offered
//! when asked), send text messages (compressed when agreed), and read the
//! server's messages one at a time up to a deadline (inflated; the first
//! 16 MiB of each kept; pings answered; a Close answered and reported).
//! One thread owns a peer; every wait is bounded.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringgate::protocol::frame::OpCode;
use ringgate::protocol::writer::encode_client_frame;

use crate::conn::{answer_control, decode, Msgs};
use crate::deflate_codec::Codec;
use crate::handshake::{check_response, write_request, HandshakeError, Offered};
use crate::ocpp::SUBPROTOCOL;
use crate::wire::{FrameDecoder, FrameSink};

/// Bytes of one server message kept (an answer may quote a hostile name).
const MAX_KEPT: usize = crate::cli::MAX_PAYLOAD;
/// The read buffer.
const READ_BUF: usize = 64 * 1024;
/// Longest a write may block (a 1 MiB message to a server that reads slowly).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an upgrade brought no connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A well-formed answer other than 101.
    Status(u16),
    /// None in time, a broken connection, or a 101 the client must refuse.
    Failed(&'static str),
}

impl Refusal {
    /// The answer's key in a tally: `HTTP 401`, or why there was none.
    pub fn key(&self) -> String {
        match self {
            Refusal::Status(status) => format!("HTTP {status}"),
            Refusal::Failed(why) => (*why).to_owned(),
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server's Close, with its code.
    Closed(u16),
    Eof,
    Io,
    /// A frame the client refuses.
    Protocol,
    /// Our Close got no answer in time.
    CloseUnanswered,
}

impl End {
    pub fn key(self) -> String {
        match self {
            End::Closed(code) => format!("close {code}"),
            End::Eof => "eof".into(),
            End::Io => "io error".into(),
            End::Protocol => "protocol error".into(),
            End::CloseUnanswered => "close unanswered".into(),
        }
    }
}

/// What a peer upgraded with.
pub struct Upgrade<'a> {
    pub addr: SocketAddr,
    pub host: &'a str,
    pub target: &'a str,
    /// Beyond `Sec-WebSocket-Protocol: ocpp1.6`.
    pub headers: &'a [(&'a str, &'a str)],
    pub deflate: bool,
    /// For connect() and the 101.
    pub timeout: Duration,
}

/// An upgraded connection.
pub struct Peer {
    sock: TcpStream,
    decoder: FrameDecoder,
    codec: Option<Box<Codec>>,
    mask: [u8; 4],
    inbox: Inbox,
    buf: Box<[u8]>,
    out: Vec<u8>,
}

/// Opens a connection as `up` says; the peer and how long connect() to the
/// 101 took.
pub fn upgrade(up: &Upgrade<'_>, seed: &mut u64) -> Result<(Peer, Duration), Refusal> {
    let start = Instant::now();
    let mut sock = TcpStream::connect_timeout(&up.addr, up.timeout)
        .map_err(|e| Refusal::Failed(connect_failure(&e)))?;
    let _ = sock.set_nodelay(true);
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&crate::worker::xorshift(seed).to_le_bytes());
    nonce[8..].copy_from_slice(&crate::worker::xorshift(seed).to_le_bytes());
    let mask = (crate::worker::xorshift(seed) as u32).to_le_bytes();
    let mut headers = vec![("Sec-WebSocket-Protocol", SUBPROTOCOL)];
    headers.extend_from_slice(up.headers);
    if up.deflate {
        headers.push(("Sec-WebSocket-Extensions", crate::deflate::OFFER));
    }
    let mut request = Vec::new();
    let key = write_request(&mut request, up.host, up.target, &headers, nonce);
    let io = |_| Refusal::Failed("io error");
    sock.set_write_timeout(Some(up.timeout)).map_err(io)?;
    sock.write_all(&request).map_err(io)?;
    let offered = Offered {
        key: &key,
        subprotocol: Some(SUBPROTOCOL),
        deflate: up.deflate,
    };
    let mut response = Vec::new();
    let mut buf = vec![0u8; READ_BUF].into_boxed_slice();
    let upgraded = loop {
        match check_response(&response, offered) {
            Ok(Some(upgraded)) => break upgraded,
            Ok(None) => {}
            Err(HandshakeError::Status(status)) => return Err(Refusal::Status(status)),
            Err(HandshakeError::Subprotocol) => return Err(Refusal::Failed("no subprotocol")),
            Err(_) => return Err(Refusal::Failed("bad handshake")),
        }
        let left = up
            .timeout
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or(Refusal::Failed("timeout"))?;
        sock.set_read_timeout(Some(left)).map_err(io)?;
        match sock.read(&mut buf) {
            Ok(0) => return Err(Refusal::Failed("eof")),
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Refusal::Failed("timeout"))
            }
            Err(_) => return Err(Refusal::Failed("io error")),
        }
    };
    let took = start.elapsed();
    sock.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io)?;
    let mut peer = Peer {
        sock,
        decoder: FrameDecoder::default(),
        codec: upgraded.deflate.map(|agreed| Box::new(Codec::new(agreed))),
        mask,
        inbox: Inbox::default(),
        buf,
        out: Vec::new(),
    };
    if peer.codec.is_some() {
        peer.decoder.allow_compressed();
    }
    peer.feed(&response[upgraded.head_len..])
        .map_err(|_| Refusal::Failed("protocol error"))?;
    Ok((peer, took))
}

fn connect_failure(e: &std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::ConnectionRefused => "connect refused",
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timeout",
        _ => "connect error",
    }
}

impl Peer {
    /// Whether permessage-deflate was agreed.
    pub fn compressed(&self) -> bool {
        self.codec.is_some()
    }

    /// Sends `text` as one text message; the bytes its payload took on the
    /// wire (compressed or not).
    pub fn send_text(&mut self, text: &[u8]) -> Result<usize, End> {
        self.out.clear();
        let wire = match &mut self.codec {
            Some(codec) => codec.append_payload(OpCode::Text, text, self.mask, &mut self.out),
            None => {
                encode_client_frame(&mut self.out, true, OpCode::Text, text, self.mask);
                text.len()
            }
        };
        self.sock.write_all(&self.out).map_err(|_| End::Io)?;
        Ok(wire)
    }

    /// The next server message (its first 16 MiB), if one comes before
    /// `deadline`; `Err` once the connection ended.
    pub fn next_message(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, End> {
        loop {
            if let Some(message) = self.inbox.messages.pop_front() {
                return Ok(Some(message));
            }
            if let Some(code) = self.inbox.msgs.close_code {
                return Err(End::Closed(code));
            }
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Ok(None);
            };
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|_| End::Io)?;
            match self.sock.read(&mut self.buf) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => {
                    let buf = std::mem::take(&mut self.buf);
                    let fed = self.feed(&buf[..n]);
                    self.buf = buf;
                    fed?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(_) => return Err(End::Io),
            }
        }
    }

    /// Decodes `bytes` into the inbox and sends what it must answer.
    fn feed(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.inbox.mask = self.mask;
        decode(&mut self.decoder, &mut self.codec, bytes, &mut self.inbox)
            .map_err(|_| End::Protocol)?;
        if !self.inbox.replies.is_empty() {
            let replies = std::mem::take(&mut self.inbox.replies);
            self.sock.write_all(&replies).map_err(|_| End::Io)?;
        }
        Ok(())
    }

    /// Sends a Close (1000) and waits up to `grace` for the server's; how
    /// the connection ended.
    pub fn close(mut self, grace: Duration) -> End {
        if self.inbox.msgs.close_sent {
            return End::Closed(self.inbox.msgs.close_code.unwrap_or(1005));
        }
        self.inbox.msgs.close_sent = true;
        self.out.clear();
        encode_client_frame(
            &mut self.out,
            true,
            OpCode::Close,
            &1000u16.to_be_bytes(),
            self.mask,
        );
        if self.sock.write_all(&self.out).is_err() {
            return End::Io;
        }
        let deadline = Instant::now() + grace;
        loop {
            match self.next_message(deadline) {
                Ok(Some(_)) => {}
                Ok(None) => return End::CloseUnanswered,
                Err(end) => return end,
            }
        }
    }

    /// Sends a Close (1000) and drops the connection at once.
    pub fn leave(mut self) {
        self.out.clear();
        encode_client_frame(
            &mut self.out,
            true,
            OpCode::Close,
            &1000u16.to_be_bytes(),
            self.mask,
        );
        let _ = self.sock.write_all(&self.out);
    }
}

/// The server's messages, decoded; control frames answered into `replies`.
#[derive(Default)]
struct Inbox {
    current: Vec<u8>,
    messages: VecDeque<Vec<u8>>,
    msgs: Msgs,
    replies: Vec<u8>,
    mask: [u8; 4],
}

impl FrameSink for Inbox {
    fn data(&mut self, _offset: u64, chunk: &[u8]) {
        let room = MAX_KEPT.saturating_sub(self.current.len());
        self.current
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn message_end(&mut self, _len: u64, _text: bool) {
        self.messages.push_back(std::mem::take(&mut self.current));
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        answer_control(
            &mut self.msgs,
            &mut self.replies,
            self.mask,
            opcode,
            payload,
        );
    }
}
