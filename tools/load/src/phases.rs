//! A worker thread's life, phase by phase: connect its share (bounded
//! handshakes, for ocpp handshakes and boots, in flight), meet the other threads (fanout and soak: then
//! connect the publishers and meet again), run the mode's work (throughput,
//! sustained, fanout, soak, ocpp, or holding), meet again, then close
//! everything with a close handshake. Every loop ends at its own deadline or
//! the run's (a hold also on SIGUSR1).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::Mode;
use crate::conn::{Role, State};
use crate::stats::{Cause, Stats};
use crate::worker::{Shared, Worker, MAX_WAIT};

/// How long in-flight messages may take to come back after sending stops.
pub const DRAIN: Duration = Duration::from_secs(5);
/// How long the close handshakes may take at the end.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// How many rendezvous a run has: after connecting (fanout, soak, realtime: after
/// the subscribers, then after the publishers; realtime: then after settling)
/// and after the work.
pub fn rendezvous_count(mode: &Mode) -> usize {
    match mode {
        Mode::Realtime(_) => 4,
        _ if mode.delivers() => 3,
        _ => 2,
    }
}

/// Runs thread `index` of the run and returns what it measured.
pub fn run_worker(index: usize, shared: Arc<Shared>) -> Stats {
    let mut w = match Worker::new(index, shared.clone()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("ringgate-load: thread {index}: {e}");
            let far = shared.deadline + crate::run::RENDEZVOUS_SLACK;
            shared.published_done.fetch_add(1, Release);
            shared.work_done.fetch_add(1, Release);
            for _ in 0..rendezvous_count(&shared.plan.mode) {
                shared
                    .rendezvous
                    .wait(far, Duration::from_millis(100), || {});
            }
            return Stats::default();
        }
    };
    w.connect_phase();
    w.rendezvous();
    if w.shared.plan.mode.delivers() {
        w.connect_publishers();
        w.rendezvous();
    }
    if let Mode::Realtime(rt) = &w.shared.plan.mode {
        let quiet = rt.settle;
        w.settle(quiet);
        w.rendezvous();
    }
    match w.shared.plan.mode.clone() {
        Mode::Storm { hold } => w.hold(hold),
        Mode::Idle {
            duration, messages, ..
        } => w.idle(duration, messages),
        Mode::Throughput { messages, duration } => w.throughput(messages, duration),
        Mode::Sustained {
            duration,
            interval,
            report_interval,
        } => w.sustained(duration, interval, report_interval),
        Mode::Fanout { rate, duration } => w.fanout(rate, duration),
        Mode::Realtime(rt) => w.fanout(rt.rate, rt.duration),
        Mode::Soak(_) => w.soak(),
        Mode::Ocpp(ocpp) => w.ocpp_work(ocpp.hold, ocpp.commands.is_some()),
    }
    w.stats.up_at_end = w.up;
    w.rendezvous();
    w.close_all();
    w.stats
}

