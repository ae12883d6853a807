//! Handlers of the account routes of SPEC §5 (register, login, refresh, logout, logout-all, me,
//! sessions): the extractors parse, [`crate::accounts::Accounts`] does the work, `answer` renders
//! tokens and cookies.

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{FromRequest, Request, RequestBody, Response, handler};
use serde_json::json;

use super::State;
use super::answer::{self, clear_cookie, ok, private, signed_in, tokens_json};
use super::body::{optional_string, strings};
use super::error::ApiError;
use super::extract::{self, Account, AuthCollection, JsonBody, Optional, PageForm, UserAgent};
use crate::accounts::Credentials;
use crate::auth::Principal;

#[handler]
pub async fn register(
    form: PageForm,
    caller: poem::Result<Principal>,
    Path(slug): Path<String>,
    UserAgent(user_agent): UserAgent,
    state: Data<&State>,
) -> Response {
    form.answer(
        async {
            let result = state
                .lucent
                .accounts
                .register(&caller?, &slug, &form.body, user_agent.as_deref())
                .await?;
            let location = format!("/api/{slug}/{}", crate::schema::doc_id(&result.user));
            let mut response = signed_in(
                &state,
                StatusCode::CREATED,
                result,
                form.redirect.as_deref(),
            );
            if response.status() == StatusCode::CREATED {
                response = answer::with_location(response, &location);
            }
            Ok(response)
        }
        .await,
    )
}

#[handler]
pub async fn login(
    AuthCollection(collection): AuthCollection<'_>,
    form: PageForm,
    UserAgent(user_agent): UserAgent,
    state: Data<&State>,
) -> Response {
    form.answer(
        async {
            let login_field = collection
                .auth
                .as_ref()
                .map_or("", |a| a.login_field.as_str());
            let [identifier, password] = strings(&form.body, [login_field, "password"])?;
            let result = state
                .lucent
                .accounts
                .login(
                    &collection.slug,
                    identifier,
                    password,
                    user_agent.as_deref(),
                )
                .await?;
            Ok(signed_in(
                &state,
                StatusCode::OK,
                result,
                form.redirect.as_deref(),
            ))
        }
        .await,
    )
}

/// The `refreshToken` of a refresh body, when the request has one.
pub struct RefreshToken(Option<String>);

impl<'a> FromRequest<'a> for RefreshToken {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Optional(body) = Optional::<JsonBody>::from_request(request, body).await?;
        let token = match &body {
            Some(JsonBody(body)) => optional_string(body, "refreshToken")?.map(str::to_string),
            None => None,
        };
        Ok(Self(token))
    }
}

#[handler]
pub async fn refresh(
    RefreshToken(token): RefreshToken,
    credentials: Credentials,
    request: &Request,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let accounts = &state.lucent.accounts;
    let tokens = match (token, &credentials) {
        (Some(token), _) => accounts.refresh(&slug, &token).await?,
        (None, Credentials::Cookie(cookie)) => {
            super::origin::check_cookie_request(&state.origins, request)?;
            accounts.refresh_from_cookie(&slug, cookie).await?
        }
        (None, _) => return Err(ApiError::unauthorized()),
    };
    Ok(private(
        &state,
        StatusCode::OK,
        &tokens_json(None, &tokens),
        None,
        None,
    ))
}

#[handler]
pub async fn logout(
    AuthCollection(collection): AuthCollection<'_>,
    Optional(form): Optional<PageForm>,
    request: &Request,
    state: Data<&State>,
) -> Response {
    let form = form.unwrap_or_else(PageForm::empty);
    form.answer(
        async {
            let accounts = &state.lucent.accounts;
            match optional_string(&form.body, "refreshToken")? {
                Some(token) => {
                    accounts
                        .logout_refresh_token(&collection.slug, token)
                        .await?
                }
                // Only without a refresh token is the caller authenticated.
                None => accounts.logout(&extract::account(request).await?).await?,
            }
            let response = answer::redirect_or_json(
                StatusCode::OK,
                &json!({"message": "logged out"}),
                form.redirect.as_deref(),
            );
            Ok(clear_cookie(&state, response))
        }
        .await,
    )
}

#[handler]
pub async fn logout_all(
    Account(principal): Account,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let ended = state.lucent.accounts.logout_all(&principal).await?;
    let response = ok(&json!({"message": "logged out everywhere", "sessionsEnded": ended}));
    Ok(clear_cookie(&state, response))
}

#[handler]
pub async fn me(Account(principal): Account, state: Data<&State>) -> Result<Response, ApiError> {
    Ok(ok(&json!({"user": state.lucent.accounts.me(&principal)?})))
}

#[handler]
pub async fn sessions(
    Account(principal): Account,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let sessions = state.lucent.accounts.sessions(&principal).await?;
    Ok(ok(&json!({"sessions": sessions})))
}

#[handler]
pub async fn revoke_session(
    Account(principal): Account,
    Path((_, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    state
        .lucent
        .accounts
        .revoke_session(&principal, &id)
        .await?;
    Ok(ok(&json!({"message": "session ended"})))
}
