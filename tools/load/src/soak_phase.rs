//! The worker's side of a soak run: this thread's share of the mix, kept up
//! for `--duration` by replacing every connection that ends with a new one of
//! the same behaviour; each connection's timer (a churner's end, a garbage
//! sender's garbage, a never-reader's probe and stall limit); the publisher
//! (on the thread that owns it, reopened if lost); then the drain (as in
//! fanout) and the tally of what is still open. Also the hooks the worker
//! calls when a soak connection is created, connected, upgraded or ended.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use ringgate::protocol::frame::OpCode;
use ringgate::protocol::writer::encode_client_frame;

use crate::conn::{Role, State};
use crate::fanout::{Schedule, Subscriber};
use crate::fanout_phase::Publisher;
use crate::soak::{Behaviour, End, Ending, Kind, Life, SoakPlan};
use crate::stats::Cause;
use crate::worker::{share, xorshift, Worker, MAX_WAIT};

/// How often a never-reader sends a Ping: once the server has dropped the
/// socket, the next one is answered with a reset.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a churner's close handshake, or a garbage sender's wait for the
/// server's Close, may take before the client drops the socket.
const GRACE: Duration = Duration::from_secs(5);
/// After a connection fails before its 101 (refused, timed out, answered
/// with an error), the thread opens nothing for this long: a server that is
/// down or refusing gets a few attempts a second, not a storm.
const BACK_OFF: Duration = Duration::from_secs(1);

/// What the next connection opened will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Conn(Behaviour),
    /// The publisher, reopened after it was lost.
    Publisher,
}

/// One thread's soak state, kept by its worker.
#[derive(Debug)]
pub struct SoakState {
    plan: SoakPlan,
    /// The connections to open, in order: this thread's share of the mix
    /// (shuffled), then replacements.
    pending: VecDeque<Next>,
    /// (due ns, key, id) of the connections' timers.
    timers: BinaryHeap<Reverse<(u64, usize, u64)>>,
    /// Publishing has started: new subscribers join mid-stream.
    joining: bool,
    /// The mix stopped: no more timers or replacements.
    stopped: bool,
    /// A publisher was upgraded: its (key, id), for the publishing loop.
    publisher_up: Option<(usize, u64)>,
    /// No connection is opened before this (ns since the epoch).
    back_off_until: u64,
}

impl SoakState {
    /// Thread `index` of `threads`: its share of each behaviour, shuffled
    /// with `rng`.
    pub fn new(plan: &SoakPlan, index: usize, threads: usize, rng: &mut u64) -> SoakState {
        let mut pending: Vec<Next> = Behaviour::ALL
            .iter()
            .zip(plan.mix)
            .flat_map(|(b, n)| {
                std::iter::repeat_n(Next::Conn(*b), share(n, threads, index) as usize)
            })
            .collect();
        for i in (1..pending.len()).rev() {
            pending.swap(i, (xorshift(rng) % (i as u64 + 1)) as usize);
        }
        SoakState {
            plan: plan.clone(),
            pending: pending.into(),
            timers: BinaryHeap::new(),
            joining: false,
            stopped: false,
            publisher_up: None,
            back_off_until: 0,
        }
    }
}

/// What a connection's timer does when it fires.
enum Act {
    End(End),
    Close,
    Garbage(crate::soak::Garbage),
    Probe,
    /// The server is closing the connection: give it the grace.
    Wait,
}

impl Worker {
    fn soak_state(&mut self) -> &mut SoakState {
        self.soak.as_mut().expect("a soak run")
    }

    /// A random duration in `lo..=hi`, in ns.
    fn random_ns(&mut self, lo: Duration, hi: Duration) -> u64 {
        let (lo, hi) = (lo.as_nanos() as u64, hi.as_nanos() as u64);
        lo + xorshift(&mut self.rng) % (hi.saturating_sub(lo) + 1)
    }

    /// Arms connection `key`'s timer for `due` (ns since the epoch).
    fn soak_timer(&mut self, key: usize, due: u64) {
        let id = self.conns[key].id;
        self.soak_state().timers.push(Reverse((due, key, id)));
    }

