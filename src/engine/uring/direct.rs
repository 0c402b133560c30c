//! Direct descriptors (`RINGGATE_DIRECT_DESCRIPTORS`): sockets accepted
//! straight into the ring's registered file table instead of the process's,
//! so a shard's connections do not count against RLIMIT_NOFILE (the kernel
//! caps each ring's table at that limit instead: the process holds up to
//! shards x RLIMIT_NOFILE sockets). Owns the table's size and fill, and the
//! peer addresses single-shot accepts write, since getpeername needs a
//! process descriptor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types, IoUring};

use crate::engine::shard::Room;

/// Accepts kept in flight, each with its own address buffer.
pub(super) const ACCEPT_SLOTS: usize = 16;
/// Table entries kept free for sockets between their accept and the shard's
/// verdict (refusals hold one until their 503 is sent and closed).
pub(crate) const TABLE_HEADROOM: u32 = 2 * ACCEPT_SLOTS as u32;

/// Where one accept writes its peer's address.
#[repr(C)]
struct AcceptAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

/// One ring's registered file table.
pub(super) struct DirectTable {
    size: u32,
    /// Entries kept for the admin reserve: past `size - TABLE_HEADROOM -
    /// reserve` open sockets, new ones are admitted for plain HTTP only.
    reserve: u32,
    /// Entries held by open sockets (counted from accept to close).
    open: u32,
    /// Boxed: the kernel writes here while an accept is in flight.
    addrs: Box<[AcceptAddr]>,
}

impl DirectTable {
    /// Registers an empty table of `size` entries (the capacity plan sized
    /// it within the kernel's cap), `reserve` of them for the admin reserve.
    pub(super) fn register(ring: &IoUring, size: u32, reserve: u32) -> io::Result<Self> {
        if size <= TABLE_HEADROOM {
            return Err(io::Error::other(format!(
                "a file table of {size} entries leaves no room for connections"
            )));
        }
        ring.submitter().register_files_sparse(size)?;
        let addrs = (0..ACCEPT_SLOTS)
            .map(|_| AcceptAddr {
                // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
                storage: unsafe { std::mem::zeroed() },
                len: 0,
            })
            .collect();
        Ok(Self {
            size,
            reserve: reserve.min((size - TABLE_HEADROOM) / 4),
            open: 0,
            addrs,
        })
    }

    /// A single-shot accept into a free table entry, its peer address into `slot`.
    pub(super) fn accept(&mut self, listen_fd: RawFd, slot: usize) -> squeue::Entry {
        let addr = &mut self.addrs[slot];
        addr.len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        opcode::Accept::new(
            types::Fd(listen_fd),
            (&mut addr.storage as *mut libc::sockaddr_storage).cast(),
            &mut addr.len,
        )
        .file_index(Some(types::DestinationSlot::auto_target()))
        .build()
    }

    /// The peer address the accept in `slot` reported.
    pub(super) fn peer(&self, slot: usize) -> Option<SocketAddr> {
        let addr = &self.addrs[slot];
        // SAFETY: the kernel wrote `len` bytes of a socket address into storage.
        let sock = unsafe { socket2::SockAddr::new(addr.storage, addr.len) };
        sock.as_socket()
    }

    /// A socket took an entry.
    pub(super) fn opened(&mut self) {
        self.open += 1;
    }

    /// A socket's entry is being closed.
    pub(super) fn closed(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// What the table has room for once the socket just accepted is counted:
    /// `Full` when the next accepts could find no entry (the kernel would
    /// then drop those clients without a word), so the driver refuses with
    /// 503; `ReserveOnly` inside the admin reserve.
    pub(super) fn room(&self) -> Room {
        let free = self.size - self.open.min(self.size);
        if free >= TABLE_HEADROOM + self.reserve {
            Room::Normal
        } else if free >= TABLE_HEADROOM {
            Room::ReserveOnly
        } else {
            Room::Full
        }
    }
}

/// `entry` on a direct descriptor instead of a process one.
pub(super) fn fixed(entry: squeue::Entry) -> squeue::Entry {
    entry.flags(squeue::Flags::FIXED_FILE)
}

/// Closes direct descriptor `index`.
pub(super) fn close(index: RawFd) -> squeue::Entry {
    opcode::Close::new(types::Fixed(index as u32)).build()
}
