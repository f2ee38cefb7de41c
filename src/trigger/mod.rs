//! Job 1's triggers: what tells the engine "there is a new commit to train".
//!
//! - [`remote`]: polls a remote repository's branch with git2 (cheap ls-remote, fetch only on change)
//!   into a bare mirror, and exports commits from it. Always available; the fallback for webhooks.
//! - [`webhook`]: an HTTP endpoint for GitHub-style push events, verified by HMAC before anything of
//!   the body is read as JSON. A webhook only says "look now": the engine then checks the remote.
//! - [`secret`]: the webhook secret, from a file or the environment, never printed.
//!
//! Coalescing bursts of pushes is the engine's job; these modules report the newest head only.

pub mod remote;
pub mod secret;
mod signature;
pub mod webhook;

use std::path::PathBuf;

pub use remote::RemoteWatcher;
pub use secret::Secret;
pub use signature::{SignatureError, verify_signature};
pub use webhook::{WebhookEvent, WebhookOptions, serve, serve_with};

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The webhook secret could not be loaded; the message names the file or variable, never the value.
    #[error("webhook secret: {0}")]
    Secret(String),
    #[error("cannot listen for webhooks on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A remote could not be reached, listed or fetched. `url` is the remote as configured.
    #[error("remote {url}: {message}")]
    Remote { url: String, message: String },
    /// The local mirror of a remote could not be created or read.
    #[error("mirror {path}: {message}")]
    Mirror { path: PathBuf, message: String },
    #[error(transparent)]
    Export(#[from] crate::repo::RepoError),
}
