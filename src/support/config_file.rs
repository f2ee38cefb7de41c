//! Reading `mlops.toml` from disk; core parses and checks the text ([`Config::parse`]).

use std::path::Path;

use crate::core::config::{Config, ConfigError, FILE_NAME};

/// Reads `<dir>/mlops.toml`.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigError> {
    load(&dir.join(FILE_NAME))
}

/// Reads and parses the file at `path`; errors name it, with the line of what is wrong.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Config::parse(&text, path)
}
