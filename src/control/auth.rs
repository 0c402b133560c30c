//! Who may use the admin routes: with `ADMIN_TOKEN` set, a request must carry
//! `Authorization: Bearer <token>` (compared in constant time; 401 with
//! `WWW-Authenticate: Bearer` otherwise); without it, only loopback peers
//! are answered (403 otherwise). Public routes never pass through here.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::errors::ApiError;

/// The rule the admin routes apply.
pub(crate) enum AdminRule {
    /// Requests must present this token (kept as a digest, so comparing
    /// takes the same time whatever the presented token's length).
    Token([u8; 20]),
    /// No token configured: loopback peers only.
    LoopbackOnly,
}

impl AdminRule {
    pub(crate) fn new(token: &str) -> Self {
        if token.is_empty() {
            AdminRule::LoopbackOnly
        } else {
            AdminRule::Token(digest(token.as_bytes()))
        }
    }

    /// `Ok` when a request from `peer` with `authorization` may pass.
    fn check(&self, peer: SocketAddr, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        match self {
            AdminRule::LoopbackOnly if peer.ip().is_loopback() => Ok(()),
            AdminRule::LoopbackOnly => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "admin routes answer loopback peers only when ADMIN_TOKEN is not set",
            )),
            AdminRule::Token(want) => {
                let presented = authorization.and_then(bearer);
                match presented {
                    Some(token) if bool::from(digest(token).ct_eq(want)) => Ok(()),
                    Some(_) => Err(unauthorized("the bearer token is not valid")),
                    None => Err(unauthorized(
                        "admin routes need Authorization: Bearer <ADMIN_TOKEN>",
                    )),
                }
            }
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

/// The token of an `Authorization: Bearer <token>` value (scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|t| !t.is_empty())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The admin routes' layer.
pub(super) async fn admin_only(
    State(rule): State<Arc<AdminRule>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match rule.check(peer, authorization) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            let challenge = e.status == StatusCode::UNAUTHORIZED;
            let mut response = e.into_response();
            if challenge {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ringgate\""),
                );
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn loopback_rule() {
        let rule = AdminRule::new("");
        assert!(rule.check(peer("127.0.0.1"), None).is_ok());
        assert!(rule.check(peer("::1"), None).is_ok());
        let e = rule.check(peer("10.0.0.5"), None).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn token_rule() {
        let rule = AdminRule::new("s3cret");
        let far = peer("10.0.0.5");
        assert!(rule.check(far, Some(b"Bearer s3cret")).is_ok());
        assert!(rule.check(far, Some(b"bearer  s3cret ")).is_ok());
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"Basic s3cret",
            b"Bearer ",
            b"",
        ] {
            let e = rule.check(far, Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        }
        // The loopback exemption does not apply once a token is set.
        let e = rule.check(peer("127.0.0.1"), None).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }
}
