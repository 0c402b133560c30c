//! The worker's side of an ocpp run: each charge point's next CALL (its
//! BootNotification as soon as it is open, then its StatusNotification and
//! heartbeats), the heartbeat timers, and the work phase: turn until every
//! charge point here has made all its CALLs and had them answered, then
//! hold (and with `--commands`, answer until the last command is back). Connecting (with the boots counted in flight) is `phases`' connect
//! phase; the replies are read by `ocpp::OcppSink`.

use std::cmp::Reverse;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::{Duration, Instant};

use crate::cli::Mode;
use crate::conn::{Role, State};
use crate::ocpp::Next;
use crate::stats::Cause;
use crate::worker::{Worker, MAX_WAIT};

/// How often the work phase counts the charge points not done yet.
const LOOK_EVERY: Duration = Duration::from_millis(10);

impl Worker {
    /// Sends charge point `key`'s next CALL if it is due now, or sets a
    /// timer for its next heartbeat.
    pub(crate) fn ocpp_step(&mut self, key: usize) {
        let Mode::Ocpp(plan) = &self.shared.plan.mode else {
            return;
        };
        let interval_ns = plan.heartbeat_interval.as_nanos() as u64;
        let now = self.now_ns();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Role::ChargePoint(cp) = &mut conn.role else {
            return;
        };
        if conn.state != State::Open {
            return;
        }
        match cp.next(now, interval_ns) {
            Next::Call(action) => {
                self.tx.clear();
                cp.call(action, now, self.spec.mask, &mut self.tx);
                conn.msgs.sent += 1;
                self.outstanding += 1;
                self.stats.sent += 1;
                if !conn.send(&self.tx) {
                    self.drop_conn(key, Some(Cause::IoError));
                }
            }
            Next::At(at) if !cp.timer_set => {
                cp.timer_set = true;
                self.ocpp_timers.push(Reverse((at, key, conn.id)));
            }
            Next::At(_) | Next::Waiting | Next::Done => {}
        }
    }

    /// Steps the charge points whose heartbeat is due.
    pub(crate) fn ocpp_timers_due(&mut self) {
        let now = self.now_ns();
        while let Some(&Reverse((at, key, id))) = self.ocpp_timers.peek() {
            if at > now {
                break;
            }
            self.ocpp_timers.pop();
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.id == id) else {
                continue;
            };
            if let Role::ChargePoint(cp) = &mut conn.role {
                cp.timer_set = false;
            }
            self.ocpp_step(key);
        }
    }

    /// How long until the next heartbeat timer, if one is set.
    pub(crate) fn ocpp_next_timer(&self) -> Option<Duration> {
        let Reverse((at, _, _)) = self.ocpp_timers.peek()?;
        Some(Duration::from_nanos(at.saturating_sub(self.now_ns())))
    }

    /// Turns until every open charge point here is done (or the run's
    /// deadline), then holds for `hold`; with `--commands`, then keeps
    /// answering them until the main thread says they are all back.
    pub(crate) fn ocpp_work(&mut self, hold: Duration, commands: bool) {
        let mut last_look: Option<Instant> = None;
        loop {
            if last_look.is_none_or(|at| at.elapsed() >= LOOK_EVERY) {
                last_look = Some(Instant::now());
                if self.ocpp_unfinished() == 0 {
                    break;
                }
            }
            let Some(left) = self.left(self.shared.deadline) else {
                break;
            };
            self.turn(left.min(LOOK_EVERY).min(MAX_WAIT));
        }
        self.hold(hold);
        if commands {
            self.shared.work_done.fetch_add(1, Release);
            while !self.shared.commands_done.load(Acquire) {
                let Some(left) = self.left(self.shared.deadline) else {
                    break;
                };
                self.turn(left.min(MAX_WAIT));
            }
        }
    }

    /// Open charge points with a CALL outstanding or still to make.
    fn ocpp_unfinished(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| c.state == State::Open)
            .filter(|(_, c)| matches!(&c.role, Role::ChargePoint(cp) if !cp.done()))
            .count()
    }
}
