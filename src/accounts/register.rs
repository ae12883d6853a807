//! Sign-up: an account made through records (the collection's `create` rule, validation and the
//! password policy apply; a `verify_email` collection's verification mail is written with the
//! account, see `events`), and a session unless the collection requires verified addresses.

use serde_json::Value as Json;

use super::{Accounts, LoginResult, Result};
use crate::auth::Principal;
use crate::schema::doc_id;

impl Accounts {
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
        let stored = self.records().create_stored(principal, slug, body).await?;
        let id = doc_id(&stored).to_string();
        if options.require_verified {
            let user = self.records().render(principal, slug, stored)?;
            return Ok(LoginResult { user, tokens: None });
        }
        let (session, tokens) = self.start_session(slug, &id, user_agent).await?;
        let user = self.render_own(slug, stored, session)?;
        Ok(LoginResult {
            user,
            tokens: Some(tokens),
        })
    }
}
