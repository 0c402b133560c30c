//! A soak run's watch on the server, on a thread of its own: `GET /health`
//! once a second over plain HTTP (failures by kind, latency, the server's
//! own connection count) and, with `--pid`, the server's RSS and open
//! descriptors every `--sample-interval`, one line per sample on stderr.
//! It stops when told and hands back what it saw.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::Mode;
use crate::procinfo;
use crate::progress::group;
use crate::stats::{new_histogram, LiveSum};
use crate::worker::Shared;

/// Time between two health checks.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// A health check that takes longer fails with `timeout`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest health response read.
const MAX_RESPONSE: usize = 64 * 1024;
/// Longest sleep between two looks at the stop flag.
const NAP: Duration = Duration::from_millis(100);
/// How many failure times are kept.
const MAX_FAILED_AT: usize = 20;

/// One sample of the server process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcSample {
    /// Seconds since the run started.
    pub t_s: f64,
    pub rss_kib: Option<u64>,
    pub fds: Option<u64>,
    /// Client connections up.
    pub up: u64,
    /// The server's own count, from the last `/health` answer.
    pub server_connections: Option<u64>,
}

/// Why a health check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthError {
    /// The TCP connection was refused or failed.
    Connect,
    /// No complete answer within the time allowed.
    Timeout,
    /// A read or write error after connecting.
    Io,
    /// An answer other than 200.
    Status(u16),
    /// Not an HTTP response with a JSON body.
    Malformed,
    /// A 200 whose body does not say `"status":"healthy"`.
    Unhealthy,
}

impl HealthError {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            HealthError::Connect => "connect",
            HealthError::Timeout => "timeout",
            HealthError::Io => "io",
            HealthError::Status(_) => "bad_status",
            HealthError::Malformed => "malformed",
            HealthError::Unhealthy => "unhealthy",
        }
    }

    fn of_io(e: &std::io::Error) -> HealthError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => HealthError::Timeout,
            _ => HealthError::Io,
        }
    }
}

/// What the health checks saw.
#[derive(Debug)]
pub struct Health {
    pub checks: u64,
    /// Failed checks by [`HealthError::name`].
    pub failures: BTreeMap<&'static str, u64>,
    /// When the first failures happened, seconds since the run started.
    pub failed_at_s: Vec<f64>,
    /// Latency of every check that answered in time, µs.
    pub latency: Histogram<u64>,
}

impl Health {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// Everything the monitor saw.
#[derive(Debug)]
pub struct Watch {
    pub samples: Vec<ProcSample>,
    pub health: Health,
    /// `--pid` was given and the process could not be read at some sample.
    pub server_lost: bool,
}

/// The running monitor.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Watch>,
}

impl Monitor {
    /// Starts watching the server of `shared.plan` (a soak plan); times are
    /// counted from `start`.
    pub fn start(shared: Arc<Shared>, start: Instant) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("soak-monitor".into())
            .spawn(move || watch(&shared, &flag, start))?;
        Ok(Monitor { stop, handle })
    }

    /// Stops (without a last sample: the run is closing its connections) and
    /// returns what was seen.
    pub fn stop(self) -> Option<Watch> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().ok()
    }
}

fn watch(shared: &Shared, stop: &AtomicBool, start: Instant) -> Watch {
    let plan = &shared.plan;
    let sample_every = match &plan.mode {
        Mode::Soak(soak) => soak.sample_every,
        _ => Duration::from_secs(10),
    };
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        plan.url.host_header
    );
    let mut w = Watch {
        samples: Vec::new(),
        health: Health {
            checks: 0,
            failures: BTreeMap::new(),
            failed_at_s: Vec::new(),
            latency: new_histogram(),
        },
        server_lost: false,
    };
    let mut server_connections = None;
    let (mut next_check, mut next_sample) = (start, start);
    loop {
        if stop.load(Ordering::Acquire) {
            return w;
        }
        let now = Instant::now();
        if now >= next_check {
            w.health.checks += 1;
            match check_health(plan.url.addr, request.as_bytes()) {
                Ok((took, connections)) => {
                    let us = took.as_micros() as u64;
                    w.health.latency.saturating_record(us.max(1));
                    server_connections = connections.or(server_connections);
                }
                Err(e) => {
                    *w.health.failures.entry(e.name()).or_default() += 1;
                    if w.health.failed_at_s.len() < MAX_FAILED_AT {
                        let at = now.duration_since(start).as_secs_f64();
                        w.health.failed_at_s.push((at * 10.0).round() / 10.0);
                    }
                }
            }
            while next_check <= Instant::now() {
                next_check += HEALTH_EVERY;
            }
        }
        if now >= next_sample {
            let s = sample(shared, start, server_connections);
            w.server_lost |= plan.pid.is_some() && s.rss_kib.is_none();
            print_sample(&s, &w.health);
            w.samples.push(s);
            while next_sample <= Instant::now() {
                next_sample += sample_every;
            }
        }
        let due = next_check.min(next_sample);
        std::thread::sleep(due.saturating_duration_since(Instant::now()).min(NAP));
    }
}

