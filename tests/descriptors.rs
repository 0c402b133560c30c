//! Process descriptors: accepted sockets are close-on-exec on both drivers,
//! MAX_CONNECTIONS is capped by the open-files limit at start (one log line)
//! so the server answers 503 before it runs out of descriptors, and at the
//! limit `/health` still answers from the admin reserve.

mod common;

use std::time::Duration;

use common::*;

/// The server's socket descriptors and whether each is close-on-exec.
fn socket_fds_cloexec(pid: i32) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd") {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let fd = entry.file_name().to_string_lossy().into_owned();
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .expect("fdinfo flags");
        out.push((fd, flags & libc::O_CLOEXEC as u32 != 0));
    }
    out
}

#[test]
fn accepted_sockets_are_close_on_exec() {
    let server = ServerProcess::spawn(&[("RINGGATE_DIRECT_DESCRIPTORS", "false")]);
    let before = socket_fds_cloexec(server.pid()).len();
    let mut clients: Vec<RawWs> = (0..3)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    for ws in &mut clients {
        ws.assert_echo("x");
    }
    let sockets = socket_fds_cloexec(server.pid());
    assert!(sockets.len() >= before + 3, "{sockets:?}");
    let leaky: Vec<_> = sockets.iter().filter(|(_, cloexec)| !cloexec).collect();
    assert!(leaky.is_empty(), "sockets without O_CLOEXEC: {leaky:?}");
}

/// The `capped at N` figure of the start-up log, if any.
fn capped_at(stderr: &str) -> Option<usize> {
    let rest = stderr.split("capped at ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_open_files_limit_caps_the_connections_and_health_answers_at_the_cap() {
    let server = ServerProcess::spawn_with_open_files(
        64,
        &[
            ("RINGGATE_SHARDS", "1"),
            ("RINGGATE_DIRECT_DESCRIPTORS", "false"),
        ],
    );
    // The start-up log ends with the "listening on ... shards" line.
    eventually(Duration::from_secs(5), || {
        server.stderr_text().contains("shards on")
    });
    let stderr = server.stderr_text();
    let cap = capped_at(&stderr).unwrap_or_else(|| panic!("no cap in the log:\n{stderr}"));
    assert_eq!(
        stderr.matches("capped at").count(),
        1,
        "one line:\n{stderr}"
    );
    assert!((10..64).contains(&cap), "cap {cap}");
    let mut held: Vec<RawWs> = (0..cap)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    let refused = UpgradeRequest::new("/echo").send(server.addr);
    assert_eq!(refused.status, 503, "{refused:?}");
    refused.assert_error_json();
    assert_eq!(health_connections(server.addr), Some(cap as u64));
    for ws in held.iter_mut().step_by(7) {
        ws.assert_echo("still served");
    }
    drop(held);
    assert!(
        eventually(Duration::from_secs(5), || health_connections(server.addr)
            == Some(0)),
        "the slots must free up"
    );
    RawWs::connect(server.addr, "/echo").assert_echo("room again");
    assert!(
        !server.stderr_text().contains("accept failed"),
        "the cap must keep accepts from failing:\n{}",
        server.stderr_text()
    );
}
