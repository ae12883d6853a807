//! Handlers of the API-key routes (`/api/:collection/api-keys`): create, list, revoke.

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use serde_json::json;

use super::State;
use super::answer::{ok, private, with_location};
use super::error::ApiError;
use super::extract::{AuthCollection, JsonBody};
use crate::auth::Principal;

#[handler]
pub async fn create(
    AuthCollection(collection): AuthCollection<'_>,
    JsonBody(body): JsonBody,
    principal: Principal,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let slug = &collection.slug;
    let key = state
        .lucent
        .accounts
        .create_api_key(&principal, slug, &body)
        .await?;
    let location = format!("/api/{slug}/api-keys/{}", key.id);
    let response = private(
        &state,
        StatusCode::CREATED,
        &json!({"apiKey": key}),
        None,
        None,
    );
    Ok(with_location(response, &location))
}

#[handler]
pub async fn list(
    AuthCollection(collection): AuthCollection<'_>,
    principal: Principal,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let keys = state
        .lucent
        .accounts
        .list_api_keys(&principal, &collection.slug)
        .await?;
    Ok(ok(&json!({"apiKeys": keys})))
}

#[handler]
pub async fn revoke(
    AuthCollection(collection): AuthCollection<'_>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    state
        .lucent
        .accounts
        .revoke_api_key(&principal, &collection.slug, &id)
        .await?;
    Ok(ok(&json!({"message": "API key revoked"})))
}
