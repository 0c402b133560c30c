//! The completion-based driver (io_uring, default): multishot accept,
//! multishot receive into a provided-buffer ring, one `send`/`writev` in
//! flight per connection, and a multishot poll on the hub's eventfd. All
//! protocol work is the shard's; this file only moves bytes and descriptors.
//! Sockets are process descriptors, or direct ones (see `direct`). A socket
//! the shard wants closed is shut down first, which ends its in-flight
//! send and receive, and closed once their completions are in.

mod bufring;
mod direct;

use std::collections::VecDeque;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::descriptor::Descriptor;
use super::sendq::MAX_IOVECS;
use super::shard::{Detached, Next, Room, Shard, OVERLOADED};
use super::socket::{self, PeerAddr};
use bufring::BufRing;
use direct::DirectTable;
pub(super) use direct::TABLE_HEADROOM;

const SQ_ENTRIES: u32 = 4096;
/// Submissions handed to the kernel at once, at most; then the shard yields its CPU. The
/// kernel here runs without preemption (`PREEMPT_NONE`), and one `io_uring_enter` that submits
/// thousands of loopback sends (each running the receiver's softirq inline) holds its CPU
/// until it returns: during a broadcast to a million connections that kept `/health` waiting
/// for seconds (p99 3.4 s with batches of 4,096; 47 ms with 256 and the yield; 9 ms with the
/// control plane at real-time priority too, `scripts/scale.sh --preset broadcast`). Small
/// workloads never fill a batch.
const SUBMIT_BATCH: usize = 256;
const CQ_ENTRIES: u32 = 16384;
/// Few receive buffers on purpose: the kernel fills them all in one batch
/// before the shard parses them, so a pool that fits in L2 keeps that batch in
/// cache (500 x 16 KiB echo: 16 x 64 KiB ~108 k msgs/s, 64 ~90 k, 256 ~67 k).
/// Buffers are consumed incrementally where the kernel can, so small messages
/// from many connections share a buffer instead of taking one each.
const BUF_COUNT: u16 = 16;
const BUF_SIZE: usize = 64 * 1024;
/// Receives that ended on an empty pool are re-armed this many per loop, oldest
/// first: each can take several buffers at once, and re-arming all of them
/// would only end most again on the still-empty pool (a completion and a
/// submission each, ~1 M/s of churn at 500 x 16 KiB echo).
const REARM_PER_LOOP: usize = BUF_COUNT as usize / 4;
/// After this long without received bytes the pool's pages go back to the
/// system: incremental consumption walks every buffer, so a handshake storm
/// leaves the whole 1 MiB resident (0.1 KiB per connection at 10,000 idle).
const POOL_IDLE_MS: u64 = 1000;
const BUF_GROUP: u16 = 0;

/// What a completion is for: the top byte of its user data; the rest is the slab key.
const KIND_SHIFT: u32 = 56;
const ACCEPT: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
const WAKE: u64 = 4;
/// Completions nobody acts on: cancels, and direct descriptors' shutdowns and closes.
const UNWATCHED: u64 = 5;
/// The 503 to a refused direct descriptor was sent; the key is the descriptor.
const REFUSED: u64 = 6;
/// A direct descriptor's shutdown completed; the key is the slab key.
const SHUT: u64 = 8;
/// A direct descriptor handed to the control plane got its process
/// descriptor; the key indexes `Driver::installing`.
const INSTALLED: u64 = 7;

fn user_data(kind: u64, key: usize) -> u64 {
    (kind << KIND_SHIFT) | key as u64
}

/// Checks that this kernel and sandbox give us what the driver needs: a ring,
/// a provided-buffer ring, and multishot receive (kernel 6.0+). The test
/// ring lives on a thread of its own: the kernel's clean-up work for a ring
/// is queued on the thread that made it, and wakes that thread's next
/// blocking call with EINTR (a socket read with a timeout returns it to the
/// caller), which a library user's thread should never see.
pub(super) fn probe() -> io::Result<()> {
    std::thread::scope(|s| {
        s.spawn(probe_here)
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the io_uring probe panicked")))
    })
}

fn probe_here() -> io::Result<()> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        if v.trim() == "2" {
            return Err(io::Error::other("disabled by kernel.io_uring_disabled"));
        }
    }
    let (major, minor) = kernel_version()?;
    if (major, minor) < (6, 0) {
        return Err(io::Error::other(format!(
            "kernel {major}.{minor} lacks multishot receive (needs 6.0)"
        )));
    }
    let ring = IoUring::new(8)?;
    BufRing::new(&ring, 2, 64, 0).map(drop)
}

