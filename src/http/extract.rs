//! Poem extractors: what a handler needs, read and checked from the request before it runs, in the
//! order the handler lists them (so which error a bad request gets is the order of its
//! parameters). Each fails with the [`ApiError`] it means.
//!
//! - [`Credentials`]: what the request presents (a bearer token or the session cookie), unchecked;
//!   [`Principal`]: who that proves, a cookie request's origin checked first;
//!   [`Account`]: a principal that is an account of the path's auth collection.
//! - [`AuthCollection`], [`KnownCollection`]: the path's collection, a 404 before anything else.
//! - [`JsonBody`], [`Form`] (JSON or an HTML form, after the cross-site check, with its checked
//!   `redirect`), [`PageForm`] (a form whose failures go back to its page), [`Optional`] (a body
//!   only when the request has one), [`ListParams`], [`GetParams`], [`UserAgent`].

use std::pin::Pin;

use poem::http::header;
use poem::{FromRequest, Request, RequestBody, Response};
use serde_json::{Value as Json, json};

use super::State;
use super::answer::cookie_name;
use super::body::{GET_PARAMETERS, LIST_PARAMETERS, query_params, read_form_or_json, read_json};
use super::error::{ApiError, NUL_MESSAGE};
use super::{form_errors, origin};
use crate::accounts::Credentials;
use crate::auth::Principal;
use crate::records::ListParams;
use crate::schema::Collection;

/// The app's state (set on every route).
pub fn state(request: &Request) -> &State {
    request
        .data::<State>()
        .expect("the routes carry the app's state")
}

fn taken_body(body: &mut RequestBody) -> Result<poem::Body, ApiError> {
    body.take()
        .map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110 §11.1: `bearer`, `Bearer` and `BEARER` are one scheme).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Reads the credentials of a request without checking them: 401 for an `Authorization` header
/// that is not `Bearer <token>`, 400 for a session cookie holding a NUL character.
impl<'a> FromRequest<'a> for Credentials {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        if let Some(value) = request.headers().get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or_else(ApiError::unauthorized)?;
            return Ok(Credentials::Bearer(token.to_string()));
        }
        match request.cookie().get(cookie_name(state(request))) {
            // Cookie values are percent-decoded: `%00` would reach the session lookup.
            Some(cookie) if cookie.value_str().contains('\0') => {
                Err(ApiError::bad_request(NUL_MESSAGE).into())
            }
            Some(cookie) if !cookie.value_str().is_empty() => {
                Ok(Credentials::Cookie(cookie.value_str().to_string()))
            }
            _ => Ok(Credentials::None),
        }
    }
}

/// The caller of a request that was already authenticated before its handler ran (by the
/// idempotency wrapper, which scopes keys by caller), so the credentials are checked once.
#[derive(Clone)]
pub struct Authenticated(pub Principal);

/// Authenticates a request: anonymous without credentials; 401 for refused credentials
/// (`token_expired` for an expired token), never anonymous; 403 `csrf_failed` for an unsafe
/// cookie request from another origin.
impl<'a> FromRequest<'a> for Principal {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        if let Some(Authenticated(principal)) = request.data::<Authenticated>() {
            return Ok(principal.clone());
        }
        let credentials = Credentials::from_request(request, body).await?;
        Ok(authenticate(request, &credentials).await?)
    }
}

/// Who `credentials` prove; a cookie must come with an allowed origin on unsafe methods.
///
/// # Errors
/// As the [`Principal`] extractor.
pub async fn authenticate(
    request: &Request,
    credentials: &Credentials,
) -> Result<Principal, ApiError> {
    let state = state(request);
    if matches!(credentials, Credentials::Cookie(_)) {
        origin::check_cookie_request(&state.origins, request)?;
    }
    Ok(state.lucent.accounts.authenticate(credentials).await?)
}

/// The path's auth collection (`:collection`): 404 for an unknown one or one without auth.
pub struct AuthCollection<'a>(pub &'a Collection);

impl<'a> FromRequest<'a> for AuthCollection<'a> {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        match path_collection(request) {
            Some(collection) if collection.auth.is_some() => Ok(Self(collection)),
            _ => Err(ApiError::not_found().into()),
        }
    }
}

/// The path's collection: 404 for an unknown one, before the body is read.
pub struct KnownCollection<'a>(pub &'a Collection);

impl<'a> FromRequest<'a> for KnownCollection<'a> {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(
            path_collection(request).ok_or_else(ApiError::not_found)?,
        ))
    }
}

