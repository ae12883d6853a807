//! Failures of HTML form posts (the routes marked F in SPEC §5) sent back to the form page.
//!
//! A form that carries `redirect` is filled in by a person, not read by a script, so a JSON error
//! would strand them on a page of raw JSON. Such a failure answers `303 See Other` to the form
//! page instead, with the error in the query string: `?error=<code>` and one
//! `detail=<field>:<code>` per field problem (`/signup.html?error=validation_failed&
//! detail=password:too_short`). Codes, never messages or submitted values, go into the URL: the
//! page maps them to words, and no password ends up in a log or the browser history.
//!
//! The form page is the form's `error_redirect` field (checked like `redirect`: a relative path on
//! this site), else the path of a `Referer` on the server's own origin. Without either, the answer is the JSON
//! error as for any other request.

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Request, Response};
use serde_json::Value as Json;

use super::body::safe_redirect;
use super::error::ApiError;
use super::origin::Origins;

/// The form field naming the page a failure goes back to.
const FIELD: &str = "error_redirect";

/// Takes `error_redirect` out of a form body and decides where a failure goes back to: nowhere
/// unless the form carried `redirect` (`success`).
///
/// # Errors
/// 400 for an `error_redirect` that is not a relative path on this site.
pub fn form_page(
    origins: &Origins,
    request: &Request,
    body: &mut Json,
    success: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let named = match body.as_object_mut().and_then(|fields| fields.remove(FIELD)) {
        Some(Json::String(target)) => Some(safe_redirect(&target)?),
        Some(_) => return Err(ApiError::bad_request(format!("{FIELD} must be a string"))),
        None => None,
    };
    if success.is_none() {
        return Ok(None);
    }
    Ok(named.or_else(|| same_origin_referer(origins, request)))
}

/// The path and query of the `Referer` when it is a page of the server's own origin (scheme,
/// host and port, as the cross-site check compares them).
fn same_origin_referer(origins: &Origins, request: &Request) -> Option<String> {
    let referer = request
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())?;
    if !origins.is_own(referer) {
        return None;
    }
    let url = url::Url::parse(referer).ok()?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    safe_redirect(&path).ok()
}

/// The answer to a failed request: back to the form page when there is one, else the JSON error.
pub fn answer(page: Option<&str>, result: Result<Response, ApiError>) -> Response {
    match (result, page) {
        (Ok(response), _) => response,
        (Err(error), Some(page)) => {
            let location = with_error(page, &error);
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, location)
                .header(header::CACHE_CONTROL, "no-store")
                .finish()
        }
        (Err(error), None) => error.into_response(),
    }
}

/// `page` with the error's code and details in its query string, replacing earlier ones.
fn with_error(page: &str, error: &ApiError) -> String {
    let (page, fragment) = match page.split_once('#') {
        Some((page, fragment)) => (page, Some(fragment)),
        None => (page, None),
    };
    let (path, query) = page.split_once('?').unwrap_or((page, ""));
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| key != "error" && key != "detail")
            .collect();
    pairs.push(("error".into(), error.code.into()));
    for detail in &error.details {
        pairs.push(("detail".into(), format!("{}:{}", detail.field, detail.code)));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    match fragment {
        Some(fragment) => format!("{path}?{query}#{fragment}"),
        None => format!("{path}?{query}"),
    }
}

#[cfg(test)]
mod tests {
    use poem::http::StatusCode;

    use super::{ApiError, with_error};
    use crate::schema::FieldError;

    #[test]
    fn errors_go_into_the_query_string() {
        let mut weak = ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", "weak");
        weak.details = vec![
            FieldError::new("password", "too_short", "short"),
            FieldError::new("password", "common_password", "common"),
        ];
        let taken = ApiError::new(StatusCode::CONFLICT, "unique_violation", "taken");
        let cases = [
            (
                "/signup.html",
                &weak,
                "/signup.html?error=validation_failed&detail=password%3Atoo_short&detail=password%3Acommon_password",
            ),
            (
                "/signup.html?next=%2Fp&error=old&detail=x#top",
                &taken,
                "/signup.html?next=%2Fp&error=unique_violation#top",
            ),
            ("/", &taken, "/?error=unique_violation"),
        ];
        for (page, error, expected) in cases {
            assert_eq!(with_error(page, error), expected, "{page}");
        }
    }
}