impl Worker {
    /// Time left before `end` (capped by the run's deadline), or `None` if past it.
    pub(crate) fn left(&self, end: Instant) -> Option<Duration> {
        let end = end.min(self.shared.deadline);
        end.checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Opens this thread's share of connections (realtime: until each has
    /// joined its room).
    pub(crate) fn connect_phase(&mut self) {
        let far = self.shared.deadline;
        loop {
            while self.in_flight() < self.max_handshaking && self.opened < self.to_open {
                self.start_connect();
            }
            if self.opened >= self.to_open && self.connecting == 0 && self.awaiting_join() == 0 {
                break;
            }
            let Some(left) = self.left(far) else {
                self.abandon_handshakes();
                break;
            };
            self.turn(left.min(MAX_WAIT));
        }
    }

    /// Keeps the connections open (answering pings) for `how_long`, or
    /// until SIGUSR1.
    pub(crate) fn hold(&mut self, how_long: Duration) {
        let end = Instant::now() + how_long;
        while let Some(left) = self.left(end) {
            if self.shared.hold_stop.load(Relaxed) {
                break;
            }
            self.turn(left.min(MAX_WAIT));
        }
    }

    /// Each open connection sends `messages` at once (their echoes checked
    /// as they come), then all hold for `how_long`.
    fn idle(&mut self, how_long: Duration, messages: u64) {
        if messages > 0 {
            self.target = messages;
            self.arm_connections(messages as usize);
            for key in self.keys_in(State::Open) {
                self.send_messages(key, messages);
            }
        }
        self.hold(how_long);
        self.give_up_in_flight();
    }

    /// Gives every open connection a ring of `window` send times.
    fn arm_connections(&mut self, ring: usize) {
        for (_, conn) in self.conns.iter_mut() {
            conn.msgs.ring = vec![0; ring].into_boxed_slice();
        }
    }

    /// Pipelined echo: fill each window, refill on every echo.
    fn throughput(&mut self, messages: Option<u64>, duration: Option<Duration>) {
        self.target = messages.unwrap_or(u64::MAX);
        self.arm_connections(self.window as usize);
        let open = self.keys_in(State::Open);
        self.unfinished = open.len() as u64;
        self.sending = true;
        for key in open {
            let n = self.window.min(self.target);
            if self.conns.contains(key) {
                self.send_messages(key, n);
            }
        }
        let send_end = duration.map(|d| Instant::now() + d);
        let mut drain_end = None;
        loop {
            let now = Instant::now();
            if self.sending && send_end.is_some_and(|end| now >= end) {
                self.sending = false;
                drain_end = Some(now + DRAIN);
            }
            let all_done = match messages {
                Some(_) => self.unfinished == 0,
                None => !self.sending && self.outstanding == 0,
            };
            if all_done || self.up == 0 {
                break;
            }
            let end = drain_end.or(send_end).unwrap_or(self.shared.deadline);
            let Some(left) = self.left(end) else { break };
            self.turn(left.min(MAX_WAIT));
        }
        self.sending = false;
        self.give_up_in_flight();
    }

    /// One message per connection every `interval`, phases spread evenly.
    fn sustained(&mut self, duration: Duration, interval: Duration, report: Duration) {
        self.target = u64::MAX;
        self.arm_connections(self.window as usize);
        let start_ns = self.now_ns();
        self.slots = Some((start_ns, report.as_nanos().max(1) as u64));
        let interval_ns = interval.as_nanos().max(1) as u64;
        let end_ns = start_ns + duration.as_nanos() as u64;
        let open = self.keys_in(State::Open);
        let n = open.len().max(1) as u64;
        let mut due: BinaryHeap<Reverse<(u64, usize, u64)>> = open
            .iter()
            .enumerate()
            .map(|(i, &key)| {
                let offset = (u128::from(interval_ns) * i as u128 / u128::from(n)) as u64;
                Reverse((start_ns + offset, key, self.conns[key].id))
            })
            .collect();
        // Every entry in `due` is before the end, so the loop sends exactly
        // the scheduled messages, late ones included, unless the run's
        // deadline comes first.
        while !due.is_empty() {
            let Some(left) = self.left(self.shared.deadline) else {
                break;
            };
            let now = self.now_ns();
            while let Some(&Reverse((at, key, id))) = due.peek() {
                if at > now {
                    break;
                }
                due.pop();
                let Some(conn) = self.conns.get(key) else {
                    continue;
                };
                if conn.id != id || conn.state != State::Open {
                    continue;
                }
                if conn.msgs.in_flight() < self.window {
                    let slot = ((now - start_ns) / self.slots.map_or(1, |s| s.1)) as usize;
                    self.stats.count_slot_send(slot);
                    self.send_messages(key, 1);
                } else {
                    self.stats.fail(Cause::WindowFull, 1);
                }
                if at + interval_ns < end_ns {
                    due.push(Reverse((at + interval_ns, key, id)));
                }
            }
            let next = due.peek().map_or(MAX_WAIT, |r| {
                Duration::from_nanos(r.0 .0.saturating_sub(now))
            });
            self.turn(left.min(next).min(MAX_WAIT));
        }
        let drain_end = Instant::now() + DRAIN;
        while self.outstanding > 0 && self.up > 0 {
            let Some(left) = self.left(drain_end) else {
                break;
            };
            self.turn(left.min(MAX_WAIT));
        }
        self.give_up_in_flight();
    }

    /// Counts every message still in flight as unanswered.
    fn give_up_in_flight(&mut self) {
        for (_, conn) in self.conns.iter_mut() {
            let in_flight = conn.msgs.in_flight();
            if in_flight > 0 {
                self.stats.fail(Cause::Unanswered, in_flight);
                conn.msgs.received = conn.msgs.sent;
            }
        }
        self.outstanding = 0;
    }

    /// Counts the `--expect-marker` listeners still open by the marker
    /// messages each got (the others were counted when they ended).
    fn tally_markers(&mut self) {
        for (_, conn) in self.conns.iter() {
            if let (Role::Listener(listener), State::Open | State::Closing) =
                (&conn.role, conn.state)
            {
                self.stats.marker.tally(listener.hits);
            }
        }
    }

    /// Close handshake on every connection (a soak never-reader, which
    /// cannot read the answer, is dropped); whatever is left after the grace
    /// period is simply dropped.
    fn close_all(&mut self) {
        self.closing_all = true;
        self.tally_markers();
        self.sending = false;
        self.abandon_handshakes();
        for key in self.keys_in(State::Open) {
            if self.conns[key].role.reads() {
                self.start_close(key);
            } else {
                self.drop_conn(key, None);
            }
        }
        let end = Instant::now() + CLOSE_GRACE;
        while !self.conns.is_empty() {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                break;
            };
            self.turn(left.min(MAX_WAIT));
        }
        for (_, conn) in self.conns.iter() {
            self.stats.deflate.add_codec(conn.codec.as_deref());
        }
        self.conns.clear();
    }
}
