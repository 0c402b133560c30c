//! `events`: valid DataTransfer CALLs whose `data` string fills `--size`,
//! answered `Accepted` by a gateway, each of which becomes an event for the
//! gateway's event sink. Against a sink that does not keep up (an events
//! file on a FIFO nobody reads), a queue bounded by count and not by bytes
//! grows by a megabyte or more per message, sent as a few KiB compressed.

use super::Calls;

/// Room kept for the frame around `data`.
const OVERHEAD: usize = 120;
/// The text `data` repeats: compresses well, reads as what it is.
const FILLER: &str = "ringgate-load events stream 0123456789 ";

pub struct DataTransfer {
    data: String,
}

impl DataTransfer {
    /// The CALL that fills `size` bytes.
    pub fn new(size: usize) -> DataTransfer {
        let n = size.saturating_sub(OVERHEAD).max(1);
        let data = FILLER.chars().cycle().take(n).collect();
        DataTransfer { data }
    }
}

impl Calls for DataTransfer {
    fn write(&self, msg_id: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(
            format!(
                r#"[2,"{msg_id}","DataTransfer",{{"vendorId":"ringgate-load","messageId":"events","data":""#
            )
            .as_bytes(),
        );
        out.extend_from_slice(self.data.as_bytes());
        out.extend_from_slice(b"\"}]");
    }

    fn describe(&self) -> String {
        format!(
            "DataTransfer with {} B of data",
            crate::progress::group(self.data.len() as f64)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_size_with_a_valid_data_transfer() {
        let d = DataTransfer::new(256 << 10);
        let mut out = Vec::new();
        d.write(u64::MAX, &mut out);
        assert!(out.len() <= 256 << 10 && out.len() > (256 << 10) - 150);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[2], "DataTransfer");
        assert_eq!(v[3]["vendorId"], "ringgate-load");
        assert_eq!(v[3]["data"].as_str().unwrap().len(), d.data.len());
    }
}
