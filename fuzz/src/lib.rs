//! Helpers shared by the fuzz targets: turning one seed byte into a way of
//! cutting a stream into the pieces a socket might deliver.

/// Cuts `data` into consecutive pieces whose sizes follow from `seed`: the low
/// 3 bits pick the largest piece (1, 2, 3, 5, 8, 14, 64 or 1500 bytes), the
/// rest seed a xorshift generator, and with bit 7 set some pieces are empty.
/// The pieces always concatenate back to `data`.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    const MAX_PIECE: [usize; 8] = [1, 2, 3, 5, 8, 14, 64, 1500];
    let max = MAX_PIECE[usize::from(seed & 7)];
    let with_empty = seed & 0x80 != 0;
    let mut state = (0x9E37_79B9u32 ^ u32::from(seed).wrapping_mul(0x0100_0193)) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize
    };
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let r = next();
        if with_empty && r % 8 == 0 {
            pieces.push(&rest[..0]);
            continue;
        }
        let len = (1 + (r >> 3) % max).min(rest.len());
        let (piece, tail) = rest.split_at(len);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}
