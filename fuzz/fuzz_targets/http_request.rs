// Checks that parse_request, the handshake checks and the response writers never panic, that a
// head parses the same from any prefix or cap that holds it, and that responses stay well framed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::protocol::deflate::{negotiate, DeflateMode};
use ringgate::protocol::handshake::{
    accept_key, validate_upgrade, wants_upgrade, write_handshake_error, write_switching_protocols,
};
use ringgate::protocol::http::{
    parse_request, write_error, write_response, HttpError, RequestHead, MAX_HEADERS,
};

/// The head cap the server uses by default.
const CAP: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let full = parse_request(data, CAP);
    check_prefixes(data, &full);
    match &full {
        Ok(None) => {
            assert!(
                data.len() <= CAP,
                "incomplete past the cap must be an error"
            );
            if !data.is_empty() {
                // Incomplete within one byte less is incomplete past the cap.
                let smaller = parse_request(data, data.len() - 1);
                assert_eq!(smaller, Err(HttpError::HeadersTooLarge));
            }
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 431), "{e:?}");
            let mut out = Vec::new();
            write_error(&mut out, e.status(), "bad_request", &e.to_string(), &[]);
            check_response(&out, e.status(), 0);
        }
        Ok(Some((head, n))) => {
            let n = *n;
            assert!(n > 0 && n <= data.len() && n <= CAP);
            assert_eq!(data[n - 1], b'\n', "a head ends with its blank line");
            // The same head from exactly its bytes, and under a cap of exactly its length;
            // one byte less of cap is too large.
            assert_eq!(parse_request(&data[..n], CAP), full);
            assert_eq!(parse_request(data, n), full);
            assert_eq!(parse_request(data, n - 1), Err(HttpError::HeadersTooLarge));
            check_head(head);
        }
    }
});

/// Whatever a prefix of the input decides, the whole input decides the same: a prefix that holds
/// a complete head gives the same head, and a prefix that is already an error stays one.
fn check_prefixes(data: &[u8], full: &Result<Option<(RequestHead, usize)>, HttpError>) {
    let len = data.len();
    let mut cuts = vec![0, 1, len / 3, len / 2, 2 * len / 3, len.saturating_sub(1)];
    if let Ok(Some((_, n))) = full {
        cuts.extend([n - 1, *n]);
    }
    for k in cuts.into_iter().filter(|&k| k <= len) {
        match parse_request(&data[..k], CAP) {
            Ok(None) => {}
            prefix @ (Ok(Some(_)) | Err(_)) => {
                assert_eq!(&prefix, full, "prefix of {k} bytes decided differently")
            }
        }
    }
}

fn check_head(head: &RequestHead) {
    assert!(!head.path.contains('?'), "the query is split off");
    assert!(head.minor_version <= 1);
    assert!(head.headers.len() <= MAX_HEADERS);
    for h in &head.headers {
        assert!(head.header(&h.name).is_some());
        if let Some(v) = head.header_str(&h.name) {
            assert_eq!(v, v.trim_ascii(), "header_str trims");
        }
    }
    assert_eq!(wants_upgrade(head), head.has_token("UPGRADE", "WebSocket"));
    let _ = head.has_token("connection", "upgrade");
    let _ = head.has_token("sec-websocket-protocol", "");
    if let Err(e) = head.check_body_framing() {
        assert_eq!(e.status(), 400, "a framing error is a malformed request");
    }

    for name in ["token", "room", "a b", "", "%"] {
        let _ = head.query_param(name);
    }
    if let Some(query) = &head.query {
        // A plain first key is always found (its value is the first match).
        let first = query.split('&').next().unwrap_or_default();
        let key = first.split_once('=').map_or(first, |(k, _)| k);
        if !key.contains(['%', '+']) {
            assert!(head.query_param(key).is_some(), "first key {key:?}");
        }
        for pair in query.split('&').take(4) {
            let _ = head.query_param(pair);
        }
    }

    // Header names and values, lossily, as extra response headers: CR/LF must not split lines.
    let extra: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                String::from_utf8_lossy(&h.value).into_owned(),
            )
        })
        .collect();
    let extra_refs: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut out = Vec::new();
    write_response(
        &mut out,
        200,
        "text/plain",
        &extra_refs,
        head.path.as_bytes(),
    );
    check_response(&out, 200, extra.len());

    match validate_upgrade(head) {
        Ok(info) => {
            assert!(wants_upgrade(head) && head.method == "GET" && head.minor_version >= 1);
            assert!(head.header("host").is_some());
            assert!(head.has_token("connection", "upgrade"));
            assert_eq!(head.header_str("sec-websocket-version"), Some("13"));
            assert_eq!(info.key.len(), 24);
            for p in info.protocols.iter().chain(&info.extensions) {
                assert!(!p.is_empty() && !p.contains(',') && p.trim_ascii() == p.as_str());
            }
            let accept = accept_key(&info.key);
            assert_eq!(accept.len(), 28);
            let mut out = Vec::new();
            let protocol = info.protocols.first().map(String::as_str);
            let extensions =
                negotiate(&info.extensions, DeflateMode::Shared).map(|(_, value)| value);
            write_switching_protocols(&mut out, &accept, protocol, extensions.as_deref(), &extra);
            // Status, Upgrade, Connection, Accept, the protocol, the extensions, the extras.
            let lines = 4
                + usize::from(protocol.is_some())
                + usize::from(extensions.is_some())
                + extra.len();
            assert_eq!(check_framing(&out), (lines, out.len()));
        }
        Err(e) => {
            let mut out = Vec::new();
            write_handshake_error(&mut out, &e);
            check_response(&out, e.status(), e.extra_headers().len());
        }
    }
}

/// A response from write_response: the status line, `extra` extra headers plus the writer's own,
/// and a body whose length matches Content-Length.
fn check_response(out: &[u8], status: u16, extra: usize) {
    assert!(out.starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
    let (lines, head_len) = check_framing(out);
    // Status line, extras, Content-Type?, Content-Length, Connection.
    assert!(lines >= 1 + extra + 2, "{lines} lines for {extra} extras");
    let body = &out[head_len..];
    let head = std::str::from_utf8(&out[..head_len]).unwrap_or_default();
    // The writer's own Content-Length is the last one (an extra header may share its name).
    let length = head
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim_end().parse::<usize>().ok());
    assert_eq!(length, Some(body.len()), "Content-Length");
}

/// Checks that a response head is lines ended by CRLF, with no bare CR or LF, ending with the
/// blank line; returns its line count (without the blank line) and its length in bytes.
fn check_framing(out: &[u8]) -> (usize, usize) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a blank line ends the head")
        + 4;
    let head = &out[..end];
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert!(i > 0 && head[i - 1] == b'\r', "bare LF at {i}"),
            _ => {}
        }
    }
    let lines = head.windows(2).filter(|w| w == b"\r\n").count() - 1;
    (lines, end)
}
