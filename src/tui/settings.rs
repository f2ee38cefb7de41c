//! The user's dashboard settings: `<config dir>/config.toml`.
//!
//! ```toml
//! theme = "light"        # dark (default), light, colorblind, or a file in <config dir>/themes/
//! ascii = false          # true: ASCII borders, glyphs and plot markers (fonts without Braille)
//! scrollback = 10000     # log lines kept per iteration
//!
//! [keys]                 # action = key or [keys]; see `?` in the dashboard for the names
//! approve = ["a", "y"]
//!
//! [data]                 # host directories `[data]` in a repository's mlops.toml may mount
//! allow = ["/srv/datasets", "~/datasets"]
//! ```
//!
//! Parsing is strict like `mlops.toml`: an unknown key is an error, and every error names the file,
//! the line and the bad value, because a silently ignored setting is worse than a refusal to start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name inside the user's configuration directory.
pub const FILE_NAME: &str = "config.toml";

/// Log lines kept per iteration when the file does not say.
pub const DEFAULT_SCROLLBACK: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `line` and `column` are 1-based.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

impl SettingsError {
    pub fn plain(path: &Path, message: String) -> SettingsError {
        SettingsError::File {
            path: path.to_path_buf(),
            message,
        }
    }

    pub fn read(path: &Path, e: &std::io::Error) -> SettingsError {
        SettingsError::plain(path, format!("cannot read: {e}"))
    }
}

/// An error at byte `offset` of `text`, with its 1-based line and column.
pub fn offset_error(path: &Path, text: &str, offset: usize, message: String) -> SettingsError {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    SettingsError::At {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// One key or several, as written in `[keys]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    pub fn keys(&self) -> Vec<&str> {
        match self {
            KeyList::One(k) => vec![k.as_str()],
            KeyList::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    theme: Option<String>,
    ascii: Option<bool>,
    scrollback: Option<toml::Spanned<i64>>,
    #[serde(default)]
    keys: BTreeMap<toml::Spanned<String>, toml::Spanned<KeyList>>,
    /// `[data] allow`: which host directories `[data]` may mount; read and checked by
    /// [`crate::support::data_policy`], so that the engine sees it without the dashboard.
    #[allow(dead_code)]
    data: Option<toml::Value>,
}

/// A `[keys]` entry with the byte offsets of its name and value, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOverride {
    pub action: String,
    pub action_at: usize,
    pub keys: KeyList,
    pub keys_at: usize,
}

/// The settings as read; `text` and `path` are kept so that later checks (key names) can point at
/// the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub path: PathBuf,
    pub text: String,
    pub theme: Option<String>,
    pub ascii: bool,
    pub scrollback: usize,
    pub keys: Vec<KeyOverride>,
}

impl Settings {
    /// Defaults, as if the file were empty.
    pub fn defaults(path: PathBuf) -> Settings {
        Settings {
            path,
            text: String::new(),
            theme: None,
            ascii: false,
            scrollback: DEFAULT_SCROLLBACK,
            keys: Vec::new(),
        }
    }

    /// Reads `<config_dir>/config.toml`; a missing file means the defaults.
    pub fn load(config_dir: &Path) -> Result<Settings, SettingsError> {
        let path = config_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::defaults(path)),
            Err(e) => Err(SettingsError::read(&path, &e)),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Settings, SettingsError> {
        let raw: RawSettings = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            offset_error(path, text, offset, e.message().trim().to_string())
        })?;
        let scrollback = match raw.scrollback {
            None => DEFAULT_SCROLLBACK,
            Some(s) => {
                let v = *s.get_ref();
                if !(100..=10_000_000).contains(&v) {
                    return Err(offset_error(
                        path,
                        text,
                        s.span().start,
                        format!(
                            "`scrollback` must be between 100 and 10000000 lines, found \"{v}\""
                        ),
                    ));
                }
                v as usize
            }
        };
        let keys = raw
            .keys
            .into_iter()
            .map(|(name, keys)| KeyOverride {
                action_at: name.span().start,
                action: name.into_inner(),
                keys_at: keys.span().start,
                keys: keys.into_inner(),
            })
            .collect();
        Ok(Settings {
            path: path.to_path_buf(),
            text: text.to_string(),
            theme: raw.theme,
            ascii: raw.ascii.unwrap_or(false),
            scrollback,
            keys,
        })
    }

    /// An error pointing at byte `offset` of this file.
    pub fn error_at(&self, offset: usize, message: String) -> SettingsError {
        offset_error(&self.path, &self.text, offset, message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_data_allow_list_is_left_to_the_engine() {
        let s = Settings::parse(
            "theme = \"light\"\n[data]\nallow = [\"/srv/datasets\"]\n",
            Path::new("/c/config.toml"),
        )
        .unwrap();
        assert_eq!(s.theme.as_deref(), Some("light"));
    }

    #[test]
    fn missing_file_is_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(dir.path()).unwrap();
        assert_eq!(s.scrollback, DEFAULT_SCROLLBACK);
        assert!(!s.ascii);
        assert!(s.theme.is_none());
    }

    #[test]
    fn reads_every_setting() {
        let text = "theme = \"light\"\nascii = true\nscrollback = 500\n[keys]\napprove = [\"a\", \"y\"]\nquit = \"ctrl-q\"\n";
        let s = Settings::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(s.theme.as_deref(), Some("light"));
        assert!(s.ascii);
        assert_eq!(s.scrollback, 500);
        assert_eq!(s.keys.len(), 2);
        assert_eq!(s.keys[0].action, "approve");
        assert_eq!(s.keys[0].keys.keys(), vec!["a", "y"]);
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let e = Settings::parse(
            "theme = \"dark\"\ncolour = 1\n",
            Path::new("/c/config.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/c/config.toml:2:1: unknown field `colour`"),
            "{e}"
        );
    }

    #[test]
    fn scrollback_out_of_range_quotes_the_value() {
        let e = Settings::parse("scrollback = 5\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "c.toml:1:14: `scrollback` must be between 100 and 10000000 lines, found \"5\""
        );
    }
}
