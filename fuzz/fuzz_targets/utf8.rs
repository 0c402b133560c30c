// Checks that Utf8Validator fed in arbitrary chunks agrees with std::str::from_utf8 on the whole
// input, fails in exactly the chunk holding the first byte no valid text can continue with, and
// reports is_clean() only on complete code points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::protocol::utf8::{as_text, Utf8Validator};
use ringgate_fuzz::chunks;

// Input layout: [split, text...]; `split` cuts the text (see `ringgate_fuzz::chunks`).
fuzz_target!(|data: &[u8]| {
    let [split, text @ ..] = data else {
        return;
    };
    let std_result = std::str::from_utf8(text);
    assert_eq!(as_text(text).is_ok(), std_result.is_ok(), "as_text vs std");

    // Where std says the text stops being valid: `complete` ends the last whole code point
    // of the valid start, `first_bad` is the first byte no valid text can continue with.
    let (complete, first_bad) = match std_result {
        Ok(_) => (text.len(), None),
        Err(e) => {
            let v = e.valid_up_to();
            // text[..v] is whole code points, so text[..=i] is a valid prefix exactly when
            // text[v..=i] is; an invalid sequence is found within 4 bytes.
            let bad = (v..text.len().min(v + 4)).find(|&i| !is_valid_prefix(&text[v..=i]));
            assert_eq!(
                bad.is_some(),
                e.error_len().is_some(),
                "std: truncated or invalid"
            );
            (v, bad)
        }
    };

    let valid_start = std::str::from_utf8(&text[..complete]).expect("std's valid_up_to");
    let mut validator = Utf8Validator::new();
    let mut end = 0;
    for piece in chunks(text, *split) {
        let start = end;
        end += piece.len();
        let result = validator.feed(piece);
        let bad_here = first_bad.is_some_and(|i| i < end);
        assert_eq!(
            result.is_err(),
            bad_here,
            "feed of {start}..{end} (first bad byte {first_bad:?})"
        );
        if bad_here {
            return;
        }
        // Clean exactly at code point boundaries of the valid start.
        let at_boundary = end <= complete && valid_start.is_char_boundary(end);
        assert_eq!(validator.is_clean(), at_boundary, "is_clean after {end}");
    }
    assert_eq!(
        validator.finish().is_ok(),
        std_result.is_ok(),
        "finish vs std"
    );
    assert!(validator.is_clean(), "finish resets");
});

/// Whether `bytes` can still be extended to valid UTF-8 (std's verdict: `error_len() == None`
/// means the input ended inside a sequence that may complete).
fn is_valid_prefix(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).map_or_else(|e| e.error_len().is_none(), |_| true)
}
