//! Socket set-up shared by both drivers: the per-shard SO_REUSEPORT listeners,
//! per-connection options, peer lookup and the process's file limit.
//! Nothing here runs per frame.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Resolves `host:port` to one address.
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {host}"),
        )
    })
}

/// Binds `count` listeners on one address with SO_REUSEPORT, so each shard
/// accepts on its own socket. With port 0 the first listener picks the port
/// and the others join it. Fails if another process already holds the port.
///
/// With `defer_accept` the kernel finishes a connection's accept only when its
/// first bytes arrive (`TCP_DEFER_ACCEPT`): a WebSocket client speaks first,
/// so the shard wakes once per handshake (accept and request together) instead
/// of twice, and a client that connects and stays silent is held by the
/// kernel, then accepted after about a second and timed by `read_timeout`.
pub(crate) fn bind_listeners(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    defer_accept: bool,
) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        // Accepted sockets inherit TCP_NODELAY (frames are written whole, so
        // Nagle would only add delay): no setsockopt per connection.
        socket.set_nodelay(true)?;
        if defer_accept {
            set_defer_accept(&socket, DEFER_ACCEPT_SECS)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(backlog.min(i32::MAX as u32) as i32)?;
        let listener: TcpListener = socket.into();
        if addr.port() == 0 {
            addr = listener.local_addr()?;
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// How long the kernel waits for a connection's first bytes before accepting
/// it anyway (rounded up by the kernel to its SYN-ACK retransmission times).
const DEFER_ACCEPT_SECS: libc::c_int = 1;

fn set_defer_accept(socket: &Socket, secs: libc::c_int) -> io::Result<()> {
    // SAFETY: a plain int option on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Refuses to start when something else already listens on `addr`: with
/// SO_REUSEPORT a second server would otherwise silently share the port.
pub(crate) fn ensure_port_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    Ok(())
}

/// Where a connection's peer address comes from. Every address it gives is
/// canonical: an IPv4 peer of a dual-stack listener (`::ffff:127.0.0.1`)
/// comes out as the IPv4 address it is (`127.0.0.1`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PeerAddr {
    /// Ask the socket (a process descriptor) when someone wants it.
    Socket(RawFd),
    /// What the accept reported (a direct descriptor has no process fd to ask).
    Known(Option<SocketAddr>),
}

impl PeerAddr {
    pub(crate) fn get(self) -> Option<SocketAddr> {
        let addr = match self {
            PeerAddr::Socket(fd) => peer_addr(fd),
            PeerAddr::Known(addr) => addr,
        };
        addr.map(canonical)
    }
}

/// `addr` with an IPv4-mapped IPv6 address unmapped: the one place peer
/// addresses are made canonical, so loopback checks, allowlists and
/// `/connections` all see `127.0.0.1`, never `::ffff:127.0.0.1`.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The peer address of a connected socket.
fn peer_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: callers pass the fd of a connection their shard still owns.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = SockRef::from(&fd);
    sock.peer_addr().ok().and_then(|a| a.as_socket())
}

/// Raises the soft RLIMIT_NOFILE to the hard limit where it can; returns the
/// soft limit in force afterwards.
pub(crate) fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a live rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
            tracing::warn!(
                "cannot raise the open-files limit: {}",
                io::Error::last_os_error()
            );
        }
    }
    lim.rlim_cur
}

/// Writes `bytes` without blocking (best effort) and closes the socket: used
/// to refuse a connection over the limit.
pub(crate) fn refuse(fd: OwnedFd, bytes: &[u8]) {
    // SAFETY: `fd` is a freshly accepted socket we own; the buffer is live.
    unsafe {
        libc::send(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        );
    }
}

/// Makes the socket's close abortive: an RST instead of a FIN, and its
/// buffers freed at once rather than held for a peer that stopped reading.
pub(crate) fn set_abortive_close(fd: &OwnedFd) {
    // A failure only means the kernel closes it gracefully instead.
    let _ = SockRef::from(fd).set_linger(Some(std::time::Duration::ZERO));
}

/// Shuts both directions of a socket: wakes any pending receive with EOF.
pub(crate) fn shutdown(fd: RawFd) {
    // SAFETY: `fd` is a live socket owned by the shard.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_peers_are_unmapped() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:4000".parse().unwrap());
        let v6: SocketAddr = "[::1]:4000".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    fn defer_accept_of(listener: &TcpListener) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads one int option into a local we own.
        let rc = unsafe {
            libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn listeners_share_a_port_and_defer_accept_when_asked() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let deferred = bind_listeners(addr, 2, 128, true).unwrap();
        let port = deferred[0].local_addr().unwrap().port();
        assert_eq!(deferred[1].local_addr().unwrap().port(), port);
        // The kernel reports the deferral rounded to its retransmission times.
        assert!(deferred.iter().all(|l| defer_accept_of(l) > 0));
        let plain = bind_listeners(addr, 1, 128, false).unwrap();
        assert_eq!(defer_accept_of(&plain[0]), 0);
    }
}
