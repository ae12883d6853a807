//! Handlers of the auth routes of SPEC §5 (register, login, refresh, logout, logout-all, me,
//! sessions): parse, call [`crate::auth::Auth`], render tokens and cookies.

use poem::http::{StatusCode, header};
use poem::web::cookie::{Cookie, SameSite};
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::{Value as Json, json};

use super::State;
use super::body::{read_form_or_json, read_json};
use super::collections::{json, set_location};
use super::credentials::{
    Presented, authenticate, check_origin, cookie_name, presented, unauthorized,
};
use super::error::ApiError;
use super::{form_errors, origin};
use crate::accounts::{LoginResult, Tokens};
use crate::auth::Principal;
use crate::config::Env;
use crate::records;
use crate::schema::{FieldError, nul_error};

fn user_agent(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

fn session_cookie(state: &State, value: &str, max_age: std::time::Duration) -> Cookie {
    let mut cookie = Cookie::new_with_str(cookie_name(state), value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_secure(state.lucent.config.server.env == Env::Prod);
    cookie.set_max_age(max_age);
    cookie
}

fn clear_cookie(state: &State) -> Cookie {
    session_cookie(state, "", std::time::Duration::ZERO)
}

/// The answer of a form route: a 303 to the form's checked `redirect`, or the JSON body.
pub(super) fn redirect_or_json(
    status: StatusCode,
    body: &Json,
    redirect: Option<&str>,
) -> Response {
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
pub(super) fn token_response(
    state: &State,
    status: StatusCode,
    body: &Json,
    cookie: Option<&str>,
    redirect: Option<&str>,
) -> Response {
    let mut response = redirect_or_json(status, body, redirect);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if let Some(value) = cookie {
        let cookie = session_cookie(state, value, state.lucent.config.auth.refresh_expiry);
        if let Ok(value) = header::HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn tokens_json(user: Option<&Json>, tokens: &Tokens) -> Json {
    let mut body =
        json!({"token": tokens.token, "refreshToken": tokens.refresh_token, "exp": tokens.exp});
    if let Some(user) = user {
        body["user"] = user.clone();
    }
    body
}

fn login_answer(
    state: &State,
    status: StatusCode,
    result: LoginResult,
    redirect: Option<&str>,
) -> Response {
    let user = Json::Object(result.user);
    match result.tokens {
        Some(tokens) => token_response(
            state,
            status,
            &tokens_json(Some(&user), &tokens),
            tokens.cookie.as_deref(),
            redirect,
        ),
        None => token_response(state, status, &json!({"user": user}), None, redirect),
    }
}

/// The body of a form route (F in SPEC §5): JSON, or a form that passed the cross-site check
/// (a form posted from another site is refused before anything is read or done), and the form's
/// checked `redirect`.
///
/// # Errors
/// 403 `csrf_failed` for a cross-site form post; as [`read_form_or_json`].
pub(super) async fn read_form(
    state: &State,
    request: &Request,
    body: Body,
) -> Result<(Json, Option<String>), ApiError> {
    origin::check_form_post(&state.origins, request)?;
    read_form_or_json(request, body, state.lucent.config.server.body_limit).await
}

/// The body's fields, or a 400 for any other JSON value (an array, a string, ...).
fn fields(body: &Json) -> Result<&serde_json::Map<String, Json>, ApiError> {
    body.as_object().ok_or_else(|| {
        records::Error::Validation(vec![FieldError::new(
            "",
            "invalid_type",
            "the body must be a JSON object",
        )])
        .into()
    })
}

/// The string fields `names` of a body; every missing or mistyped one is listed at once.
///
/// # Errors
/// 400 `validation_failed`.
pub(super) fn strings<'a, const N: usize>(
    body: &'a Json,
    names: [&str; N],
) -> Result<[&'a str; N], ApiError> {
    let object = fields(body)?;
    let mut errors = Vec::new();
    let values = names.map(|name| match object.get(name) {
        Some(Json::String(value)) if value.contains('\0') => {
            errors.push(nul_error(name));
            ""
        }
        Some(Json::String(value)) => value.as_str(),
        Some(_) => {
            errors.push(FieldError::new(
                name,
                "invalid_type",
                format!("{name} must be a string"),
            ));
            ""
        }
        None => {
            errors.push(FieldError::new(
                name,
                "required",
                format!("{name} is required (a string)"),
            ));
            ""
        }
    });
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(records::Error::Validation(errors).into())
    }
}

/// An optional string field of a body.
///
/// # Errors
/// 400 `validation_failed` for a body that is not an object or a value that is not a string.
fn optional_string<'a>(body: &'a Json, name: &str) -> Result<Option<&'a str>, ApiError> {
    match fields(body)?.get(name) {
        None => Ok(None),
        Some(Json::String(value)) if value.contains('\0') => {
            Err(records::Error::Validation(vec![nul_error(name)]).into())
        }
        Some(Json::String(value)) => Ok(Some(value)),
        Some(_) => Err(records::Error::Validation(vec![FieldError::new(
            name,
            "invalid_type",
            format!("{name} must be a string"),
        )])
        .into()),
    }
}

/// The answer of a handler whose work may fail with an [`ApiError`].
pub(super) fn done(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

#[handler]
pub async fn register(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    let mut page = None;
    let result = async {
        let (mut body, redirect) = read_form(&state, request, body).await?;
        page = form_errors::form_page(&state.origins, request, &mut body, redirect.as_deref())?;
        let principal = authenticate(&state, request).await?;
        let result = state
            .lucent
            .accounts
            .register(&principal, &slug, &body, user_agent(request))
            .await?;
        let id = result
            .user
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let location = format!("/api/{slug}/{id}");
        let mut response = login_answer(&state, StatusCode::CREATED, result, redirect.as_deref());
        if response.status() == StatusCode::CREATED {
            set_location(&mut response, &location);
        }
        Ok(response)
    }
    .await;
    form_errors::answer(page.as_deref(), result)
}

#[handler]
pub async fn login(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    let mut page = None;
    let result = async {
        let login_field = state
            .lucent
            .records
            .schema()
            .get(&slug)
            .and_then(|c| c.auth.as_ref())
            .map(|a| a.login_field.clone())
            .ok_or_else(ApiError::not_found)?;
        let (mut body, redirect) = read_form(&state, request, body).await?;
        page = form_errors::form_page(&state.origins, request, &mut body, redirect.as_deref())?;
        let [identifier, password] = strings(&body, [login_field.as_str(), "password"])?;
        let result = state
            .lucent
            .accounts
            .login(&slug, identifier, password, user_agent(request))
            .await?;
        Ok(login_answer(
            &state,
            StatusCode::OK,
            result,
            redirect.as_deref(),
        ))
    }
    .await;
    form_errors::answer(page.as_deref(), result)
}

#[handler]
pub async fn refresh(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let has_body = request.headers().get(header::CONTENT_TYPE).is_some();
            let token = if has_body {
                let body = read_json(request, body, state.lucent.config.server.body_limit).await?;
                optional_string(&body, "refreshToken")?.map(str::to_string)
            } else {
                None
            };
            let tokens = match (token, presented(&state, request)?) {
                (Some(token), _) => state.lucent.accounts.refresh(&slug, &token).await?,
                (None, Presented::Cookie(cookie)) => {
                    check_origin(&state, request)?;
                    state
                        .lucent
                        .accounts
                        .refresh_from_cookie(&slug, &cookie)
                        .await?
                }
                (None, _) => return Err(unauthorized()),
            };
            Ok(token_response(
                &state,
                StatusCode::OK,
                &tokens_json(None, &tokens),
                None,
                None,
            ))
        }
        .await,
    )
}

