//! Byte passes over raw JSON text that never parse it: the scan of a message before anything
//! parses it ([`scan`]: how deep it nests, how many items it holds, where the elements of its
//! top-level array lie), which bounds what the parser and the schema validator are asked to
//! do; and [`compact`], which drops the whitespace outside strings. Neither validates: on text
//! that is not JSON their answers mean nothing (the parser refuses such text anyway).

use std::ops::Range;

/// Elements of the top-level array whose place [`scan`] records: a CALLERROR has five.
pub const ELEMENTS: usize = 5;

/// What a message may hold before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of arrays and objects (the message's own array is level 1).
    pub depth: usize,
    /// Most items: array elements and object members, all levels together (the message's own
    /// elements included).
    pub items: usize,
}

/// Which limit a message passed; the scan stopped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Depth,
    Items,
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// Whether the text is an array: its first byte past whitespace is `[`.
    pub is_array: bool,
    /// Byte ranges of the top-level array's first [`ELEMENTS`] elements, whitespace around them
    /// left out; only the elements that ended before the scan did.
    pub elements: Vec<Range<usize>>,
    /// Items counted (up to the one past the limit, when it stopped there).
    pub items: usize,
    pub exceeded: Option<Exceeded>,
}

/// Where the bytes fed one at a time stand relative to JSON strings.
#[derive(Default)]
struct Strings {
    inside: bool,
    escaped: bool,
}

