//! What operators read (SPEC §16): request ids (header, error bodies, log lines), JSON log lines,
//! and `GET /api/metrics` (off by default, loopback-only or token-guarded, counters by route
//! template). Who a scrape is answered from a non-loopback peer is tested in-process in
//! `src/http/metrics.rs`: these tests reach the server over loopback only.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, POSTS, Server, backends, decode};
use crate::serving::Serving;

const MISSING: &str = "/api/posts/0190c2a4-8b6e-7c3d-9f00-123456789abc";

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

/// Status, `X-Request-Id` answered, and body.
async fn get_with_id(server: &Server, path: &str, id: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = server.client.get(server.url(path));
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    let answered = response
        .headers()
        .get("x-request-id")
        .expect("every answer has an X-Request-Id")
        .to_str()
        .unwrap()
        .to_string();
    let (status, body) = decode(response).await;
    (status, answered, body)
}

#[tokio::test]
async fn request_ids_round_trip_and_malformed_ones_are_replaced() {
    let server = Server::start(&Backend::Sqlite, POSTS).await;
    let long = "x".repeat(128);
    for id in ["abc-123.X_y", long.as_str(), "0"] {
        for path in [MISSING, "/api/nowhere/at/all", "/api/posts?limit=zero"] {
            let (status, answered, body) = get_with_id(&server, path, Some(id)).await;
            assert!(status.is_client_error(), "{path}: {status}");
            assert_eq!(answered, id, "{path}");
            assert_eq!(body["error"]["requestId"], id, "{path}: {body}");
        }
        let (status, answered, body) = get_with_id(&server, "/api/posts", Some(id)).await;
        assert_eq!((status.as_u16(), answered.as_str()), (200, id), "{body}");
    }
    let too_long = "x".repeat(129);
    for malformed in ["has space", too_long.as_str(), "semi;colon", "", "ünï"] {
        let (_, answered, body) = get_with_id(&server, MISSING, Some(malformed)).await;
        assert_ne!(answered, malformed);
        assert!(is_uuid(&answered), "{answered}");
        assert_eq!(body["error"]["requestId"], answered.as_str(), "{body}");
    }
    let (_, first, _) = get_with_id(&server, MISSING, None).await;
    let (_, second, _) = get_with_id(&server, MISSING, None).await;
    assert!(is_uuid(&first) && is_uuid(&second) && first != second);
}

