//! Handlers of the email routes of SPEC §5 (send-verification-email, verify-email,
//! request-password-reset, reset-password): JSON or form bodies (with a form's `redirect`, as
//! login takes), [`crate::accounts::Accounts`] does the work. Answers are never cached (they may
//! carry an account).

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use serde_json::json;

use super::State;
use super::answer::private;
use super::body::strings;
use super::error::ApiError;
use super::extract::Form;

/// The one answer of both request routes, whatever happens to the account behind it.
const QUEUED: &str = "if an account with this address exists, an email is on its way";

#[handler]
pub async fn send_verification_email(
    form: Form,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let [email] = strings(&form.body, ["email"])?;
    state
        .lucent
        .accounts
        .send_verification_email(&slug, email)
        .await?;
    let queued = json!({"message": QUEUED});
    Ok(private(
        &state,
        StatusCode::ACCEPTED,
        &queued,
        None,
        form.redirect.as_deref(),
    ))
}

#[handler]
pub async fn request_password_reset(
    form: Form,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let [email] = strings(&form.body, ["email"])?;
    state
        .lucent
        .accounts
        .request_password_reset(&slug, email)
        .await?;
    let queued = json!({"message": QUEUED});
    Ok(private(
        &state,
        StatusCode::ACCEPTED,
        &queued,
        None,
        form.redirect.as_deref(),
    ))
}

#[handler]
pub async fn verify_email(
    form: Form,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let [token] = strings(&form.body, ["token"])?;
    let user = state.lucent.accounts.verify_email(&slug, token).await?;
    let body = json!({"user": user});
    Ok(private(
        &state,
        StatusCode::OK,
        &body,
        None,
        form.redirect.as_deref(),
    ))
}

#[handler]
pub async fn reset_password(
    form: Form,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let [token, password] = strings(&form.body, ["token", "password"])?;
    state
        .lucent
        .accounts
        .reset_password(&slug, token, password)
        .await?;
    let body = json!({"message": "the password was changed; every session has ended"});
    Ok(private(
        &state,
        StatusCode::OK,
        &body,
        None,
        form.redirect.as_deref(),
    ))
}
