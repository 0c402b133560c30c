//! The readiness-based fallback driver (mio/epoll), for kernels or sandboxes
//! without io_uring, or when `RINGGATE_IO=epoll`. It reads into one shared
//! per-shard buffer and writes with `writev`; all protocol work is the shard's.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use super::descriptor::Descriptor;
use super::sendq::MAX_IOVECS;
use super::shard::{Next, Room, Shard, OVERLOADED};
use super::socket::{self, PeerAddr};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const READ_BUF: usize = 64 * 1024;

/// Runs the shard until it has drained.
pub(super) fn run(mut shard: Shard, listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let listen_fd = listener.as_raw_fd();
    let mut listener = Some(listener);
    poll.registry()
        .register(&mut SourceFd(&listen_fd), LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut SourceFd(&shard.waker_fd()), WAKER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUF];
    let mut dirty = Vec::new();
    let tick = shard.tick_interval_ms();
    shard.update_clock();
    let mut next_tick = shard.now + tick;
    shard.ready();
    // The last accept round ended on a failure, not on an empty backlog:
    // readiness is edge-triggered, so the backlog is retried by hand.
    let mut accept_pending = false;

    while !shard.finished() {
        let mut wake_at = next_tick;
        if let Some(at) = shard.accept_resumes_at().filter(|_| accept_pending) {
            wake_at = wake_at.min(at);
        }
        let timeout = if shard.has_work() {
            0
        } else {
            wake_at.saturating_sub(shard.now)
        };
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(timeout))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        shard.update_clock();
        for event in events.iter() {
            match event.token() {
                LISTENER => accept_pending = !accept_all(&mut shard, &poll, listen_fd),
                WAKER => shard.drain_inbox(),
                Token(key) => {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        read_all(&mut shard, key, &mut buf);
                    }
                    if event.is_writable() {
                        shard.mark_writable(key);
                    }
                }
            }
        }
        shard.drain_inbox_backlog();
        if shard.now >= next_tick {
            shard.tick();
            next_tick = shard.now + tick;
        }
        if accept_pending && listener.is_some() && shard.may_accept() {
            accept_pending = !accept_all(&mut shard, &poll, listen_fd);
        }
        if !shard.accepting() && listener.is_some() {
            poll.registry().deregister(&mut SourceFd(&listen_fd))?;
            listener = None;
        }
        shard.take_dirty(&mut dirty);
        for &key in &dirty {
            flush(&mut shard, poll.registry(), key);
        }
    }
    shard.end();
    Ok(())
}

/// Accepts until the backlog is empty (true) or an accept fails or the shard
/// pauses accepting (false: retry later).
fn accept_all(shard: &mut Shard, poll: &Poll, listen_fd: RawFd) -> bool {
    while shard.may_accept() {
        // SAFETY: accept4 on our listening socket; no address is requested.
        let fd = unsafe {
            libc::accept4(
                listen_fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return true,
                Some(libc::EINTR) => continue,
                Some(errno) => {
                    shard.accept_failed(errno);
                    if errno != libc::ECONNABORTED {
                        return false;
                    }
                    continue;
                }
                None => return false,
            }
        }
        // SAFETY: accept4 just returned this descriptor to us alone.
        let socket = unsafe { Descriptor::from_accepted(fd) };
        let key = match shard.on_accept(socket, PeerAddr::Socket(fd), Room::Normal) {
            Ok(key) => key,
            Err(Descriptor::Process(fd)) => {
                socket::refuse(fd, &OVERLOADED);
                continue;
            }
            Err(Descriptor::Direct(_)) => unreachable!("epoll sockets are process descriptors"),
        };
        let registered = poll.registry().register(
            &mut SourceFd(&fd),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            tracing::warn!(shard = shard.index, "cannot watch a connection: {e}");
            drop(shard.remove(key));
        }
    }
    false
}

/// Reads until the socket would block (edge-triggered readiness).
fn read_all(shard: &mut Shard, key: usize, buf: &mut [u8]) {
    while shard.wants_input(key) {
        let fd = shard.socket_fd(key);
        // SAFETY: reads into our live buffer from a socket this shard owns.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return shard.on_eof(key),
            n if n > 0 => shard.on_data(key, &mut buf[..n as usize]),
            _ => match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return,
                Some(libc::EINTR) => continue,
                _ => return shard.on_eof(key),
            },
        }
    }
}

/// Writes what the connection has queued, and closes it or hands it to the
/// control plane when the shard says so.
fn flush(shard: &mut Shard, registry: &Registry, key: usize) {
    loop {
        match shard.next(key) {
            Next::Idle => return,
            Next::HandOff => {
                // The socket leaves this epoll set before its slot is reused.
                let fd = shard.socket_fd(key);
                if let Err(e) = registry.deregister(&mut SourceFd(&fd)) {
                    tracing::warn!(
                        shard = shard.index,
                        "cannot stop watching a connection: {e}"
                    );
                }
                if let (Descriptor::Process(fd), detached) = shard.detach(key) {
                    shard.hand_off(fd, detached);
                }
                return;
            }
            Next::Close { reset } => {
                // Dropping the descriptor closes it (and ends its epoll watch).
                if let Descriptor::Process(fd) = shard.remove(key) {
                    if reset {
                        socket::set_abortive_close(&fd);
                    }
                }
                return;
            }
            Next::Write => {
                let mut iov = [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; MAX_IOVECS];
                let count = shard.start_write(key, &mut iov);
                let wanted: usize = iov[..count].iter().map(|v| v.iov_len).sum();
                // SAFETY: the iovecs point into chunks the queue keeps until `complete`.
                let n = unsafe {
                    libc::writev(shard.socket_fd(key), iov.as_ptr(), count as libc::c_int)
                };
                if n >= 0 {
                    shard.on_written(key, n as usize);
                    if (n as usize) < wanted {
                        return; // the socket buffer is full: wait for writability
                    }
                } else {
                    match io::Error::last_os_error().raw_os_error() {
                        Some(libc::EAGAIN) => return shard.write_not_started(key),
                        Some(libc::EINTR) => shard.write_not_started(key),
                        _ => shard.on_write_error(key),
                    }
                }
            }
        }
    }
}
