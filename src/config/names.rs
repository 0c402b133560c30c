//! Misspelled names: the known name nearest to an unknown YAML key, variable or `--set` name,
//! and which environment variables look like settings but are none (warned about, never
//! refused). It only compares names; it never reads the environment or a file.

use std::fmt;

use super::settings::{sections, SETTINGS};

/// Prefixes of our variables: an unknown name with one is most likely a misspelled setting.
const PREFIXES: [&str; 4] = ["RINGGATE_", "WS_", "OCPP_", "SERVER_"];

/// Variables with our prefixes that are not settings: the test harness's binary path and
/// the load tool's charge-point password (`ringgate-load ocpp`).
const NOT_SETTINGS: [&str; 2] = ["RINGGATE_BIN", "OCPP_PASSWORD"];

/// Prefixes of variables that are not settings: test hooks such as
/// `RINGGATE_TEST_SHARD_PANIC`.
const NOT_SETTING_PREFIXES: [&str; 1] = ["RINGGATE_TEST_"];

/// Known names nearest to a misspelled one, by edit distance; shown as
/// ` (did you mean A, B or C?)`, or as nothing when no name is near.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nearest(Vec<String>);

impl Nearest {
    /// The candidates at the smallest distance, if that is at most a third of the length of
    /// `part` (the part of the name that can be misspelled; at least 1); ties are all kept,
    /// at most three, in the order given.
    fn best<'a>(part: &str, scored: impl IntoIterator<Item = (&'a str, usize)>) -> Nearest {
        let mut least = (part.chars().count() / 3).max(1);
        let mut best: Vec<&str> = Vec::new();
        for (candidate, distance) in scored {
            if distance > least || best.contains(&candidate) {
                continue;
            }
            if distance < least {
                best.clear();
                least = distance;
            }
            best.push(candidate);
        }
        Nearest(best.into_iter().take(3).map(str::to_owned).collect())
    }

    /// The setting variable nearest to `name`.
    pub(super) fn variable(name: &str) -> Nearest {
        let scored = SETTINGS
            .iter()
            .map(|s| (s.var, strsim::damerau_levenshtein(name, s.var)));
        let unprefixed = PREFIXES
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        Nearest::best(unprefixed, scored)
    }

    /// The YAML key or section nearest to `key` (`section.name` or `name`): a near name in
    /// the same section, or one step further, the same name in another section, which is
    /// where a key that lost or gained indentation belongs.
    pub(super) fn key(key: &str) -> Nearest {
        let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
        let known = SETTINGS.iter().map(|s| s.key).chain(sections());
        let scored = known.map(|candidate| {
            let (their_section, their_name) = candidate.rsplit_once('.').unwrap_or(("", candidate));
            let moved = usize::from(their_section != section);
            (
                candidate,
                strsim::damerau_levenshtein(name, their_name) + moved,
            )
        });
        Nearest::best(name, scored)
    }

    /// The `--set` name nearest to `name`: a key for a name with lower case, else a variable.
    pub(super) fn set_name(name: &str) -> Nearest {
        if name.bytes().any(|b| b.is_ascii_lowercase()) {
            Nearest::key(name)
        } else {
            Nearest::variable(name)
        }
    }
}

/// ` (did you mean A, B or C?)`, or nothing.
impl fmt::Display for Nearest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_last() {
            Some((last, [])) => write!(f, " (did you mean {last}?)"),
            Some((last, others)) => write!(f, " (did you mean {} or {last}?)", others.join(", ")),
            None => Ok(()),
        }
    }
}

/// An environment variable that looks like a setting and is none; it is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    pub name: String,
    pub nearest: Nearest,
}

impl fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {} is not a setting and is ignored{}",
            self.name, self.nearest
        )
    }
}