fn path_collection(request: &Request) -> Option<&Collection> {
    let slug = request.raw_path_param("collection")?;
    state(request).lucent.records.schema().get(slug)
}

/// The authenticated account of the path's auth collection: 404 for another collection, 401 for
/// a caller who is not one of its accounts (a token of another collection included).
pub struct Account(pub Principal);

impl<'a> FromRequest<'a> for Account {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(account(request).await?))
    }
}

/// What the [`Account`] extractor does, for a handler that needs it only on some paths.
///
/// # Errors
/// As [`Account`].
pub async fn account(request: &Request) -> Result<Principal, ApiError> {
    let AuthCollection(collection) = AuthCollection::from_request_without_body(request).await?;
    let principal = Principal::from_request_without_body(request).await?;
    match principal.user() {
        Some(user) if user.collection == collection.slug => Ok(principal),
        _ => Err(ApiError::unauthorized()),
    }
}

/// A JSON body of at most `server.body_limit` bytes: 415 for another content type, 413 over the
/// limit, 400 for malformed JSON.
pub struct JsonBody(pub Json);

impl<'a> FromRequest<'a> for JsonBody {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let limit = state(request).lucent.config.server.body_limit;
        Ok(Self(read_json(request, taken_body(body)?, limit).await?))
    }
}

/// The body of a route marked F in SPEC §5: JSON, or an HTML form that passed the cross-site
/// check (a form posted from another site is refused before anything is read or done: 403
/// `csrf_failed`), with the form's checked `redirect` (400 for one that leaves the site).
pub struct Form {
    pub body: Json,
    pub redirect: Option<String>,
}

impl<'a> FromRequest<'a> for Form {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = state(request);
        origin::check_form_post(&state.origins, request)?;
        let (body, redirect) = read_form_or_json(
            request,
            taken_body(body)?,
            state.lucent.config.server.body_limit,
        )
        .await?;
        Ok(Self { body, redirect })
    }
}

/// A [`Form`] whose failures go back to the form's page (see `form_errors`): its
/// `error_redirect`, else a `Referer` on this site, when the form carries `redirect`.
#[derive(Default)]
pub struct PageForm {
    pub body: Json,
    pub redirect: Option<String>,
    page: Option<String>,
}

impl<'a> FromRequest<'a> for PageForm {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Form { mut body, redirect } = Form::from_request(request, body).await?;
        let page = form_errors::form_page(
            &state(request).origins,
            request,
            &mut body,
            redirect.as_deref(),
        )?;
        Ok(Self {
            body,
            redirect,
            page,
        })
    }
}

impl PageForm {
    /// No body: no fields, no redirect.
    pub fn empty() -> Self {
        Self {
            body: json!({}),
            ..Self::default()
        }
    }

    /// The answer: the handler's, or its error sent back to the form's page when there is one.
    pub fn answer(&self, result: Result<Response, ApiError>) -> Response {
        form_errors::answer(self.page.as_deref(), result)
    }
}

/// `T` when the request has a body (a `Content-Type`), else `None`.
pub struct Optional<T>(pub Option<T>);

impl<'a, T: FromRequest<'a>> FromRequest<'a> for Optional<T> {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        if request.headers().get(header::CONTENT_TYPE).is_none() {
            return Ok(Self(None));
        }
        // Boxed as a trait object, as poem's own generic extractors are: the concrete future
        // trips rust-lang/rust#100013.
        let extract: Pin<Box<dyn Future<Output = poem::Result<T>> + Send + '_>> =
            Box::pin(T::from_request(request, body));
        Ok(Self(Some(extract.await?)))
    }
}

/// The list parameters of a query string: 400 for an unknown or repeated one.
impl<'a> FromRequest<'a> for ListParams {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(query_params(request, &LIST_PARAMETERS)?)
    }
}

/// The query parameters of `GET /api/C/:id`: `expand` only.
pub struct GetParams {
    pub expand: Option<String>,
}

impl<'a> FromRequest<'a> for GetParams {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let params = query_params(request, &GET_PARAMETERS)?;
        Ok(Self {
            expand: params.expand,
        })
    }
}

/// The `User-Agent` header, kept with a new session.
pub struct UserAgent(pub Option<String>);

impl<'a> FromRequest<'a> for UserAgent {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(
            request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("BeArEr   abc ", Some("abc")),
            ("Bearer\tabc", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic abc", None),
            ("Bearerabc", None),
            ("", None),
        ] {
            assert_eq!(bearer_token(value), token, "{value:?}");
        }
    }
}
