//! Realtime over HTTP (SPEC §12) with an SSE client: who sees which event (anonymous, the author,
//! another user; field read rules, hidden fields, topic filters), deletes, document topics,
//! credentials bound by the first POST, logout and key revocation closing the stream, a client
//! that does not read being dropped, and `realtime.max_clients` under a race.

use std::io::{Read, Write};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth::{PASSWORD, SECRET};
use crate::helpers::{Server, assert_error, backends, decode};

fn config(extra: &str) -> String {
    format!(
        r#"
[auth]
jwt_secret = "{SECRET}"
{extra}
[collections.users]
auth = true
[collections.users.fields]
name = {{ type = "string" }}
[collections.users.access]
read = "user != null"

[collections.posts.fields]
title  = {{ type = "string", required = true }}
status = {{ type = "select", options = ["draft", "published"], default = "draft" }}
views  = {{ type = "integer", default = 0 }}
body   = {{ type = "text" }}
note   = {{ type = "string", access = {{ read = "user != null && doc.author == user.id" }} }}
secret = {{ type = "string", hidden = true }}
author = {{ type = "relation", to = "users" }}
[collections.posts.access]
read   = "doc.status == 'published' || (user != null && doc.author == user.id)"
create = "true"
update = "user != null && doc.author == user.id"
delete = "user != null && doc.author == user.id"
"#
    )
}

/// One SSE event: its name and its data as JSON.
#[derive(Debug)]
struct Sse {
    event: String,
    data: Value,
}

/// A client of `GET /api/realtime`, reading the stream as it comes.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    id: String,
}

enum Next {
    Event(Sse),
    End,
    Quiet,
}

impl Stream {
    async fn open(server: &Server) -> Stream {
        let response = server
            .client
            .get(server.url("/api/realtime"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut stream = Stream {
            response,
            buffer: String::new(),
            id: String::new(),
        };
        let Next::Event(connect) = stream.next(Duration::from_secs(5)).await else {
            panic!("no connect event");
        };
        assert_eq!(connect.event, "connect");
        stream.id = connect.data["clientId"].as_str().unwrap().to_string();
        stream
    }

    /// The next event within `wait` (heartbeat comments skipped).
    async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = name.to_string();
                    } else if let Some(text) = line.strip_prefix("data: ") {
                        data.push_str(text);
                    }
                }
                if !data.is_empty() {
                    return Next::Event(Sse {
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Next::Quiet,
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None) | Err(_)) => return Next::End,
            }
        }
    }

    async fn event(&mut self) -> Sse {
        match self.next(Duration::from_secs(5)).await {
            Next::Event(event) => event,
            Next::End => panic!("the stream ended"),
            Next::Quiet => panic!("no event within 5 s"),
        }
    }
}

async fn subscribe(
    server: &Server,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, Option<Value>) {
    let mut request = server.client.post(server.url("/api/realtime")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        (!text.is_empty()).then(|| serde_json::from_str(&text).unwrap()),
    )
}

async fn sign_up(server: &Server, email: &str) -> (String, String) {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().into(),
        body["user"]["id"].as_str().unwrap().into(),
    )
}

async fn write(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut request = server.client.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, body) = decode(request.send().await.unwrap()).await;
    assert!(status.is_success(), "{status} {body}");
    body
}

