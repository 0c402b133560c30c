//! The readiness-based fallback driver (mio/epoll), for kernels or sandboxes
//! without io_uring, or when `RINGGATE_IO=epoll`. It reads into one shared
//! per-shard buffer and writes with `writev`; all protocol work is the shard's.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::sendq::MAX_IOVECS;
use super::shard::{Next, Shard, OVERLOADED};
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

    while !shard.finished() {
        let timeout = if shard.has_dirty() {
            0
        } else {
            next_tick.saturating_sub(shard.now)
        };
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(timeout))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        shard.update_clock();
        for event in events.iter() {
            match event.token() {
                LISTENER => accept_all(&mut shard, &poll, listen_fd),
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
        if shard.now >= next_tick {
            shard.tick();
            next_tick = shard.now + tick;
        }
        if !shard.accepting() && listener.is_some() {
            poll.registry().deregister(&mut SourceFd(&listen_fd))?;
            listener = None;
        }
        shard.take_dirty(&mut dirty);
        for &key in &dirty {
            flush(&mut shard, key);
        }
    }
    let keys: Vec<usize> = shard.conns.iter().map(|(k, _)| k).collect();
    for key in keys {
        socket::close_fd(shard.conns[key].fd);
        shard.remove(key);
    }
    Ok(())
}

/// Accepts until the backlog is empty.
fn accept_all(shard: &mut Shard, poll: &Poll, listen_fd: RawFd) {
    loop {
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
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return,
                Some(libc::EINTR | libc::ECONNABORTED) => continue,
                _ => {
                    // EMFILE/ENFILE/ENOBUFS: try again on the next readiness event.
                    tracing::warn!(shard = shard.index, "accept failed: {err}");
                    return;
                }
            }
        }
        let Some(key) = shard.on_accept(fd, PeerAddr::Socket(fd)) else {
            socket::refuse(fd, &OVERLOADED);
            continue;
        };
        let registered = poll.registry().register(
            &mut SourceFd(&fd),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            tracing::warn!(shard = shard.index, "cannot watch a connection: {e}");
            socket::close_fd(fd);
            shard.remove(key);
        }
    }
}

/// Reads until the socket would block (edge-triggered readiness).
fn read_all(shard: &mut Shard, key: usize, buf: &mut [u8]) {
    while shard.wants_input(key) {
        let fd = shard.conns[key].fd;
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

/// Writes what the connection has queued, and closes it when the shard says so.
fn flush(shard: &mut Shard, key: usize) {
    loop {
        match shard.next(key) {
            Next::Idle => return,
            Next::Close => {
                socket::close_fd(shard.conns[key].fd);
                shard.remove(key);
                return;
            }
            Next::Write => {
                let conn = &mut shard.conns[key];
                let mut iov = [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; MAX_IOVECS];
                let count = conn.sendq.start_write(&mut iov);
                let wanted: usize = iov[..count].iter().map(|v| v.iov_len).sum();
                // SAFETY: the iovecs point into chunks the queue keeps until `complete`.
                let n = unsafe { libc::writev(conn.fd, iov.as_ptr(), count as libc::c_int) };
                if n >= 0 {
                    shard.on_written(key, n as usize);
                    if (n as usize) < wanted {
                        return; // the socket buffer is full: wait for writability
                    }
                } else {
                    match io::Error::last_os_error().raw_os_error() {
                        Some(libc::EAGAIN) => {
                            conn.sendq.abort_write();
                            return;
                        }
                        Some(libc::EINTR) => conn.sendq.abort_write(),
                        _ => shard.on_write_error(key),
                    }
                }
            }
        }
    }
}
