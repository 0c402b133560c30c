//! End to end: each mode of the `ringgate-load` binary against an in-process
//! ringgate server (library API on an ephemeral loopback port: `/echo` on
//! one shard; for fanout and soak, `/pubsub` like examples/pubsub.rs on two
//! shards; once with permessage-deflate on), with small counts; the JSON
//! report must show the work done and no failures.

mod common;

use std::process::Command;

use ringgate::{Accept, Config, ConnCtx, Handler, Message, Reject, Server, UpgradeRequest};
use ringgate::{ServerBuilder, ServerHandle};
use serde_json::Value;

fn config(shards: usize) -> Config {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = shards;
    cfg.server.io = common::driver();
    cfg
}

fn builder(shards: usize) -> ServerBuilder {
    Server::builder(config(shards))
}

fn server() -> ServerHandle {
    builder(1).start().expect("server starts")
}

/// Runs the tool with `args` against `server`'s `/echo` and parses its report.
fn load(server: &ServerHandle, args: &[&str]) -> Value {
    load_at(server, "/echo", args)
}

/// Runs the tool with `args` against `target` on `server`.
fn load_at(server: &ServerHandle, target: &str, args: &[&str]) -> Value {
    let url = format!("ws://{}{target}", server.local_addr());
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
fn all_runs_storm_then_throughput_then_sustained_in_one_report() {
    let s = server();
    let r = load(
        &s,
        &[
            "--test-type",
            "all",
            "-c",
            "20",
            "--duration",
            "500ms",
            "--message-interval",
            "50",
            "--report-interval",
            "250ms",
        ],
    );
    assert_eq!(r["mode"], "all", "{r}");
    assert_eq!(r["passed"], true, "{r}");
    for phase in ["storm", "throughput", "sustained"] {
        let p = &r[phase];
        assert_eq!(p["mode"], phase, "{r}");
        assert_eq!(p["passed"], true, "{phase}: {r}");
        assert_eq!(p["problems"], serde_json::json!([]), "{phase}: {r}");
        assert_clean(p, 20);
    }
    assert!(
        r["storm"]["handshakes_per_s"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    let t = &r["throughput"];
    assert!(t["messages"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(t["messages"], t["messages_sent"], "{r}");
    assert!(
        (0.4..5.0).contains(&t["elapsed_s"].as_f64().unwrap()),
        "--duration: {r}"
    );
    let sus = &r["sustained"];
    assert_eq!(sus["messages_sent"], 200, "20 × 500 ms / 50 ms: {r}");
    assert!(sus["timeline"].as_array().unwrap().len() >= 2, "{r}");
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn all_with_messages_counts_throughput_and_fails_when_a_phase_fails() {
    let s = server();
    let r = load(
        &s,
        &[
            "all",
            "-c",
            "5",
            "--messages",
            "40",
            "--duration",
            "200ms",
            "--message-interval",
            "20",
        ],
    );
    assert_eq!(r["throughput"]["messages"], 200, "count mode: {r}");
    s.shutdown();
    s.join().unwrap();
    // A port nobody listens on: every phase fails, and the run.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/echo");
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .args([
            "all",
            "-c",
            "3",
            "--duration",
            "100ms",
            "--json",
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["passed"], false, "{r}");
    for phase in ["storm", "throughput", "sustained"] {
        assert_eq!(r[phase]["passed"], false, "{phase}: {r}");
        assert_eq!(r[phase]["failures"]["connect_refused"], 3, "{phase}: {r}");
        let problems = r[phase]["problems"].as_array().unwrap();
        assert!(!problems.is_empty(), "{phase}: {r}");
    }
}

/// examples/pubsub.rs's handler: subscribe to `?channel=` unless
/// `role=pub`; broadcast every message to the channel.
struct PubSub;

impl Handler for PubSub {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let channel = req.query_param("channel").unwrap_or_else(|| "bench".into());
        let publisher = req.query_param("role").as_deref() == Some("pub");
        Ok(Accept::new().identity((channel, publisher)))
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        if let Some((channel, false)) = ctx.identity::<(String, bool)>().cloned() {
            ctx.subscribe(&channel);
        }
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        if let Some((channel, _)) = ctx.identity::<(String, bool)>() {
            ctx.hub().broadcast(channel, msg).unwrap();
        }
    }
}

#[test]
fn fanout_delivers_every_message_to_every_subscriber() {
    let s = builder(2).websocket("/pubsub", PubSub).start().unwrap();
    let runs: [&[&str]; 2] = [
        &["-c", "20", "--rate", "1000", "--duration", "200ms"],
        &[
            "-c",
            "20",
            "--rate",
            "500",
            "--duration",
            "200ms",
            "--publishers",
            "2",
            "--threads",
            "2",
            "--payload",
            "20",
        ],
    ];
    for args in runs {
        let mut all = vec!["fanout"];
        all.extend_from_slice(args);
        let r = load_at(&s, "/pubsub?channel=bench", &all);
        assert_eq!(r["mode"], "fanout");
        let publishers = r["publishers"].as_u64().unwrap();
        assert_clean(&r, 20 + publishers);
        assert_eq!(r["subscribers"], 20, "{r}");
        assert_eq!(r["messages_sent"], 200, "{r}");
        assert_eq!(r["expected_deliveries"], 4000, "{r}");
        assert_eq!(r["deliveries"], 4000, "{r}");
        assert_eq!(r["latency_us"]["count"], 4000, "{r}");
        assert!(r["deliveries_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["deliveries_per_server_cpu_s"].is_number(), "{r}");
        assert!(r["rtt_us"].is_null(), "{r}");
    }
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn fanout_with_deflate_inflates_every_delivery() {
    let mut cfg = config(2);
    cfg.websocket.enable_compression = true; // the shared mode, on /pubsub too
    let s = Server::builder(cfg)
        .websocket("/pubsub", PubSub)
        .start()
        .unwrap();
    let args = [
        "fanout",
        "-c",
        "20",
        "--rate",
        "1000",
        "--duration",
        "200ms",
        "--payload",
        "1KiB",
        "--deflate",
    ];
    let r = load_at(&s, "/pubsub?channel=bench", &args);
    assert_clean(&r, 21);
    assert_eq!(r["deliveries"], 4000, "{r}");
    let d = &r["deflate"];
    assert_eq!(d["negotiated"], 21, "{r}");
    assert_eq!(d["sent"]["compressed"], 200, "the publisher's: {r}");
    assert_eq!(d["received"]["compressed"], 4000, "{r}");
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn soak_runs_the_mix_and_reports() {
    let s = builder(2).websocket("/pubsub", PubSub).start().unwrap();
    let args = [
        "soak",
        "-c",
        "40",
        "--duration",
        "4s",
        "--rate",
        "50",
        "--churn",
        "25",
        "--silent",
        "10",
        "--garbage",
        "25",
        "--lifetime-min",
        "200ms",
        "--lifetime-max",
        "800ms",
        "--warmup",
        "1s",
        "--sample-interval",
        "1s",
    ];
    let r = load_at(&s, "/pubsub?channel=soak", &args);
    assert_eq!(r["mode"], "soak");
    assert_eq!(r["timed_out"], false, "{r}");
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    let soak = &r["soak"];
    assert_eq!(soak["broadcasts"], 200, "{r}");
    let b = &soak["behaviours"];
    for (name, target) in [
        ("polite", 16),
        ("churn", 10),
        ("silent", 4),
        ("garbage", 10),
    ] {
        let v = &b[name];
        assert_eq!(v["target"], target, "{name}: {r}");
        let ended: u64 = v["outcomes"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        let (opened, up) = (
            v["opened"].as_u64().unwrap(),
            v["up_at_end"].as_u64().unwrap(),
        );
        assert!(opened >= up + ended, "{name}: {r}");
    }
    // Polite subscribers stay and get every broadcast from the first one.
    assert_eq!(b["polite"]["up_at_end"], 16, "{r}");
    assert_eq!(b["polite"]["outcomes"], serde_json::json!({}), "{r}");
    assert_eq!(soak["polite_deliveries"], 16 * 200, "{r}");
    assert_eq!(soak["polite_expected"], 16 * 200, "{r}");
    // Churners and garbage senders were replaced, and ended as they should.
    for name in ["churn", "garbage"] {
        assert!(b[name]["opened"].as_u64().unwrap() > 10, "{name}: {r}");
    }
    for outcome in b["churn"]["outcomes"].as_object().unwrap().keys() {
        assert!(
            ["close: close 1000", "drop: dropped", "mid_handshake: left"]
                .contains(&outcome.as_str()),
            "{outcome}: {r}"
        );
    }
    assert!(
        !b["garbage"]["outcomes"].as_object().unwrap().is_empty(),
        "{r}"
    );
    assert_eq!(soak["garbage_unexpected"], 0, "{r}");
    // The monitor ran: health every second, samples of this process (--pid).
    assert!(soak["health"]["checks"].as_u64().unwrap() >= 3, "{r}");
    assert_eq!(soak["health"]["failed"], 0, "{r}");
    assert!(soak["samples"].as_array().unwrap().len() >= 3, "{r}");
    assert!(soak["samples"][0]["rss_kib"].is_u64(), "{r}");
    assert!(soak["flat"].is_boolean(), "{r}");
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn fanout_counts_what_never_arrives() {
    // `/echo` subscribes nobody: every delivery is missing after the drain.
    let s = server();
    let r = load(
        &s,
        &["fanout", "-c", "2", "--rate", "100", "--duration", "100ms"],
    );
    assert_eq!(r["deliveries"], 0, "{r}");
    assert_eq!(r["expected_deliveries"], 20, "{r}");
    assert_eq!(r["failures"]["undelivered"], 20, "{r}");
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