async fn create(server: &Server, token: &str, body: Value) -> String {
    let doc = write(
        server,
        reqwest::Method::POST,
        "/api/posts",
        Some(token),
        Some(body),
    )
    .await;
    doc["doc"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_subscriber_sees_what_its_rules_allow() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let (alice, alice_id) = sign_up(&server, "alice@example.com").await;
        let (bob, _) = sign_up(&server, "bob@example.com").await;

        let mut anonymous = Stream::open(&server).await;
        let mut author = Stream::open(&server).await;
        let mut other = Stream::open(&server).await;
        let mut filtered = Stream::open(&server).await;
        for (stream, token) in [
            (&anonymous, None),
            (&author, Some(alice.as_str())),
            (&other, Some(bob.as_str())),
        ] {
            let (status, body) = subscribe(
                &server,
                token,
                &json!({"clientId": stream.id, "subscriptions": ["posts"]}),
            )
            .await;
            assert_eq!(status, 204, "{body:?}");
        }
        let (status, _) = subscribe(
            &server,
            None,
            &json!({"clientId": filtered.id, "subscriptions": ["posts"], "filters": {"posts": "views >= 10"}}),
        )
        .await;
        assert_eq!(status, 204);

        // A draft: only its author sees it, with the author-only field; never the hidden one.
        let draft = create(
            &server,
            &alice,
            json!({"title": "draft", "note": "mine", "secret": "s", "author": alice_id}),
        )
        .await;
        let event = author.event().await;
        assert_eq!(event.event, "posts");
        assert_eq!(event.data["action"], "create");
        assert_eq!(event.data["record"]["id"], draft);
        assert_eq!(event.data["record"]["note"], "mine");
        assert!(
            event.data["record"].get("secret").is_none(),
            "{:?}",
            event.data
        );

        // Published: everyone sees the update; the note only its author.
        write(
            &server,
            reqwest::Method::PATCH,
            &format!("/api/posts/{draft}"),
            Some(&alice),
            Some(json!({"status": "published"})),
        )
        .await;
        for (stream, note) in [
            (&mut anonymous, false),
            (&mut other, false),
            (&mut author, true),
        ] {
            let event = stream.event().await;
            assert_eq!(event.data["action"], "update", "{event:?}");
            assert_eq!(event.data["record"]["id"], draft);
            assert_eq!(event.data["record"]["status"], "published");
            assert_eq!(
                event.data["record"].get("note").is_some(),
                note,
                "{event:?}"
            );
            assert!(event.data["record"].get("secret").is_none());
        }
        // The filtered client saw neither (views is 0); now one with views 10.
        let popular = create(
            &server,
            &alice,
            json!({"title": "popular", "status": "published", "views": 10, "author": alice_id}),
        )
        .await;
        let event = filtered.event().await;
        assert_eq!(
            (
                event.data["action"].as_str(),
                event.data["record"]["id"].as_str()
            ),
            (Some("create"), Some(popular.as_str()))
        );
        for stream in [&mut anonymous, &mut other, &mut author] {
            assert_eq!(stream.event().await.data["record"]["id"], popular);
        }

        // A delete reaches those who could read the document before it went.
        write(
            &server,
            reqwest::Method::DELETE,
            &format!("/api/posts/{draft}"),
            Some(&alice),
            None,
        )
        .await;
        for stream in [&mut anonymous, &mut other, &mut author] {
            let event = stream.event().await;
            assert_eq!(event.data["action"], "delete");
            assert_eq!(event.data["record"]["id"], draft);
        }
        // A draft deleted: only its author hears of it; the others' next event is the marker.
        let hidden = create(&server, &alice, json!({"title": "d2", "author": alice_id})).await;
        assert_eq!(author.event().await.data["record"]["id"], hidden);
        write(
            &server,
            reqwest::Method::DELETE,
            &format!("/api/posts/{hidden}"),
            Some(&alice),
            None,
        )
        .await;
        let event = author.event().await;
        assert_eq!(
            (
                event.data["action"].as_str(),
                event.data["record"]["id"].as_str()
            ),
            (Some("delete"), Some(hidden.as_str()))
        );
        let marker = create(
            &server,
            &alice,
            json!({"title": "marker", "status": "published", "views": 99, "author": alice_id}),
        )
        .await;
        for stream in [&mut anonymous, &mut other, &mut filtered, &mut author] {
            let event = stream.event().await;
            assert_eq!(event.data["record"]["id"], marker, "{event:?}");
        }

        // A document topic: its events are named after it, and nothing else arrives.
        let mut one = Stream::open(&server).await;
        let topic = format!("posts/{popular}");
        let (status, _) = subscribe(
            &server,
            None,
            &json!({"clientId": one.id, "subscriptions": [topic]}),
        )
        .await;
        assert_eq!(status, 204);
        create(
            &server,
            &alice,
            json!({"title": "other", "status": "published"}),
        )
        .await;
        write(
            &server,
            reqwest::Method::PATCH,
            &format!("/api/posts/{popular}"),
            Some(&alice),
            Some(json!({"views": 11})),
        )
        .await;
        let event = one.event().await;
        assert_eq!(event.event, topic);
        assert_eq!(event.data["record"]["views"], 11);
        assert!(matches!(
            one.next(Duration::from_millis(300)).await,
            Next::Quiet
        ));
    }
}

