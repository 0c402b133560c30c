//! Time-driven rules, checked by a periodic sweep over the shard's
//! connections: handshake deadline (slowloris), the wait of a parked
//! upgrade, heartbeat pings and pong
//! wait, idle timeout, the minimum send rate, close-handshake, flush and
//! drain deadlines. Every deadline ends in a freed slot: the driver closes
//! the socket even with a write stuck in flight.

use super::{Closing, Phase, Shard};
use crate::hub::CloseReason;
use crate::protocol::close::code;
use crate::protocol::frame::OpCode;

impl Shard {
    /// How often the driver should call [`Shard::tick`], in ms: a quarter of
    /// the shortest configured timeout, between 10 ms and 250 ms.
    pub(crate) fn tick_interval_ms(&self) -> u64 {
        let s = &self.shared.config.server;
        let ws = &self.shared.config.websocket;
        [
            s.read_timeout,
            s.write_timeout,
            s.idle_timeout,
            ws.ping_period,
            ws.pong_wait,
        ]
        .iter()
        .map(|d| d.as_millis() as u64)
        .filter(|&ms| ms > 0)
        .map(|ms| ms / 4)
        .min()
        .unwrap_or(250)
        .clamp(10, 250)
    }

    /// Applies every deadline that has passed.
    pub(crate) fn tick(&mut self) {
        let now = self.now;
        let s = &self.shared.config.server;
        let ws = &self.shared.config.websocket;
        let read_timeout = s.read_timeout.as_millis() as u64;
        let write_timeout = s.write_timeout.as_millis() as u64;
        let min_send_rate = ws.min_send_rate;
        let idle_timeout = s.idle_timeout.as_millis() as u64;
        let ping_period = ws.ping_period.as_millis() as u64;
        let pong_wait = ws.pong_wait.as_millis() as u64;
        let drain_over = matches!(self.draining_until, Some(d) if now >= d);

        let mut expired: Vec<(usize, Expiry)> = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if matches!(conn.closing, Closing::Now { .. }) {
                continue; // the driver is closing it already
            }
            let too_slow = conn.sendq.below_min_rate(now, write_timeout, min_send_rate);
            let expiry = if drain_over {
                Some(Expiry::Drop(None))
            } else if too_slow {
                Some(Expiry::Drop(Some(CloseReason::TooSlow)))
            } else {
                match (conn.phase, conn.closing) {
                    (_, Closing::AwaitPeer { deadline } | Closing::AfterFlush { deadline })
                        if now >= deadline =>
                    {
                        Some(Expiry::Drop(Some(CloseReason::CloseTimeout)))
                    }
                    (Phase::Handshake, Closing::No) if now - conn.accepted_at >= read_timeout => {
                        Some(Expiry::Drop(Some(CloseReason::HandshakeTimeout)))
                    }
                    (Phase::Upgrading, Closing::No)
                        if conn.head.as_ref().is_some_and(|h| {
                            h.parked.as_ref().is_some_and(|p| now >= p.deadline)
                        }) =>
                    {
                        Some(Expiry::UpgradeTimeout)
                    }
                    (Phase::Open, Closing::No) => {
                        if conn.pong_deadline != 0 && now >= conn.pong_deadline {
                            Some(Expiry::PongTimeout)
                        } else if idle_timeout > 0 && now - conn.last_rx >= idle_timeout {
                            Some(Expiry::Idle)
                        } else if conn.next_ping != 0 && now >= conn.next_ping {
                            conn.next_ping = now + ping_period;
                            if conn.pong_deadline == 0 {
                                conn.pong_deadline = now + pong_wait;
                                conn.sendq.push_frame(OpCode::Ping, b"");
                                Some(Expiry::Ping)
                            } else {
                                None
                            }
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            };
            if let Some(e) = expiry {
                expired.push((key, e));
            }
        }
        for (key, expiry) in expired {
            match expiry {
                Expiry::Ping => self.mark(key),
                Expiry::Drop(reason) => {
                    match reason {
                        Some(reason) => self.count_close(reason),
                        None => self.drain_cut += 1,
                    }
                    self.notify_close(key, Some(code::ABNORMAL), "timed out");
                    self.close_now(key, true);
                }
                Expiry::PongTimeout => {
                    self.count_close(CloseReason::PongTimeout);
                    self.fail(key, code::GOING_AWAY, "pong timeout");
                }
                Expiry::UpgradeTimeout => self.upgrade_timed_out(key),
                Expiry::Idle => {
                    self.count_close(CloseReason::IdleTimeout);
                    let wait = self.close_wait_ms();
                    self.start_close(key, code::NORMAL, "idle timeout", wait);
                }
            }
        }
        self.fire_handler_timers();
        self.report_accept_failures();
        self.report_closes();
        self.publish_counters();
        #[cfg(debug_assertions)]
        crate::engine::fault::check();
    }
}

/// What a passed deadline calls for.
enum Expiry {
    /// A heartbeat ping was queued.
    Ping,
    /// Close the socket without ceremony (abortively); the reason is counted
    /// (none for the end of a shutdown's drain).
    Drop(Option<CloseReason>),
    /// The peer did not answer a ping in time.
    PongTimeout,
    /// Nothing arrived for the idle timeout.
    Idle,
    /// A parked upgrade's answer did not come in time.
    UpgradeTimeout,
}
