//! The `attack` mode end to end against ringgate's own OCPP gateway
//! (in-process, two shards, permessage-deflate on the OCPP route, a small
//! charge-point table, one id with a password): each hostile stream runs for
//! a second at a small rate, and the report must account for every message
//! or attempt it sent and say what came back. These tests check the tool, not
//! the server: they pass against a gateway with or without the faults the
//! streams aim at.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use ringgate::config::Compression;
use ringgate::services::ocpp;
use ringgate::{Config, Server, ServerHandle};
use serde_json::Value;

const PASSWORD_ID: &str = "atk-pw";

fn gateway() -> ServerHandle {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = 2;
    cfg.server.io = common::driver();
    cfg.ocpp.compression = Compression::Shared;
    cfg.ocpp.max_charge_points = 8;
    cfg.ocpp.passwords = BTreeMap::from([(
        PASSWORD_ID.to_owned(),
        ocpp::auth::hash_password("the-right-password-1234"),
    )]);
    let (builder, _) = ocpp::install(Server::builder(cfg), None).expect("the gateway installs");
    builder.start().expect("server starts")
}

/// Runs `attack` with `flags` against `server`'s `/ocpp`; the exit status
/// and the JSON report.
fn attack(server: &ServerHandle, flags: &str) -> (Output, Value) {
    let url = format!("ws://{}/ocpp", server.local_addr());
    let pid = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .arg("attack")
        .args(flags.split_whitespace())
        .args(["--url", &url, "--json", "--timeout", "40s", "--pid", &pid])
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

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// The sum of a `{outcome: n}` object.
fn total(outcomes: &Value) -> u64 {
    outcomes.as_object().unwrap().values().map(count).sum()
}

/// Every message a kind sent was answered or counted as unanswered, and
/// every answer is a CALLRESULT or CALLERROR (with its code).
fn accounted(r: &Value, kind: &str) -> u64 {
    let k = &r["kinds"][kind];
    let sent = count(&k["sent"]);
    assert!(sent >= 2, "{kind}: {r}");
    assert_eq!(
        total(&k["answers"]) + count(&k["unanswered"]),
        sent,
        "{kind}: {r}"
    );
    for key in k["answers"].as_object().unwrap().keys() {
        assert!(
            key == "CALLRESULT" || key.starts_with("CALLERROR "),
            "{kind}: {key}: {r}"
        );
    }
    assert!(total(&k["answers"]) >= 1, "{kind}: {r}");
    assert!(k["answer_us"]["p99"].as_u64().unwrap() > 0, "{kind}: {r}");
    sent
}

#[test]
fn hostile_messages_are_sent_compressed_and_every_answer_counted() {
    // 4 KiB messages: a debug build validates a MiB of wrong sampled values
    // for seconds, and boots wait behind them.
    let server = gateway();
    let (out, r) = attack(
        &server,
        "--kinds schema,labels,events --rate 2 --duration 3s -c 1 --size 4KiB",
    );
    assert!(out.status.success(), "{r}");
    assert_eq!(r["mode"], "attack");
    assert_eq!(r["timed_out"], false, "{r}");
    let kinds = r["kinds"].as_object().unwrap();
    assert_eq!(kinds.len(), 3, "{r}");
    for kind in ["schema", "labels", "events"] {
        let k = &r["kinds"][kind];
        let sent = accounted(&r, kind);
        assert_eq!(k["due"], 6, "{kind}: 3 s at 2/s: {r}");
        assert!(sent <= 6, "{kind}: the rate bounds it: {r}");
        assert_eq!(k["connections"]["opened"], 1, "{kind}: {r}");
        assert_eq!(k["connections"]["compressed"], 1, "{kind}: {r}");
        let (payload, wire) = (count(&k["payload_bytes"]), count(&k["wire_bytes"]));
        assert!(payload >= sent * 3000, "{kind}: {r}");
        assert!(wire * 20 < payload, "{kind}: deflate makes them small: {r}");
    }
    // Half a MiB of wrong sampled values is never valid.
    let schema = &r["kinds"]["schema"]["answers"];
    assert_eq!(schema.get("CALLRESULT"), None, "{r}");
    // DataTransfer with a large `data` string is valid OCPP 1.6.
    let events = &r["kinds"]["events"];
    assert_eq!(events["answers"]["CALLRESULT"], events["sent"], "{r}");
    assert!(!r["samples"].as_array().unwrap().is_empty(), "{r}");
    assert!(r["samples"][0]["rss_kib"].as_u64().unwrap() > 0, "{r}");
    assert!(r["server"]["rss_kib_max"].as_u64().unwrap() > 0, "{r}");
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn fresh_ids_and_wrong_passwords_get_their_statuses_counted() {
    let server = gateway();
    let flags = format!(
        "--kinds registry,passwords --rate 20 --password-rate 50 --duration 1s \
         --password-id {PASSWORD_ID}"
    );
    let (out, r) = attack(&server, &flags);
    assert!(out.status.success(), "{r}");
    // The rate says what is due; a server that falls behind (argon2 in a
    // debug build is slow) gets fewer, each still answered. Wrong passwords
    // from one address are shut out (429) after the first few.
    for (kind, due, statuses) in [
        ("registry", 20, &["HTTP 101", "HTTP 503"][..]),
        ("passwords", 50, &["HTTP 401", "HTTP 429"]),
    ] {
        let k = &r["kinds"][kind];
        assert_eq!(k["due"], due, "{kind}: {r}");
        let sent = count(&k["sent"]);
        assert!((1..=due).contains(&sent), "{kind}: {r}");
        assert_eq!(total(&k["answers"]), sent, "{kind}: {r}");
        for key in k["answers"].as_object().unwrap().keys() {
            assert!(statuses.contains(&key.as_str()), "{kind}: {key}: {r}");
        }
        assert!(k["answer_us"]["p50"].as_u64().unwrap() > 0, "{kind}: {r}");
        assert!(k["connections"].is_null(), "{kind}: {r}");
    }
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn refuses_remote_targets_and_unknown_kinds() {
    for (flags, says) in [
        ("--url ws://192.0.2.1/ocpp", "loopback"),
        ("--url ws://192.0.2.1/ocpp --allow-remote", "--allow-remote"),
        ("--kinds schema,bogus", "bogus"),
        ("--rate nothing=3", "nothing"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
            .arg("attack")
            .args(flags.split_whitespace())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flags}: {err}");
    }
}
