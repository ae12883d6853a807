//! Sessions: starting one (register, login), and an account's own view of them — logout (by
//! token or by refresh token), logout everywhere, the list, and ending one by id.

use super::{Accounts, Error, Result, chrono_duration};
use crate::auth::Principal;
use crate::auth::principal::AuthUser;
use crate::auth::secret::{Secret, Token, same_digest};
use crate::auth::sessions::{self, SessionRow};
use crate::records::Doc;
use crate::schema::{format_time, now};

/// What register and login hand back: the account, and tokens unless verification is pending.
#[derive(Debug)]
pub struct LoginResult {
    pub user: Doc,
    pub tokens: Option<Tokens>,
}

/// A fresh access token, refresh token and, when cookies are on, the cookie value.
#[derive(Debug)]
pub struct Tokens {
    pub token: String,
    pub refresh_token: String,
    pub exp: i64,
    pub cookie: Option<String>,
}

/// A session as its owner sees it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// The session-authenticated account of a request (API keys have no session).
fn session_user(principal: &Principal) -> Result<&AuthUser> {
    principal
        .user()
        .filter(|u| u.session_id.is_some())
        .ok_or(Error::Unauthorized)
}

impl Accounts {
    /// A new session of the account, and its id.
    pub(super) async fn start_session(
        &self,
        slug: &str,
        user_id: &str,
        user_agent: Option<&str>,
    ) -> Result<(String, Tokens)> {
        let now = now();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let refresh = Secret::generate();
        let cookie = self.config().cookies.then(Secret::generate);
        let row = SessionRow {
            id: id.clone(),
            collection: slug.to_string(),
            user_id: user_id.to_string(),
            refresh_hash: refresh.digest(),
            cookie_hash: cookie.as_ref().map(Secret::digest),
            user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
            created_at: now,
            last_used_at: now,
            expires_at: now + self.refresh_lifetime(),
        };
        sessions::insert(self.db(), &row).await?;
        let (token, exp) = self.inner.jwt.issue(user_id, &id, slug);
        let tokens = Tokens {
            token,
            refresh_token: Token::format(&id, &refresh),
            exp,
            cookie: cookie.map(|c| Token::format(&id, &c)),
        };
        Ok((id, tokens))
    }

    pub(super) fn refresh_lifetime(&self) -> chrono::Duration {
        chrono_duration(self.config().refresh_expiry)
    }

    /// The live session a cookie value names, if its secret matches.
    pub(super) async fn cookie_session(&self, cookie: &str) -> Result<Option<SessionRow>> {
        let Some(token) = Token::parse(cookie) else {
            return Ok(None);
        };
        let session = sessions::find(self.db(), &token.id).await?;
        Ok(session.filter(|s| {
            s.cookie_hash
                .as_deref()
                .is_some_and(|hash| same_digest(hash, &token.secret.digest()))
        }))
    }

    /// Ends the session a refresh token belongs to (when the token is its current one).
    ///
    /// # Errors
    /// `Unauthorized` when the token names no live session.
    pub async fn logout_refresh_token(&self, slug: &str, refresh_token: &str) -> Result<()> {
        let token = Token::parse(refresh_token).ok_or(Error::Unauthorized)?;
        let session = sessions::find(self.db(), &token.id)
            .await?
            .ok_or(Error::Unauthorized)?;
        if session.collection != slug || !same_digest(&token.secret.digest(), &session.refresh_hash)
        {
            return Err(Error::Unauthorized);
        }
        sessions::delete(self.db(), &session.id).await?;
        Ok(())
    }

    /// Ends the session of an authenticated request.
    ///
    /// # Errors
    /// `Unauthorized` when the principal has no session (anonymous, API key).
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        let session = principal
            .user()
            .and_then(|u| u.session_id.clone())
            .ok_or(Error::Unauthorized)?;
        sessions::delete(self.db(), &session).await?;
        Ok(())
    }

    /// Ends every session of the principal's account. API keys stay.
    ///
    /// # Errors
    /// `Unauthorized` without a session-authenticated user.
    pub async fn logout_all(&self, principal: &Principal) -> Result<u64> {
        let user = session_user(principal)?;
        Ok(sessions::delete_of_user(self.db(), &user.collection, &user.id, None).await?)
    }

    /// The principal's live sessions.
    ///
    /// # Errors
    /// `Unauthorized` without a session-authenticated user.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>> {
        let user = session_user(principal)?;
        let rows = sessions::of_user(self.db(), &user.collection, &user.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| SessionInfo {
                current: user.session_id.as_deref() == Some(row.id.as_str()),
                id: row.id,
                created_at: format_time(&row.created_at),
                last_used_at: format_time(&row.last_used_at),
                expires_at: format_time(&row.expires_at),
                user_agent: row.user_agent,
            })
            .collect())
    }

    /// Ends one of the principal's own sessions.
    ///
    /// # Errors
    /// `Unauthorized` without a session user; `NotFound` for a session that is not theirs.
    pub async fn revoke_session(&self, principal: &Principal, id: &str) -> Result<()> {
        let user = session_user(principal)?;
        match sessions::find(self.db(), id).await? {
            Some(s) if s.collection == user.collection && s.user_id == user.id => {
                sessions::delete(self.db(), id).await?;
                Ok(())
            }
            _ => Err(Error::NotFound),
        }
    }
}
