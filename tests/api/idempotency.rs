//! `Idempotency-Key` on the collection routes (SPEC §10), over HTTP on SQLite and PostgreSQL:
//! a retry gets the stored answer byte for byte and nothing is done twice; a key reused for
//! another request is 422; a retry while the first runs is 409; a 5xx, a client that leaves and a
//! crashed instance leave the key free again; callers never see each other's answers; concurrent
//! duplicates write once, on one instance and on two sharing a PostgreSQL database; expired
//! answers are forgotten and pruned.
//!
//! The first request of a key is held in flight with the server's test gate
//! (`LUCENT_TEST_IDEMPOTENCY_GATE`): it writes `held` in a folder once it has claimed its key and
//! waits for `release` there, so the tests wait on files, never on time.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use reqwest::{Method, StatusCode};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::helpers::{Backend, Server, assert_error, backends};

const CONFIG: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"
[collections.users]
auth = true
[collections.users.access]
read = "true"
[collections.posts.fields]
title = { type = "string", required = true, max_length = 20 }
[collections.posts.access]
read = "true"
create = "true"
update = "user != null"
delete = "user != null"
"#;

const TABLE: &str = "_lucent_idempotency_keys";

/// An answer as sent: status, headers and the body's bytes.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn replayed(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }

    fn error(&self, status: u16, code: &str) -> Value {
        assert_error(&(self.status, self.json()), status, code)
    }
}

/// A request with an optional bearer credential, `Idempotency-Key` and JSON body.
#[derive(Clone)]
struct Call<'a> {
    method: Method,
    path: &'a str,
    token: Option<&'a str>,
    key: Option<&'a str>,
    body: Option<Value>,
}

fn post<'a>(token: &'a str, key: &'a str, body: Value) -> Call<'a> {
    Call {
        method: Method::POST,
        path: "/api/posts",
        token: Some(token),
        key: Some(key),
        body: Some(body),
    }
}

async fn send(server: &Server, call: &Call<'_>) -> Answer {
    let mut request = server
        .client
        .request(call.method.clone(), server.url(call.path));
    if let Some(token) = call.token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = call.key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        bytes: response.bytes().await.expect("body").to_vec(),
    }
}

