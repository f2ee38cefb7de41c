//! Job 1's push endpoint: an HTTP server for GitHub-style push events, verified by HMAC before anything
//! of the body is read as JSON. A webhook only says "look now": the engine then checks the remote.
//!
//! - [`server`]: the listener.
//! - [`secret`]: the webhook secret, from a file or the environment, never printed.
//! - `slots`: which connections are served when too many arrive.
//!
//! Coalescing bursts of pushes is the engine's job; this module reports the newest head only.

pub mod secret;
pub mod server;
mod signature;
mod slots;

pub use secret::Secret;
pub use server::{WebhookEvent, WebhookOptions, serve, serve_with};
pub use signature::{SignatureError, verify_signature};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The webhook secret could not be loaded; the message names the file or variable, never the value.
    #[error("webhook secret: {0}")]
    Secret(String),
    #[error("cannot listen for webhooks on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
