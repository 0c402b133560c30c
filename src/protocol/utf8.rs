//! UTF-8 validation of text that arrives in pieces: it carries a code point cut
//! between chunks and fails at the first byte no valid text can continue with.
//! It never buffers payload bytes and never waits for the end to reject.

use super::error::ProtocolError;

/// Validates a whole text payload at once, returning it as `&str`.
pub fn as_text(bytes: &[u8]) -> Result<&str, ProtocolError> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8)
}

/// Streaming validator: holds the part of a code point cut off at the end of
/// the last chunk (as its lead byte and count), never the text itself.
#[derive(Default, Clone, Copy, Debug)]
pub struct Utf8Validator {
    /// Lead byte of the incomplete code point.
    lead: u8,
    /// Bytes of it seen so far; 0 when no code point is open.
    seen: u8,
    /// Its full length in bytes (2-4).
    need: u8,
}

/// Length of the sequence `lead` starts, or `None` if no sequence starts so
/// (continuation bytes, C0/C1 overlong leads, F5-FF beyond U+10FFFF).
fn sequence_len(lead: u8) -> Option<u8> {
    match lead {
        0x00..=0x7F => Some(1),
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

/// Whether `byte` may follow `lead` (RFC 3629 §4): the narrowed ranges exclude
/// overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
fn second_byte_ok(lead: u8, byte: u8) -> bool {
    let range = match lead {
        0xE0 => 0xA0..=0xBF,
        0xED => 0x80..=0x9F,
        0xF0 => 0x90..=0xBF,
        0xF4 => 0x80..=0x8F,
        _ => 0x80..=0xBF,
    };
    range.contains(&byte)
}

impl Utf8Validator {
    /// A validator at the start of a text stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next chunk of a text stream. Fails fast: returns
    /// `Err(InvalidUtf8)` as soon as the bytes seen so far cannot be the prefix
    /// of valid UTF-8, including a truncated sequence that could never complete
    /// (`F4 90`, `ED A0`, `C0`), even when it sits at the very end of the chunk.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let mut rest = bytes;
        while !self.is_clean() {
            let Some((&byte, tail)) = rest.split_first() else {
                return Ok(());
            };
            self.push(byte)?;
            rest = tail;
        }
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => Ok(()),
            // The chunk ends inside a code point: carry it if it can still complete.
            Err(e) if e.error_len().is_none() => rest
                .get(e.valid_up_to()..)
                .unwrap_or_default()
                .iter()
                .try_for_each(|&byte| self.push(byte)),
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// End of message: `Err` if a code point is left incomplete. Resets the
    /// validator either way.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let clean = self.is_clean();
        *self = Self::new();
        if clean {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }

    /// True when no partial code point is carried.
    pub fn is_clean(&self) -> bool {
        self.seen == 0
    }

    /// Advances the carried code point by one byte, checking it against the
    /// well-formedness table.
    fn push(&mut self, byte: u8) -> Result<(), ProtocolError> {
        if self.is_clean() {
            match sequence_len(byte) {
                None => return Err(ProtocolError::InvalidUtf8),
                Some(1) => {}
                Some(need) => {
                    *self = Self {
                        lead: byte,
                        seen: 1,
                        need,
                    }
                }
            }
            return Ok(());
        }
        let ok = if self.seen == 1 {
            second_byte_ok(self.lead, byte)
        } else {
            (0x80..=0xBF).contains(&byte)
        };
        if !ok {
            return Err(ProtocolError::InvalidUtf8);
        }
        self.seen += 1;
        if self.seen == self.need {
            self.seen = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `bytes` can still be extended to valid UTF-8 (std's verdict:
    /// `error_len() == None` means "ended inside a sequence that may complete").
    fn valid_prefix(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes).map_or_else(|e| e.error_len().is_none(), |_| true)
    }

    /// The index of the byte at which `bytes` stops being a valid prefix.
    fn first_bad(bytes: &[u8]) -> Option<usize> {
        (0..bytes.len()).find(|&i| !valid_prefix(&bytes[..=i]))
    }

    fn whole(bytes: &[u8]) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::new();
        v.feed(bytes)?;
        v.finish()
    }

    /// Feeds byte by byte; returns the index of the byte whose feed failed,
    /// or `bytes.len()` if only `finish` failed.
    fn bytewise_failure(bytes: &[u8]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        for (i, b) in bytes.iter().enumerate() {
            if v.feed(std::slice::from_ref(b)).is_err() {
                return Some(i);
            }
        }
        v.finish().err().map(|_| bytes.len())
    }

    /// Checks every way of feeding `bytes` against std's verdict and first bad byte.
    fn check(bytes: &[u8]) {
        let valid = std::str::from_utf8(bytes).is_ok();
        assert_eq!(whole(bytes).is_ok(), valid, "whole {bytes:02X?}");
        let expected_failure = first_bad(bytes).or((!valid).then_some(bytes.len()));
        assert_eq!(
            bytewise_failure(bytes),
            expected_failure,
            "bytewise {bytes:02X?}"
        );
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            let mut v = Utf8Validator::new();
            let first = v.feed(a);
            assert_eq!(
                first.is_err(),
                expected_failure.is_some_and(|i| i < split),
                "fails in the first chunk {bytes:02X?} at {split}"
            );
            if first.is_ok() {
                let rest = v.feed(b).and_then(|()| v.finish());
                assert_eq!(rest.is_ok(), valid, "split {bytes:02X?} at {split}");
            }
        }
    }

    #[test]
    fn autobahn_valid() {
        let cases: &[&[u8]] = &[
            b"",
            b"Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",
            "κόσμε".as_bytes(),
            b"\x00",
            b"\xC2\x80",
            b"\xE0\xA0\x80",
            b"\xF0\x90\x80\x80",
            b"\x7F",
            b"\xDF\xBF",
            b"\xEF\xBF\xBF",
            b"\xF4\x8F\xBF\xBF",
            b"\xED\x9F\xBF",
            b"\xEE\x80\x80",
            b"\xEF\xBF\xBD",
            b"\xEF\xBF\xBE",
            b"\xF0\x9F\x98\x80",
        ];
        for case in cases {
            assert!(std::str::from_utf8(case).is_ok());
            check(case);
        }
    }

    #[test]
    fn autobahn_invalid() {
        let cases: &[&[u8]] = &[
            // 6.3.1 / 6.4.x: a code point beyond U+10FFFF inside text.
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80\x65\x64\x69\x74\x65\x64",
            b"\xF4\x90\x80\x80",
            b"\xF7\xBF\xBF\xBF",
            b"\xF8\x88\x80\x80\x80",
            b"\xFC\x84\x80\x80\x80\x80",
            // Lone continuation bytes.
            b"\x80",
            b"\xBF",
            b"\x80\xBF\x80",
            // Lonely start characters and truncated sequences.
            b"\xC0 ",
            b"\xE0\x80",
            b"\xDF",
            b"\xEF\xBF",
            b"\xF0\x90\x80",
            b"\xCE\xBA\xE1\xBD",
            // Overlong encodings.
            b"\xC0\xAF",
            b"\xE0\x80\xAF",
            b"\xF0\x80\x80\xAF",
            b"\xC1\xBF",
            b"\xE0\x9F\xBF",
            b"\xF0\x8F\xBF\xBF",
            b"\xC0\x80",
            // Surrogates, single and paired.
            b"\xED\xA0\x80",
            b"\xED\xAD\xBF",
            b"\xED\xBF\xBF",
            b"\xED\xA0\x80\xED\xB0\x80",
            // Impossible bytes.
            b"\xFE",
            b"\xFF",
            b"\xFE\xFE\xFF\xFF",
        ];
        for case in cases {
            assert!(std::str::from_utf8(case).is_err());
            check(case);
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        for (bytes, bad) in [
            (&b"ab\xF4\x90\x80\x80"[..], 3),
            (b"\xED\xA0", 1),
            (b"\xC0", 0),
            (b"\xE2\x82", 2),
        ] {
            assert_eq!(bytewise_failure(bytes), Some(bad), "{bytes:02X?}");
        }
        // The truncated but still completable `E2 82` only fails at the end.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xE2\x82").is_ok() && !v.is_clean());
        assert!(v.finish().is_err() && v.is_clean(), "finish resets");
        assert!(v.feed(b"\xE2\x82").is_ok());
        assert!(v.feed(b"\xAC").is_ok() && v.is_clean() && v.finish().is_ok());
    }

    #[test]
    fn all_short_sequences_of_interesting_bytes() {
        let interesting = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ];
        for &a in &interesting {
            for &b in &interesting {
                for &c in &interesting {
                    for &d in &interesting {
                        let seq = [a, b, c, d];
                        let valid = std::str::from_utf8(&seq).is_ok();
                        assert_eq!(whole(&seq).is_ok(), valid, "{seq:02X?}");
                        let mut v = Utf8Validator::new();
                        for len in 1..=4 {
                            let ok = v.feed(&seq[len - 1..len]).is_ok();
                            assert_eq!(ok, valid_prefix(&seq[..len]), "{seq:02X?} {len}");
                            if !ok {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn long_text_split_everywhere() {
        let mut text = "ASCII then κόσμε, 𝄞 and 日本語 ".repeat(3).into_bytes();
        check(&text);
        text.push(0xED);
        text.extend_from_slice("and more".as_bytes());
        check(&text);
    }
}
