//! Value parsers: how each kind of setting is written in the environment, in YAML and in `--help`.
//! Owns the `Kind` trait and its impls, the YAML bridge `from_kind` and the log-filter check; it
//! never names a setting, a variable or a YAML key, and never touches a whole `Config`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use serde::{de, Deserializer};

use super::{Compression, IoMode, Secret};

/// A bare word must be a level name; anything else must parse as `EnvFilter` directives.
pub(super) fn check_log_level(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bare_word = !filter.contains(['=', ',', '[', ':']);
    if bare_word && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(filter.trim())) {
        return Err("expected trace, debug, info, warn, error, off or filter directives".into());
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| format!("not a tracing filter: {e}"))
}

/// How one kind of value is written in the environment, in YAML strings and in `--help`.
pub(super) trait Kind<T> {
    /// On failure, says what was expected ("a port number 0-65535").
    fn parse(s: &str) -> Result<T, &'static str>;
    fn show(value: &T) -> String;
}

/// Any string.
pub(super) struct Text;
/// A TCP port.
pub(super) struct Port;
/// A non-negative integer.
pub(super) struct Count;
/// A byte size: `1048576`, `512KiB`, `16MiB`, `1GiB`, `1MB` (units are case-insensitive).
pub(super) struct Bytes;
/// A duration: `250ms`, `30s`, `5m`, `1h30m`, or `0`.
pub(super) struct Dur;
/// A boolean: true/false, 1/0, yes/no, on/off.
pub(super) struct Bool;
/// An [`IoMode`].
pub(super) struct Io;
/// A route's compression: default, off, shared or dedicated.
pub(super) struct Compress;
/// A secret: any string, shown only as set or not.
pub(super) struct Token;
/// A list of words: comma-separated in the environment, a sequence (or
/// the same comma-separated string) in YAML; blank entries are dropped.
pub(super) struct List;
/// A map of `key=value` entries separated by whitespace in the environment (values may hold
/// commas, as PHC password hashes do), a mapping (or the same string) in YAML.
pub(super) struct Pairs;

impl Kind<String> for Text {
    fn parse(s: &str) -> Result<String, &'static str> {
        Ok(s.to_owned())
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

impl Kind<Vec<String>> for List {
    fn parse(s: &str) -> Result<Vec<String>, &'static str> {
        Ok(s.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn show(value: &Vec<String>) -> String {
        value.join(",")
    }
}

/// Reads a [`List`] from a YAML sequence of strings or one comma-separated string.
pub(super) fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Visit;
    impl<'de> de::Visitor<'de> for Visit {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of strings or one comma-separated string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            List::parse(s).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = seq.next_element::<String>()? {
                let entry = entry.trim();
                if !entry.is_empty() {
                    out.push(entry.to_owned());
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Visit)
}

impl Kind<BTreeMap<String, String>> for Pairs {
    fn parse(s: &str) -> Result<BTreeMap<String, String>, &'static str> {
        s.split_whitespace()
            .map(|entry| match entry.split_once('=') {
                Some((key, value)) if !key.is_empty() && !value.is_empty() => {
                    Ok((key.to_owned(), value.to_owned()))
                }
                _ => Err("whitespace-separated key=value entries"),
            })
            .collect()
    }
    fn show(value: &BTreeMap<String, String>) -> String {
        let entries: Vec<String> = value.iter().map(|(k, v)| format!("{k}={v}")).collect();
        entries.join(" ")
    }
}

/// Reads [`Pairs`] from a YAML mapping of strings or one `key=value ...` string.
pub(super) fn passwords<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Visit;
    impl<'de> de::Visitor<'de> for Visit {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a mapping of strings or one string of key=value entries")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Pairs::parse(s).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Visit)
}

impl Kind<Secret> for Token {
    fn parse(s: &str) -> Result<Secret, &'static str> {
        Ok(Secret(s.to_owned()))
    }
    fn show(value: &Secret) -> String {
        format!("{value:?}").replace('"', "")
    }
}

impl Kind<u16> for Port {
    fn parse(s: &str) -> Result<u16, &'static str> {
        s.parse().map_err(|_| "a port number 0-65535")
    }
    fn show(value: &u16) -> String {
        value.to_string()
    }
}

