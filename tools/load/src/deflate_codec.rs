//! One connection's permessage-deflate codec, once its answer agreed
//! (`deflate::Agreed`): it sends a message as one masked frame with RSV1
//! and the payload compressed, and, as [`Inflating`] in front of the
//! connection's own sink, inflates every message that arrives compressed
//! before the sink checks it. Each direction's zlib state is made on its
//! first message, so an idle connection costs a few words; the buffers are
//! kept from message to message. It also counts the payload bytes of both
//! directions as sent or read and as framed, for the report's ratios.

use ringgate::protocol::deflate::{Deflater, Inflater};
use ringgate::protocol::frame::{encode_header, OpCode, MAX_HEADER_LEN, RSV1};
use ringgate::protocol::mask::apply_mask;

use crate::cli::MAX_PAYLOAD;
use crate::deflate::Agreed;
use crate::wire::{DecodeError, FrameSink, MessageTemplate};

/// zlib level of what the client compresses: the cheapest that compresses.
const LEVEL: u32 = 1;

/// Most bytes a compressed message may take as received: what the largest
/// payload could compress to at worst (deflate's stored blocks).
const MAX_COMPRESSED: usize = MAX_PAYLOAD + MAX_PAYLOAD / 8 + 1024;

/// A kept buffer larger than this is given back after its message.
const KEEP: usize = 1 << 20;

/// Data messages one way on connections that agreed to deflate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub messages: u64,
    /// Of those, sent or received compressed.
    pub compressed: u64,
    /// Payload bytes before compressing or after inflating.
    pub payload_bytes: u64,
    /// Payload bytes as framed (compressed or not); headers not counted.
    pub wire_bytes: u64,
}

impl Traffic {
    fn count(&mut self, payload: usize, wire: usize, compressed: bool) {
        self.messages += 1;
        self.compressed += u64::from(compressed);
        self.payload_bytes += payload as u64;
        self.wire_bytes += wire as u64;
    }

    fn add(&mut self, other: &Traffic) {
        self.messages += other.messages;
        self.compressed += other.compressed;
        self.payload_bytes += other.payload_bytes;
        self.wire_bytes += other.wire_bytes;
    }
}

/// What `--deflate` did over a run: the answers, and both directions'
/// traffic on the connections that agreed.
#[derive(Debug, Default, Clone)]
pub struct DeflateStats {
    /// Upgrades whose answer agreed to permessage-deflate.
    pub negotiated: u64,
    /// Upgrades answered without it (uncompressed connections).
    pub declined: u64,
    /// The first agreement seen (what the server answers, as a rule).
    pub first: Option<Agreed>,
    pub sent: Traffic,
    pub received: Traffic,
}

impl DeflateStats {
    /// Counts one upgrade's answer.
    pub fn answered(&mut self, agreed: Option<Agreed>) {
        match agreed {
            Some(a) => {
                self.negotiated += 1;
                self.first.get_or_insert(a);
            }
            None => self.declined += 1,
        }
    }

    /// Adds what a connection's codec, if it had one, counted (when the
    /// connection ends).
    pub fn add_codec(&mut self, codec: Option<&Codec>) {
        if let Some(codec) = codec {
            self.sent.add(&codec.sent);
            self.received.add(&codec.received);
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &DeflateStats) {
        self.negotiated += other.negotiated;
        self.declined += other.declined;
        self.first = self.first.or(other.first);
        self.sent.add(&other.sent);
        self.received.add(&other.received);
    }
}

/// One connection's compressor, inflater, buffers and counters.
pub struct Codec {
    agreed: Agreed,
    /// Made on the first message sent, and inflater on the first received
    /// compressed.
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
    /// The message being sent: its payload, then compressed.
    plain: Vec<u8>,
    packed: Vec<u8>,
    /// The compressed message arriving, frame by frame; then inflated.
    inbound: Vec<u8>,
    inflated: Vec<u8>,
    sent: Traffic,
    received: Traffic,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("agreed", &self.agreed)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec for what `agreed` says; no zlib state yet.
    pub fn new(agreed: Agreed) -> Codec {
        Codec {
            agreed,
            deflater: None,
            inflater: None,
            plain: Vec::new(),
            packed: Vec::new(),
            inbound: Vec::new(),
            inflated: Vec::new(),
            sent: Traffic::default(),
            received: Traffic::default(),
        }
    }

