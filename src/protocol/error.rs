//! Every way a peer's bytes can break RFC 6455, and the one mapping from such a
//! violation to the close code sent back. The messages double as close reasons:
//! they stay short and fixed, and never echo the peer's bytes beyond a number.

use super::close::code;
use super::deflate::InflateError;

/// A protocol violation by the peer: the connection must be failed, closing it
/// with [`ProtocolError::close_code`] and the message as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A client frame arrived without a mask (RFC 6455 §5.1).
    #[error("frame not masked")]
    UnmaskedFrame,
    /// RSV bits set that no negotiated extension allows (as `0b0000_0xyz`).
    #[error("reserved bits {0:#05b} set")]
    ReservedBits(u8),
    /// An opcode RFC 6455 reserves (3-7, 11-15).
    #[error("reserved opcode {0}")]
    ReservedOpcode(u8),
    /// A control frame with FIN clear.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame whose payload length is over 125 bytes.
    #[error("control frame of {0} bytes (max 125)")]
    ControlTooLong(u64),
    /// A continuation frame with no fragmented message to continue.
    #[error("continuation frame outside a message")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    #[error("expected a continuation frame")]
    ExpectedContinuation,
    /// A 64-bit payload length with its most significant bit set.
    #[error("payload length over 2^63")]
    LengthOverflow,
    /// A payload length not in its shortest encoding.
    #[error("non-minimal payload length")]
    NonMinimalLength,
    /// Text (a message or a close reason) that is not valid UTF-8.
    #[error("invalid UTF-8 in text")]
    InvalidUtf8,
    /// A close code a peer may not send (see `close::is_valid_wire_code`).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close payload of exactly one byte.
    #[error("close payload of 1 byte")]
    CloseTooShort,
    /// A message larger than the configured limit.
    #[error("message over {limit} bytes")]
    MessageTooBig {
        /// The limit, in payload bytes.
        limit: usize,
    },
    /// A compressed message (permessage-deflate) whose data does not inflate.
    #[error("invalid compressed data")]
    InvalidDeflate,
    /// A message split into more frames than the configured limit.
    #[error("message over {limit} fragments")]
    TooManyFragments {
        /// The limit, in frames per message.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code to fail the connection with (RFC 6455 §7.4.1): the one
    /// place the mapping lives.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::InvalidUtf8 | Self::InvalidDeflate => code::INVALID_PAYLOAD,
            Self::MessageTooBig { .. } | Self::TooManyFragments { .. } => code::MESSAGE_TOO_BIG,
            Self::UnmaskedFrame
            | Self::ReservedBits(_)
            | Self::ReservedOpcode(_)
            | Self::FragmentedControl
            | Self::ControlTooLong(_)
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::LengthOverflow
            | Self::NonMinimalLength
            | Self::InvalidCloseCode(_)
            | Self::CloseTooShort => code::PROTOCOL_ERROR,
        }
    }
}

/// What failed inflating: past the size limit (1009), or data that does not
/// inflate (1007; the detail is for logs, not the close reason).
impl From<InflateError> for ProtocolError {
    fn from(e: InflateError) -> Self {
        match e {
            InflateError::TooBig { limit } => Self::MessageTooBig { limit },
            InflateError::Corrupt(_) => Self::InvalidDeflate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, with the widest numbers it can carry.
    fn all() -> Vec<ProtocolError> {
        use ProtocolError::*;
        vec![
            UnmaskedFrame,
            ReservedBits(0b111),
            ReservedOpcode(15),
            FragmentedControl,
            ControlTooLong(u64::MAX),
            UnexpectedContinuation,
            ExpectedContinuation,
            LengthOverflow,
            NonMinimalLength,
            InvalidUtf8,
            InvalidDeflate,
            InvalidCloseCode(u16::MAX),
            CloseTooShort,
            MessageTooBig { limit: usize::MAX },
            TooManyFragments { limit: usize::MAX },
        ]
    }

    #[test]
    fn close_codes() {
        for err in all() {
            let expected = match err {
                ProtocolError::InvalidUtf8 | ProtocolError::InvalidDeflate => 1007,
                ProtocolError::MessageTooBig { .. } | ProtocolError::TooManyFragments { .. } => {
                    1009
                }
                _ => 1002,
            };
            assert_eq!(err.close_code(), expected, "{err:?}");
        }
    }

    #[test]
    fn messages_fit_a_close_reason() {
        for err in all() {
            let msg = err.to_string();
            assert!(!msg.is_empty() && msg.len() < 100, "{err:?}: {msg:?}");
        }
        assert_eq!(
            ProtocolError::ReservedBits(0b100).to_string(),
            "reserved bits 0b100 set"
        );
    }
}
