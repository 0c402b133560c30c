//! Micro-benchmarks of the sans-IO protocol core, each reported as bytes/s of input:
//! frame decode (MessageReader::feed), frame encode, (un)masking, the upgrade handshake,
//! UTF-8 validation and permessage-deflate, with byte-at-a-time and std baselines beside the
//! fast paths.
//!
//! `cargo bench --bench protocol` (add `-- --quick` for a rough pass, or a name filter such as
//! `-- decode`). Nothing here asserts a timing.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringgate::protocol::deflate::{Deflater, Inflater};
use ringgate::protocol::frame::OpCode;
use ringgate::protocol::handshake::{accept_key, validate_upgrade, write_switching_protocols};
use ringgate::protocol::http::parse_request;
use ringgate::protocol::mask::{apply_mask, apply_mask_fallback};
use ringgate::protocol::reader::{Event, MessageReader, ReaderLimits};
use ringgate::protocol::utf8::Utf8Validator;
use ringgate::protocol::writer::{encode_client_frame, encode_frame};

const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];
const KIB_64: usize = 64 * 1024;

/// Deterministic, non-repeating-looking payload bytes.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// `count` masked client frames of `opcode`, each carrying `len` bytes of ASCII.
fn masked_stream(count: usize, opcode: OpCode, len: usize) -> Vec<u8> {
    let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut out = Vec::new();
    for i in 0..count {
        let key = [KEY[0], KEY[1], KEY[2], i as u8];
        encode_client_frame(&mut out, true, opcode, &text, key);
    }
    out
}

/// Feeds `input` to a fresh server-side reader; returns the events and payload bytes seen
/// (so the work cannot be optimised away, and so the setup can be checked once).
fn decode(input: &mut [u8]) -> (usize, usize) {
    let mut reader = MessageReader::new(ReaderLimits::default());
    let mut events = 0;
    let mut bytes = 0;
    let result = reader.feed(input, &mut |event| {
        events += 1;
        bytes += match event {
            Event::Text(t) => t.len(),
            Event::Binary(b) | Event::Ping(b) | Event::Pong(b) => b.len(),
            Event::Compressed { payload, .. } => payload.len(),
            Event::Close(c) => c.reason.len(),
        };
        ControlFlow::Continue(())
    });
    black_box(result.expect("benchmark input is valid"));
    (events, bytes)
}

