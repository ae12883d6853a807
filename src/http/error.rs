//! The error envelope `{"error": {code, message, details, requestId}}` and the one mapping from every
//! subsystem's errors to HTTP statuses: records', the account flows', and poem's own (no route,
//! wrong method, an unreadable request). 5xx detail goes to the log, never to the client.
//!
//! [`ApiError`] is poem's [`ResponseError`], so handlers and extractors return it with `?` and
//! poem renders the envelope.

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde_json::json;

use crate::schema::FieldError;
use crate::{accounts, db, records};

/// What a request with a NUL character (U+0000) in its text is told, on every engine.
pub const NUL_MESSAGE: &str = "text may not contain NUL characters (U+0000)";

/// An error answer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    /// Credentials that are missing where needed, malformed, or of another collection.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid or missing credentials",
        )
    }

    /// A cookie-authenticated request or a form post from a site that may not send it.
    pub fn csrf_failed(message: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "csrf_failed", message)
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// Password hashing is saturated: a fast 429 instead of an unbounded queue.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "the server is busy; try again in a moment",
        )
    }

    /// A retry while the first request with its `Idempotency-Key` still runs (see
    /// `http::idempotency`); answered with `Retry-After`.
    pub fn idempotency_in_progress() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry when it has ended",
        )
    }

    /// An `Idempotency-Key` already used by the caller for another request.
    pub fn idempotency_mismatch() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_mismatch",
            "this Idempotency-Key was used for another request (method, path or body)",
        )
    }

    /// A 500 whose cause is logged here and not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// A statement stopped by its time limit (or a pool with no free connection in time): the
    /// server is overloaded or the request asked for too much work; retrying later may succeed.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the database did not answer in time; try again, or ask for less",
        )
    }

    /// The error for a failed database statement: 503 for a time limit, 400 for text PostgreSQL
    /// refuses (a NUL character that got past the checks at the edge), else a logged 500.
    pub fn database(cause: &sea_orm::DbErr) -> Self {
        if db::is_timeout(cause) {
            tracing::warn!(error = %cause, "statement stopped by its time limit");
            Self::timeout()
        } else if db::is_nul_refused(cause) {
            tracing::warn!(error = %cause, "the database refused a NUL character");
            Self::bad_request(NUL_MESSAGE)
        } else {
            Self::internal(cause)
        }
    }

    /// The error for a poem-level failure (no route, wrong method, unreadable request).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, "method_not_allowed", "method not allowed")
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "payload_too_large", "the body is too large")
            }
            s if s.is_server_error() => Self::internal(&s),
            s => Self::new(
                s,
                "bad_request",
                s.canonical_reason().unwrap_or("bad request"),
            ),
        }
    }
}

impl From<records::Error> for ApiError {
    fn from(error: records::Error) -> Self {
        use records::Error;
        match error {
            Error::NotFound => Self::not_found(),
            Error::Validation(details) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "validation_failed",
                message: format!("{} field(s) failed validation", details.len()),
                details,
            },
            Error::BadRequest(message) => Self::bad_request(message),
            Error::Unique { field } => Self {
                status: StatusCode::CONFLICT,
                code: "unique_violation",
                message: format!("{field} is already taken"),
                details: vec![FieldError::new(
                    &field,
                    "unique",
                    format!("{field} is already taken"),
                )],
            },
            Error::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            Error::Unauthorized => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "authentication required",
            ),
            Error::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            Error::Busy => Self::busy(),
            Error::Database(cause) => Self::database(&cause),
            Error::Internal(cause) => Self::internal(&cause),
        }
    }
}

impl From<accounts::Error> for ApiError {
    fn from(error: accounts::Error) -> Self {
        use accounts::Error;
        match error {
            Error::NotFound => Self::not_found(),
            Error::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid credentials",
            ),
            Error::Locked { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "account_locked",
                format!("too many failed logins; try again in {retry_after} s"),
            ),
            Error::EmailNotVerified => Self::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "the email address is not verified",
            ),
            Error::Unauthorized => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "invalid or missing credentials",
            ),
            Error::TokenExpired => Self::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the token has expired",
            ),
            Error::Busy => Self::busy(),
            Error::InvalidToken => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "the token is invalid, expired or already used",
            ),
            Error::NoEmailField(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "email_unsupported",
                error.to_string(),
            ),
            Error::Records(error) => error.into(),
        }
    }
}

/// A poem-level failure as the API answers it: an [`ApiError`] raised by a handler or an
/// extractor as itself, anything else (no route, wrong method, a body poem could not read) by
/// its status.
impl From<poem::Error> for ApiError {
    fn from(error: poem::Error) -> Self {
        match error.downcast::<ApiError>() {
            Ok(api) => api,
            Err(other) => Self::from_status(other.status()),
        }
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let details: Vec<_> = self
            .details
            .iter()
            .map(|d| json!({"field": d.field, "code": d.code, "message": d.message}))
            .collect();
        let mut body =
            json!({"error": {"code": self.code, "message": self.message, "details": details}});
        if let Some(id) = super::request_id::current() {
            body["error"]["requestId"] = json!(*id);
        }
        Response::builder()
            .status(self.status)
            .content_type("application/json")
            .body(body.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}
