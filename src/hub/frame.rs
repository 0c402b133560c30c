//! A server frame encoded once for many connections: the plain frame, and its
//! permessage-deflate variant, computed the first time a shard needs it (by
//! whichever shard gets there first, without a lock) and then shared by every
//! shard, so a broadcast is compressed once, not once per member.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::handler::Message;
use crate::protocol::frame::OpCode;
use crate::protocol::writer::encode_frame;

/// A pre-encoded server frame shared by every connection it goes to; a clone
/// shares the bytes.
#[derive(Clone)]
pub(crate) struct SharedFrame(Arc<Variants>);

struct Variants {
    /// The frame as encoded for connections without compression.
    plain: Bytes,
    opcode: OpCode,
    /// Where the payload starts in `plain`.
    header_len: u8,
    /// The compressed frame (no context takeover, 15-bit window), or `plain`
    /// again when compressing does not pay.
    deflated: OnceLock<Bytes>,
}

impl SharedFrame {
    /// Encodes `msg` as one unmasked server frame.
    pub(crate) fn new(msg: Message<'_>) -> Self {
        let payload = msg.as_bytes();
        let mut out = Vec::with_capacity(payload.len() + 10);
        encode_frame(&mut out, msg.opcode(), payload);
        let header_len = (out.len() - payload.len()) as u8;
        Self(Arc::new(Variants {
            plain: Bytes::from(out),
            opcode: msg.opcode(),
            header_len,
            deflated: OnceLock::new(),
        }))
    }

    /// A frame holding `encoded` as is (mailbox tests count bytes with it).
    #[cfg(test)]
    pub(crate) fn from_encoded(encoded: Bytes) -> Self {
        Self(Arc::new(Variants {
            plain: encoded,
            opcode: OpCode::Binary,
            header_len: 0,
            deflated: OnceLock::new(),
        }))
    }

    /// The plain frame's bytes.
    pub(crate) fn plain(&self) -> &Bytes {
        &self.0.plain
    }

    /// Bytes of the plain frame (what the mailbox bound counts).
    pub(crate) fn len(&self) -> usize {
        self.0.plain.len()
    }

    pub(crate) fn opcode(&self) -> OpCode {
        self.0.opcode
    }

    /// The message the frame carries.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.0.plain[usize::from(self.0.header_len)..]
    }

    /// The compressed variant, made by `compress` (a whole frame, or `None`
    /// when compressing does not pay, and the plain frame is used). Two
    /// shards asking at once may both compress; one result is kept.
    pub(crate) fn deflated(&self, compress: impl FnOnce(OpCode, &[u8]) -> Option<Bytes>) -> &Bytes {
        if let Some(frame) = self.0.deflated.get() {
            return frame;
        }
        let frame = compress(self.0.opcode, self.payload()).unwrap_or_else(|| self.0.plain.clone());
        let _ = self.0.deflated.set(frame);
        self.0.deflated.get().unwrap_or(&self.0.plain)
    }
}

impl std::fmt::Debug for SharedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFrame")
            .field("opcode", &self.0.opcode)
            .field("len", &self.0.plain.len())
            .finish()
    }
}

impl PartialEq for SharedFrame {
    fn eq(&self, other: &Self) -> bool {
        self.0.plain == other.0.plain
    }
}

impl Eq for SharedFrame {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compressed_variant_is_made_once_and_shared() {
        let frame = SharedFrame::new(Message::Text("hello"));
        assert_eq!(&frame.plain()[..], b"\x81\x05hello");
        assert_eq!(
            (frame.opcode(), frame.payload()),
            (OpCode::Text, &b"hello"[..])
        );
        let mut calls = 0;
        let clone = frame.clone();
        for f in [&frame, &clone] {
            let deflated = f.deflated(|_, payload| {
                calls += 1;
                Some(Bytes::copy_from_slice(&payload[..2]))
            });
            assert_eq!(&deflated[..], b"he");
        }
        assert_eq!(calls, 1);

        let incompressible = SharedFrame::new(Message::Binary(b"x"));
        assert_eq!(incompressible.deflated(|_, _| None), incompressible.plain());
    }
}
