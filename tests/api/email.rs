//! Email verification and password reset over HTTP, with the `file` transport (mails read back
//! from the outbox folder) and the `smtp` transport against a real SMTP server: the flows, token
//! reuse, expiry, purpose and collection mix-ups, superseded tokens, enumeration-safe answers,
//! the per-account rate limit, sessions and lockout after a reset, concurrent use of one token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, SECRET};
use crate::helpers::{Backend, Server, assert_error, backends, decode};

const NEW_PASSWORD: &str = "a brand new passphrase here";

fn config(auth_extra: &str, email_extra: &str) -> String {
    format!(
        r#"
[auth]
jwt_secret = "{SECRET}"
{auth_extra}
[email]
transport = "file"
dir = "outbox"
from = "Lucent Tests <tests@lucent.test>"
verify_url = "http://app.test/verify?token={{token}}"
reset_url = "http://app.test/reset?token={{token}}"
{email_extra}
[collections.users]
auth = {{ max_login_attempts = 3, lock_time = "1h" }}
[collections.users.fields]
name = {{ type = "string" }}
[collections.admins]
auth = true
[collections.readers]
auth = {{ verify_email = true, require_verified = true }}
[collections.members]
auth = {{ login_field = "username" }}
[collections.players]
auth = {{ login_field = "username" }}
[collections.players.fields]
email = {{ type = "email", unique = true }}
"#
    )
}

/// Every mail in the outbox addressed to `to`, oldest first.
pub fn mails_to(server: &Server, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(server.path().join("outbox")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|mail| mail.contains(&format!("To: {to}\r\n")))
        .collect()
}

