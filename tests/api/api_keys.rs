//! API keys over HTTP: the scope × operation matrix, show-once, hashed at rest, expiry,
//! revocation on the next request (also across instances), per-owner isolation, scopes in
//! predicates.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{PASSWORD, register};
use crate::helpers::{Backend, Server, assert_error, backends, decode};

const CONFIG: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"
[collections.users]
auth = true
[collections.users.access]
update = "doc.id == user.id"
delete = "doc.id == user.id"
[collections.posts.fields]
title = { type = "string" }
[collections.posts.access]
read = "true"
create = "user != null && (user.scopes == null || 'write' in user.scopes || 'admin' in user.scopes)"
update = "user != null"
delete = "user != null"
"#;

async fn with(
    server: &Server,
    method: Method,
    path: &str,
    credential: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    decode(request.send().await.unwrap()).await
}

async fn new_key(server: &Server, credential: &str, body: Value) -> Value {
    let (status, answer) = with(
        server,
        Method::POST,
        "/api/users/api-keys",
        credential,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["apiKey"].clone()
}

#[tokio::test]
async fn scopes_gate_every_operation() {
    let server = Server::start(&Backend::Sqlite, CONFIG).await;
    let owner = register(&server, "ann@example.com").await;
    let token = owner["token"].as_str().unwrap();
    let (_, post) = with(
        &server,
        Method::POST,
        "/api/posts",
        token,
        Some(json!({"title": "seed"})),
    )
    .await;
    let post_path = format!("/api/posts/{}", post["doc"]["id"].as_str().unwrap());

    let mut keys = Vec::new();
    for scopes in [
        json!(["read"]),
        json!(["write"]),
        json!(["admin"]),
        Value::Null,
    ] {
        let body = if scopes.is_null() {
            json!({"name": "all"})
        } else {
            json!({"name": "k", "scopes": scopes})
        };
        keys.push((
            scopes,
            new_key(&server, token, body).await["key"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    for (scopes, key) in &keys {
        let can_read =
            scopes.is_null() || scopes == &json!(["read"]) || scopes == &json!(["admin"]);
        let can_write =
            scopes.is_null() || scopes == &json!(["write"]) || scopes == &json!(["admin"]);
        let can_manage = scopes.is_null() || scopes == &json!(["admin"]);
        let expect = |allowed: bool, ok: u16| if allowed { ok } else { 403 };
        let cases = [
            (
                Method::GET,
                "/api/posts".to_string(),
                None,
                expect(can_read, 200),
            ),
            (Method::GET, post_path.clone(), None, expect(can_read, 200)),
            (
                Method::GET,
                "/api/users/me".to_string(),
                None,
                expect(can_read, 200),
            ),
            (
                Method::POST,
                "/api/posts".to_string(),
                Some(json!({"title": "by key"})),
                expect(can_write, 201),
            ),
            (
                Method::PATCH,
                post_path.clone(),
                Some(json!({"title": "changed"})),
                expect(can_write, 200),
            ),
            (
                Method::GET,
                "/api/users/api-keys".to_string(),
                None,
                expect(can_manage, 200),
            ),
        ];
        for (method, path, body, status) in cases {
            let answer = with(&server, method.clone(), &path, key, body).await;
            assert_eq!(
                answer.0.as_u16(),
                status,
                "{scopes} {method} {path}: {}",
                answer.1
            );
            if status == 403 {
                assert_error(&answer, 403, "forbidden");
            }
        }
    }
    // A key cannot mint a key with more than it has; delete needs write.
    let admin_only = &keys[2].1;
    let answer = with(
        &server,
        Method::POST,
        "/api/users/api-keys",
        admin_only,
        Some(json!({"name": "x", "scopes": ["read"]})),
    )
    .await;
    assert_error(&answer, 403, "forbidden");
    let all = &keys[3].1;
    assert_eq!(
        with(
            &server,
            Method::POST,
            "/api/users/api-keys",
            all,
            Some(json!({"name": "x", "scopes": ["read"]}))
        )
        .await
        .0,
        201
    );
    assert_error(
        &with(&server, Method::DELETE, &post_path, &keys[0].1, None).await,
        403,
        "forbidden",
    );
    assert_eq!(
        with(&server, Method::DELETE, &post_path, &keys[1].1, None)
            .await
            .0,
        200
    );
    // Sessions are not an API key's business.
    assert_error(
        &with(&server, Method::POST, "/api/users/logout-all", all, None).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn keys_are_shown_once_hashed_at_rest_and_validated() {
    let server = Server::start(&Backend::Sqlite, CONFIG).await;
    let owner = register(&server, "ann@example.com").await;
    let token = owner["token"].as_str().unwrap();
    let response = server
        .client
        .post(server.url("/api/users/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "ci", "scopes": ["read", "write"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (_, created) = decode(response).await;
    let key = created["apiKey"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("lcnt_") && key.len() == 5 + 64, "{key}");
    assert_eq!(created["apiKey"]["prefix"], key[..12]);
    assert_eq!(created["apiKey"]["scopes"], json!(["read", "write"]));

    let (_, listed) = with(&server, Method::GET, "/api/users/api-keys", token, None).await;
    assert_eq!(listed["apiKeys"].as_array().unwrap().len(), 1);
    assert!(listed["apiKeys"][0].get("key").is_none(), "{listed}");
    assert!(!listed.to_string().contains(&key[12..]));
    assert_eq!(listed["apiKeys"][0]["lastUsedAt"], Value::Null);
    assert_eq!(
        with(&server, Method::GET, "/api/users/me", &key, None)
            .await
            .0,
        200
    );
    let (_, listed) = with(&server, Method::GET, "/api/users/api-keys", token, None).await;
    assert!(
        listed["apiKeys"][0]["lastUsedAt"].is_string(),
        "use is recorded: {listed}"
    );

    // The database never holds the key: not in the SQLite file, nor in its WAL.
    let data = server.path().join("data");
    for file in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(key.len() - 5)
                .any(|w| w == &key.as_bytes()[5..]),
            "key found in a data file"
        );
    }

    for (body, field) in [
        (json!({"scopes": ["read"]}), "name"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (
            json!({"name": "x", "expiresAt": "2000-01-01T00:00:00Z"}),
            "expiresAt",
        ),
        (json!({"name": "x", "expiresAt": "tomorrow"}), "expiresAt"),
        (json!({"name": "x", "extra": 1}), "extra"),
    ] {
        let error = assert_error(
            &with(
                &server,
                Method::POST,
                "/api/users/api-keys",
                token,
                Some(body.clone()),
            )
            .await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"][0]["field"], field, "{body}");
    }
    assert_error(
        &with(&server, Method::GET, "/api/users/me", "lcnt_0000", None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &decode(
            server
                .client
                .get(server.url("/api/users/api-keys"))
                .send()
                .await
                .unwrap(),
        )
        .await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn expiry_revocation_isolation_and_account_deletion() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = register(&server, "ann@example.com").await;
        let bob = register(&server, "bob@example.com").await;
        let (ann_token, bob_token) = (
            ann["token"].as_str().unwrap(),
            bob["token"].as_str().unwrap(),
        );

        let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
        let expiring = new_key(
            &server,
            ann_token,
            json!({"name": "short", "expiresAt": soon}),
        )
        .await;
        let expiring_key = expiring["key"].as_str().unwrap();
        assert_eq!(
            with(&server, Method::GET, "/api/users/me", expiring_key, None)
                .await
                .0,
            200
        );
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_error(
            &with(&server, Method::GET, "/api/users/me", expiring_key, None).await,
            401,
            "token_expired",
        );

        let kept = new_key(&server, ann_token, json!({"name": "kept"})).await;
        let kept_key = kept["key"].as_str().unwrap();
        let kept_path = format!("/api/users/api-keys/{}", kept["id"].as_str().unwrap());
        // Bob cannot see or delete Ann's key: 404, and it keeps working.
        let (_, bobs) = with(&server, Method::GET, "/api/users/api-keys", bob_token, None).await;
        assert_eq!(bobs["apiKeys"], json!([]));
        assert_error(
            &with(&server, Method::DELETE, &kept_path, bob_token, None).await,
            404,
            "not_found",
        );
        assert_eq!(
            with(&server, Method::GET, "/api/users/me", kept_key, None)
                .await
                .0,
            200
        );

        // logout-all ends sessions, not keys.
        assert_eq!(
            with(
                &server,
                Method::POST,
                "/api/users/logout-all",
                ann_token,
                None
            )
            .await
            .0,
            200
        );
        assert_eq!(
            with(&server, Method::GET, "/api/users/me", kept_key, None)
                .await
                .0,
            200
        );
        let (_, login) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        let ann_token = login["token"].as_str().unwrap();

        assert_eq!(
            with(&server, Method::DELETE, &kept_path, ann_token, None)
                .await
                .0,
            200
        );
        assert_error(
            &with(&server, Method::GET, "/api/users/me", kept_key, None).await,
            401,
            "unauthorized",
        );

        // Deleting the account deletes its keys.
        let last = new_key(&server, ann_token, json!({"name": "last"})).await;
        let ann_path = format!("/api/users/{}", ann["user"]["id"].as_str().unwrap());
        assert_eq!(
            with(&server, Method::DELETE, &ann_path, ann_token, None)
                .await
                .0,
            200
        );
        assert_error(
            &with(
                &server,
                Method::GET,
                "/api/users/me",
                last["key"].as_str().unwrap(),
                None,
            )
            .await,
            401,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn revocation_reaches_every_instance() {
    let Some(Backend::Postgres(admin)) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return; // `backends()` printed that PostgreSQL is skipped
    };
    let first = Server::start(&Backend::Postgres(admin), CONFIG).await;
    let mut second = Server::start(&Backend::Sqlite, CONFIG).await;
    second.stop();
    second.database_url = first.database_url.clone();
    second.spawn(&[]);
    let ann = register(&first, "ann@example.com").await;
    let token = ann["token"].as_str().unwrap();
    let key = new_key(&first, token, json!({"name": "ci"})).await;
    let secret = key["key"].as_str().unwrap();
    assert_eq!(
        with(&second, Method::GET, "/api/users/me", secret, None)
            .await
            .0,
        200
    );
    let path = format!("/api/users/api-keys/{}", key["id"].as_str().unwrap());
    assert_eq!(
        with(&first, Method::DELETE, &path, token, None).await.0,
        200
    );
    assert_error(
        &with(&second, Method::GET, "/api/users/me", secret, None).await,
        401,
        "unauthorized",
    );
    second.database_url = None; // the database belongs to `first`, which drops it
}
