//! `GET /api/metrics` in Prometheus text (SPEC §16), when `[metrics] enabled = true`: requests by
//! route template and status, their latency, the database connections per group, the statements
//! the record readers ran, the password-hashing queue, the outbox backlog. Counted with the `metrics` facade into this app's own recorder (no
//! global one, so two apps in one process keep their own numbers) and rendered by
//! `metrics-exporter-prometheus`.
//!
//! Labels stay bounded whatever clients send: the route is poem's matched template
//! (`/api/:collection/:id`, never a raw path), the collection a configured slug (else
//! `unknown`), the method one of the standard ones (else `OTHER`).
//!
//! Who is answered: with `[metrics] token`, a request showing `Authorization: Bearer <token>`,
//! from anywhere, loopback included; without a token, a caller whose socket address (the
//! connection's peer, never a forwarding header) is a loopback address.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, handler};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::app::Lucent;

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often samples of the latency histogram are folded into its buckets.
const UPKEEP: Duration = Duration::from_secs(5);

/// The metrics of one app.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    lucent: Lucent,
    realtime: crate::realtime::Realtime,
    collections: HashSet<String>,
    /// SHA-256 of `[metrics] token`: compared in constant time whatever its length.
    token: Option<[u8; 32]>,
}

impl Metrics {
    /// The metrics of `lucent`, or `None` when `[metrics]` is not enabled.
    pub fn new(lucent: &Lucent, realtime: &crate::realtime::Realtime) -> Option<Arc<Self>> {
        let config = &lucent.config.metrics;
        if !config.enabled {
            return None;
        }
        let recorder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .expect("non-empty buckets")
            .build_recorder();
        metrics::with_local_recorder(&recorder, describe);
        let metrics = Arc::new(Self {
            handle: recorder.handle(),
            recorder,
            lucent: lucent.clone(),
            realtime: realtime.clone(),
            collections: lucent
                .config
                .schema
                .collections
                .iter()
                .map(|c| c.slug.clone())
                .collect(),
            token: config.token.as_deref().map(digest),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(upkeep(Arc::downgrade(&metrics)));
        }
        Some(metrics)
    }

    /// Counts `request` and times it, by the route template it matched.
    async fn record<E: Endpoint>(&self, next: &E, request: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let method = method_label(request.method().as_str());
        // The second segment of `/api/<collection>/...`, kept only if it names a collection.
        let segment = request.uri().path().split('/').nth(2).map(str::to_owned);
        let response = next.call(request).await?.into_response();
        let route = response
            .data::<PathPattern>()
            .map_or_else(|| "unmatched".to_string(), |p| p.0.to_string());
        let collection = match segment {
            Some(slug) if route.contains(":collection") => {
                if self.collections.contains(&slug) {
                    slug
                } else {
                    "unknown".into()
                }
            }
            _ => String::new(),
        };
        let status = response.status().as_u16().to_string();
        let seconds = started.elapsed().as_secs_f64();
        metrics::with_local_recorder(&self.recorder, || {
            counter!("lucent_http_requests_total", "method" => method, "route" => route.clone(), "collection" => collection.clone(), "status" => status)
                .increment(1);
            histogram!("lucent_http_request_duration_seconds", "method" => method, "route" => route, "collection" => collection)
                .record(seconds);
        });
        Ok(response)
    }

    /// The gauges, read now: what they measure lives elsewhere and is only sampled at a scrape.
    /// `backlog`: the outbox's rows by kind and state (`None` when it could not be read).
    fn sample(&self, backlog: Option<Vec<(String, String, i64)>>) {
        metrics::with_local_recorder(&self.recorder, || {
            for usage in self.lucent.database().pool_usage() {
                gauge!("lucent_db_connections", "pool" => usage.pool, "state" => "in_use")
                    .set(usage.in_use as f64);
                gauge!("lucent_db_connections", "pool" => usage.pool, "state" => "idle")
                    .set(usage.idle as f64);
            }
            counter!("lucent_db_read_statements_total")
                .absolute(self.lucent.database().read_statements());
            let (admitted, places) = self.lucent.passwords().queue_usage();
            gauge!("lucent_password_hashing_admitted").set(admitted as f64);
            gauge!("lucent_password_hashing_capacity").set(places as f64);
            if let Some(backlog) = &backlog {
                for kind in ["webhook", "email"] {
                    for state in ["pending", "failed"] {
                        let count = backlog
                            .iter()
                            .find(|(k, s, _)| k == kind && s == state)
                            .map_or(0, |(_, _, count)| *count);
                        gauge!("lucent_outbox_backlog", "kind" => kind, "state" => state)
                            .set(count as f64);
                    }
                }
            }
            gauge!("lucent_realtime_clients").set(self.realtime.clients() as f64);
        });
    }

    /// Whether `request` may read the metrics.
    fn admits(&self, request: &Request) -> Admission {
        let peer = request.remote_addr().as_socket_addr().map(|a| a.ip());
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        admission(self.token.as_ref(), peer, bearer)
    }
}

/// The middleware that counts requests: does nothing but pass them on when metrics are off.
pub struct Recording(pub Option<Arc<Metrics>>);

impl<E: Endpoint> Middleware<E> for Recording {
    type Output = RecordingEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RecordingEndpoint {
            inner,
            metrics: self.0.clone(),
        }
    }
}

