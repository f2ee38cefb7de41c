//! Adapters: the parts that do I/O against the outside world, each behind a small interface.
//!
//! - [`backend`]: the one interface to containers ([`backend::ContainerBackend`]); [`docker`] is its
//!   implementation over bollard.
//! - [`engines`]: the configured engines connected, each with its slots ([`engines::Pool`]).
//! - [`pool_backend`]: one backend type for a pool that mixes Docker engines and swarms.
//! - [`images`]: the built-in images, built offline through the backend.
//! - [`git`]: the trained project and remotes, through git2.
//! - [`store`]: the history, in SQLite.
//! - [`mlflow`]: runs recorded in an MLflow tracking server.
//! - [`notify`]: desktop, email and webhook notifications.
//! - [`webhook`]: the push endpoint.
//!
//! Layering: adapters import `core` and `support`, never `engine` or a front end.

pub mod backend;
pub mod docker;
pub mod engines;
pub mod git;
pub mod images;
pub mod mlflow;
pub mod notify;
pub mod pool_backend;
pub mod store;
pub mod webhook;
