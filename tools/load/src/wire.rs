//! The client's WebSocket framing, sans IO and allocation-free per message.
//!
//! [`MessageTemplate`] holds one masked client frame built with ringgate's
//! `encode_client_frame`; each send copies it and rewrites only the masked
//! sequence stamp at the front of the payload. [`FrameDecoder`] streams server
//! frames through ringgate's `decode_header`, handing payload chunks to a
//! [`FrameSink`] without buffering data payloads (only a partial header and a
//! control payload of at most 125 bytes are kept). Once permessage-deflate is
//! agreed ([`FrameDecoder::allow_compressed`]), a message with RSV1 on its
//! first frame goes to the sink's `compressed_*` methods instead, which
//! `deflate_codec::Inflating` implements.

use ringgate::protocol::frame::{decode_header, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use ringgate::protocol::writer::encode_client_frame;
use ringgate::protocol::ProtocolError;

/// How many leading payload bytes carry the sequence stamp, at most.
pub const MAX_STAMP: usize = 16;

/// Empties a buffer that held one incoming message for the next, giving
/// back what an unusually large one made it grow past 4 KiB.
pub fn recycle(buf: &mut Vec<u8>) {
    buf.clear();
    if buf.capacity() > 4096 {
        buf.shrink_to(4096);
    }
}

/// The stamp for message `seq`: 8 little-endian bytes for binary messages,
/// 16 lowercase hex digits for text (so the payload stays UTF-8).
pub fn stamp(seq: u64, text: bool) -> [u8; MAX_STAMP] {
    let mut out = [0u8; MAX_STAMP];
    if text {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in out.iter_mut().enumerate() {
            *b = HEX[((seq >> (60 - 4 * i)) & 0xF) as usize];
        }
    } else {
        out[..8].copy_from_slice(&seq.to_le_bytes());
    }
    out
}

/// How many payload bytes the stamp takes for a payload of `len` bytes.
pub fn stamp_len(len: usize, text: bool) -> usize {
    len.min(if text { 16 } else { 8 })
}

/// One pre-encoded, masked data frame, re-stamped per message.
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    frame: Vec<u8>,
    /// The payload unmasked, for the compressing path.
    payload: Box<[u8]>,
    header_len: usize,
    /// Where the stamp (or [`MessageTemplate::append_with`]'s head) starts
    /// in the payload.
    stamp_at: usize,
    stamp_len: usize,
    mask: [u8; 4],
    text: bool,
}

impl MessageTemplate {
    /// A `len`-byte text or binary message masked with `mask`. The filler
    /// after the stamp is printable ASCII, valid for text and binary alike.
    pub fn new(len: usize, text: bool, mask: [u8; 4]) -> Self {
        let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let mut t = MessageTemplate::of_payload(&payload, text, mask, 0);
        t.stamp_len = stamp_len(len, text);
        t
    }

    /// A message of exactly `payload` whose variable part (written by
    /// [`MessageTemplate::append_with`]) starts `stamp_at` bytes in.
    pub fn of_payload(payload: &[u8], text: bool, mask: [u8; 4], stamp_at: usize) -> Self {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        let mut frame = Vec::with_capacity(payload.len() + MAX_HEADER_LEN);
        encode_client_frame(&mut frame, true, opcode, payload, mask);
        MessageTemplate {
            header_len: frame.len() - payload.len(),
            frame,
            payload: payload.into(),
            stamp_at,
            stamp_len: 0,
            mask,
            text,
        }
    }

    /// Bytes per encoded frame.
    #[cfg(test)]
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Payload bytes per message.
    #[cfg(test)]
    pub fn payload_len(&self) -> usize {
        self.frame.len() - self.header_len
    }

    /// Appends message `seq` to `out` (the send path goes through
    /// `deflate_codec::append_message` with [`MessageTemplate::seq_head`]).
    #[cfg(test)]
    pub fn append(&self, out: &mut Vec<u8>, seq: u64) {
        let (head, len) = self.seq_head(seq);
        self.append_with(out, &head[..len]);
    }

    /// The stamp of message `seq` and how many of its bytes the payload
    /// carries: the `head` that [`MessageTemplate::append`] writes.
    pub fn seq_head(&self, seq: u64) -> ([u8; MAX_STAMP], usize) {
        (stamp(seq, self.text), self.stamp_len)
    }

    /// The message's opcode (Text or Binary).
    pub fn opcode(&self) -> OpCode {
        if self.text {
            OpCode::Text
        } else {
            OpCode::Binary
        }
    }