#[tokio::test]
async fn json_log_lines_parse_and_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lucent.toml"), POSTS).unwrap();
    // sqlx logs each statement at debug, from inside the request: lines of the request
    // besides its summary.
    let server = Serving::start(
        dir.path(),
        &[
            ("LUCENT_LOG_FORMAT", "json"),
            ("LUCENT_LOG", "info,sqlx::query=debug"),
        ],
    );
    let client = reqwest::Client::new();
    let response = client
        .get(server.url("/api/posts?filter=views%20%3E%2041"))
        .header("x-request-id", "log-check-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let lines = server
        .logs_until(|line| line.contains(r#""message":"request""#) && line.contains("log-check-1"));
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for line in &parsed {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
        assert!(line["fields"].is_object(), "{line}");
    }
    let of_request: Vec<&Value> = parsed
        .iter()
        .filter(|line| line["span"]["request_id"] == "log-check-1")
        .collect();
    let summary = of_request
        .iter()
        .find(|line| line["fields"]["message"] == "request")
        .expect("the request's summary line carries its id");
    assert_eq!(summary["fields"]["status"], 200);
    assert_eq!(
        summary["spans"][0]["request_id"], "log-check-1",
        "{summary}"
    );
    let statements: Vec<&&Value> = of_request
        .iter()
        .filter(|line| line["target"] == "sqlx::query")
        .collect();
    assert!(
        !statements.is_empty(),
        "the request's statement lines carry its id: {parsed:#?}"
    );
    // Every statement of the list (the one filtering on views) was logged inside the request.
    for line in &parsed {
        let statement = line["fields"]["db.statement"].as_str().unwrap_or_default();
        if statement.contains("\"views\" >") {
            assert_eq!(line["span"]["request_id"], "log-check-1", "{line}");
        }
    }

    let response = client
        .get(server.url(MISSING))
        .header("x-request-id", "bad id")
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let lines = server
        .logs_until(|line| line.contains(r#""message":"request""#) && line.contains(&generated));
    let summary: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(summary["span"]["request_id"], generated.as_str());
    assert_eq!(summary["fields"]["status"], 404);
}

/// The value of one series (`name{labels}`) in Prometheus text, 0 when absent.
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

async fn scrape(server: &Server, token: Option<&str>) -> (StatusCode, String) {
    let mut request = server.client.get(server.url("/api/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let server = Server::start(&Backend::Sqlite, POSTS).await;
    let (status, _) = scrape(&server, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    for backend in backends() {
        let config = format!("{POSTS}\n[metrics]\nenabled = true\n");
        let server = Server::start(&backend, &config).await;
        let (status, before) = scrape(&server, None).await;
        assert_eq!(status, 200, "{before}");
        let list = r#"lucent_http_requests_total{method="GET",route="/api/:collection",collection="posts",status="200"}"#;
        let missing = r#"lucent_http_requests_total{method="GET",route="/api/:collection/:id",collection="posts",status="404"}"#;
        let created = r#"lucent_http_requests_total{method="POST",route="/api/:collection",collection="posts",status="201"}"#;
        let unknown = r#"lucent_http_requests_total{method="GET",route="/api/:collection",collection="unknown",status="404"}"#;
        let timed = r#"lucent_http_request_duration_seconds_count{method="GET",route="/api/:collection",collection="posts"}"#;
        server.get("/api/posts").await;
        server.get("/api/posts").await;
        server.get(MISSING).await;
        server.get("/api/no-such-collection").await;
        let (status, _) = server
            .post("/api/posts", &serde_json::json!({"title": "counted"}))
            .await;
        assert_eq!(status, 201);
        let (_, after) = scrape(&server, None).await;
        assert_eq!(series(&after, list) - series(&before, list), 2.0, "{after}");
        assert_eq!(
            series(&after, missing) - series(&before, missing),
            1.0,
            "{after}"
        );
        assert_eq!(
            series(&after, created) - series(&before, created),
            1.0,
            "{after}"
        );
        assert_eq!(
            series(&after, unknown) - series(&before, unknown),
            1.0,
            "{after}"
        );
        assert_eq!(
            series(&after, timed) - series(&before, timed),
            2.0,
            "{after}"
        );
        assert!(
            !after.contains("0190c2a4") && !after.contains("no-such-collection"),
            "raw paths never become labels:\n{after}"
        );
        for pool in ["writer", "readers", "auth"] {
            for state in ["in_use", "idle"] {
                let gauge = format!(r#"lucent_db_connections{{pool="{pool}",state="{state}"}}"#);
                assert!(after.contains(&format!("{gauge} ")), "{gauge} in:\n{after}");
            }
        }
        assert!(
            series(&after, "lucent_password_hashing_capacity") >= 1.0,
            "{after}"
        );
        assert!(
            after.contains("lucent_password_hashing_admitted "),
            "{after}"
        );
        assert!(
            after.contains("# TYPE lucent_http_request_duration_seconds histogram"),
            "{after}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let config = format!("{POSTS}\n[metrics]\nenabled = true\ntoken = \"${{METRICS_TOKEN}}\"\n");
    let token = "a-long-metrics-token-0123456789";
    let server =
        Server::start_with(&Backend::Sqlite, &config, &[], &[("METRICS_TOKEN", token)]).await;
    // Loopback is no exception, and no forwarding header stands in for the token.
    for (bearer, headers) in [
        (None, vec![]),
        (Some("wrong"), vec![]),
        (Some(&token[1..]), vec![]),
        (
            None,
            vec![("x-forwarded-for", "127.0.0.1"), ("x-real-ip", "127.0.0.1")],
        ),
        (None, vec![("forwarded", "for=127.0.0.1")]),
    ] {
        let mut request = server.client.get(server.url("/api/metrics"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let answer = decode(response).await;
        crate::helpers::assert_error(&answer, 401, "unauthorized");
    }
    let (status, text) = scrape(&server, Some(token)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("lucent_http_requests_total"), "{text}");
    assert!(
        text.contains(r#"route="/api/metrics",collection="",status="401"}"#),
        "refused scrapes are counted too:\n{text}"
    );
}
