//! The auth findings of the hardening review (issue 12), each over HTTP on SQLite and PostgreSQL:
//! lockout exact under concurrency and keyed by the account, field `read` rules on every answer
//! that shows an account, a reset that revokes API keys, cross-site form posts (login CSRF), the
//! origin compared by scheme, host and port, refresh-token reuse only for real rotated tokens,
//! case-insensitive `Authorization` schemes, `nbf`, owner-only `.eml` files, and auth bodies of
//! the wrong JSON types refused with a 400.

use futures::future::join_all;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, SECRET, mint};
use crate::email::{mails_to, token_in, wait_mails};
use crate::helpers::{Backend, Server, assert_error, backends, decode};

const CONFIG: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"
[email]
transport = "file"
dir = "outbox"
verify_url = "http://app.test/verify?token={token}"
reset_url = "http://app.test/reset?token={token}"
[collections.users]
auth = { max_login_attempts = 5, lock_time = "1h", verify_email = true }
[collections.users.fields]
role = { type = "select", options = ["admin", "user"], default = "user" }
note = { type = "string", access = { read = "user.role == 'admin'" } }
[collections.users.access]
read = "true"
update = "doc.id == user.id"
delete = "doc.id == user.id"
[collections.members]
auth = { login_field = "username", max_login_attempts = 5, lock_time = "1h" }
"#;

