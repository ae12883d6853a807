//! The HTTP adapter: routes, thin handlers over the library API, the error envelope, request
//! logging with request ids, metrics, and the OpenAPI document built from the schema.
//!
//! A handler is parse, call, render: its parameters are extractors (`extract`: the caller, the
//! path's collection, the body), it calls `records` or `accounts`, and `answer` renders the result;
//! an error is an [`ApiError`] returned with `?` (`error` maps every subsystem's errors, in one
//! place). Handlers live by route family: `collections`, `batch`, `accounts`, `api_keys`,
//! `email`. A route that takes `Idempotency-Key` wraps its handler in `idempotency::idempotent`.

mod accounts;
mod answer;
mod api_keys;
mod batch;
mod body;
mod collections;
mod email;
pub mod error;
mod extract;
mod form_errors;
mod idempotency;
mod methods;
mod metrics;
mod openapi;
mod origin;
mod realtime;
mod request_id;
mod server;
mod static_files;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use poem::middleware::{CatchPanic, CookieJarManager};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};

pub use error::ApiError;
use idempotency::idempotent;
use methods::Methods;
pub use openapi::document as openapi_document;

use crate::app::Lucent;

/// What handlers share: the app and what was rendered from its config once at startup.
#[derive(Clone)]
pub(crate) struct State {
    pub lucent: Lucent,
    pub openapi: Arc<String>,
    /// Swagger UI embeds ~1.5 MB of assets: rendered on first use, not held by idle servers.
    pub swagger: Arc<OnceLock<String>>,
    /// Where cookie-authenticated requests and form posts may come from.
    pub origins: Arc<origin::Origins>,
    /// The stored answers of requests sent with an `Idempotency-Key`.
    pub idempotency: idempotency::Idempotency,
    /// Realtime clients and their subscriptions.
    pub realtime: crate::realtime::Realtime,
}

/// Every route of the app, with logging, panic catching and error envelopes around them. The
/// server's own origin comes from `server.public_url`, else `server.host` and `server.port`
/// (which [`serve`] sets to the address it bound).
pub fn app(lucent: Lucent) -> impl Endpoint {
    let realtime = realtime_hub(&lucent);
    app_with(lucent, realtime)
}

/// The realtime hub of an instance (`realtime.max_clients` clients).
pub fn realtime_hub(lucent: &Lucent) -> crate::realtime::Realtime {
    crate::realtime::Realtime::new(
        lucent.records.clone(),
        lucent.accounts.clone(),
        lucent.config.realtime.max_clients,
    )
}

/// [`app`] with its realtime hub (which `serve` closes when it stops).
pub fn app_with(lucent: Lucent, realtime: crate::realtime::Realtime) -> impl Endpoint {
    let metrics = metrics::Metrics::new(&lucent, &realtime);
    let document = openapi::document(&lucent.config).to_string();
    let static_dir = lucent.config.server.static_dir.clone();
    let origins = origin::Origins::new(&lucent.config.server);
    let idempotency = idempotency::Idempotency::new(lucent.database().clone());
    let state = State {
        lucent,
        openapi: Arc::new(document),
        swagger: Arc::new(OnceLock::new()),
        origins: Arc::new(origins),
        idempotency,
        realtime,
    };
    let routes = Route::new()
        .at("/api/health", Methods::new().get(health))
        .at("/api/openapi.json", get(openapi_json))
        .at("/api/docs", get(swagger_ui))
        .at("/api/batch", Methods::new().post(idempotent(batch::batch)))
        .at(
            "/api/realtime",
            Methods::new()
                .get(realtime::stream)
                .post(realtime::subscribe),
        )
        .at(
            "/api/:collection/register",
            Methods::new().post(accounts::register),
        )
        .at(
            "/api/:collection/login",
            Methods::new().post(accounts::login),
        )
        .at(
            "/api/:collection/refresh",
            Methods::new().post(accounts::refresh),
        )
        .at(
            "/api/:collection/logout",
            Methods::new().post(accounts::logout),
        )
        .at(
            "/api/:collection/logout-all",
            Methods::new().post(accounts::logout_all),
        )
        .at("/api/:collection/me", Methods::new().get(accounts::me))
        .at(
            "/api/:collection/sessions",
            Methods::new().get(accounts::sessions),
        )
        .at(
            "/api/:collection/sessions/:id",
            Methods::new().delete(accounts::revoke_session),
        )
        .at(
            "/api/:collection/send-verification-email",
            Methods::new().post(email::send_verification_email),
        )
        .at(
            "/api/:collection/verify-email",
            Methods::new().post(email::verify_email),
        )
        .at(
            "/api/:collection/request-password-reset",
            Methods::new().post(email::request_password_reset),
        )
        .at(
            "/api/:collection/reset-password",
            Methods::new().post(email::reset_password),
        )
        .at(
            "/api/:collection/api-keys",
            Methods::new().get(api_keys::list).post(api_keys::create),
        )
        .at(
            "/api/:collection/api-keys/:id",
            Methods::new().delete(api_keys::revoke),
        )
        .at(
            "/api/:collection",
            Methods::new()
                .list(collections::list)
                .post(idempotent(collections::create)),
        )
        .at(
            "/api/:collection/:id",
            Methods::new()
                .list(collections::get_one)
                .patch(idempotent(collections::update))
                .delete(idempotent(collections::delete)),
        );
    let routes = match &metrics {
        Some(metrics) => routes.at("/api/metrics", get(metrics::scrape).data(metrics.clone())),
        None => routes,
    };
    // Paths the API routes do not match fall through to the site's files, if there is a site.
    let routes = match static_dir {
        Some(dir) => routes.nest("/", static_files::SiteFiles::new(&dir)),
        None => routes,
    };
    routes
        .data(state)
        .with(CookieJarManager::new())
        .with(CatchPanic::new().with_handler(|_| ApiError::internal(&"a handler panicked")))
        .around(log_and_envelope)
        .with(metrics::Recording(metrics))
        .around(request_id::with_request_id)
}

