//! Who may use the admin routes: with `ADMIN_TOKEN` set, a request must carry
//! `Authorization: Bearer <token>` (compared in constant time; 401 with
//! `WWW-Authenticate: Bearer` otherwise); without it, only the operator's own
//! requests are answered (403 otherwise): a loopback peer, on the internal
//! address when there is one, that a browser page or a proxy did not send
//! ([`LocalCaller`]). Public routes never pass through here.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::errors::ApiError;
use super::local_caller::LocalCaller;
use super::serve::Entrance;
use crate::config::Config;

/// The rule the admin routes apply.
pub(crate) enum AdminRule {
    /// Requests must present this token (kept as a digest, so comparing
    /// takes the same time whatever the presented token's length).
    Token([u8; 20]),
    /// No token configured: the operator's own requests only.
    LoopbackOnly {
        /// What such a request looks like.
        caller: LocalCaller,
        /// An internal address is configured: tokenless admin is served
        /// there only, never on the public port.
        internal_only: bool,
    },
}

impl AdminRule {
    pub(crate) fn new(config: &Config) -> Self {
        let token = &config.admin.token.0;
        if token.is_empty() {
            AdminRule::LoopbackOnly {
                caller: LocalCaller::new(config),
                internal_only: !config.admin.listen.is_empty(),
            }
        } else {
            AdminRule::Token(digest(token.as_bytes()))
        }
    }

    /// `Ok` when a request from `peer`, through `entrance`, with `headers`
    /// may pass.
    fn check(
        &self,
        peer: SocketAddr,
        entrance: Entrance,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        match self {
            AdminRule::LoopbackOnly { .. } if !peer.ip().is_loopback() => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "admin routes answer loopback peers only when ADMIN_TOKEN is not set",
            )),
            AdminRule::LoopbackOnly {
                internal_only: true,
                ..
            } if entrance == Entrance::Public => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "internal_only",
                "without ADMIN_TOKEN, admin routes answer on the internal address (RINGGATE_ADMIN_LISTEN) only",
            )),
            AdminRule::LoopbackOnly { caller, .. } => caller.check(headers),
            AdminRule::Token(want) => {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes);
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
    Extension(entrance): Extension<Entrance>,
    request: Request,
    next: Next,
) -> Response {
    match rule.check(peer, entrance, request.headers()) {
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

    fn rule(token: &str, listen: &str) -> AdminRule {
        let mut config = Config::default();
        config.admin.token.0 = token.to_owned();
        config.admin.listen = listen.to_owned();
        AdminRule::new(&config)
    }

    fn authorization(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn loopback_rule() {
        let rule = rule("", "");
        let none = HeaderMap::new();
        assert!(rule
            .check(peer("127.0.0.1"), Entrance::Public, &none)
            .is_ok());
        assert!(rule.check(peer("::1"), Entrance::Public, &none).is_ok());
        let e = rule
            .check(peer("10.0.0.5"), Entrance::Public, &none)
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn an_internal_address_takes_tokenless_admin_off_the_public_port() {
        let rule = rule("", "127.0.0.1:9090");
        let none = HeaderMap::new();
        let e = rule
            .check(peer("127.0.0.1"), Entrance::Public, &none)
            .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::FORBIDDEN, "internal_only")
        );
        assert!(rule
            .check(peer("127.0.0.1"), Entrance::Internal, &none)
            .is_ok());
    }

    #[test]
    fn token_rule() {
        let rule = rule("s3cret", "");
        let far = peer("10.0.0.5");
        let ok = |value: &[u8]| rule.check(far, Entrance::Public, &authorization(value));
        assert!(ok(b"Bearer s3cret").is_ok());
        assert!(ok(b"bearer  s3cret ").is_ok());
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"Basic s3cret",
            b"Bearer ",
            b"",
        ] {
            let e = ok(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        }
        // The loopback exemption does not apply once a token is set.
        let e = rule
            .check(peer("127.0.0.1"), Entrance::Public, &HeaderMap::new())
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }
}
