//! Timers a handler sets on its connection (`ConnCtx::set_timer`), kept per
//! shard in one min-heap by due time and fired by the shard's periodic tick
//! (so a timer fires within one tick, at most 250 ms, after it is due).
//! Timers go with their connection: once as many connections have gone as
//! half the heap holds, the heap keeps only the live connections' timers, so
//! it never holds much more than the open connections set (a timer due in a
//! year on a connection gone in a second is not kept for a year), at an
//! amortised constant cost per connection gone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::hub::ConnId;

/// One shard's handler timers.
pub(crate) struct HandlerTimers {
    /// (due ms, order of setting, connection, token), soonest first.
    heap: BinaryHeap<Reverse<(u64, u64, ConnId, u64)>>,
    set: u64,
    /// Connections gone since the heap was last swept.
    gone: usize,
    /// The shard's clock: due times are milliseconds since it started.
    clock: Instant,
}

impl HandlerTimers {
    pub(crate) fn new(clock: Instant) -> Self {
        Self {
            heap: BinaryHeap::new(),
            set: 0,
            gone: 0,
            clock,
        }
    }

    /// Sets a timer for connection `id`, due `after_ms` from now. The clock
    /// is read here, not taken from the shard's last reading, which is as
    /// old as the batch of completions being handled: a timer set late in a
    /// busy batch would fire early.
    pub(crate) fn set(&mut self, id: ConnId, after_ms: u64, token: u64) {
        let now = self.clock.elapsed().as_millis() as u64;
        self.set_at(now, id, after_ms, token);
    }

    /// Sets a timer at shard time `now` (ms). Due one millisecond later than
    /// `now + after_ms`: `now` is rounded down, and the timer must not fire
    /// before `after_ms` has passed.
    fn set_at(&mut self, now: u64, id: ConnId, after_ms: u64, token: u64) {
        self.set += 1;
        let due = now.saturating_add(after_ms).saturating_add(1);
        self.heap.push(Reverse((due, self.set, id, token)));
    }

    /// A connection went: once as many have gone as half the heap holds,
    /// keeps only the timers of connections `live` still knows.
    pub(crate) fn connection_gone(&mut self, live: impl Fn(ConnId) -> bool) {
        self.gone += 1;
        if self.gone * 2 >= self.heap.len() {
            self.heap.retain(|Reverse((_, _, id, _))| live(*id));
            self.gone = 0;
        }
    }

    /// Timers held (some may belong to connections gone since the last sweep).
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Takes the timers due by `now`, in due order (ties in setting order).
    pub(crate) fn take_due(&mut self, now: u64) -> Vec<(ConnId, u64)> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _, id, token))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            due.push((id, token));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_in_order() {
        let mut timers = HandlerTimers::new(Instant::now());
        let (a, b) = (ConnId::from_u64(1), ConnId::from_u64(2));
        timers.set_at(0, a, 100, 1);
        timers.set_at(0, b, 50, 2);
        timers.set_at(0, a, 50, 3);
        assert!(
            timers.take_due(50).is_empty(),
            "not before after_ms has passed"
        );
        assert_eq!(timers.take_due(60), vec![(b, 2), (a, 3)]);
        timers.set_at(200, b, 0, 4);
        assert_eq!(timers.take_due(201), vec![(a, 1), (b, 4)]);
    }

    #[test]
    fn the_timers_of_connections_gone_are_swept_at_constant_amortised_cost() {
        let mut timers = HandlerTimers::new(Instant::now());
        let ids: Vec<ConnId> = (1..=1000).map(ConnId::from_u64).collect();
        for &id in &ids {
            timers.set_at(0, id, 3_600_000, 1);
        }
        let keep = ConnId::from_u64(5000);
        timers.set_at(0, keep, 3_600_000, 7);
        let mut live: std::collections::HashSet<ConnId> = ids.iter().copied().collect();
        live.insert(keep);
        let mut swept = 0;
        for id in &ids {
            live.remove(id);
            let before = timers.len();
            timers.connection_gone(|id| live.contains(&id));
            swept += usize::from(timers.len() < before);
        }
        assert_eq!(timers.len(), 1, "only the live connection's timer is left");
        assert!(swept <= 12, "each sweep halves the heap: {swept} sweeps");
        assert_eq!(timers.take_due(u64::MAX), vec![(keep, 7)]);
    }
}
