//! Shared helpers for the integration tests: spawning the real `ringgate`
//! binary on an ephemeral loopback port, raw HTTP and raw WebSocket clients
//! built on std sockets (for the cases no well-behaved library will send), and
//! the file-descriptor limit helper.
//!
//! Every test file includes this module with `mod common;` and uses a
//! different subset of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringgate");

/// How long a spawned server may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The RFC 6455 section 1.3 sample key and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// A `ringgate` child process listening on `127.0.0.1:<ephemeral>`.
///
/// The child inherits the test's environment (so `RINGGATE_IO=epoll cargo
/// test` exercises the fallback driver) plus the variables given to
/// [`ServerProcess::spawn`]. It is killed on drop; when the test is failing
/// (panicking) its stderr is printed so the failure comes with the log.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// `ringgate --host 127.0.0.1 --port 0`.
fn base_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--host", "127.0.0.1", "--port", "0"]);
    cmd
}

impl ServerProcess {
    /// `ringgate --host 127.0.0.1 --port 0` with extra environment variables.
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        Self::spawn_with_args(&[], env)
    }

    /// As [`ServerProcess::spawn`], with extra command-line arguments.
    pub fn spawn_with_args(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_command(base_command().args(args).envs(env.iter().copied()))
    }

    /// As [`ServerProcess::spawn`], with RLIMIT_NOFILE (soft and hard) set to
    /// `limit`, so the server cannot raise it.
    pub fn spawn_with_open_files(limit: libc::rlim_t, env: &[(&str, &str)]) -> Self {
        use std::os::unix::process::CommandExt;
        let mut cmd = base_command();
        cmd.envs(env.iter().copied());
        // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::spawn_command(&mut cmd)
    }

    fn spawn_command(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {BIN}: {e}"));

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });

        // stdout: report the first `listening on` line, then keep draining so
        // the child never blocks on (or dies of) a full or closed pipe.
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout pipe");
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                }
            }
        });

        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            stderr_thread: Some(stderr_thread),
            status: None,
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => {
                server.addr = addr.parse().unwrap_or_else(|e| {
                    server.fail(&format!("bad listening address {addr:?}: {e}"))
                });
            }
            Err(_) => server.fail("no `listening on` line within 30 s (or the process exited)"),
        }
        assert_ne!(
            server.addr.port(),
            0,
            "the server must print the port it bound"
        );
        server
    }

    /// Kills the child and panics with `why` and the child's stderr.
    fn fail(&mut self, why: &str) -> ! {
        self.kill_and_collect();
        panic!(
            "ringgate: {why}\nexit status: {:?}\n--- server stderr ---\n{}",
            self.status,
            self.stderr_text()
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// What the server wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {}", self.pid());
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status {
                return Some(status);
            }
            match self.child.try_wait() {
                Ok(Some(status)) => self.status = Some(status),
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waitpid: {e}"),
            }
        }
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    fn kill_and_collect(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_and_collect();
        if std::thread::panicking() {
            eprintln!(
                "--- ringgate stderr (exit status {:?}) ---\n{}--- end of ringgate stderr ---",
                self.status,
                self.stderr_text()
            );
        }
    }
}

/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit and
/// returns the new soft limit.
pub fn raise_nofile_limit() -> libc::rlim_t {
    // SAFETY: plain getrlimit/setrlimit on a stack value.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim),
            0,
            "getrlimit"
        );
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
        }
        lim.rlim_cur
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` holds `token` in its comma-separated list.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The body parsed as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the body is the contract's error JSON `{"error":{"code","message"}}`.
    pub fn assert_error_json(&self) {
        let v = self.json();
        let err = &v["error"];
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "status {}: error body must be {{\"error\":{{\"code\",\"message\"}}}}, got {v}",
            self.status
        );
    }
}

/// The configuration for an in-process server: the environment's (so the
/// driver variants of the suite apply), on an ephemeral loopback port.
pub fn loopback_config() -> ringgate::Config {
    let mut cfg =
        ringgate::Config::load(None, &|k| std::env::var(k).ok()).expect("config from environment");
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg
}

/// Connects to `addr` with read and write timeouts of `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, timeout)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `request` as is and reads the response (head, then the body by
/// Content-Length or to EOF; a 101 stops at the head).
pub fn http_exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut s = connect(addr, Duration::from_secs(10));
    s.write_all(request).expect("write request");
    let (resp, _rest) = read_response(&mut s).expect("read response");
    resp
}

/// `GET path` with `Connection: close`.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http_exchange(addr, req.as_bytes())
}

