//! HTTP/1.1 request-head parsing (via httparse) and plain response writing for the upgrade layer.
//! Sans-IO: bytes in, a `RequestHead` or an `HttpError` carrying its status out; it never touches
//! a socket, never panics on any input and never allocates beyond the caller's head-size cap.

use thiserror::Error;

/// Most headers a request head may carry; one more is `TooManyHeaders` (431).
pub const MAX_HEADERS: usize = 64;

/// One request header: the name as sent (compare it case-insensitively) and the raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

/// A parsed HTTP/1.x request line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target without the query, as sent (no decoding).
    pub path: String,
    /// The raw query, without the leading '?'.
    pub query: Option<String>,
    /// The `x` in `HTTP/1.x`.
    pub minor_version: u8,
    pub headers: Vec<Header>,
}

/// Why a request head was refused; `status()` is the HTTP status to answer with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head too large")]
    HeadersTooLarge,
    #[error("too many request headers")]
    TooManyHeaders,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadersTooLarge | HttpError::TooManyHeaders => 431,
        }
    }
}

/// Parses one request head from the start of `buf` with httparse.
///
/// `Ok(None)`: incomplete and `buf.len() <= max_head_bytes` (keep reading).
/// `Ok(Some((head, head_len)))`: `head_len` bytes of `buf` were the head.
/// A head not complete within `max_head_bytes`, or complete but longer, is `HeadersTooLarge`;
/// more than `MAX_HEADERS` headers is `TooManyHeaders`; anything httparse rejects is `Malformed`.
/// A request with a body is fine to parse; the caller decides what to do with it.
pub fn parse_request(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<(RequestHead, usize)>, HttpError> {
    // Only ever look at the first `max_head_bytes`: a head that ends past the cap is too large,
    // and the parse cost stays bounded however much the peer sends.
    let window = &buf[..buf.len().min(max_head_bytes)];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_head_bytes => {
            return Err(HttpError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_httparse_error(e)),
    };
    // A complete parse always fills these; treat their absence as malformed rather than panic.
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let headers = req
        .headers
        .iter()
        .map(|h| Header {
            name: h.name.to_owned(),
            value: h.value.to_vec(),
        })
        .collect();
    Ok(Some((
        RequestHead {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            minor_version,
            headers,
        },
        head_len,
    )))
}

fn map_httparse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Status => HttpError::Malformed("invalid status"),
        httparse::Error::Token => HttpError::Malformed("invalid token"),
        httparse::Error::Version => HttpError::Malformed("invalid HTTP version"),
    }
}

impl RequestHead {
    /// The first header called `name` (case-insensitive), raw.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// The first header called `name`, if valid UTF-8, with surrounding whitespace trimmed.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.header(name)?)
            .ok()
            .map(str::trim_ascii)
    }

    /// True if any header `name` (repeats allowed) holds `token` in its comma-separated list;
    /// tokens are trimmed and compared case-insensitively ("keep-alive, Upgrade" has "upgrade").
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Checks how the body is framed (RFC 9112 section 6): every
    /// `Content-Length` a plain decimal number, all of them equal; a
    /// `Transfer-Encoding` ending in `chunked`. Anything else is `Malformed`,
    /// since the end of the request could not be found.
    pub fn check_body_framing(&self) -> Result<(), HttpError> {
        let mut length: Option<&[u8]> = None;
        for h in self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        {
            for value in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                    return Err(HttpError::Malformed("Content-Length is not a number"));
                }
                if length.is_some_and(|seen| seen != value) {
                    return Err(HttpError::Malformed("Content-Length values differ"));
                }
                length = Some(value);
            }
        }
        let codings: Vec<&[u8]> = self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .collect();
        match codings.last() {
            Some(last) if !last.eq_ignore_ascii_case(b"chunked") => Err(HttpError::Malformed(
                "Transfer-Encoding must end in chunked",
            )),
            _ => Ok(()),
        }
    }

    /// Value of query parameter `name`, percent-decoded ('+' as space), first occurrence.
    ///
    /// Names are decoded the same way before comparing. As in WHATWG URLSearchParams, a `%`
    /// not followed by two hex digits stays literal and invalid UTF-8 becomes U+FFFD.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .as_deref()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| {
                if key.bytes().any(|b| b == b'%' || b == b'+') {
                    percent_decode(key) == name
                } else {
                    *key == name
                }
            })
            .map(|(_, value)| percent_decode(value))
    }
}