/// One log line per request; poem-level errors (no route, wrong method) become envelopes.
async fn log_and_envelope<E: Endpoint>(next: E, request: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // A NUL character (`%00`) names nothing: no id, collection or file holds one, and
    // PostgreSQL could not even compare with it.
    let response = if path.to_ascii_lowercase().contains("%00") {
        ApiError::not_found().into_response()
    } else {
        match next.call(request).await {
            Ok(response) => response.into_response(),
            Err(error) => {
                let status = error.status();
                // The route it matched, for the metrics.
                let pattern = error.data::<poem::PathPattern>().cloned();
                let mut response = ApiError::from(error).into_response();
                if let Some(pattern) = pattern {
                    response.set_data(pattern);
                }
                // The API's own paths answer 405 themselves (`Methods`); what is left are the
                // GET-only ones (the OpenAPI document, Swagger UI, the site's files).
                if status == poem::http::StatusCode::METHOD_NOT_ALLOWED {
                    response.headers_mut().insert(
                        poem::http::header::ALLOW,
                        poem::http::HeaderValue::from_static("GET, HEAD"),
                    );
                }
                response
            }
        }
    };
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}

#[handler]
async fn health(state: poem::web::Data<&State>) -> Response {
    match state.lucent.database().ping().await {
        Ok(()) => answer::ok(&serde_json::json!({"status": "ok"})),
        Err(e) => ApiError::new(
            poem::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database does not answer",
        )
        .into_response_logged(&e),
    }
}

impl ApiError {
    fn into_response_logged(self, cause: &dyn std::fmt::Display) -> Response {
        tracing::error!(error = %cause, "{}", self.message);
        self.into_response()
    }
}

#[handler]
async fn openapi_json(state: poem::web::Data<&State>) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(state.openapi.as_str().to_owned())
}

#[handler]
async fn swagger_ui(state: poem::web::Data<&State>) -> Html<String> {
    Html(
        state
            .swagger
            .get_or_init(|| openapi::swagger_html(&state.openapi))
            .clone(),
    )
}

/// Serves `lucent` on `host:port` until SIGINT or SIGTERM, then finishes in-flight requests and
/// closes the database. `port = 0` picks a free port; the bound address is printed on stdout as
/// `listening on http://ADDR` once requests are accepted.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(lucent: Lucent, host: &str, port: u16) -> std::io::Result<()> {
    let database = lucent.database().clone();
    let planner = database.clone();
    let statistics = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        every.tick().await; // the first tick is immediate; startup already optimized
        loop {
            every.tick().await;
            if let Err(e) = planner.optimize().await {
                tracing::warn!(error = %e, "refreshing planner statistics failed");
            }
        }
    });
    // Installed before the address is announced (see `shutdown_signal`).
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let lucent = listening_on(lucent, host, addr.port());
    let timeouts = server::Timeouts {
        header: lucent.config.server.header_timeout,
        idle: lucent.config.server.idle_timeout,
    };
    // The outbox worker runs beside the server and stops after it: answers still being written
    // may add rows, which the worker's next start (or another instance) sends.
    let stop_deliveries = Arc::new(tokio::sync::Notify::new());
    let deliveries = {
        let (lucent, stop) = (lucent.clone(), stop_deliveries.clone());
        tokio::spawn(async move {
            if let Err(e) = lucent.deliver(stop.notified()).await {
                tracing::error!(error = %e, "the outbox worker stopped");
            }
        })
    };
    // Realtime streams never end by themselves: they are closed as the server starts to stop.
    let hub = realtime_hub(&lucent);
    let shutdown = {
        let hub = hub.clone();
        async move {
            shutdown.await;
            hub.close();
        }
    };
    server::run(
        listener,
        app_with(lucent, hub),
        timeouts,
        shutdown,
        Duration::from_secs(30),
    )
    .await;
    stop_deliveries.notify_one();
    // Deliveries under way end within their own time limit (10 s for a webhook).
    if tokio::time::timeout(Duration::from_secs(30), deliveries)
        .await
        .is_err()
    {
        tracing::warn!("outbox deliveries still running after 30 s: stopping anyway");
    }
    statistics.abort();
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `lucent` with `server.host` and `server.port` set to the address actually served (after
/// `--host`/`--port`, with port 0 resolved), so the server's default origin is right.
fn listening_on(mut lucent: Lucent, host: &str, port: u16) -> Lucent {
    let mut config = (*lucent.config).clone();
    config.server.host = host.to_string();
    config.server.port = port;
    let origins = origin::Origins::new(&config.server);
    if config.server.public_url.is_none() {
        let wildcard = host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if wildcard || config.server.env == crate::config::Env::Prod {
            tracing::warn!(
                "server.public_url is not set: cookie-authenticated requests and form posts are accepted only from {} (and server.cors_origins); set server.public_url to the address browsers use",
                origins.describe()
            );
        }
    }
    lucent.config = Arc::new(config);
    lucent
}

/// Resolves at SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a SIGTERM sent as soon as `listening on` is printed would otherwise
/// meet the default action and kill the process mid-start.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::interrupt(), SignalKind::terminate()]
            .map(|kind| signal(kind).expect("install a signal handler"))
    };
    async move {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = &mut signals;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
