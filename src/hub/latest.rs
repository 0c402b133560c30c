//! The latest answer of every shard to one question, for readers that must answer promptly
//! while the shards are saturated (`/metrics`, `/stats`): a gather asks every shard, waits
//! at most a deadline, and stands in for a shard that has not answered by then with the last
//! answer that shard gave (never an older one: an answer to a later question replaces an
//! earlier one, and a late answer that arrives after a newer one is dropped). A shard that has
//! never answered is waited for. Runs on a tokio runtime (late answers land from tasks of
//! their own).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Hub, HubError};
use crate::engine::shard::ShardCtx;

/// Per shard: the number of the question it answered last, and its answer.
type Slots<T> = Arc<Mutex<Vec<Option<(u64, T)>>>>;

/// Every shard's latest answer to one question.
pub struct Latest<T> {
    slots: Slots<T>,
    asked: AtomicU64,
}

/// What a gather found: an answer per shard, in shard order, and how many of them are from
/// an earlier question (the shard had not answered within the wait).
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered<T> {
    pub answers: Vec<T>,
    pub stale: usize,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self {
            slots: Arc::new(Mutex::new(Vec::new())),
            asked: AtomicU64::new(0),
        }
    }
}

impl<T: Clone + Send + 'static> Latest<T> {
    /// Asks every shard `question` (run on the shard, like [`Hub::run_on_all`]) and waits at
    /// most `wait` for the answers; a shard that has not answered by then is represented by
    /// its last answer, or waited for if it never gave one. Call it on a tokio runtime.
    pub async fn gather<F>(
        &self,
        hub: &Hub,
        wait: Duration,
        question: F,
    ) -> Result<Gathered<T>, HubError>
    where
        F: Fn(&mut ShardCtx<'_>) -> T + Send + Sync + 'static,
    {
        let shards = hub.shards();
        let number = self.asked.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut slots = self.slots.lock().expect("not poisoned");
            if slots.len() < shards {
                slots.resize_with(shards, || None);
            }
        }
        let question = Arc::new(question);
        let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
        for shard in 0..shards {
            let question = question.clone();
            let answer = hub.run_on(shard, move |ctx| question(ctx));
            let slots = self.slots.clone();
            let arrived = arrived.clone();
            tokio::spawn(async move {
                let outcome = answer.await.map(|value| {
                    let mut slots = slots.lock().expect("not poisoned");
                    let newer = slots[shard].as_ref().map_or(true, |(n, _)| *n < number);
                    if newer {
                        slots[shard] = Some((number, value));
                    }
                });
                let _ = arrived.send(outcome);
            });
        }
        drop(arrived);
        let deadline = tokio::time::Instant::now() + wait;
        let mut pending = shards;
        while pending > 0 {
            let waited = tokio::time::timeout_at(deadline, arrivals.recv()).await;
            match waited {
                Ok(Some(Ok(()))) => pending -= 1,
                Ok(Some(Err(HubError::Stopped))) => return Err(HubError::Stopped),
                // A refused question (a full mailbox): that shard's last answer stands.
                Ok(Some(Err(_))) => pending -= 1,
                Ok(None) => break,
                Err(_) if self.every_shard_answered_once(shards) => break,
                // Past the deadline with a shard that never answered: wait for it.
                Err(_) => match arrivals.recv().await {
                    Some(Err(HubError::Stopped)) => return Err(HubError::Stopped),
                    Some(_) => pending -= 1,
                    None => break,
                },
            }
        }
        let slots = self.slots.lock().expect("not poisoned");
        let slots = &slots[..shards];
        // A shard with no answer at all refused every question so far (a full mailbox).
        let never = slots.iter().filter(|slot| slot.is_none()).count();
        if never > 0 {
            return Err(HubError::MailboxFull { shards: never });
        }
        Ok(Gathered {
            answers: slots
                .iter()
                .flatten()
                .map(|(_, value)| value.clone())
                .collect(),
            stale: slots.iter().flatten().filter(|(n, _)| *n < number).count(),
        })
    }

    fn every_shard_answered_once(&self, shards: usize) -> bool {
        let slots = self.slots.lock().expect("not poisoned");
        slots.iter().take(shards).all(Option::is_some)
    }
}
