//! `--deflate` end to end against ringgate's `/echo` route with its
//! compression set as `RINGGATE_ECHO_COMPRESSION` sets it (`echo.compression`
//! of an in-process server on an ephemeral loopback port): in the shared
//! and the dedicated mode every connection agrees and every echo comes back
//! compressed and checked; with compression off every connection goes on
//! uncompressed and the run still succeeds.

use std::process::Command;

use ringgate::config::Compression;
use ringgate::{Config, Server, ServerHandle};
use serde_json::Value;

fn server(compression: Compression) -> ServerHandle {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = 1;
    cfg.echo.compression = compression;
    Server::builder(cfg).start().expect("server starts")
}

/// Runs the tool with `args` and `--deflate` against `server`'s `/echo`;
/// it must succeed. Its JSON report.
fn load(server: &ServerHandle, args: &[&str]) -> Value {
    let url = format!("ws://{}/echo", server.local_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .args(args)
        .args(["--deflate", "--url", &url, "--json", "--timeout", "30s"])
        .output()
        .expect("ringgate-load runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// `throughput -c 20 --messages 100` of `payload` bytes: every connection
/// up, every echo back and checked, nothing failed. The report.
fn throughput(server: &ServerHandle, payload: &str, text: bool) -> Value {
    let mut args = vec![
        "throughput",
        "-c",
        "20",
        "--messages",
        "100",
        "--payload",
        payload,
        "--window",
        "4",
        "--threads",
        "2",
    ];
    if text {
        args.push("--text");
    }
    let r = load(server, &args);
    assert_eq!(r["connected"], 20, "{r}");
    assert_eq!(r["up_at_end"], 20, "{r}");
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    assert_eq!(r["timed_out"], false, "{r}");
    assert_eq!(r["messages_sent"], 2000, "{r}");
    assert_eq!(r["messages"], 2000, "every echo checked: {r}");
    r
}

#[test]
fn shared_and_dedicated_compress_every_message_and_check_every_echo() {
    for (compression, agreed) in [
        (
            Compression::Shared,
            "server_no_context_takeover; client_no_context_takeover",
        ),
        (Compression::Dedicated, "context takeover both ways"),
    ] {
        let s = server(compression);
        for text in [false, true] {
            let r = throughput(&s, "1KiB", text);
            let d = &r["deflate"];
            assert_eq!(d["negotiated"], 20, "{compression:?}: {r}");
            assert_eq!(d["uncompressed"], 0, "{r}");
            assert_eq!(d["agreed"], agreed, "{r}");
            for way in ["sent", "received"] {
                let t = &d[way];
                assert_eq!(t["messages"], 2000, "{way}: {r}");
                assert_eq!(t["compressed"], 2000, "{way}: {r}");
                assert_eq!(t["payload_bytes"], 2000 * 1024, "{way}: {r}");
                // The filler repeats a-z: it compresses to a few percent.
                assert!(t["ratio"].as_f64().unwrap() < 0.2, "{way}: {r}");
            }
        }
        // Under the server's threshold (128 B) the echoes come back
        // uncompressed on the compressed connections, and are checked alike.
        let r = throughput(&s, "20", false);
        let d = &r["deflate"];
        assert_eq!(d["negotiated"], 20, "{r}");
        assert_eq!(d["sent"]["compressed"], 2000, "{r}");
        assert_eq!(d["received"]["messages"], 2000, "{r}");
        assert_eq!(d["received"]["compressed"], 0, "{r}");
        assert_eq!(d["received"]["ratio"], 1.0, "{r}");
        s.shutdown();
        s.join().unwrap();
    }
}

#[test]
fn without_compression_on_the_server_connections_go_on_uncompressed() {
    let s = server(Compression::Off);
    let r = throughput(&s, "1KiB", false);
    let d = &r["deflate"];
    assert_eq!(d["negotiated"], 0, "{r}");
    assert_eq!(d["uncompressed"], 20, "{r}");
    assert!(d["agreed"].is_null(), "{r}");
    assert_eq!(d["sent"]["messages"], 0, "{r}");
    assert_eq!(d["received"]["messages"], 0, "{r}");
    s.shutdown();
    s.join().unwrap();
}

#[test]
fn idle_connections_can_send_first() {
    let s = server(Compression::Dedicated);
    let r = load(
        &s,
        &[
            "idle",
            "-c",
            "30",
            "--duration",
            "300ms",
            "--messages",
            "2",
            "--payload",
            "1KiB",
        ],
    );
    assert_eq!(r["up_at_end"], 30, "{r}");
    assert_eq!(r["failures"], serde_json::json!({}), "{r}");
    assert_eq!(r["messages_sent"], 60, "{r}");
    assert_eq!(r["messages"], 60, "{r}");
    assert_eq!(r["deflate"]["negotiated"], 30, "{r}");
    assert_eq!(r["deflate"]["received"]["compressed"], 60, "{r}");
    s.shutdown();
    s.join().unwrap();
}