/// A bearer token of a new account `email`.
async fn sign_up(server: &Server, email: &str) -> String {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn count_posts(server: &Server) -> u64 {
    let (status, page) = server.get("/api/posts").await;
    assert_eq!(status, 200, "{page}");
    page["totalDocs"].as_u64().unwrap()
}

async fn stored_rows(db: &DatabaseConnection) -> i64 {
    let mut count = Query::select();
    count.expr(Expr::cust("COUNT(*)")).from(Alias::new(TABLE));
    db.query_one(&count)
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap()
}

/// Moves a timestamp column of every stored key into the past (as if that much time had gone).
async fn age(db: &DatabaseConnection, column: &str) {
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut update = Query::update();
    update
        .table(Alias::new(TABLE))
        .value(Alias::new(column), past);
    db.execute(&update).await.unwrap();
}

/// Waits until `condition` holds (checked every 10 ms, for at most 30 s).
async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..3000 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A server whose claimed requests wait at the test gate in `gate`.
async fn gated(backend: &Backend, gate: &Path) -> Server {
    Server::start_with(
        backend,
        CONFIG,
        &[],
        &[("LUCENT_TEST_IDEMPOTENCY_GATE", gate.to_str().unwrap())],
    )
    .await
}

/// Another server on the PostgreSQL database of `first`, with the same environment.
async fn second_instance(first: &Server, env: &[(&str, &str)]) -> Server {
    let mut second = Server::prepare(&Backend::Sqlite, CONFIG, &[]);
    second.database_url = first.database_url.clone();
    second.spawn(env);
    second
}

#[tokio::test]
async fn a_retry_gets_the_stored_answer_and_the_work_is_done_once() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let token = sign_up(&server, "ann@example.com").await;

        // A create, sent twice: one document, the same answer byte for byte, marked replayed.
        let create = post(&token, "create-1", json!({"title": "first"}));
        let first = send(&server, &create).await;
        assert_eq!(first.status, 201, "{first:?}");
        assert!(!first.replayed());
        let again = send(&server, &create).await;
        assert_eq!(again.status, 201, "{again:?}");
        assert!(again.replayed(), "{again:?}");
        assert_eq!(again.bytes, first.bytes);
        assert_eq!(again.header("location"), first.header("location"));
        assert!(first.header("location").is_some());
        assert_eq!(again.header("content-type"), Some("application/json"));
        assert_eq!(count_posts(&server).await, 1);
        let id = first.json()["doc"]["id"].as_str().unwrap().to_string();
        let path = format!("/api/posts/{id}");

        // An update, replayed after the document changed again: the stored answer, and the
        // replay changed nothing.
        let update = Call {
            method: Method::PATCH,
            path: &path,
            token: Some(&token),
            key: Some("update-1"),
            body: Some(json!({"title": "second"})),
        };
        let updated = send(&server, &update).await;
        assert_eq!(updated.status, 200, "{updated:?}");
        let (status, _) = server
            .request(Method::PATCH, &path, Some(&json!({"title": "third"})))
            .await;
        assert_eq!(status, 401, "updates need a user");
        let changed = send(
            &server,
            &Call {
                key: None,
                body: Some(json!({"title": "third"})),
                ..update.clone()
            },
        )
        .await;
        assert_eq!(changed.status, 200, "{changed:?}");
        let replayed = send(&server, &update).await;
        assert!(replayed.replayed(), "{replayed:?}");
        assert_eq!(replayed.bytes, updated.bytes);
        let (_, now) = server.get(&path).await;
        assert_eq!(now["doc"]["title"], "third", "the replay wrote nothing");

        // A delete, replayed: its stored 200, not the 404 a second delete would get.
        let delete = Call {
            method: Method::DELETE,
            path: &path,
            token: Some(&token),
            key: Some("delete-1"),
            body: None,
        };
        let deleted = send(&server, &delete).await;
        assert_eq!(deleted.status, 200, "{deleted:?}");
        let replayed = send(&server, &delete).await;
        assert_eq!(replayed.status, 200, "{replayed:?}");
        assert!(replayed.replayed());
        assert_eq!(replayed.bytes, deleted.bytes);
        assert_eq!(count_posts(&server).await, 0);

        // A 4xx is an answer too: stored and replayed, request id of the first included.
        let invalid = post(
            &token,
            "invalid-1",
            json!({"title": "a title over twenty chars"}),
        );
        let refused = send(&server, &invalid).await;
        refused.error(400, "validation_failed");
        let replayed = send(&server, &invalid).await;
        assert!(replayed.replayed(), "{replayed:?}");
        assert_eq!(replayed.status, 400);
        assert_eq!(replayed.bytes, refused.bytes);

        // Without a key nothing is stored: two creates, two documents.
        for _ in 0..2 {
            let (status, _) = server
                .request(Method::POST, "/api/posts", Some(&json!({"title": "free"})))
                .await;
            assert_eq!(status, 201);
        }
        assert_eq!(count_posts(&server).await, 2);
    }
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_422() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let token = sign_up(&server, "ann@example.com").await;
        let first = send(&server, &post(&token, "k", json!({"title": "one"}))).await;
        assert_eq!(first.status, 201);
        let id = first.json()["doc"]["id"].as_str().unwrap().to_string();
        let path = format!("/api/posts/{id}");
        for other in [
            post(&token, "k", json!({"title": "two"})),
            post(&token, "k", json!({"title":  "one", "x": 1})),
            Call {
                method: Method::PATCH,
                path: &path,
                token: Some(&token),
                key: Some("k"),
                body: Some(json!({"title": "one"})),
            },
            Call {
                method: Method::DELETE,
                path: &path,
                token: Some(&token),
                key: Some("k"),
                body: None,
            },
        ] {
            send(&server, &other)
                .await
                .error(422, "idempotency_mismatch");
        }
        // Nothing was done: the document is as created, and alone.
        let (_, doc) = server.get(&path).await;
        assert_eq!(doc["doc"]["title"], "one");
        assert_eq!(count_posts(&server).await, 1);
        // The first request still gets its answer.
        let again = send(&server, &post(&token, "k", json!({"title": "one"}))).await;
        assert!(again.replayed());
        assert_eq!(again.bytes, first.bytes);
    }
}

