//! The password-hash pool: a few threads of their own that run the argon2 verifications of
//! OCPP Basic auth, so a shard never spends milliseconds on a password. Its queue is bounded:
//! a job that finds it full is handed back to the caller (which refuses the upgrade with 503),
//! so a flood of wrong passwords costs the pool's threads and nothing else.

use std::io;

use crossbeam_channel::{Sender, TrySendError};

/// A verification to run, with what to do with its outcome.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The pool's sending side; the threads end once it is dropped.
pub(crate) struct HashPool {
    jobs: Sender<Job>,
}

impl HashPool {
    /// Starts `threads` threads (at least one) behind a queue of `queue` jobs.
    pub(crate) fn start(threads: usize, queue: usize) -> io::Result<HashPool> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(queue.max(1));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ringgate-ocpp-hash-{i}"))
                .spawn(move || {
                    for job in rx {
                        // A panicking job takes neither the thread nor the pool down.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(HashPool { jobs })
    }

    /// Queues `job`, or hands it back when the queue is full.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_run_off_the_caller_and_a_full_queue_hands_them_back() {
        let pool = HashPool::start(1, 1).unwrap();
        let (started, wait) = mpsc::channel();
        let (release, blocked) = mpsc::channel::<()>();
        pool.submit(Box::new(move || {
            started
                .send(std::thread::current().name().map(str::to_owned))
                .unwrap();
            blocked.recv().unwrap();
        }))
        .unwrap_or_else(|_| panic!("the queue is empty"));
        let name = wait.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(name.as_deref(), Some("ringgate-ocpp-hash-0"));
        let (done, finished) = mpsc::channel();
        let done2 = done.clone();
        pool.submit(Box::new(move || done.send(1).unwrap()))
            .unwrap_or_else(|_| panic!("one job fits in the queue"));
        assert!(
            pool.submit(Box::new(move || done2.send(2).unwrap()))
                .is_err(),
            "the queue holds one job and the thread is busy"
        );
        release.send(()).unwrap();
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    }

    #[test]
    fn a_panicking_job_leaves_the_pool_working() {
        let pool = HashPool::start(1, 4).unwrap();
        pool.submit(Box::new(|| panic!("job panics")))
            .unwrap_or_else(|_| panic!("queued"));
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || done.send(()).unwrap()))
            .unwrap_or_else(|_| panic!("queued"));
        finished.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}
