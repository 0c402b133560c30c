//! One shard's mailbox: a lock-free queue of commands bounded by count and by
//! the bytes they hold (frames, what closures carry), the waker that rouses the shard, its shutdown flag and the
//! count of commands it refused. Any thread posts; only the owning shard
//! takes. A full mailbox refuses the command (the sender gets an error and
//! the shard's `mailbox_rejected` counter grows): nothing is dropped silently.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::{Command, Waker};

/// How much one mailbox may hold before it refuses commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Commands waiting at once.
    pub commands: usize,
    /// Frame bytes waiting at once (a frame larger than this still passes
    /// into an empty mailbox, so no message is too big to send at all).
    pub bytes: usize,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        Self {
            commands: 65_536,
            bytes: 64 << 20,
        }
    }
}

/// Why a post failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostError {
    /// Over the count or byte bound: the command was refused.
    Full,
    /// The shard has exited.
    Closed,
}

/// What the sending side and the shard share.
struct State {
    waker: Waker,
    limits: MailboxLimits,
    commands: AtomicUsize,
    bytes: AtomicUsize,
    shutdown: AtomicBool,
    rejected: AtomicU64,
}

/// The sending side (in the hub).
pub(crate) struct Mailbox {
    tx: Sender<Command>,
    state: Arc<State>,
}

/// The receiving side (on the shard).
pub(crate) struct Inbox {
    rx: Receiver<Command>,
    state: Arc<State>,
}

/// A mailbox and its inbox.
pub(crate) fn mailbox(limits: MailboxLimits) -> std::io::Result<(Mailbox, Inbox)> {
    // Unbounded underneath: a bounded crossbeam channel preallocates every
    // slot, which would cost memory per shard for a bound rarely reached.
    let (tx, rx) = crossbeam_channel::unbounded();
    let state = Arc::new(State {
        waker: Waker::new()?,
        limits,
        commands: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        shutdown: AtomicBool::new(false),
        rejected: AtomicU64::new(0),
    });
    Ok((
        Mailbox {
            tx,
            state: state.clone(),
        },
        Inbox { rx, state },
    ))
}

impl Mailbox {
    /// Queues `cmd` and wakes the shard, unless the mailbox is full.
    pub(crate) fn post(&self, cmd: Command) -> Result<(), PostError> {
        self.enqueue(cmd, true)
    }

    /// Queues `cmd` whatever the bounds say (it still counts against
    /// them): for commands whose number is bounded elsewhere.
    pub(crate) fn post_unbounded(&self, cmd: Command) -> Result<(), PostError> {
        self.enqueue(cmd, false)
    }

    fn enqueue(&self, cmd: Command, bounded: bool) -> Result<(), PostError> {
        let s = &self.state;
        let bytes = cmd.held_bytes();
        let queued = s.commands.fetch_add(1, Ordering::AcqRel);
        let before = s.bytes.fetch_add(bytes, Ordering::AcqRel);
        let full = queued >= s.limits.commands || (before > 0 && before + bytes > s.limits.bytes);
        if bounded && full {
            self.undo(bytes);
            s.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(PostError::Full);
        }
        // Unbounded underneath: sending fails only once the shard is gone.
        if self.tx.send(cmd).is_err() {
            self.undo(bytes);
            return Err(PostError::Closed);
        }
        s.waker.wake();
        Ok(())
    }

    fn undo(&self, bytes: usize) {
        self.state.commands.fetch_sub(1, Ordering::AcqRel);
        self.state.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Asks the shard to drain; never refused.
    pub(crate) fn request_shutdown(&self) {
        self.state.shutdown.store(true, Ordering::Release);
        self.state.waker.wake();
    }

    /// Commands this mailbox refused so far.
    pub(crate) fn rejected(&self) -> u64 {
        self.state.rejected.load(Ordering::Relaxed)
    }
}

impl Inbox {
    /// The next waiting command, if any.
    pub(crate) fn take(&self) -> Option<Command> {
        let cmd = self.rx.try_recv().ok()?;
        self.state
            .bytes
            .fetch_sub(cmd.held_bytes(), Ordering::AcqRel);
        self.state.commands.fetch_sub(1, Ordering::AcqRel);
        Some(cmd)
    }

    /// Re-arms the waker before a drain, so later posts wake the shard again.
    pub(crate) fn reset_wake(&self) {
        self.state.waker.reset();
    }

    /// The eventfd the driver watches.
    pub(crate) fn waker_fd(&self) -> std::os::fd::RawFd {
        self.state.waker.raw_fd()
    }

    /// True once shutdown was requested.
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.state.shutdown.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{ConnId, SharedFrame};
    use bytes::Bytes;

    fn send(len: usize) -> Command {
        let frame = SharedFrame::from_encoded(Bytes::from(vec![0u8; len]));
        Command::Send(ConnId::new(0, 0, 1), frame)
    }

    #[test]
    fn the_command_bound_refuses_and_counts() {
        let (mb, inbox) = mailbox(MailboxLimits {
            commands: 2,
            bytes: 1 << 20,
        })
        .unwrap();
        assert_eq!(mb.post(send(1)), Ok(()));
        assert_eq!(mb.post(send(1)), Ok(()));
        assert_eq!(mb.post(send(1)), Err(PostError::Full));
        assert_eq!(mb.rejected(), 1);
        assert!(inbox.take().is_some());
        assert_eq!(
            mb.post(send(1)),
            Ok(()),
            "room again once the shard took one"
        );
    }

    #[test]
    fn the_byte_bound_refuses_but_an_empty_mailbox_takes_any_frame() {
        let (mb, inbox) = mailbox(MailboxLimits {
            commands: 100,
            bytes: 1000,
        })
        .unwrap();
        assert_eq!(mb.post(send(5000)), Ok(()), "alone, a big frame passes");
        assert_eq!(mb.post(send(10)), Err(PostError::Full));
        inbox.take().unwrap();
        assert_eq!(mb.post(send(600)), Ok(()));
        assert_eq!(mb.post(send(600)), Err(PostError::Full));
        assert_eq!(mb.post(send(400)), Ok(()));
        assert_eq!(mb.rejected(), 2);
        inbox.take().unwrap();
        inbox.take().unwrap();
        assert!(inbox.take().is_none());
        assert_eq!(mb.state.bytes.load(Ordering::Relaxed), 0);
        assert_eq!(mb.state.commands.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn shutdown_is_a_flag_that_never_fills() {
        let (mb, inbox) = mailbox(MailboxLimits {
            commands: 1,
            bytes: 10,
        })
        .unwrap();
        mb.post(send(1)).unwrap();
        mb.request_shutdown();
        assert!(inbox.shutdown_requested());
    }

    #[test]
    fn posting_to_a_gone_shard_is_closed() {
        let (mb, inbox) = mailbox(MailboxLimits::default()).unwrap();
        drop(inbox);
        assert_eq!(mb.post(send(1)), Err(PostError::Closed));
        assert_eq!(mb.state.commands.load(Ordering::Relaxed), 0);
    }
}