    /// Appends `t`'s message with `head` at its stamp position to `out` as
    /// one masked frame, RSV1 set and the payload compressed.
    pub fn append(&mut self, t: &MessageTemplate, head: &[u8], out: &mut Vec<u8>) {
        let mut plain = std::mem::take(&mut self.plain);
        t.payload_with(head, &mut plain);
        self.append_payload(t.opcode(), &plain, t.mask(), out);
        reuse(&mut plain);
        self.plain = plain;
    }

    /// Appends `payload` to `out` as one frame masked with `mask`, RSV1 set
    /// and the payload compressed; returns the compressed length.
    pub fn append_payload(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        mask: [u8; 4],
        out: &mut Vec<u8>,
    ) -> usize {
        let a = self.agreed;
        // zlib cannot deflate with a 256-byte window: an agreed 8 is sent
        // with 9, as zlib's own deflateInit2 does.
        let deflater = self.deflater.get_or_insert_with(|| {
            Deflater::new(
                a.client_max_window_bits,
                a.client_no_context_takeover,
                LEVEL,
            )
        });
        self.packed.clear();
        deflater.compress(payload, &mut self.packed);
        append_compressed_frame(out, opcode, &self.packed, mask);
        self.sent.count(payload.len(), self.packed.len(), true);
        let compressed = self.packed.len();
        reuse(&mut self.packed);
        compressed
    }
}

/// Appends `t`'s message with `head` to `out`: compressed when the
/// connection agreed to deflate (`codec`), as the template has it otherwise.
pub fn append_message(
    codec: Option<&mut Codec>,
    t: &MessageTemplate,
    head: &[u8],
    out: &mut Vec<u8>,
) {
    match codec {
        Some(codec) => codec.append(t, head, out),
        None => t.append_with(out, head),
    }
}

/// Appends one masked, final frame with RSV1 set carrying `compressed`.
fn append_compressed_frame(out: &mut Vec<u8>, opcode: OpCode, compressed: &[u8], mask: [u8; 4]) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(
        &mut header,
        true,
        RSV1,
        opcode,
        compressed.len() as u64,
        Some(mask),
    );
    out.extend_from_slice(&header[..n]);
    let start = out.len();
    out.extend_from_slice(compressed);
    apply_mask(&mut out[start..], mask, 0);
}

/// Empties a buffer for the next message, giving back an unusually large one.
fn reuse(buf: &mut Vec<u8>) {
    buf.clear();
    if buf.capacity() > KEEP {
        buf.shrink_to(KEEP);
    }
}

/// A connection's sink behind its codec: uncompressed messages pass as they
/// are, compressed ones are gathered, inflated, and handed on whole.
pub struct Inflating<'a, S> {
    pub codec: &'a mut Codec,
    pub inner: &'a mut S,
}

