//! permessage-deflate on a shard: what each connection negotiated, the
//! codecs the shard shares between connections (shared mode: no context
//! takeover either way, so any connection's message can go through them),
//! the per-connection ones (dedicated mode, made on first use), and the two
//! jobs: compress what is queued to a connection, inflate what arrives.

use bytes::Bytes;

use crate::engine::sendq::SendQueue;
use crate::hub::{DeflateMetrics, SharedFrame};
use crate::protocol::deflate::{DeflateMode, DeflateParams, Deflater, InflateError, Inflater};
use crate::protocol::frame::OpCode;
use crate::protocol::writer::encode_compressed_frame;

/// Window bits a shard keeps a shared compressor for: 9 to 15.
const MIN_WINDOW_BITS: u8 = 9;
const WINDOWS: usize = 7;

/// An inflated message buffer larger than this is freed after use rather
/// than kept for the next message.
const SCRATCH_KEEP: usize = 256 << 10;

/// What a connection negotiated, as its slot keeps it: two bytes, so an
/// idle connection costs the same with compression as without. A
/// dedicated-mode connection's codecs live in its boxed `Attached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiated {
    Off,
    /// Shared mode: the shard's codecs; the server compresses with
    /// `server_window` bits.
    Shared {
        server_window: u8,
    },
    /// Dedicated mode: codecs of its own, with context takeover.
    Dedicated,
}

impl Negotiated {
    /// What a connection keeps after negotiating `params` on a route in
    /// `mode`: the slot's part, and a dedicated connection's codecs.
    pub(crate) fn new(mode: DeflateMode, params: DeflateParams) -> (Self, Option<Box<Dedicated>>) {
        match mode {
            DeflateMode::Off => (Negotiated::Off, None),
            DeflateMode::Shared => (
                Negotiated::Shared {
                    server_window: params.server_max_window_bits,
                },
                None,
            ),
            DeflateMode::Dedicated { .. } => (
                Negotiated::Dedicated,
                Some(Box::new(Dedicated {
                    params,
                    deflater: None,
                    inflater: None,
                })),
            ),
        }
    }
}

/// A dedicated-mode connection's codecs, each made when first needed and
/// boxed, so an idle connection keeps 24 bytes here (inline, the two
/// handles of zlib-rs state were 300 more). Boxed itself, so that the
/// `Attached` of every other connection with an identity stays 56 bytes.
pub(crate) struct Dedicated {
    params: DeflateParams,
    deflater: Option<Box<Deflater>>,
    inflater: Option<Box<Inflater>>,
}

/// A connection's side of compression, borrowed for one callback or send.
pub(crate) enum ConnDeflate<'a> {
    Off,
    Shared { server_window: u8 },
    Dedicated(&'a mut Dedicated),
}

impl<'a> ConnDeflate<'a> {
    pub(crate) fn new(negotiated: Negotiated, dedicated: Option<&'a mut Dedicated>) -> Self {
        match (negotiated, dedicated) {
            (Negotiated::Shared { server_window }, _) => ConnDeflate::Shared { server_window },
            (Negotiated::Dedicated, Some(codecs)) => ConnDeflate::Dedicated(codecs),
            _ => ConnDeflate::Off,
        }
    }
}

/// The shard's side: shared codecs, buffers, and the settings.
pub(crate) struct ShardDeflate {
    /// No-context-takeover compressors by window bits (index: bits - 9).
    deflaters: [Option<Box<Deflater>>; WINDOWS],
    /// The no-context-takeover decompressor (a 15-bit window reads any).
    inflater: Option<Box<Inflater>>,
    /// Compressed bytes before they are framed.
    out: Vec<u8>,
    /// The buffer inflated messages are handed to handlers in.
    scratch: Vec<u8>,
    level: u32,
    /// Smaller messages are sent uncompressed.
    threshold: usize,
    /// What was compressed and inflated, for `/metrics`.
    metrics: DeflateMetrics,
}

impl ShardDeflate {
    pub(crate) fn new(level: u32, threshold: usize) -> Self {
        Self {
            deflaters: Default::default(),
            inflater: None,
            out: Vec::new(),
            scratch: Vec::new(),
            level,
            threshold,
            metrics: DeflateMetrics::default(),
        }
    }

    /// What the shard compressed and inflated so far.
    pub(crate) fn metrics(&self) -> DeflateMetrics {
        self.metrics
    }

    /// Queues `payload` as one data message: compressed when the connection
    /// negotiated it and the message is at least the threshold.
    pub(crate) fn push_message(
        &mut self,
        conn: &mut ConnDeflate<'_>,
        sendq: &mut SendQueue,
        opcode: OpCode,
        payload: &[u8],
    ) {
        if payload.len() < self.threshold || !self.compress(conn, payload) {
            return sendq.push_frame(opcode, payload);
        }
        sendq.push_compressed(opcode, &self.out);
    }

