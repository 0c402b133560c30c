// Checks that MessageReader yields the same events and the same end (bytes consumed, or the same
// error) for a stream fed whole as fed in arbitrary chunks, and that decode_header round-trips.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use ringgate::protocol::close::is_valid_wire_code;
use ringgate::protocol::frame::{
    decode_header, encode_header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
};
use ringgate::protocol::reader::{Event, MessageReader, OwnedEvent, ReaderLimits};
use ringgate::protocol::ProtocolError;
use ringgate_fuzz::chunks;

// Input layout: [limits, split, stream...].
//   limits: bits 0-2 max_message_size, bits 3-4 max_fragments, bit 5 masks optional,
//           bits 6-7 allowed RSV bits (see `limits`).
//   split:  how the chunked run cuts the stream (see `ringgate_fuzz::chunks`); bit 6 also
//           makes its callback return Break after every event.
fuzz_target!(|data: &[u8]| {
    check_decode_header(data);
    let [limits_byte, split, stream @ ..] = data else {
        return;
    };
    check_decode_header(stream);
    let limits = limits(*limits_byte);
    let whole = run(limits, &[stream], false);
    let pieces = chunks(stream, *split);
    let chunked = run(limits, &pieces, split & 0x40 != 0);
    assert_eq!(whole, chunked, "whole vs chunked, {limits:?}");
    if let Ok(consumed) = whole.end {
        let closed = matches!(whole.events.last(), Some(OwnedEvent::Close(..)));
        assert!(consumed == stream.len() || (closed && consumed < stream.len()));
    }
});

fn limits(b: u8) -> ReaderLimits {
    const SIZES: [usize; 8] = [0, 1, 16, 125, 126, 1000, 70_000, 16 << 20];
    const FRAGMENTS: [usize; 4] = [0, 1, 3, 4096];
    const RSV: [u8; 4] = [0, 0b100, 0b010, 0b111];
    ReaderLimits {
        max_message_size: SIZES[usize::from(b & 7)],
        max_fragments: FRAGMENTS[usize::from((b >> 3) & 3)],
        require_mask: b & 0x20 == 0,
        allowed_rsv: RSV[usize::from(b >> 6)],
    }
}

/// Copies `event`, checking what every event promises whatever the input.
fn checked(event: Event<'_>, limits: &ReaderLimits) -> OwnedEvent {
    match &event {
        Event::Text(s) => assert!(s.len() <= limits.max_message_size),
        Event::Binary(b) => assert!(b.len() <= limits.max_message_size),
        Event::Compressed { payload, .. } => {
            assert!(
                limits.allowed_rsv & 0b100 != 0,
                "compressed without RSV1 allowed"
            );
            // Compressed bytes get deflate's worst-case growth past the limit.
            let bound = limits.max_message_size + (limits.max_message_size >> 10) + 64;
            assert!(payload.len() <= bound);
        }
        Event::Ping(b) | Event::Pong(b) => assert!(b.len() <= MAX_CONTROL_PAYLOAD),
        Event::Close(c) => {
            match c.code {
                Some(code) => assert!(is_valid_wire_code(code)),
                None => assert!(c.reason.is_empty()),
            }
            assert!(c.reason.len() <= MAX_CONTROL_PAYLOAD - 2);
        }
    }
    OwnedEvent::from(event)
}

/// Events delivered, then how the run ended: bytes consumed, or the error.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<OwnedEvent>,
    end: Result<usize, ProtocolError>,
}

/// Feeds `pieces` in order as a connection would: each piece is a fresh receive buffer, fed again
/// from where a Break stopped it; nothing is fed after an error or a Close.
fn run(limits: ReaderLimits, pieces: &[&[u8]], break_every_event: bool) -> Outcome {
    let mut reader = MessageReader::new(limits);
    let mut events = Vec::new();
    let mut consumed = 0;
    // A message or control payload plus the header stash; never the whole stream.
    let heap_bound = limits.max_message_size + 2 * MAX_HEADER_LEN + 2 * MAX_CONTROL_PAYLOAD;
    for piece in pieces {
        let mut buf = piece.to_vec();
        let mut pos = 0;
        loop {
            let before = events.len();
            let result = reader.feed(&mut buf[pos..], &mut |event| {
                events.push(checked(event, &limits));
                if break_every_event {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            let n = match result {
                Ok(n) => n,
                Err(e) => {
                    assert!(reader.is_idle(), "an error resets the reader");
                    assert_eq!(reader.buffered_bytes(), 0, "an error frees the buffers");
                    return Outcome {
                        events,
                        end: Err(e),
                    };
                }
            };
            assert!(n <= buf.len() - pos);
            assert!(
                reader.buffered_bytes() <= heap_bound,
                "buffers past the limit"
            );
            consumed += n;
            pos += n;
            if events.len() > before && matches!(events.last(), Some(OwnedEvent::Close(..))) {
                return Outcome {
                    events,
                    end: Ok(consumed),
                };
            }
            if pos == buf.len() {
                break;
            }
            // Only a Break may leave input unconsumed, and only after an event.
            assert!(break_every_event && events.len() > before, "stopped early");
        }
    }
    Outcome {
        events,
        end: Ok(consumed),
    }
}

/// decode_header: a decoded header re-encodes to exactly its bytes (lengths are minimal), needs
/// all of them (every shorter prefix is incomplete), and 14 bytes always decide.
fn check_decode_header(buf: &[u8]) {
    let decided = &buf[..buf.len().min(MAX_HEADER_LEN)];
    match decode_header(buf) {
        Ok(Some((header, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n) && n <= buf.len());
            assert!(header.rsv <= 0b111 && header.payload_len >> 63 == 0);
            if header.opcode.is_control() {
                assert!(header.fin && header.payload_len <= MAX_CONTROL_PAYLOAD as u64);
            }
            let mut out = [0u8; MAX_HEADER_LEN];
            let len = encode_header(
                &mut out,
                header.fin,
                header.rsv,
                header.opcode,
                header.payload_len,
                header.mask,
            );
            assert_eq!(&out[..len], &buf[..n], "re-encodes to the same bytes");
            assert_eq!(decode_header(&buf[..n]), Ok(Some((header, n))));
            for k in 0..n {
                assert_eq!(decode_header(&buf[..k]), Ok(None), "prefix {k} of {n}");
            }
        }
        Ok(None) => assert!(buf.len() < MAX_HEADER_LEN, "14 bytes always decide"),
        Err(e) => {
            assert_eq!(decode_header(decided), Err(e.clone()));
            for k in 0..decided.len() {
                let prefix = decode_header(&buf[..k]);
                assert!(
                    prefix == Ok(None) || prefix == Err(e.clone()),
                    "prefix {k}: {prefix:?} vs {e:?}"
                );
            }
        }
    }
}
