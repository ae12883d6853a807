//! `[server] static_dir` (files at `/`, never outside the folder, the API kept at `/api`) and form
//! failures sent back to the form page, over plain HTTP. The browser test drives the same flows in
//! Chromium.

use reqwest::header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::config;
use crate::helpers::{Backend, Server, assert_error, decode};

const PASSWORD: &str = "a long and unusual passphrase 42";
/// Written into `lucent.toml`, beside the served folder: it must never come back.
const MARKER: &str = "NOT-PUBLIC-3f9c";

async fn site() -> Server {
    let config = format!(
        "# {MARKER}\n[server]\nstatic_dir = \"site\"\n{}",
        config("")
    );
    Server::start_with(
        &Backend::Sqlite,
        &config,
        &[
            ("site/index.html", "<h1>home</h1>"),
            ("site/login.html", "<form>login</form>"),
            ("site/style.css", "body {}"),
            ("site/app.js", "let x = 1;"),
            ("site/docs/index.html", "docs"),
            ("site/api/secret.txt", "shadowed"),
        ],
        &[],
    )
    .await
}

/// Sends `path` as written, byte for byte: an HTTP client library would normalize `..` away.
async fn raw_get(server: &Server, path: &str) -> (u16, String) {
    let authority = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

#[tokio::test]
async fn static_dir_serves_files_at_the_root_with_their_types() {
    let server = site().await;
    for (path, body, content_type) in [
        ("/", "<h1>home</h1>", "text/html; charset=utf-8"),
        (
            "/login.html",
            "<form>login</form>",
            "text/html; charset=utf-8",
        ),
        ("/style.css", "body {}", "text/css; charset=utf-8"),
        ("/app.js", "let x = 1;", "text/javascript"),
        ("/docs/", "docs", "text/html; charset=utf-8"),
    ] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let found = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert_eq!(found, content_type, "{path}");
        assert_eq!(response.text().await.unwrap(), body, "{path}");
    }
    let response = server.client.get(server.url("/nope.html")).send().await;
    assert_error(&decode(response.unwrap()).await, 404, "not_found");
    let response = server.client.post(server.url("/login.html")).send().await;
    assert_eq!(response.unwrap().status(), 405);
    // The API keeps /api: its routes, and a JSON 404 for what is not one, whatever the folder holds.
    let (status, health) = server.get("/api/health").await;
    assert_eq!((status.as_u16(), &health["status"]), (200, &"ok".into()));
    assert_error(&server.get("/api/secret.txt").await, 404, "not_found");
    assert_error(&server.get("/api/a/b/c").await, 404, "not_found");
}

#[tokio::test]
async fn static_dir_never_serves_outside_its_folder() {
    let server = site().await;
    assert_eq!(raw_get(&server, "/login.html").await.0, 200);
    for path in [
        "/../lucent.toml",
        "/docs/../../lucent.toml",
        "/%2e%2e/lucent.toml",
        "/%2E%2E%2Flucent.toml",
        "/..%2flucent.toml",
        "/docs/%2e%2e/%2e%2e/lucent.toml",
        "/.%2e/lucent.toml",
        "/%2f..%2flucent.toml",
        "/..%5clucent.toml",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/../../../../../../etc/passwd",
    ] {
        let (status, answer) = raw_get(&server, path).await;
        assert!(matches!(status, 400 | 404), "{path}: {answer}");
        assert!(!answer.contains(MARKER), "{path} leaked the config");
        assert!(!answer.contains("root:"), "{path} leaked /etc/passwd");
    }
}

#[tokio::test]
async fn without_static_dir_the_root_is_a_json_404() {
    let server = Server::start(&Backend::Sqlite, &config("")).await;
    assert_error(&server.get("/").await, 404, "not_found");
    assert_error(&server.get("/index.html").await, 404, "not_found");
}

#[tokio::test]
async fn form_failures_go_back_to_the_form_page_with_the_error() {
    let server = site().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, fields: &[(&str, &str)], referer: Option<String>| {
        let mut request = client
            .post(server.url(path))
            .header("origin", server.base.clone())
            .form(fields);
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        async move { request.send().await.unwrap() }
    };
    let location = |response: &reqwest::Response| {
        assert_eq!(response.status(), 303);
        response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_string()
    };
    let signup = |username: &'static str, password: &'static str| {
        [
            ("username", username),
            ("password", password),
            ("redirect", "/profile.html"),
            ("error_redirect", "/signup.html?from=home"),
        ]
    };

    let weak = post(
        "/api/members/register",
        &signup("JaneSmith8000", "short"),
        None,
    )
    .await;
    assert_eq!(
        location(&weak),
        "/signup.html?from=home&error=validation_failed&detail=password%3Atoo_short"
    );
    let short_name = post("/api/members/register", &signup("ab", PASSWORD), None).await;
    assert_eq!(
        location(&short_name),
        "/signup.html?from=home&error=validation_failed&detail=username%3Atoo_short"
    );
    let created = post(
        "/api/members/register",
        &signup("JaneSmith8000", PASSWORD),
        None,
    )
    .await;
    assert_eq!(location(&created), "/profile.html");
    let taken = post(
        "/api/members/register",
        &signup("janesmith8000", PASSWORD),
        None,
    )
    .await;
    assert_eq!(
        location(&taken),
        "/signup.html?from=home&error=unique_violation&detail=username%3Aunique"
    );

    // Without error_redirect, a same-origin Referer names the form page.
    let wrong = [
        ("username", "JANESMITH8000"),
        ("password", "not the password at all"),
        ("redirect", "/profile.html"),
    ];
    let referer = Some(server.url("/login.html?x=1"));
    let response = post("/api/members/login", &wrong, referer).await;
    assert_eq!(
        location(&response),
        "/login.html?x=1&error=invalid_credentials"
    );
    // A Referer of another origin is not followed: the JSON error, as without any page.
    let elsewhere = Some("http://evil.example/login.html".to_string());
    let response = post("/api/members/login", &wrong, elsewhere).await;
    assert_error(&decode(response).await, 401, "invalid_credentials");
    let response = post("/api/members/login", &wrong, None).await;
    assert_error(&decode(response).await, 401, "invalid_credentials");
    // No `redirect`: a script's form post, answered in JSON even with a page to go back to.
    let scripted = [
        ("username", "janesmith8000"),
        ("password", "wrong wrong wrong"),
    ];
    let response = post(
        "/api/members/login",
        &scripted,
        Some(server.url("/login.html")),
    )
    .await;
    assert_error(&decode(response).await, 401, "invalid_credentials");
    // error_redirect is checked like redirect.
    for bad in ["https://evil.example/", "//evil.example", "login.html"] {
        let fields = [
            ("username", "janesmith8000"),
            ("password", PASSWORD),
            ("redirect", "/profile.html"),
            ("error_redirect", bad),
        ];
        let response = post("/api/members/login", &fields, None).await;
        assert_error(&decode(response).await, 400, "bad_request");
    }
    // Logging out without a session goes back to the page too.
    let fields = [
        ("redirect", "/login.html"),
        ("error_redirect", "/login.html"),
    ];
    let response = post("/api/members/logout", &fields, None).await;
    assert_eq!(location(&response), "/login.html?error=unauthorized");
    // Successes are unchanged, and a success sets no error.
    let right = [
        ("username", "JANESMITH8000"),
        ("password", PASSWORD),
        ("redirect", "/profile.html"),
        ("error_redirect", "/login.html"),
    ];
    let response = post("/api/members/login", &right, None).await;
    assert_eq!(location(&response), "/profile.html");
}
