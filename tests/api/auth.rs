//! Auth over HTTP: register, login, tokens, refresh rotation and reuse, logout, cookies with the
//! CSRF origin check, lockout, form posts, sessions, password changes.

use std::time::Duration;

use futures::future::join_all;
use reqwest::header;
use serde_json::{Value, json};

use crate::helpers::{Backend, Server, assert_error, backends, decode};

pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn config(extra: &str) -> String {
    format!(
        r#"
[auth]
jwt_secret = "{SECRET}"
[collections.users]
auth = {{ max_login_attempts = 3, lock_time = "2s" }}
[collections.users.fields]
name = {{ type = "string" }}
[collections.members]
auth = {{ login_field = "username" }}
[collections.notes.fields]
text = {{ type = "string" }}
{extra}
"#
    )
}

pub async fn register(server: &Server, email: &str) -> Value {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn bearer(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (reqwest::StatusCode, Value) {
    decode(
        server
            .client
            .request(method, server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A client without a cookie jar, so only explicit credentials count.
fn bare() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn register_login_me_and_case_insensitive_identifiers() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let response = bare()
            .post(server.url("/api/users/register"))
            .json(&json!({"email": "Jane@Example.com", "password": PASSWORD, "name": "Jane"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        for part in ["lucent_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
        let (status, body) = decode(response).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["user"]["email"], "jane@example.com");
        assert!(
            body["user"].get("password").is_none() && !body.to_string().contains("argon2"),
            "{body}"
        );
        assert!(body["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());

        let (status, me) = bearer(
            &server,
            reqwest::Method::GET,
            "/api/users/me",
            body["token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(me["user"]["id"], body["user"]["id"]);

        let duplicate = server
            .post(
                "/api/users/register",
                &json!({"email": "JANE@example.COM", "password": PASSWORD}),
            )
            .await;
        assert_error(&duplicate, 409, "unique_violation");

        let (status, login) = server
            .post(
                "/api/users/login",
                &json!({"email": "jAnE@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        assert!(login["token"].is_string() && login["refreshToken"].is_string());

        // Username collections: JaneSmith8000 and janesmith8000 are one account.
        let (status, _) = server
            .post(
                "/api/members/register",
                &json!({"username": "JaneSmith8000", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201);
        assert_error(
            &server
                .post(
                    "/api/members/register",
                    &json!({"username": "janesmith8000", "password": PASSWORD}),
                )
                .await,
            409,
            "unique_violation",
        );
        let (status, member) = server
            .post(
                "/api/members/login",
                &json!({"username": "JANESMITH8000", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{member}");
        assert_eq!(member["user"]["username"], "JaneSmith8000");
        let short = assert_error(
            &server
                .post(
                    "/api/members/register",
                    &json!({"username": "abc", "password": PASSWORD}),
                )
                .await,
            400,
            "validation_failed",
        );
        assert_eq!(short["details"][0]["field"], "username");

        // A token of another collection is refused by this one's routes.
        assert_error(
            &bearer(
                &server,
                reqwest::Method::GET,
                "/api/members/me",
                body["token"].as_str().unwrap(),
            )
            .await,
            401,
            "unauthorized",
        );
        assert_error(
            &decode(
                bare()
                    .get(server.url("/api/users/me"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
            401,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn failed_logins_look_the_same_and_lock_the_identifier() {
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    register(&server, "ann@example.com").await;
    let wrong = server
        .post(
            "/api/users/login",
            &json!({"email": "ann@example.com", "password": "wrong password!"}),
        )
        .await;
    let unknown = server
        .post(
            "/api/users/login",
            &json!({"email": "nobody@example.com", "password": "wrong password!"}),
        )
        .await;
    assert_error(&wrong, 401, "invalid_credentials");
    // Alike but for the request's own id.
    let without_id = |(status, body): &(reqwest::StatusCode, serde_json::Value)| {
        let mut body = body.clone();
        body["error"].as_object_mut().unwrap().remove("requestId");
        (*status, body)
    };
    assert_eq!(
        without_id(&wrong),
        without_id(&unknown),
        "unknown account and wrong password give the same answer"
    );
    // A body without the login field or password breaks the schema: a 400, not a failed login.
    let empty = server.post("/api/users/login", &json!({})).await;
    assert_error(&empty, 400, "validation_failed");

    // max_login_attempts = 3: two more failures lock it, even for the right password.
    for _ in 0..2 {
        assert_error(
            &server
                .post(
                    "/api/users/login",
                    &json!({"email": "ANN@example.com", "password": "nope nope nope"}),
                )
                .await,
            401,
            "invalid_credentials",
        );
    }
    let locked = server
        .post(
            "/api/users/login",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(&locked, 429, "account_locked");
    // Unknown identifiers lock too, so locking reveals nothing.
    for _ in 0..3 {
        server
            .post(
                "/api/users/login",
                &json!({"email": "ghost@example.com", "password": "x"}),
            )
            .await;
    }
    assert_error(
        &server
            .post(
                "/api/users/login",
                &json!({"email": "ghost@example.com", "password": "x"}),
            )
            .await,
        429,
        "account_locked",
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = server
        .post(
            "/api/users/login",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "the lock expires after lock_time");
}

#[tokio::test]
async fn password_policy_lists_every_unmet_rule() {
    let extra =
        "[auth.password]\nmin_length = 14\nrequire_numbers = true\nrequire_symbols = true\n";
    let server = Server::start(
        &Backend::Sqlite,
        &config("").replace(
            "[collections.users]",
            &format!("{extra}[collections.users]"),
        ),
    )
    .await;
    let error = assert_error(
        &server
            .post(
                "/api/users/register",
                &json!({"email": "a@b.io", "password": "short"}),
            )
            .await,
        400,
        "validation_failed",
    );
    let codes: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["too_short", "missing_number", "missing_symbol"]);
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    let error = assert_error(
        &server
            .post(
                "/api/users/register",
                &json!({"email": "a@b.io", "password": "password1234"}),
            )
            .await,
        400,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["code"], "common_password");
    let error = assert_error(
        &server
            .post("/api/users/register", &json!({"email": "a@b.io"}))
            .await,
        400,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0],
        json!({"field": "password", "code": "required", "message": "password is required"})
    );
}

pub fn mint(claims: Value, secret: &str, algorithm: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    let body = register(&server, "ann@example.com").await;
    let token = body["token"].as_str().unwrap();
    let claims: Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        claims.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["sub", "sid", "col", "iat", "exp"],
        "no user fields in claims"
    );
    let now = chrono::Utc::now().timestamp();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 10);
    let mut elsewhere = claims.clone();
    elsewhere["col"] = json!("members");
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        {
            use base64::Engine;
            let mut forged = claims.clone();
            forged["sub"] = json!("someone-else");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string())
        },
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
        },
        parts[1]
    );
    let cases = [
        (
            mint(claims.clone(), SECRET, jsonwebtoken::Algorithm::HS256),
            200,
            "",
        ),
        (
            mint(expired, SECRET, jsonwebtoken::Algorithm::HS256),
            401,
            "token_expired",
        ),
        (
            mint(claims.clone(), SECRET, jsonwebtoken::Algorithm::HS512),
            401,
            "unauthorized",
        ),
        (
            mint(
                claims.clone(),
                "a-different-secret-of-32-bytes-or-more",
                jsonwebtoken::Algorithm::HS256,
            ),
            401,
            "unauthorized",
        ),
        (
            mint(elsewhere, SECRET, jsonwebtoken::Algorithm::HS256),
            401,
            "unauthorized",
        ),
        (tampered, 401, "unauthorized"),
        (none, 401, "unauthorized"),
        ("not-a-jwt".to_string(), 401, "unauthorized"),
    ];
    for (token, status, code) in cases {
        let answer = bearer(&server, reqwest::Method::GET, "/api/users/me", &token).await;
        if status == 200 {
            assert_eq!(answer.0, 200, "{}", answer.1);
        } else {
            assert_error(&answer, status, code);
            // Bad credentials never fall back to anonymous, on any route.
            assert_error(
                &bearer(&server, reqwest::Method::GET, "/api/notes", &token).await,
                status,
                code,
            );
        }
    }
    let answer = decode(
        bare()
            .get(server.url("/api/notes"))
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&answer, 401, "unauthorized");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_session() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let body = register(&server, "ann@example.com").await;
        let first = body["refreshToken"].as_str().unwrap().to_string();
        let (status, rotated) = server
            .post("/api/users/refresh", &json!({"refreshToken": first}))
            .await;
        assert_eq!(status, 200, "{rotated}");
        let second = rotated["refreshToken"].as_str().unwrap().to_string();
        assert_ne!(first, second);
        let (status, _) = bearer(
            &server,
            reqwest::Method::GET,
            "/api/users/me",
            rotated["token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(status, 200);

        // The rotated-away token comes back: the session ends, so the newest token dies too.
        assert_error(
            &server
                .post("/api/users/refresh", &json!({"refreshToken": first}))
                .await,
            401,
            "unauthorized",
        );
        assert_error(
            &server
                .post("/api/users/refresh", &json!({"refreshToken": second}))
                .await,
            401,
            "unauthorized",
        );
        assert_error(
            &bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                rotated["token"].as_str().unwrap(),
            )
            .await,
            401,
            "unauthorized",
        );
        assert_error(
            &server
                .post("/api/users/refresh", &json!({"refreshToken": "garbage"}))
                .await,
            401,
            "unauthorized",
        );
        assert_error(
            &server
                .post("/api/members/refresh", &json!({"refreshToken": second}))
                .await,
            401,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn concurrent_refreshes_never_mint_two_live_tokens() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let body = register(&server, "ann@example.com").await;
        let token = json!({"refreshToken": body["refreshToken"]});
        let answers = join_all((0..8).map(|_| server.post("/api/users/refresh", &token))).await;
        let minted: Vec<String> = answers
            .iter()
            .filter(|a| a.0 == 200)
            .map(|a| a.1["refreshToken"].as_str().unwrap().to_string())
            .collect();
        let mut live = 0;
        for refresh in minted {
            if server
                .post("/api/users/refresh", &json!({"refreshToken": refresh}))
                .await
                .0
                == 200
            {
                live += 1;
            }
        }
        assert!(live <= 1, "{live} live tokens from one refresh token");
    }
}

#[tokio::test]
async fn logout_and_logout_all_take_effect_at_once() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let first = register(&server, "ann@example.com").await;
        let (_, second) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        let (_, third) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        let token = |b: &Value| b["token"].as_str().unwrap().to_string();

        let (status, sessions) = bearer(
            &server,
            reqwest::Method::GET,
            "/api/users/sessions",
            &token(&second),
        )
        .await;
        assert_eq!(status, 200);
        let list = sessions["sessions"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
        assert!(list[0]["userAgent"].is_string() && list[0]["expiresAt"].is_string());

        let (status, _) = bearer(
            &server,
            reqwest::Method::POST,
            "/api/users/logout",
            &token(&first),
        )
        .await;
        assert_eq!(status, 200);
        assert_error(
            &bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                &token(&first),
            )
            .await,
            401,
            "unauthorized",
        );
        assert_eq!(
            bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                &token(&second)
            )
            .await
            .0,
            200
        );

        // Ending one session by id; someone else's id is 404.
        let other = register(&server, "bob@example.com").await;
        let (_, bob_sessions) = bearer(
            &server,
            reqwest::Method::GET,
            "/api/users/sessions",
            &token(&other),
        )
        .await;
        let bob_session = bob_sessions["sessions"][0]["id"].as_str().unwrap();
        assert_error(
            &bearer(
                &server,
                reqwest::Method::DELETE,
                &format!("/api/users/sessions/{bob_session}"),
                &token(&second),
            )
            .await,
            404,
            "not_found",
        );
        let (_, mine) = bearer(
            &server,
            reqwest::Method::GET,
            "/api/users/sessions",
            &token(&second),
        )
        .await;
        let third_id = mine["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == false)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            bearer(
                &server,
                reqwest::Method::DELETE,
                &format!("/api/users/sessions/{third_id}"),
                &token(&second)
            )
            .await
            .0,
            200
        );
        assert_error(
            &bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                &token(&third),
            )
            .await,
            401,
            "unauthorized",
        );

        let (_, fourth) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        let (status, ended) = bearer(
            &server,
            reqwest::Method::POST,
            "/api/users/logout-all",
            &token(&second),
        )
        .await;
        assert_eq!((status.as_u16(), &ended["sessionsEnded"]), (200, &json!(2)));
        for body in [&second, &fourth] {
            assert_error(
                &bearer(&server, reqwest::Method::GET, "/api/users/me", &token(body)).await,
                401,
                "unauthorized",
            );
        }
        assert_eq!(
            bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                &token(&other)
            )
            .await
            .0,
            200,
            "other accounts keep theirs"
        );
        let (status, _) = server
            .post(
                "/api/users/logout",
                &json!({"refreshToken": other["refreshToken"]}),
            )
            .await;
        assert_eq!(status, 200, "logout by refresh token");
        assert_error(
            &bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                &token(&other),
            )
            .await,
            401,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn logout_on_one_instance_is_seen_by_another() {
    let Some(Backend::Postgres(admin)) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return; // `backends()` printed that PostgreSQL is skipped
    };
    let first = Server::start(&Backend::Postgres(admin), &config("")).await;
    let mut second = Server::start(&Backend::Sqlite, &config("")).await;
    // Point the second instance at the first one's database.
    second.stop();
    second.database_url = first.database_url.clone();
    second.spawn(&[]);
    let body = register(&first, "ann@example.com").await;
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        bearer(&second, reqwest::Method::GET, "/api/users/me", token)
            .await
            .0,
        200
    );
    assert_eq!(
        bearer(&first, reqwest::Method::POST, "/api/users/logout", token)
            .await
            .0,
        200
    );
    assert_error(
        &bearer(&second, reqwest::Method::GET, "/api/users/me", token).await,
        401,
        "unauthorized",
    );
    second.database_url = None; // the database belongs to `first`, which drops it
}

#[tokio::test]
async fn cookie_sessions_need_a_matching_origin_for_unsafe_methods() {
    let extra = "";
    let config = config(extra).replace(
        "[auth]",
        "[server]\ncors_origins = [\"https://app.example.com\"]\n[auth]",
    );
    let mut server = Server::start(&Backend::Sqlite, &config).await;
    // A client that keeps cookies: registering logs it in by cookie.
    server.client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    register(&server, "ann@example.com").await;
    let (status, me) = server.get("/api/users/me").await;
    assert_eq!(status, 200, "GET by cookie needs no Origin: {me}");

    let post = |origin: Option<&str>| {
        let mut request = server
            .client
            .post(server.url("/api/notes"))
            .json(&json!({"text": "hi"}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { decode(request.send().await.unwrap()).await }
    };
    assert_error(&post(None).await, 403, "csrf_failed");
    assert_error(
        &post(Some("https://evil.example")).await,
        403,
        "csrf_failed",
    );
    assert_error(&post(Some("null")).await, 403, "csrf_failed");
    let own = server.base.clone();
    assert_eq!(post(Some(&own)).await.0, 201);
    assert_eq!(post(Some("https://app.example.com")).await.0, 201);

    // Refresh by cookie is an unsafe cookie request too.
    let refresh = server
        .client
        .post(server.url("/api/users/refresh"))
        .send()
        .await
        .unwrap();
    assert_error(&decode(refresh).await, 403, "csrf_failed");
    let refresh = server
        .client
        .post(server.url("/api/users/refresh"))
        .header("origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 200);

    // Logout by cookie clears it.
    let logout = server
        .client
        .post(server.url("/api/users/logout"))
        .header("origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert!(
        logout.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_error(&server.get("/api/users/me").await, 401, "unauthorized");
}

#[tokio::test]
async fn html_forms_register_login_and_logout_with_redirects() {
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let form = |path: &str, fields: &[(&str, &str)]| {
        let request = client
            .post(server.url(path))
            .header("origin", server.base.clone())
            .form(fields);
        async move { request.send().await.unwrap() }
    };
    let response = form(
        "/api/members/register",
        &[
            ("username", "formuser"),
            ("password", PASSWORD),
            ("redirect", "/profile"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[header::LOCATION], "/profile");
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("lucent_session=")
    );
    let (status, me) = decode(
        client
            .get(server.url("/api/members/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &me["user"]["username"]),
        (200, &json!("formuser"))
    );

    let response = form("/api/members/logout", &[("redirect", "/login")]).await;
    assert_eq!(
        (
            response.status().as_u16(),
            response.headers()[header::LOCATION].to_str().unwrap()
        ),
        (303, "/login")
    );
    assert_eq!(
        client
            .get(server.url("/api/members/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let response = form(
        "/api/members/login",
        &[
            ("username", "FORMUSER"),
            ("password", PASSWORD),
            ("redirect", "/profile"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    for bad in ["https://evil.example/", "//evil.example", "profile"] {
        let response = form(
            "/api/members/login",
            &[
                ("username", "formuser"),
                ("password", PASSWORD),
                ("redirect", bad),
            ],
        )
        .await;
        assert_error(&decode(response).await, 400, "bad_request");
    }
}

#[tokio::test]
async fn changing_a_password_needs_the_old_one_and_ends_other_sessions() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let body = register(&server, "ann@example.com").await;
        let id = body["user"]["id"].as_str().unwrap();
        let token = body["token"].as_str().unwrap();
        let (_, other) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        let path = format!("/api/users/{id}");
        let patch = |body: Value| {
            let request = bare()
                .patch(server.url(&path))
                .bearer_auth(token)
                .json(&body);
            async move { decode(request.send().await.unwrap()).await }
        };
        let error = assert_error(
            &patch(json!({"password": "a brand new passphrase"})).await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"][0]["field"], "oldPassword");
        let error = assert_error(
            &patch(json!({"password": "a brand new passphrase", "oldPassword": "wrong"})).await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"][0]["code"], "invalid_password");
        let error = assert_error(
            &patch(json!({"password": "short", "oldPassword": PASSWORD})).await,
            400,
            "validation_failed",
        );
        assert_eq!(error["details"][0]["code"], "too_short");
        let (status, changed) = patch(
            json!({"password": "a brand new passphrase", "oldPassword": PASSWORD, "name": "Ann"}),
        )
        .await;
        assert_eq!(status, 200, "{changed}");
        assert!(changed["doc"].get("password").is_none());

        assert_eq!(
            bearer(&server, reqwest::Method::GET, "/api/users/me", token)
                .await
                .0,
            200,
            "this session stays"
        );
        assert_error(
            &bearer(
                &server,
                reqwest::Method::GET,
                "/api/users/me",
                other["token"].as_str().unwrap(),
            )
            .await,
            401,
            "unauthorized",
        );
        assert_error(
            &server
                .post(
                    "/api/users/login",
                    &json!({"email": "ann@example.com", "password": PASSWORD}),
                )
                .await,
            401,
            "invalid_credentials",
        );
        assert_eq!(
            server
                .post(
                    "/api/users/login",
                    &json!({"email": "ann@example.com", "password": "a brand new passphrase"})
                )
                .await
                .0,
            200
        );

        // Deleting the account ends its sessions.
        assert_eq!(
            bearer(&server, reqwest::Method::DELETE, &path, token)
                .await
                .0,
            200
        );
        assert_error(
            &bearer(&server, reqwest::Method::GET, "/api/users/me", token).await,
            401,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn jwt_secret_is_required_in_prod_and_kept_in_dev() {
    let config = "[collections.users]\nauth = true\n";
    let mut server = Server::start(&Backend::Sqlite, config).await;
    let secret_file = server.path().join("data/jwt_secret");
    assert!(
        secret_file.exists(),
        "dev generates a secret into the data folder"
    );
    let body = register(&server, "ann@example.com").await;
    server.stop();
    server.spawn(&[]);
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        bearer(&server, reqwest::Method::GET, "/api/users/me", token)
            .await
            .0,
        200,
        "tokens survive a restart"
    );
    server.stop();

    let output = std::process::Command::new(crate::helpers::lucent_bin())
        .args(["serve", "--port", "0", "--config"])
        .arg(server.path().join("lucent.toml"))
        .env("LUCENT_ENV", "prod")
        .env("LUCENT_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("jwt_secret is required in prod"));
    let short = format!("[auth]\njwt_secret = \"too-short\"\n{config}");
    std::fs::write(server.path().join("lucent.toml"), short).unwrap();
    let output = std::process::Command::new(crate::helpers::lucent_bin())
        .args(["check", "--config"])
        .arg(server.path().join("lucent.toml"))
        .env("LUCENT_ENV", "prod")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("auth.jwt_secret: must be at least 32 bytes in prod")
    );
}

#[tokio::test]
async fn a_login_flood_is_refused_fast_instead_of_queued() {
    // Every login is counted against the lockout before it is verified, so 120 parallel logins
    // to one account would lock it at the third: this test is about the hashing queue, so the
    // lockout is set out of its way.
    let config = config("").replace("max_login_attempts = 3", "max_login_attempts = 1000");
    let server = Server::start(&Backend::Sqlite, &config).await;
    register(&server, "ann@example.com").await;
    let body = json!({"email": "ann@example.com", "password": PASSWORD});
    let flood = join_all((0..120).map(|_| server.post("/api/users/login", &body)));
    let (answers, health) = tokio::join!(flood, server.get("/api/health"));
    assert_eq!(health.0, 200, "other requests are served during the flood");
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let busy = answers.iter().filter(|a| a.0 == 429).count();
    assert!(busy > 0 && ok > 0, "{ok} logins, {busy} refused");
    for answer in answers.iter().filter(|a| a.0 == 429) {
        assert_error(answer, 429, "rate_limited");
    }
    assert_eq!(
        ok + busy,
        answers.len(),
        "nothing else than a login or a fast refusal"
    );
}
