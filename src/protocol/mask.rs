//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, in place, resumable
//! at any payload offset because frames arrive in pieces. Pure byte arithmetic
//! in safe Rust: it never allocates, never fails and never reads past its slice.

/// Bytes XORed per step of the fast path: the compiler turns one step into
/// unaligned SIMD loads, XORs and stores (two 16-byte vectors on baseline x86-64).
const BLOCK: usize = 32;

/// The key as seen from a payload position `offset` bytes into the frame.
fn phased(mask: [u8; 4], offset: usize) -> [u8; 4] {
    let mut key = mask;
    key.rotate_left(offset % 4);
    key
}

/// Unmasks (or masks: XOR is symmetric) `buf` in place. `offset` is how many
/// payload bytes of this frame were already processed before `buf` (a frame
/// arrives in pieces), so the key phase is `offset % 4`.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let key = phased(mask, offset);
    let mut block = [0u8; BLOCK];
    for (b, k) in block.iter_mut().zip(key.iter().cycle()) {
        *b = *k;
    }
    // BLOCK is a multiple of 4, so every block starts at key phase 0.
    let mut chunks = buf.chunks_exact_mut(BLOCK);
    for chunk in &mut chunks {
        for (b, k) in chunk.iter_mut().zip(block) {
            *b ^= k;
        }
    }
    apply_mask_fallback(chunks.into_remainder(), key, 0);
}

/// Byte-at-a-time [`apply_mask`]: the reference the fast path is tested
/// against, and the fast path's tail.
pub fn apply_mask_fallback(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let key = phased(mask, offset);
    for (b, k) in buf.iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn fast_path_matches_fallback() {
        for offset in 0..8 {
            for len in 0..100 {
                // Sub-slices starting at every alignment inside a larger buffer.
                for start in 0..8 {
                    let mut fast = sample(start + len + 8);
                    let mut slow = fast.clone();
                    apply_mask(&mut fast[start..start + len], MASK, offset);
                    apply_mask_fallback(&mut slow[start..start + len], MASK, offset);
                    assert_eq!(fast, slow, "offset {offset} len {len} start {start}");
                }
            }
        }
    }

    #[test]
    fn fallback_follows_the_rfc() {
        let original = sample(37);
        for offset in [0, 1, 2, 3, 4, 5, usize::MAX - 1, usize::MAX] {
            let mut buf = original.clone();
            apply_mask_fallback(&mut buf, MASK, offset);
            for (i, (&masked, &plain)) in buf.iter().zip(&original).enumerate() {
                // RFC 6455 §5.3: octet j of the payload is XORed with key[j mod 4].
                let j = (offset % 4) + i;
                assert_eq!(masked, plain ^ MASK[j % 4]);
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_whole() {
        let original = sample(1000);
        let mut whole = original.clone();
        apply_mask(&mut whole, MASK, 0);
        for split in [0, 1, 2, 3, 5, 31, 32, 33, 64, 999, 1000] {
            let mut pieces = original.clone();
            let (head, tail) = pieces.split_at_mut(split);
            apply_mask(head, MASK, 0);
            apply_mask(tail, MASK, split);
            assert_eq!(pieces, whole, "split at {split}");
        }
        apply_mask(&mut whole, MASK, 0);
        assert_eq!(whole, original, "masking twice restores the payload");
    }
}