    /// The mask every frame of this template is sent with.
    pub fn mask(&self) -> [u8; 4] {
        self.mask
    }

    /// Replaces `out` with the unmasked payload of the message
    /// [`MessageTemplate::append_with`] would send with `head`.
    pub fn payload_with(&self, head: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.payload);
        out[self.stamp_at..self.stamp_at + head.len()].copy_from_slice(head);
    }

    /// Appends a message whose payload has `head` at the template's stamp
    /// position (it must fit in the payload; the rest is the template's).
    pub fn append_with(&self, out: &mut Vec<u8>, head: &[u8]) {
        let start = out.len() + self.header_len + self.stamp_at;
        out.extend_from_slice(&self.frame);
        for (i, (dst, s)) in out[start..start + head.len()]
            .iter_mut()
            .zip(head)
            .enumerate()
        {
            *dst = s ^ self.mask[(self.stamp_at + i) & 3];
        }
    }
}

/// What a [`FrameDecoder`] hands out.
pub trait FrameSink {
    /// `chunk` holds payload bytes of a data message starting at byte
    /// `offset` of that message (messages may span several frames).
    fn data(&mut self, offset: u64, chunk: &[u8]);
    /// The data message ended after `len` payload bytes; `text` says whether
    /// it opened with a text frame.
    fn message_end(&mut self, len: u64, text: bool);
    /// A whole Ping, Pong or Close frame.
    fn control(&mut self, opcode: OpCode, payload: &[u8]);
    /// `chunk` holds the next bytes, as received, of a compressed message
    /// (RSV1 on its first frame). Only once the decoder allows them.
    fn compressed_data(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let _ = chunk;
        Err(DecodeError::ReservedBits)
    }
    /// The compressed message ended; `text` as in `message_end`.
    fn compressed_end(&mut self, text: bool) -> Result<(), DecodeError> {
        let _ = text;
        Err(DecodeError::ReservedBits)
    }
}

/// Why a server's byte stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A header that `decode_header` refused.
    Header(ProtocolError),
    /// Server frames must not be masked (RFC 6455 §5.1).
    MaskedFrame,
    /// RSV bits with no extension negotiated (or RSV1 on a continuation or
    /// control frame with one).
    ReservedBits,
    /// A continuation with no message open, or a new message inside one.
    BadContinuation,
    /// A compressed message that does not inflate (bad data, or past the
    /// largest payload).
    Inflate,
}

/// Streams server frames; keeps at most a partial header and one control payload.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    carry: [u8; MAX_HEADER_LEN],
    carry_len: usize,
    /// Payload bytes left in the current frame, if one is open.
    remaining: u64,
    in_frame: bool,
    frame_opcode: OpCode,
    frame_fin: bool,
    /// Bytes so far in the current data message, if one is open.
    msg_len: u64,
    in_message: bool,
    msg_text: bool,
    /// The open message is compressed (RSV1 on its first frame).
    msg_compressed: bool,
    /// permessage-deflate was agreed: RSV1 may start a data message.
    compressed_ok: bool,
    ctl: [u8; MAX_CONTROL_PAYLOAD],
    ctl_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder {
            carry: [0; MAX_HEADER_LEN],
            carry_len: 0,
            remaining: 0,
            in_frame: false,
            frame_opcode: OpCode::Binary,
            frame_fin: true,
            msg_len: 0,
            in_message: false,
            msg_text: false,
            msg_compressed: false,
            compressed_ok: false,
            ctl: [0; MAX_CONTROL_PAYLOAD],
            ctl_len: 0,
        }
    }
}

impl FrameDecoder {
    /// From now on, RSV1 on the first frame of a data message marks it
    /// compressed (permessage-deflate agreed).
    pub fn allow_compressed(&mut self) {
        self.compressed_ok = true;
    }

