//! Handlers of the generated collection routes: the extractors parse, [`crate::records`] does the
//! work, `answer` renders. No business logic lives here.

use poem::web::{Data, Path};
use poem::{Response, handler};
use serde_json::json;

use super::State;
use super::answer::{created, ok};
use super::error::ApiError;
use super::extract::{GetParams, JsonBody, KnownCollection};
use crate::auth::Principal;
use crate::records::ListParams;
use crate::schema::doc_id;

#[handler]
pub async fn list(
    params: ListParams,
    principal: Principal,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let page = state
        .lucent
        .records
        .find(&principal, &slug, &params)
        .await?;
    Ok(ok(&page))
}

#[handler]
pub async fn get_one(
    GetParams { expand }: GetParams,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let doc = state
        .lucent
        .records
        .find_by_id(&principal, &slug, &id, expand.as_deref())
        .await?;
    Ok(ok(&json!({ "doc": doc })))
}

#[handler]
pub async fn create(
    KnownCollection(collection): KnownCollection<'_>,
    JsonBody(body): JsonBody,
    principal: Principal,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let slug = &collection.slug;
    let doc = state.lucent.records.create(&principal, slug, &body).await?;
    let location = format!("/api/{slug}/{}", doc_id(&doc));
    Ok(created(&location, &json!({ "doc": doc })))
}

#[handler]
pub async fn update(
    KnownCollection(collection): KnownCollection<'_>,
    JsonBody(body): JsonBody,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let doc = state
        .lucent
        .records
        .update(&principal, &collection.slug, &id, &body)
        .await?;
    Ok(ok(&json!({ "doc": doc })))
}

#[handler]
pub async fn delete(
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let doc = state.lucent.records.delete(&principal, &slug, &id).await?;
    Ok(ok(&json!({ "doc": doc })))
}
