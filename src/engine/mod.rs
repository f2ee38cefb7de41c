//! The training loop's engine: state, reducer, runtime and the workers it spawns.

mod monitor;
pub mod msg;
mod prepare;
pub mod reducer;
pub mod runtime;
pub mod state;
mod trigger;
mod worker;

pub use msg::{Effect, EventLine, Level, Msg};
pub use prepare::choose_image;
pub use reducer::update;
pub use runtime::{Engine, EngineOptions, Observer, Outcome, RemoteOptions};
pub use state::{PipelineState, Stage, StageStatus};