pub struct RecordingEndpoint<E> {
    inner: E,
    metrics: Option<Arc<Metrics>>,
}

impl<E: Endpoint> Endpoint for RecordingEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        match &self.metrics {
            Some(metrics) => metrics.record(&self.inner, request).await,
            None => self
                .inner
                .call(request)
                .await
                .map(IntoResponse::into_response),
        }
    }
}

/// What a scrape is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Granted,
    /// A token is configured and the request does not show it.
    NeedsToken,
    /// No token is configured and the caller is not on this machine.
    LoopbackOnly,
}

/// The decision, from the configured token's digest, the connection's peer address and the
/// bearer token shown (forwarding headers are not inputs: they never stand in for either).
fn admission(token: Option<&[u8; 32]>, peer: Option<IpAddr>, bearer: Option<&str>) -> Admission {
    match token {
        Some(expected) => match bearer {
            Some(shown) if bool::from(digest(shown).ct_eq(expected)) => Admission::Granted,
            _ => Admission::NeedsToken,
        },
        None if peer.is_some_and(|ip| ip.to_canonical().is_loopback()) => Admission::Granted,
        None => Admission::LoopbackOnly,
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A method as a label: the standard ones by name, anything else as `OTHER`.
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("OTHER")
}

fn describe() {
    describe_counter!(
        "lucent_http_requests_total",
        "Requests answered, by method, route template, collection and status."
    );
    describe_histogram!(
        "lucent_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a request's arrival to its answer, by method, route template and collection."
    );
    describe_gauge!(
        "lucent_db_connections",
        "Database connections by group (writer, readers, auth) and state (in_use, idle)."
    );
    describe_counter!(
        "lucent_db_read_statements_total",
        "SQL statements run by the record readers (lists, gets, expansions, their counts)."
    );
    describe_gauge!(
        "lucent_password_hashing_admitted",
        "Requests hashing a password or waiting to; beyond the capacity they are refused (429)."
    );
    describe_gauge!(
        "lucent_password_hashing_capacity",
        "Places in the password-hashing queue."
    );
    describe_gauge!(
        "lucent_realtime_clients",
        "Realtime (Server-Sent Events) clients connected to this instance."
    );
    describe_gauge!(
        "lucent_outbox_backlog",
        "Outbox rows by kind (webhook, email) and state: pending (waiting, being sent or to be retried) and failed (given up; `lucent outbox retry` requeues)."
    );
}

/// Folds histogram samples into buckets every [`UPKEEP`] until the metrics are dropped, so
/// samples between scrapes do not pile up.
async fn upkeep(metrics: Weak<Metrics>) {
    let mut every = tokio::time::interval(UPKEEP);
    loop {
        every.tick().await;
        match metrics.upgrade() {
            Some(metrics) => metrics.handle.run_upkeep(),
            None => return,
        }
    }
}

/// `GET /api/metrics`.
#[handler]
pub async fn scrape(request: &Request, metrics: Data<&Arc<Metrics>>) -> Response {
    match metrics.admits(request) {
        Admission::Granted => {}
        Admission::NeedsToken => {
            let mut answer = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the metrics need `Authorization: Bearer <[metrics] token>`",
            )
            .into_response();
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Bearer"),
            );
            return answer;
        }
        Admission::LoopbackOnly => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "without a [metrics] token, the metrics are answered on this machine only",
            )
            .into_response();
        }
    }
    let backlog = match crate::outbox::table::backlog(metrics.lucent.database()).await {
        Ok(backlog) => Some(backlog),
        Err(e) => {
            tracing::warn!(error = %e, "the outbox backlog cannot be read for the metrics");
            None
        }
    };
    metrics.sample(backlog);
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.handle.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_is_answered() {
        let token = digest("s3cret-token");
        let loopback: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let loopback6: Option<IpAddr> = Some("::1".parse().unwrap());
        let mapped: Option<IpAddr> = Some("::ffff:127.0.0.1".parse().unwrap());
        let remote: Option<IpAddr> = Some("192.0.2.7".parse().unwrap());
        let remote6: Option<IpAddr> = Some("2001:db8::1".parse().unwrap());
        let cases = [
            // No token: the peer decides; a bearer token changes nothing.
            (None, loopback, None, Admission::Granted),
            (None, loopback6, None, Admission::Granted),
            (None, mapped, None, Admission::Granted),
            (None, remote, None, Admission::LoopbackOnly),
            (None, remote6, Some("anything"), Admission::LoopbackOnly),
            (None, None, None, Admission::LoopbackOnly),
            // A token: it decides, from anywhere, loopback included.
            (
                Some(&token),
                remote,
                Some("s3cret-token"),
                Admission::Granted,
            ),
            (Some(&token), None, Some("s3cret-token"), Admission::Granted),
            (Some(&token), loopback, None, Admission::NeedsToken),
            (
                Some(&token),
                loopback,
                Some("s3cret-toke"),
                Admission::NeedsToken,
            ),
            (Some(&token), loopback, Some(""), Admission::NeedsToken),
            (
                Some(&token),
                remote,
                Some("S3CRET-TOKEN"),
                Admission::NeedsToken,
            ),
        ];
        for (token, peer, bearer, expected) in cases {
            assert_eq!(
                admission(token, peer, bearer),
                expected,
                "{peer:?} {bearer:?}"
            );
        }
    }

    /// The app itself, called in-process with a chosen peer address (no traffic leaves the
    /// machine): the handler reads the connection's peer, never a forwarding header.
    #[tokio::test]
    async fn without_a_token_only_loopback_peers_are_answered() {
        use poem::web::{LocalAddr, RemoteAddr};
        use poem::{Addr, Body, RequestParts};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        std::fs::write(
            &path,
            "[metrics]\nenabled = true\n[collections.posts.fields]\ntitle = { type = \"string\" }\n",
        )
        .unwrap();
        let config = crate::config::load_with_env(&path, &|_| None).unwrap();
        let lucent = Lucent::from_config(config).await.unwrap();
        let app = crate::http::app(lucent.clone());
        let call = |peer: &str, forwarded: &str| {
            let parts = poem::http::Request::builder()
                .uri("/api/metrics")
                .header("x-forwarded-for", forwarded)
                .header("x-real-ip", forwarded)
                .header("forwarded", format!("for={forwarded}"))
                .body(())
                .unwrap()
                .into_parts()
                .0;
            let parts = RequestParts::from((
                parts,
                LocalAddr(Addr::SocketAddr("127.0.0.1:8080".parse().unwrap())),
                RemoteAddr(Addr::SocketAddr(peer.parse().unwrap())),
                poem::http::uri::Scheme::HTTP,
            ));
            app.get_response(Request::from_parts(parts, Body::empty()))
        };
        for (peer, forwarded, status) in [
            ("127.0.0.1:50000", "192.0.2.7", 200),
            ("[::1]:50000", "192.0.2.7", 200),
            ("192.0.2.7:50000", "127.0.0.1", 403),
            ("[2001:db8::1]:50000", "::1", 403),
        ] {
            let response = call(peer, forwarded).await;
            assert_eq!(response.status().as_u16(), status, "{peer}");
        }
        lucent.database().clone().close().await;
    }

    #[test]
    fn methods_are_bounded_labels() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "OTHER");
        assert_eq!(method_label("BREW"), "OTHER");
    }
}
