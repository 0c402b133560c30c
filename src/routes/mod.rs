//! The route table: which WebSocket [`Handler`] or plain [`HttpHandler`]
//! answers a path, plus the built-in routes (`/echo`, `/health`).
//! Patterns are exact paths, or prefixes written with a trailing `/*`.

mod echo;
mod health;

use std::sync::Arc;
use std::time::Instant;

pub use echo::Echo;
pub use health::Health;

use crate::handler::Handler;
use crate::hub::Hub;
use crate::protocol::http::{check_header, HeaderError, RequestHead};

/// Headers a plain response writes itself; a handler may not set them.
const RESPONSE_HEADERS: &[&str] = &[
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
];

/// What an HTTP route can see of the server.
pub struct ServerInfo<'a> {
    pub hub: &'a Hub,
    pub started: Instant,
}

/// A plain HTTP answer (always sent with `Connection: close`). `status` must
/// be 200-599 and every header a token name with a value free of control
/// characters, none of `Content-Type`, `Content-Length`, `Transfer-Encoding`,
/// `Connection` (set `content_type` instead): otherwise the client gets
/// `500 internal_error` and a warning is logged.
pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A 200 response with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }

    /// Why this response may not be sent as it is, if it may not.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(200..=599).contains(&self.status) {
            return Err(format!(
                "status {} is not a final status (200-599)",
                self.status
            ));
        }
        check_header("Content-Type", self.content_type, &[]).map_err(|e| e.to_string())?;
        self.headers
            .iter()
            .try_for_each(|(name, value)| check_header(name, value, RESPONSE_HEADERS))
            .map_err(|e: HeaderError| e.to_string())
    }
}

/// A plain HTTP route. Runs on a shard: keep it quick.
pub trait HttpHandler: Send + Sync + 'static {
    fn handle(&self, req: &RequestHead, server: &ServerInfo<'_>) -> HttpResponse;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(pattern: &str) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(pattern.to_owned()),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == path,
            Pattern::Prefix(p) => path.starts_with(p.as_str()) && path.len() > p.len(),
        }
    }
}

/// A list of routes, searched in registration order.
struct Table<H: ?Sized> {
    entries: Vec<(Pattern, Arc<H>)>,
}

impl<H: ?Sized> Default for Table<H> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<H: ?Sized> Table<H> {
    fn add(&mut self, pattern: &str, handler: Arc<H>) {
        self.entries.push((Pattern::parse(pattern), handler));
    }

    fn find(&self, path: &str) -> Option<usize> {
        self.entries.iter().position(|(p, _)| p.matches(path))
    }
}

/// Every route of a server.
#[derive(Default)]
pub struct Routes {
    ws: Table<dyn Handler>,
    http: Table<dyn HttpHandler>,
}

impl Routes {
    pub(crate) fn add_ws(&mut self, pattern: &str, handler: Arc<dyn Handler>) {
        self.ws.add(pattern, handler);
    }

    pub(crate) fn add_http(&mut self, pattern: &str, handler: Arc<dyn HttpHandler>) {
        self.http.add(pattern, handler);
    }

    pub(crate) fn find_ws(&self, path: &str) -> Option<usize> {
        self.ws.find(path)
    }

    pub(crate) fn ws_handler(&self, index: usize) -> &Arc<dyn Handler> {
        &self.ws.entries[index].1
    }

    pub(crate) fn find_http(&self, path: &str) -> Option<&Arc<dyn HttpHandler>> {
        self.http.find(path).map(|i| &self.http.entries[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_patterns() {
        assert!(Pattern::parse("/echo").matches("/echo"));
        assert!(!Pattern::parse("/echo").matches("/echo/x"));
        let p = Pattern::parse("/ocpp/*");
        assert!(p.matches("/ocpp/CP-1"));
        assert!(!p.matches("/ocpp/"));
        assert!(!p.matches("/ocp"));
    }
}