/// The variables among `vars` (name, value) that look like settings but are none: names
/// with our prefixes (`RINGGATE_`, `WS_`, `OCPP_`, `SERVER_`), and names one edit away from
/// a setting without a prefix (`JWT_SECERT`). Left alone: the harness and tool variables
/// above, and Kubernetes service links (`RINGGATE_SERVICE_HOST`, `RINGGATE_PORT=tcp://...`).
pub fn unknown_variables(vars: impl IntoIterator<Item = (String, String)>) -> Vec<UnknownVariable> {
    let mut unknown: Vec<UnknownVariable> = vars
        .into_iter()
        .filter(|(name, value)| looks_like_a_setting(name) && !is_service_link(name, value))
        .filter(|(name, _)| !SETTINGS.iter().any(|s| s.var == name))
        .map(|(name, _)| UnknownVariable {
            nearest: Nearest::variable(&name),
            name,
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

fn looks_like_a_setting(name: &str) -> bool {
    let ours = PREFIXES.iter().any(|p| name.starts_with(p))
        && !NOT_SETTINGS.contains(&name)
        && !NOT_SETTING_PREFIXES.iter().any(|p| name.starts_with(p));
    let near_unprefixed = SETTINGS
        .iter()
        .filter(|s| !PREFIXES.iter().any(|p| s.var.starts_with(p)))
        .any(|s| strsim::damerau_levenshtein(name, s.var) == 1);
    ours || near_unprefixed
}

/// Kubernetes sets `NAME_SERVICE_HOST`, `NAME_SERVICE_PORT[_PORTNAME]`, `NAME_PORT=tcp://..`
/// and `NAME_PORT_8080_TCP[_PROTO|_PORT|_ADDR]` for every service, `NAME` being the service's.
fn is_service_link(name: &str, value: &str) -> bool {
    let proto_port = name.split("_PORT_").nth(1).is_some_and(|rest| {
        let mut parts = rest.split('_');
        parts
            .next()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && parts
                .next()
                .is_some_and(|p| ["TCP", "UDP", "SCTP"].contains(&p))
    });
    name.ends_with("_SERVICE_HOST")
        || name.contains("_SERVICE_PORT")
        || proto_port
        || (name.ends_with("_PORT")
            && ["tcp://", "udp://", "sctp://"]
                .iter()
                .any(|p| value.starts_with(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(vars: &[(&str, &str)]) -> Vec<String> {
        unknown_variables(vars.iter().map(|&(n, v)| (n.to_owned(), v.to_owned())))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn misspelled_variables_name_the_nearest_setting() {
        assert_eq!(
            unknown(&[("WS_MAX_ROOM", "5"), ("JWT_SECERT", "x"), ("SERVER_PORT", "1")]),
            [
                "environment variable JWT_SECERT is not a setting and is ignored (did you mean JWT_SECRET?)",
                "environment variable WS_MAX_ROOM is not a setting and is ignored (did you mean WS_MAX_ROOMS?)",
            ]
        );
        assert_eq!(
            unknown(&[("RINGGATE_COLOUR", "blue")]),
            ["environment variable RINGGATE_COLOUR is not a setting and is ignored"]
        );
    }

    #[test]
    fn variables_that_are_not_settings_are_left_alone() {
        let quiet = [
            ("RINGGATE_BIN", "/usr/bin/ringgate"),
            ("RINGGATE_TEST_SHARD_PANIC", "0:100"),
            ("OCPP_PASSWORD", "for the load tool"),
            ("PATH", "/usr/bin"),
            ("LOGNAME", "root"),
            ("RINGGATE_SERVICE_HOST", "10.0.0.1"),
            ("RINGGATE_SERVICE_PORT", "8080"),
            ("RINGGATE_SERVICE_PORT_HTTP", "8080"),
            ("RINGGATE_PORT", "tcp://10.0.0.1:8080"),
            ("RINGGATE_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
            ("RINGGATE_PORT_8080_TCP_ADDR", "10.0.0.1"),
            ("WS_PORT_80_UDP_PROTO", "udp"),
        ];
        assert_eq!(unknown(&quiet), Vec::<String>::new());
        assert_eq!(unknown(&[("RINGGATE_PORT", "9000")]).len(), 1);
    }

    #[test]
    fn keys_suggest_their_section_or_the_section_they_belong_in() {
        let near = |key: &str| Nearest::key(key).to_string();
        assert_eq!(near("server.prot"), " (did you mean server.port?)");
        assert_eq!(
            near("realtime.max_room"),
            " (did you mean realtime.max_rooms?)"
        );
        assert_eq!(
            near("ping_period"),
            " (did you mean websocket.ping_period?)"
        );
        assert_eq!(near("sever"), " (did you mean server?)");
        assert_eq!(
            near("max_message_size"),
            " (did you mean websocket.max_message_size, realtime.max_message_size or ocpp.max_message_size?)"
        );
        assert_eq!(near("colour"), "");
        assert_eq!(
            Nearest::set_name("WS_MAX_ROOM").to_string(),
            " (did you mean WS_MAX_ROOMS?)"
        );
    }
}
