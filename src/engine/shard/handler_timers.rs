//! Timers a handler sets on its connection (`ConnCtx::set_timer`), kept per
//! shard in one min-heap by due time and fired by the shard's periodic tick
//! (so a timer fires within one tick, at most 250 ms, after it is due).
//! A timer whose connection has gone by then is dropped unfired.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::hub::ConnId;

/// One shard's handler timers.
#[derive(Default)]
pub(crate) struct HandlerTimers {
    /// (due ms, order of setting, connection, token), soonest first.
    heap: BinaryHeap<Reverse<(u64, u64, ConnId, u64)>>,
    set: u64,
    /// The shard's clock (ms), as of its last reading.
    pub(crate) now: u64,
}

impl HandlerTimers {
    /// Sets a timer for connection `id`, due `after_ms` from now.
    pub(crate) fn set(&mut self, id: ConnId, after_ms: u64, token: u64) {
        self.set += 1;
        self.heap.push(Reverse((
            self.now.saturating_add(after_ms),
            self.set,
            id,
            token,
        )));
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
        let mut timers = HandlerTimers::default();
        let (a, b) = (ConnId::from_u64(1), ConnId::from_u64(2));
        timers.set(a, 100, 1);
        timers.set(b, 50, 2);
        timers.set(a, 50, 3);
        assert!(timers.take_due(49).is_empty());
        assert_eq!(timers.take_due(60), vec![(b, 2), (a, 3)]);
        timers.now = 200;
        timers.set(b, 0, 4);
        assert_eq!(timers.take_due(200), vec![(a, 1), (b, 4)]);
    }
}
