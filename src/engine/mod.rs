//! The training loop's engine: state, reducer, runtime and the workers it spawns.
//!
//! Layers, each importing only the ones above it: `event`, `trigger`, `options` (plain types);
//! `state`; `msg` (what flows in and out of the reducer); `reducer`; `workers`; `runtime`.

pub mod error;
pub mod event;
pub mod msg;
pub mod options;
pub mod reducer;
pub mod runtime;
pub mod state;
pub mod trigger;
pub mod workers;

pub use event::{EventLine, Level};
pub use msg::{Effect, Msg, Operator};
pub use options::{EngineOptions, RemoteOptions};
pub use reducer::update;
pub use runtime::{Engine, Observer, Outcome};
pub use state::{PipelineState, Stage, StageStatus};
pub use trigger::Trigger;
pub use workers::prepare::choose_image;
