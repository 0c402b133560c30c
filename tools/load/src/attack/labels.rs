//! `labels`: CALLs whose action names are hostile where a gateway turns
//! them into metric labels: a name that closes the label and writes a
//! sample of its own (`ringgate_load_injected`), quotes and backslashes, a
//! newline, and a 900 KiB name that differs in every message. Every other
//! part of the CALL is valid.

use super::Calls;

/// Bytes of the long names.
const LONG_NAME: usize = 900 << 10;
/// The metric family an injection that works adds to a scrape.
pub const INJECTED: &str = "ringgate_load_injected";

pub struct HostileNames;

impl HostileNames {
    /// The action name of message `msg_id`: the four kinds in turn.
    fn name(msg_id: u64) -> String {
        match msg_id % 4 {
            0 => format!("X\"}} 1\n{INJECTED} 1\n# "),
            1 => "quote\"back\\slash".to_owned(),
            2 => "new\nline".to_owned(),
            _ => {
                let mut name = format!("Long{msg_id}-");
                name.extend(std::iter::repeat_n('A', LONG_NAME - name.len()));
                name
            }
        }
    }
}

impl Calls for HostileNames {
    fn write(&self, msg_id: u64, out: &mut Vec<u8>) {
        out.clear();
        let call = serde_json::json!([2, msg_id.to_string(), Self::name(msg_id), {}]);
        serde_json::to_writer(&mut *out, &call).expect("JSON values serialize");
    }

    fn describe(&self) -> String {
        format!(
            "CALLs named with an injected {INJECTED} sample, quotes, a newline, and {} KiB",
            LONG_NAME >> 10
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::{parse_frame, Frame};

    #[test]
    fn names_turn_through_the_four_kinds() {
        let mut out = Vec::new();
        let mut names = Vec::new();
        for id in 1..=8 {
            HostileNames.write(id, &mut out);
            match parse_frame(&out) {
                Some(Frame::Call { id: got, action }) => {
                    assert_eq!(got, id.to_string());
                    names.push(action);
                }
                other => panic!("{other:?}"),
            }
        }
        // Message ids 1, 2, 3, 4: quotes, newline, long, injection.
        assert!(names[0].contains('"') && names[0].contains('\\'));
        assert!(names[1].contains('\n'));
        assert!(names[2].len() == LONG_NAME && names[6].len() == LONG_NAME);
        assert_ne!(names[2], names[6], "every long name is new");
        assert!(names[3].contains(&format!("\n{INJECTED} 1\n")));
    }
}
