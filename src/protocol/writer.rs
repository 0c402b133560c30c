//! Frame encoding: unmasked server frames, plus masked client frames for tests,
//! fuzzing and benches. It appends whole frames to the caller's buffer; it never
//! fragments, never fails, and never sends a control payload over 125 bytes.

use super::frame::{encode_header, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use super::mask::apply_mask;

/// Appends one unfragmented, unmasked frame (header + payload) to `out`.
/// A control frame's payload must fit 125 bytes (see [`encode_close`]).
pub fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    debug_assert!(
        !opcode.is_control() || payload.len() <= MAX_CONTROL_PAYLOAD,
        "{opcode:?} payload of {} bytes",
        payload.len()
    );
    append_frame(out, true, 0, opcode, payload, None);
}

/// Appends one unfragmented, unmasked data frame whose payload is a
/// permessage-deflate compressed message: RSV1 set (RFC 7692 section 6).
pub fn encode_compressed_frame(out: &mut Vec<u8>, opcode: OpCode, compressed: &[u8]) {
    debug_assert!(!opcode.is_control(), "control frames are never compressed");
    append_frame(out, true, RSV1, opcode, compressed, None);
}

/// Appends a masked (client-to-server) frame with the given FIN bit and no
/// RSV bits.
pub fn encode_client_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: [u8; 4],
) {
    append_frame(out, fin, 0, opcode, payload, Some(mask));
}

/// Appends a close frame with `code` and `reason`, the reason truncated at a
/// char boundary so the payload fits 125 bytes.
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let reason = truncate(reason, MAX_CONTROL_PAYLOAD - 2);
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    let len = 2 + reason.len();
    payload[2..len].copy_from_slice(reason.as_bytes());
    encode_frame(out, OpCode::Close, &payload[..len]);
}

/// Appends a close frame with no status code (empty payload).
pub fn encode_empty_close(out: &mut Vec<u8>) {
    encode_frame(out, OpCode::Close, &[]);
}

fn append_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let header_len = encode_header(&mut header, fin, rsv, opcode, payload.len() as u64, mask);
    out.reserve(header_len + payload.len());
    out.extend_from_slice(&header[..header_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::close::{code, parse_close_payload, CloseFrame};
    use crate::protocol::frame::{decode_header, FrameHeader};

    /// Decodes one frame of `bytes`, unmasking its payload.
    fn decode(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let (header, n) = decode_header(bytes).unwrap().unwrap();
        let mut payload = bytes[n..].to_vec();
        assert_eq!(
            payload.len() as u64,
            header.payload_len,
            "exactly one frame"
        );
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        (header, payload)
    }

    #[test]
    fn server_frames() {
        for len in [0, 1, 125, 126, 0xFFFF, 0x1_0000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = b"prefix".to_vec();
            encode_frame(&mut out, OpCode::Binary, &payload);
            assert_eq!(&out[..6], b"prefix", "appends");
            let (header, decoded) = decode(&out[6..]);
            assert!(header.fin && header.rsv == 0 && header.mask.is_none());
            assert_eq!(header.opcode, OpCode::Binary);
            assert_eq!(decoded, payload);
        }
    }

    #[test]
    fn client_frames_are_masked() {
        let mut out = Vec::new();
        encode_client_frame(&mut out, false, OpCode::Text, b"hello", [9, 8, 7, 6]);
        assert_eq!(&out[..6], [0x01, 0x85, 9, 8, 7, 6]);
        assert_ne!(&out[6..], b"hello");
        let (header, payload) = decode(&out);
        assert!(!header.fin);
        assert_eq!(header.mask, Some([9, 8, 7, 6]));
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn close_frames() {
        let mut out = Vec::new();
        encode_close(&mut out, code::GOING_AWAY, "bye");
        assert_eq!(out, [0x88, 5, 0x03, 0xE9, b'b', b'y', b'e']);

        out.clear();
        encode_empty_close(&mut out);
        assert_eq!(out, [0x88, 0]);

        // 122 ASCII bytes, then a 3-byte char that would end at byte 125: cut before it.
        let reason = format!("{}€tail", "a".repeat(122));
        out.clear();
        encode_close(&mut out, code::NORMAL, &reason);
        let (header, payload) = decode(&out);
        assert_eq!(header.payload_len, 124);
        let close = parse_close_payload(&payload).unwrap();
        assert_eq!(
            close,
            CloseFrame {
                code: Some(1000),
                reason: &reason[..122]
            }
        );

        for reason in [
            "é".repeat(100),
            "x".repeat(123),
            "x".repeat(500),
            "😀".repeat(40),
        ] {
            out.clear();
            encode_close(&mut out, code::NORMAL, &reason);
            let (_, payload) = decode(&out);
            assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
            let parsed = parse_close_payload(&payload).unwrap().reason;
            assert!(reason.starts_with(parsed), "a prefix");
            assert!(
                parsed == reason || parsed.len() > 123 - 4,
                "cut at the last boundary"
            );
        }
    }
}
