//! Credentials → [`Principal`]: a bearer token, or the session cookie (with its CSRF origin
//! check on unsafe methods), or nobody. Bad credentials are an error, never anonymous.

use poem::Request;
use poem::http::{StatusCode, header};

use super::State;
use super::error::ApiError;
use crate::accounts::Credentials;
use crate::auth::Principal;
use crate::config::Env;

/// What a request presents.
#[derive(Debug)]
pub enum Presented {
    None,
    Bearer(String),
    Cookie(String),
}

/// The session cookie's name: `__Host-` in prod, where the cookie is also `Secure`.
pub fn cookie_name(state: &State) -> &'static str {
    match state.lucent.config.server.env {
        Env::Prod => "__Host-lucent_session",
        Env::Dev => "lucent_session",
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110 §11.1: `bearer`, `Bearer` and `BEARER` are one scheme).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Reads the credentials of a request without checking them.
///
/// # Errors
/// 401 for an `Authorization` header that is not `Bearer <token>`; 400 for a session cookie
/// holding a NUL character.
pub fn presented(state: &State, request: &Request) -> Result<Presented, ApiError> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or_else(unauthorized)?;
        return Ok(Presented::Bearer(token.to_string()));
    }
    match request.cookie().get(cookie_name(state)) {
        // Cookie values are percent-decoded: `%00` would reach the session lookup.
        Some(cookie) if cookie.value_str().contains('\0') => {
            Err(ApiError::bad_request(super::error::NUL_MESSAGE))
        }
        Some(cookie) if !cookie.value_str().is_empty() => {
            Ok(Presented::Cookie(cookie.value_str().to_string()))
        }
        _ => Ok(Presented::None),
    }
}

pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "invalid or missing credentials",
    )
}

/// Whether an unsafe cookie-authenticated request comes from an allowed origin (see
/// [`super::origin`]).
///
/// # Errors
/// 403 `csrf_failed` otherwise.
pub fn check_origin(state: &State, request: &Request) -> Result<(), ApiError> {
    super::origin::check_cookie_request(&state.origins, request)
}

/// Authenticates a request.
///
/// # Errors
/// 401 for refused credentials (`token_expired` for an expired token), 403 `csrf_failed` for an
/// unsafe cookie request from another origin.
pub async fn authenticate(state: &State, request: &Request) -> Result<Principal, ApiError> {
    let credentials = match presented(state, request)? {
        Presented::None => Credentials::None,
        Presented::Bearer(token) => Credentials::Bearer(token),
        Presented::Cookie(value) => {
            check_origin(state, request)?;
            Credentials::Cookie(value)
        }
    };
    Ok(state.lucent.accounts.authenticate(&credentials).await?)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("BeArEr   abc ", Some("abc")),
            ("Bearer\tabc", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic abc", None),
            ("Bearerabc", None),
            ("", None),
        ] {
            assert_eq!(bearer_token(value), token, "{value:?}");
        }
    }
}
