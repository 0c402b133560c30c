//! Which CPUs the shards run on: the process's affinity mask (what `taskset`
//! sets), not the machine's CPU count, decides the default shard count.

use core_affinity::CoreId;

/// The CPUs this process may run on, in order.
pub(crate) fn allowed_cores() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a zeroed, correctly sized cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ok != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads a bit of the live set within CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`; false if the kernel refused.
pub(crate) fn pin_to(cpu: usize) -> bool {
    core_affinity::set_for_current(CoreId { id: cpu })
}