#[handler]
pub async fn logout(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    let mut page = None;
    let result = async {
        auth_collection(&state, &slug)?;
        let has_body = request.headers().get(header::CONTENT_TYPE).is_some();
        let (mut body, redirect) = if has_body {
            read_form(&state, request, body).await?
        } else {
            (json!({}), None)
        };
        page = form_errors::form_page(&state.origins, request, &mut body, redirect.as_deref())?;
        match optional_string(&body, "refreshToken")? {
            Some(token) => {
                state
                    .lucent
                    .accounts
                    .logout_refresh_token(&slug, token)
                    .await?
            }
            None => {
                let principal = own_principal(&state, request, &slug).await?;
                state.lucent.accounts.logout(&principal).await?;
            }
        }
        let mut response = redirect_or_json(
            StatusCode::OK,
            &json!({"message": "logged out"}),
            redirect.as_deref(),
        );
        if let Ok(value) = header::HeaderValue::from_str(&clear_cookie(&state).to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(response)
    }
    .await;
    form_errors::answer(page.as_deref(), result)
}

#[handler]
pub async fn logout_all(
    request: &Request,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let principal = own_principal(&state, request, &slug).await?;
            let ended = state.lucent.accounts.logout_all(&principal).await?;
            let mut response = json(
                StatusCode::OK,
                &json!({"message": "logged out everywhere", "sessionsEnded": ended}),
            );
            if let Ok(value) = header::HeaderValue::from_str(&clear_cookie(&state).to_string()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        .await,
    )
}

#[handler]
pub async fn me(request: &Request, Path(slug): Path<String>, state: Data<&State>) -> Response {
    done(
        async {
            let principal = own_principal(&state, request, &slug).await?;
            Ok(json(
                StatusCode::OK,
                &json!({"user": state.lucent.accounts.me(&principal)?}),
            ))
        }
        .await,
    )
}

#[handler]
pub async fn sessions(
    request: &Request,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let principal = own_principal(&state, request, &slug).await?;
            Ok(json(
                StatusCode::OK,
                &json!({"sessions": state.lucent.accounts.sessions(&principal).await?}),
            ))
        }
        .await,
    )
}

