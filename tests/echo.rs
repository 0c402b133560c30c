//! `/echo` returns every text and binary message unchanged: through a real
//! client library (tokio-tungstenite) and through hand-built frames
//! (fragmentation, interleaved control frames, pipelining).

mod common;

use common::*;
use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as TFrame;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn library_client_gets_every_kind_of_message_back() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = ws_connect(&server.ws_url("/echo")).await;
    ws_echo(&mut ws, Message::Text("hello".into())).await;
    ws_echo(&mut ws, Message::Text("κόσμε, 世界, 🦀".into())).await;
    ws_echo(&mut ws, Message::Text(String::new())).await;
    ws_echo(&mut ws, Message::Binary(vec![0, 1, 2, 255])).await;
    ws_echo(&mut ws, Message::Binary(Vec::new())).await;
    let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    ws_echo(&mut ws, Message::Binary(big)).await;
    ws_echo(&mut ws, Message::Text("x".repeat(70_000))).await;
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn library_client_fragmented_message_comes_back_whole() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = ws_connect(&server.ws_url("/echo")).await;
    let parts = ["frag", "ment", "ed ✓"];
    ws.send(Message::Frame(TFrame::message(
        parts[0].into(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    ws.send(Message::Frame(TFrame::message(
        parts[1].into(),
        OpCode::Data(Data::Continue),
        false,
    )))
    .await
    .unwrap();
    ws.send(Message::Frame(TFrame::message(
        parts[2].into(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    let got = ws_next(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(got, Message::Text(parts.concat()));
    // and the connection goes on normally
    ws_echo(&mut ws, Message::Binary(vec![9; 10])).await;
}

#[test]
fn raw_fragments_with_an_interleaved_ping() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    ws.send(false, OP_TEXT, b"Hello, ");
    ws.send(true, OP_PING, b"in-between");
    ws.send(false, OP_CONT, b"fragmented ");
    ws.send(true, OP_CONT, b"world");
    // The pong answers the ping first (the message is not complete before it).
    let pong = ws.read_frame(Duration::from_secs(5));
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"in-between"[..])
    );
    let (op, data) = ws.read_message(Duration::from_secs(5));
    assert_eq!((op, data), (OP_TEXT, b"Hello, fragmented world".to_vec()));
}

#[test]
fn raw_fragment_split_inside_a_utf8_sequence_is_valid() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let text = "κόσμε";
    let bytes = text.as_bytes();
    // split between the two bytes of 'κ' and inside 'ό'
    ws.send(false, OP_TEXT, &bytes[..1]);
    ws.send(false, OP_CONT, &bytes[1..3]);
    ws.send(true, OP_CONT, &bytes[3..]);
    let (op, data) = ws.read_message(Duration::from_secs(5));
    assert_eq!((op, data.as_slice()), (OP_TEXT, bytes));
}

#[test]
fn raw_binary_in_many_fragments_and_empty_fragments() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let mut expect = Vec::new();
    ws.send(false, OP_BINARY, b"");
    for i in 0..100u8 {
        ws.send(false, OP_CONT, &[i; 3]);
        expect.extend_from_slice(&[i; 3]);
    }
    ws.send(true, OP_CONT, b"");
    assert_eq!(ws.read_message(Duration::from_secs(5)), (OP_BINARY, expect));
}

#[test]
fn raw_pipelined_messages_come_back_in_order() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(client_frame(OP_TEXT, format!("message {i}").as_bytes()));
    }
    // one write, many frames; frames also straddle TCP segments
    ws.send_raw(&batch);
    for i in 0..200 {
        let (op, data) = ws.read_message(Duration::from_secs(5));
        assert_eq!(
            (op, String::from_utf8(data).unwrap()),
            (OP_TEXT, format!("message {i}"))
        );
    }
}

/// After a quiet second the io_uring driver gives its receive pool's pages
/// back to the system; the next messages must arrive intact all the same,
/// including one whose first half came before the pause.
#[test]
fn raw_messages_after_a_quiet_spell_come_back_whole() {
    let server = ServerProcess::spawn(&[("RINGGATE_SHARDS", "1")]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let frame = client_frame(OP_BINARY, &payload);
    ws.send_raw(&frame);
    assert_eq!(
        ws.read_message(Duration::from_secs(5)),
        (OP_BINARY, payload.clone())
    );
    let (first, second) = frame.split_at(frame.len() / 2);
    ws.send_raw(first);
    std::thread::sleep(Duration::from_millis(1500));
    ws.send_raw(second);
    assert_eq!(
        ws.read_message(Duration::from_secs(5)),
        (OP_BINARY, payload.clone())
    );
    std::thread::sleep(Duration::from_millis(1500));
    ws.send_raw(&frame);
    assert_eq!(
        ws.read_message(Duration::from_secs(5)),
        (OP_BINARY, payload)
    );
}

#[test]
fn raw_frame_written_one_byte_at_a_time() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let payload = vec![b'z'; 300]; // 16-bit extended length
    for b in client_frame(OP_BINARY, &payload) {
        ws.send_raw(&[b]);
    }
    assert_eq!(
        ws.read_message(Duration::from_secs(5)),
        (OP_BINARY, payload)
    );
}

#[test]
fn raw_ping_gets_pong_with_the_same_payload() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    for payload in [&b""[..], b"abc", &[0xAB; 125]] {
        ws.send(true, OP_PING, payload);
        let f = ws.read_frame(Duration::from_secs(5));
        assert_eq!((f.opcode, f.payload.as_slice()), (OP_PONG, payload));
    }
    // an unsolicited pong is ignored
    ws.send(true, OP_PONG, b"unsolicited");
    ws.assert_echo("still fine");
}
