//! A request id per request (SPEC §16): the client's `X-Request-Id` when it is well-formed (1–128
//! characters of `A-Z a-z 0-9 . _ -`, so it is safe in a header, a log line and a label), else a
//! new UUIDv7. It is answered in the `X-Request-Id` header, is a field of the `request` span that
//! every log line of the request is written in, and appears in error bodies as
//! `error.requestId` (read by `ApiError` from the task-local set here).

use std::future::Future;
use std::sync::Arc;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

/// The header a request id travels in, both ways.
pub const HEADER: &str = "x-request-id";

/// The longest id taken from a client.
const MAX_LENGTH: usize = 128;

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Whether a client's id can be used as is.
fn well_formed(id: &str) -> bool {
    (1..=MAX_LENGTH).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The id of `request`: the client's, when well-formed, else a new one.
fn of(request: &Request) -> Arc<str> {
    match request.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(id) if well_formed(id) => id.into(),
        _ => uuid::Uuid::now_v7().to_string().into(),
    }
}

/// The middleware: runs the rest of the request inside its `request` span and with its id
/// current, and answers the id in the `X-Request-Id` header.
pub fn with_request_id<E: Endpoint + 'static>(
    next: Arc<E>,
    request: Request,
) -> impl Future<Output = poem::Result<Response>> + Send + 'static {
    let id = of(&request);
    let span = tracing::info_span!("request", request_id = %id);
    let work = CURRENT.scope(
        id.clone(),
        async move { next.call(request).await.map(IntoResponse::into_response) }.instrument(span),
    );
    async move {
        let mut response = work.await?;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(HEADER, value);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_ids_are_taken_from_the_client() {
        let long = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases = [
            ("abc", true),
            ("0190c2a4-8b6e-7c3d-9f00-123456789abc", true),
            ("trace.id_2-x", true),
            (long.as_str(), true),
            ("", false),
            (too_long.as_str(), false),
            ("has space", false),
            ("semi;colon", false),
            ("new\nline", false),
            ("ünïcode", false),
            ("quote\"", false),
        ];
        for (id, taken) in cases {
            assert_eq!(well_formed(id), taken, "{id:?}");
        }
    }
}
