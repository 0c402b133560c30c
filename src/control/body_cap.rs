//! The request-body cap (`RINGGATE_HTTP_MAX_BODY`): a `Content-Length` over
//! it is answered 413 at once (before any `100 Continue`); a body that
//! passes it while streaming (chunked) is read on and thrown away, up to
//! [`DRAIN_MAX`] more bytes, and then answered 413. The draining matters:
//! hyper drops an answer whose request body was left unread mid-stream, so
//! a client would see the connection close instead of the 413.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::errors::ApiError;

/// Bytes past the cap read and thrown away so the 413 can be delivered;
/// past this the connection is simply closed.
pub(super) const DRAIN_MAX: usize = 1 << 20;

/// The body past the cap: what a handler reading the body sees.
#[derive(Debug, thiserror::Error)]
#[error("the request body is over the {0}-byte limit")]
struct TooLarge(usize);

fn too_large(limit: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the {limit}-byte limit"),
    )
    .into_response()
}

/// The layer: caps every request's body at `limit` bytes.
pub(super) async fn cap_bodies(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let over = Arc::new(AtomicBool::new(false));
    let watched = over.clone();
    let request = request.map(|body| {
        Body::new(Capped {
            inner: body,
            limit,
            seen: 0,
            over: watched,
        })
    });
    let response = next.run(request).await;
    if over.load(Ordering::Relaxed) {
        return too_large(limit);
    }
    response
}

/// A body that fails once more than `limit` bytes came, after draining.
struct Capped {
    inner: Body,
    limit: usize,
    seen: usize,
    over: Arc<AtomicBool>,
}

impl HttpBody for Capped {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        loop {
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            let fail = || Poll::Ready(Some(Err(axum::Error::new(TooLarge(this.limit)))));
            match frame {
                Some(Ok(frame)) => {
                    this.seen += frame.data_ref().map_or(0, Bytes::len);
                    if this.seen <= this.limit {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    this.over.store(true, Ordering::Relaxed);
                    if this.seen > this.limit + DRAIN_MAX {
                        return fail();
                    }
                }
                None if this.seen > this.limit => return fail(),
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
