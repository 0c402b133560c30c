//! Admin request bodies are JSON and say so: a request with a body must
//! declare `Content-Type: application/json` (415 otherwise). A page of another
//! site can send `text/plain` or a form without asking first (no CORS
//! preflight), never `application/json`. Requests without a body pass. It
//! runs on a route's methods only, so a wrong method is still 405.

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;

/// The layer of every admin route's methods.
pub(super) async fn json_only(request: Request, next: Next) -> Response {
    match check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// `Ok` unless the request has a body that is not declared JSON.
fn check(headers: &HeaderMap) -> Result<(), ApiError> {
    if !has_body(headers) {
        return Ok(());
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    if media_type.is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "admin request bodies are JSON: send Content-Type: application/json",
    ))
}

/// A body follows the head: chunked, or a `Content-Length` above 0.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check_with(pairs: &[(header::HeaderName, &'static str)]) -> Result<(), ApiError> {
        let headers: HeaderMap = pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect();
        check(&headers)
    }

    #[test]
    fn bodies_must_be_declared_json() {
        use header::{CONTENT_LENGTH as LEN, CONTENT_TYPE as TYPE, TRANSFER_ENCODING as TE};
        assert!(check_with(&[]).is_ok(), "no body");
        assert!(check_with(&[(LEN, "0")]).is_ok(), "empty body");
        assert!(check_with(&[(LEN, "2"), (TYPE, "application/json")]).is_ok());
        assert!(check_with(&[(TE, "chunked"), (TYPE, "Application/JSON; charset=utf-8")]).is_ok());
        for bad in [
            &[(LEN, "2")][..],
            &[(LEN, "2"), (TYPE, "text/plain")],
            &[(TE, "chunked"), (TYPE, "application/x-www-form-urlencoded")],
            &[(LEN, "2"), (TYPE, "multipart/form-data; boundary=x")],
            &[(LEN, "2"), (TYPE, "application/jsonp")],
        ] {
            let e = check_with(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad:?}");
        }
    }
}
