//! The HTTP phase of a connection: collect the request head, then either
//! upgrade it to a WebSocket on a matching route or answer a plain HTTP route,
//! always with the right status. Never holds more than the header cap.

use super::compression::Negotiated;
use super::conn::{Attached, PartialHead};
use super::{guarded, Closing, Phase, Shard, OVERLOADED};
use crate::config::Compression;
use crate::handler::{Accept, Reject, UpgradeRequest};
use crate::protocol::deflate::negotiate;
use crate::protocol::frame::RSV1;
use crate::protocol::handshake::{
    accept_key, validate_upgrade, wants_upgrade, write_handshake_error, write_switching_protocols,
};
use crate::protocol::http::{parse_request, write_error, RequestHead};
use crate::protocol::reader::{MessageReader, ReaderLimits};

impl Shard {
    /// Bytes of the request head arrived.
    pub(super) fn on_request_bytes(&mut self, key: usize, data: &mut [u8]) {
        let max = self.shared.config.server.max_header_bytes;
        let mut pending = self.conns[key].head.take();
        let buf: &[u8] = match pending.as_mut() {
            Some(head) => {
                head.bytes.extend_from_slice(data);
                &head.bytes
            }
            None => data,
        };
        match parse_request(buf, max) {
            Ok(None) => {
                let head = pending.unwrap_or_else(|| {
                    Box::new(PartialHead {
                        bytes: data.to_vec(),
                        ticket: None,
                    })
                });
                self.conns[key].head = Some(head);
            }
            Err(e) => self.error_and_close(key, e.status(), error_code(e.status()), &e.to_string()),
            Ok(Some((req, used))) => {
                if let Err(e) = req.check_body_framing() {
                    return self.error_and_close(
                        key,
                        e.status(),
                        error_code(e.status()),
                        &e.to_string(),
                    );
                }
                match self.websocket_route(&req) {
                    Some(route) => {
                        let rest = buf[used..].to_vec();
                        self.on_request(key, route, req, rest);
                    }
                    None => {
                        let bytes = buf.to_vec();
                        self.start_hand_off(key, bytes);
                    }
                }
            }
        }
    }

    fn respond_and_close(&mut self, key: usize, response: &[u8]) {
        let deadline = self.now + self.close_wait_ms();
        let conn = &mut self.conns[key];
        conn.sendq.push_bytes(response);
        conn.closing = Closing::AfterFlush { deadline };
    }

    /// Answers with the contract's JSON error and closes.
    fn error_and_close(&mut self, key: usize, status: u16, code: &str, message: &str) {
        self.metrics.count_handshake(status);
        let mut out = Vec::new();
        write_error(&mut out, status, code, message, &[]);
        self.respond_and_close(key, &out);
    }

    /// The WebSocket route that answers this request as an upgrade (a plain
    /// GET there gets the handshake's 400), unless an HTTP route shares its
    /// path and the request does not ask to upgrade; `None` sends it to the
    /// control plane, as every other request.
    fn websocket_route(&self, req: &RequestHead) -> Option<usize> {
        let routes = &self.shared.routes;
        let route = routes.find_ws(&req.path)?;
        (wants_upgrade(req) || !routes.has_http(&req.path)).then_some(route)
    }

    /// Starts handing connection `key` to the control plane with the bytes
    /// read so far; past the control plane's connection cap it is answered
    /// 503 here instead.
    fn start_hand_off(&mut self, key: usize, bytes: Vec<u8>) {
        let Some(ticket) = self.shared.http_gate.admit() else {
            return self.error_and_close(
                key,
                503,
                "http_busy",
                "too many HTTP connections; try again later",
            );
        };
        let conn = &mut self.conns[key];
        conn.phase = Phase::HandOff;
        conn.head = Some(Box::new(PartialHead {
            bytes,
            ticket: Some(ticket),
        }));
    }

