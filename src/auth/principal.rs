//! Who is calling: the caller of every operation, and what its credential allows. Everything
//! above `auth` that decides on a caller (access rules, records, the account flows) reads this,
//! and nothing else of `auth`, to do so.

use std::sync::Arc;

use crate::schema::Doc;

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
    /// The API key a request presented (`None` for sessions).
    pub key_id: Option<String>,
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

    /// Who is calling, as a stable name for what Lucent keeps per caller (the stored answers of
    /// idempotent retries): the account for a session (bearer token or cookie: every session of
    /// one account is one caller, with the same rights), the key for an API key (keys of one
    /// account are separate clients, and their scopes differ). `None` for anonymous callers, who
    /// cannot be told apart, and for Lucent itself.
    pub fn caller_id(&self) -> Option<String> {
        let user = self.user()?;
        Some(match &user.key_id {
            Some(key) => format!("key\u{0}{key}"),
            None => format!("account\u{0}{}\u{0}{}", user.collection, user.id),
        })
    }

    /// The scopes an API key carries; `None` for every other credential (sessions may do
    /// everything their rules allow).
    pub fn key_scopes(&self) -> Option<&[String]> {
        self.user()
            .filter(|u| u.credential == Credential::ApiKey)
            .and_then(|u| u.scopes.as_deref())
    }
}

/// What a key may do. Keys without scopes may do everything.
pub const SCOPES: [&str; 3] = ["read", "write", "admin"];

/// Whether `scopes` (`None` = all) include `scope`; `admin` covers every operation.
pub fn grants(scopes: Option<&[String]>, scope: &str) -> bool {
    scopes.is_none_or(|s| s.iter().any(|have| have == scope || have == "admin"))
}
