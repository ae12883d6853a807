//! Access predicates and filters over HTTP: the owner / other / anonymous / admin matrix, field
//! rules, filters that never reveal invisible rows, and fields a caller may not name.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::auth::{PASSWORD, SECRET};
use crate::helpers::{Backend, Server, assert_error, backends, decode, lucent_bin};

const CONFIG: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"

[collections.users]
auth = true
[collections.users.fields]
name = { type = "string" }
role = { type = "select", options = ["admin", "user"], default = "user", access = { create = "user.role == 'admin'", update = "user.role == 'admin'" } }
[collections.users.access]
read = "user != null"
update = "user != null && (doc.id == user.id || user.role == 'admin')"
delete = "user.role == 'admin'"

[collections.posts.fields]
title  = { type = "string", required = true }
status = { type = "select", options = ["draft", "published"], default = "draft" }
views  = { type = "integer", default = 0 }
note   = { type = "string", access = { read = "user != null && doc.author == user.id" } }
secret = { type = "string", hidden = true }
author = { type = "relation", to = "users", access = { create = "data.author == user.id || user.role == 'admin'", update = "user.role == 'admin'" } }
[collections.posts.access]
read   = "doc.status == 'published' || (user != null && doc.author == user.id)"
create = "user != null"
update = "user != null && (user.role == 'admin' || doc.author == user.id)"
delete = "user.role == 'admin'"
"#;

struct Caller {
    token: Option<String>,
    id: String,
}

async fn call(
    server: &Server,
    caller: &Caller,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(token) = &caller.token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    decode(request.send().await.unwrap()).await
}

async fn sign_up(server: &Server, email: &str) -> Caller {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Caller {
        token: Some(body["token"].as_str().unwrap().into()),
        id: body["user"]["id"].as_str().unwrap().into(),
    }
}