    fn on_request(&mut self, key: usize, route: usize, req: RequestHead, rest: Vec<u8>) {
        let info = match validate_upgrade(&req) {
            Ok(info) => info,
            Err(e) => {
                let mut out = Vec::new();
                write_handshake_error(&mut out, &e);
                self.metrics.count_handshake(e.status());
                return self.respond_and_close(key, &out);
            }
        };
        if self.conns[key].reserve {
            // Past MAX_CONNECTIONS: the reserve is for health and admin requests.
            self.metrics.count_handshake(503);
            return self.respond_and_close(key, &OVERLOADED);
        }
        let handler = self.shared.routes.ws_handler(route).clone();
        let upgrade = UpgradeRequest {
            head: &req,
            info: &info,
            peer: self.peer(key),
        };
        let mut decision: Result<Accept, Reject> =
            Err(Reject::new(500, "internal_error", "upgrade handler failed"));
        guarded(|| decision = handler.on_upgrade(&upgrade));
        let accept = match decision {
            Ok(accept) => match accept.check_headers() {
                Ok(()) => accept,
                Err(e) => {
                    tracing::warn!(path = %req.path, "upgrade handler's answer refused: {e}");
                    guarded(move || drop(accept));
                    return self.error_and_close(
                        key,
                        500,
                        "internal_error",
                        "upgrade handler failed",
                    );
                }
            },
            Err(reject) if reject.has_error_status() => {
                return self.error_and_close(key, reject.status, &reject.code, &reject.message);
            }
            Err(reject) => {
                tracing::warn!(path = %req.path, "upgrade handler rejected with status {}, which is not an error status; answering 500", reject.status);
                return self.error_and_close(key, 500, "internal_error", "upgrade handler failed");
            }
        };
        let protocol = accept
            .protocol
            .filter(|p| info.protocols.iter().any(|offered| offered == p));
        let mode = accept
            .compression
            .unwrap_or_else(|| self.shared.config.deflate_mode(Compression::Default));
        let deflate = negotiate(&info.extensions, mode);
        let mut out = Vec::with_capacity(160);
        write_switching_protocols(
            &mut out,
            &accept_key(&info.key),
            protocol.as_deref(),
            deflate.as_ref().map(|(_, response)| response.as_str()),
            &accept.headers,
        );
        let (negotiated, dedicated) = deflate.map_or((Negotiated::Off, None), |(params, _)| {
            Negotiated::new(mode, params)
        });
        let attached = Attached::boxed(protocol, accept.identity, accept.label, dedicated);
        self.open(
            key,
            route as u16,
            attached,
            accept.max_message_size,
            negotiated,
            &out,
        );
        if !rest.is_empty() {
            let mut rest = rest;
            self.on_frame_bytes(key, &mut rest);
        }
    }

    /// Switches a connection to the WebSocket phase and runs `on_open`.
    fn open(
        &mut self,
        key: usize,
        route: u16,
        attached: Option<Box<Attached>>,
        max_message_size: Option<usize>,
        deflate: Negotiated,
        response: &[u8],
    ) {
        let ws = &self.shared.config.websocket;
        let limits = ReaderLimits {
            max_message_size: max_message_size.unwrap_or(ws.max_message_size),
            max_fragments: ws.max_fragments,
            allowed_rsv: if deflate == Negotiated::Off { 0 } else { RSV1 },
            ..ReaderLimits::default()
        };
        let ping_period = ws.ping_period.as_millis() as u64;
        let now = self.now;
        self.metrics.count_handshake(101);
        let counts = &mut self.metrics.routes[route as usize];
        counts.open += 1;
        counts.open_compressed += u64::from(deflate != Negotiated::Off);
        let conn = &mut self.conns[key];
        conn.sendq.push_bytes(response);
        conn.phase = Phase::Open;
        conn.route = route;
        conn.head = None;
        conn.reader = MessageReader::new(limits);
        conn.attached = attached;
        conn.deflate = deflate;
        conn.next_ping = if ping_period > 0 {
            now + ping_period
        } else {
            0
        };
        self.inbox
            .counters
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        self.callback(key, |handler, ctx| handler.on_open(ctx));
    }
}

/// The machine code for an HTTP parse failure's status.
fn error_code(status: u16) -> &'static str {
    match status {
        431 => "headers_too_large",
        _ => "bad_request",
    }
}
