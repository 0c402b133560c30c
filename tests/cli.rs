//! The command line: `--help`, and a bad setting refused with a message that
//! names it.

mod common;

use common::BIN;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary to completion (30 s limit).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringgate");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringgate {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn help_lists_the_main_options() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--host", "--port", "--config", "--no-echo"] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
}

#[test]
fn bad_setting_exits_nonzero_naming_the_key() {
    for (key, value) in [
        ("WS_PING_PERIOD", "soon"),
        ("WS_MAX_MESSAGE_SIZE", "lots"),
        ("RINGGATE_IO", "carrier-pigeon"),
        ("OCPP_BOOT_STATUS", "maybe"),
        ("OCPP_PASSWORDS", "CP1=plaintext"),
        ("OCPP_EVENTS_FILE", "/nonexistent-dir/events.ndjson"),
    ] {
        let out = run(&["--host", "127.0.0.1", "--port", "0"], &[(key, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{key}={value} was accepted; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(key),
            "{key}={value}: the error must name {key}:\n{stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening on"),
            "{key}={value}: must not start listening"
        );
        let lines = stderr
            .lines()
            .filter(|l| l.starts_with("ringgate:"))
            .count();
        assert_eq!(lines, 1, "{key}={value}: one error line:\n{stderr}");
        assert_eq!(
            stderr.matches(value).count(),
            usize::from(!key.ends_with("PASSWORDS")),
            "{key}={value}: said once (never a password entry):\n{stderr}"
        );
    }
}

#[test]
fn hash_password_prints_an_argon2_hash_of_standard_input() {
    let mut child = Command::new(BIN)
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringgate");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("s3cret"));
    let empty = run(&["--hash-password"], &[]);
    assert!(!empty.status.success(), "no password given: {empty:?}");
}