async fn register(server: &Server, body: Value) -> Value {
    let (status, answer) = server.post("/api/users/register", &body).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

async fn login(server: &Server, email: &str, password: &str) -> (StatusCode, Value) {
    server
        .post(
            "/api/users/login",
            &json!({"email": email, "password": password}),
        )
        .await
}

/// A request with an `Authorization` header value (scheme included).
async fn authorized(
    server: &Server,
    method: Method,
    path: &str,
    authorization: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .header(header::AUTHORIZATION, authorization);
    if let Some(body) = body {
        request = request.json(&body);
    }
    decode(request.send().await.unwrap()).await
}

async fn me(server: &Server, token: &str) -> (StatusCode, Value) {
    authorized(
        server,
        Method::GET,
        "/api/users/me",
        &format!("Bearer {token}"),
        None,
    )
    .await
}

fn token(answer: &Value) -> &str {
    answer["token"].as_str().unwrap()
}

/// Extra request headers, by name.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// A client that neither follows redirects nor keeps cookies.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A second server on the PostgreSQL database of `first` (two instances, one database).
async fn second_instance(first: &Server) -> Server {
    let mut second = Server::start(&Backend::Sqlite, CONFIG).await;
    second.stop();
    second.database_url = first.database_url.clone();
    second.spawn(&[]);
    second
}

/// How many answers were a verification (401 or 200); every other one must be a lockout.
fn verified(answers: &[(StatusCode, Value)]) -> usize {
    let mut verified = 0;
    for answer in answers {
        match answer.0.as_u16() {
            200 => verified += 1,
            401 => {
                assert_error(answer, 401, "invalid_credentials");
                verified += 1;
            }
            _ => {
                assert_error(answer, 429, "account_locked");
            }
        }
    }
    verified
}

#[tokio::test]
async fn parallel_guesses_get_at_most_max_login_attempts_verifications() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        register(
            &server,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
        // 24 wrong passwords at once, max_login_attempts = 5: five are verified, the rest locked.
        let guesses = (0..24).map(|_| login(&server, "ann@example.com", "wrong password!"));
        let answers = join_all(guesses).await;
        assert_eq!(verified(&answers), 5, "{answers:?}");
        assert_error(
            &login(&server, "ann@example.com", PASSWORD).await,
            429,
            "account_locked",
        );

        // 23 wrong and the right one at once. Only attempts numbered 1..=5 are verified; the right
        // one succeeds only if it drew such a number, and then resets the count, so guesses that
        // arrive after that success start a new window of five.
        register(
            &server,
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
        let guesses = (0..24).map(|i| {
            let password = if i == 11 { PASSWORD } else { "wrong password!" };
            login(&server, "bob@example.com", password)
        });
        let answers = join_all(guesses).await;
        let windows = 1 + answers.iter().filter(|a| a.0 == 200).count();
        let count = verified(&answers);
        assert!(
            count <= 5 * windows,
            "{count} of 24 parallel logins were verified: {answers:?}"
        );

        // Several instances on one PostgreSQL count as one server.
        if let Backend::Postgres(_) = backend {
            let mut second = second_instance(&server).await;
            register(
                &server,
                json!({"email": "cy@example.com", "password": PASSWORD}),
            )
            .await;
            let guesses = (0..24).map(|i| {
                let instance = if i % 2 == 0 { &server } else { &second };
                login(instance, "cy@example.com", "wrong password!")
            });
            let answers = join_all(guesses).await;
            assert_eq!(verified(&answers), 5, "two instances: {answers:?}");
            second.database_url = None; // the database belongs to `server`, which drops it
        }
    }
}

#[tokio::test]
async fn the_lockout_follows_the_account_whatever_the_spelling() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let (status, _) = server
            .post(
                "/api/members/register",
                &json!({"username": "itemkeeper", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201);
        let members_login = |username: &'static str, password: &'static str| {
            let server = &server;
            async move {
                server
                    .post(
                        "/api/members/login",
                        &json!({"username": username, "password": password}),
                    )
                    .await
            }
        };
        for _ in 0..5 {
            assert_error(
                &members_login("itemkeeper", "wrong password!").await,
                401,
                "invalid_credentials",
            );
        }
        for spelling in ["itemkeeper", "ITEMKEEPER", "ItemKeeper"] {
            assert_error(
                &members_login(spelling, PASSWORD).await,
                429,
                "account_locked",
            );
        }
        // PostgreSQL's LOWER() finds `itemkeeper` for `İtemkeeper` (Rust lower-cases `İ` to
        // `i̇`): the same account, so the same lock. SQLite's LOWER() finds nothing: a failure
        // counted for that unknown identifier.
        let dotted = members_login("İtemkeeper", PASSWORD).await;
        match backend {
            Backend::Postgres(_) => assert_error(&dotted, 429, "account_locked"),
            Backend::Sqlite => assert_error(&dotted, 401, "invalid_credentials"),
        };
    }
}

#[tokio::test]
async fn field_read_rules_apply_to_every_answer_that_shows_an_account() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let bob = register(
            &server,
            json!({"email": "bob@example.com", "password": PASSWORD, "note": "bob's"}),
        )
        .await;
        let alice = register(
            &server,
            json!({"email": "alice@example.com", "password": PASSWORD, "note": "alice's", "role": "admin"}),
        )
        .await;
        let bob_login = login(&server, "bob@example.com", PASSWORD).await.1;
        let alice_login = login(&server, "alice@example.com", PASSWORD).await.1;
        let key = authorized(
            &server,
            Method::POST,
            "/api/users/api-keys",
            &format!("Bearer {}", token(&bob)),
            Some(json!({"name": "ci"})),
        )
        .await
        .1["apiKey"]["key"]
            .as_str()
            .unwrap()
            .to_string();
        let bob_id = bob["user"]["id"].as_str().unwrap().to_string();
        let verify = token_in(
            &wait_mails(&server, "bob@example.com", 1).await[0],
            "verify",
        );
        let (status, verified) = server
            .post("/api/users/verify-email", &json!({"token": verify}))
            .await;
        assert_eq!(status, 200, "{verified}");
        let path = format!("/api/users/{bob_id}");

        // (what, the account as the answer shows it, whether `note` may be in it)
        let answers = [
            ("register, non-admin", bob["user"].clone(), false),
            ("register, admin", alice["user"].clone(), true),
            ("login, non-admin", bob_login["user"].clone(), false),
            ("login, admin", alice_login["user"].clone(), true),
            (
                "me, non-admin",
                me(&server, token(&bob)).await.1["user"].clone(),
                false,
            ),
            (
                "me, admin",
                me(&server, token(&alice)).await.1["user"].clone(),
                true,
            ),
            (
                "me, non-admin by API key",
                authorized(
                    &server,
                    Method::GET,
                    "/api/users/me",
                    &format!("Bearer {key}"),
                    None,
                )
                .await
                .1["user"]
                    .clone(),
                false,
            ),
            ("verify-email, anonymous", verified["user"].clone(), false),
            (
                "get, non-admin",
                authorized(
                    &server,
                    Method::GET,
                    &path,
                    &format!("Bearer {}", token(&bob)),
                    None,
                )
                .await
                .1["doc"]
                    .clone(),
                false,
            ),
            (
                "get, admin",
                authorized(
                    &server,
                    Method::GET,
                    &path,
                    &format!("Bearer {}", token(&alice)),
                    None,
                )
                .await
                .1["doc"]
                    .clone(),
                true,
            ),
        ];
        for (what, user, shown) in answers {
            assert!(user["id"].is_string(), "{what}: {user}");
            assert!(user.get("password").is_none(), "{what}: {user}");
            assert_eq!(user.get("note").is_some(), shown, "{what}: {user}");
        }
    }
}

