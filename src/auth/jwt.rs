//! HS256 access tokens: `sub`, `sid`, `col`, `iat`, `exp`. Only HS256 is accepted (never `none`
//! or another algorithm), with at most 5 s of leeway, and `nbf` is honoured when present. User
//! fields never become claims.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The session the token belongs to; the token dies with it.
    pub sid: String,
    /// The auth collection of the user.
    pub col: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid")]
    Invalid,
}

/// Issues and checks access tokens with one secret.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    expiry: Duration,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("secret", &"<redacted>")
            .field("expiry", &self.expiry)
            .finish()
    }
}

impl Jwt {
    pub fn new(secret: &[u8], expiry: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        // Lucent issues no `nbf`, but a token that carries one is not valid before it.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            expiry,
        }
    }

    /// A token for `user` in `session`, and its expiry (unix seconds).
    pub fn issue(&self, user: &str, session: &str, collection: &str) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let exp = now + i64::try_from(self.expiry.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: user.into(),
            sid: session.into(),
            col: collection.into(),
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail");
        (token, exp)
    }

    /// # Errors
    /// `Expired` for a token past `exp` (+ leeway), `Invalid` for anything else refused.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(JwtError::Expired),
            Err(_) => Err(JwtError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn refuses_every_token_it_did_not_sign_with_hs256() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let (token, _) = jwt.issue("u1", "s1", "users");
        assert_eq!(jwt.verify(&token).unwrap().sub, "u1");

        let other = Jwt::new(
            b"another secret of thirty-two bytes!",
            Duration::from_secs(60),
        );
        assert_eq!(other.verify(&token), Err(JwtError::Invalid), "wrong secret");

        let parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            jwt.verify(&format!("{none_header}.{}.", parts[1])),
            Err(JwtError::Invalid),
            "alg none"
        );
        let tampered_claims = URL_SAFE_NO_PAD
            .encode(br#"{"sub":"admin","sid":"s1","col":"users","iat":0,"exp":99999999999}"#);
        assert_eq!(
            jwt.verify(&format!("{}.{tampered_claims}.{}", parts[0], parts[2])),
            Err(JwtError::Invalid),
            "tampered"
        );

        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: "u1".into(),
                sid: "s1".into(),
                col: "users".into(),
                iat: 0,
                exp: 99_999_999_999,
            },
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(
            jwt.verify(&hs512),
            Err(JwtError::Invalid),
            "other algorithm, same secret"
        );

        let expired = Jwt::new(b"0123456789abcdef0123456789abcdef", Duration::ZERO);
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "u1".into(),
                sid: "s1".into(),
                col: "users".into(),
                iat: 0,
                exp: chrono::Utc::now().timestamp() - 6,
            },
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(
            expired.verify(&old),
            Err(JwtError::Expired),
            "leeway is at most 5 s"
        );
    }

    #[test]
    fn a_token_is_not_valid_before_its_nbf() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let jwt = Jwt::new(secret, Duration::from_secs(60));
        let now = chrono::Utc::now().timestamp();
        let with_nbf = |nbf: i64| {
            let claims = serde_json::json!({
                "sub": "u1", "sid": "s1", "col": "users", "iat": now, "exp": now + 600, "nbf": nbf,
            });
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        assert_eq!(jwt.verify(&with_nbf(now + 60)), Err(JwtError::Invalid));
        assert!(jwt.verify(&with_nbf(now - 1)).is_ok());
        assert!(jwt.verify(&with_nbf(now + 3)).is_ok(), "within the leeway");
    }
}
