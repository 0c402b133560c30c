//! Process facts from the OS: a server's CPU time, RSS and open descriptors
//! from `/proc/PID`, this client's own CPU time (`getrusage`), and raising
//! this process's `RLIMIT_NOFILE` soft limit to its hard limit.

use std::fs;

/// A process's CPU time at one instant, read two ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTime {
    /// utime + stime from `/proc/PID/stat`: clock ticks (usually 10 ms), but
    /// it keeps the time of threads that have exited.
    pub ticks_s: f64,
    /// The sum of the live threads' run time from `/proc/PID/task/*/schedstat`
    /// (nanoseconds), when the kernel provides it.
    pub run_s: Option<f64>,
}

/// Largest gap between the two readings of one interval that still counts as
/// clock-tick rounding (a tick at each end), in seconds.
const TICK_SLACK_S: f64 = 0.025;

impl CpuTime {
    /// CPU seconds from `earlier` to `self`: the nanosecond figure, unless it
    /// falls short of the tick figure by more than the ticks' rounding (a
    /// thread ended in between and took its run time with it).
    pub fn since(&self, earlier: &CpuTime) -> f64 {
        let ticks = self.ticks_s - earlier.ticks_s;
        match (self.run_s, earlier.run_s) {
            (Some(b), Some(a)) if b - a >= 0.0 && b - a + TICK_SLACK_S >= ticks => b - a,
            _ => ticks,
        }
    }
}

/// CPU time of process `pid`, all its threads.
pub fn cpu_time(pid: u32) -> Result<CpuTime, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let ticks = parse_stat_cpu_ticks(&stat)
        .ok_or_else(|| format!("/proc/{pid}/stat: unexpected format"))?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Ok(CpuTime {
        ticks_s: ticks as f64 / hz,
        run_s: threads_run_ns(pid).map(|ns| ns as f64 / 1e9),
    })
}

/// Sum of the run time (first field of `schedstat`, ns) of `pid`'s threads.
fn threads_run_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        match fs::read_to_string(&path) {
            Ok(text) => total += parse_schedstat_run_ns(&text)?,
            // The thread ended between the listing and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    Some(total)
}

/// The run time in ns, the first field of a `schedstat` file.
pub fn parse_schedstat_run_ns(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// utime + stime in clock ticks from the text of `/proc/PID/stat`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // ')' itself, so count fields from the last ')': state is field 3, utime 14.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    parse_status_rss_kib(&status).ok_or_else(|| format!("/proc/{pid}/status: no VmRSS"))
}

/// The `VmRSS:` value of `/proc/PID/status`, in KiB.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open file descriptors of process `pid` (entries of `/proc/PID/fd`).
pub fn fd_count(pid: u32) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    Ok(entries.count() as u64)
}

/// CPU seconds (user + system) this process has used so far.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one plain struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Raises the open-files soft limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write one plain struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let stat = "1234 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_status() {
        let status = "Name:\tringgate\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss_kib(status), Some(12345));
        assert_eq!(parse_status_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn parses_schedstat() {
        assert_eq!(parse_schedstat_run_ns("765437 0 1\n"), Some(765437));
        assert_eq!(parse_schedstat_run_ns(""), None);
    }

    #[test]
    fn prefers_nanoseconds_unless_time_went_missing() {
        let at = |ticks_s, run_s| CpuTime { ticks_s, run_s };
        // Ticks round to 10 ms; the nanosecond figure is the finer one.
        assert_eq!(
            at(1.23, Some(1.2345)).since(&at(1.00, Some(1.0012))),
            1.2345 - 1.0012
        );
        // A thread that ended took 0.5 s of run time out of schedstat.
        assert_eq!(at(2.00, Some(0.60)).since(&at(1.00, Some(0.10))), 1.00);
        assert_eq!(at(2.00, None).since(&at(1.00, Some(0.10))), 1.00);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let a = cpu_time(pid).unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {}
        let b = cpu_time(pid).unwrap();
        assert!(a.run_s.is_some(), "schedstat is readable on Linux");
        assert!(b.since(&a) > 0.0);
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(fd_count(pid).unwrap() >= 3);
        assert!(own_cpu_seconds() >= 0.0);
    }
}
