//! The route table the shards consult: which WebSocket [`Handler`] answers a
//! path, and which paths the control plane serves over plain HTTP (so a
//! plain request on a path both share goes there). Built-in: `/echo`.
//! WebSocket patterns are exact paths, or prefixes written with a trailing
//! `/*`; HTTP paths use the control plane's syntax (`/ocpp/{id}/commands`).

mod echo;

use std::sync::Arc;

pub use echo::Echo;

use crate::handler::Handler;

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

/// An HTTP route's path: literal segments, `{name}` for any one segment and
/// a final `{*name}` for the rest of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpPath(Vec<String>);

impl HttpPath {
    fn matches(&self, path: &str) -> bool {
        let mut have = path.split('/');
        for want in &self.0 {
            if want.starts_with("{*") {
                return have.next().is_some_and(|s| !s.is_empty());
            }
            match have.next() {
                Some(seg) if want.starts_with('{') => {
                    if seg.is_empty() {
                        return false;
                    }
                }
                Some(seg) if seg == want => {}
                _ => return false,
            }
        }
        have.next().is_none()
    }
}

/// WebSocket routes a server can match.
pub(crate) const MAX_WS_ROUTES: usize = 1 << 16;

/// Every route of a server.
#[derive(Default)]
pub struct Routes {
    /// Each WebSocket route's pattern as written, how it matches, its handler.
    ws: Vec<(Arc<str>, Pattern, Arc<dyn Handler>)>,
    http: Vec<HttpPath>,
}

impl Routes {
    /// Adds a WebSocket route; past [`MAX_WS_ROUTES`] it is never matched
    /// (a connection keeps its route's index in two bytes).
    pub(crate) fn add_ws(&mut self, pattern: &str, handler: Arc<dyn Handler>) {
        if self.ws.len() >= MAX_WS_ROUTES {
            tracing::warn!(
                pattern,
                "more than {MAX_WS_ROUTES} WebSocket routes: this one is never matched"
            );
        }
        self.ws
            .push((Arc::from(pattern), Pattern::parse(pattern), handler));
    }

    pub(crate) fn add_http(&mut self, path: &str) {
        self.http
            .push(HttpPath(path.split('/').map(str::to_owned).collect()));
    }

    /// The WebSocket route answering `path`, first registered first.
    pub(crate) fn find_ws(&self, path: &str) -> Option<usize> {
        self.ws
            .iter()
            .take(MAX_WS_ROUTES)
            .position(|(_, p, _)| p.matches(path))
    }

    pub(crate) fn ws_handler(&self, index: usize) -> &Arc<dyn Handler> {
        &self.ws[index].2
    }

    /// The pattern WebSocket route `index` was added with.
    pub(crate) fn ws_pattern(&self, index: usize) -> &str {
        &self.ws[index].0
    }

    /// Every WebSocket route's pattern, in registration order.
    pub(crate) fn ws_patterns(&self) -> impl Iterator<Item = Arc<str>> + '_ {
        self.ws.iter().map(|(pattern, _, _)| pattern.clone())
    }

    /// Whether the control plane serves `path`.
    pub(crate) fn has_http(&self, path: &str) -> bool {
        self.http.iter().any(|p| p.matches(path))
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

    #[test]
    fn http_paths_with_parameters() {
        let mut routes = Routes::default();
        routes.add_http("/ocpp/{id}/commands");
        routes.add_http("/health");
        routes.add_http("/files/{*rest}");
        assert!(routes.has_http("/ocpp/CP-1/commands"));
        assert!(!routes.has_http("/ocpp//commands"));
        assert!(!routes.has_http("/ocpp/CP-1"));
        assert!(!routes.has_http("/ocpp/CP-1/commands/x"));
        assert!(routes.has_http("/health"));
        assert!(!routes.has_http("/health/"));
        assert!(routes.has_http("/files/a/b"));
        assert!(!routes.has_http("/files/"));
    }
}
