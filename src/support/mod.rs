//! Plumbing shared by every layer that does I/O: where files live, atomic writes, logging, panic
//! messages.
//!
//! Layering: `support` imports nothing but `core`.

pub mod data_policy;
pub mod fsutil;
pub mod inside;
pub mod logging;
pub mod panic;
pub mod paths;