#[tokio::test]
async fn a_password_reset_revokes_api_keys_and_sessions_and_mails_are_owner_only() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let carl = register(
            &server,
            json!({"email": "carl@example.com", "password": PASSWORD}),
        )
        .await;
        let (status, key) = authorized(
            &server,
            Method::POST,
            "/api/users/api-keys",
            &format!("Bearer {}", token(&carl)),
            Some(json!({"name": "made before the reset"})),
        )
        .await;
        assert_eq!(status, 201, "{key}");
        let key = format!("Bearer {}", key["apiKey"]["key"].as_str().unwrap());
        assert_eq!(
            authorized(&server, Method::GET, "/api/users/me", &key, None)
                .await
                .0,
            200
        );

        // The token is checked before the password policy (which costs milliseconds of CPU):
        // a wrong token is refused as such, whatever the password.
        assert_error(
            &server
                .post(
                    "/api/users/reset-password",
                    &json!({"token": "A".repeat(43), "password": "password"}),
                )
                .await,
            400,
            "invalid_token",
        );

        // The verification mail of register, then the reset mail.
        let (status, _) = server
            .post(
                "/api/users/request-password-reset",
                &json!({"email": "carl@example.com"}),
            )
            .await;
        assert_eq!(status, 202);
        let mails = wait_mails(&server, "carl@example.com", 2).await;
        let mail = mails.iter().find(|m| m.contains("app.test/reset")).unwrap();
        let reset = token_in(mail, "reset");
        let (status, answer) = server
            .post(
                "/api/users/reset-password",
                &json!({"token": reset, "password": "a brand new passphrase here"}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_error(
            &authorized(&server, Method::GET, "/api/users/me", &key, None).await,
            401,
            "unauthorized",
        );
        assert_error(&me(&server, token(&carl)).await, 401, "unauthorized");

        // The outbox holds live links: owner-only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let outbox = server.path().join("outbox");
            let mode = |path: &std::path::Path| {
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777
            };
            assert_eq!(mode(&outbox), 0o700, "the outbox folder");
            let mails: Vec<_> = std::fs::read_dir(&outbox)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(mails.len(), mails_to(&server, "carl@example.com").len());
            assert!(!mails.is_empty());
            for mail in mails {
                assert_eq!(mode(&mail), 0o600, "{}", mail.display());
            }
        }
    }
}

