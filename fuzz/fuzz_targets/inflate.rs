// Inflate then validate: one permessage-deflate `Inflater` reads 1 to 3 arbitrary messages in
// sequence and answers as an unbounded reference inflate (flate2, same window and takeover)
// says it must: Ok with the same bytes, never more than the limit, text validation agreeing
// with std; TooBig exactly when the output passes the limit; Corrupt otherwise. And the round
// trip: each message compressed by a `Deflater` inflates back to itself.
#![no_main]

use flate2::{Decompress, FlushDecompress, Status};
use libfuzzer_sys::fuzz_target;
use ringgate::protocol::deflate::{Deflater, InflateError, Inflater};
use ringgate::protocol::utf8::as_text;

const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

// Input layout: [limit, config, cut1, cut2, messages...]. The limit is limit * 256 + 1 bytes;
// config's low 3 bits add to window bits 8, bit 3 is no_context_takeover, bits 4-5 the number of
// messages (1 + n % 3), bits 6-7 a deflate level (0, 1, 6, 9). The messages are the rest, cut
// at cut1 / 256 and cut2 / 256 of its length.
fuzz_target!(|data: &[u8]| {
    let [limit, config, cut1, cut2, rest @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit) * 256 + 1;
    let window_bits = 8 + (config & 7);
    let no_takeover = config & 8 != 0;
    let count = 1 + usize::from(config >> 4 & 3) % 3;
    let level = [0, 1, 6, 9][usize::from(config >> 6)];
    let at = |cut: u8| rest.len() * usize::from(cut) / 256;
    let (a, b) = (at(*cut1).min(at(*cut2)), at(*cut1).max(at(*cut2)));
    let messages: &[&[u8]] = match count {
        1 => &[rest],
        2 => &[&rest[..a], &rest[a..]],
        _ => &[&rest[..a], &rest[a..b], &rest[b..]],
    };

    let mut inflater = Inflater::new(window_bits, no_takeover);
    let mut reference = Decompress::new(false);
    for (i, msg) in messages.iter().enumerate() {
        let expected = reference_inflate(&mut reference, msg, limit, no_takeover);
        let mut out = vec![0xA5];
        let result = inflater.inflate(msg, limit, &mut out);
        assert!(out.capacity() <= 1 + limit + 1, "message {i}: capacity");
        match (&result, &expected) {
            (Ok(()), Ok(want)) => {
                let got = &out[1..];
                assert_eq!(got, &want[..], "message {i}: bytes");
                assert!(got.len() <= limit, "message {i}: within the limit");
                let std_ok = std::str::from_utf8(got).is_ok();
                assert_eq!(as_text(got).is_ok(), std_ok, "message {i}: as_text vs std");
            }
            (Err(got), Err(want)) => {
                assert_eq!(
                    std::mem::discriminant(got),
                    std::mem::discriminant(want),
                    "message {i}"
                );
                assert_eq!(out, [0xA5], "message {i}: truncated on error");
            }
            _ => panic!("message {i}: {result:?} but the reference says {expected:?}"),
        }
    }

    let mut deflater = Deflater::new(window_bits, no_takeover, level);
    let mut inflater = Inflater::new(window_bits, no_takeover);
    for (i, msg) in messages.iter().enumerate() {
        let mut compressed = Vec::new();
        let n = deflater.compress(msg, &mut compressed);
        assert_eq!(n, compressed.len(), "message {i}: compress counts");
        let mut back = Vec::new();
        inflater
            .inflate(&compressed, usize::MAX, &mut back)
            .expect("round trip");
        assert_eq!(back, *msg, "message {i}: round trip");
    }
});

/// What `Inflater::inflate` must answer, from flate2 given all the output room it wants:
/// nothing for an empty message; else the message, then the tail (which, ending a whole message, completes an empty stored block
/// and writes nothing); a final block ends the message and the stream; errors and, with no
/// context takeover, every message reset the stream.
fn reference_inflate(
    z: &mut Decompress,
    msg: &[u8],
    limit: usize,
    no_takeover: bool,
) -> Result<Vec<u8>, InflateError> {
    if msg.is_empty() {
        // No payload bytes at all: an empty message, the stream left as it was.
        return Ok(Vec::new());
    }
    let corrupt = || InflateError::Corrupt(String::new());
    let (out, status) = inflate_unbounded(z, msg);
    let result = if out.len() > limit {
        Err(InflateError::TooBig { limit })
    } else {
        match status {
            Err(()) => Err(corrupt()),
            Ok(Status::StreamEnd) => Ok(out),
            Ok(_) => match inflate_unbounded(z, &SYNC_TAIL) {
                (tail, _) if !tail.is_empty() => Err(corrupt()),
                (_, Err(())) => Err(corrupt()),
                (_, Ok(status)) => {
                    if status == Status::StreamEnd {
                        z.reset(false);
                    }
                    Ok(out)
                }
            },
        }
    };
    if result.is_err() || no_takeover || status == Ok(Status::StreamEnd) {
        z.reset(false);
    }
    result
}

/// All that `input` inflates to (stopping at the end of a final block), and how it ended.
fn inflate_unbounded(z: &mut Decompress, input: &[u8]) -> (Vec<u8>, Result<Status, ()>) {
    let mut out = Vec::new();
    let mut input = input;
    loop {
        out.reserve(64 * 1024);
        let before = z.total_in();
        let status = z.decompress_vec(input, &mut out, FlushDecompress::Sync);
        input = &input[(z.total_in() - before) as usize..];
        match status {
            Err(_) => return (out, Err(())),
            Ok(Status::StreamEnd) => return (out, Ok(Status::StreamEnd)),
            Ok(status) if input.is_empty() && out.len() < out.capacity() => {
                return (out, Ok(status))
            }
            Ok(_) => {}
        }
    }
}
