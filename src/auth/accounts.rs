//! The auth operations of SPEC §5 (register, login, refresh, logout, logout-all, sessions) and the
//! authentication of requests. The HTTP layer only parses and renders around these.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::jwt::{Jwt, JwtError};
use super::password::{PasswordError, Passwords};
use super::secret::{Secret, Token, digest, same_digest};
use super::store::{self, SessionRow};
use super::{AuthUser, Credential, Principal};
use crate::config::AuthConfig;
use crate::db::Database;
use crate::records::{self, Doc, Records};
use crate::schema::{AuthOptions, Collection};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown collection")]
    NotFound,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; try again later")]
    Locked { retry_after: u64 },
    #[error("the email address is not verified")]
    EmailNotVerified,
    #[error("authentication required")]
    Unauthorized,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the server is busy; try again")]
    Busy,
    #[error(transparent)]
    Records(#[from] records::Error),
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::Records(records::Error::Database(e))
    }
}

impl From<PasswordError> for Error {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Error::Busy,
            PasswordError::Internal(message) => {
                Error::Records(records::Error::Database(sea_orm::DbErr::Custom(message)))
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// The auth subsystem.
#[derive(Clone, Debug)]
pub struct Auth {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) records: Records,
    pub(super) db: Database,
    pub(super) config: AuthConfig,
    pub(super) jwt: Jwt,
    pub(super) passwords: Passwords,
    pub(super) outbox: super::email::Outbox,
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}

impl Auth {
    pub fn new(
        records: Records,
        config: AuthConfig,
        jwt_secret: &[u8],
        passwords: Passwords,
        outbox: super::email::Outbox,
    ) -> Self {
        let db = records.database().clone();
        let jwt = Jwt::new(jwt_secret, config.jwt_expiry);
        Self {
            inner: Arc::new(Inner {
                records,
                db,
                config,
                jwt,
                passwords,
                outbox,
            }),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    pub(super) fn auth_collection(&self, slug: &str) -> Result<(&Collection, &AuthOptions)> {
        let collection = self
            .inner
            .records
            .schema()
            .get(slug)
            .ok_or(Error::NotFound)?;
        let options = collection.auth.as_ref().ok_or(Error::NotFound)?;
        Ok((collection, options))
    }

    /// Creates an account (the collection's `create` rule applies) and, unless the collection
    /// requires verified emails, a session. The answer shows the account as the account itself
    /// sees it (as `me` would right after), or as `principal` does when no session is issued.
    ///
    /// # Errors
    /// Validation and uniqueness errors of the create; `NotFound` for a collection without auth.
    pub async fn register(
        &self,
        principal: &Principal,
        slug: &str,
        body: &Json,
        user_agent: Option<&str>,
    ) -> Result<LoginResult> {
        let (_, options) = self.auth_collection(slug)?;
        let records = &self.inner.records;
        let stored = records.create_stored(principal, slug, body).await?;
        let id = stored["id"].as_str().unwrap_or_default().to_string();
        if options.verify_email {
            self.queue_verification(slug, &id);
        }
        if options.require_verified {
            let user = records.render(principal, slug, stored)?;
            return Ok(LoginResult { user, tokens: None });
        }
        let (session, tokens) = self.start_session(slug, &id, user_agent).await?;
        let user = self.render_own(slug, stored, session)?;
        Ok(LoginResult {
            user,
            tokens: Some(tokens),
        })
    }

    /// Checks an identifier and password. The attempt is counted before the password is
    /// verified (one atomic statement), so parallel guesses get at most `max_login_attempts`
    /// verifications per lock window, on every instance sharing the database.
    ///
    /// # Errors
    /// `InvalidCredentials` (same for unknown accounts and wrong passwords), `Locked` after too
    /// many attempts, `EmailNotVerified` when the collection requires it, `Busy` when hashing is
    /// saturated (not counted as an attempt).
    pub async fn login(
        &self,
        slug: &str,
        identifier: &str,
        password: &str,
        user_agent: Option<&str>,
    ) -> Result<LoginResult> {
        let (_, options) = self.auth_collection(slug)?;
        let identifier = identifier.trim();
        let stored = if identifier.is_empty() {
            None
        } else {
            self.inner
                .records
                .account_by_login(slug, identifier)
                .await?
        };
        let key = lockout_key(slug, stored.as_ref().map(account_id), identifier);
        let admission = self.inner.passwords.admit()?;
        let lock = chrono_duration(options.lock_time);
        let counted = store::count_attempt(
            &self.inner.db,
            &key,
            options.max_login_attempts,
            lock,
            lock * 2 + chrono::Duration::hours(1),
        )
        .await?;
        if counted.attempts > i64::from(options.max_login_attempts.max(1)) {
            let retry_after = counted
                .locked_until
                .map_or(lock, |until| until - store::now());
            let retry_after = u64::try_from(retry_after.num_seconds()).unwrap_or(0).max(1);
            return Err(Error::Locked { retry_after });
        }
        let hash = stored
            .as_ref()
            .and_then(|doc| doc.get("password"))
            .and_then(Json::as_str)
            .map(str::to_string);
        let valid = self
            .inner
            .passwords
            .verify_admitted(admission, password.to_string(), hash)
            .await?;
        let Some(stored) = stored.filter(|_| valid) else {
            return Err(Error::InvalidCredentials);
        };
        store::clear_attempts(&self.inner.db, &key).await?;
        if options.require_verified && stored.get("verified") != Some(&Json::Bool(true)) {
            return Err(Error::EmailNotVerified);
        }
        let id = account_id(&stored).to_string();
        let (session, tokens) = self.start_session(slug, &id, user_agent).await?;
        let user = self.render_own(slug, stored, session)?;
        Ok(LoginResult {
            user,
            tokens: Some(tokens),
        })
    }

    /// A stored account as the account itself sees it, signed in with `session`.
    fn render_own(&self, slug: &str, stored: Doc, session: String) -> Result<Doc> {
        let own = self.principal(
            slug,
            stored.clone(),
            Some(session),
            None,
            Credential::Bearer,
        );
        Ok(self.inner.records.render(&own, slug, stored)?)
    }

    /// A new session of the account, and its id.
    async fn start_session(
        &self,
        slug: &str,
        user_id: &str,
        user_agent: Option<&str>,
    ) -> Result<(String, Tokens)> {
        let now = store::now();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let refresh = Secret::generate();
        let cookie = self.inner.config.cookies.then(Secret::generate);
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
        store::insert_session(&self.inner.db, &row).await?;
        let (token, exp) = self.inner.jwt.issue(user_id, &id, slug);
        let tokens = Tokens {
            token,
            refresh_token: Token::format(&id, &refresh),
            exp,
            cookie: cookie.map(|c| Token::format(&id, &c)),
        };
        Ok((id, tokens))
    }

    /// Rotates a refresh token. Presenting a real token of the session that was already rotated
    /// away ends the session (someone holds a copy); any other wrong secret is only refused, so
    /// whoever can read an access token (and so the session id) cannot end the session.
    ///
    /// # Errors
    /// `Unauthorized` for unknown, ended, reused, forged or foreign tokens.
    pub async fn refresh(&self, slug: &str, refresh_token: &str) -> Result<Tokens> {
        self.auth_collection(slug)?;
        let token = Token::parse(refresh_token).ok_or(Error::Unauthorized)?;
        let session = store::find_session(&self.inner.db, &token.id)
            .await?
            .ok_or(Error::Unauthorized)?;
        if session.collection != slug {
            return Err(Error::Unauthorized);
        }
        let presented = token.secret.digest();
        if !same_digest(&presented, &session.refresh_hash) {
            if store::was_rotated(&self.inner.db, &session.id, &presented).await? {
                // Reuse of a rotated token: whoever holds the session may be an attacker; end it.
                store::delete_session(&self.inner.db, &session.id).await?;
            }
            return Err(Error::Unauthorized);
        }
        let next = Secret::generate();
        if !store::rotate_refresh(
            &self.inner.db,
            &session.id,
            &presented,
            &next.digest(),
            self.refresh_lifetime(),
        )
        .await?
        {
            // Another refresh with the same token won the race: this one is a reuse.
            store::delete_session(&self.inner.db, &session.id).await?;
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
        if !store::rotate_refresh(
            &self.inner.db,
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

    fn refresh_lifetime(&self) -> chrono::Duration {
        chrono_duration(self.inner.config.refresh_expiry)
    }

    async fn cookie_session(&self, cookie: &str) -> Result<Option<SessionRow>> {
        let Some(token) = Token::parse(cookie) else {
            return Ok(None);
        };
        let session = store::find_session(&self.inner.db, &token.id).await?;
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
        let session = store::find_session(&self.inner.db, &token.id)
            .await?
            .ok_or(Error::Unauthorized)?;
        if session.collection != slug || !same_digest(&token.secret.digest(), &session.refresh_hash)
        {
            return Err(Error::Unauthorized);
        }
        store::delete_session(&self.inner.db, &session.id).await?;
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
        store::delete_session(&self.inner.db, &session).await?;
        Ok(())
    }

    /// Ends every session of the principal's account. API keys stay.
    ///
    /// # Errors
    /// `Unauthorized` without a session-authenticated user.
    pub async fn logout_all(&self, principal: &Principal) -> Result<u64> {
        let user = principal
            .user()
            .filter(|u| u.session_id.is_some())
            .ok_or(Error::Unauthorized)?;
        Ok(store::delete_user_sessions(&self.inner.db, &user.collection, &user.id, None).await?)
    }

    /// The principal's live sessions.
    ///
    /// # Errors
    /// `Unauthorized` without a session-authenticated user.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>> {
        let user = principal
            .user()
            .filter(|u| u.session_id.is_some())
            .ok_or(Error::Unauthorized)?;
        let rows = store::user_sessions(&self.inner.db, &user.collection, &user.id).await?;
        let time = crate::schema::format_time;
        Ok(rows
            .into_iter()
            .map(|row| SessionInfo {
                current: user.session_id.as_deref() == Some(row.id.as_str()),
                id: row.id,
                created_at: time(&row.created_at),
                last_used_at: time(&row.last_used_at),
                expires_at: time(&row.expires_at),
                user_agent: row.user_agent,
            })
            .collect())
    }

    /// Ends one of the principal's own sessions.
    ///
    /// # Errors
    /// `Unauthorized` without a session user; `NotFound` for a session that is not theirs.
    pub async fn revoke_session(&self, principal: &Principal, id: &str) -> Result<()> {
        let user = principal
            .user()
            .filter(|u| u.session_id.is_some())
            .ok_or(Error::Unauthorized)?;
        let session = store::find_session(&self.inner.db, id).await?;
        match session {
            Some(s) if s.collection == user.collection && s.user_id == user.id => {
                store::delete_session(&self.inner.db, id).await?;
                Ok(())
            }
            _ => Err(Error::Records(records::Error::NotFound)),
        }
    }

    /// Authenticates an access token: valid signature and expiry, and a session that still exists.
    ///
    /// # Errors
    /// `TokenExpired` for an expired token, `Unauthorized` for any other refusal.
    pub async fn authenticate_jwt(&self, token: &str) -> Result<Principal> {
        let claims = self.inner.jwt.verify(token).map_err(|e| match e {
            JwtError::Expired => Error::TokenExpired,
            JwtError::Invalid => Error::Unauthorized,
        })?;
        if self.auth_collection(&claims.col).is_err() {
            return Err(Error::Unauthorized);
        }
        let doc = self
            .inner
            .records
            .account(&claims.col, &claims.sub, Some(&claims.sid))
            .await?
            .ok_or(Error::Unauthorized)?;
        Ok(self.principal(&claims.col, doc, Some(claims.sid), None, Credential::Bearer))
    }

    /// Authenticates a session cookie.
    ///
    /// # Errors
    /// `Unauthorized` when it names no live session.
    pub async fn authenticate_cookie(&self, cookie: &str) -> Result<Principal> {
        let session = self
            .cookie_session(cookie)
            .await?
            .ok_or(Error::Unauthorized)?;
        let doc = self
            .inner
            .records
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

    pub(super) fn principal(
        &self,
        slug: &str,
        doc: Doc,
        session_id: Option<String>,
        scopes: Option<Vec<String>>,
        credential: Credential,
    ) -> Principal {
        let id = doc
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let collection = self.inner.records.schema().get(slug);
        let doc = match collection {
            Some(collection) => crate::records::present(collection, doc),
            None => doc,
        };
        Principal::User(Arc::new(AuthUser {
            id,
            collection: slug.to_string(),
            doc,
            session_id,
            scopes,
            credential,
        }))
    }

    /// The current account as stored now, as the account sees itself (field `read` rules apply).
    ///
    /// # Errors
    /// `Unauthorized` without a user.
    pub fn me(&self, principal: &Principal) -> Result<Doc> {
        let user = principal.user().ok_or(Error::Unauthorized)?;
        if user.credential == Credential::ApiKey
            && !super::api_keys::grants(user.scopes.as_deref(), "read")
        {
            return Err(Error::Records(records::Error::Forbidden(
                "the API key lacks the `read` scope".into(),
            )));
        }
        Ok(self
            .inner
            .records
            .render(principal, &user.collection, user.doc.clone())?)
    }
}

/// The key login attempts of an identifier are counted under: the found account's id when the
/// account exists (so every spelling that finds it — `İtem` and `item` on PostgreSQL, whose
/// `LOWER()` is not Rust's — shares one count), else the normalized identifier. The one place
/// this key is made: login counts under it, a completed password reset clears it.
pub(super) fn lockout_key(slug: &str, account: Option<&str>, identifier: &str) -> String {
    match account {
        Some(id) => digest(&format!("{slug}\u{0}id\u{0}{id}")),
        None => digest(&format!(
            "{slug}\u{0}login\u{0}{}",
            identifier.trim().to_lowercase()
        )),
    }
}

/// The `id` of a stored account.
pub(super) fn account_id(account: &Doc) -> &str {
    account.get("id").and_then(Json::as_str).unwrap_or_default()
}
