//! Plumbing shared by every layer that does I/O: where files live, atomic writes, logging, panic
//! messages.
//!
//! Layering: `support` imports nothing but `core`.

pub mod fsutil;
pub mod logging;
pub mod panic;
pub mod paths;
