//! Label values of `/metrics`, escaped in one place: a [`LabelValue`] writes
//! `\`, `"` and newline as the OpenMetrics text format requires (`\\`, `\"`,
//! `\n`), so no value, whoever chose it, can end its label or its line.
//! prometheus-client writes label values as they are; the metric helpers
//! take label values of this type only.

use std::borrow::Cow;
use std::fmt::{Error as FmtError, Write};

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// A label value, escaped when written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelValue(Cow<'static, str>);

/// A metric's labels: static names, escaped values.
pub type Labels<const N: usize> = [(&'static str, LabelValue); N];

impl LabelValue {
    /// The value as given (unescaped).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for LabelValue {
    fn from(value: &'static str) -> Self {
        Self(Cow::Borrowed(value))
    }
}

impl From<String> for LabelValue {
    fn from(value: String) -> Self {
        Self(Cow::Owned(value))
    }
}

impl EncodeLabelValue for LabelValue {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), FmtError> {
        write_escaped(encoder, &self.0)
    }
}

/// Writes `value` with `\`, `"` and newline escaped, the rest as it is.
fn write_escaped(out: &mut impl Write, value: &str) -> Result<(), FmtError> {
    let mut rest = value;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.write_str(&rest[..at])?;
        out.write_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        })?;
        rest = &rest[at + 1..];
    }
    out.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        write_escaped(&mut out, value).unwrap();
        out
    }

    #[test]
    fn backslash_quote_and_newline_are_escaped() {
        assert_eq!(escaped("plain/route"), "plain/route");
        assert_eq!(escaped(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(
            escaped("X\"} 1\nringgate_up 0\n"),
            "X\\\"} 1\\nringgate_up 0\\n"
        );
        assert_eq!(escaped("é\"ü"), "é\\\"ü");
        assert_eq!(escaped(""), "");
    }
}
