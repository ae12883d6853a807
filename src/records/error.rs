//! What a record operation can fail with; `http::error` maps each variant to a status.

use sea_orm::DbErr;

use crate::access::MissingScope;
use crate::auth::password::PasswordError;
use crate::schema::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown collection or id, or a document the caller may not read.
    #[error("not found")]
    NotFound,
    /// A body that breaks field rules; every failing field is listed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A malformed list parameter or body.
    #[error("{0}")]
    BadRequest(String),
    /// A unique field's value is taken.
    #[error("{field} is already taken")]
    Unique { field: String },
    /// The document is still referenced by a `restrict` relation.
    #[error("{0}")]
    Conflict(String),
    /// The operation needs a user and there is none.
    #[error("authentication required")]
    Unauthorized,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Password hashing is saturated: answer fast rather than queue.
    #[error("the server is busy; try again")]
    Busy,
    /// A statement failed: an unreachable database, a time limit, a bug. Logged, never shown
    /// (a time limit is a 503).
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// Something that cannot happen did (hashing threads gone, a statement that does not build).
    /// Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A validation error on one field.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, code, message)])
    }
}

impl From<MissingScope> for Error {
    fn from(missing: MissingScope) -> Self {
        Error::Forbidden(missing.to_string())
    }
}

impl From<PasswordError> for Error {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Busy => Error::Busy,
            PasswordError::Internal(message) => Error::Internal(message),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