fn percent_decode(s: &str) -> String {
    match String::from_utf8(unescape(s, true)) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// A path segment, percent-decoded (`+` stays `+`); `None` when the bytes are not UTF-8.
pub fn percent_decode_segment(s: &str) -> Option<String> {
    String::from_utf8(unescape(s, false)).ok()
}

/// `%XX` escapes decoded (a malformed one kept as it is), `+` as a space when asked.
fn unescape(s: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_value(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_value(b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The reason phrase for `status`, or "Unknown".
pub fn status_text(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Appends a full HTTP/1.1 response: status line, `extra` headers, `Content-Type` (when the body
/// is non-empty and `content_type` is given), `Content-Length`, `Connection: close`, blank line,
/// body. Statuses that cannot carry a body (1xx, 204, 304) get neither length nor body.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) {
    let bodyless = status < 200 || status == 204 || status == 304;
    push_status_line(out, status);
    for (name, value) in extra {
        push_header(out, name, value);
    }
    if !bodyless {
        if !body.is_empty() && !content_type.is_empty() {
            push_header(out, "Content-Type", content_type);
        }
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, body.len());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if !bodyless {
        out.extend_from_slice(body);
    }
}

/// Appends the contract's JSON error response, `{"error":{"code":CODE,"message":MSG}}`.
pub fn write_error(
    out: &mut Vec<u8>,
    status: u16,
    code: &str,
    message: &str,
    extra: &[(&str, &str)],
) {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    write_response(out, status, "application/json", extra, body.as_bytes());
}

/// Why a response header supplied by application code cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("header name {0:?} is not an HTTP token")]
    BadName(String),
    #[error("header {0} has a control character in its value")]
    BadValue(String),
    #[error("header {0} is written by the server itself")]
    Reserved(String),
}

/// Checks a response header that application code supplied: the name is an
/// RFC 9110 token, the value holds no control character but tab, and the
/// name is none of `reserved` (compared case-insensitively).
pub fn check_header(name: &str, value: &str, reserved: &[&str]) -> Result<(), HeaderError> {
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token_char) {
        return Err(HeaderError::BadName(name.to_owned()));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HeaderError::BadValue(name.to_owned()));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(HeaderError::Reserved(name.to_owned()));
    }
    Ok(())
}

/// `HTTP/1.1 <status> <reason>\r\n`.
pub(crate) fn push_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(status_text(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `name: value\r\n`, with any CR or LF in either replaced by a space so that no caller-supplied
/// string can split the response.
pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    push_field_text(out, name.as_bytes());
    out.extend_from_slice(b": ");
    push_field_text(out, value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_field_text(out: &mut Vec<u8>, text: &[u8]) {
    let is_break = |b: &u8| *b == b'\r' || *b == b'\n';
    if text.iter().any(is_break) {
        out.extend(text.iter().map(|b| if is_break(b) { b' ' } else { *b }));
    } else {
        out.extend_from_slice(text);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /ws/chat?room=a%20b&x=1 HTTP/1.1\r\n\
        Host: example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(buf: &[u8]) -> RequestHead {
        parse_request(buf, 8192).unwrap().unwrap().0
    }

    fn request_with_query(query: &str) -> RequestHead {
        parse(format!("GET /?{query} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
    }

    #[test]
    fn parses_a_complete_head() {
        let mut buf = REQ.to_vec();
        buf.extend_from_slice(b"trailing frame bytes");
        let (head, len) = parse_request(&buf, 8192).unwrap().unwrap();
        assert_eq!(len, REQ.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/ws/chat");
        assert_eq!(head.query.as_deref(), Some("room=a%20b&x=1"));
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.headers.len(), 5);
        assert_eq!(head.headers[0].name, "Host");
        assert_eq!(head.header("HOST"), Some(&b"example.com"[..]));
        assert_eq!(head.header_str("sec-websocket-version"), Some("13"));
        assert_eq!(head.header("missing"), None);
    }

    #[test]
    fn path_without_query_and_http_1_0() {
        let head = parse(b"POST /a%2Fb HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/a%2Fb");
        assert_eq!(head.query, None);
        assert_eq!(head.minor_version, 0);
        let head = parse(b"GET /? HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "/");
        assert_eq!(head.query.as_deref(), Some(""));
    }

    #[test]
    fn byte_by_byte_returns_none_until_complete() {
        for end in 0..REQ.len() {
            assert_eq!(parse_request(&REQ[..end], 8192), Ok(None), "prefix {end}");
        }
        let (head, len) = parse_request(REQ, 8192).unwrap().unwrap();
        assert_eq!(len, REQ.len());
        assert_eq!(head, parse(REQ));
    }

    #[test]
    fn exact_cap_is_accepted() {
        let (_, len) = parse_request(REQ, REQ.len()).unwrap().unwrap();
        assert_eq!(len, REQ.len());
    }

    #[test]
    fn incomplete_past_the_cap_is_too_large() {
        let mut buf = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        buf.resize(200, b'a');
        assert_eq!(parse_request(&buf, 200), Ok(None));
        buf.push(b'a');
        assert_eq!(parse_request(&buf, 200), Err(HttpError::HeadersTooLarge));
        assert_eq!(HttpError::HeadersTooLarge.status(), 431);
    }

    #[test]
    fn complete_but_over_the_cap_is_too_large() {
        assert_eq!(
            parse_request(REQ, REQ.len() - 1),
            Err(HttpError::HeadersTooLarge)
        );
        assert_eq!(parse_request(REQ, 0), Err(HttpError::HeadersTooLarge));
        assert_eq!(parse_request(b"", 0), Ok(None));
    }

    fn request_with_headers(n: usize) -> Vec<u8> {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..n {
            buf.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        buf
    }

    #[test]
    fn header_count_limit() {
        let head = parse(&request_with_headers(MAX_HEADERS));
        assert_eq!(head.headers.len(), MAX_HEADERS);
        let err = parse_request(&request_with_headers(MAX_HEADERS + 1), 1 << 16).unwrap_err();
        assert_eq!(err, HttpError::TooManyHeaders);
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn garbage_is_malformed() {
        let cases: [&[u8]; 7] = [
            b"\0\0\0\0",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"GET\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ];
        for case in cases {
            match parse_request(case, 8192) {
                Err(err @ HttpError::Malformed(_)) => assert_eq!(err.status(), 400),
                other => panic!("{case:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"GET /?&=%HTP1.\r\n: \0\xffaZ";
        for _ in 0..5000 {
            let len = (next() % 96) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let cap = (next() % 128) as usize;
            if let Ok(Some((head, n))) = parse_request(&buf, cap) {
                assert!(n <= cap && n <= buf.len());
                let _ = head.query_param("a");
                let _ = head.has_token("connection", "upgrade");
            }
        }
        for end in 0..REQ.len() {
            let mut buf = REQ[..end].to_vec();
            buf.extend_from_slice(b"\r\n\r\n\0");
            let _ = parse_request(&buf, 8192);
        }
    }

    #[test]
    fn token_lists() {
        let head = parse(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\
              connection: close\r\nX-Empty:\r\nX-Bin: \xff, tok\r\n\r\n",
        );
        assert!(head.has_token("Connection", "upgrade"));
        assert!(head.has_token("CONNECTION", "keep-alive"));
        assert!(head.has_token("connection", "close"));
        assert!(!head.has_token("connection", "keep"));
        assert!(!head.has_token("upgrade", "upgrade"));
        assert!(!head.has_token("x-empty", "x"));
        assert!(head.has_token("x-bin", "tok"));
        assert_eq!(head.header_str("x-bin"), None);
        assert_eq!(head.header_str("x-empty"), Some(""));
    }

    #[test]
    fn query_param_decoding() {
        let head = request_with_query(
            "a=1&b=hello+world&c=%E2%82%AC%2b&a=2&flag&e=&bad=%zz%4&sp%20ace=ok&inv=%ff",
        );
        assert_eq!(head.query_param("a").as_deref(), Some("1"));
        assert_eq!(head.query_param("b").as_deref(), Some("hello world"));
        assert_eq!(head.query_param("c").as_deref(), Some("€+"));
        assert_eq!(head.query_param("flag").as_deref(), Some(""));
        assert_eq!(head.query_param("e").as_deref(), Some(""));
        assert_eq!(head.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(head.query_param("sp ace").as_deref(), Some("ok"));
        assert_eq!(head.query_param("inv").as_deref(), Some("\u{fffd}"));
        assert_eq!(head.query_param("missing"), None);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n").query_param("a"), None);
    }

    #[test]
    fn body_framing() {
        let head = |extra: &str| {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            parse_request(raw.as_bytes(), 8192).unwrap().unwrap().0
        };
        for ok in [
            "",
            "Content-Length: 12\r\n",
            "Content-Length: 5, 5\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
        ] {
            assert_eq!(head(ok).check_body_framing(), Ok(()), "{ok:?}");
        }
        for bad in [
            "Content-Length: zz\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
            "Content-Length: \r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
        ] {
            assert!(head(bad).check_body_framing().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_texts() {
        assert_eq!(status_text(101), "Switching Protocols");
        assert_eq!(status_text(426), "Upgrade Required");
        assert_eq!(status_text(431), "Request Header Fields Too Large");
        assert_eq!(status_text(504), "Gateway Timeout");
        assert_eq!(status_text(299), "Unknown");
    }

    #[test]
    fn response_layout() {
        let mut out = b"prefix|".to_vec();
        write_response(&mut out, 200, "text/plain", &[("X-A", "1")], b"hello");
        assert_eq!(
            out,
            b"prefix|HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: text/plain\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
        out.clear();
        write_response(&mut out, 404, "text/plain", &[], b"");
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_response(&mut out, 204, "text/plain", &[], b"ignored");
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn response_headers_cannot_be_split() {
        let mut out = Vec::new();
        write_response(&mut out, 400, "", &[("X-A", "v\r\nSet-Cookie: x")], b"");
        assert_eq!(
            out,
            b"HTTP/1.1 400 Bad Request\r\nX-A: v  Set-Cookie: x\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn error_body_is_escaped_json() {
        let mut out = Vec::new();
        let message = "bad \"quote\" \\ and\nnewline\u{1}";
        write_error(&mut out, 400, "bad_request", message, &[("Allow", "GET")]);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\nAllow: GET\r\n"));
        assert!(head.contains("Content-Type: application/json\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(head.ends_with("Connection: close"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "bad_request");
        assert_eq!(json["error"]["message"], message);
    }

    #[test]
    fn application_headers_are_checked() {
        assert_eq!(check_header("X-Trace", "a\tb c", &[]), Ok(()));
        assert!(matches!(
            check_header("", "v", &[]),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            check_header("X Bad", "v", &[]),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            check_header("X:Bad", "v", &[]),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            check_header("X-Ok", "a\r\nInjected: 1", &[]),
            Err(HeaderError::BadValue(_))
        ));
        assert!(matches!(
            check_header("X-Ok", "nul\0", &[]),
            Err(HeaderError::BadValue(_))
        ));
        assert!(matches!(
            check_header("content-length", "5", &["Content-Length"]),
            Err(HeaderError::Reserved(_))
        ));
    }
}
