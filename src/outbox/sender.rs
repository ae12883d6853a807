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
    timeout: Duration,
}

impl Poster {
    pub fn new() -> Self {
        Self::with_timeout(TIMEOUT)
    }

    fn with_timeout(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Lucent-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a client without custom TLS roots builds");
        Self { client, timeout }
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
            .map_err(|e| self.describe(e))?;
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

impl Poster {
    /// A transport failure, in words without the URL (it may hold credentials).
    fn describe(&self, error: reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("no answer within {:?}", self.timeout);
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
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    /// A listener that answers every connection with `answer` after reading the request (or
    /// never answers, for `None`).
    async fn listener(answer: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://user:hunter2@{}/hook",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    match answer {
                        Some(answer) => {
                            let _ = stream.write_all(answer.as_bytes()).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn only_2xx_is_success_and_errors_hide_the_url() {
        let poster = Poster::with_timeout(Duration::from_millis(300));
        let ok = listener(Some("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")).await;
        assert_eq!(poster.post(&ok, &secret(), "row", "{}").await, Ok(()));
        let moved = listener(Some(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/\r\ncontent-length: 0\r\n\r\n",
        ))
        .await;
        assert_eq!(
            poster.post(&moved, &secret(), "row", "{}").await,
            Err("the receiver answered HTTP 302".into()),
            "redirects are not followed"
        );
        let silent = listener(None).await;
        let started = std::time::Instant::now();
        assert_eq!(
            poster.post(&silent, &secret(), "row", "{}").await,
            Err("no answer within 300ms".into())
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            format!("http://user:hunter2@{}/", listener.local_addr().unwrap())
        };
        let refused = poster
            .post(&closed, &secret(), "row", "{}")
            .await
            .unwrap_err();
        assert!(
            !refused.contains("hunter2") && !refused.contains("127.0.0.1"),
            "{refused}"
        );
    }
}
