//! A connection's socket as its shard owns it: a process descriptor, closed
//! when the value drops, or an entry of the io_uring driver's registered file
//! table, which only that driver can close (and which the kernel closes when
//! the ring goes). Owning it here means no path that forgets a connection
//! (removal, shutdown, a panic unwinding the shard) can leak a descriptor.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) enum Descriptor {
    /// A descriptor in the process's table.
    Process(OwnedFd),
    /// An index into the ring's registered file table.
    Direct(u32),
}

impl Descriptor {
    /// Takes ownership of a descriptor accept(2) returned.
    ///
    /// # Safety
    /// `fd` must be an open descriptor nothing else owns.
    pub(crate) unsafe fn from_accepted(fd: RawFd) -> Self {
        // SAFETY: the caller passes an fd it owns and gives up.
        Descriptor::Process(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The number an operation names the socket by: the process descriptor,
    /// or the table index.
    pub(crate) fn raw(&self) -> RawFd {
        match self {
            Descriptor::Process(fd) => fd.as_raw_fd(),
            Descriptor::Direct(index) => *index as RawFd,
        }
    }

    /// A process descriptor to ask the kernel about (getpeername), if it is one.
    pub(crate) fn process_fd(&self) -> Option<RawFd> {
        match self {
            Descriptor::Process(fd) => Some(fd.as_raw_fd()),
            Descriptor::Direct(_) => None,
        }
    }
}
