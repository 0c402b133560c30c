//! The admin views of the engine: `GET /connections` (seed 000's shape,
//! paginated with `?limit=&cursor=`, gathered from every shard through the
//! hub, each shard building at most one page) and `GET /stats` (each shard's
//! copy of the counters `/metrics` sums, so the two never disagree).

use std::time::SystemTime;

use axum::extract::Query;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::ServerView;
use crate::hub::{CloseReason, ConnId, RouteMetrics, ShardMetrics};
use crate::ConnInfo;

/// Connections in a page unless `?limit=` says otherwise, and the most it may say.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
pub(super) struct Page {
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A time as the admin answers write it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

pub(super) async fn connections(
    Extension(server): Extension<ServerView>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let after = match page.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(ConnId::from_u64(text.parse().map_err(|_| {
            ApiError::bad_request("cursor must be the next_cursor of a previous page")
        })?)),
    };
    // One more than the page, to know whether another page follows.
    let shards = server
        .hub
        .run_on_all(move |shard| {
            (
                shard.connection_count(),
                shard.connections_after(after, limit + 1),
            )
        })
        .await
        .map_err(ApiError::unavailable)?;
    let total: usize = shards.iter().map(|(n, _)| n).sum();
    // Ids sort by shard first, so shard order is id order.
    let mut listed: Vec<ConnInfo> = shards.into_iter().flat_map(|(_, c)| c).collect();
    let more = listed.len() > limit;
    listed.truncate(limit);
    let next_cursor = more
        .then(|| listed.last().map(|c| c.id.to_string()))
        .flatten();
    let mut entries = Map::new();
    for c in listed {
        let key = entry_key(&entries, c.id, c.label.as_deref());
        entries.insert(
            key,
            json!({
                "connection_id": c.id.to_string(),
                "label": c.label,
                "connected_at": rfc3339(c.connected_at),
                "last_activity": rfc3339(c.last_activity),
                "remote_addr": c.remote_addr.map(|a| a.to_string()),
                "subprotocol": c.subprotocol,
                "route": c.route,
                "shard": c.id.shard(),
            }),
        );
    }
    Ok(Json(json!({
        "total_connections": total,
        "connections": entries,
        "next_cursor": next_cursor,
        "timestamp": rfc3339(SystemTime::now()),
    })))
}

/// The key a connection is listed under: its handler's label (a charge
/// point's id, seed 000's shape) when that can name no other entry, else its
/// id. A label of digits alone could be another connection's id, and a label
/// already on this page belongs to another connection (one replaced a moment
/// ago): both fall back to the id, so no connection ever hides another.
fn entry_key(entries: &Map<String, Value>, id: ConnId, label: Option<&str>) -> String {
    match label {
        Some(label)
            if !label.bytes().all(|b| b.is_ascii_digit()) && !entries.contains_key(label) =>
        {
            label.to_owned()
        }
        _ => id.to_string(),
    }
}

/// `GET /stats`: each shard's figures from the copy `/metrics` sums too
/// ([`crate::ShardCtx::metrics`]), so the two always agree.
pub(super) async fn stats(
    Extension(server): Extension<ServerView>,
) -> Result<Json<Value>, ApiError> {
    let shards = server
        .shard_figures()
        .await
        .map_err(ApiError::unavailable)?
        .answers;
    let total = |each: fn(&RouteMetrics) -> u64, m: &ShardMetrics| -> u64 {
        m.routes.iter().map(each).sum()
    };
    let per_shard: Vec<Value> = shards
        .iter()
        .map(|m| {
            let closed: Map<String, Value> = CloseReason::ALL
                .iter()
                .map(|&r| (r.name().to_owned(), json!(m.closed[r as usize])))
                .collect();
            json!({
                "shard": m.shard,
                "connections": total(|r| r.open, m),
                "messages_in": total(|r| r.messages_in, m),
                "messages_out": total(|r| r.messages_out, m),
                "mailbox_rejected": m.mailbox_rejected,
                "closed": closed,
            })
        })
        .collect();
    let connections: u64 = shards.iter().map(|m| total(|r| r.open, m)).sum();
    Ok(Json(json!({
        "connections": connections,
        "http_connections": server.http_gate.open(),
        "uptime_seconds": server.started.elapsed().as_secs(),
        "shards": per_shard,
        "timestamp": rfc3339(SystemTime::now()),
    })))
}
