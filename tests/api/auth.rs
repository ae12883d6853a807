//! Auth over HTTP: register, login, tokens, refresh rotation and reuse, logout, cookies with the
//! CSRF origin check, lockout, form posts, sessions, password changes. Flows are tables of steps
//! (`scenario`); races, restarts and several servers stay code.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, Server, assert_error, backends, decode};
use crate::scenario::{Step, credentials, run};

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
        let member = |username: &str| json!({"username": username, "password": PASSWORD});
        run(
            &server,
            &server.client,
            vec![
                Step::post(
                    "/api/users/register",
                    json!({"email": "Jane@Example.com", "password": PASSWORD, "name": "Jane"}),
                )
                .expect(201)
                .header_is("cache-control", "no-store")
                .header_has("set-cookie", "lucent_session=")
                .header_has("set-cookie", "HttpOnly")
                .header_has("set-cookie", "SameSite=Lax")
                .header_has("set-cookie", "Path=/")
                .header_lacks("set-cookie", "Domain")
                .json("/user/email", json!("jane@example.com"))
                .absent("/user/password")
                .check(|body, _| assert!(!body.to_string().contains("argon2"), "{body}"))
                .check(|body, _| {
                    assert!(body["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp())
                })
                .save("token", "/token")
                .save("id", "/user/id"),
                Step::get("/api/users/me")
                    .bearer("{token}")
                    .json("/user/id", json!("{id}")),
                Step::post(
                    "/api/users/register",
                    credentials("JANE@example.COM", PASSWORD),
                )
                .error(409, "unique_violation"),
                Step::post(
                    "/api/users/login",
                    credentials("jAnE@example.com", PASSWORD),
                )
                .check(|body, _| {
                    assert!(body["token"].is_string() && body["refreshToken"].is_string())
                }),
                // Username collections: JaneSmith8000 and janesmith8000 are one account.
                Step::post("/api/members/register", member("JaneSmith8000")).expect(201),
                Step::post("/api/members/register", member("janesmith8000"))
                    .error(409, "unique_violation"),
                Step::post("/api/members/login", member("JANESMITH8000"))
                    .json("/user/username", json!("JaneSmith8000")),
                Step::post("/api/members/register", member("abc"))
                    .error(400, "validation_failed")
                    .json("/error/details/0/field", json!("username")),
                Step::get("/api/members/me")
                    .bearer("{token}")
                    .error(401, "unauthorized")
                    .because("a token of another collection is refused by this one's routes"),
                Step::get("/api/users/me").error(401, "unauthorized"),
            ],
        )
        .await;
    }
}

