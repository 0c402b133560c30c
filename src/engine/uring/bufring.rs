//! A provided-buffer ring (IORING_REGISTER_PBUF_RING): a pool of receive
//! buffers the kernel picks from when data arrives, so an idle connection
//! holds no read buffer. The bytes of a completion are lent to the shard for
//! that completion only; a buffer goes back to the kernel once the kernel has
//! filled it (incremental consumption) or after its one completion (older
//! kernels). The ring memory lives as long as the io_uring.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// `IOU_PBUF_RING_INC` from the kernel's io_uring.h (the crate keeps `sys` private).
const IOU_PBUF_RING_INC: u16 = 2;

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
    /// Registered with `IOU_PBUF_RING_INC` (kernel 6.12+): a completion takes
    /// only the bytes it received, so small messages from many connections
    /// share one buffer, and the kernel keeps filling a buffer until it is
    /// full. Then `consumed` says where in each buffer the next completion's bytes start.
    incremental: bool,
    consumed: Vec<u32>,
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
            incremental: true,
            consumed: vec![0; entries as usize],
        };
        let register = |flags: u16| {
            // SAFETY: the mapping stays valid until Drop, which runs after the
            // ring that uses it is dropped (the driver declares the ring first).
            unsafe {
                uring
                    .submitter()
                    .register_buf_ring_with_flags(ring_addr, entries, group, flags)
            }
        };
        if register(IOU_PBUF_RING_INC).is_err() {
            this.incremental = false;
            register(0)?;
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

    /// The `len` bytes a completion just received into buffer `bid`.
    pub(super) fn filled(&mut self, bid: u16, len: usize) -> &mut [u8] {
        assert!(
            bid < self.entries,
            "the kernel returned an unknown buffer id"
        );
        let start = self.consumed[bid as usize] as usize;
        let len = len.min(self.buf_size - start);
        if self.incremental {
            self.consumed[bid as usize] += len as u32;
        }
        // SAFETY: these bytes lie inside buffer `bid` in the pool mapping, and
        // the kernel is done writing them (their completion arrived); the
        // kernel writes only past them until the buffer is recycled.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.pool.ptr.add(bid as usize * self.buf_size + start),
                len,
            )
        }
    }

    /// Ends a completion's use of buffer `bid`: hands it back to the kernel
    /// unless the kernel still holds it. In incremental mode it does while it
    /// says so (`buf_more`), and after a completion that received nothing (the
    /// kernel consumed no bytes, so the buffer stays at the head of its ring).
    pub(super) fn release(&mut self, bid: u16, len: usize, buf_more: bool) {
        if self.incremental {
            if buf_more || len == 0 {
                return;
            }
            self.consumed[bid as usize] = 0;
        }
        self.recycle(bid);
    }

    /// Hands buffer `bid` back to the kernel (visible after [`BufRing::publish`]).
    fn recycle(&mut self, bid: u16) {
        let index = (self.tail & (self.entries - 1)) as usize;
        let addr = self.pool.ptr as u64 + (bid as usize * self.buf_size) as u64;
        // SAFETY: index < entries, inside the mapping; only we write descriptors.
        let entry = unsafe { &mut *self.ring.ptr.cast::<BufRingEntry>().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Gives the pool's pages back to the system (they come back, zeroed, as
    /// the kernel next writes them). Only call it between ring entries: the
    /// kernel fills buffers inside `io_uring_enter` on this thread, so no
    /// receive is writing meanwhile, and every received byte was parsed.
    pub(super) fn discard_pages(&self) {
        // SAFETY: advice on our own mapping; the data there is already consumed.
        unsafe { libc::madvise(self.pool.ptr.cast(), self.pool.len, libc::MADV_DONTNEED) };
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
