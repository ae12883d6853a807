//! `POST /api/batch` over HTTP on SQLite and PostgreSQL: all or nothing, the failing request
//! named, the same credentials, rules, validation and answers as the single routes, the refused
//! shapes and `server.max_batch`, single writes beside batches, and no deadlock on PostgreSQL.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, SECRET, register};
use crate::helpers::{Backend, Server, assert_error, backends, decode};

fn config() -> String {
    format!(
        r#"
[server]
max_batch = 5
[auth]
jwt_secret = "{SECRET}"
[collections.users]
auth = true
[collections.users.fields]
name = {{ type = "string", max_length = 100 }}
role = {{ type = "select", options = ["admin", "user"], default = "user", access = {{ create = "user.role == 'admin'", update = "user.role == 'admin'" }} }}
[collections.users.access]
read = "true"
update = "user != null && doc.id == user.id"
delete = "user != null && doc.id == user.id"

[collections.posts.fields]
title  = {{ type = "string", required = true, max_length = 20 }}
slug   = {{ type = "string", unique = true }}
views  = {{ type = "integer", default = 0, min = 0 }}
secret = {{ type = "string", hidden = true }}
owner  = {{ type = "relation", to = "users" }}
[collections.posts.access]
read   = "true"
create = "user != null && (user.scopes == null || 'write' in user.scopes)"
update = "user != null && doc.owner == user.id"
delete = "user != null && doc.owner == user.id"
"#
    )
}

/// A request with an optional bearer credential.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    credential: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    decode(request.send().await.unwrap()).await
}

async fn batch(server: &Server, credential: Option<&str>, requests: Value) -> (StatusCode, Value) {
    let body = json!({ "requests": requests });
    call(server, Method::POST, "/api/batch", credential, Some(&body)).await
}

/// A signed-up account: its id and token.
async fn account(server: &Server, email: &str) -> (String, String) {
    let answer = register(server, email).await;
    (
        answer["user"]["id"].as_str().unwrap().to_string(),
        answer["token"].as_str().unwrap().to_string(),
    )
}