fn kernel_version() -> io::Result<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    Ok((parts.next().unwrap_or(0), parts.next().unwrap_or(0)))
}

/// Per-connection driver state, indexed like the shard's slab.
#[derive(Default, Clone, Copy)]
struct OpState {
    recv_armed: bool,
    send_in_flight: bool,
    shut_down: bool,
    /// A direct descriptor's shutdown has not completed: its table entry
    /// may not be closed yet (a shutdown still queued would otherwise hit
    /// whatever socket the next accept puts in that entry).
    shutdown_in_flight: bool,
    /// The receive was cancelled for a hand-off.
    recv_cancelled: bool,
}

struct Driver {
    // Field order matters: the ring is dropped before the buffers it uses.
    ring: IoUring,
    bufs: BufRing,
    /// Set when sockets are direct descriptors.
    direct: Option<DirectTable>,
    listen_fd: RawFd,
    /// Closed once the accepts on it are cancelled (draining): the kernel
    /// then refuses newcomers instead of queueing them for nobody.
    listener: Option<TcpListener>,
    /// The cancel of the accepts is queued: close the listener once it is
    /// submitted.
    close_listener: bool,
    accepting: bool,
    /// Accept slots with no accept armed (after a failure, while the shard
    /// pauses accepting).
    idle_accepts: Vec<usize>,
    ops: Vec<OpState>,
    /// iovec arrays of in-flight `writev`s, one per connection that has one.
    iovecs: Vec<Option<Box<[libc::iovec; MAX_IOVECS]>>>,
    /// Boxed so an array keeps its address while it moves between this list
    /// and `iovecs` (the kernel reads it during the write).
    #[allow(clippy::vec_box)]
    spare_iovecs: Vec<Box<[libc::iovec; MAX_IOVECS]>>,
    /// Submissions that found the queue full and the kernel busy: they go
    /// in at the start of the next loop turn, in order.
    overflow: VecDeque<squeue::Entry>,
    /// Connections whose multishot receive must be re-armed, oldest first.
    rearm: VecDeque<usize>,
    /// Connections whose receive or send failed for want of kernel memory:
    /// tried again at the next timer tick, not at once (which would spin).
    retry_at_tick: Vec<usize>,
    /// When bytes last arrived (shard ms), while the pool may hold resident
    /// pages; `None` once they were given back.
    pool_used_at: Option<u64>,
    /// Direct descriptors on their way to the control plane, waiting for the
    /// process descriptor the kernel installs for them.
    installing: slab::Slab<(u32, Detached)>,
}

/// Errors of `io_uring_enter` that only mean "try again later".
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

/// Runs the shard until it has drained.
pub(super) fn run(mut shard: Shard, listener: TcpListener) -> io::Result<()> {
    let ring = build_ring()?;
    let bufs = BufRing::new(&ring, BUF_COUNT, BUF_SIZE, BUF_GROUP)?;
    let direct = direct_table(&ring, &shard);
    let accepts = if direct.is_some() {
        direct::ACCEPT_SLOTS
    } else {
        1
    };
    let mut driver = Driver {
        ring,
        bufs,
        direct,
        listen_fd: listener.as_raw_fd(),
        listener: Some(listener),
        close_listener: false,
        accepting: true,
        idle_accepts: (0..accepts).collect(),
        ops: Vec::new(),
        iovecs: Vec::new(),
        spare_iovecs: Vec::new(),
        overflow: VecDeque::new(),
        rearm: VecDeque::new(),
        retry_at_tick: Vec::new(),
        pool_used_at: None,
        installing: slab::Slab::new(),
    };
    driver.arm_accepts(&shard);
    driver.arm_waker(&shard);
    shard.ready();
    let result = driver.run(&mut shard);
    // Tear the ring down first: no operation may outlive the buffers below.
    // That also closes every direct descriptor; process ones close as the
    // shard forgets them.
    drop(driver);
    shard.end();
    result
}