    /// The role of the next connection, from the front of the queue.
    pub(crate) fn soak_role(&mut self) -> Role {
        let random = xorshift(&mut self.rng);
        let soak = self.soak_state();
        let next = soak
            .pending
            .pop_front()
            .unwrap_or(Next::Conn(Behaviour::Polite));
        let sub = if soak.joining {
            Subscriber::joining(1)
        } else {
            Subscriber::new(1)
        };
        match next {
            Next::Publisher => Role::Publisher { index: 0 },
            Next::Conn(b) => {
                self.stats.soak.opened[b as usize] += 1;
                Role::Soak(Box::new(Life::new(Kind::draw(b, random), sub)))
            }
        }
    }

    /// TCP is up and `self.tx` holds the upgrade request: a churner leaving
    /// mid-handshake keeps only part of it and lingers up to `--lifetime-min`.
    pub(crate) fn soak_connected(&mut self, key: usize) {
        let Role::Soak(life) = &self.conns[key].role else {
            return;
        };
        if life.kind != Kind::Churn(Ending::MidHandshake) {
            return;
        }
        let cut = 1 + xorshift(&mut self.rng) % (self.tx.len() as u64 - 1);
        self.tx.truncate(cut as usize);
        let most = self.soak_state().plan.lifetime.0;
        let linger = self.random_ns(Duration::ZERO, most);
        self.soak_timer(key, self.now_ns() + linger);
    }

    /// The 101 arrived: note the publisher, or start the connection's timer.
    pub(crate) fn soak_upgraded(&mut self, key: usize) {
        let now = self.now_ns();
        let (lo, hi) = self.soak_state().plan.lifetime;
        let lifetime = self.random_ns(lo, hi);
        let conn = &mut self.conns[key];
        if let Role::Publisher { .. } = conn.role {
            let id = conn.id;
            self.soak_state().publisher_up = Some((key, id));
            return;
        }
        let Role::Soak(life) = &mut conn.role else {
            return;
        };
        life.upgraded_ns = Some(now);
        let due = match life.kind {
            Kind::Polite => return,
            Kind::Silent => now + PROBE_EVERY.as_nanos() as u64,
            Kind::Churn(_) | Kind::Garbage(_) => now + lifetime,
        };
        self.soak_timer(key, due);
    }

    /// A connection ended (`conn` is its role, close code and cause): count
    /// it and queue its replacement. Nothing is counted once every
    /// connection is being closed at the end of the run.
    pub(crate) fn soak_ended(&mut self, role: Role, close_code: Option<u16>, cause: Option<Cause>) {
        if self.closing_all {
            return;
        }
        let now = self.now_ns();
        let (next, failed_early) = match role {
            Role::Soak(life) => {
                self.stats.soak.ended(&life, close_code, cause, now);
                let failed_early = life.upgraded_ns.is_none() && life.end.is_none();
                (Next::Conn(life.kind.behaviour()), failed_early)
            }
            Role::Publisher { .. } => {
                self.stats.soak.publisher_lost += 1;
                if let Some(cause) = cause {
                    self.stats.fail(cause, 1);
                }
                (Next::Publisher, cause.is_some())
            }
            _ => return,
        };
        let soak = self.soak_state();
        if failed_early {
            soak.back_off_until = now + BACK_OFF.as_nanos() as u64;
        }
        match next {
            _ if soak.stopped => {}
            Next::Publisher => soak.pending.push_front(next),
            Next::Conn(_) => soak.pending.push_back(next),
        }
    }

    /// Runs every timer that is due (each turn, until the mix stops).
    pub(crate) fn soak_timers(&mut self) {
        let now = self.now_ns();
        loop {
            let soak = self.soak_state();
            if soak.stopped {
                return;
            }
            match soak.timers.peek() {
                Some(&Reverse((due, key, id))) if due <= now => {
                    soak.timers.pop();
                    if self.conns.get(key).is_some_and(|c| c.id == id) {
                        self.soak_act(key, now);
                    }
                }
                _ => return,
            }
        }
    }