#[tokio::test]
async fn malformed_keys_and_anonymous_keys_are_400() {
    let server = Server::start(&Backend::Sqlite, CONFIG).await;
    let token = sign_up(&server, "ann@example.com").await;
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "tab\there"] {
        let answer = send(&server, &post(&token, key, json!({"title": "x"}))).await;
        let error = answer.error(400, "bad_request");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{error}"
        );
    }
    // Not ASCII (bytes reqwest sends as they are).
    let answer = server
        .client
        .post(server.url("/api/posts"))
        .bearer_auth(&token)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Twice.
    let answer = server
        .client
        .post(server.url("/api/posts"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Anonymous callers cannot be told apart: no key for them (their creates work without).
    let anonymous = send(
        &server,
        &Call {
            token: None,
            ..post("", "anonymous-1", json!({"title": "x"}))
        },
    )
    .await;
    let error = anonymous.error(400, "bad_request");
    assert!(
        error["message"].as_str().unwrap().contains("credentials"),
        "{error}"
    );
    assert_eq!(count_posts(&server).await, 0, "nothing was created");
    // 255 printable characters, spaces inside, is a key; so is a quoted one.
    let longest = "k".repeat(255);
    for key in [longest.as_str(), "a key with spaces", "\"quoted\""] {
        let answer = send(&server, &post(&token, key, json!({"title": "x"}))).await;
        assert_eq!(answer.status, 201, "{key}: {answer:?}");
    }
    // Routes that do not take a key ignore it.
    let listed = server
        .client
        .get(server.url("/api/posts"))
        .header("Idempotency-Key", "")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn callers_never_see_each_others_answers() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = sign_up(&server, "ann@example.com").await;
        let bob = sign_up(&server, "bob@example.com").await;
        let (status, key) = crate::helpers::decode(
            server
                .client
                .post(server.url("/api/users/api-keys"))
                .bearer_auth(&ann)
                .json(&json!({"name": "script"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{key}");
        let ann_key = key["apiKey"]["key"].as_str().unwrap().to_string();

        let body = json!({"title": "same"});
        let by_ann = send(&server, &post(&ann, "shared", body.clone())).await;
        assert_eq!(by_ann.status, 201);
        // Bob, and Ann's API key, with the same key and body: their own first requests.
        let by_bob = send(&server, &post(&bob, "shared", body.clone())).await;
        assert_eq!(by_bob.status, 201, "{by_bob:?}");
        assert!(!by_bob.replayed());
        assert_ne!(by_bob.json()["doc"]["id"], by_ann.json()["doc"]["id"]);
        let by_key = send(&server, &post(&ann_key, "shared", body.clone())).await;
        assert_eq!(by_key.status, 201, "{by_key:?}");
        assert!(!by_key.replayed());
        assert_ne!(by_key.json()["doc"]["id"], by_ann.json()["doc"]["id"]);
        assert_ne!(by_key.json()["doc"]["id"], by_bob.json()["doc"]["id"]);
        // Another caller's key never clashes: another body is not a mismatch for Bob.
        let other = send(&server, &post(&bob, "only-ann", json!({"title": "bob's"}))).await;
        assert_eq!(other.status, 201);
        let mine = send(&server, &post(&ann, "only-ann", json!({"title": "ann's"}))).await;
        assert_eq!(mine.status, 201, "{mine:?}");
        assert!(!mine.replayed());
        // Each gets their own answer back.
        for (token, first) in [(&ann, &by_ann), (&bob, &by_bob), (&ann_key, &by_key)] {
            let again = send(&server, &post(token, "shared", body.clone())).await;
            assert!(again.replayed());
            assert_eq!(again.bytes, first.bytes);
        }
        // Another session of the same account is the same caller.
        let (status, login) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200);
        let again = send(
            &server,
            &post(login["token"].as_str().unwrap(), "shared", body.clone()),
        )
        .await;
        assert!(again.replayed());
        assert_eq!(again.bytes, by_ann.bytes);
        assert_eq!(count_posts(&server).await, 5);
    }
}

#[tokio::test]
async fn a_5xx_is_not_stored() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let token = sign_up(&server, "ann@example.com").await;
        let db = server.connect_database().await;
        // The table out of the way: the create fails with a 500.
        db.execute_unprepared("ALTER TABLE posts RENAME TO posts_away")
            .await
            .unwrap();
        let create = post(&token, "k", json!({"title": "x"}));
        let failed = send(&server, &create).await;
        failed.error(500, "internal");
        assert_eq!(stored_rows(&db).await, 0, "the key was let go");
        db.execute_unprepared("ALTER TABLE posts_away RENAME TO posts")
            .await
            .unwrap();
        // The retry runs, and is then what is stored.
        let retried = send(&server, &create).await;
        assert_eq!(retried.status, 201, "{retried:?}");
        assert!(!retried.replayed());
        let again = send(&server, &create).await;
        assert!(again.replayed());
        assert_eq!(again.bytes, retried.bytes);
        assert_eq!(count_posts(&server).await, 1);
        db.close().await.ok();
    }
}

#[tokio::test]
async fn a_retry_while_the_first_runs_is_409() {
    for backend in backends() {
        let gate = tempfile::tempdir().unwrap();
        let server = gated(&backend, gate.path()).await;
        let token = sign_up(&server, "ann@example.com").await;
        let create = post(&token, "k", json!({"title": "slow"}));
        let first = {
            let (client, url, token) = (
                server.client.clone(),
                server.url("/api/posts"),
                token.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "k")
                    .json(&json!({"title": "slow"}))
                    .send()
                    .await
                    .unwrap()
            })
        };
        until("the first request to hold its key", async || {
            gate.path().join("held").exists()
        })
        .await;
        let retry = send(&server, &create).await;
        retry.error(409, "idempotency_in_progress");
        assert_eq!(retry.header("retry-after"), Some("1"));
        // Another request with the key is a mismatch, running or not.
        send(&server, &post(&token, "k", json!({"title": "other"})))
            .await
            .error(422, "idempotency_mismatch");
        assert_eq!(
            count_posts(&server).await,
            0,
            "the first has not written yet"
        );

        std::fs::write(gate.path().join("release"), "").unwrap();
        let first = first.await.unwrap();
        assert_eq!(first.status(), 201);
        let first = first.bytes().await.unwrap();
        let again = send(&server, &create).await;
        assert!(again.replayed());
        assert_eq!(again.bytes, first.to_vec());
        assert_eq!(count_posts(&server).await, 1);
    }
}

