//! The HTTP phase of a connection: collect the request head, then either
//! upgrade it to a WebSocket on a matching route (at once, or once a handler
//! that deferred its answer gives it: the connection is parked meanwhile) or
//! answer a plain HTTP route, always with the right status. Never holds more
//! than the header cap.

use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::compression::Negotiated;
use super::conn::{Attached, ParkedUpgrade, PartialHead};
use super::{guarded, Closing, Phase, Shard, OVERLOADED};
use crate::config::Compression;
use crate::handler::{Accept, Deferral, Reject, UpgradeRequest};
use crate::hub::ConnId;
use crate::logging::rate_limited;
use crate::protocol::deflate::negotiate;
use crate::protocol::frame::RSV1;
use crate::protocol::handshake::{
    accept_key, validate_upgrade, wants_upgrade, write_handshake_error, write_switching_protocols,
    UpgradeInfo,
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
                let head = pending.unwrap_or_else(|| PartialHead::boxed(data.to_vec()));
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
        let mut head = PartialHead::boxed(bytes);
        head.ticket = Some(ticket);
        conn.head = Some(head);
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
            deferral: Deferral {
                id: self.conns[key].id,
                hub: &self.shared.hub,
                room: self.parked < self.shared.config.server.max_pending_upgrades,
                taken: Cell::new(None),
                refused: Cell::new(false),
            },
        };
        let mut decision: Result<Accept, Reject> =
            Err(Reject::new(500, "internal_error", "upgrade handler failed"));
        guarded(|| decision = handler.on_upgrade(&upgrade));
        let (wanted, refused) = (
            upgrade.deferral.taken.take(),
            upgrade.deferral.refused.get(),
        );
        if refused {
            self.metrics.upgrades.busy += 1;
        }
        match decision {
            Ok(accept) if accept.deferred => {
                if let Some(wanted) = wanted {
                    return self.park(key, route, info, &req.path, rest, wanted);
                }
                rate_limited!(10, warn, path = %req.path, "upgrade handler returned Accept::deferred() without UpgradeRequest::defer(); answering 500");
                self.error_and_close(key, 500, "internal_error", "upgrade handler failed");
            }
            decision => self.finish_upgrade(key, route, &info, &req.path, decision, rest),
        }
    }

    /// Parks connection `key` until its handler's answer arrives
    /// ([`Shard::on_upgrade_answer`]), the upgrade timeout passes or the
    /// peer goes.
    fn park(
        &mut self,
        key: usize,
        route: usize,
        info: UpgradeInfo,
        path: &str,
        rest: Vec<u8>,
        wanted: Arc<AtomicBool>,
    ) {
        let wait = self.shared.config.server.upgrade_timeout.as_millis() as u64;
        let conn = &mut self.conns[key];
        conn.phase = Phase::Upgrading;
        let mut head = PartialHead::boxed(rest);
        head.parked = Some(ParkedUpgrade {
            route,
            info,
            path: path.into(),
            deadline: self.now + wait,
            wanted,
        });
        conn.head = Some(head);
        self.parked += 1;
        self.metrics.upgrades.deferred += 1;
    }

    /// Bytes arrived on a parked upgrade. A client must wait for the 101
    /// before it sends frames (RFC 6455 4.1), so only a little is kept, to
    /// be read as frames once accepted; more is answered 400.
    pub(super) fn on_parked_bytes(&mut self, key: usize, data: &[u8]) {
        let max = self.shared.config.server.max_header_bytes;
        let Some(head) = self.conns[key].head.as_mut() else {
            return;
        };
        if head.bytes.len() + data.len() <= max {
            head.bytes.extend_from_slice(data);
            return;
        }
        self.unpark(key);
        self.error_and_close(
            key,
            400,
            "bad_request",
            "frames sent before the upgrade was answered",
        );
    }

    /// The answer to a deferred upgrade arrived. An answer for a
    /// connection that has gone (or was answered by its timeout) is
    /// dropped, under the panic guard: the identity it carries is handler
    /// code.
    pub(super) fn on_upgrade_answer(&mut self, id: ConnId, decision: Result<Accept, Reject>) {
        let key = id.slot() as usize;
        let waiting = matches!(self.conns.get(key), Some(c) if c.id == id && c.phase == Phase::Upgrading && c.closing == Closing::No);
        if !waiting {
            guarded(move || drop(decision));
            return;
        }
        let Some(mut head) = self.unpark(key) else {
            return;
        };
        let Some(parked) = head.parked.take() else {
            return;
        };
        let counts = &mut self.metrics.upgrades;
        match &decision {
            Ok(_) => counts.accepted += 1,
            Err(_) => counts.rejected += 1,
        }
        let rest = std::mem::take(&mut head.bytes);
        self.finish_upgrade(
            key,
            parked.route,
            &parked.info,
            &parked.path,
            decision,
            rest,
        );
        self.mark(key);
    }

    /// A parked upgrade whose answer did not come in time: 503.
    pub(super) fn upgrade_timed_out(&mut self, key: usize) {
        if let Some(head) = self.unpark(key) {
            head.forsake();
            self.metrics.upgrades.timed_out += 1;
            self.error_and_close(
                key,
                503,
                "upgrade_timeout",
                "the upgrade was not answered in time; retry later",
            );
            self.mark(key);
        }
    }

    /// Takes connection `key` out of the parked upgrades (back to the
    /// handshake phase, to be answered); its parked state, if it was parked.
    fn unpark(&mut self, key: usize) -> Option<Box<PartialHead>> {
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Upgrading {
            return None;
        }
        conn.phase = Phase::Handshake;
        self.parked -= 1;
        conn.head.take()
    }

    /// Answers an upgrade the handler decided on (at once or later): the
    /// refusal, or the 101 and the WebSocket phase, then the bytes that
    /// came after the request head, as frames.
    fn finish_upgrade(
        &mut self,
        key: usize,
        route: usize,
        info: &UpgradeInfo,
        path: &str,
        decision: Result<Accept, Reject>,
        rest: Vec<u8>,
    ) {
        let accept = match decision {
            Ok(accept) if accept.deferred => {
                rate_limited!(10, warn, %path, "a deferred upgrade was answered with Accept::deferred(); answering 500");
                return self.error_and_close(key, 500, "internal_error", "upgrade handler failed");
            }
            Ok(accept) => match accept.check_headers() {
                Ok(()) => accept,
                Err(e) => {
                    rate_limited!(10, warn, %path, "upgrade handler's answer refused: {e}");
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
                rate_limited!(10, warn, %path, "upgrade handler rejected with status {}, which is not an error status; answering 500", reject.status);
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
