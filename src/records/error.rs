//! What a record operation can fail with; `http::error` maps each variant to a status.

use sea_orm::DbErr;

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
    /// Anything else: a bug or an unreachable database. Logged, never shown.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
