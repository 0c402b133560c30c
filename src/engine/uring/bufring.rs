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
    /// Page-aligned, mmap'd array of `entries` descriptors shared with the kernel.
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    entries: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    buf_size: usize,
    pool: Vec<u8>,
    group: u16,
}

impl BufRing {
    /// Registers `entries` (a power of two) buffers of `buf_size` bytes as group `group`.
    pub(super) fn new(
        uring: &IoUring,
        entries: u16,
        buf_size: usize,
        group: u16,
    ) -> io::Result<Self> {
        assert!(entries.is_power_of_two(), "buffer ring size must be a power of two");
        let ring_bytes = entries as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; checked for MAP_FAILED below.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut this = Self {
            ring: ring.cast(),
            ring_bytes,
            entries,
            tail: 0,
            buf_size,
            pool: vec![0u8; entries as usize * buf_size],
            group,
        };
        // SAFETY: the mapping stays valid until Drop, which runs after the
        // ring that uses it is dropped (the driver declares the ring first).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring as u64, entries, group, 0)?;
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
        let start = bid as usize * self.buf_size;
        &mut self.pool[start..start + len.min(self.buf_size)]
    }

    /// Hands buffer `bid` back to the kernel (visible after [`BufRing::publish`]).
    pub(super) fn recycle(&mut self, bid: u16) {
        let index = (self.tail & (self.entries - 1)) as usize;
        let addr = self.pool[bid as usize * self.buf_size..].as_mut_ptr() as u64;
        // SAFETY: index < entries, inside the mapping; only we write descriptors.
        let entry = unsafe { &mut *self.ring.add(index) };
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
            let tail = BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ring.cast(), self.ring_bytes) };
    }
}