#[tokio::test]
async fn failed_logins_look_the_same_and_lock_the_identifier() {
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    let login =
        |email: &str, password: &str| Step::post("/api/users/login", credentials(email, password));
    let mut steps = vec![
        Step::post(
            "/api/users/register",
            credentials("ann@example.com", PASSWORD),
        )
        .expect(201),
        login("ann@example.com", "wrong password!")
            .error(401, "invalid_credentials")
            // Alike but for the request's own id.
            .save_with("wrong", |body| {
                let mut body = body.clone();
                body["error"].as_object_mut().unwrap().remove("requestId");
                body
            }),
        login("nobody@example.com", "wrong password!")
            .error(401, "invalid_credentials")
            .check(|body, vars| {
                let mut body = body.clone();
                body["error"].as_object_mut().unwrap().remove("requestId");
                assert_eq!(Some(&body), vars.get("wrong"));
            })
            .because("unknown account and wrong password give the same answer"),
        // A body without the login field or password breaks the schema: a 400, not a failed login.
        Step::post("/api/users/login", json!({})).error(400, "validation_failed"),
    ];
    // max_login_attempts = 3: two more failures lock it, even for the right password.
    for _ in 0..2 {
        steps.push(login("ANN@example.com", "nope nope nope").error(401, "invalid_credentials"));
    }
    steps.push(login("ann@example.com", PASSWORD).error(429, "account_locked"));
    // Unknown identifiers lock too, so locking reveals nothing.
    for _ in 0..3 {
        steps.push(login("ghost@example.com", "x").error(401, "invalid_credentials"));
    }
    steps.push(login("ghost@example.com", "x").error(429, "account_locked"));
    steps.push(Step::wait(Duration::from_millis(2100)));
    steps.push(login("ann@example.com", PASSWORD).because("the lock expires after lock_time"));
    run(&server, &server.client, steps).await;
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
    let codes = |body: &Value| -> Vec<String> {
        body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap().to_string())
            .collect()
    };
    run(
        &server,
        &server.client,
        vec![
            Step::post("/api/users/register", credentials("a@b.io", "short"))
                .error(400, "validation_failed")
                .check(move |body, _| {
                    assert_eq!(
                        codes(body),
                        ["too_short", "missing_number", "missing_symbol"]
                    )
                }),
        ],
    )
    .await;
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    run(
        &server,
        &server.client,
        vec![
        Step::post("/api/users/register", credentials("a@b.io", "password1234"))
            .error(400, "validation_failed")
            .json("/error/details/0/code", json!("common_password")),
        Step::post("/api/users/register", json!({"email": "a@b.io"}))
            .error(400, "validation_failed")
            .json(
                "/error/details/0",
                json!({"field": "password", "code": "required", "message": "password is required"}),
            ),
    ],
    )
    .await;
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
        let refresh =
            |token: &str| Step::post("/api/users/refresh", json!({"refreshToken": token}));
        run(
            &server,
            &server.client,
            vec![
                Step::post(
                    "/api/users/register",
                    credentials("ann@example.com", PASSWORD),
                )
                .expect(201)
                .save("first", "/refreshToken"),
                refresh("{first}")
                    .check(|body, vars| assert_ne!(body["refreshToken"], vars["first"]))
                    .save("second", "/refreshToken")
                    .save("rotated", "/token"),
                Step::get("/api/users/me").bearer("{rotated}"),
                // The rotated-away token comes back: the session ends, so the newest token dies too.
                refresh("{first}").error(401, "unauthorized"),
                refresh("{second}").error(401, "unauthorized"),
                Step::get("/api/users/me")
                    .bearer("{rotated}")
                    .error(401, "unauthorized"),
                refresh("garbage").error(401, "unauthorized"),
                Step::post("/api/members/refresh", json!({"refreshToken": "{second}"}))
                    .error(401, "unauthorized"),
            ],
        )
        .await;
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
        let login = || Step::post("/api/users/login", credentials("ann@example.com", PASSWORD));
        let me = |token: &str| Step::get("/api/users/me").bearer(token);
        let sessions = |token: &str| Step::get("/api/users/sessions").bearer(token);
        run(
            &server,
            &server.client,
            vec![
                Step::post(
                    "/api/users/register",
                    credentials("ann@example.com", PASSWORD),
                )
                .expect(201)
                .save("first", "/token"),
                login().save("second", "/token"),
                login().save("third", "/token"),
                sessions("{second}").check(|body, _| {
                    let list = body["sessions"].as_array().unwrap();
                    assert_eq!(list.len(), 3);
                    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
                    assert!(list[0]["userAgent"].is_string() && list[0]["expiresAt"].is_string());
                }),
                Step::post_empty("/api/users/logout").bearer("{first}"),
                me("{first}").error(401, "unauthorized"),
                me("{second}"),
                // Ending one session by id; someone else's id is 404.
                Step::post(
                    "/api/users/register",
                    credentials("bob@example.com", PASSWORD),
                )
                .expect(201)
                .save("other", "/token")
                .save("other_refresh", "/refreshToken"),
                sessions("{other}").save("bob_session", "/sessions/0/id"),
                Step::delete("/api/users/sessions/{bob_session}")
                    .bearer("{second}")
                    .error(404, "not_found"),
                sessions("{second}").save_with("third_id", |body| {
                    body["sessions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|s| s["current"] == false)
                        .unwrap()["id"]
                        .clone()
                }),
                Step::delete("/api/users/sessions/{third_id}").bearer("{second}"),
                me("{third}").error(401, "unauthorized"),
                login().save("fourth", "/token"),
                Step::post_empty("/api/users/logout-all")
                    .bearer("{second}")
                    .json("/sessionsEnded", json!(2)),
                me("{second}").error(401, "unauthorized"),
                me("{fourth}").error(401, "unauthorized"),
                me("{other}").because("other accounts keep theirs"),
                Step::post(
                    "/api/users/logout",
                    json!({"refreshToken": "{other_refresh}"}),
                )
                .because("logout by refresh token"),
                me("{other}").error(401, "unauthorized"),
            ],
        )
        .await;
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
    let server = Server::start(&Backend::Sqlite, &config).await;
    // A client that keeps cookies: registering logs it in by cookie.
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let own = server.base.clone();
    let note = || Step::post("/api/notes", json!({"text": "hi"}));
    run(
        &server,
        &client,
        vec![
            Step::post(
                "/api/users/register",
                credentials("ann@example.com", PASSWORD),
            )
            .expect(201),
            Step::get("/api/users/me").because("GET by cookie needs no Origin"),
            note().error(403, "csrf_failed"),
            note()
                .header("origin", "https://evil.example")
                .error(403, "csrf_failed"),
            note().header("origin", "null").error(403, "csrf_failed"),
            note().header("origin", &own).expect(201),
            note()
                .header("origin", "https://app.example.com")
                .expect(201),
            // Refresh by cookie is an unsafe cookie request too.
            Step::post_empty("/api/users/refresh").error(403, "csrf_failed"),
            Step::post_empty("/api/users/refresh").header("origin", &own),
            // Logout by cookie clears it.
            Step::post_empty("/api/users/logout")
                .header("origin", &own)
                .header_has("set-cookie", "Max-Age=0"),
            Step::get("/api/users/me").error(401, "unauthorized"),
        ],
    )
    .await;
}

