//! The engine's workers. Each does I/O for one job and reports only through typed messages; none
//! decides anything the reducer should.
//!
//! - [`prepare`]: export the commit, detect, choose and build the image.
//! - [`iteration`]: one training container, from start to judged exit; [`disk`] its `/mlops` quota.
//! - [`monitor`]: the container engine's event stream; [`health`]: whether each engine of a pool
//!   answers; [`nodes`]: a cluster engine's nodes and where its trials run.
//! - [`coalesce`]: a metric flood held to a bounded number of points and shown lines per batch.
//! - [`output`]: what is kept of a container's output, and where a re-attachment resumes.
//! - [`poll`]: notices new commits (local branch, remote, webhook wake-ups).
//! - [`workspace`]: the iteration's writable copy of its commit, `[data]`, what is read at exit;
//!   [`keep`]: the files `[train] keep` carries into it from an earlier iteration's.
//! - [`track`]: runs recorded in MLflow, queued while its server is down.
//! - [`notebook`]: a `.ipynb` entry runs through our nbclient runner.

pub mod coalesce;
pub mod disk;
pub mod gpu;
pub mod health;
pub mod iteration;
pub mod keep;
pub mod monitor;
pub mod nodes;
pub mod notebook;
pub mod output;
pub mod poll;
pub mod prepare;
pub mod track;
pub mod workspace;
