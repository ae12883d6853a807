//! Handlers of the generated collection routes: parse the request, call [`crate::records`],
//! render the answer. No business logic lives here.

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde::Serialize;
use serde_json::{Value as Json, json};

use super::State;
use super::body::{list_params, read_json};
use super::credentials::authenticate;
use super::error::ApiError;
use crate::auth::Principal;

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

fn answer<T: Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => json(status, &value),
        Err(error) => error.into_response(),
    }
}

#[handler]
pub async fn list(request: &Request, Path(slug): Path<String>, state: Data<&State>) -> Response {
    let result = async {
        let params = list_params(request)?;
        let principal = authenticate(&state, request).await?;
        Ok(state
            .lucent
            .records
            .find(&principal, &slug, &params)
            .await?)
    };
    answer(StatusCode::OK, result.await)
}

#[handler]
pub async fn get_one(
    request: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Response {
    let result = async {
        let principal = authenticate(&state, request).await?;
        let doc = state
            .lucent
            .records
            .find_by_id(&principal, &slug, &id)
            .await?;
        Ok(json!({ "doc": doc }))
    };
    answer(StatusCode::OK, result.await)
}

/// The body and caller of a write to a collection that exists (an unknown one is 404 before
/// the body is read).
async fn write_request(
    state: &State,
    request: &Request,
    body: Body,
    slug: &str,
) -> Result<(Principal, Json), ApiError> {
    if state.lucent.records.schema().get(slug).is_none() {
        return Err(ApiError::not_found());
    }
    let body = read_json(request, body, state.lucent.config.server.body_limit).await?;
    Ok((authenticate(state, request).await?, body))
}

/// Sets `Location` on a 201: the URL of what was created (RFC 9110 §15.3.2).
pub fn set_location(response: &mut Response, location: &str) {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
}

#[handler]
pub async fn create(
    request: &Request,
    body: Body,
    Path(slug): Path<String>,
    state: Data<&State>,
) -> Response {
    let result = async {
        let (principal, body) = write_request(&state, request, body, &slug).await?;
        let doc = state
            .lucent
            .records
            .create(&principal, &slug, &body)
            .await?;
        let location = format!(
            "/api/{slug}/{}",
            doc.get("id").and_then(Json::as_str).unwrap_or_default()
        );
        let mut response = json(StatusCode::CREATED, &json!({ "doc": doc }));
        set_location(&mut response, &location);
        Ok::<_, ApiError>(response)
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[handler]
pub async fn update(
    request: &Request,
    body: Body,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Response {
    let result = async {
        let (principal, body) = write_request(&state, request, body, &slug).await?;
        let doc = state
            .lucent
            .records
            .update(&principal, &slug, &id, &body)
            .await?;
        Ok(json!({ "doc": doc }))
    };
    answer(StatusCode::OK, result.await)
}

#[handler]
pub async fn delete(
    request: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&State>,
) -> Response {
    let result = async {
        let principal = authenticate(&state, request).await?;
        let doc = state.lucent.records.delete(&principal, &slug, &id).await?;
        Ok(json!({ "doc": doc }))
    };
    answer(StatusCode::OK, result.await)
}
