//! The contract's error answer, `{"error":{"code","message"}}`, for every
//! status the control plane sends: [`ApiError`] for handlers, and a last
//! layer that rewrites any other error answer (a body-limit 413, a 405 from
//! the router, a rejected JSON body) into that shape, keeping its headers.
//! The same layer refuses what a handler may not answer: a 1xx status as a
//! final answer (500), a `Content-Length` that is not the body's (dropped;
//! the server writes its own).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error a route answers with: a status, a short machine-readable code
/// and a human message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 503 `unavailable`: the shards did not answer a hub call.
    pub fn unavailable(error: crate::hub::HubError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the shards did not answer: {error}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The machine code for a status nobody named.
pub(super) fn status_code_name(status: StatusCode) -> String {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large".to_owned(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace([' ', '-'], "_"),
    }
}

/// Most of a plain-text error body kept as the message.
const MESSAGE_LIMIT: usize = 1024;

/// Rewrites an error answer that is not JSON into the contract's shape,
/// after refusing a final answer that could break the connection.
pub(super) async fn json_errors(mut response: Response) -> Response {
    if response.status().is_informational() {
        tracing::warn!(
            "an HTTP handler answered {}, which is not a final status; answering 500",
            response.status()
        );
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "route failed",
        )
        .into_response();
    }
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    if let Some(declared) = declared {
        if declared != axum::body::HttpBody::size_hint(response.body()).exact() {
            tracing::warn!("an HTTP handler set a Content-Length that is not its body's; dropped");
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MESSAGE_LIMIT * 4)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let mut message: String = text.chars().take(MESSAGE_LIMIT).collect();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    let body = json!({"error": {"code": status_code_name(status), "message": message}});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names() {
        assert_eq!(
            status_code_name(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        assert_eq!(
            status_code_name(StatusCode::PAYLOAD_TOO_LARGE),
            "body_too_large"
        );
        assert_eq!(
            status_code_name(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "unsupported_media_type"
        );
    }
}
