//! Rendering answers: JSON with a status, `Location` on a 201, a 303 to a form's `redirect`,
//! `Cache-Control: no-store` on anything that carries tokens or an account, and the session
//! cookie.

use std::time::Duration;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::cookie::{Cookie, SameSite};
use poem::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value as Json, json};

use super::State;
use super::error::ApiError;
use crate::accounts::{LoginResult, Tokens};
use crate::config::Env;

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => Response::builder()
            .status(status)
            .content_type("application/json")
            .body(bytes),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// `200` with `value`.
pub fn ok(value: &impl Serialize) -> Response {
    json(StatusCode::OK, value)
}

/// `response` with `Location` set.
pub fn with_location(mut response: Response, location: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The answer of a form route: a 303 to the form's checked `redirect`, or the JSON body.
pub fn redirect_or_json(status: StatusCode, body: &Json, redirect: Option<&str>) -> Response {
    match redirect {
        Some(target) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, target)
            .finish(),
        None => json(status, body),
    }
}

/// An answer that carries tokens or an account: never cached, and with the session cookie when
/// there is one.
pub fn private(
    state: &State,
    status: StatusCode,
    body: &Json,
    cookie: Option<&str>,
    redirect: Option<&str>,
) -> Response {
    let mut response = redirect_or_json(status, body, redirect);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = cookie {
        let cookie = session_cookie(state, value, state.lucent.config.auth.refresh_expiry);
        append_cookie(&mut response, &cookie);
    }
    response
}

/// `{token, refreshToken, exp}`, and the account when given.
pub fn tokens_json(user: Option<&Json>, tokens: &Tokens) -> Json {
    let mut body =
        json!({"token": tokens.token, "refreshToken": tokens.refresh_token, "exp": tokens.exp});
    if let Some(user) = user {
        body["user"] = user.clone();
    }
    body
}

/// The answer of register and login: the account and its tokens (and cookie), or the account
/// alone while its verification is pending.
pub fn signed_in(
    state: &State,
    status: StatusCode,
    result: LoginResult,
    redirect: Option<&str>,
) -> Response {
    let user = Json::Object(result.user);
    match result.tokens {
        Some(tokens) => private(
            state,
            status,
            &tokens_json(Some(&user), &tokens),
            tokens.cookie.as_deref(),
            redirect,
        ),
        None => private(state, status, &json!({"user": user}), None, redirect),
    }
}

/// The session cookie's name: `__Host-` in prod, where the cookie is also `Secure`.
pub fn cookie_name(state: &State) -> &'static str {
    match state.lucent.config.server.env {
        Env::Prod => "__Host-lucent_session",
        Env::Dev => "lucent_session",
    }
}

fn session_cookie(state: &State, value: &str, max_age: Duration) -> Cookie {
    let mut cookie = Cookie::new_with_str(cookie_name(state), value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_secure(state.lucent.config.server.env == Env::Prod);
    cookie.set_max_age(max_age);
    cookie
}

fn append_cookie(response: &mut Response, cookie: &Cookie) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `response` with the session cookie cleared.
pub fn clear_cookie(state: &State, mut response: Response) -> Response {
    append_cookie(&mut response, &session_cookie(state, "", Duration::ZERO));
    response
}
