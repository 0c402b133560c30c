//! One connection's outgoing bytes: a queue of chunks, each either owned (small
//! frames coalesced into one buffer) or shared (a broadcast frame encoded once),
//! with what the queue really holds in memory (for the slow-consumer bound) and
//! how fast the peer takes it (for the minimum-rate rule). Chunks handed to an
//! in-flight write are never moved or mutated until [`SendQueue::complete`]
//! says the kernel is done with them.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::protocol::frame::OpCode;
use crate::protocol::writer::{encode_compressed_frame, encode_frame};

/// Most iovecs one write submits.
pub(crate) const MAX_IOVECS: usize = 64;

/// Smallest owned chunk for frames: small frames queued together share one.
/// Raw bytes (HTTP responses, close frames) get a chunk of their own size, so
/// a handshake storm's 101s do not each take a page.
const MIN_FRAME_CHUNK: usize = 4096;

/// What one queued chunk costs beyond its bytes: its slot in the deque and,
/// for a shared frame, the reference-counted header that sharing allocates.
/// Counted so that a slow subscriber of tiny broadcasts cannot hold many
/// times the configured bound in entries.
pub(crate) const ENTRY_COST: usize = 64;

enum Chunk {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(b) => b,
        }
    }

    /// Memory the chunk holds while queued.
    fn cost(&self) -> usize {
        ENTRY_COST
            + match self {
                Chunk::Owned(v) => v.capacity(),
                Chunk::Shared(b) => b.len(),
            }
    }
}

/// Outgoing data of one connection: one null pointer while nothing is queued
/// (an idle connection owns no write memory); the queue itself lives in a box
/// taken when output is first queued and given back once it is all written.
#[derive(Default)]
pub struct SendQueue {
    queue: Option<Box<Queue>>,
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    /// Bytes of `chunks[0]` already written.
    head_written: usize,
    /// Chunks (from the front) covered by the write in flight; 0 when none.
    in_flight: usize,
    /// Unwritten bytes in the queue.
    queued: usize,
    /// Memory the chunks hold ([`Chunk::cost`] summed).
    held: usize,
    /// Progress of the current minimum-rate window.
    window: Window,
}

/// One window of the minimum-rate rule: while output waits, every window
/// must see at least `required` bytes written.
#[derive(Default)]
struct Window {
    /// Shard clock (ms) when the window began; 0 = not begun yet.
    start: u64,
    written: usize,
    required: usize,
}