impl<T: FromStr + Display> Kind<T> for Count {
    fn parse(s: &str) -> Result<T, &'static str> {
        s.parse().map_err(|_| "a non-negative integer")
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

const BYTE_UNITS: [(&str, usize); 7] = [
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("b", 1),
];

impl Kind<usize> for Bytes {
    fn parse(s: &str) -> Result<usize, &'static str> {
        const EXPECTED: &str = "a byte size like 1048576, 512KiB, 16MiB or 1MB";
        let lower = s.to_ascii_lowercase();
        let (digits, unit) = BYTE_UNITS
            .iter()
            .find_map(|&(suffix, unit)| Some((lower.strip_suffix(suffix)?, unit)))
            .unwrap_or((&lower, 1));
        let count: usize = digits.trim().parse().map_err(|_| EXPECTED)?;
        count.checked_mul(unit).ok_or(EXPECTED)
    }
    fn show(value: &usize) -> String {
        let binary = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        match binary
            .iter()
            .find(|&&(_, unit)| *value != 0 && value % unit == 0)
        {
            Some((name, unit)) => format!("{}{name}", value / unit),
            None => value.to_string(),
        }
    }
}

impl Kind<Duration> for Dur {
    fn parse(s: &str) -> Result<Duration, &'static str> {
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        humantime::parse_duration(s).map_err(|_| "a duration like 250ms, 30s, 5m or 1h30m")
    }
    fn show(value: &Duration) -> String {
        humantime::format_duration(*value).to_string()
    }
}

impl Kind<bool> for Bool {
    fn parse(s: &str) -> Result<bool, &'static str> {
        match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("true or false"),
        }
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
}

impl Kind<IoMode> for Io {
    fn parse(s: &str) -> Result<IoMode, &'static str> {
        IoMode::from_str(s, true).map_err(|_| "auto, uring or epoll")
    }
    fn show(value: &IoMode) -> String {
        choice_name(value)
    }
}

impl Kind<Compression> for Compress {
    fn parse(s: &str) -> Result<Compression, &'static str> {
        Compression::from_str(s, true).map_err(|_| "default, off, shared or dedicated")
    }
    fn show(value: &Compression) -> String {
        choice_name(value)
    }
}

/// The name a choice is written with.
fn choice_name(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// Reads a YAML string (or integer) through a [`Kind`], so YAML and environment agree.
pub(super) fn from_kind<'de, K: Kind<T>, T, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    struct Visit<K, T>(std::marker::PhantomData<(K, T)>);
    impl<K: Kind<T>, T> de::Visitor<'_> for Visit<K, T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            K::parse(s.trim())
                .map_err(|expected| E::custom(format!("invalid value {s:?}: expected {expected}")))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            self.visit_str(&n.to_string())
        }
    }
    deserializer.deserialize_any(Visit::<K, T>(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("250ms", Duration::from_millis(250)),
            ("0", Duration::ZERO),
            ("1h30m", Duration::from_secs(5400)),
        ] {
            assert_eq!(Dur::parse(text), Ok(want), "{text}");
        }
        assert!(Dur::parse("30").is_err(), "a bare number needs a unit");
    }

    #[test]
    fn byte_sizes() {
        for (text, want) in [
            ("1024", 1024),
            ("16MiB", 16 << 20),
            ("512kib", 512 << 10),
            ("1MB", 1_000_000),
            ("2 GiB", 2 << 30),
            ("7b", 7),
        ] {
            assert_eq!(<Bytes as Kind<usize>>::parse(text), Ok(want), "{text}");
        }
        assert!(<Bytes as Kind<usize>>::parse("MiB").is_err());
        assert!(<Bytes as Kind<usize>>::parse("-1").is_err());
        assert_eq!(Bytes::show(&(16 << 20)), "16MiB");
        assert_eq!(Bytes::show(&1000), "1000");
    }
}
