//! The control plane's scheduling priority: real-time (`SCHED_RR` 1) when the process may, so
//! that `/health` and `/metrics` get a CPU at once while the shards keep every core busy (a
//! broadcast to a million connections, more shards than cores). Threads the control plane
//! starts go back to the normal policy (`SCHED_RESET_ON_FORK`). Never fails the start.

/// Puts the calling thread on `SCHED_RR` priority 1, or says in one log line why it stays at
/// normal priority.
pub(super) fn raise_to_realtime() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler reads `param` only; 0 names the calling thread.
    let rc =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 {
        tracing::debug!("control plane at real-time priority (SCHED_RR 1)");
    } else {
        let e = std::io::Error::last_os_error();
        tracing::info!(
            "the control plane runs at normal priority (real-time priority refused: {e}); \
             /health may answer slowly while the shards saturate every core \
             (RINGGATE_CONTROL_REALTIME=false silences this)"
        );
    }
}