#[tokio::test]
async fn a_client_that_leaves_lets_its_key_go() {
    for backend in backends() {
        let gate = tempfile::tempdir().unwrap();
        let server = gated(&backend, gate.path()).await;
        let token = sign_up(&server, "ann@example.com").await;
        let db = server.connect_database().await;
        let create = post(&token, "k", json!({"title": "left"}));
        let leaving = {
            let (client, url, token) = (
                server.client.clone(),
                server.url("/api/posts"),
                token.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "k")
                    .json(&json!({"title": "left"}))
                    .send()
                    .await
            })
        };
        until("the request to hold its key", async || {
            gate.path().join("held").exists()
        })
        .await;
        assert_eq!(stored_rows(&db).await, 1);
        // The client goes away: its connection closes, the server drops the handler.
        leaving.abort();
        until("the abandoned key to be let go", async || {
            stored_rows(&db).await == 0
        })
        .await;
        std::fs::write(gate.path().join("release"), "").unwrap();
        let retried = send(&server, &create).await;
        assert_eq!(retried.status, 201, "{retried:?}");
        assert!(!retried.replayed());
        assert_eq!(count_posts(&server).await, 1);
        db.close().await.ok();
    }
}

#[tokio::test]
async fn a_crashed_instances_claim_lapses() {
    for backend in backends() {
        let gate = tempfile::tempdir().unwrap();
        let mut server = gated(&backend, gate.path()).await;
        let token = sign_up(&server, "ann@example.com").await;
        let db = server.connect_database().await;
        let create = post(&token, "k", json!({"title": "crash"}));
        let lost = {
            let (client, url, token) = (
                server.client.clone(),
                server.url("/api/posts"),
                token.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "k")
                    .json(&json!({"title": "crash"}))
                    .send()
                    .await
            })
        };
        until("the request to hold its key", async || {
            gate.path().join("held").exists()
        })
        .await;
        server.kill();
        assert!(
            lost.await.unwrap().is_err(),
            "the connection died with the server"
        );
        server.spawn(&[]);
        // The dead claim holds until its lease lapses...
        send(&server, &create)
            .await
            .error(409, "idempotency_in_progress");
        // ...which it has once its lease is in the past: the retry takes the key over.
        age(&db, "lease_until").await;
        let retried = send(&server, &create).await;
        assert_eq!(retried.status, 201, "{retried:?}");
        assert!(!retried.replayed());
        let again = send(&server, &create).await;
        assert!(again.replayed());
        assert_eq!(again.bytes, retried.bytes);
        assert_eq!(count_posts(&server).await, 1);
        db.close().await.ok();
    }
}

