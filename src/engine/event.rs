//! Lines for people: what the reducer reports, the headless printer prints, the event log shows and
//! the history keeps.

/// A line for people: printed by headless mode, kept in the event log, stored in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub at_ms: i64,
    /// `detect`, `train:2`, `tweak:1→2`, `done` …
    pub tag: String,
    pub text: String,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Error,
}
