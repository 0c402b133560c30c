//! Cross-shard work: a cloneable [`Hub`] handle that any thread uses to send to
//! a connection, broadcast to a channel, or close a connection. Each shard has
//! a lock-free mailbox and a waker; the hub never touches connection state, it
//! only posts commands that the owning shard carries out.

mod frame;
mod latest;
mod mailbox;
mod metrics;
mod stats;
mod subscriptions;
mod waker;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::engine::shard::ShardCtx;
use crate::handler::{Accept, Message, Reject};
use crate::protocol::close::is_valid_wire_code;

pub(crate) use frame::SharedFrame;
pub use latest::{Gathered, Latest};
pub(crate) use mailbox::Inbox;
pub use mailbox::MailboxLimits;
use mailbox::{Mailbox, PostError};
pub use metrics::{DeflateMetrics, RouteMetrics, ShardMetrics, UpgradeMetrics, DURATION_BUCKETS};
pub(crate) use stats::ShardCounters;
pub use stats::{CloseReason, HubStats, ShardStats};
pub use subscriptions::Subscriptions;
use waker::Waker;

/// A connection's id: its shard, its slab slot and the slot's generation.
/// Unique for the life of the process in practice: a slot's generation
/// grows by one each time the slot is reused, so an id can only come back
/// after 2^32 connections in that one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// Bits of the shard index (at most [`ConnId::MAX_SHARDS`] shards).
    const SHARD_BITS: u32 = 10;
    /// Bits of the slot (at most [`ConnId::MAX_SLOTS`] connections a shard).
    const SLOT_BITS: u32 = 22;
    /// Most shards a server may run.
    pub const MAX_SHARDS: usize = 1 << Self::SHARD_BITS;
    /// Most connections one shard may hold at once.
    pub const MAX_SLOTS: usize = 1 << Self::SLOT_BITS;

    pub(crate) fn new(shard: usize, slot: u32, generation: u32) -> Self {
        debug_assert!(shard < Self::MAX_SHARDS && (slot as usize) < Self::MAX_SLOTS);
        Self(
            ((shard as u64) << (64 - Self::SHARD_BITS))
                | ((slot as u64) << 32)
                | u64::from(generation),
        )
    }
    /// The shard that owns the connection.
    pub fn shard(self) -> usize {
        (self.0 >> (64 - Self::SHARD_BITS)) as usize
    }
    pub(crate) fn slot(self) -> u32 {
        ((self.0 >> 32) as u32) & (Self::MAX_SLOTS as u32 - 1)
    }
    /// The raw 64-bit value.
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// Rebuilds an id from [`ConnId::as_u64`].
    pub fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn post_error(e: PostError) -> HubError {
    match e {
        PostError::Full => HubError::MailboxFull { shards: 1 },
        PostError::Closed => HubError::Stopped,
    }
}

/// Errors of hub calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("no shard {0}")]
    NoSuchShard(usize),
    #[error("the server is shut down")]
    Stopped,
    /// The command reached no connection on `shards` shards: their mailboxes
    /// were over their bound (`RINGGATE_MAILBOX_COMMANDS` / `_BYTES`). For a
    /// broadcast, the other shards got it. Counted in [`ShardStats::mailbox_rejected`].
    #[error("{shards} shard mailbox(es) full: the command did not reach them")]
    MailboxFull { shards: usize },
    /// Code sent with [`Hub::run_on`] panicked on the shard.
    #[error("the code run on shard {0} panicked")]
    RunFailed(usize),
    /// RFC 6455 forbids this close code on the wire (1005, 1006, 1015, codes
    /// under 1000 or over 4999, unassigned ones).
    #[error("close code {0} may not be sent (RFC 6455 section 7.4)")]
    InvalidCloseCode(u16),
}

/// A server frame encoded once, for many connections (see
/// [`ShardCtx::broadcast`]); a clone shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(pub(crate) SharedFrame);

impl Frame {
    /// Encodes `msg` as one unmasked server frame.
    pub fn new(msg: Message<'_>) -> Frame {
        Frame(SharedFrame::new(msg))
    }

