//! Frame headers (RFC 6455 §5.2): decoding one from the front of a byte buffer
//! and encoding one into a fixed array. It checks only what a header alone can
//! tell; it never touches payloads, never allocates and never panics.

use super::error::ProtocolError;

/// Longest header: 2 bytes, a 64-bit extended length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest control-frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The RSV1 bit as [`FrameHeader::rsv`] holds it: with permessage-deflate,
/// the mark of a compressed message (RFC 7692 section 6).
pub const RSV1: u8 = 0b100;

/// A frame's opcode; the reserved values 3-7 and 11-15 have no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// A later fragment of a text or binary message.
    Continuation = 0,
    /// The first (or only) frame of a UTF-8 text message.
    Text = 1,
    /// The first (or only) frame of a binary message.
    Binary = 2,
    /// Close (control).
    Close = 8,
    /// Ping (control).
    Ping = 9,
    /// Pong (control).
    Pong = 10,
}

impl OpCode {
    /// The opcode in the low 4 bits of a header's first byte.
    pub fn from_u8(b: u8) -> Result<OpCode, ProtocolError> {
        Ok(match b {
            0 => Self::Continuation,
            1 => Self::Text,
            2 => Self::Binary,
            8 => Self::Close,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return Err(ProtocolError::ReservedOpcode(b)),
        })
    }

    /// Close, Ping and Pong: at most 125 bytes, never fragmented, and allowed
    /// between the fragments of a data message.
    pub fn is_control(self) -> bool {
        self as u8 & 0x8 != 0
    }
}

/// One decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final frame of its message.
    pub fin: bool,
    /// The three RSV bits as `0b0000_0xyz` (RSV1 = `0b100`).
    pub rsv: u8,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (below 2^63).
    pub payload_len: u64,
}

/// Decodes one header from the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the header and its length in bytes.
///
/// Rejects reserved opcodes, control frames with FIN clear
/// (`FragmentedControl`) or a payload over 125 bytes (`ControlTooLong`), a
/// 64-bit length with its top bit set (`LengthOverflow`) and lengths not in
/// their shortest encoding (`NonMinimalLength`). Errors visible in the first
/// two bytes are reported as soon as those arrive. RSV bits are not checked
/// here: which are allowed depends on negotiated extensions.
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let [b0, b1, rest @ ..] = buf else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_u8(b0 & 0x0F)?;
    if opcode.is_control() && !fin {
        return Err(ProtocolError::FragmentedControl);
    }
    let (payload_len, rest) = match b1 & 0x7F {
        126 => {
            let Some((ext, rest)) = rest.split_first_chunk::<2>() else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes(*ext));
            if len < 126 {
                return Err(ProtocolError::NonMinimalLength);
            }
            (len, rest)
        }
        127 => {
            let Some((ext, rest)) = rest.split_first_chunk::<8>() else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(*ext);
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthOverflow);
            }
            if len <= 0xFFFF {
                return Err(ProtocolError::NonMinimalLength);
            }
            (len, rest)
        }
        len => (u64::from(len), rest),
    };
    if opcode.is_control() && payload_len > MAX_CONTROL_PAYLOAD as u64 {
        return Err(ProtocolError::ControlTooLong(payload_len));
    }
    let (mask, rest) = if b1 & 0x80 != 0 {
        let Some((key, rest)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        (Some(*key), rest)
    } else {
        (None, rest)
    };
    let header = FrameHeader {
        fin,
        rsv: (b0 >> 4) & 0b111,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((header, buf.len() - rest.len())))
}

