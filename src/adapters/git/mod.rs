//! Git through git2: the trained project's commits and exported trees ([`repo`]), and a remote watched
//! through a bare mirror ([`remote`]: a cheap ls-remote, a fetch only on change).

mod iteration;
pub mod remote;
mod repo;

pub use iteration::iteration_ref;
pub use remote::{RemoteError, RemoteWatcher};
pub use repo::{Project, RepoError};
