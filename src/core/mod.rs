//! The pure core: what mlops-tui knows, with no I/O and no async runtime. Identities, units, the
//! `mlops.toml` schema, model detection, the tweak strategies, the metric parser, the text formats
//! shown to people and the wall clock live here (reading the system time is the one effect allowed).
//!
//! Layering: `core` imports nothing else of this crate; every other layer may import it.

pub mod build_progress;
pub mod clock;
pub mod config;
pub mod detect;
pub mod disk;
pub mod gpu;
pub mod ids;
pub mod knobs;
pub mod metrics;
pub mod model;
pub mod notebook;
pub mod prune;
pub mod text;
pub mod triage;
pub mod tweak;
pub mod units;
