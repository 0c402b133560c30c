//! `--pid`: the server's RSS and CPU time every `--sample-interval`, on a
//! thread of its own, from the start of the attack until it is stopped
//! (one last sample then). A process that is gone gives empty samples.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::procinfo::{self, CpuTime};

/// Longest sleep between two looks at the stop flag.
const NAP: Duration = Duration::from_millis(100);

/// One look at the server.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerSample {
    /// Seconds since the attack started.
    pub t_s: f64,
    pub rss_kib: Option<u64>,
    /// CPU seconds the server used since the attack started.
    pub cpu_s: Option<f64>,
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<ServerSample>>,
}

impl Sampler {
    /// Samples `pid` every `every` from `start`.
    pub fn start(pid: u32, every: Duration, start: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("attack-sampler".into())
            .spawn(move || watch(pid, every, start, &flag))
            .expect("spawning the sampler");
        Sampler { stop, thread }
    }

    /// Stops and hands back the samples.
    pub fn stop(self) -> Vec<ServerSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn watch(pid: u32, every: Duration, start: Instant, stop: &AtomicBool) -> Vec<ServerSample> {
    let first: Option<CpuTime> = procinfo::cpu_time(pid).ok();
    let take = || ServerSample {
        t_s: crate::report::round(start.elapsed().as_secs_f64(), 3),
        rss_kib: procinfo::rss_kib(pid).ok(),
        cpu_s: first.and_then(|a| {
            let b = procinfo::cpu_time(pid).ok()?;
            Some(crate::report::round(b.since(&a), 3))
        }),
    };
    let mut samples = vec![take()];
    let mut next = start + every;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            samples.push(take());
            next += every;
        } else {
            std::thread::sleep((next - now).min(NAP));
        }
    }
    samples.push(take());
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_until_stopped() {
        let s = Sampler::start(
            std::process::id(),
            Duration::from_millis(30),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_millis(100));
        let samples = s.stop();
        assert!(samples.len() >= 3, "{samples:?}");
        assert!(samples.iter().all(|s| s.rss_kib.is_some_and(|r| r > 0)));
        assert!(samples.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    }
}
