//! What an account flow can fail with: its own refusals, or a record operation's error, wrapped
//! once. `http::error` maps each to a status.

use crate::access::MissingScope;
use crate::auth::password::PasswordError;
use crate::records;
use crate::schema::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such auth collection, or a session or key that is not the caller's.
    #[error("not found")]
    NotFound,
    /// Wrong password or unknown account: the same answer for both.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; try again later")]
    Locked { retry_after: u64 },
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// Missing, refused, ended or foreign credentials.
    #[error("authentication required")]
    Unauthorized,
    #[error("the token has expired")]
    TokenExpired,
    /// Password hashing is saturated: answer fast rather than queue.
    #[error("the server is busy; try again")]
    Busy,
    /// An email token that is unknown, used, superseded or expired, of the other purpose or
    /// collection, or mailed to an address the account no longer has.
    #[error("the token is invalid, expired or already used")]
    InvalidToken,
    /// The collection has no `email` field to send to.
    #[error(
        "collection \"{0}\" has no `email` field of type email: declare one to use email \
         verification and password reset"
    )]
    NoEmailField(String),
    #[error(transparent)]
    Records(#[from] records::Error),
}

impl Error {
    /// A validation error on one field.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Error::Records(records::Error::invalid(field, code, message))
    }

    /// Every problem of a body at once.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Error::Records(records::Error::Validation(errors))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Records(records::Error::Forbidden(message.into()))
    }
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
            PasswordError::Internal(message) => Error::Records(records::Error::Internal(message)),
        }
    }
}

impl From<MissingScope> for Error {
    fn from(missing: MissingScope) -> Self {
        Error::Records(missing.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