#[tokio::test]
async fn cross_site_form_posts_are_refused_on_every_form_route() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        register(
            &server,
            json!({"email": "eve@example.com", "password": PASSWORD}),
        )
        .await;
        let client = no_redirects();
        let own = server.base.clone();
        let login_form = format!(
            "email=eve%40example.com&password={}&redirect=%2Fprofile",
            PASSWORD.replace(' ', "+")
        );
        // (route, content type, body, extra headers, expected status)
        let evil: Headers = &[("origin", "https://evil.example")];
        let same_origin = [("origin", own.as_str())];
        let cases: Vec<(&str, &str, String, Headers, u16)> = vec![
            // Login CSRF: a cross-site form signs the visitor in as the attacker.
            (
                "login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
                evil,
                403,
            ),
            (
                "login",
                "multipart/form-data; boundary=x",
                "--x--".into(),
                evil,
                403,
            ),
            ("login", "text/plain", login_form.clone(), evil, 403),
            (
                "login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
                &[("sec-fetch-site", "cross-site")],
                403,
            ),
            (
                "login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
                &[("origin", "null")],
                403,
            ),
            (
                "register",
                "application/x-www-form-urlencoded",
                format!(
                    "email=mallory%40example.com&password={}",
                    PASSWORD.replace(' ', "+")
                ),
                evil,
                403,
            ),
            (
                "request-password-reset",
                "application/x-www-form-urlencoded",
                "email=eve%40example.com".into(),
                evil,
                403,
            ),
            (
                "reset-password",
                "application/x-www-form-urlencoded",
                "token=x&password=y".into(),
                evil,
                403,
            ),
            (
                "verify-email",
                "application/x-www-form-urlencoded",
                "token=x".into(),
                evil,
                403,
            ),
            (
                "logout",
                "application/x-www-form-urlencoded",
                "refreshToken=x".into(),
                evil,
                403,
            ),
            // The site's own forms, a `no-referrer` page of it, and scripts without a browser.
            (
                "login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
                &same_origin,
                303,
            ),
            (
                "login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
                &[("origin", "null"), ("sec-fetch-site", "same-origin")],
                303,
            ),
            (
                "login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
                &[],
                303,
            ),
            // JSON cannot be sent across sites without a CORS preflight: not a form post.
            (
                "login",
                "application/json",
                json!({"email": "eve@example.com", "password": PASSWORD}).to_string(),
                evil,
                200,
            ),
        ];
        for (route, content_type, body, headers, status) in cases {
            let mut request = client
                .post(server.url(&format!("/api/users/{route}")))
                .header(header::CONTENT_TYPE, content_type)
                .body(body.clone());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let what = format!("{route} {content_type} {headers:?}");
            assert_eq!(response.status().as_u16(), status, "{what}");
            if status == 403 {
                assert!(
                    response.headers().get(header::SET_COOKIE).is_none(),
                    "{what}: no session cookie"
                );
                assert_error(&decode(response).await, 403, "csrf_failed");
            }
        }
        // The cross-site register created nothing.
        assert_error(
            &login(&server, "mallory@example.com", PASSWORD).await,
            401,
            "invalid_credentials",
        );
    }
}

