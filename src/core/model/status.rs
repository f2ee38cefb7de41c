//! Where runs and iterations stand. Each status has one spelling (`as_str`), the one shown to people
//! and the one the store keeps, so parsing it back ([`FromStr`]) is the only conversion there is.

use std::fmt;
use std::str::FromStr;

/// An unknown status spelling, e.g. written by a newer version of the tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} status {value:?}")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownStatus { kind: $kind, value: other.to_string() }),
                }
            }
        }

    };
}

text_enum!(
    /// Where a run stands. Only `Running` is not final.
    RunStatus, "run", {
        Running => "running",
        /// An iteration met the metric target.
        Succeeded => "succeeded",
        /// The iteration budget (or the failure allowance) ran out before the target was met.
        BudgetSpent => "budget_spent",
        /// The run could not go on (e.g. the image could not be built).
        Failed => "failed",
        /// The process driving the run ended while it was in progress.
        Interrupted => "interrupted",
        /// The operator stopped the run.
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// Where one iteration stands. `Succeeded`, `BelowTarget`, `Failed`, `Stopped` and `Pruned` are
    /// final.
    IterStatus, "iteration", {
        Pending => "pending",
        /// The proposal waits for the operator (`apply = "ask"`).
        AwaitingApproval => "awaiting_approval",
        Building => "building",
        Running => "running",
        /// Training finished and the metric met the target.
        Succeeded => "succeeded",
        /// Training finished but the metric missed the target.
        BelowTarget => "below_target",
        Failed => "failed",
        /// Stopped by the operator, or by the end of the process that ran it.
        Stopped => "stopped",
        /// Stopped early because its per-epoch metric lagged behind the run's other iterations; its
        /// value is the last one it reported. Not a failure.
        Pruned => "pruned",
    }
);

impl RunStatus {
    pub fn is_final(self) -> bool {
        self != RunStatus::Running
    }

    /// The run reached its own verdict: its commit was trained. A cancelled run (stopped by the
    /// operator, or a commit skipped as superseded) and an interrupted one were not.
    pub fn ran_to_end(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::BudgetSpent | RunStatus::Failed
        )
    }
}

impl IterStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            IterStatus::Succeeded
                | IterStatus::BelowTarget
                | IterStatus::Failed
                | IterStatus::Stopped
                | IterStatus::Pruned
        )
    }
}