impl Strings {
    /// Whether `b` belongs to a string, its quotes included.
    fn holds(&mut self, b: u8) -> bool {
        if self.inside {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.inside = false;
            }
            true
        } else {
            self.inside = b == b'"';
            self.inside
        }
    }
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Scans `text` once, stopping as soon as it passes a limit. Brackets and commas inside strings
/// (escaped quotes included) do not count. For valid JSON the depth and item count are exact.
pub fn scan(text: &[u8], limits: Limits) -> Shape {
    let mut shape = Shape::default();
    let mut depth = 0usize;
    let mut strings = Strings::default();
    // An item may start at the next significant byte (after `[`, `{` or `,`).
    let mut item_may_start = false;
    // Where the current top-level element started, and the end of its last significant byte.
    let mut element_start: Option<usize> = None;
    let mut significant_end = 0usize;
    for (at, &b) in text.iter().enumerate() {
        let opens_string = !strings.inside;
        if strings.holds(b) && !opens_string {
            significant_end = at + 1;
            continue;
        }
        if is_whitespace(b) {
            continue;
        }
        if significant_end == 0 {
            shape.is_array = b == b'[';
        }
        let closes = matches!(b, b']' | b'}');
        if std::mem::take(&mut item_may_start) && !closes {
            shape.items += 1;
            if depth == 1 && shape.is_array {
                element_start = Some(at);
            }
            if shape.items > limits.items {
                shape.exceeded = Some(Exceeded::Items);
                return shape;
            }
        }
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > limits.depth {
                    shape.exceeded = Some(Exceeded::Depth);
                    return shape;
                }
                item_may_start = true;
            }
            b',' => {
                if depth == 1 {
                    end_element(&mut shape, element_start.take(), significant_end);
                }
                item_may_start = true;
            }
            b']' | b'}' => {
                if depth == 1 {
                    end_element(&mut shape, element_start.take(), significant_end);
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        significant_end = at + 1;
    }
    shape
}

/// `json` without the whitespace outside its strings: one line, however it was laid out.
pub fn compact(json: &str) -> String {
    let mut strings = Strings::default();
    let mut kept = String::with_capacity(json.len());
    let mut run_start = 0;
    for (at, b) in json.bytes().enumerate() {
        if !strings.holds(b) && is_whitespace(b) {
            // An ASCII byte: both ends of the run are character boundaries.
            kept.push_str(&json[run_start..at]);
            run_start = at + 1;
        }
    }
    kept.push_str(&json[run_start..]);
    kept
}

fn end_element(shape: &mut Shape, start: Option<usize>, end: usize) {
    if let Some(start) = start {
        if shape.elements.len() < ELEMENTS {
            shape.elements.push(start..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: Limits = Limits {
        depth: 64,
        items: 1_000_000,
    };

    fn elements(text: &str) -> Vec<&str> {
        let shape = scan(text.as_bytes(), WIDE);
        shape.elements.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn top_level_elements_are_found_without_surrounding_whitespace() {
        assert_eq!(
            elements(r#"[2,"a","Heartbeat",{}]"#),
            [r#"2"#, r#""a""#, r#""Heartbeat""#, "{}"]
        );
        assert_eq!(
            elements(" \n[ 3 ,\t\"a,]\" , { \"k\" : [ 1 , 2 ] }\r\n]  "),
            ["3", "\"a,]\"", r#"{ "k" : [ 1 , 2 ] }"#]
        );
        // Escaped quotes and backslashes stay inside their string.
        assert_eq!(
            elements(r#"[4,"\"]","c\\",{"d":"\\\"}"},{}]"#),
            ["4", r#""\"]""#, r#""c\\""#, r#"{"d":"\\\"}"}"#, "{}"]
        );
        // At most ELEMENTS are kept.
        assert_eq!(elements("[1,2,3,4,5,6,7]"), ["1", "2", "3", "4", "5"]);
        assert!(elements("[]").is_empty());
        assert!(elements("{}").is_empty());
    }

    #[test]
    fn arrays_are_told_from_the_rest() {
        for text in ["[]", "  [1]", "\n[", "[2,\"a\"]"] {
            assert!(scan(text.as_bytes(), WIDE).is_array, "{text:?}");
        }
        for text in ["", "  ", "{}", "2", "\"[\"", "x[", "null"] {
            assert!(!scan(text.as_bytes(), WIDE).is_array, "{text:?}");
        }
    }

    #[test]
    fn items_are_elements_and_members_at_every_level() {
        let count = |text: &str| scan(text.as_bytes(), WIDE).items;
        assert_eq!(count("[]"), 0);
        assert_eq!(count("[ ]"), 0);
        assert_eq!(count("{}"), 0);
        assert_eq!(count("[1]"), 1);
        assert_eq!(count(r#"[2,"a","Heartbeat",{}]"#), 4);
        assert_eq!(
            count(r#"[2,"a","X",{"k":[1,2,{}],"m":{"n":null}}]"#),
            4 + 2 + 3 + 1
        );
        assert_eq!(count(r#"["[1,2]", "{\"a\":1,\"b\":2}"]"#), 2);
        assert_eq!(count("[[[[]]]]"), 3);
    }

    #[test]
    fn the_scan_stops_at_the_first_limit_passed() {
        let limits = Limits { depth: 3, items: 5 };
        let shape = scan(b"[1,2,3,4,5]", limits);
        assert_eq!((shape.items, shape.exceeded), (5, None));
        let shape = scan(b"[1,2,3,4,5,6,7,8]", limits);
        assert_eq!((shape.items, shape.exceeded), (6, Some(Exceeded::Items)));
        // The elements that ended before it stopped are kept: enough to answer under the id.
        assert_eq!(shape.elements.len(), 5);
        assert_eq!(scan(b"[[[]]]", limits).exceeded, None);
        assert_eq!(scan(b"[[[[]]]]", limits).exceeded, Some(Exceeded::Depth));
        assert_eq!(
            scan(&[b'['; 1_000_000], limits).exceeded,
            Some(Exceeded::Depth)
        );
        // Brackets and commas inside strings do not count.
        let text = format!(r#"["{}"]"#, "[,".repeat(100));
        let shape = scan(text.as_bytes(), limits);
        assert_eq!((shape.items, shape.exceeded), (1, None));
        assert_eq!(shape.elements.first(), Some(&(1..text.len() - 1)));
        // Closers past the start never underflow.
        assert_eq!(scan(b"]]]]}}[", limits).exceeded, None);
    }

    #[test]
    fn compact_drops_whitespace_outside_strings_only() {
        assert_eq!(
            compact(" {\n\t\"a b\" : [ 1 , \"\\\" x\\n\" ] ,\r\n\"é\":{ } }\n"),
            r#"{"a b":[1,"\" x\n"],"é":{}}"#
        );
        assert_eq!(compact(r#"{"k":"v"}"#), r#"{"k":"v"}"#);
        assert_eq!(compact(""), "");
    }

    #[test]
    fn a_huge_message_is_refused_after_a_prefix() {
        let text = format!(
            r#"[2,"h1","MeterValues",{{"meterValue":[{{"sampledValue":[{}]}}]}}]"#,
            vec!["0"; 500_000].join(",")
        );
        let limits = Limits {
            depth: 64,
            items: 1000,
        };
        let shape = scan(text.as_bytes(), limits);
        assert_eq!(shape.exceeded, Some(Exceeded::Items));
        assert_eq!(shape.items, 1001);
        assert_eq!(
            shape
                .elements
                .iter()
                .map(|r| &text[r.clone()])
                .collect::<Vec<_>>(),
            ["2", r#""h1""#, r#""MeterValues""#]
        );
    }
}
