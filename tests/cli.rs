//! The command line: `--help`, and a bad setting refused with exit status 2 and one line
//! that names it where the user wrote it (the YAML key and file, the variable, the flag);
//! unknown variables with our prefixes warn and name the nearest setting.

mod common;

use common::{ServerProcess, BIN};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A YAML file in the temp dir, removed on drop.
struct YamlFile(PathBuf);

impl YamlFile {
    fn new(text: &str) -> YamlFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringgate-cli-{}-{}.yaml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        YamlFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for YamlFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the binary with a config that must be refused: exit status 2, nothing listening,
/// and exactly one `ringgate:` line, which is returned.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = args.to_vec();
    args.extend(["--host", "127.0.0.1", "--port", "0"]);
    let out = run(&args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} {env:?}: exit status; stderr:\n{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "{args:?} {env:?}: must not start listening"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ringgate:"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?} {env:?}: one error line:\n{stderr}"
    );
    lines[0].to_owned()
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
        let line = refused(&[], &[(key, value)]);
        assert!(
            line.contains(key),
            "{key}={value}: the error must name {key}: {line}"
        );
        assert_eq!(
            line.matches(value).count(),
            usize::from(!key.ends_with("PASSWORDS")),
            "{key}={value}: said once (never a password entry): {line}"
        );
    }
}

#[test]
fn a_bad_cidr_is_named_where_it_was_written() {
    let file = YamlFile::new("realtime:\n  ip_allowlist: [10.0.0.0/8, 10.0.0.0/33]\n");
    let line = refused(&["--config", file.path()], &[]);
    for part in ["realtime.ip_allowlist", file.path(), "10.0.0.0/33"] {
        assert!(line.contains(part), "must name {part}: {line}");
    }
    assert!(!line.contains("WS_IP_ALLOWLIST"), "not set there: {line}");
    let line = refused(&[], &[("WS_IP_ALLOWLIST", "10.0.0.0/33")]);
    assert!(line.contains("WS_IP_ALLOWLIST"), "{line}");
    let line = refused(&["--set", "realtime.ip_allowlist=10.0.0.0/33"], &[]);
    assert!(line.contains("--set realtime.ip_allowlist"), "{line}");
}

#[test]
fn checks_across_settings_name_the_key_where_it_was_written() {
    let file = YamlFile::new("websocket:\n  pong_wait: 0\n");
    let line = refused(&["--config", file.path()], &[]);
    assert!(
        line.contains("websocket.pong_wait") && line.contains(file.path()),
        "{line}"
    );
    assert!(!line.contains("WS_PONG_WAIT"), "not set there: {line}");
    let line = refused(&["--set", "WS_PONG_WAIT=0"], &[]);
    assert!(line.contains("--set WS_PONG_WAIT"), "{line}");
}

#[test]
fn a_yaml_syntax_error_is_one_at_its_line_and_column() {
    // `host` indented one space too far: the parser stops at its colon; a typed
    // reading would blame `server.port` ("9000 host" is not a port).
    let file = YamlFile::new("server:\n  port: 9000\n   host: 127.0.0.1\n");
    let line = refused(&["--config", file.path()], &[]);
    assert!(
        line.contains("YAML syntax error") && line.contains("line 3 column 8"),
        "{line}"
    );
    assert!(!line.contains("server.port"), "blames another key: {line}");
    assert!(line.contains(file.path()), "{line}");
}

#[test]
fn an_unknown_yaml_key_is_an_error_naming_the_nearest_key() {
    for (yaml, unknown, nearest, at) in [
        (
            "server:\n  prot: 80\n",
            "server.prot",
            "server.port",
            "line 2 column 3",
        ),
        (
            "realtime:\n  max_room: 5\n",
            "realtime.max_room",
            "realtime.max_rooms",
            "line 2 column 3",
        ),
        // A key that lost its indentation lands at the top level.
        (
            "websocket:\nping_period: 5s\n",
            "ping_period",
            "websocket.ping_period",
            "line 2 column 1",
        ),
    ] {
        let file = YamlFile::new(yaml);
        let line = refused(&["--config", file.path()], &[]);
        for part in [unknown, nearest, at, file.path()] {
            assert!(line.contains(part), "{yaml:?}: must name {part}: {line}");
        }
        assert!(line.contains("did you mean"), "{line}");
    }
}

#[test]
fn a_bad_yaml_value_names_its_key_line_and_column() {
    let file = YamlFile::new("server:\n  host: 127.0.0.1\n  port: high\n");
    let line = refused(&["--config", file.path()], &[]);
    for part in ["server.port", "line 3 column 9", file.path()] {
        assert!(line.contains(part), "must name {part}: {line}");
    }
}

#[test]
fn a_misspelled_variable_warns_naming_the_nearest_and_the_server_runs() {
    let server = ServerProcess::spawn(&[
        ("WS_MAX_ROOM", "5"),
        ("OCPP_ALOWED_IDS", "CP1"),
        // Not settings: the test hooks and harness variables are left alone.
        ("RINGGATE_BIN", "/bin/true"),
        ("RINGGATE_TEST_NOTHING", "1"),
    ]);
    assert!(common::health_connections(server.addr).is_some());
    // Warnings go out through the log writer thread: give it a moment.
    common::eventually(Duration::from_secs(5), || {
        server.stderr_text().contains("OCPP_ALOWED_IDS")
    });
    let log = server.stderr_text();
    for (unknown, nearest) in [
        ("WS_MAX_ROOM", "WS_MAX_ROOMS"),
        ("OCPP_ALOWED_IDS", "OCPP_ALLOWED_IDS"),
    ] {
        let warning = log
            .lines()
            .find(|l| l.contains(unknown))
            .unwrap_or_else(|| panic!("no warning about {unknown}:\n{log}"));
        assert!(
            warning.contains("WARN") && warning.contains(nearest),
            "{warning}"
        );
    }
    for quiet in ["RINGGATE_BIN", "RINGGATE_TEST_NOTHING"] {
        assert!(
            !log.contains(quiet),
            "{quiet} is not a setting to warn about:\n{log}"
        );
    }
}

#[test]
fn help_describes_every_section_of_the_config_file() {
    let out = run(&["--help"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let config_help = text
        .split("--config <FILE>")
        .nth(1)
        .and_then(|rest| rest.split("\n  -").next())
        .unwrap_or_else(|| panic!("no --config in --help:\n{text}"));
    for section in [
        "server",
        "websocket",
        "http",
        "admin",
        "realtime",
        "ocpp",
        "echo",
        "log_level",
    ] {
        assert!(
            config_help.contains(section),
            "--config's help does not name {section}: {config_help}"
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
