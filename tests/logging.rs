//! Logging never stalls the data path: a server whose stderr nobody reads keeps serving while
//! remote peers make it log, and the lines it had to drop are counted on `/metrics` and in a
//! last line at exit.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_frame, connect, http_get, parse_frame, read_response, BIN, OP_TEXT};

/// Malformed OCPP frames sent: at debug level each logs one line on the shard (per-connection
/// lines at info are rate-limited), many times what a pipe buffer (64 KiB) and the log buffer
/// the test sets (16 lines) hold together.
const MALFORMED_FRAMES: usize = 1500;

/// How long one exchange with the server may take before it counts as stalled.
const PROMPT: Duration = Duration::from_secs(3);

/// A `ringgate` child whose stderr is a pipe nobody reads (until `drain_stderr`).
struct MuteServer {
    child: Child,
    addr: SocketAddr,
    stderr: Option<ChildStderr>,
}

impl MuteServer {
    fn spawn(env: &[(&str, &str)]) -> MuteServer {
        let mut child = Command::new(BIN)
            .args(["--host", "127.0.0.1", "--port", "0", "--shards", "1"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringgate");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let stderr = child.stderr.take();
        let mut server = MuteServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let addr = rx
            .recv_timeout(common::STARTUP_TIMEOUT)
            .expect("a `listening on` line");
        server.addr = addr.parse().unwrap();
        server
    }

    /// Reads stderr on a thread from now on: what it read so far, and a channel that says
    /// when it reached the end.
    fn drain_stderr(&mut self) -> (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>) {
        let mut pipe = self.stderr.take().unwrap();
        let text = Arc::new(Mutex::new(Vec::new()));
        let sink = text.clone();
        let (done, ended) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            let _ = done.send(());
        });
        (text, ended)
    }
}

impl Drop for MuteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A charge point that sends `n` malformed CALLs and reads the CALLERROR of each; `Err` when
/// an answer does not come within [`PROMPT`].
fn malformed_calls(addr: SocketAddr, n: usize) -> Result<(), String> {
    let mut s = connect(addr, PROMPT);
    let request = format!(
        "GET /ocpp/CP1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n",
        common::SAMPLE_KEY
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let (resp, mut buf) =
        read_response(&mut s).map_err(|e| format!("no upgrade answer within {PROMPT:?}: {e}"))?;
    if resp.status != 101 {
        return Err(format!("upgrade answered {}", resp.status));
    }
    let mut chunk = [0u8; 4096];
    for i in 0..n {
        let call = format!("[2,\"m{i}\",42,{{}}]");
        s.write_all(&client_frame(OP_TEXT, call.as_bytes()))
            .map_err(|e| format!("write: {e}"))?;
        loop {
            if let Some((frame, used)) = parse_frame(&buf) {
                buf.drain(..used);
                assert!(frame.payload.starts_with(b"[4,"), "a CALLERROR");
                break;
            }
            match s.read(&mut chunk) {
                Ok(0) => return Err(format!("closed before the answer to frame {i}")),
                Ok(got) => buf.extend_from_slice(&chunk[..got]),
                Err(e) => return Err(format!("frame {i}: no answer within {PROMPT:?}: {e}")),
            }
        }
    }
    Ok(())
}

/// Upgrades on `/echo` and gets one message back; `Err` when any step stalls past [`PROMPT`].
fn echo_round_trip(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s = connect(addr, PROMPT);
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        common::SAMPLE_KEY
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let (resp, mut buf) =
        read_response(&mut s).map_err(|e| format!("no upgrade answer within {PROMPT:?}: {e}"))?;
    if resp.status != 101 {
        return Err(format!("upgrade answered {}", resp.status));
    }
    s.write_all(&client_frame(OP_TEXT, b"still here?"))
        .map_err(|e| format!("write: {e}"))?;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((frame, _)) = parse_frame(&buf) {
            assert_eq!(frame.payload, b"still here?");
            return Ok(start.elapsed());
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed before the echo".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no echo within {PROMPT:?}: {e}")),
        }
    }
}

/// `ringgate_log_lines_dropped_total` from `/metrics`.
fn dropped_lines(addr: SocketAddr) -> Option<u64> {
    let resp = http_get(addr, "/metrics");
    let body = String::from_utf8_lossy(&resp.body);
    body.lines()
        .find_map(|l| l.strip_prefix("ringgate_log_lines_dropped_total "))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn a_full_stderr_pipe_neither_stalls_the_shard_nor_loses_lines_silently() {
    let mut server = MuteServer::spawn(&[("LOG_LEVEL", "debug"), ("RINGGATE_LOG_BUFFER", "16")]);
    let addr = server.addr;
    if let Err(stall) = malformed_calls(addr, MALFORMED_FRAMES) {
        panic!("the shard stalled on its log lines: {stall}");
    }
    let took = echo_round_trip(addr)
        .unwrap_or_else(|e| panic!("echo not served while stderr is full: {e}"));
    assert!(took < PROMPT, "echo took {took:?}");
    let dropped = dropped_lines(addr).expect("ringgate_log_lines_dropped_total on /metrics");
    assert!(
        dropped > 0,
        "{MALFORMED_FRAMES} lines into a full pipe and a 16-line buffer: some must be dropped"
    );

    // Someone reads stderr again: the queue empties, so lines logged now come out (the
    // first few may still meet a full queue), and at exit the count is said in a last line.
    let (text, ended) = server.drain_stderr();
    let read = || String::from_utf8_lossy(&text.lock().unwrap()).into_owned();
    let resumed = common::eventually(Duration::from_secs(10), || {
        assert_eq!(malformed_calls(addr, 1), Ok(()));
        read().contains("malformed OCPP frame")
    });
    assert!(resumed, "the log does not resume once stderr is read");
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    ended
        .recv_timeout(Duration::from_secs(20))
        .expect("stderr closes when the server exits");
    let text = read();
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("log lines dropped"))
        .unwrap_or_else(|| panic!("no line counting the dropped lines:\n{text}"));
    assert!(
        last.contains("WARN"),
        "the count is a warning in the log's format: {last}"
    );
}
