//! Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4): which codes a
//! peer may put on the wire and how a close payload splits into code and reason.
//! It only parses and names; it never decides when or how to close.

use super::error::ProtocolError;
use super::utf8::as_text;

/// Close status codes (RFC 6455 §7.4.1 and the IANA registry).
pub mod code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The peer sent a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// No status code was present (never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// The connection dropped without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// A message's data did not match its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message violated the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message was too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// The server hit an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The server is restarting.
    pub const SERVICE_RESTART: u16 = 1012;
    /// The server is overloaded; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Whether a peer may send `code` in a close frame: 1000-1003, 1007-1014
/// (1012-1014 are IANA-registered) and the application ranges 3000-4999.
/// 1004-1006 and 1015 are reserved or local-only; everything else is invalid.
pub fn is_valid_wire_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A parsed close payload, borrowing its reason from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code; `None` when the payload was empty.
    pub code: Option<u16>,
    /// The UTF-8 reason after the code (often empty).
    pub reason: &'a str,
}

/// Splits a close payload into code and reason. An empty payload has no code;
/// a 1-byte payload, a code that may not be sent, or a reason that is not UTF-8
/// is a protocol violation.
pub fn parse_close_payload(payload: &[u8]) -> Result<CloseFrame<'_>, ProtocolError> {
    let (code, reason) = match payload {
        [] => {
            return Ok(CloseFrame {
                code: None,
                reason: "",
            })
        }
        [_] => return Err(ProtocolError::CloseTooShort),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    if !is_valid_wire_code(code) {
        return Err(ProtocolError::InvalidCloseCode(code));
    }
    Ok(CloseFrame {
        code: Some(code),
        reason: as_text(reason)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        let valid: Vec<u16> = (0..=u16::MAX).filter(|&c| is_valid_wire_code(c)).collect();
        let expected: Vec<u16> = (1000..=1003)
            .chain(1007..=1014)
            .chain(3000..=4999)
            .collect();
        assert_eq!(valid, expected);
        for c in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_wire_code(c), "{c}");
        }
        for c in [code::NORMAL, code::GOING_AWAY, code::PROTOCOL_ERROR] {
            assert!(is_valid_wire_code(c));
        }
        assert!(!is_valid_wire_code(code::NO_STATUS) && !is_valid_wire_code(code::ABNORMAL));
    }

    #[test]
    fn parses_payloads() {
        assert_eq!(
            parse_close_payload(b""),
            Ok(CloseFrame {
                code: None,
                reason: ""
            })
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8]),
            Ok(CloseFrame {
                code: Some(1000),
                reason: ""
            })
        );
        let mut payload = 4999u16.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        assert_eq!(
            parse_close_payload(&payload),
            Ok(CloseFrame {
                code: Some(4999),
                reason: "bye ✓"
            })
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        assert_eq!(
            parse_close_payload(&[0x03]),
            Err(ProtocolError::CloseTooShort)
        );
        for c in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535] {
            assert_eq!(
                parse_close_payload(&c.to_be_bytes()),
                Err(ProtocolError::InvalidCloseCode(c))
            );
        }
        // Autobahn 7.5.1: a reason that is not UTF-8.
        let payload = [
            0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xF4, 0x90, 0x80, 0x80,
        ];
        assert_eq!(
            parse_close_payload(&payload),
            Err(ProtocolError::InvalidUtf8)
        );
        // A bad code wins over a bad reason.
        assert_eq!(
            parse_close_payload(&[0x03, 0xED, 0xFF]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
    }
}