/// The registered file table, when the configuration asks for direct
/// descriptors; without one (old kernel) sockets stay process descriptors.
fn direct_table(ring: &IoUring, shard: &Shard) -> Option<DirectTable> {
    let entries = shard.shared.capacity.table_entries?;
    let reserve = shard.shared.capacity.admin_reserve as u32;
    match DirectTable::register(ring, entries, reserve) {
        Ok(table) => {
            tracing::debug!(
                shard = shard.index,
                entries,
                "sockets are direct descriptors"
            );
            Some(table)
        }
        Err(e) => {
            tracing::warn!(
                shard = shard.index,
                "direct descriptors unavailable ({e}); using process descriptors"
            );
            None
        }
    }
}

fn build_ring() -> io::Result<IoUring> {
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(CQ_ENTRIES)
        .setup_single_issuer()
        .setup_defer_taskrun();
    match builder.build(SQ_ENTRIES) {
        Ok(ring) => Ok(ring),
        // Kernels before 6.1 reject DEFER_TASKRUN; a plain ring works everywhere else.
        Err(_) => IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES),
    }
}

impl Driver {
    /// Queues one submission. When the submission queue is full it is handed
    /// to the kernel first; if the kernel is busy and takes nothing, the
    /// entry waits in `overflow` for the next loop turn. Never fails: a ring
    /// that stays broken is reported by the loop's own `io_uring_enter`.
    ///
    /// # Safety
    /// Every buffer `entry` points to (an iovec array, send chunks, an accept
    /// address slot) must stay valid and in place until the operation's
    /// completion is reaped.
    unsafe fn push(&mut self, entry: squeue::Entry, data: u64) {
        let entry = entry.user_data(data);
        if self.overflow.is_empty() {
            let mut queue = self.ring.submission();
            // SAFETY: the caller's contract covers the entry's buffers.
            if unsafe { queue.push(&entry) }.is_ok() {
                let batch_full = queue.len() >= SUBMIT_BATCH;
                drop(queue);
                if batch_full {
                    self.submit_batch();
                }
                return;
            }
            drop(queue);
            if let Err(e) = self.ring.submit() {
                if !is_transient(&e) {
                    tracing::warn!("io_uring submit failed: {e}");
                }
            }
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
        }
        self.overflow.push_back(entry);
    }

    /// Hands a full batch of submissions to the kernel without waiting, then lets another
    /// thread have the CPU (see [`SUBMIT_BATCH`]).
    fn submit_batch(&mut self) {
        if let Err(e) = self.ring.submit() {
            if !is_transient(&e) {
                tracing::warn!("io_uring submit failed: {e}");
            }
        }
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }

    /// Moves waiting submissions into the queue, as many as fit.
    fn push_overflow(&mut self) {
        while let Some(entry) = self.overflow.front() {
            // SAFETY: entries in `overflow` were queued under `push`'s
            // contract, which holds until their completions.
            if unsafe { self.ring.submission().push(entry) }.is_err() {
                return;
            }
            self.overflow.pop_front();
        }
    }

    fn state(&mut self, key: usize) -> &mut OpState {
        if key >= self.ops.len() {
            self.ops.resize(key + 1, OpState::default());
        }
        &mut self.ops[key]
    }

