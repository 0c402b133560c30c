//! The worker's side of a fanout run: connect this thread's publishers once
//! every subscriber is up, send each publisher's messages on its schedule for
//! `--duration`, then drain until every open subscriber has everything that
//! was published (or the grace ends) and count what never arrived. Soak and
//! realtime publish and drain with the same pieces (realtime publishers send
//! their room's JSON envelope).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use crate::cli::Mode;
use crate::conn::{Role, State};
use crate::deflate_codec::append_message;
use crate::fanout::{header, Schedule};
use crate::phases::DRAIN;
use crate::realtime::{hex_header, publish_template};
use crate::stats::Cause;
use crate::wire::MessageTemplate;
use crate::worker::{share, Worker, MAX_WAIT};

/// Longest wait between two looks at the subscribers while draining.
const DRAIN_CHECK: Duration = Duration::from_millis(2);

/// One of this thread's publishers.
pub(crate) struct Publisher {
    key: usize,
    id: u64,
    index: u32,
    schedule: Schedule,
    sent: u64,
    /// Realtime: its room's `room_message`, the header in hex; otherwise
    /// the worker's binary template carries the header as is.
    envelope: Option<MessageTemplate>,
}

impl Publisher {
    /// Publisher `index` on connection `key` (`id`), nothing sent yet.
    pub(crate) fn new(key: usize, id: u64, index: u32, schedule: Schedule) -> Publisher {
        Publisher {
            key,
            id,
            index,
            schedule,
            sent: 0,
            envelope: None,
        }
    }

    /// Goes on publishing on connection `key` (`id`), where it left off.
    pub(crate) fn reopened(&mut self, key: usize, id: u64) {
        (self.key, self.id) = (key, id);
    }
}

impl Worker {
    /// Opens this thread's share of the publishers.
    pub(crate) fn connect_publishers(&mut self) {
        let plan = &self.shared.plan;
        self.to_open += share(plan.publishers, plan.threads, self.index);
        self.opening_publishers = true;
        self.connect_phase();
    }

    /// Realtime: turns until no member (of any thread) has heard from the
    /// server for `quiet`, or the run's deadline; counts this thread as
    /// unsettled in the latter case.
    pub(crate) fn settle(&mut self, quiet: Duration) {
        if quiet.is_zero() {
            return;
        }
        let quiet_ns = quiet.as_nanos() as u64;
        let shared = self.shared.clone();
        let last = &shared.last_heard_ns;
        last.fetch_max(self.now_ns(), Relaxed);
        let mut heard = self.stats.realtime.heard();
        loop {
            let now = self.now_ns();
            if self.stats.realtime.heard() != heard {
                heard = self.stats.realtime.heard();
                last.fetch_max(now, Relaxed);
            }
            let since = now.saturating_sub(last.load(Relaxed));
            if since >= quiet_ns {
                return;
            }
            let Some(left) = self.left(self.shared.deadline) else {
                self.stats.realtime.unsettled += 1;
                return;
            };
            let wait = Duration::from_nanos(quiet_ns - since);
            self.turn(wait.min(left).min(MAX_WAIT));
        }
    }