/// The first admin, made with `lucent user create` while the server runs.
async fn admin(server: &Server) -> Caller {
    let mut command = Command::new(lucent_bin());
    command
        .args(["user", "create", "--config"])
        .arg(server.path().join("lucent.toml"))
        .args([
            "--collection",
            "users",
            "--email",
            "root@example.com",
            "--password-stdin",
            "--set",
            "role=admin",
        ])
        .env("LUCENT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(url) = &server.database_url {
        command.env("LUCENT_DATABASE_URL", url);
    }
    let mut child = command.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let (status, body) = server
        .post(
            "/api/users/login",
            &json!({"email": "root@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    Caller {
        token: Some(body["token"].as_str().unwrap().into()),
        id: body["user"]["id"].as_str().unwrap().into(),
    }
}

fn titles(page: &Value) -> Vec<String> {
    let mut titles: Vec<String> = page["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn owner_other_anonymous_admin_matrix() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = sign_up(&server, "ann@example.com").await;
        let bob = sign_up(&server, "bob@example.com").await;
        let root = admin(&server).await;
        let anonymous = Caller {
            token: None,
            id: String::new(),
        };
        let post = |caller: &Caller, title: &str, status: &str| json!({"title": title, "status": status, "author": caller.id, "note": format!("note of {title}"), "views": title.len()});
        let mut ids = std::collections::HashMap::new();
        for (caller, title, status) in [
            (&ann, "ann-draft", "draft"),
            (&ann, "ann-pub", "published"),
            (&bob, "bob-draft", "draft"),
            (&bob, "bob-pub", "published"),
        ] {
            let (code, body) = call(
                &server,
                caller,
                reqwest::Method::POST,
                "/api/posts",
                Some(post(caller, title, status)),
            )
            .await;
            assert_eq!(code, 201, "{body}");
            ids.insert(title, body["doc"]["id"].as_str().unwrap().to_string());
        }

        // read: lists hold only visible rows, and count only them.
        for (caller, expected) in [
            (&anonymous, vec!["ann-pub", "bob-pub"]),
            (&ann, vec!["ann-draft", "ann-pub", "bob-pub"]),
            (&bob, vec!["ann-pub", "bob-draft", "bob-pub"]),
            (&root, vec!["ann-pub", "bob-pub"]),
        ] {
            let (code, page) =
                call(&server, caller, reqwest::Method::GET, "/api/posts", None).await;
            assert_eq!(code, 200);
            assert_eq!(titles(&page), expected);
            assert_eq!(page["totalDocs"], expected.len());
        }
        // A denied get is a 404, exactly like a missing id.
        let draft = format!("/api/posts/{}", ids["ann-draft"]);
        assert_eq!(
            call(&server, &ann, reqwest::Method::GET, &draft, None)
                .await
                .0,
            200
        );
        for caller in [&anonymous, &bob, &root] {
            assert_error(
                &call(&server, caller, reqwest::Method::GET, &draft, None).await,
                404,
                "not_found",
            );
        }

        // create: anonymous 401; signed in 201; an author other than oneself is a field denial.
        assert_error(
            &call(
                &server,
                &anonymous,
                reqwest::Method::POST,
                "/api/posts",
                Some(json!({"title": "x"})),
            )
            .await,
            401,
            "unauthorized",
        );
        let error = assert_error(
            &call(
                &server,
                &bob,
                reqwest::Method::POST,
                "/api/posts",
                Some(post(&ann, "forged", "draft")),
            )
            .await,
            403,
            "forbidden",
        );
        assert!(
            error["message"].as_str().unwrap().contains("\"author\""),
            "{error}"
        );
        assert_eq!(
            call(
                &server,
                &root,
                reqwest::Method::POST,
                "/api/posts",
                Some(post(&ann, "by-admin", "draft"))
            )
            .await
            .0,
            201
        );

        // update: own yes, other's readable 403, other's invisible 404, admin yes; author is admin-only.
        let ann_pub = format!("/api/posts/{}", ids["ann-pub"]);
        assert_eq!(
            call(
                &server,
                &ann,
                reqwest::Method::PATCH,
                &ann_pub,
                Some(json!({"views": 1}))
            )
            .await
            .0,
            200
        );
        assert_error(
            &call(
                &server,
                &bob,
                reqwest::Method::PATCH,
                &ann_pub,
                Some(json!({"views": 2})),
            )
            .await,
            403,
            "forbidden",
        );
        assert_error(
            &call(
                &server,
                &bob,
                reqwest::Method::PATCH,
                &draft,
                Some(json!({"views": 2})),
            )
            .await,
            404,
            "not_found",
        );
        assert_error(
            &call(
                &server,
                &anonymous,
                reqwest::Method::PATCH,
                &ann_pub,
                Some(json!({"views": 2})),
            )
            .await,
            401,
            "unauthorized",
        );
        let error = assert_error(
            &call(
                &server,
                &ann,
                reqwest::Method::PATCH,
                &ann_pub,
                Some(json!({"author": bob.id})),
            )
            .await,
            403,
            "forbidden",
        );
        assert!(error["message"].as_str().unwrap().contains("\"author\""));
        assert_eq!(
            call(
                &server,
                &root,
                reqwest::Method::PATCH,
                &ann_pub,
                Some(json!({"views": 3, "author": bob.id}))
            )
            .await
            .0,
            200
        );

        // delete: admin only; others get 403 on readable documents.
        let bob_pub = format!("/api/posts/{}", ids["bob-pub"]);
        assert_error(
            &call(&server, &bob, reqwest::Method::DELETE, &bob_pub, None).await,
            403,
            "forbidden",
        );
        assert_eq!(
            call(&server, &root, reqwest::Method::DELETE, &bob_pub, None)
                .await
                .0,
            200
        );

        // role: not self-assignable, on register or update; the admin may set it.
        let error = assert_error(
            &server
                .post(
                    "/api/users/register",
                    &json!({"email": "eve@example.com", "password": PASSWORD, "role": "admin"}),
                )
                .await,
            403,
            "forbidden",
        );
        assert!(error["message"].as_str().unwrap().contains("\"role\""));
        let ann_path = format!("/api/users/{}", ann.id);
        assert_error(
            &call(
                &server,
                &ann,
                reqwest::Method::PATCH,
                &ann_path,
                Some(json!({"role": "admin"})),
            )
            .await,
            403,
            "forbidden",
        );
        assert_error(
            &call(
                &server,
                &bob,
                reqwest::Method::PATCH,
                &ann_path,
                Some(json!({"name": "x"})),
            )
            .await,
            403,
            "forbidden",
        );
        assert_eq!(
            call(
                &server,
                &ann,
                reqwest::Method::PATCH,
                &ann_path,
                Some(json!({"name": "Ann"}))
            )
            .await
            .0,
            200
        );
        let (code, changed) = call(
            &server,
            &root,
            reqwest::Method::PATCH,
            &ann_path,
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(
            (code.as_u16(), &changed["doc"]["role"]),
            (200, &json!("admin"))
        );
        // The new role counts on Ann's very next request (roles are never token claims).
        assert_eq!(
            call(
                &server,
                &ann,
                reqwest::Method::DELETE,
                &format!("/api/posts/{}", ids["bob-draft"]),
                None
            )
            .await
            .0,
            404,
            "bob's draft stays invisible to her"
        );
        let (code, _) = call(
            &server,
            &ann,
            reqwest::Method::PATCH,
            &format!("/api/posts/{}", ids["ann-draft"]),
            Some(json!({"author": bob.id})),
        )
        .await;
        assert_eq!(code, 200, "as an admin she may reassign authors");
    }
}

#[tokio::test]
async fn field_read_rules_omit_values_and_cannot_be_probed() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = sign_up(&server, "ann@example.com").await;
        let bob = sign_up(&server, "bob@example.com").await;
        let body = json!({"title": "p", "status": "published", "author": ann.id, "note": "private", "secret": "s"});
        let (code, created) = call(
            &server,
            &ann,
            reqwest::Method::POST,
            "/api/posts",
            Some(body),
        )
        .await;
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["doc"]["note"], "private");
        assert!(created["doc"].get("secret").is_none());
        let path = format!("/api/posts/{}", created["doc"]["id"].as_str().unwrap());
        let (_, as_bob) = call(&server, &bob, reqwest::Method::GET, &path, None).await;
        assert!(as_bob["doc"].get("note").is_none(), "{as_bob}");
        let (_, list) = call(&server, &bob, reqwest::Method::GET, "/api/posts", None).await;
        assert!(list["docs"][0].get("note").is_none());
        let (_, as_ann) = call(&server, &ann, reqwest::Method::GET, &path, None).await;
        assert_eq!(as_ann["doc"]["note"], "private");

        // note depends on the document, so nobody may name it; hidden fields neither. All read
        // exactly like a field that does not exist.
        let unknown = assert_error(
            &call(
                &server,
                &ann,
                reqwest::Method::GET,
                "/api/posts?filter=nothere%20==%20'x'",
                None,
            )
            .await,
            400,
            "bad_request",
        );
        for path in [
            "/api/posts?filter=note%20==%20'private'",
            "/api/posts?filter=secret%20==%20's'",
            "/api/posts?filter=doc.note%20~%20'pri'",
        ] {
            let error = assert_error(
                &call(&server, &ann, reqwest::Method::GET, path, None).await,
                400,
                "bad_request",
            );
            // Same text but for the name (and where it stands).
            let normalize = |v: &Value| {
                let message = v["message"].as_str().unwrap();
                let name_at = message.find("unknown").unwrap();
                message[name_at..]
                    .replace("nothere", "F")
                    .replace("note", "F")
                    .replace("secret", "F")
            };
            assert_eq!(normalize(&error), normalize(&unknown), "{path}");
        }
        for path in [
            "/api/posts?sort=note",
            "/api/posts?select=note",
            "/api/posts?sort=-secret",
            "/api/posts?select=title,secret",
        ] {
            let error = assert_error(
                &call(&server, &ann, reqwest::Method::GET, path, None).await,
                400,
                "bad_request",
            );
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("unknown field"),
                "{error}"
            );
        }
    }
}