#[tokio::test]
async fn subscriptions_are_checked_and_bound_to_the_first_credentials() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let (alice, _) = sign_up(&server, "alice@example.com").await;
        let (bob, _) = sign_up(&server, "bob@example.com").await;
        let stream = Stream::open(&server).await;
        let id = stream.id.clone();

        let (status, body) = subscribe(
            &server,
            None,
            &json!({"clientId": "nobody", "subscriptions": ["posts"]}),
        )
        .await;
        assert_error(&(status, body.unwrap()), 404, "not_found");
        for (body, needle) in [
            (
                json!({"clientId": id, "subscriptions": ["nope"]}),
                "unknown collection",
            ),
            (
                json!({"clientId": id, "subscriptions": ["posts/"]}),
                "not a topic",
            ),
            (
                json!({"clientId": id, "subscriptions": ["posts"], "filters": {"posts": "secret == 'x'"}}),
                "unknown field",
            ),
            (
                json!({"clientId": id, "subscriptions": ["posts"], "filters": {"posts": "note == 'x'"}}),
                "unknown field",
            ),
            (
                json!({"clientId": id, "subscriptions": ["posts"], "filters": {"posts": "views =="}}),
                "filter",
            ),
            (
                json!({"clientId": id, "subscriptions": ["posts"], "filters": {"users": "true"}}),
                "not a subscription",
            ),
            (
                json!({"clientId": id, "subscriptions": (0..101).map(|i| format!("posts/{i}")).collect::<Vec<_>>()}),
                "at most 100",
            ),
            (
                json!({"clientId": id, "subscriptions": ["posts"], "expand": {"posts": "author"}}),
                "expand",
            ),
            (json!({"subscriptions": ["posts"]}), "clientId"),
        ] {
            let (status, answer) = subscribe(&server, Some(&alice), &body).await;
            let answer = answer.unwrap();
            let error = assert_error(&(status, answer.clone()), 400, "bad_request");
            assert!(
                error["message"].as_str().unwrap().contains(needle),
                "{body}: {answer}"
            );
        }
        // 100 distinct topics are fine; the first good call binds Alice.
        let (status, _) = subscribe(
            &server,
            Some(&alice),
            &json!({"clientId": id, "subscriptions": (0..100).map(|i| format!("posts/{i}")).collect::<Vec<_>>()}),
        )
        .await;
        assert_eq!(status, 204);
        for token in [Some(bob.as_str()), None] {
            let (status, body) = subscribe(
                &server,
                token,
                &json!({"clientId": id, "subscriptions": []}),
            )
            .await;
            assert_error(&(status, body.unwrap()), 403, "forbidden");
        }
        let (status, body) = subscribe(
            &server,
            Some("not-a-token"),
            &json!({"clientId": id, "subscriptions": []}),
        )
        .await;
        assert_eq!(status, 401, "{body:?}");
        let (status, _) = subscribe(
            &server,
            Some(&alice),
            &json!({"clientId": id, "subscriptions": []}),
        )
        .await;
        assert_eq!(status, 204);
        drop(stream);

        // Both routes are in the OpenAPI document.
        let (_, document) = server.get("/api/openapi.json").await;
        let realtime = &document["paths"]["/api/realtime"];
        assert!(
            realtime["get"]["responses"]["503"].is_object(),
            "{realtime}"
        );
        assert!(
            realtime["post"]["responses"]["204"].is_object(),
            "{realtime}"
        );
        assert!(
            realtime["post"]["responses"]["403"].is_object(),
            "{realtime}"
        );
    }
}