    /// Consumes all of `input`, calling `sink` for everything that completes.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl FrameSink) -> Result<(), DecodeError> {
        while !input.is_empty() || (self.in_frame && self.remaining == 0) {
            if self.in_frame {
                let take = (input.len() as u64).min(self.remaining) as usize;
                let (chunk, rest) = input.split_at(take);
                input = rest;
                self.payload(chunk, sink)?;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.end_frame(sink)?;
                }
                continue;
            }
            input = self.header(input)?;
        }
        Ok(())
    }

    /// Decodes a header from the carry plus `input`; returns what is left.
    fn header<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        let (decoded, used) = if self.carry_len == 0 {
            match decode_header(input).map_err(DecodeError::Header)? {
                Some((h, n)) => ((h, n), n),
                None => {
                    self.carry[..input.len()].copy_from_slice(input);
                    self.carry_len = input.len();
                    return Ok(&[]);
                }
            }
        } else {
            let old = self.carry_len;
            let add = input.len().min(MAX_HEADER_LEN - old);
            self.carry[old..old + add].copy_from_slice(&input[..add]);
            match decode_header(&self.carry[..old + add]).map_err(DecodeError::Header)? {
                Some((h, n)) => ((h, n), n - old),
                None => {
                    self.carry_len = old + add;
                    return Ok(&input[add..]);
                }
            }
        };
        self.carry_len = 0;
        let (h, _) = decoded;
        if h.mask.is_some() {
            return Err(DecodeError::MaskedFrame);
        }
        let starts_message = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let compressed = h.rsv == RSV1 && self.compressed_ok && starts_message;
        if h.rsv != 0 && !compressed {
            return Err(DecodeError::ReservedBits);
        }
        match h.opcode {
            OpCode::Continuation if !self.in_message => return Err(DecodeError::BadContinuation),
            OpCode::Text | OpCode::Binary if self.in_message => {
                return Err(DecodeError::BadContinuation)
            }
            OpCode::Text | OpCode::Binary => {
                self.in_message = true;
                self.msg_len = 0;
                self.msg_text = h.opcode == OpCode::Text;
                self.msg_compressed = compressed;
            }
            _ => self.ctl_len = 0,
        }
        self.in_frame = true;
        self.remaining = h.payload_len;
        self.frame_opcode = h.opcode;
        self.frame_fin = h.fin;
        Ok(&input[used..])
    }

    fn payload(&mut self, chunk: &[u8], sink: &mut impl FrameSink) -> Result<(), DecodeError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.frame_opcode.is_control() {
            // decode_header caps control payloads at 125 bytes.
            self.ctl[self.ctl_len..self.ctl_len + chunk.len()].copy_from_slice(chunk);
            self.ctl_len += chunk.len();
        } else if self.msg_compressed {
            sink.compressed_data(chunk)?;
        } else {
            sink.data(self.msg_len, chunk);
            self.msg_len += chunk.len() as u64;
        }
        Ok(())
    }

    fn end_frame(&mut self, sink: &mut impl FrameSink) -> Result<(), DecodeError> {
        self.in_frame = false;
        if self.frame_opcode.is_control() {
            sink.control(self.frame_opcode, &self.ctl[..self.ctl_len]);
        } else if self.frame_fin {
            self.in_message = false;
            if self.msg_compressed {
                return sink.compressed_end(self.msg_text);
            }
            sink.message_end(self.msg_len, self.msg_text);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ringgate::protocol::mask::apply_mask;
    use ringgate::protocol::writer::{encode_close, encode_frame};

    /// What a sink saw: whole messages (with their text flag) and controls
    /// (with their payloads). The deflate codec's tests use it too.
    #[derive(Default)]
    pub(crate) struct Collect {
        pub(crate) messages: Vec<(Vec<u8>, bool)>,
        current: Vec<u8>,
        pub(crate) controls: Vec<(OpCode, Vec<u8>)>,
    }

    impl FrameSink for Collect {
        fn data(&mut self, offset: u64, chunk: &[u8]) {
            assert_eq!(offset, self.current.len() as u64);
            self.current.extend_from_slice(chunk);
        }
        fn message_end(&mut self, len: u64, text: bool) {
            assert_eq!(len, self.current.len() as u64);
            self.messages
                .push((std::mem::take(&mut self.current), text));
        }
        fn control(&mut self, opcode: OpCode, payload: &[u8]) {
            self.controls.push((opcode, payload.to_vec()));
        }
    }

    /// Feeds `bytes` in pieces of `step` bytes.
    fn feed_in_steps(bytes: &[u8], step: usize) -> Result<Collect, DecodeError> {
        let mut dec = FrameDecoder::default();
        let mut sink = Collect::default();
        for piece in bytes.chunks(step) {
            dec.feed(piece, &mut sink)?;
        }
        Ok(sink)
    }

    #[test]
    fn template_round_trips_through_the_server_decoder() {
        for (len, text) in [
            (0, false),
            (3, false),
            (20, true),
            (200, false),
            (70_000, true),
        ] {
            let t = MessageTemplate::new(len, text, [0xA1, 0xB2, 0xC3, 0xD4]);
            assert_eq!(t.payload_len(), len);
            let mut out = b"xy".to_vec();
            t.append(&mut out, 0x0102_0304_0506_0708);
            t.append(&mut out, 7);
            assert_eq!(out.len(), 2 + 2 * t.frame_len());
            let mut rest = &out[2..];
            for seq in [0x0102_0304_0506_0708u64, 7] {
                let (h, n) = decode_header(rest).unwrap().unwrap();
                assert!(h.fin);
                assert_eq!(h.opcode, if text { OpCode::Text } else { OpCode::Binary });
                assert_eq!(h.payload_len, len as u64);
                let mut payload = rest[n..n + len].to_vec();
                apply_mask(&mut payload, h.mask.unwrap(), 0);
                let sl = stamp_len(len, text);
                assert_eq!(payload[..sl], stamp(seq, text)[..sl]);
                assert!(payload[sl..].iter().all(u8::is_ascii_lowercase));
                if text {
                    assert!(std::str::from_utf8(&payload).is_ok());
                }
                rest = &rest[n + len..];
            }
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn a_template_of_any_payload_rewrites_its_stamp_in_place() {
        let payload = b"{\"h\":\"----\",\"p\":\"xyz\"}";
        for stamp_at in [0, 1, 6, 7] {
            let t = MessageTemplate::of_payload(payload, true, [0xA1, 0xB2, 0xC3, 0xD4], stamp_at);
            let mut out = Vec::new();
            t.append_with(&mut out, b"abcd");
            let (h, n) = decode_header(&out).unwrap().unwrap();
            assert_eq!(
                (h.opcode, h.payload_len),
                (OpCode::Text, payload.len() as u64)
            );
            let mut got = out[n..].to_vec();
            apply_mask(&mut got, h.mask.unwrap(), 0);
            let mut want = payload.to_vec();
            want[stamp_at..stamp_at + 4].copy_from_slice(b"abcd");
            assert_eq!(got, want, "stamp at {stamp_at}");
        }
    }

    #[test]
    fn stamps() {
        assert_eq!(&stamp(0xAB, true), b"00000000000000ab");
        assert_eq!(stamp(0x0102, false)[..8], [2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(stamp_len(3, false), 3);
        assert_eq!(stamp_len(100, false), 8);
        assert_eq!(stamp_len(100, true), 16);
    }

    #[test]
    fn decodes_server_frames_split_anywhere() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, OpCode::Binary, b"hello");
        encode_frame(&mut wire, OpCode::Ping, b"pp");
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        encode_frame(&mut wire, OpCode::Text, &big);
        // A fragmented message with a pong in between.
        wire.extend_from_slice(&[0x02, 3, b'a', b'b', b'c']);
        encode_frame(&mut wire, OpCode::Pong, b"");
        wire.extend_from_slice(&[0x80, 2, b'd', b'e']);
        encode_frame(&mut wire, OpCode::Binary, b"");
        encode_close(&mut wire, 1000, "bye");
        for step in [1, 2, 3, 7, 13, 14, 15, 1000, wire.len()] {
            let got = feed_in_steps(&wire, step).unwrap();
            assert_eq!(
                got.messages,
                [
                    (b"hello".to_vec(), false),
                    (big.clone(), true),
                    (b"abcde".to_vec(), false),
                    (Vec::new(), false),
                ],
                "step {step}"
            );
            let ops: Vec<OpCode> = got.controls.iter().map(|c| c.0).collect();
            assert_eq!(ops, [OpCode::Ping, OpCode::Pong, OpCode::Close]);
            assert_eq!(got.controls[0].1, b"pp");
            assert_eq!(&got.controls[2].1[2..], b"bye");
        }
    }

    #[test]
    fn refuses_bad_server_streams() {
        let mut masked = Vec::new();
        encode_client_frame(&mut masked, true, OpCode::Binary, b"x", [1, 2, 3, 4]);
        let cases: [(&[u8], DecodeError); 5] = [
            (&masked, DecodeError::MaskedFrame),
            (&[0xC2, 0], DecodeError::ReservedBits),
            (&[0x80, 0], DecodeError::BadContinuation),
            (&[0x02, 1, b'a', 0x82, 0], DecodeError::BadContinuation),
            (
                &[0x83, 0],
                DecodeError::Header(ProtocolError::ReservedOpcode(3)),
            ),
        ];
        for (bytes, err) in cases {
            for step in [1, bytes.len()] {
                assert_eq!(feed_in_steps(bytes, step).err(), Some(err.clone()));
            }
        }
    }
}
