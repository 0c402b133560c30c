//! Many WebSocket connections at once: 2,000 each echoing five messages, and
//! enough large messages in flight to run the receive buffer pool dry.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::Message;

const CONNECTIONS: usize = 2_000;
const MESSAGES: usize = 5;
/// Handshakes in flight at once (well under the listen backlog).
const CONNECT_PARALLELISM: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_connections_echo_concurrently() {
    let limit = raise_nofile_limit();
    assert!(
        limit >= (CONNECTIONS + 200) as libc::rlim_t,
        "need {} open files, the hard limit allows {limit}",
        CONNECTIONS + 200
    );
    let server = ServerProcess::spawn(&[]);
    let url = server.ws_url("/echo");
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    // Everyone connects first; nobody echoes until all 2,000 are open.
    let all_open = Arc::new(Barrier::new(CONNECTIONS));

    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (url, gate, all_open) = (url.clone(), gate.clone(), all_open.clone());
            tokio::spawn(async move {
                let mut ws = {
                    let _permit = gate.acquire().await.unwrap();
                    ws_connect(&url).await
                };
                tokio::time::timeout(Duration::from_secs(90), all_open.wait())
                    .await
                    .expect("not all connections opened within 90 s");
                // Pipeline: send all five, then read all five in order.
                for j in 0..MESSAGES {
                    let msg = if j % 2 == 0 {
                        Message::Text(format!("conn {i} msg {j}"))
                    } else {
                        Message::Binary(format!("conn {i} bin {j}").into_bytes())
                    };
                    ws.feed(msg).await.expect("send");
                }
                ws.flush().await.expect("flush");
                for j in 0..MESSAGES {
                    let got = ws_next(&mut ws, Duration::from_secs(30)).await;
                    let want = if j % 2 == 0 {
                        Message::Text(format!("conn {i} msg {j}"))
                    } else {
                        Message::Binary(format!("conn {i} bin {j}").into_bytes())
                    };
                    assert_eq!(got, want, "connection {i}");
                }
                ws.close(None).await.expect("close");
                // Drain to the server's close answer.
                while let Some(Ok(_)) = ws.next().await {}
            })
        })
        .collect();

    let joined = tokio::time::timeout(Duration::from_secs(180), async {
        let mut failures = 0;
        for t in tasks {
            if let Err(e) = t.await {
                failures += 1;
                if failures <= 5 {
                    eprintln!("client task failed: {e}");
                }
            }
        }
        failures
    })
    .await
    .expect("2,000 connections did not finish within 180 s");
    assert_eq!(joined, 0, "{joined} of {CONNECTIONS} connections failed");
}

/// Far more bytes in flight than the io_uring receive pool holds (16 x 64 KiB):
/// receives end on an empty pool and are re-armed in turn, buffers are shared
/// by small messages of different connections, and every echo must still come
/// back whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_from_many_connections_outrun_the_receive_pool() {
    const CONNS: usize = 64;
    const SIZES: [usize; 5] = [65_536, 17, 40_000, 1, 100_000];
    let server = ServerProcess::spawn(&[]);
    let url = server.ws_url("/echo");
    let all_open = Arc::new(Barrier::new(CONNS));
    let payload = |i: usize, j: usize| -> Vec<u8> {
        (0..SIZES[j]).map(|k| (i * 31 + j * 7 + k) as u8).collect()
    };
    let tasks: Vec<_> = (0..CONNS)
        .map(|i| {
            let (url, all_open) = (url.clone(), all_open.clone());
            tokio::spawn(async move {
                let mut ws = ws_connect(&url).await;
                all_open.wait().await;
                for j in 0..SIZES.len() {
                    ws.feed(Message::Binary(payload(i, j))).await.expect("send");
                }
                ws.flush().await.expect("flush");
                for j in 0..SIZES.len() {
                    let got = ws_next(&mut ws, Duration::from_secs(30)).await;
                    assert!(
                        got == Message::Binary(payload(i, j)),
                        "connection {i} message {j}: wrong echo ({} bytes)",
                        got.len()
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("echoes did not finish within 120 s")
            .expect("client task failed");
    }
}
