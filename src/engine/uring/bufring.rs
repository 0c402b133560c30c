//! A provided-buffer ring (IORING_REGISTER_PBUF_RING): a pool of receive
//! buffers the kernel picks from when data arrives, so an idle connection
//! holds no read buffer. A buffer is lent to the shard for one completion and
//! handed back right after; the ring memory lives as long as the io_uring.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The ring of buffer descriptors plus the buffers themselves.
pub(super) struct BufRing {
    /// Page-aligned array of `entries` descriptors shared with the kernel.
    ring: Mapping,
    entries: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    buf_size: usize,
    /// The buffers: its own mapping, so pages become resident only where the
    /// kernel writes (a heap allocation may sit on transparent huge pages).
    pool: Mapping,
    group: u16,
}

/// An anonymous private memory mapping, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize, populate: bool) -> io::Result<Self> {
        let flags =
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if populate { libc::MAP_POPULATE } else { 0 };
        // SAFETY: a fresh anonymous mapping; checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on our own mapping; failure only means huge pages stay possible.
        unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl BufRing {
    /// Registers `entries` (a power of two) buffers of `buf_size` bytes as group `group`.
    pub(super) fn new(
        uring: &IoUring,
        entries: u16,
        buf_size: usize,
        group: u16,
    ) -> io::Result<Self> {
        assert!(
            entries.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let ring = Mapping::new(entries as usize * std::mem::size_of::<BufRingEntry>(), true)?;
        let ring_addr = ring.ptr as u64;
        let mut this = Self {
            ring,
            entries,
            tail: 0,
            buf_size,
            pool: Mapping::new(entries as usize * buf_size, false)?,
            group,
        };
        // SAFETY: the mapping stays valid until Drop, which runs after the
        // ring that uses it is dropped (the driver declares the ring first).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring_addr, entries, group, 0)?;
        }
        for bid in 0..entries {
            this.recycle(bid);
        }
        this.publish();
        Ok(this)
    }

    pub(super) fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes of buffer `bid`, which the kernel just filled.
    pub(super) fn filled(&mut self, bid: u16, len: usize) -> &mut [u8] {
        assert!(
            bid < self.entries,
            "the kernel returned an unknown buffer id"
        );
        // SAFETY: buffer `bid` lies inside the pool mapping, and the kernel is
        // done writing it (its completion arrived); it is ours until recycled.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.pool.ptr.add(bid as usize * self.buf_size),
                len.min(self.buf_size),
            )
        }
    }

    /// Hands buffer `bid` back to the kernel (visible after [`BufRing::publish`]).
    pub(super) fn recycle(&mut self, bid: u16) {
        let index = (self.tail & (self.entries - 1)) as usize;
        let addr = self.pool.ptr as u64 + (bid as usize * self.buf_size) as u64;
        // SAFETY: index < entries, inside the mapping; only we write descriptors.
        let entry = unsafe { &mut *self.ring.ptr.cast::<BufRingEntry>().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel.
    pub(super) fn publish(&self) {
        // SAFETY: the tail field lives inside the mapping; the kernel reads it
        // with acquire semantics, so a release store orders the descriptors before it.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.ptr.cast()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}
