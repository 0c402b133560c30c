//! Timers a handler sets on its connection (`ConnCtx::set_timer`), kept per
//! shard in one min-heap by due time and fired by the shard's periodic tick
//! (so a timer fires within one tick, at most 250 ms, after it is due).
//! A timer whose connection has gone by then is dropped unfired.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::hub::ConnId;

/// One shard's handler timers.
pub(crate) struct HandlerTimers {
    /// (due ms, order of setting, connection, token), soonest first.
    heap: BinaryHeap<Reverse<(u64, u64, ConnId, u64)>>,
    set: u64,
    /// The shard's clock: due times are milliseconds since it started.
    clock: Instant,
}

impl HandlerTimers {
    pub(crate) fn new(clock: Instant) -> Self {
        Self {
            heap: BinaryHeap::new(),
            set: 0,
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
}