impl SendQueue {
    /// Unwritten bytes.
    pub(crate) fn len(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.queued)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory the queue holds: chunk capacities plus a per-chunk cost. This
    /// is what the slow-consumer bound compares.
    pub(crate) fn held(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.held)
    }

    pub(crate) fn write_in_flight(&self) -> bool {
        self.queue.as_ref().is_some_and(|q| q.in_flight > 0)
    }

    fn queue(&mut self) -> &mut Queue {
        self.queue.get_or_insert_with(Box::default)
    }

    /// Encodes one unfragmented frame onto the queue.
    pub(crate) fn push_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        self.push_encoded(payload.len(), |tail| encode_frame(tail, opcode, payload));
    }

    /// Encodes one frame of a compressed message (RSV1) onto the queue.
    pub(crate) fn push_compressed(&mut self, opcode: OpCode, compressed: &[u8]) {
        self.push_encoded(compressed.len(), |tail| {
            encode_compressed_frame(tail, opcode, compressed)
        });
    }

    /// Appends what `encode` writes (a frame of `payload_len` bytes) to the
    /// owned tail chunk.
    fn push_encoded(&mut self, payload_len: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        let q = self.queue();
        let tail = q.owned_tail(payload_len + 14, MIN_FRAME_CHUNK);
        let before = tail.len();
        encode(tail);
        q.queued += tail.len() - before;
    }

    /// Appends raw bytes (an HTTP response, a pre-encoded close frame).
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        let q = self.queue();
        q.owned_tail(bytes.len(), 0).extend_from_slice(bytes);
        q.queued += bytes.len();
    }

    /// Appends a frame shared with other connections.
    pub(crate) fn push_shared(&mut self, frame: Bytes) {
        let q = self.queue();
        q.queued += frame.len();
        q.push(Chunk::Shared(frame));
    }

    /// Drops every chunk no write has started on (a slow consumer being cut
    /// off); a partly written chunk stays so the stream keeps frame boundaries.
    pub(crate) fn discard_unstarted(&mut self) {
        if let Some(q) = self.queue.as_mut() {
            let keep = q.in_flight.max(usize::from(q.head_written > 0));
            while q.chunks.len() > keep {
                if let Some(chunk) = q.chunks.pop_back() {
                    q.queued -= chunk.bytes().len();
                    q.held -= chunk.cost();
                }
            }
        }
        self.release_if_empty();
    }

    /// Fills `iov` with the unwritten bytes (at most `iov.len()` chunks) and
    /// marks them in flight. Returns how many entries were filled.
    pub(crate) fn start_write(&mut self, iov: &mut [libc::iovec]) -> usize {
        let Some(q) = self.queue.as_mut() else {
            return 0;
        };
        debug_assert_eq!(q.in_flight, 0, "one write at a time");
        let mut n = 0;
        for (i, chunk) in q.chunks.iter().enumerate().take(iov.len()) {
            let bytes = chunk.bytes();
            let skip = if i == 0 { q.head_written } else { 0 };
            iov[n] = libc::iovec {
                iov_base: bytes[skip..].as_ptr() as *mut libc::c_void,
                iov_len: bytes.len() - skip,
            };
            n += 1;
        }
        q.in_flight = n;
        n
    }

    /// The kernel wrote `written` bytes of the in-flight write; releases them.
    pub(crate) fn complete(&mut self, mut written: usize) {
        let Some(q) = self.queue.as_mut() else {
            return;
        };
        q.in_flight = 0;
        q.queued -= written.min(q.queued);
        q.window.written += written;
        while written > 0 {
            let Some(front) = q.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - q.head_written;
            if written >= left {
                written -= left;
                q.head_written = 0;
                if let Some(chunk) = q.chunks.pop_front() {
                    q.held -= chunk.cost();
                }
            } else {
                q.head_written += written;
                written = 0;
            }
        }
        self.release_if_empty();
    }

    /// The minimum-rate rule, checked by the shard's timer sweep: while output
    /// waits, each window of `window_ms` must see at least `min_rate` bytes a
    /// second written, or everything that was waiting when the window began,
    /// whichever is less (and at least one byte). Returns true when the window
    /// that just ended fell short: the peer is too slow to keep.
    pub(crate) fn below_min_rate(&mut self, now: u64, window_ms: u64, min_rate: usize) -> bool {
        let Some(q) = self.queue.as_mut() else {
            return false;
        };
        let w = &mut q.window;
        let begun = w.start != 0;
        if begun && now.saturating_sub(w.start) < window_ms {
            return false;
        }
        let stalled = begun && w.written < w.required;
        let per_window = (min_rate as u128 * window_ms as u128 / 1000) as usize;
        *w = Window {
            start: now.max(1),
            written: 0,
            required: q.queued.min(per_window).max(1),
        };
        stalled
    }

    /// Abandons the in-flight marker after a failed write (the connection dies).
    pub(crate) fn abort_write(&mut self) {
        if let Some(q) = self.queue.as_mut() {
            q.in_flight = 0;
        }
    }

    /// Gives the box back once nothing is queued or in flight.
    fn release_if_empty(&mut self) {
        if self
            .queue
            .as_ref()
            .is_some_and(|q| q.chunks.is_empty() && q.in_flight == 0)
        {
            self.queue = None;
        }
    }
}

impl Queue {
    fn push(&mut self, chunk: Chunk) {
        self.held += chunk.cost();
        self.chunks.push_back(chunk);
    }

