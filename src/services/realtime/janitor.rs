//! The service's background thread, `realtime-janitor`: it reclaims the rooms
//! joins made once they have been empty for `WS_AUTO_ROOM_GRACE`. It only
//! calls the room table (whose lock orders it against joins), never blocks a
//! shard, and ends once the service is dropped.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::Service;

/// Sweeps come every half grace, within these bounds: a room goes between
/// one grace and one grace plus two sweeps after it emptied.
const FASTEST_SWEEP: Duration = Duration::from_millis(100);
const SLOWEST_SWEEP: Duration = Duration::from_secs(1);

/// Starts the thread when the service has work for it (rooms made by joins).
pub(super) fn start(service: &Arc<Service>) -> std::io::Result<()> {
    if !service.cfg.auto_create_rooms {
        return Ok(());
    }
    let grace = service.cfg.auto_room_grace;
    let service = Arc::downgrade(service);
    thread::Builder::new()
        .name("realtime-janitor".to_owned())
        .spawn(move || run(&service, grace))?;
    Ok(())
}

fn run(service: &Weak<Service>, grace: Duration) {
    let every = (grace / 2).clamp(FASTEST_SWEEP, SLOWEST_SWEEP);
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let started = Instant::now();
    loop {
        thread::sleep(every);
        let Some(service) = service.upgrade() else {
            return;
        };
        // Never 0: the table reads 0 as "not found empty yet".
        let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let reclaimed = service.rooms.reclaim_empty(grace_ms, now_ms);
        for room in &reclaimed {
            tracing::debug!(room = %room.id, "empty room made by a join reclaimed");
        }
    }
}
