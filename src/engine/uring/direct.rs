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

/// Accepts kept in flight, each with its own address buffer.
pub(super) const ACCEPT_SLOTS: usize = 16;
/// Table entries kept free for sockets between their accept and the shard's
/// verdict (refusals hold one until their 503 is sent and closed).
const HEADROOM: u32 = 2 * ACCEPT_SLOTS as u32;
/// The kernel's IORING_MAX_FIXED_FILES.
const KERNEL_MAX: u64 = 1 << 20;

/// Where one accept writes its peer's address.
#[repr(C)]
struct AcceptAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

/// One ring's registered file table.
pub(super) struct DirectTable {
    size: u32,
    /// Entries held by open sockets (counted from accept to close).
    open: u32,
    /// Boxed: the kernel writes here while an accept is in flight.
    addrs: Box<[AcceptAddr]>,
}

impl DirectTable {
    /// Registers an empty table of `wanted` entries, capped at the open-files
    /// limit the kernel enforces per table.
    pub(super) fn register(ring: &IoUring, wanted: usize) -> io::Result<Self> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let size = (wanted as u64 + u64::from(HEADROOM))
            .min(limit.rlim_cur)
            .min(KERNEL_MAX) as u32;
        if size <= HEADROOM {
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
            open: 0,
            addrs,
        })
    }

    pub(super) fn size(&self) -> u32 {
        self.size
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

    /// False when the table is so full that the next accepts could find no
    /// entry (the kernel would then drop those clients without a word): the
    /// driver refuses with 503 while this is false.
    pub(super) fn has_room(&self) -> bool {
        self.open + HEADROOM <= self.size
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
