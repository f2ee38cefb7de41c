//! The training loop's engine: state, reducer, runtime and the workers it spawns.

pub mod msg;
pub mod reducer;
pub mod runtime;
pub mod state;
pub mod workers;

pub use msg::{Effect, EventLine, Level, Msg};
pub use reducer::update;
pub use runtime::{Engine, EngineOptions, Observer, Outcome, RemoteOptions};
pub use state::{PipelineState, Stage, StageStatus};
pub use workers::prepare::choose_image;
