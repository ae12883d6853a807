//! Refresh: a new access token for a refresh token (rotated, with reuse detection) or for the
//! session cookie.

use super::{Accounts, Error, Result, Tokens};
use crate::auth::secret::{Secret, Token, same_digest};
use crate::auth::sessions;

impl Accounts {
    /// Rotates a refresh token. Presenting a real token of the session that was already rotated
    /// away ends the session (someone holds a copy); any other wrong secret is only refused, so
    /// whoever can read an access token (and so the session id) cannot end the session.
    ///
    /// # Errors
    /// `Unauthorized` for unknown, ended, reused, forged or foreign tokens.
    pub async fn refresh(&self, slug: &str, refresh_token: &str) -> Result<Tokens> {
        self.auth_collection(slug)?;
        let token = Token::parse(refresh_token).ok_or(Error::Unauthorized)?;
        let session = sessions::find(self.db(), &token.id)
            .await?
            .ok_or(Error::Unauthorized)?;
        if session.collection != slug {
            return Err(Error::Unauthorized);
        }
        let presented = token.secret.digest();
        if !same_digest(&presented, &session.refresh_hash) {
            if sessions::was_rotated(self.db(), &session.id, &presented).await? {
                // Reuse of a rotated token: whoever holds the session may be an attacker; end it.
                sessions::delete(self.db(), &session.id).await?;
            }
            return Err(Error::Unauthorized);
        }
        let next = Secret::generate();
        if !sessions::rotate_refresh(
            self.db(),
            &session.id,
            &presented,
            &next.digest(),
            self.refresh_lifetime(),
        )
        .await?
        {
            // Another refresh with the same token won the race: this one is a reuse.
            sessions::delete(self.db(), &session.id).await?;
            return Err(Error::Unauthorized);
        }
        let (access, exp) = self.inner.jwt.issue(&session.user_id, &session.id, slug);
        Ok(Tokens {
            token: access,
            refresh_token: Token::format(&session.id, &next),
            exp,
            cookie: None,
        })
    }

    /// Refreshes from a cookie session: a new access token and a rotated refresh token.
    ///
    /// # Errors
    /// `Unauthorized` when the cookie does not name a live session of `slug`.
    pub async fn refresh_from_cookie(&self, slug: &str, cookie: &str) -> Result<Tokens> {
        let session = self
            .cookie_session(cookie)
            .await?
            .filter(|s| s.collection == slug)
            .ok_or(Error::Unauthorized)?;
        let next = Secret::generate();
        if !sessions::rotate_refresh(
            self.db(),
            &session.id,
            &session.refresh_hash,
            &next.digest(),
            self.refresh_lifetime(),
        )
        .await?
        {
            return Err(Error::Unauthorized);
        }
        let (access, exp) = self.inner.jwt.issue(&session.user_id, &session.id, slug);
        Ok(Tokens {
            token: access,
            refresh_token: Token::format(&session.id, &next),
            exp,
            cookie: None,
        })
    }
}