#[tokio::test]
async fn html_forms_register_login_and_logout_with_redirects() {
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let own = server.base.clone();
    let form =
        |path: &str, fields: &[(&str, &str)]| Step::form(path, fields).header("origin", &own);
    let mut steps = vec![
        form(
            "/api/members/register",
            &[
                ("username", "formuser"),
                ("password", PASSWORD),
                ("redirect", "/profile"),
            ],
        )
        .expect(303)
        .header_is("location", "/profile")
        .header_starts("set-cookie", "lucent_session="),
        Step::get("/api/members/me").json("/user/username", json!("formuser")),
        form("/api/members/logout", &[("redirect", "/login")])
            .expect(303)
            .header_is("location", "/login"),
        Step::get("/api/members/me").expect(401),
        form(
            "/api/members/login",
            &[
                ("username", "FORMUSER"),
                ("password", PASSWORD),
                ("redirect", "/profile"),
            ],
        )
        .expect(303),
    ];
    for bad in ["https://evil.example/", "//evil.example", "profile"] {
        steps.push(
            form(
                "/api/members/login",
                &[
                    ("username", "formuser"),
                    ("password", PASSWORD),
                    ("redirect", bad),
                ],
            )
            .error(400, "bad_request"),
        );
    }
    run(&server, &client, steps).await;
}

#[tokio::test]
async fn changing_a_password_needs_the_old_one_and_ends_other_sessions() {
    for backend in backends() {
        let server = Server::start(&backend, &config("")).await;
        let patch = |body: Value| Step::patch("/api/users/{id}", body).bearer("{token}");
        let new = "a brand new passphrase";
        run(
            &server,
            &server.client,
            vec![
                Step::post(
                    "/api/users/register",
                    credentials("ann@example.com", PASSWORD),
                )
                .expect(201)
                .save("id", "/user/id")
                .save("token", "/token"),
                Step::post("/api/users/login", credentials("ann@example.com", PASSWORD))
                    .save("other", "/token"),
                patch(json!({"password": new}))
                    .error(400, "validation_failed")
                    .json("/error/details/0/field", json!("oldPassword")),
                patch(json!({"password": new, "oldPassword": "wrong"}))
                    .error(400, "validation_failed")
                    .json("/error/details/0/code", json!("invalid_password")),
                patch(json!({"password": "short", "oldPassword": PASSWORD}))
                    .error(400, "validation_failed")
                    .json("/error/details/0/code", json!("too_short")),
                patch(json!({"password": new, "oldPassword": PASSWORD, "name": "Ann"}))
                    .absent("/doc/password"),
                Step::get("/api/users/me")
                    .bearer("{token}")
                    .because("this session stays"),
                Step::get("/api/users/me")
                    .bearer("{other}")
                    .error(401, "unauthorized"),
                Step::post("/api/users/login", credentials("ann@example.com", PASSWORD))
                    .error(401, "invalid_credentials"),
                Step::post("/api/users/login", credentials("ann@example.com", new)),
                // Deleting the account ends its sessions.
                Step::delete("/api/users/{id}").bearer("{token}"),
                Step::get("/api/users/me")
                    .bearer("{token}")
                    .error(401, "unauthorized"),
            ],
        )
        .await;
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
