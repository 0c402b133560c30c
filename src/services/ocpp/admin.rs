//! The OCPP admin API (contract, "HTTP admin"): the charge points the gateway knows, one at a
//! time or a page at a time, forgetting one (`DELETE {path}/charge-points/{id}`), and downlink
//! commands (`POST {path}/{id}/commands`), answered when the charge point answers. Handlers run
//! on the control plane; a command's wait is the request's own task, so a client that leaves
//! early only drops its interest.

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::{rfc3339, ApiError};
use crate::server::ServerBuilder;
use crate::ServerView;

use super::commands::Gateway;
use super::downlink::{Answer, CommandError};
use super::handler::CLOSE_DELETED;
use super::registry::Kept;

type Shared = Extension<Gateway>;
type Reply = Result<(StatusCode, Json<Value>), ApiError>;

/// Charge points in one page unless `?limit=` says otherwise, and the most it may say.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// The longest `timeout_ms` a command may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Adds the admin routes under `prefix` (`/ocpp`) to `builder`.
pub(super) fn routes(builder: ServerBuilder, prefix: &str, gateway: &Gateway) -> ServerBuilder {
    let with = |route: axum::routing::MethodRouter| route.layer(Extension(gateway.clone()));
    builder
        .admin(&format!("{prefix}/charge-points"), with(get(list)))
        .admin(
            &format!("{prefix}/charge-points/{{id}}"),
            with(get(one).delete(forget)),
        )
        .admin(&format!("{prefix}/{{id}}/commands"), with(post(command)))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
    connected: Option<bool>,
}

async fn list(Extension(gateway): Shared, Query(q): Query<PageQuery>) -> Reply {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let registry = &gateway.service.registry;
    let page = registry.page(
        q.after.as_deref().filter(|a| !a.is_empty()),
        limit,
        q.connected,
    );
    Ok((
        StatusCode::OK,
        Json(json!({
            "charge_points": page.stations,
            "total": page.total,
            "next": page.next,
            "timestamp": rfc3339(SystemTime::now()),
        })),
    ))
}

async fn one(Extension(gateway): Shared, Path(id): Path<String>) -> Reply {
    match gateway.service.registry.station_json(&id) {
        Some(station) => Ok((StatusCode::OK, Json(station))),
        None => Err(unknown(&id)),
    }
}

fn unknown(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_charge_point",
        format!("the gateway knows no charge point {id:?} (never connected, evicted or deleted)"),
    )
}

#[derive(Deserialize)]
struct ForgetQuery {
    #[serde(default)]
    force: bool,
}

/// Forgets a charge point: 204; 404 when unknown; 409 while it is connected, unless
/// `?force=true`, which closes its connection with [`CLOSE_DELETED`] first.
async fn forget(
    Extension(gateway): Shared,
    Extension(server): Extension<ServerView>,
    Path(id): Path<String>,
    Query(q): Query<ForgetQuery>,
) -> Result<Response, ApiError> {
    let registry = &gateway.service.registry;
    let closing = match registry.remove(&id, None) {
        Ok(()) => None,
        Err(Kept::Connected(link)) if q.force => Some(link.conn),
        Err(kept) => return Err(kept_error(&id, kept)),
    };
    if let Some(conn) = closing {
        server
            .hub
            .close(conn, CLOSE_DELETED, "deleted by an administrator")
            .map_err(ApiError::unavailable)?;
        // A connection that replaced it meanwhile keeps it.
        match registry.remove(&id, Some(conn)) {
            Ok(()) | Err(Kept::Unknown) => {}
            Err(kept) => return Err(kept_error(&id, kept)),
        }
    }
    tracing::info!(charge_point = %id, forced = closing.is_some(), "charge point deleted by an administrator");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn kept_error(id: &str, kept: Kept) -> ApiError {
    match kept {
        Kept::Unknown => unknown(id),
        Kept::Connected(_) => ApiError::new(
            StatusCode::CONFLICT,
            "connected",
            format!("charge point {id:?} is connected: add ?force=true to close its connection and delete it"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    action: String,
    #[serde(default = "empty_object")]
    payload: Value,
    timeout_ms: Option<u64>,
}

fn empty_object() -> Value {
    json!({})
}

async fn command(
    Extension(gateway): Shared,
    Extension(server): Extension<ServerView>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let cmd: CommandBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))?;
    let timeout = match cmd.timeout_ms {
        None => gateway.default_timeout(),
        Some(ms) if ms >= 1 && Duration::from_millis(ms) <= MAX_TIMEOUT => {
            Duration::from_millis(ms)
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "timeout_ms must be 1 to {}",
                MAX_TIMEOUT.as_millis()
            )))
        }
    };
    let started = std::time::Instant::now();
    let outcome = gateway
        .send_command(&server.hub, &id, &cmd.action, cmd.payload, timeout)
        .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(Answer::Result(result)) => Ok((
            StatusCode::OK,
            Json(json!({
                "status": "accepted",
                "charge_point_id": id,
                "action": cmd.action,
                "result": result,
                "duration_ms": duration_ms,
            })),
        )),
        Ok(Answer::Error {
            code,
            description,
            details,
        }) => Ok((
            StatusCode::BAD_GATEWAY,
            Json(json!({
                "status": "call_error",
                "error": {
                    "code": "call_error",
                    "message": format!("the charge point answered {code}: {description}"),
                },
                "call_error": {"code": code, "description": description, "details": details},
                "charge_point_id": id,
                "action": cmd.action,
                "duration_ms": duration_ms,
            })),
        )),
        Err(e) => Err(command_error(e)),
    }
}

fn command_error(error: CommandError) -> ApiError {
    let (status, code) = match &error {
        CommandError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        CommandError::NotConnected(_) => (StatusCode::NOT_FOUND, "not_connected"),
        CommandError::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
        CommandError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        CommandError::Disconnected | CommandError::Replaced => {
            (StatusCode::BAD_GATEWAY, "disconnected")
        }
        CommandError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    ApiError::new(status, code, error.to_string())
}
