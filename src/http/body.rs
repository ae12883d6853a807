//! Request bodies and query strings read at the edge: size-limited, content-type checked, parsed.

use poem::http::StatusCode;
use poem::{Body, Request};
use serde_json::Value as Json;

use super::error::ApiError;
use crate::records::ListParams;

/// Reads a JSON body of at most `limit` bytes.
///
/// # Errors
/// 415 for another content type, 413 over the limit, 400 for malformed JSON (including nesting
/// deeper than serde_json's limit of 128 levels).
pub async fn read_json(request: &Request, body: Body, limit: usize) -> Result<Json, ApiError> {
    let content_type = request.content_type().unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    let bytes = read_limited(request, body, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
}

/// Reads a body of at most `limit` bytes, refusing early when `Content-Length` says it is larger.
///
/// # Errors
/// 413 over the limit, 400 when the body cannot be read.
pub async fn read_limited(
    request: &Request,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match body.into_bytes_limit(limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!("cannot read the body: {e}"))),
    }
}

/// The list parameters of a query string; an unknown parameter is a 400.
///
/// # Errors
/// 400 for an undecodable query string or an unknown parameter.
pub fn list_params(request: &Request) -> Result<ListParams, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let mut params = ListParams::default();
    for (key, value) in pairs {
        let slot = match key.as_str() {
            "filter" => &mut params.filter,
            "sort" => &mut params.sort,
            "limit" => &mut params.limit,
            "page" => &mut params.page,
            "select" => &mut params.select,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter \"{other}\""
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(ApiError::bad_request(format!(
                "query parameter \"{key}\" is given twice"
            )));
        }
    }
    Ok(params)
}
