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
    }
}
