//! Create, get, update and delete over HTTP: validation, errors, relations, uniqueness races.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, POSTS, Server, assert_error, backends};

async fn user(server: &Server, email: &str) -> String {
    let body = json!({"email": email, "password": "correct horse battery staple"});
    let (status, body) = server.post("/api/users", &body).await;
    assert_eq!(status, 201, "{body}");
    body["doc"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn crud_round_trip() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let author = user(&server, "ann@example.com").await;
        let (status, created) = server
            .post(
                "/api/posts",
                &json!({
                    "title": "Hello", "slug": "hello", "body": "text", "status": "published", "views": 7,
                    "rating": 4.5, "featured": true, "published": "2026-01-02T03:04:05.678+01:00",
                    "meta": {"tags": ["a", "b"], "n": 1}, "contact": "Ann@Example.com", "secret": "s3cret",
                    "author": author,
                }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let doc = &created["doc"];
        let id = doc["id"].as_str().unwrap().to_string();
        assert_eq!(doc["published"], "2026-01-02T02:04:05.678Z");
        assert_eq!(doc["contact"], "ann@example.com");
        assert_eq!(doc["meta"], json!({"tags": ["a", "b"], "n": 1}));
        assert!(doc.get("secret").is_none(), "hidden field returned: {doc}");
        assert_eq!(doc["createdAt"], doc["updatedAt"]);

        let (status, fetched) = server.get(&format!("/api/posts/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(fetched["doc"], *doc, "get returns what create returned");

        let (status, updated) = server
            .patch(
                &format!("/api/posts/{id}"),
                &json!({"views": 8, "body": null}),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["doc"]["views"], 8);
        assert_eq!(updated["doc"]["body"], Value::Null);
        assert_eq!(updated["doc"]["title"], "Hello", "untouched fields stay");
        assert_ne!(updated["doc"]["updatedAt"], doc["updatedAt"]);
        assert_eq!(updated["doc"]["createdAt"], doc["createdAt"]);
        let (_, fetched) = server.get(&format!("/api/posts/{id}")).await;
        assert_eq!(fetched["doc"], updated["doc"], "the update was stored");

        let (status, deleted) = server.delete(&format!("/api/posts/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            deleted["doc"], updated["doc"],
            "delete returns the document as it was"
        );
        assert_error(
            &server.get(&format!("/api/posts/{id}")).await,
            404,
            "not_found",
        );
        assert_error(
            &server.delete(&format!("/api/posts/{id}")).await,
            404,
            "not_found",
        );
        assert_error(
            &server
                .patch(&format!("/api/posts/{id}"), &json!({"views": 1}))
                .await,
            404,
            "not_found",
        );
    }
}

#[tokio::test]
async fn every_failing_field_is_reported_at_once() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let body = json!({
            "title": "x".repeat(21), "slug": "Not A Slug", "status": "archived", "views": -1, "rating": 5.5,
            "featured": "yes", "published": "yesterday", "contact": "nobody", "author": "missing",
            "extra": 1, "id": "mine", "createdAt": "2020-01-01T00:00:00Z",
        });
        let error = assert_error(
            &server.post("/api/posts", &body).await,
            400,
            "validation_failed",
        );
        let mut got: Vec<(String, String)> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["field"].as_str().unwrap().to_string(),
                    d["code"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        got.sort();
        let mut expected: Vec<(String, String)> = [
            ("author", "invalid_relation"),
            ("contact", "invalid_email"),
            ("createdAt", "read_only"),
            ("extra", "unknown_field"),
            ("featured", "invalid_type"),
            ("id", "read_only"),
            ("published", "invalid_type"),
            ("rating", "too_large"),
            ("slug", "pattern_mismatch"),
            ("status", "invalid_option"),
            ("title", "too_long"),
            ("views", "too_small"),
        ]
        .iter()
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .collect();
        expected.sort();
        assert_eq!(got, expected);

        let error = assert_error(
            &server.post("/api/posts", &json!({})).await,
            400,
            "validation_failed",
        );
        assert_eq!(
            error["details"],
            json!([{"field": "title", "code": "required", "message": "title is required"}])
        );
        let (_, list) = server.get("/api/posts").await;
        assert_eq!(
            list["totalDocs"], 0,
            "nothing was written by failed creates"
        );
    }
}

#[tokio::test]
async fn wrong_json_types_and_values_are_validation_errors() {
    let server = Server::start(&Backend::Sqlite, POSTS).await;
    let cases = [
        (json!({"title": 5}), "title", "invalid_type"),
        (json!({"title": "a", "views": 1.5}), "views", "invalid_type"),
        (json!({"title": "a", "views": "3"}), "views", "invalid_type"),
        (
            json!({"title": "a", "views": 9_999_999_999_i64}),
            "views",
            "too_large",
        ),
        (
            json!({"title": "a", "rating": "high"}),
            "rating",
            "invalid_type",
        ),
        (
            json!({"title": "a", "featured": 1}),
            "featured",
            "invalid_type",
        ),
        (
            json!({"title": "a", "author": 42}),
            "author",
            "invalid_type",
        ),
        (
            json!({"title": "a", "secret": 1, "verified": true}),
            "secret",
            "invalid_type",
        ),
        (json!({"title": null}), "title", "required"),
        (json!(["not", "an", "object"]), "", "invalid_type"),
    ];
    for (body, field, code) in cases {
        let error = assert_error(
            &server.post("/api/posts", &body).await,
            400,
            "validation_failed",
        );
        assert!(
            error["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["field"] == field && d["code"] == code),
            "{body} → {error}"
        );
    }
    // Auth fields are Lucent's: not settable through the collection route.
    let error = assert_error(
        &server
            .post("/api/users", &json!({"email": "a@b.io", "verified": true}))
            .await,
        400,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["field"], "verified");
    let error = assert_error(
        &server
            .post("/api/users", &json!({"email": "a@b.io", "resetToken": "x"}))
            .await,
        400,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0]["code"], "unknown_field",
        "secret fields read like unknown ones"
    );
}

#[tokio::test]
async fn update_rules() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let (_, created) = server
            .post(
                "/api/posts",
                &json!({"title": "t", "slug": "a", "rating": 1}),
            )
            .await;
        let id = created["doc"]["id"].as_str().unwrap();
        let path = format!("/api/posts/{id}");
        let error = assert_error(
            &server.patch(&path, &json!({"title": null})).await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"][0]["code"], "required");
        let error = assert_error(
            &server
                .patch(
                    &path,
                    &json!({"updatedAt": "2020-01-01T00:00:00Z", "nope": 1}),
                )
                .await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"].as_array().unwrap().len(), 2);
        let (status, body) = server
            .patch(&path, &json!({"rating": null, "status": "published"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["doc"]["rating"], Value::Null);
        assert_eq!(body["doc"]["status"], "published");
        let (status, body) = server.patch(&path, &json!({})).await;
        assert_eq!(status, 200, "an empty patch only touches updatedAt: {body}");
        assert_eq!(body["doc"]["status"], "published");
    }
}

#[tokio::test]
async fn malformed_requests_get_enveloped_4xx() {
    let server = Server::start(&Backend::Sqlite, POSTS).await;
    let client = &server.client;
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut request = client.request(method, server.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move { crate::helpers::decode(request.send().await.unwrap()).await }
    };
    assert_error(
        &raw(
            Method::POST,
            "/api/posts",
            Some("application/json"),
            b"{\"title\":".to_vec(),
        )
        .await,
        400,
        "bad_request",
    );
    assert_error(
        &raw(
            Method::POST,
            "/api/posts",
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await,
        415,
        "unsupported_media_type",
    );
    assert_error(
        &raw(Method::POST, "/api/posts", None, b"{}".to_vec()).await,
        415,
        "unsupported_media_type",
    );
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = format!("{{\"title\":\"a\",\"meta\":{deep}}}");
    assert_error(
        &raw(
            Method::POST,
            "/api/posts",
            Some("application/json"),
            body.into_bytes(),
        )
        .await,
        400,
        "bad_request",
    );
    // Bodies over the limit: `body_limit_is_configurable` (a large body can be cut off by the
    // server's early 413 before the client has finished sending it).
    assert_error(
        &raw(
            Method::POST,
            "/api/nope",
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &raw(
            Method::PUT,
            "/api/posts",
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await,
        405,
        "method_not_allowed",
    );
    assert_error(&server.get("/api/nope").await, 404, "not_found");
    assert_error(&server.get("/api/nope/1").await, 404, "not_found");
    assert_error(&server.get("/nothing/here").await, 404, "not_found");
    assert_error(&server.get("/api/posts/%00%27%22").await, 404, "not_found");
    let (_, list) = server.get("/api/posts").await;
    assert_eq!(list["totalDocs"], 0);
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let config = format!("[server]\nbody_limit = \"2KiB\"\n{POSTS}");
    let server = Server::start(&Backend::Sqlite, &config).await;
    let (status, _) = server
        .post(
            "/api/posts",
            &json!({"title": "a", "body": "x".repeat(1500)}),
        )
        .await;
    assert_eq!(status, 201);
    assert_error(
        &server
            .post(
                "/api/posts",
                &json!({"title": "a", "body": "x".repeat(2100)}),
            )
            .await,
        413,
        "payload_too_large",
    );
}

#[tokio::test]
async fn relations_check_targets_and_follow_on_delete() {
    let config = r#"
[collections.authors]
access = { read = "true", create = "true", update = "true", delete = "true" }
fields = { name = { type = "string" } }
[collections.books]
access = { read = "true", create = "true", update = "true", delete = "true" }
[collections.books.fields]
title = { type = "string" }
author = { type = "relation", to = "authors" }
keeper = { type = "relation", to = "authors", on_delete = "cascade" }
[collections.loans]
access = { read = "true", create = "true", update = "true", delete = "true" }
fields = { book = { type = "relation", to = "books", on_delete = "restrict" } }
"#;
    for backend in backends() {
        let server = Server::start(&backend, config).await;
        let (_, a) = server.post("/api/authors", &json!({"name": "A"})).await;
        let (_, b) = server.post("/api/authors", &json!({"name": "B"})).await;
        let (a, b) = (
            a["doc"]["id"].as_str().unwrap(),
            b["doc"]["id"].as_str().unwrap(),
        );
        let (status, book) = server
            .post(
                "/api/books",
                &json!({"title": "T", "author": a, "keeper": b}),
            )
            .await;
        assert_eq!(status, 201, "{book}");
        let book_id = book["doc"]["id"].as_str().unwrap();
        let (status, _) = server.post("/api/loans", &json!({"book": book_id})).await;
        assert_eq!(status, 201);

        let error = assert_error(
            &server.post("/api/books", &json!({"author": "nope"})).await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"][0]["code"], "invalid_relation");

        // set_null: the book stays, its author is cleared.
        assert_eq!(server.delete(&format!("/api/authors/{a}")).await.0, 200);
        let (_, book) = server.get(&format!("/api/books/{book_id}")).await;
        assert_eq!(book["doc"]["author"], Value::Null);
        // restrict: the loan keeps the book (and so the keeper) alive.
        assert_error(
            &server.delete(&format!("/api/authors/{b}")).await,
            409,
            "conflict",
        );
        assert_error(
            &server.delete(&format!("/api/books/{book_id}")).await,
            409,
            "conflict",
        );
        assert_eq!(server.get(&format!("/api/books/{book_id}")).await.0, 200);
        // cascade: once the loan is gone, deleting the keeper deletes the book.
        let (_, loans) = server.get("/api/loans").await;
        let loan = loans["docs"][0]["id"].as_str().unwrap();
        assert_eq!(server.delete(&format!("/api/loans/{loan}")).await.0, 200);
        assert_eq!(server.delete(&format!("/api/authors/{b}")).await.0, 200);
        assert_error(
            &server.get(&format!("/api/books/{book_id}")).await,
            404,
            "not_found",
        );
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_unique_value_give_one_201() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let body = json!({"title": "race", "slug": "same"});
        let attempts = (0..16).map(|_| server.post("/api/posts", &body));
        let answers = join_all(attempts).await;
        let created = answers.iter().filter(|a| a.0 == 201).count();
        let conflicts = answers
            .iter()
            .filter(|a| a.0 == 409 && a.1["error"]["details"][0]["field"] == "slug")
            .count();
        assert_eq!((created, conflicts), (1, 15), "{answers:?}");
    }
}

#[tokio::test]
async fn concurrent_writers_never_see_a_locked_database() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let writes = (0..160).map(|i| {
            let server = &server;
            async move {
                if i % 2 == 0 {
                    let body = json!({"title": format!("p{i}"), "slug": format!("p{i}")});
                    server.post("/api/posts", &body).await
                } else {
                    server.get("/api/posts?limit=5").await
                }
            }
        });
        let answers = join_all(writes).await;
        assert!(
            answers.iter().all(|a| a.0.is_success()),
            "{:?}",
            answers.iter().find(|a| !a.0.is_success())
        );
        let (_, list) = server.get("/api/posts").await;
        assert_eq!(list["totalDocs"], 80, "every acknowledged write is stored");
    }
}

#[tokio::test]
async fn data_survives_a_restart_and_shutdown_is_clean() {
    for backend in backends() {
        let mut server = Server::start(&backend, POSTS).await;
        let (_, created) = server
            .post("/api/posts", &json!({"title": "kept", "slug": "kept"}))
            .await;
        let status = server.stop();
        assert!(status.success(), "SIGTERM ends lucent cleanly: {status:?}");
        server.spawn(&[]);
        let (status, fetched) = server
            .get(&format!(
                "/api/posts/{}",
                created["doc"]["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(fetched["doc"], created["doc"]);
        if matches!(backend, Backend::Sqlite) {
            assert!(
                server.path().join("data/lucent.db").exists(),
                "the default SQLite file is in data/"
            );
        }
    }
}

#[tokio::test]
async fn a_killed_server_keeps_every_acknowledged_write() {
    for backend in backends() {
        let mut server = Server::start(&backend, POSTS).await;
        let writes = (0..200).map(|i| {
            let server = &server;
            async move {
                let body = json!({"title": format!("k{i}")});
                let request = server
                    .client
                    .post(server.url("/api/posts"))
                    .json(&body)
                    .send();
                match request.await {
                    Ok(response) if response.status() == 201 => {
                        let doc: Value = response.json().await.ok()?;
                        doc["doc"]["id"].as_str().map(str::to_string)
                    }
                    _ => None,
                }
            }
        });
        let load = join_all(writes);
        let pid = server.pid().to_string();
        let kill = async {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap();
        };
        let (acknowledged, ()) = tokio::join!(load, kill);
        server.kill(); // reaps the killed process
        let acknowledged: Vec<String> = acknowledged.into_iter().flatten().collect();
        server.spawn(&[]);
        for id in &acknowledged {
            assert_eq!(
                server.get(&format!("/api/posts/{id}")).await.0,
                200,
                "acknowledged write {id} lost"
            );
        }
        eprintln!(
            "{} of 200 writes acknowledged before kill -9, all kept",
            acknowledged.len()
        );
    }
}

/// SIGTERM right after `listening on` is printed still shuts down cleanly: the handler is in
/// place before the address is announced (it used to be installed only once serving began, so
/// such a signal killed the process).
#[tokio::test]
async fn sigterm_at_once_is_a_clean_shutdown() {
    for _ in 0..20 {
        let mut server = Server::start(&Backend::Sqlite, POSTS).await;
        let status = server.stop();
        assert!(status.success(), "{status:?}");
    }
}
