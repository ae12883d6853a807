//! Handlers of the generated collection routes: the extractors parse, [`crate::records`] does the
//! work, `answer` renders. No business logic lives here. [`written`] is the one rendering of a
//! write's answer, for these routes and for each request of a batch.

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use serde_json::{Value as Json, json};

use super::State;
use super::answer::{json, ok, with_location};
use super::error::ApiError;
use super::extract::{GetParams, JsonBody, KnownCollection};
use crate::auth::Principal;
use crate::records::{Change, ListParams};
use crate::schema::{Doc, doc_id};

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
    Ok(written(Change::Created, slug, doc).response())
}

#[handler]
pub async fn update(
    KnownCollection(collection): KnownCollection<'_>,
    JsonBody(body): JsonBody,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let slug = &collection.slug;
    let doc = state
        .lucent
        .records
        .update(&principal, slug, &id, &body)
        .await?;
    Ok(written(Change::Updated, slug, doc).response())
}

#[handler]
pub async fn delete(
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let doc = state.lucent.records.delete(&principal, &slug, &id).await?;
    Ok(written(Change::Deleted, &slug, doc).response())
}

/// The answer to a write: its status, its body, and where a created document lives (`Location`,
/// RFC 9110 §15.3.2).
#[derive(Debug)]
pub struct WriteAnswer {
    pub status: StatusCode,
    pub body: Json,
    pub location: Option<String>,
}

impl WriteAnswer {
    pub fn response(&self) -> Response {
        let response = json(self.status, &self.body);
        match &self.location {
            Some(location) => with_location(response, location),
            None => response,
        }
    }
}

/// What a write route answers when `change` was done to `doc` of collection `slug`: `201 {doc}`
/// at `/api/C/:id` for a create, `200 {doc}` for an update and for a delete (the document as it
/// was).
pub fn written(change: Change, slug: &str, doc: Doc) -> WriteAnswer {
    let location = match change {
        Change::Created => Some(format!("/api/{slug}/{}", doc_id(&doc))),
        Change::Updated | Change::Deleted => None,
    };
    let status = match change {
        Change::Created => StatusCode::CREATED,
        Change::Updated | Change::Deleted => StatusCode::OK,
    };
    WriteAnswer {
        status,
        body: json!({ "doc": doc }),
        location,
    }
}