impl<S: FrameSink> FrameSink for Inflating<'_, S> {
    fn data(&mut self, offset: u64, chunk: &[u8]) {
        self.inner.data(offset, chunk);
    }

    fn message_end(&mut self, len: u64, text: bool) {
        self.codec.received.count(len as usize, len as usize, false);
        self.inner.message_end(len, text);
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        self.inner.control(opcode, payload);
    }

    fn compressed_data(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let inbound = &mut self.codec.inbound;
        if inbound.len() + chunk.len() > MAX_COMPRESSED {
            return Err(DecodeError::Inflate);
        }
        inbound.extend_from_slice(chunk);
        Ok(())
    }

    fn compressed_end(&mut self, text: bool) -> Result<(), DecodeError> {
        let c = &mut *self.codec;
        let a = c.agreed;
        let inflater = c.inflater.get_or_insert_with(|| {
            Inflater::new(a.server_max_window_bits, a.server_no_context_takeover)
        });
        c.inflated.clear();
        let inflated = inflater.inflate(&c.inbound, MAX_PAYLOAD, &mut c.inflated);
        c.received.count(c.inflated.len(), c.inbound.len(), true);
        reuse(&mut c.inbound);
        inflated.map_err(|_| DecodeError::Inflate)?;
        if !c.inflated.is_empty() {
            self.inner.data(0, &c.inflated);
        }
        self.inner.message_end(c.inflated.len() as u64, text);
        reuse(&mut c.inflated);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::Collect;
    use crate::wire::FrameDecoder;
    use ringgate::protocol::deflate::{negotiate, DeflateMode};
    use ringgate::protocol::frame::decode_header;
    use ringgate::protocol::writer::{encode_compressed_frame, encode_frame};

    /// What the server agrees to in `mode`, read back as a client would.
    fn agreed(mode: DeflateMode) -> Agreed {
        let (_, answer) = negotiate(&[crate::deflate::OFFER.to_owned()], mode).unwrap();
        crate::deflate::parse_answer([answer.as_bytes()])
            .unwrap()
            .unwrap()
    }

    /// The server's (client's, for the inflater) agreed codec of `mode`.
    fn server_deflater(mode: DeflateMode) -> Deflater {
        let a = agreed(mode);
        Deflater::new(a.server_max_window_bits, a.server_no_context_takeover, 6)
    }

    fn feed(dec: &mut FrameDecoder, codec: &mut Codec, wire: &[u8], step: usize) -> Collect {
        let mut inner = Collect::default();
        let mut sink = Inflating {
            codec,
            inner: &mut inner,
        };
        for piece in wire.chunks(step) {
            dec.feed(piece, &mut sink).unwrap();
        }
        inner
    }

    #[test]
    fn sends_what_the_server_inflates() {
        for mode in [
            DeflateMode::Shared,
            DeflateMode::Dedicated { window_bits: 15 },
            DeflateMode::Dedicated { window_bits: 10 },
        ] {
            let a = agreed(mode);
            let mut codec = Codec::new(a);
            let t = MessageTemplate::new(1000, true, [9, 8, 7, 6]);
            let mut out = Vec::new();
            for seq in 0..3 {
                let (head, n) = t.seq_head(seq);
                append_message(Some(&mut codec), &t, &head[..n], &mut out);
            }
            let mut server = Inflater::new(a.client_max_window_bits, a.client_no_context_takeover);
            let mut rest = &out[..];
            for seq in 0..3 {
                let (h, n) = decode_header(rest).unwrap().unwrap();
                assert_eq!((h.rsv, h.opcode, h.fin), (RSV1, OpCode::Text, true));
                let len = h.payload_len as usize;
                let mut payload = rest[n..n + len].to_vec();
                apply_mask(&mut payload, h.mask.unwrap(), 0);
                let mut plain = Vec::new();
                server.inflate(&payload, 1 << 20, &mut plain).unwrap();
                let (head, hn) = t.seq_head(seq);
                let mut want = Vec::new();
                t.payload_with(&head[..hn], &mut want);
                assert_eq!(plain, want, "{mode:?} message {seq}");
                rest = &rest[n + len..];
            }
            assert!(rest.is_empty());
            assert_eq!(codec.sent.messages, 3);
            assert_eq!(codec.sent.payload_bytes, 3000);
            assert!(codec.sent.wire_bytes < 300, "{:?}", codec.sent);
        }
        let mut plain = Vec::new();
        let t = MessageTemplate::new(5, false, [1, 2, 3, 4]);
        append_message(None, &t, b"ab", &mut plain);
        assert_eq!(decode_header(&plain).unwrap().unwrap().0.rsv, 0);
    }

    #[test]
    fn inflates_compressed_messages_and_passes_the_rest() {
        for mode in [
            DeflateMode::Shared,
            DeflateMode::Dedicated { window_bits: 15 },
        ] {
            let mut server = server_deflater(mode);
            let big: Vec<u8> = (0..70_000u32).map(|i| b'a' + (i % 7) as u8).collect();
            let mut wire = Vec::new();
            let mut packed = Vec::new();
            for msg in [&big[..], b"hello hello hello", b""] {
                packed.clear();
                server.compress(msg, &mut packed);
                encode_compressed_frame(&mut wire, OpCode::Binary, &packed);
            }
            encode_frame(&mut wire, OpCode::Text, b"plain"); // under the threshold
            encode_frame(&mut wire, OpCode::Ping, b"");
            // A compressed message in two frames, a Pong between.
            packed.clear();
            server.compress(b"fragmented fragmented", &mut packed);
            let (a, b) = packed.split_at(packed.len() / 2);
            wire.push(0x40 | 0x01); // RSV1, Text, not final
            wire.push(a.len() as u8);
            wire.extend_from_slice(a);
            encode_frame(&mut wire, OpCode::Pong, b"");
            wire.push(0x80); // final continuation, no RSV1
            wire.push(b.len() as u8);
            wire.extend_from_slice(b);
            for step in [1, 7, wire.len()] {
                let mut codec = Codec::new(agreed(mode));
                let mut dec = FrameDecoder::default();
                dec.allow_compressed();
                let got = feed(&mut dec, &mut codec, &wire, step);
                assert_eq!(
                    got.messages,
                    [
                        (big.clone(), false),
                        (b"hello hello hello".to_vec(), false),
                        (Vec::new(), false),
                        (b"plain".to_vec(), true),
                        (b"fragmented fragmented".to_vec(), true),
                    ],
                    "{mode:?}, step {step}"
                );
                let ops: Vec<OpCode> = got.controls.iter().map(|c| c.0).collect();
                assert_eq!(ops, [OpCode::Ping, OpCode::Pong]);
                let r = codec.received;
                assert_eq!((r.compressed, r.messages), (4, 5));
                assert!(r.payload_bytes >= 70_000 && r.wire_bytes < r.payload_bytes / 10);
                // With context takeover, the server's messages after the first
                // need its history: one pass only.
                if matches!(mode, DeflateMode::Dedicated { .. }) {
                    break;
                }
            }
        }
    }

    #[test]
    fn refuses_rsv1_where_it_does_not_belong_and_bad_data() {
        let a = agreed(DeflateMode::Shared);
        let cases: [(&[u8], DecodeError); 4] = [
            (&[0xC9, 0], DecodeError::ReservedBits), // RSV1 on a Ping
            (&[0x41, 1, b'x', 0xC0, 0], DecodeError::ReservedBits), // on a continuation
            (&[0xA2, 0], DecodeError::ReservedBits), // RSV2
            (&[0xC2, 2, 0xFF, 0xFF], DecodeError::Inflate), // not deflate data
        ];
        for (bytes, err) in cases {
            let mut codec = Codec::new(a);
            let mut inner = Collect::default();
            let mut sink = Inflating {
                codec: &mut codec,
                inner: &mut inner,
            };
            let mut dec = FrameDecoder::default();
            dec.allow_compressed();
            assert_eq!(dec.feed(bytes, &mut sink), Err(err), "{bytes:?}");
        }
        // Without the agreement, RSV1 is refused even with a codec behind.
        let mut codec = Codec::new(a);
        let mut inner = Collect::default();
        let mut sink = Inflating {
            codec: &mut codec,
            inner: &mut inner,
        };
        assert_eq!(
            FrameDecoder::default().feed(&[0xC2, 1, 0], &mut sink),
            Err(DecodeError::ReservedBits)
        );
    }

    #[test]
    fn stats_merge() {
        let mut a = DeflateStats::default();
        let mut b = DeflateStats::default();
        let agreed = agreed(DeflateMode::Shared);
        a.answered(None);
        b.answered(Some(agreed));
        b.answered(Some(agreed));
        let mut codec = Codec::new(agreed);
        codec.sent.count(100, 10, true);
        b.add_codec(Some(&codec));
        b.add_codec(None);
        a.merge(&b);
        assert_eq!((a.negotiated, a.declined), (2, 1));
        assert_eq!(a.first, Some(agreed));
        assert_eq!(a.sent.wire_bytes, 10);
    }
}
