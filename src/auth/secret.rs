//! Secrets as types: random tokens, their SHA-256 digests (what is stored), constant-time
//! comparison, and a `Debug` that never prints them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret handed to a client once (refresh token, cookie value, key). Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 256 bits from the operating system's CSPRNG (through `rand`'s thread generator), URL-safe.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_client(text: &str) -> Self {
        Self(text.to_string())
    }

    /// The text to give the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: the hex SHA-256 of the secret.
    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Hex SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compares two digests without leaking where they differ.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A token of the form `<id>.<secret>`: the id finds the row, the secret proves possession.
#[derive(Debug)]
pub struct Token {
    pub id: String,
    pub secret: Secret,
}

impl Token {
    pub fn format(id: &str, secret: &Secret) -> String {
        format!("{id}.{}", secret.expose())
    }

    /// Splits a presented token; `None` when it is not of the expected shape.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, secret) = text.trim().split_once('.')?;
        let well_formed = !id.is_empty()
            && id.len() <= 64
            && (40..=64).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self {
            id: id.to_string(),
            secret: Secret::from_client(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_hashed_and_redacted() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43, "32 bytes, base64url without padding");
        assert_eq!(a.digest().len(), 64);
        assert!(same_digest(&a.digest(), &a.digest()));
        assert!(!same_digest(&a.digest(), &b.digest()));
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn tokens_parse_only_when_well_formed() {
        let secret = Secret::generate();
        let token = Token::format("abc", &secret);
        let parsed = Token::parse(&token).unwrap();
        assert_eq!((parsed.id.as_str(), parsed.secret), ("abc", secret));
        for bad in [
            "",
            "abc",
            ".x",
            "abc.short",
            "abc.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad}");
        }
    }
}
