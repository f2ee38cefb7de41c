//! The outcome of one delivery attempt, shared by every channel and the retry policy.

/// Why one attempt failed. `message` is safe to show: channels build it without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub message: String,
    /// Another attempt may succeed.
    pub retryable: bool,
    /// The channel's service does not exist here (no session bus, no notification daemon): reported
    /// once, not per notification, and never retried.
    pub unavailable: bool,
}

impl DeliveryError {
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            retryable: false,
            unavailable: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            retryable: true,
            unavailable: false,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            retryable: false,
            unavailable: true,
        }
    }
}
