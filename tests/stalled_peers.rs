//! Peers that stop reading must not keep their slot: whatever deadline fires
//! while output is stuck in the socket (write stall, slow-consumer cutoff,
//! pong timeout) ends with the socket closed and the connection gone from
//! `/health`, on both drivers (io_uring has a send in flight all that time).
//! A reader that trickles a few bytes is held to a minimum rate.

mod common;

use common::*;
use std::io::Read;
use std::time::{Duration, Instant};

/// Enough echo output that loopback's socket buffers cannot take it all.
const FLOOD: usize = 24 << 20;

/// Connects, upgrades on /echo and asks for `FLOOD` bytes of echoes that it
/// never reads.
fn stuck_client(server: &ServerProcess) -> RawWs {
    let mut ws = RawWs::connect(server.addr, "/echo");
    flood_without_reading(&mut ws.stream, 64 * 1024, FLOOD, Duration::from_secs(2));
    ws
}

fn assert_gone_within(server: &ServerProcess, timeout: Duration, what: &str) {
    let start = Instant::now();
    assert!(
        eventually(timeout, || health_connections(server.addr) == Some(0)),
        "{what}: the connection still counts after {:?}",
        start.elapsed()
    );
}

#[test]
fn a_peer_that_never_reads_is_dropped_at_the_write_timeout() {
    let server = ServerProcess::spawn(&[
        ("SERVER_WRITE_TIMEOUT", "2s"),
        ("RINGGATE_MAX_SEND_QUEUE", "64MiB"),
        ("WS_PING_PERIOD", "0"),
    ]);
    let _ws = stuck_client(&server);
    assert_eq!(
        health_connections(server.addr),
        Some(1),
        "open until the timeout"
    );
    assert_gone_within(&server, Duration::from_secs(6), "write stall");
}

#[test]
fn a_slow_consumer_whose_close_frame_cannot_be_written_is_dropped() {
    let server = ServerProcess::spawn(&[
        ("RINGGATE_MAX_SEND_QUEUE", "1MiB"),
        ("SERVER_WRITE_TIMEOUT", "60s"),
        ("RINGGATE_DRAIN_TIMEOUT", "1s"),
        ("WS_PING_PERIOD", "0"),
    ]);
    let _ws = stuck_client(&server);
    assert_gone_within(&server, Duration::from_secs(5), "slow consumer");
}

#[test]
fn a_silent_peer_with_output_stuck_is_dropped_at_the_pong_timeout() {
    let server = ServerProcess::spawn(&[
        ("WS_PING_PERIOD", "500ms"),
        ("WS_PONG_WAIT", "500ms"),
        ("SERVER_WRITE_TIMEOUT", "60s"),
        ("RINGGATE_MAX_SEND_QUEUE", "64MiB"),
        ("RINGGATE_DRAIN_TIMEOUT", "1s"),
    ]);
    let _ws = stuck_client(&server);
    assert_gone_within(&server, Duration::from_secs(6), "pong timeout");
}

#[test]
fn a_server_close_the_peer_never_reads_ends_at_the_close_wait() {
    // SIGTERM: every connection gets 1001 and the drain waits at most the
    // drain timeout, even for a peer whose output is stuck.
    let mut server = ServerProcess::spawn(&[
        ("RINGGATE_DRAIN_TIMEOUT", "1s"),
        ("SERVER_WRITE_TIMEOUT", "60s"),
        ("RINGGATE_MAX_SEND_QUEUE", "64MiB"),
    ]);
    let _ws = stuck_client(&server);
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(6));
    assert!(
        status.is_some_and(|s| s.success()),
        "the drain must end within its timeout and exit 0, got {status:?}"
    );
}

/// Reads `chunk` bytes every `gap` until the server closes (returns true),
/// `/health` stops counting the connection (true), `total` bytes arrived
/// (false) or `limit` passes (false). Also returns the bytes read.
fn read_paced(
    server: &ServerProcess,
    ws: &mut RawWs,
    chunk: usize,
    gap: Duration,
    total: usize,
    limit: Duration,
) -> (bool, usize) {
    ws.stream.set_read_timeout(Some(gap)).unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; chunk];
    let mut read = 0usize;
    while read < total && start.elapsed() < limit {
        let want = chunk.min(total - read);
        match ws.stream.read(&mut buf[..want]) {
            Ok(0) => return (true, read),
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return (true, read),
        }
        if health_connections(server.addr) == Some(0) {
            return (true, read);
        }
        std::thread::sleep(gap);
    }
    (false, read)
}

#[test]
fn a_reader_that_trickles_is_cut_off_below_the_minimum_rate() {
    // Reading ~1.3 MB/s makes steady progress (the socket frees room every
    // second or so), but far below the 4 MiB/s asked for while 20 MiB wait.
    let server = ServerProcess::spawn(&[
        ("SERVER_WRITE_TIMEOUT", "2s"),
        ("RINGGATE_MIN_SEND_RATE", "4MiB"),
        ("RINGGATE_MAX_SEND_QUEUE", "64MiB"),
        ("WS_PING_PERIOD", "0"),
    ]);
    let mut ws = stuck_client(&server);
    let limit = Duration::from_secs(10);
    let (gone, read) = read_paced(
        &server,
        &mut ws,
        64 * 1024,
        Duration::from_millis(50),
        FLOOD,
        limit,
    );
    assert!(read > 0, "the reader must have made some progress");
    assert!(
        gone,
        "a reader taking {read} bytes in {limit:?} must be cut off"
    );
}

#[test]
fn a_reader_above_the_minimum_rate_is_kept() {
    let server = ServerProcess::spawn(&[
        ("SERVER_WRITE_TIMEOUT", "1s"),
        ("RINGGATE_MIN_SEND_RATE", "256KiB"),
        ("RINGGATE_MAX_SEND_QUEUE", "64MiB"),
        ("WS_PING_PERIOD", "0"),
    ]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    flood_without_reading(&mut ws.stream, 64 * 1024, 8 << 20, Duration::from_secs(2));
    // Every echo, at ~3 MB/s over several windows: kept.
    let expected = (8 << 20) / (64 * 1024 + 8) * (64 * 1024 + 4);
    let limit = Duration::from_secs(20);
    let (gone, read) = read_paced(
        &server,
        &mut ws,
        64 * 1024,
        Duration::from_millis(20),
        expected,
        limit,
    );
    assert!(!gone, "closed after {read} of {expected} bytes");
    assert_eq!(read, expected, "every echo within {limit:?}");
    assert_eq!(health_connections(server.addr), Some(1));
}
