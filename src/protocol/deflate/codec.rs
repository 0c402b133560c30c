//! The permessage-deflate (RFC 7692) codec: compresses one whole message into
//! raw deflate ended by a sync flush with its `00 00 ff ff` tail removed, and
//! inflates one whole message back under a hard output limit. It holds the
//! zlib state of one direction; what was negotiated (window bits, context
//! takeover) is the caller's to pass in.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What a sync flush ends with and RFC 7692 (7.2.1) strips from each message:
/// the empty stored block's LEN and NLEN. The receiver appends it back (7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first output step of an inflate, for messages whose 4x guess is smaller.
const MIN_INFLATE_STEP: usize = 4 * 1024;

/// Compresses whole messages for one direction of one connection (or, with no context takeover, for any
/// number of connections one after the other: a shard shares one).
///
/// It holds zlib-rs's deflate state, allocated once: about 250 KB at window 9, 380 KB at 15
/// (flate2 1.1.11, level 6): with context takeover, that much a connection.
pub struct Deflater {
    z: Compress,
    no_context_takeover: bool,
}

impl Deflater {
    /// window_bits 9..=15 (clamp), level 0..=9 (clamp). no_context_takeover: reset the stream after each message.
    pub fn new(window_bits: u8, no_context_takeover: bool, level: u32) -> Self {
        let window_bits = window_bits.clamp(9, 15);
        let level = Compression::new(level.min(9));
        Self {
            z: Compress::new_with_window_bits(level, false, window_bits),
            no_context_takeover,
        }
    }

    /// Appends `payload` compressed as one RFC 7692 message to `out`: raw deflate, Z_SYNC_FLUSH, the
    /// trailing 0x00 0x00 0xff 0xff removed (RFC 7692 7.2.1). An empty payload gives the single byte 0x00
    /// (7.2.3.6). Returns the bytes appended. Never panics; reserves enough up front that it does not
    /// reallocate more than once for typical input.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        if payload.is_empty() {
            // Between messages the stream is byte-aligned (each ended with a sync flush), so
            // the header byte of an empty stored block, completed by the receiver's tail, is
            // the whole message in either mode. (zlib itself would answer a second sync flush
            // with no input by Z_BUF_ERROR and no bytes at all.)
            out.push(0x00);
            return 1;
        }
        // Enough for 2:1, which typical text and JSON beat; past that one growth to the
        // worst case of what is left.
        out.reserve(worst_case(payload.len()).min(payload.len() / 2 + 256));
        if self.deflate(payload, out).is_err() {
            // Not expected from zlib with valid parameters; the message still goes out,
            // uncompressed but valid, and the stream starts over (the peer's window keeping
            // more history than ours is harmless).
            out.truncate(start);
            self.z.reset();
            write_stored(payload, out);
        } else if self.no_context_takeover {
            // deflateReset: keeps window bits and level, clears the history (and zlib-rs's
            // 64 Ki-entry hash table: 128 KiB of memset a message, whatever its size).
            self.z.reset();
        }
        out.len() - start
    }

    /// Feeds `payload` with a sync flush and strips the tail; `Err` if zlib fails.
    fn deflate(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        let start = out.len();
        let mut input = payload;
        loop {
            if out.len() == out.capacity() {
                // What is left to read, plus what zlib may hold from input already read.
                out.reserve(worst_case(input.len()) + 4096);
            }
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            self.z
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(drop)?;
            let read = (self.z.total_in() - in_before) as usize;
            let wrote = (self.z.total_out() - out_before) as usize;
            input = &input[read..];
            // The flush is complete once all input is read and zlib stopped with room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if read == 0 && wrote == 0 && out.len() < out.capacity() {
                return Err(()); // no progress with input and room: never loop forever
            }
        }
        if !out[start..].ends_with(&SYNC_TAIL) {
            return Err(());
        }
        out.truncate(out.len() - SYNC_TAIL.len());
        Ok(())
    }
}

/// Compressed size `len` input bytes can reach at any window and level: fixed Huffman codes
/// spend up to 9 bits on a literal, stored blocks 5 bytes on up to 64 KiB; plus the flush.
fn worst_case(len: usize) -> usize {
    len.saturating_add(len >> 3)
        .saturating_add(len >> 8)
        .saturating_add(64)
}