#[tokio::test]
async fn ended_credentials_close_the_stream() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let (alice, alice_id) = sign_up(&server, "alice@example.com").await;

        // A session that logs out.
        let mut session = Stream::open(&server).await;
        let (status, _) = subscribe(
            &server,
            Some(&alice),
            &json!({"clientId": session.id, "subscriptions": ["posts"]}),
        )
        .await;
        assert_eq!(status, 204);
        // An API key with `read`, then revoked.
        let key = write(
            &server,
            reqwest::Method::POST,
            "/api/users/api-keys",
            Some(&alice),
            Some(json!({"name": "live", "scopes": ["read"]})),
        )
        .await;
        let (key_id, key) = (
            key["apiKey"]["id"].as_str().unwrap().to_string(),
            key["apiKey"]["key"].as_str().unwrap().to_string(),
        );
        let mut keyed = Stream::open(&server).await;
        let (status, _) = subscribe(
            &server,
            Some(&key),
            &json!({"clientId": keyed.id, "subscriptions": ["posts"]}),
        )
        .await;
        assert_eq!(status, 204);
        let first = create(&server, &alice, json!({"title": "a", "author": alice_id})).await;
        assert_eq!(session.event().await.data["record"]["id"], first);
        assert_eq!(keyed.event().await.data["record"]["id"], first);

        write(
            &server,
            reqwest::Method::DELETE,
            &format!("/api/users/api-keys/{key_id}"),
            Some(&alice),
            None,
        )
        .await;
        let started = std::time::Instant::now();
        assert!(matches!(
            keyed.next(Duration::from_secs(5)).await,
            Next::End
        ));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );

        write(
            &server,
            reqwest::Method::POST,
            "/api/users/logout",
            Some(&alice),
            None,
        )
        .await;
        // Within the check interval (1 s) the session is seen gone and the stream ends;
        // nothing written later reaches it.
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, body) = server
            .post(
                "/api/users/login",
                &json!({"email": "alice@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let fresh = body["token"].as_str().unwrap().to_string();
        create(
            &server,
            &fresh,
            json!({"title": "after", "author": alice_id}),
        )
        .await;
        match session.next(Duration::from_secs(5)).await {
            Next::End => {}
            Next::Event(event) => panic!("an event after logout: {event:?}"),
            Next::Quiet => panic!("the stream stayed open"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped() {
    let backend = &backends()[0];
    let server = Server::start(backend, &config("")).await;
    let (alice, _) = sign_up(&server, "alice@example.com").await;
    // A raw connection that reads the connect event and then nothing.
    let address = server.base.trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&address).unwrap();
    write!(
        socket,
        "GET /api/realtime HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = vec![0u8; 4096];
    let mut seen = String::new();
    while !seen.contains("clientId") {
        let n = socket.read(&mut head).unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&head[..n]));
    }
    let id = seen
        .split("\"clientId\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let (status, _) = subscribe(
        &server,
        None,
        &json!({"clientId": id, "subscriptions": ["posts"]}),
    )
    .await;
    assert_eq!(status, 204);
    // A reading client beside it receives everything.
    let mut reader = Stream::open(&server).await;
    subscribe(
        &server,
        None,
        &json!({"clientId": reader.id, "subscriptions": ["posts"]}),
    )
    .await;

    let body = "x".repeat(300_000);
    let writes = 100;
    for i in 0..writes {
        create(
            &server,
            &alice,
            json!({"title": format!("p{i}"), "status": "published", "body": body}),
        )
        .await;
        assert_eq!(
            reader.event().await.data["record"]["title"],
            format!("p{i}")
        );
    }
    // Far more than the queue, the server's and the kernel's buffers hold: the silent client
    // was dropped, so what it can still read ends before the last event.
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match socket.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("the dropped client's stream did not end: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&received);
    let events = text.matches("event: posts").count();
    assert!(events < writes, "{events} of {writes} events buffered");
    assert!(!text.contains(&format!("\"title\":\"p{}\"", writes - 1)));
}

#[tokio::test]
async fn max_clients_holds_under_a_race() {
    let backend = &backends()[0];
    let server = Server::start(
        backend,
        &config("[realtime]\nmax_clients = 3\n[metrics]\nenabled = true\n"),
    )
    .await;
    let attempts = (0..10).map(|_| server.client.get(server.url("/api/realtime")).send());
    let responses = futures::future::join_all(attempts).await;
    let mut open = Vec::new();
    let mut refused = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => open.push(response),
            503 => {
                let (status, body) = decode(response).await;
                assert_error(&(status, body), 503, "unavailable");
                refused += 1;
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!((open.len(), refused), (3, 7));
    let metrics = server
        .client
        .get(server.url("/api/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("lucent_realtime_clients 3"), "{metrics}");
}

#[tokio::test]
async fn streams_end_when_the_server_stops() {
    let backend = &backends()[0];
    let mut server = Server::start(backend, &config("")).await;
    let mut stream = Stream::open(&server).await;
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.stop();
        (status, server)
    });
    assert!(matches!(
        stream.next(Duration::from_secs(10)).await,
        Next::End
    ));
    let (status, _server) = status.await.unwrap();
    assert!(status.success(), "{status}");
    // Far below the 30 s drain an open stream would otherwise hold.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
