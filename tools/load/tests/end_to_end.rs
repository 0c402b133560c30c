//! End to end: each mode of the `ringgate-load` binary against an in-process
//! ringgate server (library API, `/echo`, one shard on an ephemeral loopback
//! port), with small counts; the JSON report must show the work done and no
//! failures.

use std::process::Command;

use ringgate::{Config, Server, ServerHandle};
use serde_json::Value;

fn server() -> ServerHandle {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = 1;
    Server::builder(cfg).start().expect("server starts")
}

/// Runs the tool with `args` against `server`'s `/echo` and parses its report.
fn load(server: &ServerHandle, args: &[&str]) -> Value {
    let url = format!("ws://{}/echo", server.local_addr());
    let pid = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .args(args)
        .args(["--url", &url, "--json", "--timeout", "30s", "--pid", &pid])
        .output()
        .expect("ringgate-load runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn assert_clean(r: &Value, connections: u64) {
    assert_eq!(r["connected"], connections, "{r}");
    assert_eq!(r["up_at_end"], connections, "{r}");
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    assert_eq!(r["timed_out"], false, "{r}");
    assert!(r["server_cpu_s"].is_number(), "--pid was given: {r}");
}

#[test]
fn storm_and_idle() {
    let s = server();
    let r = load(&s, &["storm", "-c", "300", "--max-concurrent", "50"]);
    assert_eq!(r["mode"], "storm");
    assert_clean(&r, 300);
    assert!(r["handshakes_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["handshake_us"]["p99"].as_u64().unwrap() > 0);

    let r = load(
        &s,
        &["idle", "-c", "200", "--duration", "300ms", "--threads", "2"],
    );
    assert_clean(&r, 200);
    assert!(r["kib_per_conn"].is_number());
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn throughput_checks_every_echo() {
    let s = server();
    for payload in ["0", "20", "70000"] {
        let args = [
            "throughput",
            "-c",
            "20",
            "--messages",
            "300",
            "--payload",
            payload,
            "--window",
            "8",
        ];
        let r = load(&s, &args);
        assert_clean(&r, 20);
        assert_eq!(r["messages"], 6000, "{r}");
        assert_eq!(r["messages_sent"], 6000, "{r}");
        assert_eq!(r["rtt_us"]["count"], 6000, "{r}");
    }
    let r = load(
        &s,
        &[
            "throughput",
            "-c",
            "4",
            "--duration",
            "300ms",
            "--text",
            "--threads",
            "2",
        ],
    );
    assert_clean(&r, 4);
    assert!(r["messages"].as_u64().unwrap() > 0);
    assert_eq!(r["messages"], r["messages_sent"], "{r}");
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn sustained_reports_a_timeline() {
    let s = server();
    let r = load(
        &s,
        &[
            "sustained",
            "-c",
            "10",
            "--duration",
            "1s",
            "--message-interval",
            "50",
            "--report-interval",
            "250ms",
        ],
    );
    assert_clean(&r, 10);
    assert_eq!(r["messages_sent"], 200, "{r}");
    assert_eq!(r["messages"], 200, "{r}");
    let rows = r["timeline"].as_array().unwrap();
    assert!(rows.len() >= 4, "{r}");
    let sent: u64 = rows.iter().map(|row| row["sent"].as_u64().unwrap()).sum();
    assert_eq!(sent, 200);
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn refused_connections_are_counted_and_fail_the_run() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/echo");
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .args(["storm", "-c", "5", "--json", "--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failures"]["connect_refused"], 5, "{r}");
}

#[test]
fn refuses_remote_targets_without_opt_in() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .args(["storm", "-c", "1", "--url", "ws://192.0.2.1/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}
