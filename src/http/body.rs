//! Request bodies and query strings read at the edge: size-limited, content-type checked, parsed.

use poem::http::StatusCode;
use poem::{Body, Request};
use serde_json::Value as Json;

use super::error::ApiError;
use crate::records::{self, ListParams};
use crate::schema::{has_nul, nul_error};

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
    let json = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    refuse_nul(&json)?;
    Ok(json)
}

/// Refuses a body holding a NUL character (U+0000) anywhere, on every route and engine, with the
/// answer a collection field's own check gives (`validation_failed` naming each top-level field):
/// PostgreSQL cannot store NUL in text, and no route should pass one on to its database.
fn refuse_nul(body: &Json) -> Result<(), ApiError> {
    let fields: Vec<_> = match body {
        Json::Object(map) => map
            .iter()
            .filter(|(key, value)| key.contains('\0') || has_nul(value))
            .map(|(key, _)| nul_error(&key.replace('\0', "\\u0000")))
            .collect(),
        other if has_nul(other) => vec![nul_error("body")],
        _ => Vec::new(),
    };
    if fields.is_empty() {
        Ok(())
    } else {
        Err(records::Error::Validation(fields).into())
    }
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

/// A body of a route marked F in SPEC §5: JSON, or an HTML form
/// (`application/x-www-form-urlencoded`, every value a string). Returns the body as a JSON
/// object and the form's checked `redirect` target, if any.
///
/// # Errors
/// As [`read_json`]; 400 for a `redirect` that is not a same-origin relative path.
pub async fn read_form_or_json(
    request: &Request,
    body: Body,
    limit: usize,
) -> Result<(Json, Option<String>), ApiError> {
    let mime = request
        .content_type()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime != "application/x-www-form-urlencoded" {
        return Ok((read_json(request, body, limit).await?, None));
    }
    let bytes = read_limited(request, body, limit).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
    let mut object = serde_json::Map::new();
    let mut redirect = None;
    for (key, value) in pairs {
        if key == "redirect" {
            redirect = Some(safe_redirect(&value)?);
        } else {
            object.insert(key, Json::String(value));
        }
    }
    let object = Json::Object(object);
    refuse_nul(&object)?;
    Ok((object, redirect))
}

/// Only same-origin relative paths: `/profile`, `/a/b?x=1`; never `//host`, `/\host` or a URL.
///
/// # Errors
/// 400 otherwise.
pub fn safe_redirect(target: &str) -> Result<String, ApiError> {
    let ok = target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && target.len() <= 2048
        && !target.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        Ok(target.to_string())
    } else {
        Err(ApiError::bad_request(
            "redirect must be a relative path on this site",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    #[test]
    fn redirects_stay_on_this_site() {
        for good in ["/", "/profile", "/a/b?x=1#top"] {
            assert!(safe_redirect(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "profile",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/a\nb",
            "/a\\b",
        ] {
            assert!(safe_redirect(bad).is_err(), "{bad}");
        }
    }
}