    /// Queues a frame shared with other connections: the shared compressed
    /// variant for shared-mode connections with a full window, compressed
    /// for this connection alone otherwise.
    pub(crate) fn push_shared(
        &mut self,
        conn: &mut ConnDeflate<'_>,
        sendq: &mut SendQueue,
        frame: &SharedFrame,
    ) {
        match conn {
            ConnDeflate::Off => sendq.push_shared(frame.plain().clone()),
            ConnDeflate::Shared { server_window: 15 } => {
                let deflated =
                    frame.deflated(|opcode, payload| self.deflate_frame(opcode, payload));
                sendq.push_shared(deflated.clone());
            }
            _ => self.push_message(conn, sendq, frame.opcode(), frame.payload()),
        }
    }

    /// The whole compressed frame for a shared-mode connection with a full
    /// window, or `None` when the message is under the threshold or does not
    /// shrink.
    fn deflate_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Option<Bytes> {
        let mut conn = ConnDeflate::Shared { server_window: 15 };
        if payload.len() < self.threshold || !self.compress(&mut conn, payload) {
            return None;
        }
        let mut frame = Vec::with_capacity(self.out.len() + 10);
        encode_compressed_frame(&mut frame, opcode, &self.out);
        Some(Bytes::from(frame))
    }

    /// Compresses `payload` into `self.out` with the connection's
    /// compressor. Returns false when the result must not be sent: it did
    /// not shrink and, with no context takeover, the plain message may go
    /// instead (with context takeover the peer's window must see it, so it
    /// is sent compressed whatever its size).
    fn compress(&mut self, conn: &mut ConnDeflate<'_>, payload: &[u8]) -> bool {
        self.out.clear();
        let level = self.level;
        let (deflater, takeover) = match conn {
            ConnDeflate::Off => return false,
            ConnDeflate::Shared { server_window } => (
                shared_deflater(&mut self.deflaters, *server_window, level),
                false,
            ),
            ConnDeflate::Dedicated(d) if d.params.server_no_context_takeover => (
                shared_deflater(&mut self.deflaters, d.params.server_max_window_bits, level),
                false,
            ),
            ConnDeflate::Dedicated(d) => {
                let params = d.params;
                let deflater = &mut **d.deflater.get_or_insert_with(|| {
                    Box::new(Deflater::new(params.server_max_window_bits, false, level))
                });
                (deflater, true)
            }
        };
        deflater.compress(payload, &mut self.out);
        let send = takeover || self.out.len() < payload.len();
        if send {
            let m = &mut self.metrics;
            m.compressed += 1;
            m.compress_plain_bytes += payload.len() as u64;
            m.compress_wire_bytes += self.out.len() as u64;
        }
        send
    }

    /// Inflates a compressed message of `conn`, at most `limit` bytes, into
    /// a buffer to hand back with [`ShardDeflate::recycle`].
    pub(crate) fn inflate(
        &mut self,
        conn: &mut ConnDeflate<'_>,
        compressed: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, InflateError> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let inflater = match conn {
            ConnDeflate::Dedicated(d) if !d.params.client_no_context_takeover => {
                let params = d.params;
                &mut **d.inflater.get_or_insert_with(|| {
                    Box::new(Inflater::new(params.client_max_window_bits, false))
                })
            }
            _ => &mut **self
                .inflater
                .get_or_insert_with(|| Box::new(Inflater::new(15, true))),
        };
        match inflater.inflate(compressed, limit, &mut out) {
            Ok(()) => {
                let m = &mut self.metrics;
                m.inflated += 1;
                m.inflate_wire_bytes += compressed.len() as u64;
                m.inflate_plain_bytes += out.len() as u64;
                Ok(out)
            }
            Err(e) => {
                self.recycle(out);
                Err(e)
            }
        }
    }

    /// Takes back a buffer [`ShardDeflate::inflate`] gave out.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= SCRATCH_KEEP {
            self.scratch = buf;
        }
    }
}

/// The shard's no-context-takeover compressor for `window_bits`, made on
/// first use.
fn shared_deflater(
    deflaters: &mut [Option<Box<Deflater>>; WINDOWS],
    window_bits: u8,
    level: u32,
) -> &mut Deflater {
    let window_bits = window_bits.clamp(MIN_WINDOW_BITS, 15);
    deflaters[usize::from(window_bits - MIN_WINDOW_BITS)]
        .get_or_insert_with(|| Box::new(Deflater::new(window_bits, true, level)))
}