/// Appends `payload` as stored (uncompressed) deflate blocks ending like a sync flush
/// stripped of its tail: valid at any byte-aligned point of a stream (RFC 1951 3.2.4).
fn write_stored(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + payload.len() / 0xffff * 5 + 6);
    for block in payload.chunks(0xffff) {
        let len = block.len() as u16;
        out.push(0x00); // BFINAL 0, BTYPE 00, padding to the byte
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.push(0x00); // the empty block the receiver's 00 00 ff ff completes
}

/// Decompresses whole messages for one direction of one connection (or, with no context takeover, a shard's).
///
/// It holds zlib-rs's inflate state, allocated once: about 47 KB, the 32 KiB window included,
/// whatever the window bits.
pub struct Inflater {
    z: Decompress,
    no_context_takeover: bool,
}

impl Inflater {
    /// window_bits 8..=15 (8 is read with 9: a bigger window reads any smaller one). no_context_takeover:
    /// reset after each message.
    ///
    /// The stream is always read with a 15-bit window, which reads any smaller one. That costs
    /// no memory: zlib-rs allocates the full 32 KiB window whatever the bits. And it keeps the
    /// reset cheap: flate2 (1.1.11) resets an inflater of any other window size by building a
    /// new one, an allocation a message with no context takeover, while window 15 gets a plain
    /// inflateReset. The price: a peer using a wider window than it negotiated is read rather
    /// than refused.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        let _ = window_bits; // read with 15, see above
        Self {
            z: Decompress::new_with_window_bits(false, 15),
            no_context_takeover,
        }
    }

    /// Appends the inflated `compressed` message (as received: without the 00 00 ff ff tail, which this
    /// adds itself) to `out`. Inflates in bounded steps and stops with TooBig as soon as the output would
    /// pass `limit` bytes: `out` never grows by more than `limit + 1` (the byte past the limit is how
    /// TooBig is known exactly), so a tiny message that inflates to gigabytes costs at most `limit`. Corrupt on invalid deflate data. A message holding a final
    /// block (BFINAL=1) ends there: the rest is ignored and the stream restarts for the next message.
    /// After any error, and after each message with no_context_takeover, the state is reset, so a shared
    /// inflater is always ready for the next message of any connection.
    ///
    /// On error `out` is truncated back to its length on entry (its capacity stays).
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        if compressed.is_empty() {
            // Not even a block header: an empty message. Fed the tail alone, zlib would
            // wait inside a stored block's length and garble the stream's next message.
            return Ok(());
        }
        let start = out.len();
        let result = self.inflate_parts(compressed, limit, out);
        if result.is_err() {
            out.truncate(start);
        }
        if result.is_err() || self.no_context_takeover {
            // Window 15 (see `new`): a cheap inflateReset, no allocation.
            self.z.reset(false);
        }
        result
    }

    /// Inflates `compressed` then the sync tail, writing at most `limit + 1` bytes past
    /// the start of `out`: the one byte past the limit is how TooBig is known exactly.
    fn inflate_parts(
        &mut self,
        compressed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let start = out.len();
        let budget = limit.saturating_add(1);
        let mut step = compressed.len().saturating_mul(4).max(MIN_INFLATE_STEP);
        let within_limit = |out: &Vec<u8>| match out.len() - start > limit {
            true => Err(InflateError::TooBig { limit }),
            false => Ok(()),
        };
        for (part, is_tail) in [(compressed, false), (&SYNC_TAIL[..], true)] {
            let mut input = part;
            loop {
                let room = budget - (out.len() - start); // at least 1: checked below
                if out.len() == out.capacity() {
                    out.reserve_exact(step.min(room));
                    step = step.saturating_mul(2);
                }
                let (read, wrote, given, status) = self.inflate_into(input, out, room);
                if is_tail && wrote > 0 {
                    // A whole message ends in the header of an empty stored block (7.2.1),
                    // which the tail completes with no output. Output here means the message
                    // was cut inside a block; not every such cut shows (inside a Huffman
                    // block the tail may decode to nothing), but those that do are refused.
                    return Err(InflateError::Corrupt("message cut inside a block".into()));
                }
                // Output past the limit is TooBig even when bad data follows it in the same
                // call (zlib reads on after filling the room, e.g. a stored block's header).
                within_limit(out)?;
                let status = status?;
                input = &input[read..];
                if status == Status::StreamEnd {
                    // A final block: the message ends here, the rest is ignored, and the
                    // next message starts a new stream, whatever the takeover.
                    self.z.reset(false);
                    return Ok(());
                }
                // Done with this part once all of it is read and zlib stopped short of the
                // room it had; had it filled the room exactly, more output may be pending.
                let filled = wrote == given;
                if input.is_empty() && !filled {
                    break;
                }
                if read == 0 && wrote == 0 && !filled {
                    return Err(InflateError::Corrupt("inflate made no progress".into()));
                }
            }
        }
        Ok(())
    }

    /// One inflate call into the spare capacity of `out`, at most `room` bytes of it.
    /// Returns the input bytes read, the output bytes written (kept in `out` even when
    /// zlib then fails), the room zlib was given and its status.
    fn inflate_into(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        room: usize,
    ) -> (usize, usize, usize, Result<Status, InflateError>) {
        let spare = out.spare_capacity_mut();
        let given = spare.len().min(room);
        let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
        let status = self
            .z
            .decompress_uninit(input, &mut spare[..given], FlushDecompress::Sync)
            .map_err(|e| InflateError::Corrupt(e.message().unwrap_or("inflate failed").to_owned()));
        let read = (self.z.total_in() - in_before) as usize;
        let wrote = (self.z.total_out() - out_before) as usize;
        // SAFETY: zlib initialised the first `wrote` bytes of the spare capacity it was
        // given (total_out counts them, error or not), and `wrote <= given <= spare.len()`.
        unsafe { out.set_len(out.len() + wrote) };
        (read, wrote, given, status)
    }
}

