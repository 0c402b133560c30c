//! The internal admin address's answer past its connection budget: a 503 in
//! the contract's JSON shape, written after the request head (so the client
//! reads it rather than a reset), then the connection is closed. It never
//! waits long: the head gets a second, the answer one write.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a refused connection may take to send its request head.
const HEAD_WAIT: Duration = Duration::from_secs(1);
/// How much of it is read (and thrown away).
const HEAD_MAX: usize = 8192;

/// Answers `stream` 503 `http_busy` and closes it.
pub(super) async fn refuse(mut stream: TcpStream) {
    let mut head = vec![0u8; HEAD_MAX];
    let _ = tokio::time::timeout(HEAD_WAIT, stream.read(&mut head)).await;
    let body = json!({"error": {
        "code": "http_busy",
        "message": "too many connections to the admin address; try again later",
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(HEAD_WAIT, stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}
