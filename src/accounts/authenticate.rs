//! Credentials → [`Principal`]: an access token (JWT) whose session still lives, a session cookie,
//! or an API key; and `me`, the account as it sees itself.

use super::{Accounts, Error, Result};
use crate::access::MissingScope;
use crate::auth::jwt::JwtError;
use crate::auth::keys::{self, KEY_PREFIX};
use crate::auth::principal::{SCOPES, grants};
use crate::auth::secret::{digest, same_digest};
use crate::auth::{Credential, Principal};
use crate::records::Doc;
use crate::schema::now;

/// What a request presents, read but not checked (the HTTP layer reads it, and checks a cookie
/// request's origin before it is used).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    None,
    /// `Authorization: Bearer <token>`: an access token, or an API key (`lcnt_...`).
    Bearer(String),
    /// The session cookie's value.
    Cookie(String),
}

impl Accounts {
    /// Who presents `credentials`: nobody for none, else the account they prove.
    ///
    /// # Errors
    /// `TokenExpired` for an expired token or key, `Unauthorized` for any other refusal: bad
    /// credentials never fall back to anonymous.
    pub async fn authenticate(&self, credentials: &Credentials) -> Result<Principal> {
        match credentials {
            Credentials::None => Ok(Principal::Anonymous),
            Credentials::Bearer(token) if token.starts_with(KEY_PREFIX) => {
                self.authenticate_api_key(token).await
            }
            Credentials::Bearer(token) => self.authenticate_jwt(token).await,
            Credentials::Cookie(value) => self.authenticate_cookie(value).await,
        }
    }

    /// An access token: valid signature and expiry, and a session that still exists.
    async fn authenticate_jwt(&self, token: &str) -> Result<Principal> {
        let claims = self.inner.jwt.verify(token).map_err(|e| match e {
            JwtError::Expired => Error::TokenExpired,
            JwtError::Invalid => Error::Unauthorized,
        })?;
        if self.auth_collection(&claims.col).is_err() {
            return Err(Error::Unauthorized);
        }
        let doc = self
            .records()
            .account(&claims.col, &claims.sub, Some(&claims.sid))
            .await?
            .ok_or(Error::Unauthorized)?;
        Ok(self.principal(&claims.col, doc, Some(claims.sid), None, Credential::Bearer))
    }

    /// A session cookie.
    async fn authenticate_cookie(&self, cookie: &str) -> Result<Principal> {
        let session = self
            .cookie_session(cookie)
            .await?
            .ok_or(Error::Unauthorized)?;
        let doc = self
            .records()
            .account(&session.collection, &session.user_id, Some(&session.id))
            .await?
            .ok_or(Error::Unauthorized)?;
        Ok(self.principal(
            &session.collection,
            doc,
            Some(session.id),
            None,
            Credential::Cookie,
        ))
    }

    /// `Authorization: Bearer lcnt_...`: the request acts as the key's owner, with the key's
    /// scopes.
    async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let hash = digest(key);
        let (doc, row) = self
            .records()
            .account_by_key(&hash)
            .await?
            .ok_or(Error::Unauthorized)?;
        if !same_digest(&row.key_hash, &hash) {
            return Err(Error::Unauthorized);
        }
        if row.expires_at.is_some_and(|at| at <= now()) {
            return Err(Error::TokenExpired);
        }
        keys::touch(self.db(), &row).await?;
        let scopes = row
            .scopes
            .unwrap_or_else(|| SCOPES.map(str::to_string).to_vec());
        Ok(self.principal(
            &row.collection,
            doc,
            None,
            Some((row.id, scopes)),
            Credential::ApiKey,
        ))
    }

    /// The current account as stored now, as the account sees itself (field `read` rules apply).
    ///
    /// # Errors
    /// `Unauthorized` without a user; `Forbidden` for a key without the `read` scope.
    pub fn me(&self, principal: &Principal) -> Result<Doc> {
        let user = principal.user().ok_or(Error::Unauthorized)?;
        if !grants(principal.key_scopes(), "read") {
            return Err(MissingScope("read".into()).into());
        }
        Ok(self
            .records()
            .render(principal, &user.collection, user.doc.clone())?)
    }
}
