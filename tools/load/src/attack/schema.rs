//! `schema`: the MeterValues CALL that costs a schema validator the most
//! per byte: one meter value whose `sampledValue` array holds as many wrong
//! items (`1`, where an object belongs) as fit in `--size`. Half a million
//! of them in 1 MiB, a few KiB once compressed; a validator that lists
//! every violation before answering spends hundreds of milliseconds on one.

use super::Calls;

/// Room kept for the frame around the items: `[2,"id","MeterValues",` and
/// the payload's fixed parts.
const OVERHEAD: usize = 160;

pub struct MeterValues {
    /// `1,1,...,1`.
    items: String,
}

impl MeterValues {
    /// The CALL that fills `size` bytes.
    pub fn new(size: usize) -> MeterValues {
        let n = (size.saturating_sub(OVERHEAD) / 2).max(1);
        let mut items = "1,".repeat(n);
        items.pop();
        MeterValues { items }
    }

    fn count(&self) -> usize {
        self.items.len().div_ceil(2)
    }
}

impl Calls for MeterValues {
    fn write(&self, msg_id: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(
            format!(
                r#"[2,"{msg_id}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":"2025-01-01T00:00:00Z","sampledValue":["#
            )
            .as_bytes(),
        );
        out.extend_from_slice(self.items.as_bytes());
        out.extend_from_slice(b"]}]}]");
    }

    fn describe(&self) -> String {
        format!(
            "MeterValues with {} wrong sampled values",
            crate::progress::group(self.count() as f64)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::{parse_frame, Frame};

    #[test]
    fn fills_the_size_and_stays_an_ocpp_call() {
        let m = MeterValues::new(1 << 20);
        let mut out = Vec::new();
        m.write(u64::MAX, &mut out);
        assert!(out.len() <= 1 << 20, "{}", out.len());
        assert!(out.len() > (1 << 20) - 200, "{}", out.len());
        assert!(m.count() > 500_000);
        assert_eq!(
            parse_frame(&out),
            Some(Frame::Call {
                id: u64::MAX.to_string(),
                action: "MeterValues".into()
            })
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let values = v[3]["meterValue"][0]["sampledValue"].as_array().unwrap();
        assert_eq!(values.len(), m.count());
        assert!(values.iter().all(|x| x == 1));
    }
}
