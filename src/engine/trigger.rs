//! What asked for a run.

/// Who or what asked for a run. Stored with the run as [`Trigger::as_str`]; that text is part of the
/// history's format and never changes for an existing variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The watcher's first look at the branch when the engine starts.
    Start,
    /// The watcher saw a new head.
    Commit,
    /// The operator asked for a run on the branch's head now.
    Operator,
    /// The operator asked to run the last run's commit again.
    Retry,
}

impl Trigger {
    /// The text stored in the history's `trigger` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Commit => "commit",
            Trigger::Operator => "operator",
            Trigger::Retry => "retry",
        }
    }

    /// The branch watcher asked (start-up or a new commit), as opposed to a person.
    pub fn by_watcher(self) -> bool {
        matches!(self, Trigger::Start | Trigger::Commit)
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_stable() {
        let all = [
            Trigger::Start,
            Trigger::Commit,
            Trigger::Operator,
            Trigger::Retry,
        ];
        let text: Vec<&str> = all.iter().map(|t| t.as_str()).collect();
        assert_eq!(text, ["start", "commit", "operator", "retry"]);
        assert!(Trigger::Commit.by_watcher() && !Trigger::Retry.by_watcher());
    }
}
