//! The config file: YAML syntax first (so a misindented line is a syntax error at its place,
//! not a type error on the key before it), then unknown keys with the nearest known one, then
//! typed values. Records which settings the file set; never reads the environment.

use std::path::Path;
use std::sync::Arc;

use serde_yaml_ng::Value;

use super::names::Nearest;
use super::settings::SETTINGS;
use super::source::Source;
use super::{Config, ConfigError, Location};

/// Reads the file at `path`, whose text is `text`, over the defaults. An empty document (or
/// one of only comments) means all defaults.
pub(super) fn read(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let no_content = text
        .lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---");
    if no_content {
        return Ok(Config::default());
    }
    let document: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let (at, message) = located(&e);
        ConfigError::Syntax {
            path: path.to_owned(),
            at,
            message,
        }
    })?;
    let typed = serde_yaml_ng::from_str::<Config>(text);
    if let Some(key) = first_unknown_key(&document, "") {
        // The typed reading stops at the same key unless a bad value comes first.
        let name = key.rsplit('.').next().unwrap_or(&key);
        let at = typed
            .as_ref()
            .err()
            .filter(|e| e.to_string().contains(&format!("unknown field `{name}`")))
            .and_then(|e| located(e).0);
        return Err(ConfigError::UnknownKey {
            path: path.to_owned(),
            at,
            nearest: Nearest::key(&key),
            key,
        });
    }
    let mut cfg = typed.map_err(|e| {
        let (at, message) = located(&e);
        ConfigError::Yaml {
            path: path.to_owned(),
            at,
            message,
        }
    })?;
    let file: Arc<Path> = Arc::from(path);
    for setting in SETTINGS {
        let set = setting
            .key
            .split('.')
            .try_fold(&document, |node, part| node.get(part))
            .is_some();
        if set {
            cfg.sources
                .record(setting.key, Source::File(Arc::clone(&file)));
        }
    }
    Ok(cfg)
}

/// The error's place and its message without the place (which the caller puts first).
fn located(error: &serde_yaml_ng::Error) -> (Option<Location>, String) {
    let at = error.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    });
    let mut message = error.to_string().replace('\n', " ");
    if let Some(Location { line, column }) = at {
        message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    (at, message)
}

/// The first key under `node` (whose own key is `prefix`), in document order, that is
/// neither a setting nor a section. A section that is not a mapping is left to the typed
/// reading, which says what it expected.
fn first_unknown_key(node: &Value, prefix: &str) -> Option<String> {
    let Value::Mapping(entries) = node else {
        return None;
    };
    for (key, value) in entries {
        let name = match key.as_str() {
            Some(name) => name.to_owned(),
            None => serde_yaml_ng::to_string(key)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        if SETTINGS.iter().any(|s| s.key == path) {
            continue;
        }
        let is_section = SETTINGS.iter().any(|s| {
            s.key
                .strip_prefix(&path)
                .is_some_and(|rest| rest.starts_with('.'))
        });
        if !is_section {
            return Some(path);
        }
        if let Some(unknown) = first_unknown_key(value, &path) {
            return Some(unknown);
        }
    }
    None
}