    fn run(&mut self, shard: &mut Shard) -> io::Result<()> {
        let tick = shard.tick_interval_ms();
        shard.update_clock();
        let mut next_tick = shard.now + tick;
        let mut completions: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        let mut dirty = Vec::new();
        loop {
            self.flush_all(shard, &mut dirty);
            if shard.finished() {
                return Ok(());
            }
            self.bufs.publish();
            self.push_overflow();
            let mut wake_at = next_tick;
            if let Some(at) = shard
                .accept_resumes_at()
                .filter(|_| !self.idle_accepts.is_empty())
            {
                wake_at = wake_at.min(at);
            }
            let wait_ms = if shard.has_work() || !self.rearm.is_empty() || !self.overflow.is_empty()
            {
                0
            } else {
                wake_at.saturating_sub(shard.now)
            };
            let ts = types::Timespec::new()
                .sec(wait_ms / 1000)
                .nsec((wait_ms % 1000) as u32 * 1_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {
                    if self.close_listener && self.overflow.is_empty() {
                        // The cancel looked the listener up as it was
                        // submitted: closing it now ends the last reference.
                        self.listener = None;
                        self.close_listener = false;
                    }
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            shard.update_clock();
            completions.clear();
            completions.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(data, res, flags) in &completions {
                self.complete(shard, data, res, flags);
            }
            shard.drain_inbox_backlog();
            if shard.now >= next_tick {
                shard.tick();
                next_tick = shard.now + tick;
                self.retry_starved(shard);
                if self
                    .pool_used_at
                    .is_some_and(|at| shard.now.saturating_sub(at) >= POOL_IDLE_MS)
                {
                    self.bufs.discard_pages();
                    self.pool_used_at = None;
                }
            }
            self.arm_accepts(shard);
            if !shard.accepting() && self.accepting {
                self.accepting = false;
                let accepts = types::CancelBuilder::fd(types::Fd(self.listen_fd)).all();
                // SAFETY: a cancel points to no buffer.
                unsafe {
                    self.push(
                        opcode::AsyncCancel2::new(accepts).build(),
                        user_data(UNWATCHED, 0),
                    )
                };
                self.close_listener = true;
            }
        }
    }

    fn complete(&mut self, shard: &mut Shard, data: u64, res: i32, flags: u32) {
        let key = (data & ((1 << KIND_SHIFT) - 1)) as usize;
        match data >> KIND_SHIFT {
            ACCEPT => self.on_accept(shard, key, res, flags),
            RECV => self.on_recv(shard, key, res, flags),
            SEND => self.on_send(shard, key, res),
            // SAFETY: a close points to no buffer.
            REFUSED => unsafe { self.push(direct::close(key as RawFd), user_data(UNWATCHED, 0)) },
            INSTALLED => self.on_installed(shard, key, res),
            SHUT => {
                self.state(key).shutdown_in_flight = false;
                shard.mark_writable(key);
            }
            WAKE => {
                shard.drain_inbox();
                if !cqueue::more(flags) {
                    self.arm_waker(shard);
                }
            }
            _ => {}
        }
    }

    fn arm_waker(&mut self, shard: &Shard) {
        let poll = opcode::PollAdd::new(types::Fd(shard.waker_fd()), libc::POLLIN as u32)
            .multi(true)
            .build();
        // SAFETY: a poll points to no buffer.
        unsafe { self.push(poll, user_data(WAKE, 0)) };
    }

    /// Arms the accepts that are down, unless the shard pauses accepting.
    /// Process descriptors: one multishot accept. Direct descriptors: the
    /// single-shot accepts, each with its own peer address buffer.
    fn arm_accepts(&mut self, shard: &Shard) {
        if !self.accepting || !shard.may_accept() {
            return;
        }
        while let Some(slot) = self.idle_accepts.pop() {
            let entry = match &mut self.direct {
                Some(table) => table.accept(self.listen_fd, slot),
                None => opcode::AcceptMulti::new(types::Fd(self.listen_fd))
                    .flags(libc::SOCK_CLOEXEC)
                    .build(),
            };
            // SAFETY: a direct accept writes into its slot of the table's
            // boxed address array, which lives as long as the driver.
            unsafe { self.push(entry, user_data(ACCEPT, slot)) };
        }
    }

    fn on_accept(&mut self, shard: &mut Shard, slot: usize, res: i32, flags: u32) {
        if res >= 0 {
            let (socket, peer, room) = match &mut self.direct {
                Some(table) => {
                    table.opened();
                    let socket = Descriptor::Direct(res as u32);
                    (socket, PeerAddr::Known(table.peer(slot)), table.room())
                }
                None => {
                    // SAFETY: the kernel just gave us this descriptor.
                    let socket = unsafe { Descriptor::from_accepted(res) };
                    (socket, PeerAddr::Socket(res), Room::Normal)
                }
            };
            match shard.on_accept(socket, peer, room) {
                Ok(key) => {
                    *self.state(key) = OpState::default();
                    self.arm_recv(shard, key);
                }
                Err(socket) => self.refuse(socket),
            }
        } else if res != -libc::ECANCELED {
            shard.accept_failed(-res);
        }
        let ended = self.direct.is_some() || !cqueue::more(flags);
        if ended && self.accepting {
            self.idle_accepts.push(slot);
            self.arm_accepts(shard);
        }
    }

    /// Answers a socket over the connection limit with [`OVERLOADED`] and closes it.
    fn refuse(&mut self, socket: Descriptor) {
        let index = match socket {
            Descriptor::Process(fd) => return socket::refuse(fd, &OVERLOADED),
            Descriptor::Direct(index) => index,
        };
        if let Some(table) = &mut self.direct {
            table.closed();
        }
        let send = opcode::Send::new(
            types::Fixed(index),
            OVERLOADED.as_ptr(),
            OVERLOADED.len() as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build();
        // SAFETY: OVERLOADED is a static: the bytes outlive the send. The
        // close follows its completion.
        unsafe { self.push(send, user_data(REFUSED, index as usize)) };
    }

    /// `entry` on the kind of descriptor this driver's sockets are.
    fn on_socket(&self, entry: squeue::Entry) -> squeue::Entry {
        if self.direct.is_some() {
            direct::fixed(entry)
        } else {
            entry
        }
    }

    fn arm_recv(&mut self, shard: &Shard, key: usize) {
        let fd = shard.socket_fd(key);
        let entry =
            self.on_socket(opcode::RecvMulti::new(types::Fd(fd), self.bufs.group()).build());
        self.state(key).recv_armed = true;
        // SAFETY: the receive takes its buffers from the ring's pool, which
        // outlives the ring's operations.
        unsafe { self.push(entry, user_data(RECV, key)) };
    }

    fn on_recv(&mut self, shard: &mut Shard, key: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if !more {
            self.state(key).recv_armed = false;
        }
        if let Some(bid) = cqueue::buffer_select(flags) {
            let len = res.max(0) as usize;
            if len > 0 {
                self.pool_used_at = Some(shard.now);
                let data = self.bufs.filled(bid, len);
                shard.on_data(key, data);
            }
            self.bufs.release(bid, len, cqueue::buffer_more(flags));
        }
        match res {
            0 => shard.on_eof(key),
            _ if more || !shard.wants_input(key) => {}
            // The pool ran dry, or a transient failure: receive again.
            r if r > 0 || matches!(-r, libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
                self.rearm.push_back(key)
            }
            r if -r == libc::ENOMEM => self.retry_at_tick.push(key),
            _ => shard.on_eof(key),
        }
        // A receive that ended lets a closing connection finish.
        if !more {
            shard.mark_writable(key);
        }
    }

    fn on_send(&mut self, shard: &mut Shard, key: usize, res: i32) {
        self.state(key).send_in_flight = false;
        if let Some(iov) = self.iovecs.get_mut(key).and_then(Option::take) {
            self.spare_iovecs.push(iov);
        }
        match res {
            n if n >= 0 => shard.on_written(key, n as usize),
            // Nothing was written and the connection is fine: the bytes stay
            // queued and go out at the next tick (the minimum send rate still
            // bounds how long that may take).
            e if matches!(
                -e,
                libc::EAGAIN | libc::EINTR | libc::ENOMEM | libc::ENOBUFS
            ) =>
            {
                shard.write_not_started(key);
                self.retry_at_tick.push(key);
            }
            _ => shard.on_write_error(key),
        }
    }

    /// Tries again what failed for want of memory since the last tick.
    fn retry_starved(&mut self, shard: &mut Shard) {
        for key in std::mem::take(&mut self.retry_at_tick) {
            if shard.wants_input(key) && !self.state(key).recv_armed {
                self.rearm.push_back(key);
            }
            shard.mark_writable(key);
        }
    }

    /// Acts on every connection the shard touched: start writes, close sockets.
    fn flush_all(&mut self, shard: &mut Shard, dirty: &mut Vec<usize>) {
        let mut rearmed = 0;
        while rearmed < REARM_PER_LOOP {
            let Some(key) = self.rearm.pop_front() else {
                break;
            };
            // Skip a connection that closed (or whose slot a new one took).
            if shard.wants_input(key) && !self.state(key).recv_armed {
                self.arm_recv(shard, key);
                rearmed += 1;
            }
        }
        shard.take_dirty(dirty);
        for &key in dirty.iter() {
            match shard.next(key) {
                Next::Idle => {}
                Next::Write => self.start_send(shard, key),
                Next::Close { reset } => self.close(shard, key, reset),
                Next::HandOff => self.hand_off(shard, key),
            }
        }
    }

    fn start_send(&mut self, shard: &mut Shard, key: usize) {
        let mut iov = self.spare_iovecs.pop().unwrap_or_else(|| {
            Box::new(
                [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; MAX_IOVECS],
            )
        });
        let fd = types::Fd(shard.socket_fd(key));
        let count = shard.start_write(key, &mut iov[..]);
        let entry = if count == 1 {
            let (ptr, len) = (iov[0].iov_base as *const u8, iov[0].iov_len);
            self.spare_iovecs.push(iov);
            opcode::Send::new(fd, ptr, len as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        } else {
            let entry = opcode::Writev::new(fd, iov.as_ptr(), count as u32).build();
            if key >= self.iovecs.len() {
                self.iovecs.resize_with(key + 1, || None);
            }
            self.iovecs[key] = Some(iov);
            entry
        };
        self.state(key).send_in_flight = true;
        let entry = self.on_socket(entry);
        // SAFETY: the chunks the iovecs point to stay in the connection's send
        // queue, unmoved, until this send completes (`SendQueue::start_write`);
        // a boxed iovec array stays in `iovecs` until then; and a connection
        // is only removed once its send has completed (`close`).
        unsafe { self.push(entry, user_data(SEND, key)) };
    }

    /// Gives a connection to the control plane once its receive has ended:
    /// the receive is cancelled first (bytes that still arrive go with the
    /// connection), then a process descriptor goes over as it is, and a
    /// direct one is installed into the process's table first.
    fn hand_off(&mut self, shard: &mut Shard, key: usize) {
        let state = *self.state(key);
        if state.recv_armed || state.send_in_flight {
            if state.recv_armed && !state.recv_cancelled {
                self.state(key).recv_cancelled = true;
                let recv = types::CancelBuilder::user_data(user_data(RECV, key));
                // SAFETY: a cancel points to no buffer.
                unsafe {
                    self.push(
                        opcode::AsyncCancel2::new(recv).build(),
                        user_data(UNWATCHED, 0),
                    )
                };
            }
            return;
        }
        *self.state(key) = OpState::default();
        match shard.detach(key) {
            (Descriptor::Process(fd), detached) => shard.hand_off(fd, detached),
            (Descriptor::Direct(index), detached) => {
                let token = self.installing.insert((index, detached));
                let install = opcode::FixedFdInstall::new(types::Fixed(index), 0).build();
                // SAFETY: an install points to no buffer.
                unsafe { self.push(install, user_data(INSTALLED, token)) };
            }
        }
    }

    /// The process descriptor for a direct one is in (or the kernel could
    /// not make one: the connection is dropped). The table entry is closed
    /// either way.
    fn on_installed(&mut self, shard: &mut Shard, token: usize, res: i32) {
        let Some((index, detached)) = self.installing.try_remove(token) else {
            return;
        };
        if let Some(table) = &mut self.direct {
            table.closed();
        }
        // SAFETY: a close points to no buffer.
        unsafe { self.push(direct::close(index as RawFd), user_data(UNWATCHED, 0)) };
        if res < 0 {
            tracing::warn!(
                shard = shard.index,
                "cannot give a direct descriptor to the control plane: {}",
                io::Error::from_raw_os_error(-res)
            );
            return;
        }
        // SAFETY: the kernel just installed this descriptor for us alone.
        let fd = unsafe { OwnedFd::from_raw_fd(res) };
        shard.hand_off(fd, detached);
    }

    /// Closes a connection once no operation refers to it any more. While a
    /// send or receive is in flight the socket is shut down instead: that
    /// ends both (a peer that stopped reading can hold a send forever), and
    /// their completions bring the connection back here.
    fn close(&mut self, shard: &mut Shard, key: usize, reset: bool) {
        let state = *self.state(key);
        if state.shutdown_in_flight {
            return; // its completion brings the connection back here
        }
        if state.send_in_flight || state.recv_armed {
            if !state.shut_down {
                self.state(key).shut_down = true;
                let fd = shard.socket_fd(key);
                if self.direct.is_some() {
                    self.state(key).shutdown_in_flight = true;
                    let entry = opcode::Shutdown::new(types::Fd(fd), libc::SHUT_RDWR).build();
                    // SAFETY: a shutdown points to no buffer.
                    unsafe { self.push(direct::fixed(entry), user_data(SHUT, key)) };
                } else {
                    socket::shutdown(fd);
                }
            }
            return;
        }
        *self.state(key) = OpState::default();
        match shard.remove(key) {
            Descriptor::Direct(index) => {
                if let Some(table) = &mut self.direct {
                    table.closed();
                }
                // SAFETY: a close points to no buffer.
                unsafe { self.push(direct::close(index as RawFd), user_data(UNWATCHED, 0)) };
            }
            Descriptor::Process(fd) => {
                if reset {
                    socket::set_abortive_close(&fd);
                }
            }
        }
    }
}