fn sample(shared: &Shared, start: Instant, server_connections: Option<u64>) -> ProcSample {
    let pid = shared.plan.pid;
    let t = start.elapsed().as_secs_f64();
    ProcSample {
        t_s: (t * 10.0).round() / 10.0,
        rss_kib: pid.and_then(|p| procinfo::rss_kib(p).ok()),
        fds: pid.and_then(|p| procinfo::fd_count(p).ok()),
        up: LiveSum::of(&shared.lives).up,
        server_connections,
    }
}

fn print_sample(s: &ProcSample, health: &Health) {
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| group(v as f64));
    let line = format!(
        "soak {:>6.0}s  rss {:>9} KiB  fds {:>7}  up {:>7} (server {})  health {} ok, {} failed, worst {:.1} ms",
        s.t_s,
        opt(s.rss_kib),
        opt(s.fds),
        group(s.up as f64),
        opt(s.server_connections),
        health.checks - health.failed(),
        health.failed(),
        health.latency.max() as f64 / 1000.0,
    );
    let mut err = std::io::stderr().lock();
    // Over the progress line, when it is drawn in place.
    let clear = if err.is_terminal() { "\r\x1b[2K" } else { "" };
    let _ = writeln!(err, "{clear}{line}");
}

/// One `GET /health`: how long it took and the `connections` it reported.
fn check_health(addr: SocketAddr, request: &[u8]) -> Result<(Duration, Option<u64>), HealthError> {
    let start = Instant::now();
    let mut sock =
        TcpStream::connect_timeout(&addr, HEALTH_TIMEOUT).map_err(
            |e| match HealthError::of_io(&e) {
                HealthError::Timeout => HealthError::Timeout,
                _ => HealthError::Connect,
            },
        )?;
    let left = || {
        HEALTH_TIMEOUT
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or(HealthError::Timeout)
    };
    sock.set_write_timeout(Some(left()?))
        .map_err(|e| HealthError::of_io(&e))?;
    sock.write_all(request)
        .map_err(|e| HealthError::of_io(&e))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        sock.set_read_timeout(Some(left()?))
            .map_err(|e| HealthError::of_io(&e))?;
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if response.len() + n > MAX_RESPONSE => return Err(HealthError::Malformed),
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HealthError::of_io(&e)),
        }
    }
    let connections = parse_health(&response)?;
    Ok((start.elapsed(), connections))
}

/// Checks a whole `/health` response; returns the `connections` it reports.
fn parse_health(response: &[u8]) -> Result<Option<u64>, HealthError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(HealthError::Malformed),
    };
    match resp.code {
        Some(200) => {}
        Some(code) => return Err(HealthError::Status(code)),
        None => return Err(HealthError::Malformed),
    }
    let body: serde_json::Value =
        serde_json::from_slice(&response[head..]).map_err(|_| HealthError::Malformed)?;
    if body["status"] != "healthy" {
        return Err(HealthError::Unhealthy);
    }
    Ok(body["connections"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_health_answers() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":\"healthy\",\"connections\":42,\"uptime\":\"1s\"}";
        assert_eq!(parse_health(ok), Ok(Some(42)));
        let sick = b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"degraded\"}";
        assert_eq!(parse_health(sick), Err(HealthError::Unhealthy));
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\n{}";
        assert_eq!(parse_health(missing), Err(HealthError::Status(404)));
        assert_eq!(
            parse_health(b"HTTP/1.1 200 OK\r\n"),
            Err(HealthError::Malformed)
        );
        assert_eq!(
            parse_health(b"HTTP/1.1 200 OK\r\n\r\n{\"status\":"),
            Err(HealthError::Malformed)
        );
    }

    #[test]
    fn checks_a_live_server_and_a_dead_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"status\":\"healthy\",\"connections\":3}")
                .unwrap();
        });
        let (took, connections) = check_health(addr, b"GET /health HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(connections, Some(3));
        assert!(took < HEALTH_TIMEOUT);
        server.join().unwrap();
        // Nobody listens there any more.
        assert_eq!(
            check_health(addr, b"GET /health HTTP/1.1\r\n\r\n"),
            Err(HealthError::Connect)
        );
    }
}