#[tokio::test]
async fn the_origin_check_compares_scheme_host_and_port() {
    for public_url in [None, Some("https://cms.example.test")] {
        let config = match public_url {
            Some(url) => CONFIG.replace(
                "[auth]",
                &format!("[server]\npublic_url = \"{url}\"\n[auth]"),
            ),
            None => CONFIG.to_string(),
        };
        let server = Server::start(&Backend::Sqlite, &config).await;
        let port = server.base.rsplit(':').next().unwrap().to_string();
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let (status, _) = decode(
            client
                .post(server.url("/api/users/register"))
                .json(&json!({"email": "kim@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201);
        let listen = server.base.clone();
        let https_listen = listen.replace("http://", "https://");
        let other_port = format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() + 1);
        let localhost = format!("http://localhost:{port}");
        // (Origin, Sec-Fetch-Site, allowed without public_url, allowed with it)
        let cases: [(Option<&str>, Option<&str>, bool, bool); 8] = [
            (Some(&https_listen), None, false, false),
            (Some(&listen), None, true, false),
            (Some(&localhost), None, true, false),
            (Some(&other_port), None, false, false),
            (Some("https://cms.example.test"), None, false, true),
            (Some("http://cms.example.test"), None, false, false),
            (None, Some("same-origin"), true, true),
            (None, None, false, false),
        ];
        // An unsafe cookie-authenticated request: a PATCH of the account's own document.
        let (_, own) = decode(
            client
                .get(server.url("/api/users/me"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let id = own["user"]["id"].as_str().unwrap().to_string();
        for (origin, fetch_site, without, with) in cases {
            let mut request = client
                .patch(server.url(&format!("/api/users/{id}")))
                .json(&json!({"note": "hello"}));
            if let Some(origin) = origin {
                request = request.header(header::ORIGIN, origin);
            }
            if let Some(site) = fetch_site {
                request = request.header("sec-fetch-site", site);
            }
            let answer = decode(request.send().await.unwrap()).await;
            let allowed = if public_url.is_some() { with } else { without };
            if allowed {
                assert_eq!(answer.0, 200, "{origin:?} {fetch_site:?}: {}", answer.1);
            } else {
                assert_error(&answer, 403, "csrf_failed");
            }
        }
    }
}

#[tokio::test]
async fn only_a_real_rotated_refresh_token_counts_as_reuse() {
    for backend in backends() {
        let mut server = Server::start(&backend, CONFIG).await;
        let ann = register(
            &server,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
        let first = ann["refreshToken"].as_str().unwrap().to_string();
        let session = first.split('.').next().unwrap().to_string();
        let refresh = |token: String| {
            let server = &server;
            async move {
                server
                    .post("/api/users/refresh", &json!({"refreshToken": token}))
                    .await
            }
        };

        // Anyone who read an access token knows the session id; a made-up secret is only refused.
        let forged = format!("{session}.{}", "B".repeat(43));
        assert_error(&refresh(forged.clone()).await, 401, "unauthorized");
        assert_eq!(
            me(&server, token(&ann)).await.0,
            200,
            "the session lives on"
        );
        let (status, second) = refresh(first.clone()).await;
        assert_eq!(status, 200, "{second}");
        let (status, third) = refresh(second["refreshToken"].as_str().unwrap().into()).await;
        assert_eq!(status, 200, "{third}");
        assert_error(&refresh(forged).await, 401, "unauthorized");
        assert_eq!(me(&server, token(&third)).await.0, 200);

        // A real token rotated away two refreshes ago: reuse, the session ends.
        assert_error(&refresh(first).await, 401, "unauthorized");
        assert_error(&me(&server, token(&third)).await, 401, "unauthorized");
        assert_error(
            &refresh(third["refreshToken"].as_str().unwrap().into()).await,
            401,
            "unauthorized",
        );

        // A database made before rotated tokens were kept gets their table on the next start.
        let bo = register(
            &server,
            json!({"email": "bo@example.com", "password": PASSWORD}),
        )
        .await;
        server.stop();
        drop_rotated_table(&server, &backend).await;
        server.spawn(&[]);
        let refresh = |token: String| {
            let server = &server;
            async move {
                server
                    .post("/api/users/refresh", &json!({"refreshToken": token}))
                    .await
            }
        };
        let old = bo["refreshToken"].as_str().unwrap().to_string();
        let (status, next) = refresh(old.clone()).await;
        assert_eq!(status, 200, "{next}");
        assert_error(&refresh(old).await, 401, "unauthorized");
        assert_error(
            &refresh(next["refreshToken"].as_str().unwrap().into()).await,
            401,
            "unauthorized",
        );
    }
}

/// Drops `_lucent_rotated_refresh`, as in a database made before it existed (which also predates
/// the system tables' versions, so their record goes too).
async fn drop_rotated_table(server: &Server, backend: &Backend) {
    use sea_orm::ConnectionTrait;
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            server.path().join("data/lucent.db").display()
        ),
        Backend::Postgres(_) => server.database_url.clone().unwrap(),
    };
    let db = sea_orm::Database::connect(&url).await.unwrap();
    db.execute_unprepared("DROP TABLE _lucent_rotated_refresh")
        .await
        .unwrap();
    db.execute_unprepared("DROP TABLE _lucent_system_migrations")
        .await
        .unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn authorization_schemes_are_case_insensitive_and_nbf_is_honoured() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = register(
            &server,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
        let jwt = token(&ann);
        let (_, key) = authorized(
            &server,
            Method::POST,
            "/api/users/api-keys",
            &format!("Bearer {jwt}"),
            Some(json!({"name": "ci"})),
        )
        .await;
        let key = key["apiKey"]["key"].as_str().unwrap().to_string();
        for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
            for credential in [jwt, key.as_str()] {
                let (status, answer) = authorized(
                    &server,
                    Method::GET,
                    "/api/users/me",
                    &format!("{scheme} {credential}"),
                    None,
                )
                .await;
                assert_eq!(status, 200, "{scheme}: {answer}");
            }
        }

        // A token that is not valid yet.
        use base64::Engine;
        let payload = jwt.split('.').nth(1).unwrap();
        let mut claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
        let early = mint(claims, SECRET, jsonwebtoken::Algorithm::HS256);
        assert_error(&me(&server, &early).await, 401, "unauthorized");
    }
}

#[tokio::test]
async fn auth_bodies_of_the_wrong_json_types_are_400() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let ann = register(
            &server,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
        let id = ann["user"]["id"].as_str().unwrap().to_string();
        let bearer = format!("Bearer {}", token(&ann));
        let anonymous = "";
        let patch = format!("/api/users/{id}");
        // (method, path, credential, body, the fields the 400 names)
        let cases: Vec<(Method, &str, &str, Value, &[&str])> = vec![
            (
                Method::POST,
                "/api/users/login",
                anonymous,
                json!([]),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/login",
                anonymous,
                json!("ann@example.com"),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/login",
                anonymous,
                json!({"email": 5, "password": PASSWORD}),
                &["email"],
            ),
            (
                Method::POST,
                "/api/users/login",
                anonymous,
                json!({"email": "ann@example.com", "password": 5}),
                &["password"],
            ),
            (
                Method::POST,
                "/api/users/login",
                anonymous,
                json!({"email": ["a"], "password": {}}),
                &["email", "password"],
            ),
            (
                Method::POST,
                "/api/users/login",
                anonymous,
                json!({"password": PASSWORD}),
                &["email"],
            ),
            (
                Method::POST,
                "/api/users/register",
                anonymous,
                json!([]),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/register",
                anonymous,
                json!({"email": 5, "password": PASSWORD}),
                &["email"],
            ),
            (
                Method::POST,
                "/api/users/register",
                anonymous,
                json!({"email": "x@example.com", "password": 5}),
                &["password"],
            ),
            (
                Method::POST,
                "/api/users/refresh",
                anonymous,
                json!({"refreshToken": 5}),
                &["refreshToken"],
            ),
            (
                Method::POST,
                "/api/users/refresh",
                anonymous,
                json!([]),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/logout",
                &bearer,
                json!({"refreshToken": 5}),
                &["refreshToken"],
            ),
            (
                Method::POST,
                "/api/users/logout",
                &bearer,
                json!([1]),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/verify-email",
                anonymous,
                json!({"token": 5}),
                &["token"],
            ),
            (
                Method::POST,
                "/api/users/verify-email",
                anonymous,
                json!([]),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/reset-password",
                anonymous,
                json!({"token": 5, "password": []}),
                &["token", "password"],
            ),
            (
                Method::POST,
                "/api/users/reset-password",
                anonymous,
                json!(null),
                &[""],
            ),
            (
                Method::POST,
                "/api/users/request-password-reset",
                anonymous,
                json!({"email": "not-an-email"}),
                &["email"],
            ),
            (
                Method::POST,
                "/api/users/request-password-reset",
                anonymous,
                json!({"email": 5}),
                &["email"],
            ),
            (
                Method::POST,
                "/api/users/send-verification-email",
                anonymous,
                json!({"email": "ann@"}),
                &["email"],
            ),
            (
                Method::POST,
                "/api/users/send-verification-email",
                anonymous,
                json!({"email": ""}),
                &["email"],
            ),
            (
                Method::PATCH,
                &patch,
                &bearer,
                json!({"oldPassword": {}}),
                &["oldPassword"],
            ),
            (
                Method::PATCH,
                &patch,
                &bearer,
                json!({"oldPassword": 5, "password": "another fine passphrase"}),
                &["oldPassword"],
            ),
            (Method::PATCH, &patch, &bearer, json!([]), &[""]),
            (
                Method::POST,
                "/api/users",
                anonymous,
                json!({"email": "y@example.com", "password": PASSWORD, "oldPassword": {}}),
                &["oldPassword"],
            ),
        ];
        for (method, path, credential, body, fields) in cases {
            let mut request = server
                .client
                .request(method.clone(), server.url(path))
                .json(&body);
            if !credential.is_empty() {
                request = request.header(header::AUTHORIZATION, credential);
            }
            let answer = decode(request.send().await.unwrap()).await;
            let what = format!("{method} {path} {body}");
            assert_eq!(answer.0, 400, "{what}: {}", answer.1);
            let error = &answer.1["error"];
            assert_eq!(error["code"], "validation_failed", "{what}: {error}");
            let named: Vec<&str> = error["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["field"].as_str().unwrap())
                .collect();
            assert_eq!(named, *fields, "{what}: {error}");
        }
        // Nothing above counted as a login attempt or ended the session.
        assert_eq!(me(&server, token(&ann)).await.0, 200);
        let (status, _) = login(&server, "ann@example.com", PASSWORD).await;
        assert_eq!(status, 200);
    }
}
