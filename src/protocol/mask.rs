//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, in place, resumable
//! at any payload offset because frames arrive in pieces. Pure byte arithmetic:
//! it never allocates, never fails and never touches a byte outside its slice.

/// The key as seen from a payload position `offset` bytes into the frame.
fn phased(mask: [u8; 4], offset: usize) -> [u8; 4] {
    // Read little-endian, moving the array left by a byte is rotating right by 8 bits.
    let phase = (offset % 4) as u32;
    u32::from_le_bytes(mask)
        .rotate_right(phase * 8)
        .to_le_bytes()
}

/// Unmasks (or masks: XOR is symmetric) `buf` in place. `offset` is how many
/// payload bytes of this frame were already processed before `buf` (a frame
/// arrives in pieces), so the key phase is `offset % 4`.
///
/// XORs the aligned middle of `buf` a 64-bit word at a time (the optimiser
/// turns the loop into SIMD XORs), and the unaligned ends byte by byte.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // SAFETY: u8 and u64 are plain integers: any 8 bytes of the middle are a
    // valid u64, and any u64 written back is valid bytes.
    let (head, words, tail) = unsafe { buf.align_to_mut::<u64>() };
    apply_mask_fallback(head, mask, offset);
    let key = phased(mask, offset % 4 + head.len());
    // 8 is a multiple of 4, so every word, and the tail, starts at `key`'s phase.
    let word_key = u64::from(u32::from_ne_bytes(key)) * 0x0000_0001_0000_0001;
    for word in words {
        *word ^= word_key;
    }
    apply_mask_fallback(tail, key, 0);
}

/// Byte-at-a-time [`apply_mask`]: the reference the fast path is tested
/// against, and the fast path's unaligned head and tail.
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