/// Writes a header into `out` and returns its length (2..=14), using the
/// shortest length encoding. `mask` is `None` for server frames; `rsv` keeps
/// its low 3 bits; `payload_len` must be below 2^63 (any slice length is).
pub fn encode_header(
    out: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    payload_len: u64,
    mask: Option<[u8; 4]>,
) -> usize {
    out[0] = (u8::from(fin) << 7) | ((rsv & 0b111) << 4) | opcode as u8;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut len = if let Ok(short @ 0..=125) = u8::try_from(payload_len) {
        out[1] = mask_bit | short;
        2
    } else if let Ok(medium) = u16::try_from(payload_len) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&medium.to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&payload_len.to_be_bytes());
        10
    };
    if let Some(key) = mask {
        out[len..len + 4].copy_from_slice(&key);
        len += 4;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [1, 2, 3, 4];

    fn encode(fin: bool, rsv: u8, opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = [0; MAX_HEADER_LEN];
        let n = encode_header(&mut out, fin, rsv, opcode, len, mask);
        out[..n].to_vec()
    }

    #[test]
    fn opcodes() {
        for b in 0..=255u8 {
            match OpCode::from_u8(b) {
                Ok(op) => {
                    assert_eq!(op as u8, b);
                    assert_eq!(op.is_control(), b >= 8);
                }
                Err(e) => {
                    assert!(!matches!(b, 0..=2 | 8..=10));
                    assert_eq!(e, ProtocolError::ReservedOpcode(b));
                }
            }
        }
    }

    #[test]
    fn round_trips_every_length_class() {
        let cases = [
            (0, 2),
            (125, 2),
            (126, 4),
            (0xFFFF, 4),
            (0x1_0000, 10),
            (i64::MAX as u64, 10),
        ];
        for (len, header_len) in cases {
            for mask in [None, Some(KEY)] {
                for (fin, rsv) in [(true, 0), (false, 0b101), (true, 0b111)] {
                    let bytes = encode(fin, rsv, OpCode::Binary, len, mask);
                    let expected_len = header_len + if mask.is_some() { 4 } else { 0 };
                    assert_eq!(bytes.len(), expected_len);
                    let header = FrameHeader {
                        fin,
                        rsv,
                        opcode: OpCode::Binary,
                        mask,
                        payload_len: len,
                    };
                    assert_eq!(decode_header(&bytes), Ok(Some((header, bytes.len()))));
                    for cut in 0..bytes.len() {
                        assert_eq!(decode_header(&bytes[..cut]), Ok(None), "{len} cut {cut}");
                    }
                    let mut longer = bytes.clone();
                    longer.extend_from_slice(b"payload");
                    assert_eq!(decode_header(&longer), Ok(Some((header, bytes.len()))));
                }
            }
        }
    }

    #[test]
    fn wire_format() {
        assert_eq!(encode(true, 0, OpCode::Text, 5, None), [0x81, 0x05]);
        assert_eq!(
            encode(false, 0b100, OpCode::Continuation, 5, Some(KEY)),
            [0x40, 0x85, 1, 2, 3, 4]
        );
        assert_eq!(
            encode(true, 0, OpCode::Ping, 126, None),
            [0x89, 126, 0, 126]
        );
        assert_eq!(
            encode(true, 0, OpCode::Binary, 0x1_0000, None),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn rejects_bad_headers() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (&[0x83, 0x00], ReservedOpcode(3)),
            (&[0x8B, 0x80], ReservedOpcode(11)),
            (&[0x0F, 0x80], ReservedOpcode(15)),
            (&[0x09, 0x80], FragmentedControl),
            (&[0x08, 0x00], FragmentedControl),
            (&[0x89, 126, 0, 126], ControlTooLong(126)),
            (
                &[0x8A, 127, 0, 0, 0, 0, 0, 1, 0, 0],
                ControlTooLong(0x1_0000),
            ),
            (&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], LengthOverflow),
            (
                &[0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                LengthOverflow,
            ),
            (&[0x82, 126, 0, 125], NonMinimalLength),
            (&[0x82, 126, 0, 0], NonMinimalLength),
            (&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], NonMinimalLength),
            (&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5], NonMinimalLength),
        ];
        for (bytes, err) in cases {
            assert_eq!(decode_header(bytes).as_ref(), Err(err), "{bytes:02X?}");
        }
        // Errors in the first two bytes need no more bytes to be reported.
        assert_eq!(decode_header(&[0x09, 0xFF]), Err(FragmentedControl));
        assert_eq!(decode_header(&[0x84, 0xFF]), Err(ReservedOpcode(4)));
        assert_eq!(decode_header(&[0x84]), Ok(None));
    }

    #[test]
    fn never_panics_on_any_first_two_bytes() {
        for fill in [0x00, 0x01, 0x7E, 0xFF] {
            for b0 in 0..=255u8 {
                for b1 in 0..=255u8 {
                    let mut buf = [fill; MAX_HEADER_LEN];
                    buf[0] = b0;
                    buf[1] = b1;
                    if let Ok(Some((header, n))) = decode_header(&buf) {
                        assert!((2..=MAX_HEADER_LEN).contains(&n));
                        assert_eq!(header.rsv, (b0 >> 4) & 0b111);
                        assert_eq!(decode_header(&buf[..n]), Ok(Some((header, n))));
                        assert_eq!(decode_header(&buf[..n - 1]), Ok(None));
                    }
                }
            }
        }
    }
}
