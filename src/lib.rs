//! mlops-tui: a git repository of ML training code turned into a self-driving, self-healing training loop.

pub mod backend;
pub mod cli;
pub mod config;
pub mod detect;
pub mod engine;
pub mod fsutil;
pub mod headless;
pub mod ids;
pub mod images;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod paths;
pub mod repo;
pub mod store;
pub mod trigger;
pub mod tui;
pub mod tweak;
