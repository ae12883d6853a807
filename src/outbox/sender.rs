//! Posting one webhook message: the body as it was written to the outbox, signed now (a
//! Standard Webhooks timestamp is the attempt's), within 10 s, redirects not followed. A 2xx
//! answer is success; any other answer, a timeout or a connection failure is a failed attempt.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::signature::{message_id, sign};
use crate::config::WebhookSecret;

/// How long one attempt may take, connecting included (SPEC §13).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a receiver's answer read (then the connection is dropped rather than drained).
const ANSWER_BYTES: usize = 64 * 1024;

/// The HTTP client of a worker: one connection pool for every receiver.
#[derive(Debug, Clone)]
pub struct Poster {
    client: reqwest::Client,
}

impl Poster {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Lucent-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a client without custom TLS roots builds");
        Self { client }
    }

    /// Posts `body` to `url` as the message of outbox row `row_id`.
    ///
    /// # Errors
    /// Why the attempt failed: the status of a non-2xx answer, or the transport's error
    /// (without the URL, which may hold credentials).
    pub async fn post(
        &self,
        url: &str,
        secret: &WebhookSecret,
        row_id: &str,
        body: &str,
    ) -> Result<(), String> {
        let id = message_id(row_id);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(secret, &id, timestamp, body.as_bytes());
        let mut response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        // Read a little of the answer so the connection can serve the next message.
        let mut read = 0;
        while read < ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }
}

impl Default for Poster {
    fn default() -> Self {
        Self::new()
    }
}

fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