/// `count` identical creates with one key at once, spread over `servers`: one is done, each of
/// the others is a 409 or the replayed answer. Returns the answers.
async fn duplicates(servers: &[&Server], token: &str, key: &str, count: usize) -> Vec<Answer> {
    let create = post(token, key, json!({"title": "once"}));
    let answers: Vec<Answer> =
        futures::future::join_all((0..count).map(|i| send(servers[i % servers.len()], &create)))
            .await;
    let done: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == 201 && !a.replayed())
        .collect();
    assert_eq!(done.len(), 1, "{answers:?}");
    for answer in &answers {
        match answer.status.as_u16() {
            201 => assert_eq!(answer.bytes, done[0].bytes),
            _ => {
                answer.error(409, "idempotency_in_progress");
            }
        }
    }
    answers
}

#[tokio::test]
async fn concurrent_duplicates_write_once() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let token = sign_up(&server, "ann@example.com").await;
        duplicates(&[&server], &token, "one-instance", 20).await;
        assert_eq!(count_posts(&server).await, 1);

        if let Backend::Postgres(_) = backend {
            let mut second = second_instance(&server, &[]).await;
            duplicates(&[&server, &second], &token, "two-instances", 20).await;
            assert_eq!(count_posts(&server).await, 2);
            second.database_url = None; // the database belongs to `server`, which drops it
        }
    }
}

/// 20 duplicates while the first is held: exactly one claims the key (19 are told 409 while it
/// waits), and after the release one document exists. On PostgreSQL the 20 are spread over two
/// instances.
#[tokio::test]
async fn concurrent_duplicates_held_in_flight_get_409() {
    for backend in backends() {
        let gate = tempfile::tempdir().unwrap();
        let env = [(
            "LUCENT_TEST_IDEMPOTENCY_GATE",
            gate.path().to_str().unwrap(),
        )];
        let server = Server::start_with(&backend, CONFIG, &[], &env).await;
        let mut second = match backend {
            Backend::Postgres(_) => Some(second_instance(&server, &env).await),
            Backend::Sqlite => None,
        };
        let servers: Vec<&Server> = std::iter::once(&server).chain(second.as_ref()).collect();
        let token = sign_up(&server, "ann@example.com").await;
        let create = post(&token, "k", json!({"title": "held"}));
        let mut answers: FuturesUnordered<_> = (0..20)
            .map(|i| send(servers[i % servers.len()], &create))
            .collect();
        // (A time limit only so that two claims, which would both wait, fail the test.)
        for _ in 0..19 {
            let answer = tokio::time::timeout(Duration::from_secs(60), answers.next())
                .await
                .expect("19 answers while one request holds the key")
                .expect("20 answers");
            answer.error(409, "idempotency_in_progress");
        }
        assert!(gate.path().join("held").exists());
        std::fs::write(gate.path().join("release"), "").unwrap();
        let done = answers.next().await.expect("the held one");
        assert_eq!(done.status, 201, "{done:?}");
        assert!(!done.replayed());
        assert_eq!(count_posts(&server).await, 1);
        drop(answers);
        drop(servers);
        if let Some(second) = &mut second {
            second.database_url = None; // the database belongs to `server`, which drops it
        }
    }
}

