//! RFC 6455 violations from a client: each gets the right close code and the
//! end of the TCP connection, and never disturbs the other connections.

mod common;

use common::*;
use std::time::Duration;

/// Connects to `/echo`, writes `bytes`, and expects close `code` then EOF.
fn assert_rejected(server: &ServerProcess, bytes: &[u8], code: u16) {
    let mut ws = RawWs::connect(server.addr, "/echo");
    ws.send_raw(bytes);
    ws.expect_close_and_eof(code);
}

fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame(fin, rsv, opcode, payload, Some(next_mask()))
}

#[test]
fn unmasked_client_frame_is_1002() {
    let server = ServerProcess::spawn(&[]);
    assert_rejected(&server, &encode_frame(true, 0, OP_TEXT, b"hi", None), 1002);
}

#[test]
fn rsv_bits_without_an_extension_are_1002() {
    let server = ServerProcess::spawn(&[]);
    for rsv in [1, 2, 4] {
        assert_rejected(&server, &frame(true, rsv, OP_TEXT, b"hi"), 1002);
    }
}

#[test]
fn reserved_opcodes_are_1002() {
    let server = ServerProcess::spawn(&[]);
    for op in [0x3, 0x7, 0xB, 0xF] {
        assert_rejected(&server, &frame(true, 0, op, b""), 1002);
    }
}

#[test]
fn bad_control_frames_are_1002() {
    let server = ServerProcess::spawn(&[]);
    // fragmented ping
    assert_rejected(&server, &frame(false, 0, OP_PING, b"x"), 1002);
    // ping payload over 125 bytes
    assert_rejected(&server, &frame(true, 0, OP_PING, &[b'p'; 126]), 1002);
    // a close payload of one byte
    assert_rejected(&server, &frame(true, 0, OP_CLOSE, &[3]), 1002);
}

#[test]
fn bad_fragment_sequences_are_1002() {
    let server = ServerProcess::spawn(&[]);
    // continuation with no message started
    assert_rejected(&server, &frame(true, 0, OP_CONT, b"x"), 1002);
    // a new text message while one is still open
    let mut bytes = frame(false, 0, OP_TEXT, b"a");
    bytes.extend(frame(true, 0, OP_TEXT, b"b"));
    assert_rejected(&server, &bytes, 1002);
}

#[test]
fn invalid_close_codes_are_1002() {
    let server = ServerProcess::spawn(&[]);
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999] {
        assert_rejected(
            &server,
            &frame(true, 0, OP_CLOSE, &close_payload(code, b"")),
            1002,
        );
    }
}

#[test]
fn invalid_utf8_text_is_1007() {
    let server = ServerProcess::spawn(&[]);
    assert_rejected(&server, &frame(true, 0, OP_TEXT, b"ok \xff\xfe"), 1007);
    // truncated sequence at the end of a fragmented message
    let mut bytes = frame(false, 0, OP_TEXT, b"abc");
    bytes.extend(frame(true, 0, OP_CONT, b"\xce"));
    assert_rejected(&server, &bytes, 1007);
    // overlong encoding / surrogate half
    assert_rejected(&server, &frame(true, 0, OP_TEXT, b"\xc0\xaf"), 1007);
    assert_rejected(&server, &frame(true, 0, OP_TEXT, b"\xed\xa0\x80"), 1007);
}

#[test]
fn invalid_utf8_close_reason_is_1007() {
    let server = ServerProcess::spawn(&[]);
    assert_rejected(
        &server,
        &frame(true, 0, OP_CLOSE, &close_payload(1000, b"\xff")),
        1007,
    );
}

