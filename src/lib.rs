//! mlops-tui: a git repository of ML training code turned into a self-driving, self-healing training loop.

pub mod config;
pub mod detect;
pub mod ids;
pub mod metrics;
pub mod store;
pub mod tweak;
pub mod backend;
pub mod images;
pub mod repo;
pub mod engine;
pub mod fsutil;
pub mod paths;
pub mod headless;
pub mod cli;
pub mod logging;
