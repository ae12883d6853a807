//! Idempotent retries (SPEC §10, the IETF httpapi `Idempotency-Key` draft): a wrapper around a
//! route's endpoint, [`idempotent`], so that a request sent again with the same key is answered
//! from the database instead of being done twice.
//!
//! For a request carrying `Idempotency-Key`:
//! 1. the key is checked (400), the caller authenticated (a refusal is left to the handler, which
//!    answers it in its own order) and named by `Principal::caller_id` (an anonymous caller is a
//!    400: nothing tells two anonymous clients apart, so one could get the other's answer), the
//!    body read and fingerprinted with the method and the path;
//! 2. the key is claimed in the database (`store`): exactly one of concurrent duplicates, on any
//!    instance, gets it; the others are told 409 `idempotency_in_progress`, a request with the
//!    same key but another fingerprint 422 `idempotency_mismatch`, and the same request after the
//!    first was answered gets that answer again, byte for byte, with `Idempotent-Replayed: true`;
//! 3. the claim's holder runs the handler (renewing its lease meanwhile) and stores a 2xx or 4xx
//!    answer (not a 429, which asks to be retried) for 24 hours; a 5xx, or a handler dropped
//!    because its client left, lets the key go so a retry runs.
//!
//! A crash between the handler's write and storing its answer leaves a claim that lapses after
//! `store::LEASE`; a retry then runs the request again. Concurrent duplicates never do.

mod key;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem::{Endpoint, FromRequest, IntoResponse, Request, Response};

pub use key::{KEY_PATTERN, MAX_KEY};
use store::{Claim, Store, Stored, Ticket};

use super::body::read_limited;
use super::error::ApiError;
use super::extract::{self, Authenticated};
use crate::auth::Principal;
use crate::db::Database;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header of a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// The answer headers stored with an answer; every other one (a cookie above all) is not
/// replayed.
const KEPT_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::CACHE_CONTROL,
];

/// Test hook: with `LUCENT_TEST_IDEMPOTENCY_GATE=DIR`, a request that claimed its key creates
/// `DIR/held`, then waits for `DIR/release` to exist before it runs, so tests can hold the first
/// request of a key in flight without timing.
const GATE_VARIABLE: &str = "LUCENT_TEST_IDEMPOTENCY_GATE";

/// What the wrapper shares across requests: the store and the test gate.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Store,
    gate: Option<Arc<PathBuf>>,
}

impl Idempotency {
    pub fn new(db: Database) -> Self {
        let gate = std::env::var_os(GATE_VARIABLE)
            .filter(|dir| !dir.is_empty())
            .map(|dir| Arc::new(PathBuf::from(dir)));
        Self {
            store: Store::new(db),
            gate,
        }
    }

    /// The test hook's wait (see [`GATE_VARIABLE`]); nothing without it.
    async fn gate(&self) {
        let Some(dir) = &self.gate else { return };
        if let Err(e) = tokio::fs::write(dir.join("held"), b"").await {
            tracing::warn!(error = %e, "the idempotency test gate cannot be written");
        }
        while !tokio::fs::try_exists(dir.join("release"))
            .await
            .unwrap_or(true)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `inner`, answering a request with an `Idempotency-Key` at most once per caller and key.
pub fn idempotent<E: Endpoint>(inner: E) -> Idempotent<E> {
    Idempotent { inner }
}

/// The endpoint [`idempotent`] makes.
pub struct Idempotent<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for Idempotent<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        match self.answer(request).await {
            Ok(response) => Ok(response),
            Err(error) => Ok(error.into_response()),
        }
    }
}

