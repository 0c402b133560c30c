// Checks that apply_mask (word-at-a-time) equals apply_mask_fallback (byte-at-a-time) for any
// buffer, alignment, key and offset, that masking in two pieces equals masking whole, and undoes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::protocol::mask::{apply_mask, apply_mask_fallback};

// Input layout: [key0, key1, key2, key3, offset, align, split, payload...].
fuzz_target!(|data: &[u8]| {
    let [k0, k1, k2, k3, offset, align, split, payload @ ..] = data else {
        return;
    };
    let key = [*k0, *k1, *k2, *k3];
    // Spread the offset byte over the whole usize range, wrap-around included.
    let offset = usize::from(*offset)
        .wrapping_mul(0x0101_0101)
        .wrapping_sub(7);
    // Start the payload at every alignment within an 8-byte word.
    let start = usize::from(align % 8);
    let mut fast = vec![0xA5u8; start + payload.len() + 8];
    fast[start..start + payload.len()].copy_from_slice(payload);
    let original = fast.clone();
    let mut slow = fast.clone();
    let range = start..start + payload.len();

    apply_mask(&mut fast[range.clone()], key, offset);
    apply_mask_fallback(&mut slow[range.clone()], key, offset);
    assert_eq!(fast, slow, "fast vs fallback");

    // Masking in two pieces, the second resumed at its payload offset, equals masking whole.
    let mut pieces = original.clone();
    let cut = usize::from(*split).min(payload.len());
    let (head, tail) = pieces[range.clone()].split_at_mut(cut);
    apply_mask(head, key, offset);
    apply_mask(tail, key, offset.wrapping_add(cut));
    // (`offset + cut` may wrap; the phase survives, as 2^64 is a multiple of 4.)
    assert_eq!(pieces, fast, "in pieces vs whole");

    apply_mask(&mut fast[range], key, offset);
    assert_eq!(fast, original, "masking twice restores the payload");
});