/// Waits until `to` has at least `count` mails, and returns them.
pub async fn wait_mails(server: &Server, to: &str, count: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let mails = mails_to(server, to);
        if mails.len() >= count {
            return mails;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{to} got {} mail(s), expected {count}",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The token of the first link to `http://app.test/<page>?token=` in a mail.
pub fn token_in(mail: &str, page: &str) -> String {
    let prefix = format!("http://app.test/{page}?token=");
    let start = mail
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link in {mail}"))
        + prefix.len();
    let token: String = mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(token.len() >= 43, "a 256-bit token: {token}");
    token
}

async fn register(server: &Server, collection: &str, body: Value) -> Value {
    let (status, body) = server
        .post(&format!("/api/{collection}/register"), &body)
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn login(
    server: &Server,
    collection: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Value) {
    server
        .post(
            &format!("/api/{collection}/login"),
            &json!({"email": email, "password": password}),
        )
        .await
}

/// Asks for a reset and returns the token of the newest mail (the `n`-th to that address).
async fn reset_token(server: &Server, collection: &str, email: &str, n: usize) -> String {
    let (status, body) = server
        .post(
            &format!("/api/{collection}/request-password-reset"),
            &json!({"email": email}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let mails = wait_mails(server, email, n).await;
    token_in(&mails[n - 1], "reset")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn verification_on_register_then_login_then_reuse_refused() {
    for backend in backends() {
        let server = Server::start(&backend, &config("", "")).await;
        let registered = register(
            &server,
            "readers",
            json!({"email": "Ann@Example.com", "password": PASSWORD}),
        )
        .await;
        assert!(registered.get("token").is_none(), "{registered}");
        assert_eq!(registered["user"]["verified"], false);

        let mails = wait_mails(&server, "ann@example.com", 1).await;
        let mail = &mails[0];
        assert!(
            mail.contains("From: \"Lucent Tests\" <tests@lucent.test>"),
            "{mail}"
        );
        assert!(
            mail.contains("Subject: Confirm your email address"),
            "{mail}"
        );
        assert!(
            mail.contains("text/plain") && mail.contains("text/html"),
            "{mail}"
        );
        let token = token_in(mail, "verify");

        assert_error(
            &login(&server, "readers", "ann@example.com", PASSWORD).await,
            403,
            "email_not_verified",
        );
        assert_error(
            &login(&server, "readers", "ann@example.com", "wrong password!!").await,
            401,
            "invalid_credentials",
        );

        let (status, verified) = server
            .post("/api/readers/verify-email", &json!({"token": token}))
            .await;
        assert_eq!(status, 200, "{verified}");
        assert_eq!(verified["user"]["verified"], true);
        assert_eq!(verified["user"]["email"], "ann@example.com");
        assert!(!verified.to_string().contains("argon2"), "{verified}");

        let (status, body) = login(&server, "readers", "ann@example.com", PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["verified"], true);

        // Single use.
        assert_error(
            &server
                .post("/api/readers/verify-email", &json!({"token": token}))
                .await,
            400,
            "invalid_token",
        );
        // A verified account gets no further verification mail (the answer is still 202).
        let (status, _) = server
            .post(
                "/api/readers/send-verification-email",
                &json!({"email": "ann@example.com"}),
            )
            .await;
        assert_eq!(status, 202);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(mails_to(&server, "ann@example.com").len(), 1);

        // The form route, with a redirect; a resend works for an unverified account.
        register(
            &server,
            "readers",
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
        let (status, _) = server
            .post(
                "/api/readers/send-verification-email",
                &json!({"email": "BOB@example.com"}),
            )
            .await;
        assert_eq!(status, 202);
        let mails = wait_mails(&server, "bob@example.com", 2).await;
        let response = no_redirects()
            .post(server.url("/api/readers/verify-email"))
            .form(&[
                ("token", token_in(&mails[1], "verify").as_str()),
                ("redirect", "/welcome"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()[header::LOCATION], "/welcome");
        // Once verified, the other outstanding verification link is dead too.
        assert_error(
            &server
                .post(
                    "/api/readers/verify-email",
                    &json!({"token": token_in(&mails[0], "verify")}),
                )
                .await,
            400,
            "invalid_token",
        );
        let (status, _) = login(&server, "readers", "bob@example.com", PASSWORD).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn reset_changes_the_password_ends_sessions_and_clears_the_lockout() {
    for backend in backends() {
        let server = Server::start(&backend, &config("", "")).await;
        let session = register(
            &server,
            "users",
            json!({"email": "carl@example.com", "password": PASSWORD}),
        )
        .await;
        for _ in 0..3 {
            login(&server, "users", "carl@example.com", "not the password").await;
        }
        assert_error(
            &login(&server, "users", "CARL@example.com", PASSWORD).await,
            429,
            "account_locked",
        );

        let token = reset_token(&server, "users", "carl@example.com", 1).await;
        let mail = &mails_to(&server, "carl@example.com")[0];
        assert!(mail.contains("Subject: Reset your password"), "{mail}");

        // The policy applies, every unmet rule listed, and the token survives a refused password.
        let weak = server
            .post(
                "/api/users/reset-password",
                &json!({"token": token, "password": "password"}),
            )
            .await;
        let error = assert_error(&weak, 400, "validation_failed");
        let codes: Vec<_> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap().to_string())
            .collect();
        assert!(codes.len() >= 2, "{error}");
        assert_error(
            &server
                .post("/api/users/reset-password", &json!({"token": token}))
                .await,
            400,
            "validation_failed",
        );

        let (status, body) = server
            .post(
                "/api/users/reset-password",
                &json!({"token": token, "password": NEW_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        // Every session ended: the access token and the refresh token are refused.
        let me = decode(
            server
                .client
                .get(server.url("/api/users/me"))
                .bearer_auth(session["token"].as_str().unwrap())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(me.0, 401, "{}", me.1);
        let (status, _) = server
            .post(
                "/api/users/refresh",
                &json!({"refreshToken": session["refreshToken"]}),
            )
            .await;
        assert_eq!(status, 401);

        // The lock is lifted; only the new password works; the token is spent.
        assert_error(
            &login(&server, "users", "carl@example.com", PASSWORD).await,
            401,
            "invalid_credentials",
        );
        let (status, body) = login(&server, "users", "carl@example.com", NEW_PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        assert_error(
            &server
                .post(
                    "/api/users/reset-password",
                    &json!({"token": token, "password": "yet another passphrase 1"}),
                )
                .await,
            400,
            "invalid_token",
        );

        // The form route with a redirect.
        let token = reset_token(&server, "users", "carl@example.com", 2).await;
        let response = no_redirects()
            .post(server.url("/api/users/reset-password"))
            .form(&[
                ("token", token.as_str()),
                ("password", PASSWORD),
                ("redirect", "/signin"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()[header::LOCATION], "/signin");
        let (status, _) = login(&server, "users", "carl@example.com", PASSWORD).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn answers_do_not_reveal_accounts_and_mails_are_rate_limited() {
    let server = Server::start(&Backend::Sqlite, &config("", "")).await;
    register(
        &server,
        "users",
        json!({"email": "dora@example.com", "password": PASSWORD}),
    )
    .await;
    for route in ["request-password-reset", "send-verification-email"] {
        let mut answers = Vec::new();
        for email in ["dora@example.com", "nobody@example.com"] {
            let response = server
                .client
                .post(server.url(&format!("/api/users/{route}")))
                .json(&json!({"email": email}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let content_type = response.headers()[header::CONTENT_TYPE].clone();
            answers.push((status, content_type, response.bytes().await.unwrap()));
        }
        assert_eq!(answers[0].0, 202);
        assert_eq!(answers[0], answers[1], "{route}");
    }
    // Two mails so far; the limit is five an hour, and extra requests still answer 202.
    for _ in 0..5 {
        let (status, _) = server
            .post(
                "/api/users/request-password-reset",
                &json!({"email": "dora@example.com"}),
            )
            .await;
        assert_eq!(status, 202);
    }
    wait_mails(&server, "dora@example.com", 5).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(mails_to(&server, "dora@example.com").len(), 5);
    assert!(mails_to(&server, "nobody@example.com").is_empty());
    // The request carries an address, never a destination: an unknown one gets no mail at all.
    let outbox = std::fs::read_dir(server.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(outbox, 5);
}

#[tokio::test]
async fn tokens_are_bound_to_purpose_collection_and_the_newest_request() {
    for backend in backends() {
        let server = Server::start(&backend, &config("", "")).await;
        for collection in ["users", "admins"] {
            register(
                &server,
                collection,
                json!({"email": "eve@example.com", "password": PASSWORD}),
            )
            .await;
        }
        let (status, _) = server
            .post(
                "/api/users/send-verification-email",
                &json!({"email": "eve@example.com"}),
            )
            .await;
        assert_eq!(status, 202);
        let verify = token_in(
            &wait_mails(&server, "eve@example.com", 1).await[0],
            "verify",
        );
        let first = reset_token(&server, "users", "eve@example.com", 2).await;
        let second = reset_token(&server, "users", "eve@example.com", 3).await;

        // A verification token does not reset, a reset token does not verify.
        assert_error(
            &server
                .post(
                    "/api/users/reset-password",
                    &json!({"token": verify, "password": NEW_PASSWORD}),
                )
                .await,
            400,
            "invalid_token",
        );
        assert_error(
            &server
                .post("/api/users/verify-email", &json!({"token": second}))
                .await,
            400,
            "invalid_token",
        );
        // Another collection's route refuses it, even for the same address.
        assert_error(
            &server
                .post(
                    "/api/admins/reset-password",
                    &json!({"token": second, "password": NEW_PASSWORD}),
                )
                .await,
            400,
            "invalid_token",
        );
        // The newer request superseded the first link.
        assert_error(
            &server
                .post(
                    "/api/users/reset-password",
                    &json!({"token": first, "password": NEW_PASSWORD}),
                )
                .await,
            400,
            "invalid_token",
        );
        for garbage in ["", "x", &"A".repeat(43), &"é".repeat(300)] {
            assert_error(
                &server
                    .post(
                        "/api/users/reset-password",
                        &json!({"token": garbage, "password": NEW_PASSWORD}),
                    )
                    .await,
                400,
                "invalid_token",
            );
        }
        let (status, body) = server
            .post(
                "/api/users/reset-password",
                &json!({"token": second, "password": NEW_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // The admins account kept its password; the verification token still verifies users.
        let (status, _) = login(&server, "admins", "eve@example.com", PASSWORD).await;
        assert_eq!(status, 200);
        let (status, body) = server
            .post("/api/users/verify-email", &json!({"token": verify}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn tokens_expire() {
    let server = Server::start(
        &Backend::Sqlite,
        &config("verify_expiry = \"1s\"\nreset_expiry = \"1s\"", ""),
    )
    .await;
    register(
        &server,
        "readers",
        json!({"email": "fay@example.com", "password": PASSWORD}),
    )
    .await;
    let verify = token_in(
        &wait_mails(&server, "fay@example.com", 1).await[0],
        "verify",
    );
    let reset = reset_token(&server, "readers", "fay@example.com", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_error(
        &server
            .post("/api/readers/verify-email", &json!({"token": verify}))
            .await,
        400,
        "invalid_token",
    );
    assert_error(
        &server
            .post(
                "/api/readers/reset-password",
                &json!({"token": reset, "password": NEW_PASSWORD}),
            )
            .await,
        400,
        "invalid_token",
    );
}

#[tokio::test]
async fn one_token_used_concurrently_succeeds_once() {
    for backend in backends() {
        let server = Server::start(&backend, &config("", "")).await;
        register(
            &server,
            "readers",
            json!({"email": "gil@example.com", "password": PASSWORD}),
        )
        .await;
        let verify = token_in(
            &wait_mails(&server, "gil@example.com", 1).await[0],
            "verify",
        );
        let reset = reset_token(&server, "readers", "gil@example.com", 2).await;

        let body = json!({"token": verify});
        let attempts = (0..8).map(|_| server.post("/api/readers/verify-email", &body));
        let answers = join_all(attempts).await;
        let wins = answers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(wins, 1, "{answers:?}");
        assert!(
            answers
                .iter()
                .all(|(status, body)| *status == 200 || body["error"]["code"] == "invalid_token")
        );

        let passwords: Vec<String> = (0..8).map(|i| format!("{NEW_PASSWORD} {i}")).collect();
        let server = &server;
        let attempts = passwords.iter().map(|password| {
            let body = json!({"token": reset, "password": password});
            async move {
                (
                    server.post("/api/readers/reset-password", &body).await,
                    password.clone(),
                )
            }
        });
        let answers = join_all(attempts).await;
        let winners: Vec<_> = answers
            .iter()
            .filter(|((status, _), _)| *status == 200)
            .collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        let (status, _) = login(server, "readers", "gil@example.com", &winners[0].1).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn username_collections_need_an_email_field() {
    let server = Server::start(&Backend::Sqlite, &config("", "")).await;
    for route in ["request-password-reset", "send-verification-email"] {
        assert_error(
            &server
                .post(
                    &format!("/api/members/{route}"),
                    &json!({"email": "x@example.com"}),
                )
                .await,
            400,
            "email_unsupported",
        );
    }
    assert_error(
        &server
            .post(
                "/api/nothing/request-password-reset",
                &json!({"email": "x@example.com"}),
            )
            .await,
        404,
        "not_found",
    );
    assert_error(
        &server
            .post("/api/users/request-password-reset", &json!({}))
            .await,
        400,
        "validation_failed",
    );

    register(
        &server,
        "players",
        json!({"username": "hilda", "email": "Hilda@Example.com", "password": PASSWORD}),
    )
    .await;
    let token = reset_token(&server, "players", "hilda@example.com", 1).await;
    let (status, body) = server
        .post(
            "/api/players/reset-password",
            &json!({"token": token, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/players/login",
            &json!({"username": "HILDA", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Python's stdlib SMTP sink (`smtpd.DebuggingServer`, Python ≤ 3.11), printing each message.
struct SmtpSink {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-W",
                "ignore",
                "-m",
                "smtpd",
                "-n",
                "-c",
                "DebuggingServer",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with the smtpd module (Python <= 3.11) runs the SMTP sink");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the SMTP sink did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            child,
            port,
            output,
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_smtp_transport_delivers_to_a_real_server() {
    let sink = SmtpSink::start();
    let toml = config("", "").replace(
        "transport = \"file\"",
        &format!(
            "transport = \"smtp\"\nurl = \"smtp://127.0.0.1:{}?tls=none\"",
            sink.port
        ),
    );
    let server = Server::start(&Backend::Sqlite, &toml).await;
    register(
        &server,
        "users",
        json!({"email": "ivy@example.com", "password": PASSWORD}),
    )
    .await;
    let (status, _) = server
        .post(
            "/api/users/request-password-reset",
            &json!({"email": "ivy@example.com"}),
        )
        .await;
    assert_eq!(status, 202);
    let started = Instant::now();
    let received = loop {
        let text = sink.output.lock().unwrap().clone();
        if text.contains("END MESSAGE") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no mail arrived: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(received.contains("To: ivy@example.com"), "{received}");
    assert!(
        received.contains("Subject: Reset your password"),
        "{received}"
    );
    let token = token_in(&received, "reset");
    let (status, body) = server
        .post(
            "/api/users/reset-password",
            &json!({"token": token, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!server.path().join("outbox").exists());
}
