//! Plumbing shared by every layer that does I/O: where files live, atomic writes, logging, panic
//! messages, and reading what core parses (`mlops.toml`, a project's Python files).
//!
//! Layering: `support` imports nothing but `core`.

pub mod config_file;
pub mod data_policy;
pub mod fsutil;
pub mod inside;
pub mod logging;
pub mod panic;
pub mod paths;
pub mod source_tree;
