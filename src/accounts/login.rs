//! Sign-in with an identifier and a password, under the lockout.

use serde_json::Value as Json;

use super::{Accounts, Error, LoginResult, Result, chrono_duration};
use crate::auth::lockout;
use crate::schema::{doc_id, now};

impl Accounts {
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
            self.records().account_by_login(slug, identifier).await?
        };
        let key = lockout::key(slug, stored.as_ref().map(doc_id), identifier);
        let admission = self.inner.passwords.admit()?;
        let lock = chrono_duration(options.lock_time);
        let counted = lockout::count(
            self.db(),
            &key,
            options.max_login_attempts,
            lock,
            lock * 2 + chrono::Duration::hours(1),
        )
        .await?;
        if counted.attempts > i64::from(options.max_login_attempts.max(1)) {
            let retry_after = counted.locked_until.map_or(lock, |until| until - now());
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
        lockout::clear(self.db(), &key).await?;
        if options.require_verified && stored.get("verified") != Some(&Json::Bool(true)) {
            return Err(Error::EmailNotVerified);
        }
        let id = doc_id(&stored).to_string();
        let (session, tokens) = self.start_session(slug, &id, user_agent).await?;
        let user = self.render_own(slug, stored, session)?;
        Ok(LoginResult {
            user,
            tokens: Some(tokens),
        })
    }
}
