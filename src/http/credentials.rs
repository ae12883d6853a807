//! Credentials → [`Principal`]: a bearer token, or the session cookie (with its CSRF origin
//! check on unsafe methods), or nobody. Bad credentials are an error, never anonymous.

use poem::Request;
use poem::http::{Method, StatusCode, header};

use super::State;
use super::error::ApiError;
use crate::auth::Principal;
use crate::auth::api_keys::KEY_PREFIX;
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
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
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

/// Whether an unsafe cookie-authenticated request comes from an allowed origin: the server's own
/// (the `Origin` host equals the `Host` header) or one of `server.cors_origins`.
///
/// # Errors
/// 403 `csrf_failed` otherwise.
pub fn check_origin(state: &State, request: &Request) -> Result<(), ApiError> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| !host.is_empty() && authority.eq_ignore_ascii_case(host));
    let listed = state
        .lucent
        .config
        .server
        .cors_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin));
    if own || listed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cookie-authenticated requests must come from an allowed Origin",
        ))
    }
}

/// Authenticates a request.
///
/// # Errors
/// 401 for refused credentials (`token_expired` for an expired token), 403 `csrf_failed` for an
/// unsafe cookie request from another origin.
pub async fn authenticate(state: &State, request: &Request) -> Result<Principal, ApiError> {
    let auth = &state.lucent.auth;
    match presented(state, request)? {
        Presented::None => Ok(Principal::Anonymous),
        Presented::Bearer(token) if token.starts_with(KEY_PREFIX) => {
            Ok(auth.authenticate_api_key(&token).await?)
        }
        Presented::Bearer(token) => Ok(auth.authenticate_jwt(&token).await?),
        Presented::Cookie(value) => {
            check_origin(state, request)?;
            Ok(auth.authenticate_cookie(&value).await?)
        }
    }
}