    /// Connection `key`'s timer fired.
    fn soak_act(&mut self, key: usize, now: u64) {
        let stall_ns = self.soak_state().plan.stall_limit.as_nanos() as u64;
        let conn = &mut self.conns[key];
        let state = conn.state;
        let Role::Soak(life) = &mut conn.role else {
            return;
        };
        let stalled = life.upgraded_ns.map_or(0, |at| now.saturating_sub(at));
        let act = if life.acted {
            // The grace after its action (or after the server's Close) ran out.
            Act::End(if state == State::Open {
                End::NoClose
            } else {
                End::CloseTimeout
            })
        } else {
            match (life.kind, state) {
                (Kind::Churn(Ending::MidHandshake), _) => Act::End(End::LeftMidHandshake),
                (_, State::Closing) => Act::Wait,
                (Kind::Churn(Ending::Drop), _) => Act::End(End::Dropped),
                (Kind::Churn(Ending::Close), _) => Act::Close,
                (Kind::Garbage(g), _) => Act::Garbage(g),
                (Kind::Silent, _) if stalled >= stall_ns => Act::End(End::NotCutOff),
                (Kind::Silent, _) => Act::Probe,
                (Kind::Polite, _) => return,
            }
        };
        life.acted |= matches!(act, Act::Close | Act::Garbage(_) | Act::Wait);
        let grace = now + GRACE.as_nanos() as u64;
        match act {
            Act::End(end) => {
                life.end = Some(end);
                self.drop_conn(key, None);
            }
            Act::Wait => self.soak_timer(key, grace),
            Act::Close => {
                self.soak_timer(key, grace);
                self.start_close(key);
            }
            Act::Garbage(g) => {
                self.soak_timer(key, grace);
                self.tx.clear();
                g.append(&mut self.tx, self.spec.mask);
                self.send_tx(key);
            }
            Act::Probe => {
                self.soak_timer(key, now + PROBE_EVERY.as_nanos() as u64);
                self.tx.clear();
                encode_client_frame(&mut self.tx, true, OpCode::Ping, b"", self.spec.mask);
                self.send_tx(key);
            }
        }
    }

    /// Writes `self.tx` on connection `key`; a write error ends it.
    fn send_tx(&mut self, key: usize) {
        if !self.conns[key].send(&self.tx) {
            self.drop_conn(key, Some(Cause::IoError));
        }
    }

    /// Opens queued connections while handshakes are below the limit
    /// (unless backing off).
    fn open_pending(&mut self) {
        if self.now_ns() < self.soak_state().back_off_until {
            return;
        }
        while self.connecting < self.max_handshaking {
            let before = self.soak_state().pending.len();
            if before == 0 {
                break;
            }
            self.start_connect();
            if self.soak_state().pending.len() == before {
                // No socket (it was counted): try again next turn.
                break;
            }
        }
    }

    /// Runs the mix for `--duration` while the publisher (if this thread
    /// owns it) broadcasts, then drains and counts what is still open.
    pub(crate) fn soak(&mut self) {
        let plan = self.soak_state().plan.clone();
        let owns_publisher = share(1, self.shared.plan.threads, self.index) == 1;
        self.opening_publishers = false;
        let soak = self.soak_state();
        soak.joining = true;
        let mut pubs = Vec::new();
        if owns_publisher {
            if soak.publisher_up.is_none() {
                soak.pending.push_front(Next::Publisher);
            }
            let schedule = Schedule::new(plan.rate, plan.duration, 0, 1);
            pubs.push(Publisher::new(usize::MAX, u64::MAX, 0, schedule));
        }
        let start_ns = self.now_ns();
        let end = Instant::now() + plan.duration;
        while let Some(left) = self.left(end) {
            if let (Some((key, id)), Some(p)) =
                (self.soak_state().publisher_up.take(), pubs.first_mut())
            {
                p.reopened(key, id);
            }
            let next_ns = self.publish_due(&mut pubs, self.now_ns() - start_ns);
            self.open_pending();
            let wait = Duration::from_nanos(next_ns.saturating_sub(self.now_ns() - start_ns));
            self.turn(wait.min(left).min(MAX_WAIT));
        }
        self.soak_state().stopped = true;
        self.finish_publishing(&mut pubs);
        let published: Vec<u64> = self
            .shared
            .published
            .iter()
            .map(|p| p.load(Relaxed))
            .collect();
        for (_, conn) in self.conns.iter() {
            if let (Role::Soak(life), State::Open) = (&conn.role, conn.state) {
                self.stats.soak.up_at_end[life.kind.behaviour() as usize] += 1;
                if life.kind == Kind::Polite {
                    self.stats.soak.count_polite(&life.sub, Some(&published));
                }
            }
        }
    }
}
