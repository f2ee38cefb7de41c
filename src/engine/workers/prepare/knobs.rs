//! The files the source knobs bind, read from the exported commit, and every binding's place in
//! them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::core::config::{Config, ConfigError};
use crate::core::knobs::{KnobError, Knobs};
use crate::core::model::CommitInfo;
use crate::support::inside::{self, InsideError};

use super::MAX_SOURCE_BYTES;

/// Why the knobs of a commit cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KnobsError {
    /// A knob's file cannot be read; the error points at the knob's `source` in `mlops.toml`.
    #[error(transparent)]
    File(ConfigError),
    #[error(transparent)]
    Resolve(#[from] KnobError),
}

/// Why one knob's file cannot be used, the fix included.
#[derive(Debug, thiserror::Error)]
pub enum KnobFileError {
    #[error(
        "file \"{file}\" is not in commit {commit}: commit it, or fix `source` (a path relative to the project)"
    )]
    NotInCommit { file: String, commit: String },
    #[error(
        "file \"{file}\" is a symbolic link, which mlops-tui never follows (it could point \
         anywhere on this host); commit the file itself"
    )]
    Link { file: String },
    #[error(
        "file \"{file}\" lies under \"{}\", a symbolic link, which mlops-tui never follows; \
         commit the directory itself",
        link.display()
    )]
    UnderLink { file: String, link: PathBuf },
    #[error("\"{file}\" is not a regular file in the commit")]
    NotFile { file: String },
    #[error("file \"{file}\": {source}")]
    Unreadable {
        file: String,
        #[source]
        source: InsideError,
    },
    #[error(
        "{file} is not UTF-8 (invalid byte 0x{byte:02x} at offset {at}, line {line}); save it as UTF-8"
    )]
    NotUtf8 {
        file: String,
        byte: u8,
        at: usize,
        line: usize,
    },
}

/// Reads the files the configuration binds dimensions in from the exported tree and finds every
/// binding's place in them. Before any container: a binding that matches nothing fails the run, and
/// so does a file that is a symbolic link (anywhere on its path), is missing, or is not UTF-8; those
/// errors point at the knob's `source` in `config_at` (the text of `mlops.toml` and its shown path).
pub fn resolve_knobs(
    config: &Config,
    tree: &Path,
    commit: &CommitInfo,
    config_at: (&str, &Path),
) -> Result<Knobs, KnobsError> {
    let mut sources = BTreeMap::new();
    for file in Knobs::files(config) {
        let text = read_knob_file(tree, &file, commit).map_err(|why| {
            let name = config
                .tweak
                .bindings
                .iter()
                .find(|(_, b)| b.file == file)
                .map_or("?", |(n, _)| n.as_str());
            KnobsError::File(config.binding_error(name, config_at.0, config_at.1, &why.to_string()))
        })?;
        sources.insert(file, text);
    }
    Ok(Knobs::resolve(config, sources)?)
}

/// One knob's file as text.
fn read_knob_file(tree: &Path, file: &str, commit: &CommitInfo) -> Result<String, KnobFileError> {
    let file_ = || file.to_string();
    let bytes =
        inside::read_inside(tree, Path::new(file), MAX_SOURCE_BYTES).map_err(|e| match e {
            InsideError::Missing(_) => KnobFileError::NotInCommit {
                file: file_(),
                commit: commit.short().to_string(),
            },
            InsideError::Link(link) if link == Path::new(file) => {
                KnobFileError::Link { file: file_() }
            }
            InsideError::Link(link) => KnobFileError::UnderLink {
                file: file_(),
                link,
            },
            InsideError::NotFile(_) => KnobFileError::NotFile { file: file_() },
            source => KnobFileError::Unreadable {
                file: file_(),
                source,
            },
        })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        KnobFileError::NotUtf8 {
            file: file_(),
            byte: bytes[at],
            at,
            line: bytes[..at].iter().filter(|b| **b == b'\n').count() + 1,
        }
    })
}
