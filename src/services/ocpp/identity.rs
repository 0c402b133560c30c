//! Who is connecting, read from the upgrade request: the charge-point id (the path segment
//! after the route's prefix, percent-decoded and checked) and the OCPP version (the first of
//! the server's preferred subprotocols the client offered). Pure functions on strings.

use crate::protocol::http::percent_decode_segment;

use super::errors::Version;

/// Longest charge-point id, in characters (OCPP 2.0.1 `identity`: `string[48]`).
pub const MAX_ID_CHARS: usize = 48;

/// Why the path names no valid charge point (answered 404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the path must be {prefix}/{{charge_point_id}}")]
    NoId { prefix: String },
    #[error("the charge point id is not valid UTF-8 once percent-decoded")]
    NotUtf8,
    #[error("the charge point id is longer than {MAX_ID_CHARS} characters")]
    TooLong,
    #[error("the charge point id may hold only printable ASCII other than space and /")]
    BadCharacter,
}

/// The charge-point id of `path` under `prefix` (`/ocpp`): one non-empty segment after it,
/// percent-decoded, at most 48 characters of printable ASCII (no space, no `/`).
pub fn charge_point_id(path: &str, prefix: &str) -> Result<String, IdError> {
    let no_id = || IdError::NoId {
        prefix: prefix.to_owned(),
    };
    let raw = path
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|segment| !segment.is_empty() && !segment.contains('/'))
        .ok_or_else(no_id)?;
    let id = percent_decode_segment(raw).ok_or(IdError::NotUtf8)?;
    if id.is_empty() {
        return Err(no_id());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(IdError::TooLong);
    }
    if !id.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err(IdError::BadCharacter);
    }
    Ok(id)
}

/// The first version of `preferred` (the server's order) that the client `offered`.
pub fn choose_version(preferred: &[Version], offered: &[String]) -> Option<Version> {
    preferred
        .iter()
        .copied()
        .find(|v| offered.iter().any(|o| o == v.subprotocol()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_last_segment() {
        assert_eq!(charge_point_id("/ocpp/CP-1", "/ocpp").unwrap(), "CP-1");
        assert_eq!(
            charge_point_id("/ocpp/CP%201x", "/ocpp"),
            Err(IdError::BadCharacter)
        );
        assert_eq!(
            charge_point_id("/ocpp/a%2Fb", "/ocpp"),
            Err(IdError::BadCharacter)
        );
        assert_eq!(charge_point_id("/ocpp/CP%2B1", "/ocpp").unwrap(), "CP+1");
        assert_eq!(charge_point_id("/ocpp/a+b", "/ocpp").unwrap(), "a+b");
        for path in ["/ocpp/", "/ocpp", "/ocpp/a/b", "/ocppx/a", "/other/a"] {
            assert!(
                matches!(charge_point_id(path, "/ocpp"), Err(IdError::NoId { .. })),
                "{path}"
            );
        }
        assert_eq!(charge_point_id("/ocpp/%FF", "/ocpp"), Err(IdError::NotUtf8));
        assert_eq!(
            charge_point_id("/ocpp/%0A", "/ocpp"),
            Err(IdError::BadCharacter)
        );
        let long = "x".repeat(MAX_ID_CHARS + 1);
        assert_eq!(
            charge_point_id(&format!("/ocpp/{long}"), "/ocpp"),
            Err(IdError::TooLong)
        );
        let max = "x".repeat(MAX_ID_CHARS);
        assert_eq!(
            charge_point_id(&format!("/ocpp/{max}"), "/ocpp").unwrap(),
            max
        );
    }

    #[test]
    fn the_server_order_decides_the_version() {
        let both = [Version::V201, Version::V16];
        let offered = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose_version(&both, &offered(&["ocpp1.6", "ocpp2.0.1"])),
            Some(Version::V201)
        );
        assert_eq!(
            choose_version(&both, &offered(&["ocpp1.6"])),
            Some(Version::V16)
        );
        assert_eq!(
            choose_version(&[Version::V16], &offered(&["ocpp2.0.1"])),
            None
        );
        assert_eq!(
            choose_version(&both, &offered(&["ocpp1.5", "OCPP1.6"])),
            None
        );
    }
}