/// Why a message was not inflated; either way the inflater is reset and ready for the next.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    #[error("message inflates past the {limit}-byte limit")]
    TooBig { limit: usize },
    #[error("invalid deflate data: {0}")]
    Corrupt(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit no test message reaches.
    const NO_LIMIT: usize = 1 << 30;

    /// Deterministic bytes with no structure to compress.
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    /// JSON-like text of at least `len` bytes, cut to exactly `len`.
    fn json_text(len: usize) -> Vec<u8> {
        let mut text = Vec::with_capacity(len + 100);
        for i in 0.. {
            if text.len() >= len {
                break;
            }
            let line = format!(
                r#"{{"id":{i},"name":"sensor-{}","temp":{}.{}}}"#,
                i % 17,
                i * 7 % 40,
                i % 10
            );
            text.extend_from_slice(line.as_bytes());
        }
        text.truncate(len);
        text
    }

    /// Compresses after a marker byte already in `out`, checking the count and the marker.
    fn compress(deflater: &mut Deflater, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0xA5];
        let n = deflater.compress(payload, &mut out);
        assert_eq!((n, out[0]), (out.len() - 1, 0xA5), "appends and counts");
        out.split_off(1)
    }

    /// Inflates after a marker byte; on error `out` must be as it was.
    fn inflate(inflater: &mut Inflater, msg: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        let mut out = vec![0x5A];
        let result = inflater.inflate(msg, limit, &mut out);
        let most = limit.saturating_add(2); // the marker, the limit and one byte past it
        assert!(out.capacity() <= most, "capacity {}", out.capacity());
        match result {
            Ok(()) => Ok(out.split_off(1)),
            Err(e) => {
                assert_eq!(out, [0x5A], "truncated on error");
                Err(e)
            }
        }
    }

    /// A raw deflate stream of `pieces`, each fed with its flush, ended by a sync flush
    /// without its tail: a valid message built otherwise than by `Deflater`.
    fn flate2_message(pieces: &[(&[u8], FlushCompress)]) -> Vec<u8> {
        let mut z = Compress::new(Compression::new(9), false);
        let mut out = Vec::new();
        for &(piece, flush) in pieces.iter().chain([&(&[][..], FlushCompress::Sync)]) {
            let mut input = piece;
            loop {
                out.reserve(64 * 1024);
                let before = z.total_in();
                z.compress_vec(input, &mut out, flush).unwrap();
                input = &input[(z.total_in() - before) as usize..];
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
            }
        }
        assert!(out.ends_with(&SYNC_TAIL));
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn round_trips_every_window_level_and_mode() {
        let mut mixed = json_text(512 * 1024);
        mixed.extend(random_bytes(512 * 1024, 7));
        let payloads: [(&str, Vec<u8>); 6] = [
            ("empty", vec![]),
            ("one byte", vec![b'x']),
            ("text", json_text(10_000)),
            ("random", random_bytes(70_000, 1)),
            ("zeros", vec![0; 100_000]),
            ("1 MiB", mixed),
        ];
        for window in 9..=15 {
            for level in [0, 1, 6, 9] {
                for (name, payload) in &payloads {
                    if payload.len() > 100_000 && !matches!(level, 1 | 6) {
                        continue; // the big one at the levels a server would use
                    }
                    for no_takeover in [false, true] {
                        let case = format!(
                            "{name}, window {window}, level {level}, no_takeover {no_takeover}"
                        );
                        let mut deflater = Deflater::new(window, no_takeover, level);
                        let msg = compress(&mut deflater, payload);
                        let mut inflater = Inflater::new(window, no_takeover);
                        let back = inflate(&mut inflater, &msg, payload.len()).expect(&case);
                        assert!(back == *payload, "{case}");
                        if no_takeover {
                            // reset keeps window bits and level: the same bytes as a new deflater.
                            assert_eq!(compress(&mut deflater, payload), msg, "{case}");
                            assert_eq!(
                                inflate(&mut inflater, &msg, NO_LIMIT).as_ref(),
                                Ok(payload),
                                "{case}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sequences_of_fifty_messages() {
        let messages: Vec<Vec<u8>> = (0..50)
            .map(|i| match i % 5 {
                0 => vec![],
                1 => random_bytes(i * 37, i as u64),
                _ => json_text(100 + i * 61),
            })
            .collect();
        for window in [9, 12, 15] {
            let mut sizes = Vec::new();
            for no_takeover in [false, true] {
                let mut deflater = Deflater::new(window, no_takeover, 6);
                let mut inflater = Inflater::new(window, no_takeover);
                let mut total = 0;
                for (i, payload) in messages.iter().enumerate() {
                    let case = format!("message {i}, window {window}, no_takeover {no_takeover}");
                    let msg = compress(&mut deflater, payload);
                    total += msg.len();
                    assert_eq!(
                        inflate(&mut inflater, &msg, NO_LIMIT).as_ref(),
                        Ok(payload),
                        "{case}"
                    );
                    if no_takeover {
                        let mut fresh = Inflater::new(window, true);
                        assert_eq!(
                            inflate(&mut fresh, &msg, NO_LIMIT).as_ref(),
                            Ok(payload),
                            "{case}: alone"
                        );
                    }
                }
                sizes.push(total);
            }
            // The same text again and again: with the context it compresses better.
            assert!(sizes[0] < sizes[1], "window {window}: {sizes:?}");
        }
    }

    #[test]
    fn rfc7692_examples() {
        const HELLO: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        const HELLO_AGAIN: &[u8] = &[0xf2, 0x00, 0x11, 0x00, 0x00];
        let cases: [(&str, bool, &[&[u8]]); 6] = [
            ("7.2.3.1 one message", true, &[HELLO]),
            ("7.2.3.2 context takeover", false, &[HELLO, HELLO_AGAIN]),
            (
                "7.2.3.3 stored block",
                true,
                &[&[
                    0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
                ]],
            ),
            (
                "7.2.3.4 BFINAL set",
                true,
                &[&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]],
            ),
            (
                "7.2.3.5 two blocks",
                true,
                &[&[
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ]],
            ),
            (
                "7.2.3.1 then BFINAL then takeover",
                false,
                &[
                    HELLO,
                    &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                    HELLO,
                    HELLO_AGAIN,
                ],
            ),
        ];
        for (name, no_takeover, messages) in cases {
            let mut inflater = Inflater::new(15, no_takeover);
            for msg in messages {
                assert_eq!(
                    inflate(&mut inflater, msg, 5),
                    Ok(b"Hello".to_vec()),
                    "{name}"
                );
            }
        }
        let mut deflater = Deflater::new(15, false, 6);
        assert_eq!(compress(&mut deflater, b"Hello"), HELLO);
        assert_eq!(compress(&mut deflater, b"Hello"), HELLO_AGAIN);
        // 7.2.3.6: an empty message is the single byte 00, fresh or in the middle of a context.
        assert_eq!(compress(&mut deflater, b""), [0x00]);
        assert_eq!(compress(&mut Deflater::new(15, true, 6), b""), [0x00]);
        // Context takeover messages need the context: a fresh inflater refuses the second.
        let mut fresh = Inflater::new(15, false);
        assert!(matches!(
            inflate(&mut fresh, HELLO_AGAIN, NO_LIMIT),
            Err(InflateError::Corrupt(_))
        ));
        assert_eq!(
            inflate(&mut fresh, HELLO, NO_LIMIT),
            Ok(b"Hello".to_vec()),
            "reset after the error"
        );
        // No payload at all is an empty message, and leaves the context as it was.
        let mut takeover = Inflater::new(15, false);
        for msg in [&[][..], HELLO, &[], &[0x00], HELLO_AGAIN] {
            let want: &[u8] = if msg.len() > 1 { b"Hello" } else { b"" };
            assert_eq!(inflate(&mut takeover, msg, 5), Ok(want.to_vec()), "{msg:?}");
        }
    }

    #[test]
    fn stored_and_differently_flushed_messages() {
        let text = json_text(200_000);
        // `text` fed to zlib in pieces ending at `ends`, each flushed so; the rest with no flush.
        let cut = |ends: &[(usize, FlushCompress)]| {
            let mut from = 0;
            let mut pieces = Vec::new();
            for &(to, flush) in ends.iter().chain([&(text.len(), FlushCompress::None)]) {
                pieces.push((&text[from..to], flush));
                from = to;
            }
            flate2_message(&pieces)
        };
        use FlushCompress::{Full, None, Partial, Sync};
        let cases: [(&str, Vec<u8>, &[u8]); 7] = [
            ("stored empty", stored(b""), b""),
            ("stored one block", stored(&text[..65_535]), &text[..65_535]),
            (
                "stored two blocks",
                stored(&text[..65_536]),
                &text[..65_536],
            ),
            ("stored many", stored(&text), &text),
            ("no flush between", cut(&[(1, None), (99_999, None)]), &text),
            (
                "sync, full flushes",
                cut(&[(7, Sync), (50_000, Full)]),
                &text,
            ),
            (
                "partial flushes",
                cut(&[(3, Partial), (150_001, Partial)]),
                &text,
            ),
        ];
        for no_takeover in [false, true] {
            let mut inflater = Inflater::new(15, no_takeover);
            for (name, msg, expected) in &cases {
                let back = inflate(&mut inflater, msg, expected.len());
                assert_eq!(back.as_deref(), Ok(*expected), "{name}");
            }
        }
    }

    fn stored(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_stored(payload, &mut out);
        out
    }

    #[test]
    fn limit_is_exact() {
        for len in [1, 100, 4095, 4096, 4097, 70_000] {
            for (kind, payload) in [
                ("text", json_text(len)),
                ("random", random_bytes(len, len as u64)),
            ] {
                let msg = compress(&mut Deflater::new(15, true, 6), &payload);
                let mut inflater = Inflater::new(15, true);
                let case = format!("{kind} of {len}");
                assert_eq!(
                    inflate(&mut inflater, &msg, len).as_ref(),
                    Ok(&payload),
                    "{case}"
                );
                assert_eq!(
                    inflate(&mut inflater, &msg, len - 1),
                    Err(InflateError::TooBig { limit: len - 1 }),
                    "{case}"
                );
                assert_eq!(
                    inflate(&mut inflater, &msg, 0),
                    Err(InflateError::TooBig { limit: 0 }),
                    "{case}"
                );
            }
        }
        assert_eq!(
            inflate(&mut Inflater::new(15, true), &[0x00], 0),
            Ok(vec![]),
            "empty within 0"
        );
        // "He", then a stored block whose NLEN is wrong: past the limit before the bad data
        // is TooBig, though zlib reads on to the bad header in the same call (found by fuzzing).
        let he_then_bad = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xbf, 0xff, 0xca];
        for (limit, corrupt) in [(1, false), (2, true)] {
            let result = inflate(&mut Inflater::new(15, true), &he_then_bad, limit);
            assert_eq!(
                matches!(result, Err(InflateError::Corrupt(_))),
                corrupt,
                "{limit}: {result:?}"
            );
            assert_eq!(
                matches!(result, Err(InflateError::TooBig { .. })),
                !corrupt,
                "{limit}"
            );
        }
    }

    /// A message of zeros at deflate's fixed-code best: one literal 0, then `copies` copies of
    /// 258 bytes at distance 1 (13 bits each, RFC 1951 3.2.6), the end of the block and the
    /// header of the empty stored block a sync flush ends with.
    fn zeros_bomb(copies: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(copies * 13 / 8 + 8);
        let (mut acc, mut bits) = (0u64, 0);
        // Huffman codes go most significant bit first, everything else least first.
        let mut put = |value: u64, count: u32, huffman: bool| {
            let value = match huffman {
                true => value.reverse_bits() >> (64 - count),
                false => value,
            };
            acc |= value << bits;
            bits += count;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        };
        put(0b010, 3, false); // BFINAL 0, BTYPE 01: fixed codes
        put(0x30, 8, true); // literal 0
        for _ in 0..copies {
            put(0xc5, 8, true); // length code 285: 258 bytes
            put(0, 5, true); // distance code 0: 1 byte back
        }
        put(0, 7, true); // end of block
        put(0, 3 + 7, false); // stored block header, padding to the byte
        out
    }

    #[test]
    fn zip_bomb_costs_the_limit() {
        let small = zeros_bomb(1000);
        let back = inflate(&mut Inflater::new(15, true), &small, NO_LIMIT);
        assert_eq!(back, Ok(vec![0; 258_001]), "the bomb is what it says");
        // About 650 KB that inflate to about 100 MB, against a limit of 1 MiB.
        let bomb = zeros_bomb(400_000);
        let limit = 1 << 20;
        for no_takeover in [false, true] {
            let mut inflater = Inflater::new(15, no_takeover);
            // `inflate` checks that the capacity stays within 1 + limit + 1.
            let result = inflate(&mut inflater, &bomb, limit);
            assert_eq!(result, Err(InflateError::TooBig { limit }));
            let back = inflate(&mut inflater, &small, NO_LIMIT);
            assert_eq!(back.map(|v| v.len()), Ok(258_001), "ready for the next");
        }
    }

    #[test]
    fn corrupt_data_then_the_next_message() {
        let cases: [(&str, &[u8]); 4] = [
            ("reserved block type", &[0xff]),
            (
                "stored length mismatch",
                &[0x00, 0x05, 0x00, 0x00, 0x00, b'H', b'e', b'l', b'l', b'o'],
            ),
            ("bad code lengths", &[0x04, 0xff, 0xff, 0xff, 0xff, 0xff]),
            (
                "stored block cut short",
                &[0x00, 0x05, 0x00, 0xfa, 0xff, b'H'],
            ),
        ];
        for no_takeover in [false, true] {
            let mut inflater = Inflater::new(15, no_takeover);
            let mut deflater = Deflater::new(15, no_takeover, 6);
            for (name, msg) in cases {
                let result = inflate(&mut inflater, msg, NO_LIMIT);
                assert!(
                    matches!(result, Err(InflateError::Corrupt(_))),
                    "{name}: {result:?}"
                );
                // Ready for the next message: the start of a new stream.
                let payload = json_text(300);
                let next = compress(&mut deflater, &payload);
                deflater = Deflater::new(15, no_takeover, 6);
                assert_eq!(
                    inflate(&mut inflater, &next, NO_LIMIT),
                    Ok(payload),
                    "{name}: next"
                );
            }
        }
    }

    #[test]
    fn final_block_then_junk() {
        let mut z = Compress::new(Compression::new(6), false);
        let mut msg = Vec::with_capacity(1024);
        z.compress_vec(b"Hello, final block", &mut msg, FlushCompress::Finish)
            .unwrap();
        for junk in [
            &b""[..],
            &[0xff, 0xff, 0xff],
            b"anything at all",
            &[0x00, 0x00, 0xff, 0xff],
        ] {
            let mut inflater = Inflater::new(15, false);
            let with_junk = [&msg[..], junk].concat();
            assert_eq!(
                inflate(&mut inflater, &with_junk, NO_LIMIT),
                Ok(b"Hello, final block".to_vec())
            );
            // A new stream follows, with its own context.
            let mut deflater = Deflater::new(15, false, 6);
            for payload in [b"Hello".as_slice(), b"Hello"] {
                let next = compress(&mut deflater, payload);
                assert_eq!(
                    inflate(&mut inflater, &next, NO_LIMIT).as_deref(),
                    Ok(payload)
                );
            }
        }
    }

    #[test]
    fn parameters_out_of_range_are_clamped() {
        let payload = json_text(5000);
        for (window, level) in [(0, 99), (8, 0), (16, 10), (255, u32::MAX)] {
            for no_takeover in [false, true] {
                let msg = compress(&mut Deflater::new(window, no_takeover, level), &payload);
                let back = inflate(&mut Inflater::new(window, no_takeover), &msg, NO_LIMIT);
                assert_eq!(
                    back.as_ref(),
                    Ok(&payload),
                    "window {window}, level {level}"
                );
            }
        }
    }
}
