//! Handlers of the email routes of SPEC §5 (send-verification-email, verify-email,
//! request-password-reset, reset-password): parse JSON or form bodies, call
//! [`crate::auth::Auth`], render. Each also takes a form's `redirect`, as login does.

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use serde_json::{Value as Json, json};

use super::State;
use super::accounts::{done, read_form, strings, token_response};
use super::error::ApiError;

/// The one answer of both request routes, whatever happens to the account behind it.
const QUEUED: &str = "if an account with this address exists, an email is on its way";

/// The answer, or a 303 to the form's `redirect`; never cached (it may carry a user).
fn finish(
    state: &State,
    status: StatusCode,
    body: &Json,
    redirect: Option<String>,
) -> Result<Response, ApiError> {
    Ok(token_response(
        state,
        status,
        body,
        None,
        redirect.as_deref(),
    ))
}

async fn read(
    request: &Request,
    body: Body,
    state: &State,
) -> Result<(Json, Option<String>), ApiError> {
    read_form(state, request, body).await
}

#[handler]
pub async fn send_verification_email(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let (body, redirect) = read(request, body, &state).await?;
            let [email] = strings(&body, ["email"])?;
            state
                .lucent
                .accounts
                .send_verification_email(&slug, email)?;
            finish(
                &state,
                StatusCode::ACCEPTED,
                &json!({"message": QUEUED}),
                redirect,
            )
        }
        .await,
    )
}

#[handler]
pub async fn request_password_reset(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let (body, redirect) = read(request, body, &state).await?;
            let [email] = strings(&body, ["email"])?;
            state.lucent.accounts.request_password_reset(&slug, email)?;
            finish(
                &state,
                StatusCode::ACCEPTED,
                &json!({"message": QUEUED}),
                redirect,
            )
        }
        .await,
    )
}

#[handler]
pub async fn verify_email(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let (body, redirect) = read(request, body, &state).await?;
            let [token] = strings(&body, ["token"])?;
            let user = state.lucent.accounts.verify_email(&slug, token).await?;
            finish(&state, StatusCode::OK, &json!({"user": user}), redirect)
        }
        .await,
    )
}

#[handler]
pub async fn reset_password(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    done(
        async {
            let (body, redirect) = read(request, body, &state).await?;
            let [token, password] = strings(&body, ["token", "password"])?;
            state
                .lucent
                .accounts
                .reset_password(&slug, token, password)
                .await?;
            finish(
                &state,
                StatusCode::OK,
                &json!({"message": "the password was changed; every session has ended"}),
                redirect,
            )
        }
        .await,
    )
}
