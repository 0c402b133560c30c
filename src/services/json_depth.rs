//! A guard for the services' JSON parsers: how deep a text nests, found by
//! one scan before parsing, since simd-json and serde build (and drop)
//! values recursively and a shard's stack is 2 MiB. Never parses or
//! validates anything else.

/// Whether `json` nests arrays and objects deeper than `max` (brackets inside strings do not
/// count). For valid JSON this is its exact depth; invalid JSON is refused by the parser anyway.
pub fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan() {
        assert!(!nesting_exceeds(b"[[]]", 2));
        assert!(nesting_exceeds(b"[[[]]]", 2));
        assert!(!nesting_exceeds(br#"["[[[", "\\", "\"[[["]"#, 1));
        // Closers past the start never underflow.
        assert!(!nesting_exceeds(b"]]]]}}[", 1));
    }
}
