//! Where each setting's value was written (the config file, its variable, a flag), so that an
//! error about it names it the way the user wrote it. It records and describes; it never reads
//! a value, a file or the environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::settings::Setting;

/// Where one setting's value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    /// The config file at this path.
    File(Arc<Path>),
    /// The setting's environment variable.
    Env,
    /// A flag, as written: `--port`, `--set WS_MAX_ROOMS`.
    Flag(String),
}

/// The last layer that set each setting, by YAML key; a setting without one has its default.
#[derive(Debug, Clone, Default)]
pub(super) struct Sources(BTreeMap<&'static str, Source>);

impl Sources {
    pub(super) fn record(&mut self, key: &'static str, source: Source) {
        self.0.insert(key, source);
    }

    /// `setting` as the user wrote it: `WS_PONG_WAIT`, `websocket.pong_wait in config file
    /// PATH`, `--set websocket.pong_wait`; a default is named by key and variable.
    pub(super) fn describe(&self, setting: &Setting) -> String {
        match self.0.get(setting.key) {
            Some(Source::File(path)) => {
                format!("{} in config file {}", setting.key, path.display())
            }
            Some(Source::Env) => setting.var.to_owned(),
            Some(Source::Flag(flag)) => flag.clone(),
            None => format!("{} (default; {})", setting.key, setting.var),
        }
    }
}