/// Reads one response from `s` (whose read timeout bounds each read).
/// Returns it and the bytes read past its end (frames after a 101).
pub fn read_response(s: &mut TcpStream) -> io::Result<(HttpResponse, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before a full response head; got {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad status line {status_line:?}"),
        ));
    }
    let status: u16 = parts.next().and_then(|c| c.parse().ok()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad status line {status_line:?}"),
        )
    })?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut resp = HttpResponse {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let mut rest = buf.split_off(head_end);
    if status == 101 {
        return Ok((resp, rest));
    }
    match resp.header("Content-Length").map(|v| v.parse::<usize>()) {
        Some(Ok(len)) => {
            while rest.len() < len {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            let extra = rest.split_off(len.min(rest.len()));
            resp.body = rest;
            Ok((resp, extra))
        }
        _ => {
            // No length: the body runs to EOF.
            loop {
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => rest.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                    Err(e) => return Err(e),
                }
            }
            resp.body = rest;
            Ok((resp, Vec::new()))
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A WebSocket upgrade request, valid by default; each test breaks one thing.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl UpgradeRequest {
    pub fn new(path: &str) -> Self {
        let headers = [
            ("Host", "127.0.0.1"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", SAMPLE_KEY),
            ("Sec-WebSocket-Version", "13"),
        ];
        Self {
            method: "GET".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }
    /// Sets (replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self = self.without(name);
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Removes a header.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
    /// Sends the request and reads the response.
    pub fn send(&self, addr: SocketAddr) -> HttpResponse {
        http_exchange(addr, &self.to_bytes())
    }
}

// ---------------------------------------------------------------------------
// Raw WebSocket frames
// ---------------------------------------------------------------------------

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Encodes one frame. `rsv` is the three RSV bits (0..=7); `mask` `None`
/// produces an unmasked frame (a protocol error from a client).
pub fn encode_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(((fin as u8) << 7) | ((rsv & 7) << 4) | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A varying, never-zero mask key.
pub fn next_mask() -> [u8; 4] {
    static N: AtomicU32 = AtomicU32::new(0x1234_5678);
    let n = N.fetch_add(0x9E37_79B9, Ordering::Relaxed) | 0x0101_0101;
    n.to_be_bytes()
}

/// A masked client frame with FIN and no RSV bits.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame(true, 0, opcode, payload, Some(next_mask()))
}

/// A close frame payload: code and reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// For a close frame: the status code (if any) and the reason bytes.
    pub fn close_code(&self) -> Option<u16> {
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Parses one frame from the front of `buf`; `None` if incomplete.
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let rsv = (buf[0] >> 4) & 7;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(m) = mask {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= m[i % 4]);
    }
    Some((
        Frame {
            fin,
            rsv,
            opcode,
            masked,
            payload,
        },
        at + len,
    ))
}

/// What a raw read ended with.
#[derive(Debug)]
pub enum ReadEvent {
    Frame(Frame),
    /// The server closed the TCP connection (EOF or reset).
    Closed,
    TimedOut,
}

/// A WebSocket client on a blocking std socket that sends exactly the bytes a
/// test asks for and reads raw frames.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects to `addr`, upgrades on `path`, and checks the 101 answer.
    pub fn connect(addr: SocketAddr, path: &str) -> Self {
        Self::upgrade(connect(addr, Duration::from_secs(10)), path)
    }

    /// Upgrades an already connected `stream` on `path` and checks the 101.
    pub fn upgrade(stream: TcpStream, path: &str) -> Self {
        Self::upgrade_with(stream, &UpgradeRequest::new(path))
    }

    /// Upgrades `stream` with `request` (extra headers, a subprotocol) and
    /// checks the 101.
    pub fn upgrade_with(mut stream: TcpStream, request: &UpgradeRequest) -> Self {
        let path = &request.path;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(&request.to_bytes())
            .expect("write upgrade");
        let (resp, rest) = read_response(&mut stream).expect("read 101");
        assert_eq!(resp.status, 101, "upgrade on {path}: {resp:?}");
        assert_eq!(resp.header("Sec-WebSocket-Accept"), Some(SAMPLE_ACCEPT));
        assert!(resp.has_token("Upgrade", "websocket"), "{resp:?}");
        assert!(resp.has_token("Connection", "upgrade"), "{resp:?}");
        RawWs { stream, buf: rest }
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Sends one masked frame.
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let f = encode_frame(fin, 0, opcode, payload, Some(next_mask()));
        self.send_raw(&f);
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(true, OP_TEXT, text.as_bytes());
    }

    pub fn send_close(&mut self, code: u16, reason: &[u8]) {
        self.send(true, OP_CLOSE, &close_payload(code, reason));
    }

    /// Reads the next frame, or notes EOF, or times out.
    pub fn read_event(&mut self, timeout: Duration) -> ReadEvent {
        let deadline = Instant::now() + timeout;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return ReadEvent::Frame(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return ReadEvent::TimedOut;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return ReadEvent::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return ReadEvent::TimedOut
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadEvent::Closed,
            }
        }
    }

    /// The next frame; panics on EOF or timeout.
    pub fn read_frame(&mut self, timeout: Duration) -> Frame {
        match self.read_event(timeout) {
            ReadEvent::Frame(f) => {
                assert!(!f.masked, "server frames must not be masked: {f:?}");
                f
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next data message, reassembled from fragments; answers nothing and
    /// panics on any control frame other than a pong.
    pub fn read_message(&mut self, timeout: Duration) -> (u8, Vec<u8>) {
        let deadline = Instant::now() + timeout;
        let mut opcode = None;
        let mut data = Vec::new();
        loop {
            let f = self.read_frame(deadline.saturating_duration_since(Instant::now()));
            match f.opcode {
                OP_PONG => continue,
                OP_TEXT | OP_BINARY if opcode.is_none() => opcode = Some(f.opcode),
                OP_CONT if opcode.is_some() => {}
                _ => panic!("unexpected frame while reading a message: {f:?}"),
            }
            data.extend_from_slice(&f.payload);
            if f.fin {
                return (opcode.unwrap(), data);
            }
        }
    }

    /// Expects a close frame (skipping data frames and pings that may
    /// precede it) and returns its code.
    pub fn expect_close(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_event(deadline.saturating_duration_since(Instant::now())) {
                ReadEvent::Frame(f) if f.opcode == OP_CLOSE => return f.close_code(),
                ReadEvent::Frame(_) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Waits until the server closes the TCP connection, discarding frames.
    /// Returns whether it did within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_event(deadline.saturating_duration_since(Instant::now())) {
                ReadEvent::Frame(_) => continue,
                ReadEvent::Closed => return true,
                ReadEvent::TimedOut => return false,
            }
        }
    }

    /// Expects close `code` and then the end of the TCP connection.
    pub fn expect_close_and_eof(&mut self, code: u16) {
        let got = self.expect_close(Duration::from_secs(5));
        assert_eq!(got, Some(code), "close code");
        assert!(
            self.closed_within(Duration::from_secs(5)),
            "the server must close TCP after close {code}"
        );
    }

    /// Sends `text` and expects it echoed back.
    pub fn assert_echo(&mut self, text: &str) {
        self.send_text(text);
        let (op, data) = self.read_message(Duration::from_secs(5));
        assert_eq!((op, data.as_slice()), (OP_TEXT, text.as_bytes()));
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

// ---------------------------------------------------------------------------
// tokio-tungstenite
// ---------------------------------------------------------------------------

pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects a tokio-tungstenite client (10 s limit).
pub async fn ws_connect(url: &str) -> WsClient {
    let fut = tokio_tungstenite::connect_async(url);
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(Ok((ws, resp))) => {
            assert_eq!(resp.status().as_u16(), 101);
            ws
        }
        Ok(Err(e)) => panic!("connect {url}: {e}"),
        Err(_) => panic!("connect {url}: timed out"),
    }
}

/// The next non-control message (pings are answered by tungstenite itself).
pub async fn ws_next(
    ws: &mut WsClient,
    timeout: Duration,
) -> tokio_tungstenite::tungstenite::Message {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return m,
            Ok(Some(Err(e))) => panic!("websocket error: {e}"),
            Ok(None) => panic!("connection ended"),
            Err(_) => panic!("no message within {timeout:?}"),
        }
    }
}

/// Sends `msg` and expects the same message back.
pub async fn ws_echo(ws: &mut WsClient, msg: tokio_tungstenite::tungstenite::Message) {
    use futures_util::SinkExt;
    ws.send(msg.clone()).await.expect("send");
    let got = ws_next(ws, Duration::from_secs(10)).await;
    assert_eq!(got, msg, "echo");
}

// ---------------------------------------------------------------------------
// Watching the server from outside
// ---------------------------------------------------------------------------

/// The open WebSocket connection count `/health` reports, or `None` when it
/// does not answer 200.
pub fn health_connections(addr: SocketAddr) -> Option<u64> {
    let resp = http_get(addr, "/health");
    (resp.status == 200).then(|| resp.json()["connections"].as_u64())?
}

/// Polls `check` every 50 ms until it holds or `timeout` passes; returns
/// whether it held.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes masked echo requests of `size` bytes until `total` bytes are sent
/// or the socket stops taking them for `stall` (the server stopped reading,
/// or closed): a client that asks for output and never reads it.
pub fn flood_without_reading(stream: &mut TcpStream, size: usize, total: usize, stall: Duration) {
    let frame = client_frame(OP_BINARY, &vec![b'x'; size]);
    stream.set_write_timeout(Some(stall)).unwrap();
    let mut sent = 0;
    while sent < total && stream.write_all(&frame).is_ok() {
        sent += frame.len();
    }
}

/// Runs a future (a hub call, say) to completion on a throwaway runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The next data message on `ws`, as text.
pub fn read_text(ws: &mut RawWs, timeout: Duration) -> String {
    let (_, data) = ws.read_message(timeout);
    String::from_utf8(data).unwrap()
}
