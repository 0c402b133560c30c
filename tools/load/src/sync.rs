//! The phase rendezvous between the workers and the main thread: a barrier
//! whose waits end at a deadline, so a stuck or failed worker can delay a run
//! but never hang it.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A reusable barrier for `parties` threads with deadline-bounded waits.
#[derive(Debug)]
pub struct Rendezvous {
    parties: usize,
    /// (generation, arrived in this generation)
    state: Mutex<(u64, usize)>,
    cv: Condvar,
}

impl Rendezvous {
    pub fn new(parties: usize) -> Self {
        Rendezvous {
            parties,
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
        }
    }

    /// Waits until every party arrived or `deadline` passed; calls `tick`
    /// about every `tick_every` while waiting. True if everyone arrived.
    pub fn wait(&self, deadline: Instant, tick_every: Duration, mut tick: impl FnMut()) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.1 += 1;
        if st.1 >= self.parties {
            st.0 += 1;
            st.1 = 0;
            self.cv.notify_all();
            return true;
        }
        let generation = st.0;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = tick_every.min(deadline - now);
            st = self
                .cv
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if st.0 != generation {
                return true;
            }
            drop(st);
            tick();
            st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.0 != generation {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn releases_everyone_and_is_reusable() {
        let r = Arc::new(Rendezvous::new(3));
        let far = Instant::now() + Duration::from_secs(30);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    (0..3).all(|_| r.wait(far, Duration::from_millis(5), || {}))
                })
            })
            .collect();
        for _ in 0..3 {
            assert!(r.wait(far, Duration::from_millis(5), || {}));
        }
        for h in handles {
            assert!(h.join().unwrap());
        }
    }

    #[test]
    fn gives_up_at_the_deadline() {
        let r = Rendezvous::new(2);
        let mut ticks = 0;
        let start = Instant::now();
        let soon = start + Duration::from_millis(60);
        assert!(!r.wait(soon, Duration::from_millis(10), || ticks += 1));
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert!(ticks >= 2);
    }
}