#[tokio::test]
async fn filters_combine_with_the_read_rule_and_bind_every_value() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = sign_up(&server, "ann@example.com").await;
        let anonymous = Caller {
            token: None,
            id: String::new(),
        };
        for (title, status, views) in [
            ("alpha", "published", 10),
            ("beta", "published", 600),
            ("gamma", "draft", 900),
            ("it's 50%_off", "published", 700),
        ] {
            let body = json!({"title": title, "status": status, "views": views, "author": ann.id});
            assert_eq!(
                call(
                    &server,
                    &ann,
                    reqwest::Method::POST,
                    "/api/posts",
                    Some(body)
                )
                .await
                .0,
                201
            );
        }
        let list = |caller: &Caller, filter: &str| {
            let path = format!("/api/posts?filter={}", urlencode(filter));
            let caller = Caller {
                token: caller.token.clone(),
                id: caller.id.clone(),
            };
            let server = &server;
            async move { call(server, &caller, reqwest::Method::GET, &path, None).await }
        };
        let cases: Vec<(&Caller, &str, Vec<&str>)> = vec![
            (&anonymous, "views > 500", vec!["beta", "it's 50%_off"]),
            (&ann, "views > 500", vec!["beta", "gamma", "it's 50%_off"]),
            (&anonymous, "status == 'draft'", vec![]),
            (
                &ann,
                "views > 500 && status == 'published'",
                vec!["beta", "it's 50%_off"],
            ),
            (&ann, "title ~ '50%_'", vec!["it's 50%_off"]),
            (&ann, "title ~ '%'", vec!["it's 50%_off"]),
            (&ann, "title ~ 'ALP'", vec!["alpha"]),
            (&ann, "title in ['alpha', 'gamma']", vec!["alpha", "gamma"]),
            (
                &ann,
                "!(title in ['alpha', 'gamma'])",
                vec!["beta", "it's 50%_off"],
            ),
            (&ann, "title == \"alpha' OR '1'='1\"", vec![]),
            (&ann, "title == 'x\\' OR 1=1 --'", vec![]),
            (
                &ann,
                "createdAt <= now && id != null",
                vec!["alpha", "beta", "gamma", "it's 50%_off"],
            ),
            (
                &ann,
                "doc.views >= 700 || title == 'alpha'",
                vec!["alpha", "gamma", "it's 50%_off"],
            ),
        ];
        for (caller, filter, expected) in cases {
            let (code, page) = list(caller, filter).await;
            assert_eq!(code, 200, "{filter}: {page}");
            assert_eq!(titles(&page), expected, "{filter}");
            assert_eq!(page["totalDocs"], expected.len(), "{filter}");
        }
        for bad in [
            "title ==",
            "views > 'many'",
            "title == 'x'; DROP TABLE posts",
            "user.role == 'admin'",
            "views > 5 &&",
            &"(".repeat(40),
            &format!("title in [{}]", vec!["'x'"; 1001].join(",")),
            &format!("title ~ '{}'", "x".repeat(257)),
            &format!("title == '{}'", "x".repeat(17 * 1024)),
        ] {
            let answer = list(&ann, bad).await;
            assert_error(&answer, 400, "bad_request");
        }
        let (_, page) = list(&ann, "").await;
        assert_eq!(page["totalDocs"], 4, "the table is intact");
    }
}

#[tokio::test]
async fn check_reports_bad_predicates_with_a_caret_and_warns_about_open_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[collections.users]
auth = true
[collections.posts.fields]
title = { type = "string" }
[collections.posts.access]
read = "doc.titel == 'x'"
create = "user.nope == 1 || doc.title > 3"
"#;
    std::fs::write(dir.path().join("lucent.toml"), config).unwrap();
    let output = Command::new(lucent_bin())
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("lucent.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("collections.posts.access.read:1:5: unknown field \"titel\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("    doc.titel == 'x'\n        ^"),
        "{stderr}"
    );
    assert!(
        stderr.contains("collections.posts.access.create:1:6: unknown field \"nope\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("collections.posts.access.create"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot compare"), "{stderr}");

    let open = "[collections.users]\nauth = true\n[collections.notes.fields]\ntext = { type = \"string\" }\n";
    std::fs::write(dir.path().join("lucent.toml"), open).unwrap();
    let output = Command::new(lucent_bin())
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("lucent.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains("`notes` leaves update and delete to the default"),
        "{stderr}"
    );
    let _ = (SECRET, Backend::Sqlite);
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .unwrap()
        .trim_start_matches('=')
        .to_string()
}