    /// The owned chunk at the tail with room for `extra` more bytes, or a new
    /// one of at least `min_capacity`: chunks never grow, so a frame is copied
    /// into the queue once and never again by a reallocation.
    fn owned_tail(&mut self, extra: usize, min_capacity: usize) -> &mut Vec<u8> {
        let fits = self.chunks.len() > self.in_flight
            && matches!(self.chunks.back(), Some(Chunk::Owned(v)) if v.capacity() - v.len() >= extra);
        if !fits {
            self.push(Chunk::Owned(Vec::with_capacity(extra.max(min_capacity))));
        }
        match self.chunks.back_mut() {
            Some(Chunk::Owned(v)) => v,
            _ => unreachable!("an owned chunk with room was just ensured at the tail"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut SendQueue, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while !q.is_empty() {
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOVECS];
            let n = q.start_write(&mut iov);
            let mut budget = step;
            let mut written = 0;
            for v in &iov[..n] {
                let take = v.iov_len.min(budget);
                // SAFETY: the iovec points into a chunk the queue keeps alive while in flight.
                let s = unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, take) };
                out.extend_from_slice(s);
                budget -= take;
                written += take;
            }
            q.complete(written);
        }
        out
    }

    #[test]
    fn partial_writes_keep_order_and_free_memory() {
        let mut q = SendQueue::default();
        q.push_frame(OpCode::Text, b"hello");
        q.push_shared(Bytes::from_static(b"SHARED"));
        q.push_bytes(b"tail");
        let total = q.len();
        for step in [1, 3, 7, 100] {
            let mut q2 = SendQueue::default();
            q2.push_frame(OpCode::Text, b"hello");
            q2.push_shared(Bytes::from_static(b"SHARED"));
            q2.push_bytes(b"tail");
            let out = drain(&mut q2, step);
            assert_eq!(out.len(), total);
            assert_eq!(&out[..7], &[0x81, 5, b'h', b'e', b'l', b'l', b'o']);
            assert_eq!(&out[7..], b"SHAREDtail");
            assert!(q2.queue.is_none(), "an empty queue holds no memory");
        }
    }

    #[test]
    fn in_flight_chunks_are_not_extended() {
        let mut q = SendQueue::default();
        q.push_bytes(b"abc");
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        assert_eq!(q.start_write(&mut iov), 1);
        q.push_bytes(b"def");
        assert_eq!(
            q.queue.as_ref().unwrap().chunks.len(),
            2,
            "new bytes go to a new chunk"
        );
        q.complete(3);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn raw_bytes_take_their_size_and_frames_share_a_chunk() {
        let mut q = SendQueue::default();
        q.push_bytes(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        q.push_frame(OpCode::Text, b"a");
        q.push_frame(OpCode::Text, b"b");
        let chunks = &q.queue.as_ref().unwrap().chunks;
        assert_eq!(
            chunks.len(),
            2,
            "both frames in one chunk after the response"
        );
        let capacity = |c: &Chunk| match c {
            Chunk::Owned(v) => v.capacity(),
            Chunk::Shared(_) => 0,
        };
        assert_eq!(capacity(&chunks[0]), chunks[0].bytes().len());
        assert!(capacity(&chunks[1]) >= MIN_FRAME_CHUNK);
        assert_eq!(chunks[1].bytes(), &[0x81, 1, b'a', 0x81, 1, b'b']);
    }

    #[test]
    fn discarding_everything_gives_the_queue_back() {
        let mut q = SendQueue::default();
        q.push_bytes(b"abc");
        q.push_shared(Bytes::from_static(b"xyz"));
        q.discard_unstarted();
        assert!(q.is_empty());
        assert!(q.queue.is_none());
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        assert_eq!(q.start_write(&mut iov), 0, "nothing to write");
    }

    #[test]
    fn tiny_shared_frames_are_held_at_their_real_cost() {
        let mut q = SendQueue::default();
        for _ in 0..1000 {
            q.push_shared(Bytes::from_static(b"abc"));
        }
        assert_eq!(q.len(), 3000);
        assert_eq!(q.held(), 1000 * (3 + ENTRY_COST));
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        q.start_write(&mut iov);
        q.complete(6);
        assert_eq!(q.held(), 998 * (3 + ENTRY_COST));
        q.discard_unstarted();
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn owned_chunks_count_their_capacity() {
        let mut q = SendQueue::default();
        q.push_frame(OpCode::Text, b"a");
        assert_eq!(q.held(), MIN_FRAME_CHUNK + ENTRY_COST);
    }

    #[test]
    fn the_minimum_rate_is_judged_per_window() {
        let mut q = SendQueue::default();
        q.push_bytes(&vec![0u8; 100_000]);
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        // 1,000 B/s over 1 s windows: 1,000 bytes a window.
        assert!(
            !q.below_min_rate(10, 1000, 1000),
            "the first look opens a window"
        );
        q.start_write(&mut iov);
        q.complete(999);
        assert!(
            !q.below_min_rate(500, 1000, 1000),
            "the window is still open"
        );
        assert!(
            q.below_min_rate(1010, 1000, 1000),
            "999 bytes in a window of 1000"
        );
        q.start_write(&mut iov);
        q.complete(1000);
        assert!(!q.below_min_rate(2010, 1000, 1000), "1000 bytes: kept");
        // Less waiting than a window's worth: writing all of it is enough.
        let mut small = SendQueue::default();
        small.push_bytes(&[0u8; 10]);
        assert!(!small.below_min_rate(10, 1000, 1000));
        small.push_bytes(&[0u8; 10]);
        small.start_write(&mut iov);
        small.complete(10);
        assert!(
            !small.below_min_rate(1010, 1000, 1000),
            "took all 10 it was asked"
        );
        // A rate of zero still asks for a byte a window.
        assert!(small.below_min_rate(2010, 1000, 0));
    }

    #[test]
    fn discard_keeps_a_partly_written_chunk() {
        let mut q = SendQueue::default();
        q.push_bytes(b"abcdef");
        q.push_shared(Bytes::from_static(b"xyz"));
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        q.start_write(&mut iov);
        q.complete(2);
        q.discard_unstarted();
        assert_eq!(q.len(), 4);
        assert_eq!(q.queue.as_ref().unwrap().chunks.len(), 1);
    }
}
