//! A webhook receiver for tests: a small HTTP server on a loopback port that records every
//! request it gets (path, headers, body) and answers with the statuses the test chooses.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

#[derive(Debug, Default)]
struct State {
    deliveries: Vec<Delivery>,
    /// Statuses for the next requests, in order; then `usual`.
    next: VecDeque<u16>,
    usual: u16,
    /// How long each answer takes.
    delay: Duration,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Starts listening; answers 200 unless told otherwise.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            usual: 200,
            ..State::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { base, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The status of every answer from now on (after any queued by [`Receiver::then`]).
    pub fn answer(&self, status: u16) {
        self.state.lock().unwrap().usual = status;
    }

    /// The statuses of the next answers, in order.
    pub fn then(&self, statuses: &[u16]) {
        self.state.lock().unwrap().next.extend(statuses);
    }

    /// How long each answer takes.
    pub fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Every request to `path` so far.
    pub fn at(&self, path: &str) -> Vec<Delivery> {
        let state = self.state.lock().unwrap();
        state
            .deliveries
            .iter()
            .filter(|d| d.path == path)
            .cloned()
            .collect()
    }

    /// Waits (at most `within`) until `path` got `count` requests; returns them.
    pub async fn wait_within(&self, path: &str, count: usize, within: Duration) -> Vec<Delivery> {
        let started = Instant::now();
        loop {
            let got = self.at(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                started.elapsed() < within,
                "{path} got {} request(s), expected {count}: {:#?}",
                got.len(),
                got.iter().map(|d| &d.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// [`Receiver::wait_within`] 20 s.
    pub async fn wait(&self, path: &str, count: usize) -> Vec<Delivery> {
        self.wait_within(path, count, Duration::from_secs(20)).await
    }
}

async fn answer(state: &Mutex<State>, request: Request<Incoming>) -> Response<String> {
    let at = Instant::now();
    let path = request.uri().path().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                value.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let (status, delay) = {
        let mut state = state.lock().unwrap();
        state.deliveries.push(Delivery {
            path,
            headers,
            body,
            at,
        });
        let status = state.next.pop_front().unwrap_or(state.usual);
        (status, state.delay)
    };
    tokio::time::sleep(delay).await;
    let mut response = Response::new(String::from("ok"));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}