#[tokio::test]
async fn expired_answers_are_forgotten_and_pruned() {
    for backend in backends() {
        let mut server = Server::start(&backend, CONFIG).await;
        let token = sign_up(&server, "ann@example.com").await;
        let db = server.connect_database().await;
        let first = send(&server, &post(&token, "old", json!({"title": "one"}))).await;
        assert_eq!(first.status, 201);
        age(&db, "expires_at").await;
        // An expired answer is gone: the key is free, even for another request.
        let reused = send(&server, &post(&token, "old", json!({"title": "two"}))).await;
        assert_eq!(reused.status, 201, "{reused:?}");
        assert!(!reused.replayed());
        assert_eq!(count_posts(&server).await, 2);

        // Expired rows are deleted when a new key is claimed (at most once a minute per
        // instance: a restarted one prunes at its first claim).
        age(&db, "expires_at").await;
        assert_eq!(stored_rows(&db).await, 1);
        server.stop();
        server.spawn(&[]);
        let new = send(&server, &post(&token, "new", json!({"title": "three"}))).await;
        assert_eq!(new.status, 201);
        assert_eq!(stored_rows(&db).await, 1, "only the new key is left");
        db.close().await.ok();
    }
}

/// `POST /api/batch` takes the key like a single write: a retry gets the stored answer and the
/// batch's documents exist once; concurrent duplicates of a batch run it once; the same key with
/// another batch is 422.
#[tokio::test]
async fn a_batch_is_done_once_per_key() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let token = sign_up(&server, "ann@example.com").await;
        let batch = json!({"requests": [
            {"method": "POST", "url": "/api/posts", "body": {"title": "one"}},
            {"method": "POST", "url": "/api/posts", "body": {"title": "two"}},
        ]});
        let call = Call {
            method: Method::POST,
            path: "/api/batch",
            token: Some(&token),
            key: Some("batch-1"),
            body: Some(batch.clone()),
        };
        let first = send(&server, &call).await;
        assert_eq!(first.status, 200, "{:?}", first.json());
        assert!(!first.replayed());
        let again = send(&server, &call).await;
        assert_eq!(again.status, 200);
        assert!(again.replayed());
        assert_eq!(again.bytes, first.bytes);
        assert_eq!(count_posts(&server).await, 2);

        let other = Call {
            body: Some(json!({"requests": [
                {"method": "POST", "url": "/api/posts", "body": {"title": "three"}},
            ]})),
            ..call.clone()
        };
        send(&server, &other)
            .await
            .error(422, "idempotency_mismatch");
        assert_eq!(count_posts(&server).await, 2);

        let concurrent = Call {
            key: Some("batch-2"),
            ..call.clone()
        };
        let answers: Vec<Answer> = (0..10)
            .map(|_| send(&server, &concurrent))
            .collect::<FuturesUnordered<_>>()
            .collect()
            .await;
        for answer in &answers {
            assert!(
                answer.status == 200 || answer.status == 409,
                "{:?}",
                answer.json()
            );
        }
        assert_eq!(count_posts(&server).await, 4, "the second batch ran once");
    }
}