async fn new_post(server: &Server, token: &str, body: Value) -> String {
    let (status, answer) = call(server, Method::POST, "/api/posts", Some(token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    answer["doc"]["id"].as_str().unwrap().to_string()
}

async fn total_posts(server: &Server) -> u64 {
    let (status, page) = server.get("/api/posts?limit=1").await;
    assert_eq!(status, 200, "{page}");
    page["totalDocs"].as_u64().unwrap()
}

/// The `field code` of each detail of an error answer.
fn details(answer: &(StatusCode, Value)) -> Vec<String> {
    answer.1["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["field"].as_str().unwrap(),
                d["code"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn all_or_nothing_and_the_failing_request_is_named() {
    for backend in backends() {
        let server = Server::start(&backend, &config()).await;
        let (ann, token) = account(&server, "ann@example.com").await;
        let kept = new_post(&server, &token, json!({"title": "kept", "owner": ann})).await;
        let kept_path = format!("/api/posts/{kept}");
        let (_, before) = server.get(&kept_path).await;

        // The third request fails validation: the two before it are not written either.
        let answer = batch(
            &server,
            Some(&token),
            json!([
                {"method": "POST", "url": "/api/posts", "body": {"title": "one", "owner": ann}},
                {"method": "PATCH", "url": kept_path, "body": {"title": "changed"}},
                {"method": "POST", "url": "/api/posts", "body": {"title": "x".repeat(21), "views": -1}},
                {"method": "DELETE", "url": kept_path},
            ]),
        )
        .await;
        assert_error(&answer, 400, "validation_failed");
        assert_eq!(
            details(&answer),
            ["requests[2].title too_long", "requests[2].views too_small"]
        );
        assert_eq!(total_posts(&server).await, 1, "nothing was created");
        assert_eq!(
            server.get(&kept_path).await.1,
            before,
            "nothing was changed"
        );

        // Errors without field details are named by the request alone.
        let missing = format!("/api/posts/{}", uuid::Uuid::now_v7());
        let answer = batch(
            &server,
            Some(&token),
            json!([
                {"method": "DELETE", "url": kept_path},
                {"method": "PATCH", "url": missing, "body": {"views": 1}},
            ]),
        )
        .await;
        assert_error(&answer, 404, "not_found");
        assert_eq!(details(&answer), ["requests[1] not_found"]);
        assert_eq!(
            server.get(&kept_path).await.1,
            before,
            "the delete was undone"
        );

        // A unique value taken by an earlier request of the same batch: that request's 409.
        let answer = batch(
            &server,
            Some(&token),
            json!([
                {"method": "POST", "url": "/api/posts", "body": {"title": "a", "slug": "same"}},
                {"method": "POST", "url": "/api/posts", "body": {"title": "b", "slug": "same"}},
            ]),
        )
        .await;
        assert_error(&answer, 409, "unique_violation");
        assert_eq!(details(&answer), ["requests[1].slug unique"]);
        assert_eq!(total_posts(&server).await, 1);

        // A relation to no document: the database refuses the row, and the transaction, still
        // usable, finds out which field it was.
        let answer = batch(
            &server,
            Some(&token),
            json!([
                {"method": "POST", "url": "/api/posts", "body": {"title": "a", "owner": ann}},
                {"method": "POST", "url": "/api/posts", "body": {"title": "b", "owner": uuid::Uuid::now_v7()}},
            ]),
        )
        .await;
        assert_error(&answer, 400, "validation_failed");
        assert_eq!(details(&answer), ["requests[1].owner invalid_relation"]);
        assert_eq!(total_posts(&server).await, 1);

        // An unknown field fails like the single route's, named by the request.
        let answer = batch(
            &server,
            Some(&token),
            json!([{"method": "POST", "url": "/api/posts", "body": {"title": "ok", "nope": 1}}]),
        )
        .await;
        assert_error(&answer, 400, "validation_failed");
        assert_eq!(details(&answer), ["requests[0].nope unknown_field"]);
    }
}

#[tokio::test]
async fn answers_equal_the_single_routes() {
    for backend in backends() {
        let server = Server::start(&backend, &config()).await;
        let (ann, token) = account(&server, "ann@example.com").await;
        let to_update = new_post(&server, &token, json!({"title": "u", "owner": ann})).await;
        let to_delete = new_post(&server, &token, json!({"title": "d", "owner": ann})).await;
        let (_, deleted_before) = server.get(&format!("/api/posts/{to_delete}")).await;

        let created_body = json!({"title": "new", "secret": "s3cret", "owner": ann, "views": 4});
        let (status, answer) = batch(
            &server,
            Some(&token),
            json!([
                {"method": "POST", "url": "/api/posts", "body": created_body},
                {"method": "PATCH", "url": format!("/api/posts/{to_update}"), "body": {"views": 3, "slug": null}},
                {"method": "DELETE", "url": format!("/api/posts/{to_delete}")},
                {"method": "POST", "url": "/api/users", "body": {"email": "bob@example.com", "password": PASSWORD, "name": "Bob"}},
            ]),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let responses = answer["responses"].as_array().unwrap();
        let statuses: Vec<_> = responses.iter().map(|r| r["status"].clone()).collect();
        assert_eq!(statuses, [json!(201), json!(200), json!(200), json!(201)]);

        // Each answer is what the single route would answer, and what is now stored.
        let created = &responses[0]["body"];
        let id = created["doc"]["id"].as_str().unwrap();
        assert_eq!(server.get(&format!("/api/posts/{id}")).await.1, *created);
        assert!(created["doc"].get("secret").is_none(), "hidden: {created}");
        let updated = &responses[1]["body"];
        assert_eq!(updated["doc"]["views"], 3);
        assert_eq!(
            server.get(&format!("/api/posts/{to_update}")).await.1,
            *updated
        );
        assert_eq!(
            responses[2]["body"], deleted_before,
            "the document as it was"
        );
        assert_error(
            &server.get(&format!("/api/posts/{to_delete}")).await,
            404,
            "not_found",
        );
        let bob = &responses[3]["body"]["doc"];
        assert_eq!(bob["email"], "bob@example.com");
        assert!(bob.get("password").is_none(), "{bob}");

        // The same writes through the single routes answer with the same shapes.
        let (status, single) = call(
            &server,
            Method::POST,
            "/api/posts",
            Some(&token),
            Some(&created_body),
        )
        .await;
        assert_eq!(status, 201);
        let same_but_ids = |a: &Value, b: &Value| {
            let strip = |v: &Value| {
                let mut v = v.clone();
                for key in ["id", "createdAt", "updatedAt"] {
                    v["doc"].as_object_mut().unwrap().remove(key);
                }
                v
            };
            assert_eq!(strip(a), strip(b));
        };
        same_but_ids(&single, created);
        let (status, single) = call(
            &server,
            Method::POST,
            "/api/users",
            None,
            Some(&json!({"email": "cy@example.com", "password": PASSWORD, "name": "Bob"})),
        )
        .await;
        assert_eq!(status, 201);
        let mut single = single;
        single["doc"]["email"] = json!("bob@example.com");
        same_but_ids(&single, &responses[3]["body"]);

        // The account made in the batch signs in with its password.
        let (status, _) = server
            .post(
                "/api/users/login",
                &json!({"email": "bob@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn every_request_meets_the_callers_rules_and_scopes() {
    for backend in backends() {
        let server = Server::start(&backend, &config()).await;
        let (ann, ann_token) = account(&server, "ann@example.com").await;
        let (bob, bob_token) = account(&server, "bob@example.com").await;
        let anns = new_post(&server, &ann_token, json!({"title": "ann's", "owner": ann})).await;

        // Bob may create, but not change Ann's post: the batch fails with that request's 403.
        let answer = batch(
            &server,
            Some(&bob_token),
            json!([
                {"method": "POST", "url": "/api/posts", "body": {"title": "bob's", "owner": bob}},
                {"method": "PATCH", "url": format!("/api/posts/{anns}"), "body": {"title": "mine"}},
            ]),
        )
        .await;
        assert_error(&answer, 403, "forbidden");
        assert_eq!(details(&answer), ["requests[1] forbidden"]);
        assert_eq!(total_posts(&server).await, 1, "Bob's create was undone");

        // A field rule: only an admin sets a role.
        let answer = batch(
            &server,
            Some(&bob_token),
            json!([{"method": "PATCH", "url": format!("/api/users/{bob}"), "body": {"role": "admin"}}]),
        )
        .await;
        assert_error(&answer, 403, "forbidden");
        assert_eq!(details(&answer), ["requests[0] forbidden"]);

        // Without credentials: 401 for the request that needs them.
        let answer = batch(
            &server,
            None,
            json!([{"method": "POST", "url": "/api/posts", "body": {"title": "anon"}}]),
        )
        .await;
        assert_error(&answer, 401, "unauthorized");
        assert_eq!(details(&answer), ["requests[0] unauthorized"]);

        // Bad credentials are refused before anything, as on every route.
        let answer = batch(
            &server,
            Some("not-a-token"),
            json!([{"method": "POST", "url": "/api/posts", "body": {"title": "x"}}]),
        )
        .await;
        assert_error(&answer, 401, "unauthorized");

        // An API key's scopes: a read-only key writes nothing, a write key does.
        let mut keys = Vec::new();
        for scopes in [json!(["read"]), json!(["write"])] {
            let (status, key) = call(
                &server,
                Method::POST,
                "/api/users/api-keys",
                Some(&ann_token),
                Some(&json!({"name": "k", "scopes": scopes})),
            )
            .await;
            assert_eq!(status, 201, "{key}");
            keys.push(key["apiKey"]["key"].as_str().unwrap().to_string());
        }
        let requests = json!([
            {"method": "PATCH", "url": format!("/api/posts/{anns}"), "body": {"views": 2}},
        ]);
        let answer = batch(&server, Some(&keys[0]), requests.clone()).await;
        assert_error(&answer, 403, "forbidden");
        assert_eq!(details(&answer), ["requests[0] forbidden"]);
        let (status, answer) = batch(&server, Some(&keys[1]), requests).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["responses"][0]["body"]["doc"]["views"], 2);

        // An account changing its own password needs the current one, in a batch as alone.
        let own = format!("/api/users/{ann}");
        let answer = batch(
            &server,
            Some(&ann_token),
            json!([{"method": "PATCH", "url": own, "body": {"password": "another long passphrase", "oldPassword": "wrong one"}}]),
        )
        .await;
        assert_error(&answer, 400, "validation_failed");
        assert_eq!(
            details(&answer),
            ["requests[0].oldPassword invalid_password"]
        );
        let (status, answer) = batch(
            &server,
            Some(&ann_token),
            json!([{"method": "PATCH", "url": own, "body": {"password": "another long passphrase", "oldPassword": PASSWORD}}]),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let login = |password: &str| json!({"email": "ann@example.com", "password": password});
        assert_eq!(
            server
                .post("/api/users/login", &login("another long passphrase"))
                .await
                .0,
            200
        );
        assert_eq!(
            server.post("/api/users/login", &login(PASSWORD)).await.0,
            401
        );
    }
}

#[tokio::test]
async fn only_collection_writes_are_batchable_and_max_batch_holds() {
    let server = Server::start(&Backend::Sqlite, &config()).await;
    let (ann, token) = account(&server, "ann@example.com").await;
    let id = uuid::Uuid::now_v7();
    let create =
        json!({"method": "POST", "url": "/api/posts", "body": {"title": "t", "owner": ann}});
    let answer = batch(
        &server,
        Some(&token),
        json!([
            create,
            {"method": "POST", "url": "/api/users/login", "body": {"email": "ann@example.com", "password": PASSWORD}},
            {"method": "POST", "url": "/api/users/register", "body": {"email": "x@example.com", "password": PASSWORD}},
            {"method": "DELETE", "url": format!("/api/users/sessions/{id}")},
            {"method": "GET", "url": "/api/posts"},
        ]),
    )
    .await;
    assert_error(&answer, 400, "validation_failed");
    assert_eq!(
        details(&answer),
        [
            "requests[1].url not_batchable",
            "requests[2].url not_batchable",
            "requests[3].url not_batchable",
            "requests[4].method invalid_option",
        ]
    );
    assert_eq!(total_posts(&server).await, 0, "refused before anything ran");

    let answer = batch(&server, Some(&token), json!([])).await;
    assert_eq!(details(&answer), ["requests too_short"]);
    let answer = batch(&server, Some("not-a-token"), json!([])).await;
    assert_eq!(
        details(&answer),
        ["requests too_short"],
        "the shape is checked before the credentials"
    );
    let answer = batch(&server, Some(&token), json!(vec![create.clone(); 6])).await;
    assert_error(&answer, 400, "validation_failed");
    assert_eq!(details(&answer), ["requests too_long"]);
    let (status, answer) = batch(&server, Some(&token), json!(vec![create; 5])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(total_posts(&server).await, 5);

    // Only POST; a body that is JSON.
    let answer = call(&server, Method::GET, "/api/batch", Some(&token), None).await;
    assert_error(&answer, 405, "method_not_allowed");
    let response = server
        .client
        .post(server.url("/api/batch"))
        .body("requests")
        .send()
        .await
        .unwrap();
    assert_error(&decode(response).await, 415, "unsupported_media_type");
}

/// Batches and single writes side by side: on SQLite the batches hold the one writer only while
/// they run, so single writes neither fail (`database is locked`) nor time out.
#[tokio::test]
async fn single_writes_proceed_beside_batches() {
    for backend in backends() {
        let config = config().replace("max_batch = 5", "max_batch = 100");
        let server = Server::start(&backend, &config).await;
        let (ann, token) = account(&server, "ann@example.com").await;
        let target = new_post(&server, &token, json!({"title": "hot", "owner": ann})).await;
        let batches = (0..6).map(|worker| {
            let (server, token, ann) = (&server, &token, &ann);
            async move {
                let mut statuses = Vec::new();
                for round in 0..5 {
                    let requests: Vec<Value> = (0..100)
                        .map(|n| json!({"method": "POST", "url": "/api/posts", "body": {"title": format!("b{worker}-{round}-{n}"), "owner": ann}}))
                        .collect();
                    statuses.push(batch(server, Some(token), json!(requests)).await.0.as_u16());
                }
                statuses
            }
        });
        let singles = (0..4).map(|worker| {
            let (server, token, ann, target) = (&server, &token, &ann, &target);
            async move {
                let mut statuses = Vec::new();
                for n in 0..40 {
                    let body = json!({"title": format!("s{worker}-{n}"), "owner": ann});
                    let answer =
                        call(server, Method::POST, "/api/posts", Some(token), Some(&body)).await;
                    statuses.push(answer.0.as_u16());
                    let path = format!("/api/posts/{target}");
                    let body = json!({"views": n});
                    let answer = call(server, Method::PATCH, &path, Some(token), Some(&body)).await;
                    statuses.push(answer.0.as_u16());
                }
                statuses
            }
        });
        let (batches, singles) = tokio::join!(join_all(batches), join_all(singles));
        assert!(
            batches.iter().flatten().all(|s| *s == 200),
            "{backend:?}: {batches:?}"
        );
        assert!(
            singles.iter().flatten().all(|s| *s == 200 || *s == 201),
            "{backend:?}: {singles:?}"
        );
        assert_eq!(total_posts(&server).await, 1 + 6 * 5 * 100 + 4 * 40);
    }
}

/// PostgreSQL: batches updating the same documents in opposite orders, beside single updates of
/// them, all succeed (their row locks are taken in one order); batches that deadlock through
/// relations (each creates a post of the other's account, then deletes its own) are retried and
/// end cleanly, never in a 500.
#[tokio::test]
async fn concurrent_batches_do_not_deadlock_on_postgres() {
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return;
    };
    let config = config().replace("max_batch = 5", "max_batch = 100");
    let server = Server::start(&backend, &config).await;
    let (ann, token) = account(&server, "ann@example.com").await;
    let a = format!(
        "/api/posts/{}",
        new_post(&server, &token, json!({"title": "a", "owner": ann})).await
    );
    let b = format!(
        "/api/posts/{}",
        new_post(&server, &token, json!({"title": "b", "owner": ann})).await
    );
    let batches = (0..12).map(|worker| {
        let (server, token, a, b, ann) = (&server, &token, &a, &b, &ann);
        async move {
            let (first, second) = if worker % 2 == 0 { (a, b) } else { (b, a) };
            let mut statuses = Vec::new();
            for round in 0..8 {
                let requests = json!([
                    {"method": "PATCH", "url": first, "body": {"views": round}},
                    {"method": "PATCH", "url": second, "body": {"views": round}},
                    {"method": "POST", "url": "/api/posts", "body": {"title": "c", "owner": ann}},
                    {"method": "PATCH", "url": first, "body": {"title": format!("w{worker}")}},
                ]);
                statuses.push(batch(server, Some(token), requests).await.0.as_u16());
            }
            statuses
        }
    });
    let singles = (0..4).map(|worker| {
        let (server, token, a, b) = (&server, &token, &a, &b);
        async move {
            let mut statuses = Vec::new();
            for n in 0..20 {
                let path = if (worker + n) % 2 == 0 { a } else { b };
                let body = json!({"views": n});
                statuses.push(
                    call(server, Method::PATCH, path, Some(token), Some(&body))
                        .await
                        .0
                        .as_u16(),
                );
            }
            statuses
        }
    });
    let (batches, singles) = tokio::join!(join_all(batches), join_all(singles));
    assert!(batches.iter().flatten().all(|s| *s == 200), "{batches:?}");
    assert!(singles.iter().flatten().all(|s| *s == 200), "{singles:?}");

    // Pairs of accounts: each creates a post of the other and deletes itself. The post's
    // reference locks the other account, whose delete waits for it: a deadlock, retried. The
    // batch that comes second then finds its post's owner gone (400) — never a 500.
    let mut pairs = Vec::new();
    for n in 0..8 {
        pairs.push((
            account(&server, &format!("x{n}@example.com")).await,
            account(&server, &format!("y{n}@example.com")).await,
        ));
    }
    let runs = pairs.iter().flat_map(|((x, x_token), (y, y_token))| {
        [(x, x_token, y), (y, y_token, x)].map(|(me, my_token, other)| {
            let server = &server;
            async move {
                let requests = json!([
                    {"method": "POST", "url": "/api/posts", "body": {"title": "p", "owner": other}},
                    {"method": "DELETE", "url": format!("/api/users/{me}")},
                ]);
                let answer = batch(server, Some(my_token), requests).await;
                (answer.0.as_u16(), answer.1)
            }
        })
    });
    let answers = join_all(runs).await;
    for (status, body) in &answers {
        assert!(
            *status == 200
                || (*status == 400 && body["error"]["details"][0]["code"] == "invalid_relation"),
            "{status} {body}"
        );
    }
    let completed = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        completed,
        pairs.len(),
        "one of each pair completes: {answers:?}"
    );
}

/// The JSON code blocks of the Batch section of docs/api.md, and its curl example's body.
fn documented() -> (Vec<Value>, String) {
    let api = include_str!("../../docs/api.md");
    let section = api
        .split("\n## Batch\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/api.md has a Batch section");
    let blocks = section
        .split("```json\n")
        .skip(1)
        .map(|block| {
            let text = block.split("```").next().unwrap();
            let text: String = text.lines().map(str::trim).collect::<Vec<_>>().join("\n");
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        })
        .collect();
    let curl = section
        .lines()
        .find(|line| line.starts_with("curl ") && line.contains("/api/batch"))
        .expect("a curl example");
    let body = curl
        .split_once("-d '")
        .unwrap()
        .1
        .strip_suffix('\'')
        .unwrap();
    (blocks, body.to_string())
}

#[tokio::test]
async fn the_documented_examples_hold() {
    let server = Server::start(&Backend::Sqlite, crate::helpers::POSTS).await;
    let (me, token) = account(&server, "ann@example.com").await;
    let post = new_post(&server, &token, json!({"title": "draft"})).await;
    let old = new_post(&server, &token, json!({"title": "old"})).await;
    let (blocks, body) = documented();
    let body = body
        .replace("'$ME'", &me)
        .replace("'$POST'", &post)
        .replace("'$OLD'", &old);
    let body: Value = serde_json::from_str(&body).unwrap();
    let answer = call(
        &server,
        Method::POST,
        "/api/batch",
        Some(&token),
        Some(&body),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let statuses = |v: &Value| -> Vec<Value> {
        v["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].clone())
            .collect()
    };
    assert_eq!(statuses(&answer.1), statuses(&blocks[0]));
    assert_eq!(
        answer.1["responses"][1]["body"]["doc"]["status"],
        "published"
    );

    // The documented failures: a field, and a whole request.
    let long = json!({"method": "POST", "url": "/api/posts", "body": {"title": "x".repeat(21)}});
    let create = json!({"method": "POST", "url": "/api/posts", "body": {"title": "t"}});
    let answer = batch(&server, Some(&token), json!([create, create, long])).await;
    assert_eq!(answer.1["error"]["details"], blocks[1]["error"]["details"]);
    assert_eq!(answer.1["error"]["message"], blocks[1]["error"]["message"]);
}

/// SQLite: a batch holds the one writer, and the whole of it must finish within
/// `database.statement_timeout`; one that does not is stopped, writes nothing, and gives the
/// writer back.
#[tokio::test]
async fn a_batch_past_the_time_limit_writes_nothing_on_sqlite() {
    let config = config()
        .replace("max_batch = 5", "max_batch = 3000\nbody_limit = \"4MiB\"")
        .replace(
            "[auth]",
            "[database]\nstatement_timeout = \"100ms\"\n[auth]",
        );
    let server = Server::start(&Backend::Sqlite, &config).await;
    let (ann, token) = account(&server, "ann@example.com").await;
    // A debug build writes about 400 of these in 100 ms.
    let requests: Vec<Value> = (0..3000)
        .map(|n| json!({"method": "POST", "url": "/api/posts", "body": {"title": format!("p{n}"), "owner": ann}}))
        .collect();
    let answer = batch(&server, Some(&token), json!(requests)).await;
    assert_error(&answer, 503, "timeout");
    assert!(details(&answer)[0].starts_with("requests["), "{}", answer.1);
    assert_eq!(total_posts(&server).await, 0);
    new_post(&server, &token, json!({"title": "after"})).await;
    assert_eq!(total_posts(&server).await, 1);
}
