//! The account flows of SPEC §5, one file each: `register`, `login`, `refresh`, `sessions`
//! (logout, logout-all, list, revoke), `authenticate` (a request's credentials → [`Principal`],
//! and `me`), `api_keys`, `email` (send a verification mail, verify, request a reset, reset) and
//! `mail` (mails through the outbox: written by the flows, prepared and sent for its worker).
//!
//! A flow checks what it requires first, then works through `records` (every read and write of
//! an account) and the `auth` primitives (sessions, lockout, keys, tokens, passwords); it never
//! touches a table itself. A new auth route is a method in one of these files (or a new file), a
//! handler in `http`, and its entry in the OpenAPI document.

mod api_keys;
mod authenticate;
mod email;
mod error;
mod login;
mod mail;
mod refresh;
mod register;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

pub use authenticate::Credentials;
pub use error::{Error, Result};
pub use mail::{MAILS_PER_HOUR, MailSender};
pub use sessions::{LoginResult, SessionInfo, Tokens};

use crate::auth::jwt::Jwt;
use crate::auth::password::Passwords;
use crate::auth::{AuthUser, Credential, Principal};
use crate::config::AuthConfig;
use crate::db::Database;
use crate::outbox::Outbox;
use crate::records::{self, Doc, Records};
use crate::schema::{AuthOptions, Collection, FieldKind, doc_id};

/// The account flows over one schema and database.
#[derive(Clone, Debug)]
pub struct Accounts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: Records,
    db: Database,
    config: AuthConfig,
    jwt: Jwt,
    passwords: Passwords,
    outbox: Outbox,
}

impl Accounts {
    pub fn new(
        records: Records,
        config: AuthConfig,
        jwt_secret: &[u8],
        passwords: Passwords,
        outbox: Outbox,
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

    fn records(&self) -> &Records {
        &self.inner.records
    }

    fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The auth collection `slug`, with its options.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection or one without auth.
    fn auth_collection(&self, slug: &str) -> Result<(&Collection, &AuthOptions)> {
        let collection = self.records().schema().get(slug).ok_or(Error::NotFound)?;
        let options = collection.auth.as_ref().ok_or(Error::NotFound)?;
        Ok((collection, options))
    }

    /// An auth collection with an `email` field.
    fn email_collection(&self, slug: &str) -> Result<&Collection> {
        let (collection, _) = self.auth_collection(slug)?;
        email_field(collection)?;
        Ok(collection)
    }

    /// The principal of a stored account (its hidden fields removed), signed in with a session or
    /// with an API key (its id and scopes).
    fn principal(
        &self,
        slug: &str,
        doc: Doc,
        session_id: Option<String>,
        key: Option<(String, Vec<String>)>,
        credential: Credential,
    ) -> Principal {
        let id = doc_id(&doc).to_string();
        let doc = match self.records().schema().get(slug) {
            Some(collection) => records::present(collection, doc),
            None => doc,
        };
        Principal::User(Arc::new(AuthUser {
            id,
            collection: slug.to_string(),
            doc,
            session_id,
            key_id: key.as_ref().map(|(id, _)| id.clone()),
            scopes: key.map(|(_, scopes)| scopes),
            credential,
        }))
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
        Ok(self.records().render(&own, slug, stored)?)
    }
}

/// The `email` field mails go to: the login field of an email collection, or a declared one.
fn email_field(collection: &Collection) -> Result<&str> {
    match collection.field("email") {
        Some(field) if field.kind == FieldKind::Email => Ok(&field.name),
        _ => Err(Error::NoEmailField(collection.slug.clone())),
    }
}

/// A configured duration as chrono's (ten years when it does not fit).
fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}
