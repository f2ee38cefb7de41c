//! The words of the domain: where runs and iterations stand, the commit a run trains, how a
//! container ended and what it printed, what its GPUs are doing, the image a run asks for, and what is told to people. The engine's reducer reasons in
//! these terms alone; the adapters translate them to and from their outside worlds (SQL text, git2
//! objects, the container engine's API, notification channels) and own nothing of them but those
//! conversions.

mod commit;
mod container;
mod gpu;
mod image;
mod node;
mod notification;
mod status;

pub use commit::{CommitInfo, WORKING_TREE};
pub use container::{ContainerAction, ContainerEvent, ContainerState, ExitStatus, LogLine, labels};
pub use gpu::GpuSample;
pub use image::{ImageSpec, Profile};
pub use node::{NodeAvailability, NodeRole, NodeState, NodeTrial, NodeView, name_nodes};
pub use notification::{BudgetSpent, Channel, Notification, NotifyReport, TargetReached};
pub use status::{IterStatus, RunStatus, UnknownStatus};