    /// Publishes for `duration`, then drains.
    pub(crate) fn fanout(&mut self, rate: u64, duration: Duration) {
        let plan = &self.shared.plan;
        let publishers = plan.publishers;
        let mut pubs: Vec<Publisher> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == State::Open)
            .filter_map(|(key, c)| {
                let index = c.role.publisher_index()?;
                let schedule = Schedule::new(rate, duration, index, publishers);
                let mut p = Publisher::new(key, c.id, index, schedule);
                if let (Role::Member(m), Mode::Realtime(_)) = (&c.role, &plan.mode) {
                    p.envelope = Some(publish_template(m.room, plan.payload, self.spec.mask));
                }
                Some(p)
            })
            .collect();
        let start_ns = self.now_ns();
        let end = Instant::now() + duration;
        while let Some(left) = self.left(end) {
            let next_ns = self.publish_due(&mut pubs, self.now_ns() - start_ns);
            let wait = Duration::from_nanos(next_ns.saturating_sub(self.now_ns() - start_ns));
            self.turn(wait.min(left).min(MAX_WAIT));
        }
        self.finish_publishing(&mut pubs);
    }

    /// Sends the rest of every schedule (at most one interval's worth),
    /// shares what each publisher sent, and drains.
    pub(crate) fn finish_publishing(&mut self, pubs: &mut [Publisher]) {
        if self.left(self.shared.deadline).is_some() {
            self.publish_due(pubs, u64::MAX);
        }
        for p in pubs.iter() {
            self.shared.published[p.index as usize].store(p.sent, Relaxed);
        }
        self.shared.published_done.fetch_add(1, Release);
        let published = self.drain_deliveries();
        if let Mode::Realtime(rt) = &self.shared.plan.mode {
            self.stats.realtime.expected = self.stats.realtime.expected_of(rt, &published);
        }
    }

    /// Sends what is due `elapsed_ns` into the run on every open publisher;
    /// returns when the next message is due (ns into the run, `u64::MAX`
    /// if none is left).
    pub(crate) fn publish_due(&mut self, pubs: &mut [Publisher], elapsed_ns: u64) -> u64 {
        let mut next = u64::MAX;
        for p in pubs.iter_mut() {
            let open = self
                .conns
                .get(p.key)
                .is_some_and(|c| c.id == p.id && c.state == State::Open);
            let due = p.schedule.due(elapsed_ns);
            if !open || due <= p.sent {
                if open && p.sent < p.schedule.total {
                    next = next.min(p.schedule.at(p.sent));
                }
                continue;
            }
            let now = self.now_ns();
            self.tx.clear();
            let conn = &mut self.conns[p.key];
            for seq in p.sent..due {
                let head = header(seq, now, p.index);
                let codec = conn.codec.as_deref_mut();
                match &p.envelope {
                    Some(t) => append_message(codec, t, &hex_header(&head), &mut self.tx),
                    None => append_message(codec, &self.template, &head, &mut self.tx),
                }
            }
            self.stats.sent += due - p.sent;
            p.sent = due;
            if p.sent < p.schedule.total {
                next = next.min(p.schedule.at(p.sent));
            }
            if !self.conns[p.key].send(&self.tx) {
                self.drop_conn(p.key, Some(Cause::IoError));
            }
        }
        next
    }

    /// Waits until every thread stopped publishing and every open subscriber
    /// here has all that was published, or the drain grace ends; counts the
    /// rest as `undelivered`. Returns what each publisher published.
    fn drain_deliveries(&mut self) -> Vec<u64> {
        let shared = self.shared.clone();
        let drain_end = Instant::now() + DRAIN;
        let published =
            || -> Vec<u64> { shared.published.iter().map(|p| p.load(Relaxed)).collect() };
        let mut totals = None;
        let mut last_look: Option<Instant> = None;
        loop {
            if totals.is_none() && shared.published_done.load(Acquire) >= shared.plan.threads {
                totals = Some(published());
            }
            if let Some(t) = &totals {
                // Looking is O(subscribers): at most once per DRAIN_CHECK.
                if last_look.is_none_or(|at| at.elapsed() >= DRAIN_CHECK) {
                    last_look = Some(Instant::now());
                    if self.undelivered(t) == 0 {
                        break;
                    }
                }
            }
            let Some(left) = self.left(drain_end) else {
                break;
            };
            self.turn(left.min(DRAIN_CHECK));
        }
        let totals = totals.unwrap_or_else(published);
        let missing = self.undelivered(&totals);
        if missing > 0 {
            self.stats.fail(Cause::Undelivered, missing);
        }
        totals
    }

    /// Messages of `published` that open subscribers here (fanout's, soak's
    /// polite ones, realtime members) have not had.
    fn undelivered(&self, published: &[u64]) -> u64 {
        self.conns
            .iter()
            .filter(|(_, c)| c.state == State::Open)
            .map(|(_, c)| c.role.undelivered(published))
            .sum()
    }
}