#[test]
fn message_over_max_size_is_1009() {
    let server = ServerProcess::spawn(&[("RINGGATE_MAX_MESSAGE_SIZE", "1024")]);
    // exactly at the limit: echoed
    let mut ws = RawWs::connect(server.addr, "/echo");
    ws.send(true, OP_BINARY, &[7u8; 1024]);
    assert_eq!(
        ws.read_message(Duration::from_secs(5)),
        (OP_BINARY, vec![7u8; 1024])
    );
    // one frame over the limit
    assert_rejected(&server, &frame(true, 0, OP_BINARY, &[1u8; 1025]), 1009);
    // fragments that add up to more than the limit
    let mut bytes = frame(false, 0, OP_TEXT, &[b'a'; 600]);
    bytes.extend(frame(true, 0, OP_CONT, &[b'b'; 600]));
    assert_rejected(&server, &bytes, 1009);
}

#[test]
fn too_many_fragments_close_the_connection() {
    let server = ServerProcess::spawn(&[("RINGGATE_MAX_FRAGMENTS", "4")]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let mut bytes = frame(false, 0, OP_BINARY, b"x");
    for _ in 0..10 {
        bytes.extend(frame(false, 0, OP_CONT, b"y"));
    }
    // The server may close before it has read everything; a failed write is fine.
    let _ = std::io::Write::write_all(&mut ws.stream, &bytes);
    let code = ws.expect_close(Duration::from_secs(5));
    assert_eq!(
        code,
        Some(1009),
        "a message over the fragment limit is too big"
    );
    assert!(ws.closed_within(Duration::from_secs(5)));
}

#[test]
fn client_close_code_is_echoed_and_tcp_closed() {
    let server = ServerProcess::spawn(&[]);
    for (code, reason) in [
        (1000u16, &b""[..]),
        (1001, b"bye"),
        (3000, b""),
        (4001, b"custom"),
    ] {
        let mut ws = RawWs::connect(server.addr, "/echo");
        ws.send_close(code, reason);
        ws.expect_close_and_eof(code);
    }
    // A close without a status code: the answer is a close frame (empty or 1000).
    let mut ws = RawWs::connect(server.addr, "/echo");
    ws.send(true, OP_CLOSE, b"");
    let got = ws.expect_close(Duration::from_secs(5));
    assert!(matches!(got, None | Some(1000)), "got {got:?}");
    assert!(ws.closed_within(Duration::from_secs(5)));
}

#[test]
fn nothing_is_echoed_after_the_close_frame() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let mut bytes = client_frame(OP_CLOSE, &close_payload(1000, b""));
    bytes.extend(client_frame(OP_TEXT, b"after close"));
    ws.send_raw(&bytes);
    let f = ws.read_frame(Duration::from_secs(5));
    assert_eq!((f.opcode, f.close_code()), (OP_CLOSE, Some(1000)), "{f:?}");
    assert!(ws.closed_within(Duration::from_secs(5)));
}

#[test]
fn a_failing_connection_does_not_disturb_a_healthy_one() {
    let server = ServerProcess::spawn(&[("RINGGATE_MAX_MESSAGE_SIZE", "1024")]);
    let mut healthy = RawWs::connect(server.addr, "/echo");
    healthy.assert_echo("before");
    let bad_inputs: Vec<(Vec<u8>, u16)> = vec![
        (encode_frame(true, 0, OP_TEXT, b"x", None), 1002),
        (frame(true, 4, OP_BINARY, b"x"), 1002),
        (frame(true, 0, 0x3, b""), 1002),
        (frame(true, 0, OP_TEXT, b"\xff"), 1007),
        (frame(true, 0, OP_BINARY, &[0u8; 4096]), 1009),
    ];
    for (i, (bytes, code)) in bad_inputs.iter().enumerate() {
        // open the bad connection while the healthy one is mid-conversation
        let mut bad = RawWs::connect(server.addr, "/echo");
        healthy.assert_echo(&format!("during {i}"));
        bad.send_raw(bytes);
        bad.expect_close_and_eof(*code);
        healthy.assert_echo(&format!("after {i}"));
    }
    // and it still closes cleanly
    healthy.send_close(1000, b"done");
    healthy.expect_close_and_eof(1000);
}
