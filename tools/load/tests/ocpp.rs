//! The `ocpp` mode end to end against ringgate's own OCPP gateway
//! (`services::ocpp`, installed as a library user does, on two shards):
//! every charge point boots, reports its status and beats, a downlink
//! command sent through the admin API while they hold is answered, and the
//! report says so; a gateway that requires passwords refuses every charge
//! point with 401, which the report counts by status and which fails the run.
//! With `--commands`, the tool itself sends downlink commands through the
//! admin API at a rate, and the report says whether every one was answered.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ringgate::services::ocpp;
use ringgate::{Config, Server, ServerHandle};
use serde_json::Value;

fn gateway(auth_required: bool) -> ServerHandle {
    gateway_with(auth_required, "")
}

/// The gateway; with a non-empty `admin_token`, its admin API wants it.
fn gateway_with(auth_required: bool, admin_token: &str) -> ServerHandle {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = 2;
    cfg.server.io = common::driver();
    cfg.ocpp.auth_required = auth_required;
    cfg.admin.token = ringgate::config::Secret(admin_token.into());
    let (builder, _) = ocpp::install(Server::builder(cfg), None).expect("the gateway installs");
    builder.start().expect("server starts")
}

/// Runs `ocpp` with `flags` (space-separated) against `server`, no password
/// from the environment; the exit status and the JSON report.
fn load(server: &ServerHandle, flags: &str) -> (Output, Value) {
    let url = format!("ws://{}/ocpp", server.local_addr());
    let pid = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .arg("ocpp")
        .args(flags.split_whitespace())
        .args(["--url", &url, "--json", "--timeout", "30s", "--pid", &pid])
        .env_remove("OCPP_PASSWORD")
        .output()
        .expect("ringgate-load runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{flags}: no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

/// POSTs a downlink command to charge point `id` until the gateway knows it
/// (404 before it connects); the answer's body.
fn command(addr: SocketAddr, id: &str, body: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(addr).expect("the admin API answers");
        write!(
            s,
            "POST /ocpp/{id}/commands HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        if answer.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn charge_points_boot_beat_and_answer_commands() {
    let server = gateway(false);
    let addr = server.local_addr();
    let reset = std::thread::spawn(move || {
        command(
            addr,
            "cp-3",
            r#"{"action":"Reset","payload":{"type":"Soft"}}"#,
        )
    });
    let (out, r) = load(
        &server,
        "-c 200 --max-concurrent 20 --threads 2 --status --heartbeats 2 \
         --heartbeat-interval 20ms --hold 1500ms",
    );
    let answer = reset.join().unwrap();
    assert!(
        answer.contains(r#""result":{"status":"Accepted"}"#),
        "{answer}"
    );
    assert!(out.status.success(), "{r}");
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    assert_eq!(
        (r["connected"].as_u64(), r["up_at_end"].as_u64()),
        (Some(200), Some(200))
    );
    let o = &r["ocpp"];
    assert_eq!(o["passed"], true, "{r}");
    assert_eq!(o["boots_accepted"], 200);
    assert_eq!(o["calls_sent"], 200 * 4);
    assert_eq!(o["call_results"], 200 * 4);
    assert_eq!(o["boot_us"]["count"], 200);
    assert_eq!(o["heartbeat_us"]["count"], 400);
    assert_eq!(o["call_us"]["count"], 800);
    assert_eq!(o["server_calls"], serde_json::json!({"Reset": 1}));
    assert!(o["boots_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["server_cpu_s"].is_number(), "--pid was given: {r}");
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn refused_charge_points_are_counted_by_status_and_fail_the_run() {
    let server = gateway(true);
    let (out, r) = load(&server, "-c 20 --max-concurrent 5 --password nope");
    assert_eq!(out.status.code(), Some(1), "{r}");
    assert_eq!(r["connected"], 0);
    assert_eq!(r["failures"], serde_json::json!({"bad_status": 20}), "{r}");
    assert_eq!(r["refused"], serde_json::json!({"401": 20}), "{r}");
    assert_eq!(r["ocpp"]["passed"], false);
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn commands_go_through_the_admin_api_and_every_one_is_answered() {
    let server = gateway_with(false, "adm1n");
    let (out, r) = load(
        &server,
        "-c 10 --threads 2 --heartbeats 0 --hold 1500ms --commands 20 --admin-token adm1n",
    );
    assert!(out.status.success(), "{r}");
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    let o = &r["ocpp"];
    let c = &o["commands"];
    let sent = c["sent"].as_u64().unwrap();
    assert!((20..=40).contains(&sent), "about 1.5 s at 20/s: {r}");
    assert!(c["due"].as_u64().unwrap() >= sent, "{r}");
    assert_eq!(c["answered"], sent, "{r}");
    assert_eq!(c["failed"], serde_json::json!({}), "{r}");
    assert_eq!(c["all_answered"], true, "{r}");
    assert_eq!(c["latency_us"]["count"], sent, "{r}");
    let by_action: u64 = c["by_action"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_action, sent, "{r}");
    // The charge points got each one as a server CALL and answered it.
    assert_eq!(o["server_calls_answered"], sent, "{r}");
    assert_eq!(o["passed"], true, "{r}");
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn commands_the_admin_api_refuses_are_counted_by_status_and_fail_the_run() {
    let server = gateway_with(false, "adm1n");
    let (out, r) = load(
        &server,
        "-c 3 --heartbeats 0 --hold 500ms --commands 10 --admin-token wrong",
    );
    assert_eq!(out.status.code(), Some(1), "{r}");
    let c = &r["ocpp"]["commands"];
    let sent = c["sent"].as_u64().unwrap();
    assert!(sent >= 1, "{r}");
    assert_eq!(c["answered"], 0, "{r}");
    assert_eq!(c["all_answered"], false, "{r}");
    let failed = c["failed"].as_object().unwrap();
    assert_eq!(failed.len(), 1, "{r}");
    let (status, n) = failed.iter().next().unwrap();
    assert!(status.starts_with("401"), "{r}");
    assert_eq!(n.as_u64(), Some(sent), "{r}");
    assert_eq!(r["ocpp"]["passed"], false, "{r}");
    // The charge points themselves were fine.
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    server.shutdown();
    server.join().unwrap();
}
