//! The WebSocket phase of a connection: run the protocol reader over received
//! bytes, answer pings and closes, inflate compressed messages, and hand
//! complete messages to the route's handler. A protocol error fails only
//! this connection, with its close code.

use std::ops::ControlFlow;

use super::{guarded, Closing, Shard};
use crate::handler::Message;
use crate::hub::CloseReason;
use crate::protocol::close::code;
use crate::protocol::frame::OpCode;
use crate::protocol::reader::Event;
use crate::protocol::utf8::as_text;
use crate::protocol::writer::{encode_close, encode_empty_close};
use crate::protocol::ProtocolError;

/// What ended a `feed` early.
enum Stop {
    /// The peer sent a close frame.
    PeerClose(Option<u16>, String),
    /// The handler asked to close (or panicked).
    HandlerClose(u16, String),
    /// A compressed message did not inflate within the limit, or its text
    /// is not UTF-8.
    Inflate(ProtocolError),
}

impl Shard {
    /// Frame bytes arrived on an open connection. Bytes after a close the
    /// handler started are still read, for the peer's close frame.
    pub(super) fn on_frame_bytes(&mut self, key: usize, data: &mut [u8]) {
        let mut offset = 0;
        while offset < data.len() && self.wants_input(key) {
            let used = self.feed_reader(key, &mut data[offset..]);
            if used == 0 {
                break;
            }
            offset += used;
        }
        self.enforce_send_limit(key);
    }

    /// One run of the reader until it ends or stops; returns the bytes used.
    fn feed_reader(&mut self, key: usize, data: &mut [u8]) -> usize {
        let handler = {
            let conn = &self.conns[key];
            self.shared.routes.ws_handler(conn.route as usize).clone()
        };
        let conn = &mut self.conns[key];
        conn.pong_deadline = 0;
        let closing = conn.closing;
        let inflate_limit = conn.reader.max_message_size();
        let mut stop = None;
        let mut messages = 0u64;
        let mut close_req = None;
        let mut handler_failed = false;
        let (reader, mut ctx) = self.split_conn(key, &mut close_req);
        let result = reader.feed(data, &mut |event| {
            let mut inflated = None;
            let msg = match event {
                Event::Text(text) => Message::Text(text),
                Event::Binary(bytes) => Message::Binary(bytes),
                Event::Compressed { .. } if closing != Closing::No => {
                    return ControlFlow::Continue(());
                }
                Event::Compressed { text, payload } => {
                    let buf =
                        match ctx
                            .shard
                            .codecs
                            .inflate(&mut ctx.deflate, payload, inflate_limit)
                        {
                            Ok(buf) => inflated.insert(buf),
                            Err(e) => {
                                stop = Some(Stop::Inflate(e.into()));
                                return ControlFlow::Break(());
                            }
                        };
                    if !text {
                        Message::Binary(buf)
                    } else if let Ok(text) = as_text(buf) {
                        Message::Text(text)
                    } else {
                        stop = Some(Stop::Inflate(ProtocolError::InvalidUtf8));
                        return ControlFlow::Break(());
                    }
                }
                Event::Ping(payload) => {
                    if closing == Closing::No {
                        ctx.sendq.push_frame(OpCode::Pong, payload);
                    }
                    return ControlFlow::Continue(());
                }
                Event::Pong(_) => return ControlFlow::Continue(()),
                Event::Close(frame) => {
                    stop = Some(Stop::PeerClose(frame.code, frame.reason.to_owned()));
                    return ControlFlow::Break(());
                }
            };
            if closing != Closing::No {
                // After our close frame, data is read and dropped (RFC 6455 5.5.1).
                return ControlFlow::Continue(());
            }
            messages += 1;
            if !guarded(|| handler.on_message(&mut ctx, msg)) {
                handler_failed = true;
                *ctx.shard.close = Some((code::INTERNAL_ERROR, "handler failed".to_owned()));
            }
            if let Some(buf) = inflated {
                ctx.shard.codecs.recycle(buf);
            }
            match ctx.shard.close.take() {
                Some((code, reason)) => {
                    stop = Some(Stop::HandlerClose(code, reason));
                    ControlFlow::Break(())
                }
                None => ControlFlow::Continue(()),
            }
        });
        let sent = ctx.sent;
        let route = &mut self.metrics.routes[self.conns[key].route as usize];
        route.messages_in += messages;
        route.messages_out += sent;
        if handler_failed {
            self.count_close(CloseReason::HandlerFailed);
        }
        match (result, stop) {
            (Err(e), _) | (Ok(_), Some(Stop::Inflate(e))) => {
                self.count_close(CloseReason::ProtocolError);
                self.fail(key, e.close_code(), &e.to_string());
                data.len()
            }
            (Ok(used), Some(Stop::PeerClose(code, reason))) => {
                self.on_peer_close(key, code, &reason);
                used
            }
            (Ok(used), Some(Stop::HandlerClose(code, reason))) => {
                let wait = self.close_wait_ms();
                self.start_close(key, code, &reason, wait);
                used
            }
            (Ok(used), None) => used,
        }
    }

    /// The peer's close frame: echo it (unless we started the close) and close
    /// TCP once the reply is written.
    fn on_peer_close(&mut self, key: usize, code: Option<u16>, reason: &str) {
        let deadline = self.now + self.close_wait_ms();
        let conn = &mut self.conns[key];
        if conn.closing == Closing::No {
            let mut frame = Vec::with_capacity(4);
            match code {
                Some(c) => encode_close(&mut frame, c, ""),
                None => encode_empty_close(&mut frame),
            }
            conn.sendq.push_bytes(&frame);
        }
        conn.closing = Closing::AfterFlush { deadline };
        self.metrics
            .count_close_received(code.unwrap_or(code::NO_STATUS));
        self.notify_close(key, code.or(Some(code::NO_STATUS)), reason);
    }
}