impl<E: Endpoint> Idempotent<E> {
    /// Step 1 and 2 of the module doc: the key, the caller, the fingerprint, the claim.
    async fn answer(&self, mut request: Request) -> Result<Response, ApiError> {
        let Some(key) = header_key(&request)? else {
            return Ok(self.run(request).await);
        };
        let principal = match Principal::from_request_without_body(&request).await {
            Ok(principal) => principal,
            // Refused credentials: the handler refuses them too, in its own order.
            Err(_) => return Ok(self.run(request).await),
        };
        let caller = principal.caller_id().ok_or_else(|| {
            ApiError::bad_request(
                "Idempotency-Key needs credentials (a signed-in account or an API key): anonymous callers cannot be told apart, so one could be given another's answer",
            )
        })?;
        let state = extract::state(&request);
        let idempotency = state.idempotency.clone();
        let limit = state.lucent.config.server.body_limit;
        let sent = request.take_body();
        let body = read_limited(&request, sent, limit).await?;
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path(), |p| p.as_str());
        let fingerprint = key::fingerprint(request.method().as_str(), path, &body);
        let claim = idempotency
            .store
            .claim(&key::row_id(&caller, &key), &fingerprint)
            .await
            .map_err(|e| ApiError::database(&e))?;
        match claim {
            Claim::Claimed(ticket) => {
                request.set_body(body);
                request.set_data(Authenticated(principal));
                self.run_claimed(request, &idempotency, ticket).await
            }
            Claim::Replay(answer) => Ok(replay(answer)),
            Claim::InProgress => Ok(in_progress()),
            Claim::Mismatch => Err(ApiError::idempotency_mismatch()),
        }
    }

    /// Step 3: runs the request whose key `ticket` holds, and stores its answer or lets the key
    /// go.
    async fn run_claimed(
        &self,
        request: Request,
        idempotency: &Idempotency,
        ticket: Ticket,
    ) -> Result<Response, ApiError> {
        let store = &idempotency.store;
        let held = Held {
            store: store.clone(),
            ticket: Some(ticket.clone()),
        };
        let work = async {
            idempotency.gate().await;
            self.run(request).await
        };
        let mut response = renewing(store, &ticket, work).await;
        if !kept(response.status()) {
            held.release().await;
            return Ok(response);
        }
        let body = match response.take_body().into_vec().await {
            Ok(body) => body,
            Err(e) => {
                held.release().await;
                return Err(ApiError::internal(&e));
            }
        };
        let answer = Stored {
            status: response.status().as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = response.headers().get(name)?.to_str().ok()?;
                    Some((name.to_string(), value.to_string()))
                })
                .collect(),
            body,
        };
        // Either way the answer stands. Unstored, the claim lapses after its lease and a retry
        // runs again; so does one after a crash here.
        match store.complete(&ticket, &answer).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("an idempotency claim lapsed while its request ran"),
            Err(e) => tracing::error!(error = %e, "storing an idempotent answer failed"),
        }
        held.keep();
        response.set_body(answer.body);
        Ok(response)
    }

    /// The handler's answer; an error is its envelope (as `Methods` renders it).
    async fn run(&self, request: Request) -> Response {
        match self.inner.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => ApiError::from(error).into_response(),
        }
    }
}

/// The request's key: `None` without the header.
///
/// # Errors
/// 400 for a malformed or repeated header.
fn header_key(request: &Request) -> Result<Option<String>, ApiError> {
    let mut values = request.headers().get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request("Idempotency-Key is given twice"));
    }
    key::parse(value.as_bytes())
        .map(|key| Some(key.to_string()))
        .map_err(ApiError::bad_request)
}

/// Whether an answer is stored: a 2xx or a 4xx, except 429, which says to try again.
fn kept(status: StatusCode) -> bool {
    status.is_success() || (status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS)
}

fn replay(answer: Stored) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK))
        .header(REPLAYED, "true");
    for (name, value) in &answer.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response.body(answer.body)
}

fn in_progress() -> Response {
    let mut response = ApiError::idempotency_in_progress().into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Runs `work`, renewing the claim's lease until it ends.
async fn renewing<F: Future>(store: &Store, ticket: &Ticket, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let period = (store::LEASE / 3)
        .to_std()
        .unwrap_or(Duration::from_secs(20));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticks.tick() => {
                if let Err(e) = store.renew(ticket).await {
                    tracing::warn!(error = %e, "renewing an idempotency claim failed");
                }
            }
        }
    }
}

/// A claim being worked on. Dropped unanswered (the client left, the handler panicked), it lets
/// the key go in the background.
struct Held {
    store: Store,
    ticket: Option<Ticket>,
}

impl Held {
    /// Lets the key go now: its request may run again.
    async fn release(mut self) {
        if let Some(ticket) = self.ticket.take()
            && let Err(e) = self.store.release(&ticket).await
        {
            tracing::warn!(error = %e, "releasing an idempotency claim failed");
        }
    }

    /// The answer is stored (or left to the lease): nothing to let go.
    fn keep(mut self) {
        self.ticket = None;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release(&ticket).await {
                    tracing::warn!(error = %e, "releasing an abandoned idempotency claim failed");
                }
            });
        }
    }
}
