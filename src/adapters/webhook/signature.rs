//! `X-Hub-Signature-256`: `sha256=` followed by the hex HMAC-SHA256 of the raw request body, keyed with
//! the webhook secret. The comparison is constant-time (the MAC crate's `verify_slice`), so response
//! timing tells an attacker nothing about how much of a forged signature was right.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not \"sha256=\" and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the header's value, if present) against `body`.
pub fn verify_signature(
    secret: &Secret,
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose()).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// 64 hex digits (either case) to 32 bytes.
fn decode_hex(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// GitHub's published example ("Validating webhook deliveries").
    const VECTOR: &[u8] =
        b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secret() -> Secret {
        Secret::new("It's a Secret to Everybody").unwrap()
    }

    #[test]
    fn githubs_test_vector_verifies() {
        assert_eq!(
            verify_signature(&secret(), b"Hello, World!", Some(VECTOR)),
            Ok(())
        );
        let upper = VECTOR.to_ascii_uppercase();
        let upper = [b"sha256=".as_slice(), &upper[7..]].concat();
        assert_eq!(
            verify_signature(&secret(), b"Hello, World!", Some(&upper)),
            Ok(())
        );
    }

    #[test]
    fn anything_else_is_rejected() {
        let s = secret();
        assert_eq!(
            verify_signature(&s, b"Hello, World?", Some(VECTOR)),
            Err(SignatureError::Mismatch)
        );
        let other = Secret::new("another").unwrap();
        assert_eq!(
            verify_signature(&other, b"Hello, World!", Some(VECTOR)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&s, b"Hello, World!", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&s, b"Hello, World!", Some(&VECTOR[7..])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&s, b"Hello, World!", Some(&VECTOR[..70])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&s, b"x", Some(b"sha1=0123")),
            Err(SignatureError::Malformed)
        );
    }
}