/// Feeds `input` in pieces of at most `piece` bytes, as reads off a socket would arrive.
fn decode_in_pieces(input: &mut [u8], piece: usize) -> usize {
    let mut reader = MessageReader::new(ReaderLimits::default());
    let mut events = 0;
    for chunk in input.chunks_mut(piece) {
        let result = reader.feed(chunk, &mut |event| {
            black_box(event);
            events += 1;
            ControlFlow::Continue(())
        });
        black_box(result.expect("benchmark input is valid"));
    }
    events
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let small = masked_stream(1000, OpCode::Text, 16);
    let big = masked_stream(1, OpCode::Binary, KIB_64);
    // The reader unmasks in place, so every iteration gets a fresh masked copy, made in the
    // untimed setup and handed back to be freed untimed too (LargeInput keeps batches small).
    assert_eq!(decode(&mut small.clone()), (1000, 16_000));
    assert_eq!(decode(&mut big.clone()), (1, KIB_64));
    assert_eq!(decode_in_pieces(&mut small.clone(), 1460), 1000);

    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("text_16B_x1000", |b| {
        b.iter_batched(
            || small.clone(),
            |mut input| (decode(&mut input), input),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("text_16B_x1000_in_1460B_reads", |b| {
        b.iter_batched(
            || small.clone(),
            |mut input| (decode_in_pieces(&mut input, 1460), input),
            BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("binary_64KiB", |b| {
        b.iter_batched(
            || big.clone(),
            |mut input| (decode(&mut input), input),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, len) in [("binary_16B", 16), ("binary_64KiB", KIB_64)] {
        let data = payload(len);
        let mut out = Vec::with_capacity(len + 16);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, OpCode::Binary, black_box(&data));
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn bench_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    // XOR is its own inverse, so masking the same buffer again is the same work every time.
    for (label, len) in [("1KiB", 1024), ("64KiB", KIB_64)] {
        let mut buf = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("apply_mask_{label}"), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), black_box(1)))
        });
        group.bench_function(format!("fallback_{label}"), |b| {
            b.iter(|| apply_mask_fallback(black_box(&mut buf), black_box(KEY), black_box(1)))
        });
    }
    group.finish();
}

/// A Chrome upgrade request as it arrives at the server.
const BROWSER_REQUEST: &[u8] = b"GET /ws/chat?room=lobby&token=abc123 HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\r\n";

/// Parse, validate, accept key, 101 response: the per-connection protocol work of an upgrade.
fn handshake(request: &[u8], out: &mut Vec<u8>) -> usize {
    let (head, _) = parse_request(request, 8192)
        .expect("valid request")
        .expect("complete request");
    let info = validate_upgrade(&head).expect("valid upgrade");
    let accept = accept_key(&info.key);
    out.clear();
    let protocol = info.protocols.first().map(String::as_str);
    write_switching_protocols(out, &accept, protocol, None, &[]);
    out.len()
}

fn bench_handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let mut out = Vec::with_capacity(256);
    assert!(handshake(BROWSER_REQUEST, &mut out) > 0);
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    group.throughput(Throughput::Bytes(BROWSER_REQUEST.len() as u64));
    group.bench_function("browser_upgrade", |b| {
        b.iter(|| handshake(black_box(BROWSER_REQUEST), &mut out))
    });
    group.finish();
}

fn validate(text: &[u8]) -> bool {
    let mut v = Utf8Validator::new();
    v.feed(text).is_ok() && v.finish().is_ok()
}

fn bench_utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let ascii: Vec<u8> = (0..KIB_64).map(|i| b' ' + (i % 95) as u8).collect();
    // Latin, Greek, CJK and astral-plane text mixed with ASCII, cut at a char boundary.
    let sample = "Grüße, κόσμε! 日本語のテキスト 𝄞🎉 plain ascii words; ";
    let mut mixed = sample.repeat(KIB_64 / sample.len() + 1);
    let mut end = KIB_64;
    while !mixed.is_char_boundary(end) {
        end -= 1;
    }
    mixed.truncate(end);
    let mixed = mixed.into_bytes();

    for (label, text) in [("ascii_64KiB", &ascii), ("mixed_64KiB", &mixed)] {
        assert!(validate(text) && std::str::from_utf8(text).is_ok());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("validator_{label}"), |b| {
            b.iter(|| validate(black_box(text)))
        });
        group.bench_function(format!("std_from_utf8_{label}"), |b| {
            b.iter(|| std::str::from_utf8(black_box(text)).is_ok())
        });
    }
    group.finish();
}

/// About 1 KiB of JSON as a realtime message carries it: keys repeat, values vary.
fn json_1kib() -> Vec<u8> {
    let mut text = String::from(r#"{"type":"update","room":"lobby","items":["#);
    for i in 0.. {
        if text.len() > 1000 {
            break;
        }
        let item = format!(
            r#"{{"id":{i},"name":"sensor-{}","temp":{}.{}}},"#,
            i * 13 % 97,
            i * 7 % 40,
            i % 10
        );
        text.push_str(&item);
    }
    text.pop();
    text.push_str("]}");
    text.into_bytes()
}

fn bench_deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    let text = json_1kib();
    let mut out = Vec::with_capacity(2 * text.len());
    let mut back = Vec::with_capacity(2 * text.len());
    group.throughput(Throughput::Bytes(text.len() as u64));
    for level in [1, 6] {
        // No context takeover (a shard's shared codec): every message is the same work.
        let mut deflater = Deflater::new(15, true, level);
        let mut inflater = Inflater::new(15, true);
        out.clear();
        deflater.compress(&text, &mut out);
        let compressed = out.clone();
        back.clear();
        inflater
            .inflate(&compressed, 1 << 20, &mut back)
            .expect("round trip");
        assert_eq!(back, text);
        group.bench_function(format!("compress_1KiB_json_level{level}"), |b| {
            b.iter(|| {
                out.clear();
                deflater.compress(black_box(&text), &mut out)
            })
        });
        group.bench_function(format!("inflate_1KiB_json_level{level}"), |b| {
            b.iter(|| {
                back.clear();
                let result = inflater.inflate(black_box(&compressed), 1 << 20, &mut back);
                black_box(result.is_ok())
            })
        });
    }
    group.finish();
}

/// Short runs: these are micro-benchmarks with small variance, and the suite stays a few
/// minutes long. Command-line flags (`--quick`, `--measurement-time`) still override.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_encode, bench_mask, bench_handshake, bench_utf8, bench_deflate
}
criterion_main!(benches);
