//! The shared secret of the push webhook.
//!
//! Invariants: a `Secret` is never empty (an empty HMAC key would let anyone forge signatures), its
//! `Debug` shows no byte of it, and errors name where it was looked for, never what was found.

use std::fmt;
use std::path::Path;

use super::WebhookError;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, WebhookError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(WebhookError::Secret("the secret is empty".into()));
        }
        Ok(Secret(bytes))
    }

    /// Reads the file's content; one trailing newline (`\n` or `\r\n`), as editors add, is not part of
    /// the secret.
    pub fn from_file(path: &Path) -> Result<Self, WebhookError> {
        let mut bytes = std::fs::read(path)
            .map_err(|e| WebhookError::Secret(format!("cannot read {}: {e}", path.display())))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        Secret::new(bytes).map_err(|_| WebhookError::Secret(format!("{} is empty", path.display())))
    }

    pub fn from_env(var: &str) -> Result<Self, WebhookError> {
        let value = std::env::var_os(var)
            .ok_or_else(|| WebhookError::Secret(format!("the variable {var} is not set")))?;
        Secret::new(value.into_encoded_bytes())
            .map_err(|_| WebhookError::Secret(format!("the variable {var} is empty")))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let s = Secret::new("It's a Secret to Everybody").unwrap();
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(Secret::new("").is_err());
    }

    #[test]
    fn file_secret_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc \r\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), b"abc ");
        std::fs::write(&path, "\n").unwrap();
        let err = Secret::from_file(&path).unwrap_err().to_string();
        assert_eq!(err, format!("webhook secret: {} is empty", path.display()));
        let err = Secret::from_env("MLOPS_TUI_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            err.to_string(),
            "webhook secret: the variable MLOPS_TUI_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
