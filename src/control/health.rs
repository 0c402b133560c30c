//! `GET /health` and `/ws/health` (public): liveness with the open connection count and uptime, in the
//! contract's shape `{"status","timestamp","connections","uptime"}`; `503` with status `draining`
//! once shutdown began, so a load balancer takes the node out while it drains.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::ServerView;

/// The health route's handler.
pub(super) async fn health(Extension(server): Extension<ServerView>) -> (StatusCode, Json<Value>) {
    let (status, word) = if server.hub.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "healthy")
    };
    let body = Json(json!({
        "status": word,
        "timestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "connections": server.hub.stats().connections,
        "uptime": format_uptime(server.started.elapsed()),
    }));
    (status, body)
}

/// Formats a duration like Go's `Duration.String()` at second precision:
/// `45s`, `5m0s`, `2h30m15s`.
fn format_uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_formats_like_go() {
        assert_eq!(format_uptime(Duration::from_secs(0)), "0s");
        assert_eq!(format_uptime(Duration::from_secs(45)), "45s");
        assert_eq!(format_uptime(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_uptime(Duration::from_secs(9015)), "2h30m15s");
    }
}