#[handler]
pub async fn revoke_session(
    request: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let principal = own_principal(&state, request, &slug).await?;
            state
                .lucent
                .accounts
                .revoke_session(&principal, &id)
                .await?;
            Ok(json(StatusCode::OK, &json!({"message": "session ended"})))
        }
        .await,
    )
}

#[handler]
pub async fn create_api_key(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            auth_collection(&state, &slug)?;
            let body = read_json(request, body, state.lucent.config.server.body_limit).await?;
            let principal = authenticate(&state, request).await?;
            let key = state
                .lucent
                .accounts
                .create_api_key(&principal, &slug, &body)
                .await?;
            let location = format!("/api/{slug}/api-keys/{}", key.id);
            let mut response = token_response(
                &state,
                StatusCode::CREATED,
                &json!({"apiKey": key}),
                None,
                None,
            );
            set_location(&mut response, &location);
            Ok(response)
        }
        .await,
    )
}

#[handler]
pub async fn list_api_keys(
    request: &Request,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            auth_collection(&state, &slug)?;
            let principal = authenticate(&state, request).await?;
            let keys = state
                .lucent
                .accounts
                .list_api_keys(&principal, &slug)
                .await?;
            Ok(json(StatusCode::OK, &json!({"apiKeys": keys})))
        }
        .await,
    )
}

#[handler]
pub async fn revoke_api_key(
    request: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            auth_collection(&state, &slug)?;
            let principal = authenticate(&state, request).await?;
            state
                .lucent
                .accounts
                .revoke_api_key(&principal, &slug, &id)
                .await?;
            Ok(json(StatusCode::OK, &json!({"message": "API key revoked"})))
        }
        .await,
    )
}

fn auth_collection(state: &State, slug: &str) -> Result<(), ApiError> {
    match state.lucent.records.schema().get(slug) {
        Some(collection) if collection.auth.is_some() => Ok(()),
        _ => Err(ApiError::not_found()),
    }
}

/// The authenticated account of this auth collection: a token of another collection is refused.
async fn own_principal(
    state: &State,
    request: &Request,
    slug: &str,
) -> Result<Principal, ApiError> {
    auth_collection(state, slug)?;
    let principal = authenticate(state, request).await?;
    match principal.user() {
        Some(user) if user.collection == slug => Ok(principal),
        _ => Err(unauthorized()),
    }
}
