//! When the process runs out of descriptors anyway (something else in the
//! process took them), accepting backs off instead of spinning: the shard
//! burns no CPU, logs a few lines rather than one per retry, keeps serving
//! its open connections, and accepts the waiting clients once descriptors
//! free up. An in-process server (this test binary holds this one test: it
//! lowers its own open-files limit and fills its descriptor table).

mod common;

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{read_response, RawWs, UpgradeRequest};
use ringgate::Server;
use socket2::{Domain, Socket, Type};

/// Counts the lines the server logs.
#[derive(Clone, Default)]
struct LineCounter(Arc<AtomicUsize>);

impl Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let lines = buf.iter().filter(|&&b| b == b'\n').count();
        self.0.fetch_add(lines, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `stat` files of this process's shard threads, opened while there are
/// descriptors to open them with.
fn shard_stat_files() -> Vec<File> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            comm.starts_with("ringgate-shard")
                .then(|| File::open(dir.join("stat")).ok())?
        })
        .collect()
}

/// CPU time (ms) the threads whose `stat` files these are have used.
fn cpu_ms(stats: &[File]) -> u64 {
    let ticks_per_s = 100; // USER_HZ
    stats
        .iter()
        .filter_map(|file| {
            let mut buf = [0u8; 1024];
            let n = file.read_at(&mut buf, 0).ok()?;
            let stat = String::from_utf8_lossy(&buf[..n]).into_owned();
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) * 1000 / ticks_per_s)
        })
        .sum()
}

fn set_open_files(limit: u64) {
    // SAFETY: plain getrlimit/setrlimit on a stack value.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = limit.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

#[test]
fn descriptor_exhaustion_pauses_accepting_and_recovers() {
    set_open_files(256);
    let lines = LineCounter::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .init();
    let mut cfg = common::loopback_config();
    cfg.server.shards = 1;
    cfg.server.direct_descriptors = false;
    let server = Server::builder(cfg).start().expect("server starts");
    let addr = server.local_addr();
    let mut open = RawWs::connect(addr, "/echo");
    open.assert_echo("before");
    let stats = shard_stat_files();
    assert_eq!(stats.len(), 1, "one shard thread");

    // The clients' sockets first, then fill the table: none is left for
    // the server's side of their connections.
    const CLIENTS: usize = 20;
    let sockets: Vec<Socket> = (0..CLIENTS)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    let mut hog = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hog.push(f);
    }
    let (cpu0, lines0) = (cpu_ms(&stats), lines.0.load(Ordering::Relaxed));
    let clients: Vec<TcpStream> = sockets
        .into_iter()
        .map(|socket| {
            socket.connect(&addr.into()).unwrap();
            let mut s: TcpStream = socket.into();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(&UpgradeRequest::new("/echo").to_bytes())
                .unwrap();
            s
        })
        .collect();

    // The server cannot take them: it must neither spin nor flood the log.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        open.assert_echo("open connections are still served");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_ms(&stats) - cpu0;
    let logged = lines.0.load(Ordering::Relaxed) - lines0;
    assert!(
        cpu < 500,
        "the shard burned {cpu} ms of CPU in 2 s while out of descriptors"
    );
    assert!(
        logged <= 5,
        "{logged} log lines in 2 s while out of descriptors"
    );
    assert!(logged >= 1, "running out of descriptors must be logged");

    // Descriptors free up: the waiting clients are accepted and upgraded.
    drop(hog);
    for mut s in clients {
        let (resp, _) = read_response(&mut s).expect("the waiting client is answered");
        assert_eq!(resp.status, 101, "{resp:?}");
    }
    drop(open);
    server.shutdown();
    server.join().expect("shards end cleanly");
}
