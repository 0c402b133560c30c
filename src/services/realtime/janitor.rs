//! The service's background thread, `realtime-janitor`: it calls back the
//! shards that could not post something (a full mailbox) so they post it
//! again, and reclaims the rooms joins made once they have been empty for
//! `WS_AUTO_ROOM_GRACE`. It never touches a shard's state itself (it posts
//! to the shard), sleeps while there is nothing to do, and ends once the
//! service is dropped.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::hub::{Hub, HubError};

use super::unsent;
use super::Service;

/// How long a shard waits to be called back, and between two calls while
/// the mailbox it posts to stays full.
const RETRY: Duration = Duration::from_millis(100);
/// Sweeps of the room table come every half grace, within these bounds: a
/// room goes between one grace and one grace plus two sweeps after it
/// emptied.
const FASTEST_SWEEP: Duration = Duration::from_millis(100);
const SLOWEST_SWEEP: Duration = Duration::from_secs(1);

/// The thread's handle and the shards waiting for its call.
#[derive(Default)]
pub(super) struct Janitor {
    /// Shards to call back.
    due: Mutex<BTreeSet<usize>>,
    /// The hub, learnt from the first shard that asks.
    hub: OnceLock<Hub>,
    thread: OnceLock<Thread>,
}

impl Janitor {
    /// Shard `shard` has something to post again: call it back soon.
    pub(super) fn call_back(&self, shard: usize, hub: &Hub) {
        self.hub.get_or_init(|| hub.clone());
        self.due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shard);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn take_due(&self) -> BTreeSet<usize> {
        std::mem::take(&mut *self.due.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn has_due(&self) -> bool {
        !self
            .due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

impl Drop for Janitor {
    /// Wakes the thread, which finds the service gone and ends.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// Starts the thread.
pub(super) fn start(service: &Arc<Service>) -> std::io::Result<()> {
    let weak = Arc::downgrade(service);
    let handle = thread::Builder::new()
        .name("realtime-janitor".to_owned())
        .spawn(move || run(&weak))?;
    let _ = service.janitor.thread.set(handle.thread().clone());
    Ok(())
}

fn run(service: &Weak<Service>) {
    let started = Instant::now();
    let mut next_call = started;
    let mut next_sweep = started;
    loop {
        let Some(service) = service.upgrade() else {
            return;
        };
        let now = Instant::now();
        let sweeping = service.cfg.auto_create_rooms;
        if sweeping && now >= next_sweep {
            sweep(&service, now.duration_since(started));
            next_sweep = now + sweep_interval(service.cfg.auto_room_grace);
        }
        if now >= next_call && service.janitor.has_due() {
            call(&service);
            next_call = now + RETRY;
        }
        let wake = [
            sweeping.then_some(next_sweep),
            service
                .janitor
                .has_due()
                .then_some(next_call.max(now + RETRY / 10)),
        ]
        .into_iter()
        .flatten()
        .min();
        drop(service);
        match wake {
            Some(at) => thread::park_timeout(at.saturating_duration_since(Instant::now())),
            None => thread::park(),
        }
    }
}

fn sweep_interval(grace: Duration) -> Duration {
    (grace / 2).clamp(FASTEST_SWEEP, SLOWEST_SWEEP)
}

/// Reclaims the rooms joins made that have been empty a grace.
fn sweep(service: &Service, elapsed: Duration) {
    let grace_ms = u64::try_from(service.cfg.auto_room_grace.as_millis()).unwrap_or(u64::MAX);
    // Never 0: the table reads 0 as "not found empty yet".
    let now_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX - 1) + 1;
    for room in service.rooms.reclaim_empty(grace_ms, now_ms) {
        tracing::debug!(room = %room.id, "empty room made by a join reclaimed");
    }
}

/// Asks each shard due to post again; one whose own mailbox is full is
/// asked at the next round.
fn call(service: &Arc<Service>) {
    let Some(hub) = service.janitor.hub.get() else {
        return;
    };
    for shard in service.janitor.take_due() {
        let for_shard = service.clone();
        match hub.post_run(shard, move |ctx| unsent::retry(&for_shard, ctx)) {
            Ok(()) | Err(HubError::Stopped) => {}
            Err(_) => {
                service
                    .janitor
                    .due
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(shard);
            }
        }
    }
}
