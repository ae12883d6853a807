//! Accounts and credentials: argon2id passwords, JWT access tokens, rotating refresh sessions,
//! cookie sessions, lockout, email verification and password reset. All state lives in the
//! database (see `store`).

mod accounts;
pub mod api_keys;
pub mod email;
pub mod jwt;
pub mod password;
pub mod secret;
pub mod store;

use std::sync::Arc;

pub use accounts::{Auth, Error, LoginResult, SessionInfo, Tokens};
pub use api_keys::ApiKey;
pub use email::EmailError;

use crate::records::Doc;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    Cookie,
    ApiKey,
}

/// An authenticated account.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub collection: String,
    /// The account's stored fields, hidden ones removed.
    pub doc: Doc,
    /// The session behind a token or cookie.
    pub session_id: Option<String>,
    /// API-key scopes; `None` for sessions.
    pub scopes: Option<Vec<String>>,
    pub credential: Credential,
}

/// The caller of an operation.
#[derive(Debug, Clone)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// Lucent itself (the CLI bootstrapping an account): access predicates do not apply,
    /// validation does.
    System,
    User(Arc<AuthUser>),
}

impl Principal {
    pub fn user(&self) -> Option<&AuthUser> {
        match self {
            Principal::User(user) => Some(user),
            Principal::Anonymous | Principal::System => None,
        }
    }

    /// Whether this is the account `id` of `collection` acting on itself.
    pub fn is_account(&self, collection: &str, id: &str) -> bool {
        self.user()
            .is_some_and(|u| u.collection == collection && u.id == id)
    }
}
