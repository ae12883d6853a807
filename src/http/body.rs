//! Request bodies and query strings read at the edge: size-limited, content-type checked, parsed.

use poem::{Body, Request};
use serde_json::Value as Json;

use super::error::ApiError;
use crate::records::{self, ListParams};
use crate::schema::{FieldError, nul_error};

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
        return Err(ApiError::unsupported_media_type());
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
    let too_large = || ApiError::payload_too_large(limit);
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

/// The parameters a list takes.
pub const LIST_PARAMETERS: [&str; 6] = ["filter", "sort", "limit", "page", "select", "expand"];

/// The parameters `GET /api/C/:id` takes.
pub const GET_PARAMETERS: [&str; 1] = ["expand"];

/// The parameters of a query string, of those `allowed`; any other parameter is a 400.
///
/// # Errors
/// 400 for an undecodable query string, a parameter not allowed, or one given twice.
pub fn query_params(request: &Request, allowed: &[&str]) -> Result<ListParams, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let mut params = ListParams::default();
    for (key, value) in pairs {
        let slot = match key.as_str() {
            name if !allowed.contains(&name) => None,
            "filter" => Some(&mut params.filter),
            "sort" => Some(&mut params.sort),
            "limit" => Some(&mut params.limit),
            "page" => Some(&mut params.page),
            "select" => Some(&mut params.select),
            "expand" => Some(&mut params.expand),
            _ => None,
        };
        let Some(slot) = slot else {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter \"{key}\""
            )));
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
    Ok((Json::Object(object), redirect))
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
pub fn strings<'a, const N: usize>(
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
pub fn optional_string<'a>(body: &'a Json, name: &str) -> Result<Option<&'a str>, ApiError> {
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

/// The longest `redirect` or `error_redirect`, in characters.
pub const MAX_REDIRECT: usize = 2048;

/// Only same-origin relative paths: `/profile`, `/a/b?x=1`; never `//host`, `/\host` or a URL.
///
/// # Errors
/// 400 otherwise.
pub fn safe_redirect(target: &str) -> Result<String, ApiError> {
    let ok = target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && target.chars().count() <= MAX_REDIRECT
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
