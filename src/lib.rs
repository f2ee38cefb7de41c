//! mlops-tui: a git repository of ML training code turned into a self-driving, self-healing training loop.
//!
//! The layers, lowest first; each imports only the layers below it:
//! - [`core`]: pure logic, no I/O.
//! - [`support`]: paths, atomic file writes, logging.
//! - [`adapters`]: containers, images, git, the history store, notifications, the webhook listener.
//! - [`engine`]: the training loop (one reducer that owns the state; workers that send messages).
//! - Front ends: [`tui`] (the dashboard), [`headless`], [`history`] (the `history` command's tables)
//!   and [`cli`].

pub mod adapters;
pub mod cli;
pub mod core;
pub mod engine;
pub mod headless;
pub mod history;
pub mod support;
pub mod tui;
