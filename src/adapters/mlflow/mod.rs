//! Runs recorded in an MLflow tracking server (`[track.mlflow]`), through its REST API.
//!
//! - [`plan`]: what to send for a run, from its history and what was acknowledged (pure).
//! - [`client`]: the REST calls.
//! - [`sync`]: one attempt to bring a run up to date, with its queue and acknowledgements on disk.

pub mod client;
pub mod plan;
pub mod sync;

pub use client::{Client, MlflowError};
pub use plan::{Acks, RunContext, Snapshot};
pub use sync::{Pending, sync_run};