    /// The encoded frame's length in bytes (what it costs a mailbox).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a frame has a header at least.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

impl From<Message<'_>> for Frame {
    fn from(msg: Message<'_>) -> Frame {
        Frame::new(msg)
    }
}

/// What a shard's mailbox carries.
pub(crate) enum Command {
    Send(ConnId, SharedFrame),
    /// To each of several connections of one shard.
    SendMany(Vec<ConnId>, SharedFrame),
    /// To every member of a channel but one connection, if given.
    Broadcast(Arc<str>, SharedFrame, Option<ConnId>),
    Subscribe(ConnId, Arc<str>),
    Unsubscribe(ConnId, Arc<str>),
    Close(ConnId, u16, String),
    /// Code to run on the shard ([`Hub::run_on`]), and the bytes it holds
    /// (what its poster declared, at least the closure's own size).
    Run(Box<dyn FnOnce(&mut ShardCtx<'_>) + Send>, usize),
    /// The answer to a deferred upgrade ([`crate::PendingUpgrade`]).
    Upgrade(ConnId, Box<Result<Accept, Reject>>),
}

impl Command {
    /// Bytes the command holds (what the mailbox's byte bound counts).
    fn held_bytes(&self) -> usize {
        match self {
            Command::Send(_, frame)
            | Command::SendMany(_, frame)
            | Command::Broadcast(_, frame, _) => frame.len(),
            Command::Run(_, bytes) => *bytes,
            _ => 0,
        }
    }
}

struct HubInner {
    mailboxes: Vec<Mailbox>,
    counters: Vec<Arc<ShardCounters>>,
    /// When shutdown began.
    drain_started: OnceLock<Instant>,
}

/// The cross-shard handle. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

/// The receiving end a shard keeps.
pub(crate) struct ShardInbox {
    pub(crate) inbox: Inbox,
    pub(crate) counters: Arc<ShardCounters>,
}

impl Hub {
    /// Creates the hub and one inbox per shard.
    pub(crate) fn new(
        shards: usize,
        limits: MailboxLimits,
    ) -> std::io::Result<(Hub, Vec<ShardInbox>)> {
        let mut mailboxes = Vec::with_capacity(shards);
        let mut inboxes = Vec::with_capacity(shards);
        let mut counters = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (mailbox, inbox) = mailbox::mailbox(limits)?;
            let shard_counters = Arc::new(ShardCounters::default());
            mailboxes.push(mailbox);
            counters.push(shard_counters.clone());
            inboxes.push(ShardInbox {
                inbox,
                counters: shard_counters,
            });
        }
        let inner = Arc::new(HubInner {
            mailboxes,
            counters,
            drain_started: OnceLock::new(),
        });
        Ok((Hub { inner }, inboxes))
    }

    fn post(&self, shard: usize, cmd: Command) -> Result<(), HubError> {
        self.mailbox(shard)?.post(cmd).map_err(post_error)
    }

    fn mailbox(&self, shard: usize) -> Result<&Mailbox, HubError> {
        self.inner
            .mailboxes
            .get(shard)
            .ok_or(HubError::NoSuchShard(shard))
    }

    /// Runs `f` on shard `shard`'s thread like [`Hub::run_on`], without
    /// waiting for it or its result: the cheap form for updates that answer
    /// nobody. Only posting can fail (a full mailbox, a stopped server); a
    /// panic in `f` is caught and logged on the shard. The mailbox's byte
    /// bound counts the closure's own size; a closure that holds more on
    /// the heap (a message, say) should declare it with
    /// [`Hub::post_run_holding`].
    pub fn post_run<F>(&self, shard: usize, f: F) -> Result<(), HubError>
    where
        F: FnOnce(&mut ShardCtx<'_>) + Send + 'static,
    {
        self.post_run_holding(shard, 0, f)
    }

    /// [`Hub::post_run`] for a closure that holds `bytes` on the heap (a
    /// frame it will send, a copy of a message): they count against the
    /// shard's `RINGGATE_MAILBOX_BYTES` until the closure has run.
    pub fn post_run_holding<F>(&self, shard: usize, bytes: usize, f: F) -> Result<(), HubError>
    where
        F: FnOnce(&mut ShardCtx<'_>) + Send + 'static,
    {
        let held = bytes.saturating_add(std::mem::size_of::<F>());
        self.post(shard, Command::Run(Box::new(f), held))
    }

    /// Posts the answer to a deferred upgrade, past the mailbox's bounds:
    /// a shard parks a bounded number of upgrades, so their answers are
    /// bounded too, and an answer refused would leave a client waiting.
    pub(crate) fn answer_upgrade(
        &self,
        id: ConnId,
        decision: Result<Accept, Reject>,
    ) -> Result<(), HubError> {
        self.mailbox(id.shard())?
            .post_unbounded(Command::Upgrade(id, Box::new(decision)))
            .map_err(post_error)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.inner.mailboxes.len()
    }

    /// Sends `msg` to one connection. A connection that has gone by the time
    /// its shard reads the command is skipped; a full mailbox is an error.
    pub fn send(&self, id: ConnId, msg: Message<'_>) -> Result<(), HubError> {
        self.post(id.shard(), Command::Send(id, SharedFrame::new(msg)))
    }

    /// Sends `msg` (a [`Message`], or a [`Frame`] encoded already) to each
    /// of `ids` (on any shards): the frame is encoded once, and each shard
    /// gets one command for all of its connections. Shards whose mailbox is
    /// full are skipped and reported in the error.
    pub fn send_many(&self, ids: &[ConnId], msg: impl Into<Frame>) -> Result<(), HubError> {
        let frame = msg.into().0;
        let mut by_shard: std::collections::BTreeMap<usize, Vec<ConnId>> = Default::default();
        for &id in ids {
            by_shard.entry(id.shard()).or_default().push(id);
        }
        self.post_each(
            by_shard
                .into_iter()
                .map(|(shard, ids)| (shard, Command::SendMany(ids, frame.clone()))),
        )
    }

    /// Posts each command to its shard. Shards whose mailbox is full are
    /// skipped and counted in the error; the others get theirs.
    fn post_each(&self, posts: impl Iterator<Item = (usize, Command)>) -> Result<(), HubError> {
        let mut full = 0;
        for (shard, cmd) in posts {
            match self.post(shard, cmd) {
                Ok(()) => {}
                Err(HubError::MailboxFull { .. }) => full += 1,
                Err(e) => return Err(e),
            }
        }
        match full {
            0 => Ok(()),
            shards => Err(HubError::MailboxFull { shards }),
        }
    }

    /// Sends `msg` to every connection subscribed to `channel`, on every shard.
    /// The frame is encoded once and shared by all of them. Shards whose
    /// mailbox is full are skipped and reported in the error; the others
    /// still get the message.
    pub fn broadcast(&self, channel: &str, msg: Message<'_>) -> Result<(), HubError> {
        self.broadcast_to(channel, msg, None)
    }

    /// Like [`Hub::broadcast`], leaving out connection `except` (the sender,
    /// say).
    pub fn broadcast_except(
        &self,
        channel: &str,
        msg: Message<'_>,
        except: ConnId,
    ) -> Result<(), HubError> {
        self.broadcast_to(channel, msg, Some(except))
    }

    fn broadcast_to(
        &self,
        channel: &str,
        msg: Message<'_>,
        except: Option<ConnId>,
    ) -> Result<(), HubError> {
        let frame = SharedFrame::new(msg);
        let channel: Arc<str> = Arc::from(channel);
        self.post_each((0..self.shards()).map(|shard| {
            let cmd = Command::Broadcast(channel.clone(), frame.clone(), except);
            (shard, cmd)
        }))
    }

    /// The ids of the connections subscribed to `channel`, all shards: with
    /// a channel per application key (`user:42`), where that key's
    /// connections are, for [`Hub::send_many`] or [`Hub::run_on`].
    pub fn channel_member_ids(
        &self,
        channel: &str,
    ) -> impl std::future::Future<Output = Result<Vec<ConnId>, HubError>> + Send + 'static {
        let channel: Arc<str> = Arc::from(channel);
        let ids = self.run_on_all(move |shard| shard.channel_member_ids(&channel));
        async move { Ok(ids.await?.into_iter().flatten().collect()) }
    }

    /// Connections subscribed to `channel`, all shards (asked of each
    /// shard through its mailbox, like [`Hub::run_on_all`]).
    pub fn channel_members(
        &self,
        channel: &str,
    ) -> impl std::future::Future<Output = Result<usize, HubError>> + Send + 'static {
        let channel: Arc<str> = Arc::from(channel);
        let counts = self.run_on_all(move |shard| shard.channel_members(&channel));
        async move { Ok(counts.await?.into_iter().sum()) }
    }

    /// Subscribes a connection (on any shard) to `channel`.
    pub fn subscribe(&self, id: ConnId, channel: &str) -> Result<(), HubError> {
        self.post(id.shard(), Command::Subscribe(id, Arc::from(channel)))
    }

    /// Removes a connection from `channel`.
    pub fn unsubscribe(&self, id: ConnId, channel: &str) -> Result<(), HubError> {
        self.post(id.shard(), Command::Unsubscribe(id, Arc::from(channel)))
    }

    /// Starts the close handshake of a connection with `code` and `reason`
    /// (truncated to the 123 bytes a close frame holds, on a char boundary).
    /// A code RFC 6455 forbids on the wire is refused.
    pub fn close(&self, id: ConnId, code: u16, reason: &str) -> Result<(), HubError> {
        if !is_valid_wire_code(code) {
            return Err(HubError::InvalidCloseCode(code));
        }
        self.post(id.shard(), Command::Close(id, code, reason.to_owned()))
    }

    /// Runs `f` on shard `shard`'s thread, between two of its I/O turns,
    /// and returns what it returned. The future may be awaited on any
    /// executor (or dropped: the result is then thrown away). Keep `f`
    /// quick: the shard serves nothing else while it runs. A panic in `f` is
    /// caught on the shard ([`HubError::RunFailed`]).
    pub fn run_on<T, F>(
        &self,
        shard: usize,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, HubError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut ShardCtx<'_>) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let posted = self.post_run(shard, move |ctx| {
            let _ = tx.send(f(ctx));
        });
        async move {
            posted?;
            rx.await.map_err(|_| HubError::RunFailed(shard))
        }
    }

    /// Runs `f` on every shard (see [`Hub::run_on`]) and returns the
    /// results in shard order.
    pub fn run_on_all<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<Vec<T>, HubError>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn(&mut ShardCtx<'_>) -> T + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let runs: Vec<_> = (0..self.shards())
            .map(|shard| {
                let f = f.clone();
                self.run_on(shard, move |ctx| f(ctx))
            })
            .collect();
        async move {
            let mut results = Vec::with_capacity(runs.len());
            for run in runs {
                results.push(run.await?);
            }
            Ok(results)
        }
    }

    /// Asks every shard to stop accepting and close its connections with
    /// 1001. Never refused, however full the mailboxes are.
    pub(crate) fn shutdown(&self) {
        self.inner.drain_started.get_or_init(Instant::now);
        for mailbox in &self.inner.mailboxes {
            mailbox.request_shutdown();
        }
    }

    /// True once the server began to shut down (it accepts no more
    /// connections and is closing the ones it has).
    pub fn draining(&self) -> bool {
        self.inner.drain_started.get().is_some()
    }

    /// How the drain went, once every shard has exited: connections open
    /// when it began, those its timeout cut, and how long it has taken
    /// since it began. `None` when no drain began.
    pub(crate) fn drain_summary(&self) -> Option<(usize, usize, Duration)> {
        let started = self.inner.drain_started.get()?;
        let (open, cut) = self
            .inner
            .counters
            .iter()
            .map(|c| c.drain())
            .fold((0, 0), |(o, c), (o2, c2)| (o + o2, c + c2));
        Some((open, cut, started.elapsed()))
    }

    /// A snapshot of every shard's counters.
    pub fn stats(&self) -> HubStats {
        let shards: Vec<ShardStats> = self
            .inner
            .counters
            .iter()
            .zip(&self.inner.mailboxes)
            .map(|(counters, mailbox)| counters.snapshot(mailbox.rejected()))
            .collect();
        HubStats {
            connections: shards.iter().map(|s| s.connections).sum(),
            shards,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_id_round_trips_its_parts() {
        let id = ConnId::new(1023, ConnId::MAX_SLOTS as u32 - 1, u32::MAX);
        assert_eq!(id.shard(), 1023);
        assert_eq!(id.slot(), ConnId::MAX_SLOTS as u32 - 1);
        assert_eq!(ConnId::from_u64(id.as_u64()), id);
        let id = ConnId::new(3, 123_456, 0xBEEF);
        assert_eq!((id.shard(), id.slot()), (3, 123_456));
        assert_ne!(
            id,
            ConnId::new(3, 123_456, 0xBEF0),
            "generations tell ids apart"
        );
    }

    #[test]
    fn posting_to_a_missing_shard_is_an_error() {
        let (hub, _inboxes) = Hub::new(2, MailboxLimits::default()).unwrap();
        let id = ConnId::new(5, 0, 0);
        assert_eq!(
            hub.send(id, Message::Text("x")),
            Err(HubError::NoSuchShard(5))
        );
    }

    #[test]
    fn broadcast_reaches_every_shard_with_one_shared_frame() {
        let (hub, inboxes) = Hub::new(2, MailboxLimits::default()).unwrap();
        hub.broadcast("room", Message::Text("hi")).unwrap();
        let mut ptrs = Vec::new();
        for shard in &inboxes {
            match shard.inbox.take().unwrap() {
                Command::Broadcast(ch, frame, _) => {
                    assert_eq!(&*ch, "room");
                    assert_eq!(&frame.plain()[..], &[0x81, 2, b'h', b'i']);
                    ptrs.push(frame.plain().as_ptr());
                }
                _ => panic!("expected a broadcast"),
            }
        }
        assert_eq!(ptrs[0], ptrs[1], "the encoded frame is shared, not copied");
    }

    #[test]
    fn a_broadcast_reports_the_shards_it_could_not_reach_and_they_count_it() {
        let limits = MailboxLimits {
            commands: 1,
            bytes: 1 << 20,
        };
        let (hub, inboxes) = Hub::new(3, limits).unwrap();
        hub.send(ConnId::new(1, 0, 1), Message::Text("fills shard 1"))
            .unwrap();
        assert_eq!(
            hub.broadcast("room", Message::Text("hi")),
            Err(HubError::MailboxFull { shards: 1 })
        );
        assert!(inboxes[0].inbox.take().is_some(), "shard 0 got it");
        assert!(inboxes[2].inbox.take().is_some(), "shard 2 got it");
        let rejected: Vec<u64> = hub
            .stats()
            .shards
            .iter()
            .map(|s| s.mailbox_rejected)
            .collect();
        assert_eq!(rejected, vec![0, 1, 0]);
    }

    #[test]
    fn posted_closures_count_what_they_hold_against_the_byte_bound() {
        let limits = MailboxLimits {
            commands: 100,
            bytes: 1000,
        };
        let (hub, inboxes) = Hub::new(1, limits).unwrap();
        let big = vec![0u8; 600];
        hub.post_run_holding(0, big.len(), move |_| drop(big))
            .unwrap();
        let again = vec![0u8; 600];
        assert_eq!(
            hub.post_run_holding(0, again.len(), move |_| drop(again)),
            Err(HubError::MailboxFull { shards: 1 }),
            "1,200 bytes held are over the 1,000-byte bound"
        );
        let held = match inboxes[0].inbox.take() {
            Some(cmd @ Command::Run(..)) => cmd.held_bytes(),
            _ => panic!("expected a closure"),
        };
        assert!(held >= 600, "{held}");
        assert!(hub.post_run(0, |_| ()).is_ok(), "room again once taken");
    }

    #[test]
    fn closing_with_a_code_the_wire_forbids_is_refused() {
        let (hub, inboxes) = Hub::new(1, MailboxLimits::default()).unwrap();
        let id = ConnId::new(0, 0, 1);
        for bad in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
            assert_eq!(hub.close(id, bad, ""), Err(HubError::InvalidCloseCode(bad)));
        }
        assert!(inboxes[0].inbox.take().is_none());
        assert_eq!(hub.close(id, 4000, "bye"), Ok(()));
    }
}
