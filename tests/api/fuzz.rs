//! Fuzzing a live server (bounded, part of `cargo test`): random JSON bodies for create, update,
//! register, login and the other auth routes, random query strings for lists, random ids, random
//! headers and content types, on SQLite always and on PostgreSQL when it is configured. No answer
//! may be a 5xx, and every 4xx carries the error envelope `{"error": {code, message, details}}`.
//! What the fuzzer finds is kept in [`REGRESSIONS`] and replayed first.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::helpers::{Server, backends};

const CONFIG: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"
[auth.password]
min_length = 8
[collections.users]
auth = { max_login_attempts = 1000 }
[collections.users.fields]
name = { type = "string", max_length = 100 }
role = { type = "select", options = ["admin", "user"], default = "user", access = { create = "user.role == 'admin'", update = "user.role == 'admin'" } }
[collections.users.access]
read = "user != null && (doc.id == user.id || user.role == 'admin')"
update = "user != null && doc.id == user.id"
delete = "false"

[collections.posts.fields]
title     = { type = "string", required = true, max_length = 200 }
slug      = { type = "string", unique = true, pattern = "[a-z0-9-]+" }
body      = { type = "text" }
status    = { type = "select", options = ["draft", "published"], default = "draft" }
views     = { type = "integer", default = 0, min = 0, max = 1000000 }
rating    = { type = "number", min = 0, max = 5 }
featured  = { type = "boolean" }
published = { type = "datetime" }
meta      = { type = "json" }
contact   = { type = "email" }
secret    = { type = "string", hidden = true }
note      = { type = "string", access = { read = "user != null && doc.author == user.id", update = "data.note != 'x'" } }
author    = { type = "relation", to = "users", access = { create = "data.author == user.id || data.author == null" } }
[collections.posts.access]
read = "doc.status == 'published' || (user != null && doc.author == user.id) || doc.views > 10"
create = "true"
update = "user == null || doc.author == user.id || data.title ~ 'x'"
delete = "doc.views > 999999"
"#;

/// Replayed before the random requests: inputs at the edges, and every request the fuzzer has
/// found answered with a 5xx or without the envelope, as (method, path and query, content type,
/// body); `{post}` stands for a stored post's id. (So far it has found only NUL characters on
/// PostgreSQL, a 500 that is being fixed elsewhere: see the note in the test.)
const REGRESSIONS: &[(&str, &str, &str, &str)] = &[
    (
        "GET",
        "/api/posts?filter=views%20%3E%209223372036854775807",
        "",
        "",
    ),
    ("GET", "/api/posts?filter=rating%20%3E%201e308", "", ""),
    (
        "GET",
        "/api/posts?limit=18446744073709551616&page=18446744073709551616",
        "",
        "",
    ),
    ("GET", "/api/posts?page=9223372036854775807", "", ""),
    ("GET", "/api/posts?sort=-views,-views", "", ""),
    ("GET", "/api/posts/%FF%FE", "", ""),
    (
        "PATCH",
        "/api/posts/{post}",
        "application/json",
        r#"{"views": 1e400}"#,
    ),
    (
        "PATCH",
        "/api/posts/{post}",
        "application/json",
        r#"{"views": 18446744073709551615}"#,
    ),
    (
        "POST",
        "/api/posts",
        "application/json",
        r#"{"title": "t", "published": "+275760-09-13T00:00:00Z"}"#,
    ),
    (
        "POST",
        "/api/posts",
        "application/json",
        r#"{"title": "t", "published": "0000-01-01T00:00:00Z"}"#,
    ),
    (
        "POST",
        "/api/posts",
        "application/json",
        r#"{"title": "t", "rating": -0.0}"#,
    ),
    (
        "POST",
        "/api/posts",
        "application/json; charset=utf-16",
        r#"{"title": "t"}"#,
    ),
    (
        "POST",
        "/api/users/login",
        "application/x-www-form-urlencoded",
        "email=%FF&password=x",
    ),
    (
        "POST",
        "/api/users/register",
        "application/x-www-form-urlencoded",
        "redirect=%0d%0aLocation:x",
    ),
    (
        "POST",
        "/api/users/refresh",
        "application/json",
        r#"{"refreshToken": "."}"#,
    ),
];

/// What the fuzzer works on: a stored post and a signed-in account.
#[derive(Debug, Clone)]
struct Fixture {
    post: String,
    user: String,
    token: String,
}

/// One request, as sent.
#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

#[test]
fn random_requests_never_get_a_5xx_and_4xx_carry_the_envelope() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for backend in backends() {
        let server = runtime.block_on(Server::start(&backend, CONFIG));
        let fixture = runtime.block_on(fixture(&server));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for (method, path, content_type, body) in REGRESSIONS {
            let request = Request {
                method,
                path: path.replace("{post}", &fixture.post),
                headers: if content_type.is_empty() {
                    vec![]
                } else {
                    vec![("content-type", content_type.to_string())]
                },
                body: (!body.is_empty()).then(|| body.as_bytes().to_vec()),
            };
            runtime
                .block_on(send(&client, &server, &request))
                .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        }
        // U+0000 is in the inputs on every engine: PostgreSQL refuses NUL in text, and it was a
        // 500 there (found here first as `GET /api/posts/a%00b`) until the edge refused it.
        let nul = true;
        let mut runner = TestRunner::new(Config {
            cases: 1000,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&request(&fixture, nul), |request| {
            runtime.block_on(send(&client, &server, &request))
        });
        if let Err(e) = result {
            panic!("{backend:?}: {e}");
        }
    }
}

async fn fixture(server: &Server) -> Fixture {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": "fuzz@example.com", "password": "correct horse battery staple", "name": "F"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let user = body["user"]["id"].as_str().unwrap().to_string();
    let (status, body) = server
        .post(
            "/api/posts",
            &json!({"title": "Hello", "slug": "hello", "status": "published", "views": 3, "meta": {"a": [1]}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Fixture {
        post: body["doc"]["id"].as_str().unwrap().to_string(),
        user,
        token,
    }
}

/// Sends `request` and checks the answer: no 5xx, the envelope on every 4xx.
async fn send(
    client: &reqwest::Client,
    server: &Server,
    request: &Request,
) -> Result<(), TestCaseError> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("a method");
    let mut builder = client.request(method, server.url(&request.path));
    for (name, value) in &request.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = match builder.send().await {
        Ok(response) => response,
        // A URL reqwest itself refuses never reached the server.
        Err(e) if e.is_builder() => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("{request:?}: {e}"))),
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let shown = || {
        let body = request
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        format!(
            "{} {} {:?} {:?}\n→ {status} {text}",
            request.method, request.path, request.headers, body
        )
    };
    prop_assert!(!status.is_server_error(), "{}", shown());
    if status.is_client_error() {
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| TestCaseError::fail(format!("not JSON: {}", shown())))?;
        let error = &body["error"];
        prop_assert!(
            error["code"].is_string()
                && error["message"].is_string()
                && error["details"].is_array(),
            "no error envelope: {}",
            shown()
        );
    }
    Ok(())
}

/// Strings: the troublesome ones, and any at all (without U+0000 unless `nul`).
fn text(nul: bool) -> BoxedStrategy<String> {
    let pool = select(vec![
        "",
        " ",
        "x",
        "hello",
        "draft",
        "published",
        "admin",
        "a@b.co",
        "not an email",
        "2026-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "+275760-09-13T00:00:00Z",
        "'; DROP TABLE posts; --",
        "%_\\",
        "é",
        "\u{202e}",
        "\u{fffd}",
        "\u{1f600}",
        "a\u{0}b",
        "${SET}",
        "../../etc/passwd",
        "00000000-0000-0000-0000-000000000000",
    ])
    .prop_map(String::from);
    let long = (200usize..5000).prop_map(|n| "x".repeat(n));
    prop_oneof![4 => pool, 3 => any::<String>(), 1 => long]
        .prop_map(move |s| if nul { s } else { s.replace('\u{0}', "") })
        .boxed()
}

/// JSON values with numbers and strings at the edges.
fn json(nul: bool) -> BoxedStrategy<Value> {
    let number = select(vec![
        "0",
        "-1",
        "1",
        "3",
        "2.5",
        "-0.0",
        "1e308",
        "5e-324",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "1000001",
    ])
    .prop_map(|n| serde_json::from_str::<Value>(n).expect("a number"));
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => number,
        3 => text(nul).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(nul), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Object keys: fields of the config (hidden, system and auth ones too), and anything.
fn key(nul: bool) -> BoxedStrategy<String> {
    let known = select(vec![
        "title",
        "slug",
        "body",
        "status",
        "views",
        "rating",
        "featured",
        "published",
        "meta",
        "contact",
        "secret",
        "note",
        "author",
        "id",
        "createdAt",
        "updatedAt",
        "email",
        "password",
        "oldPassword",
        "name",
        "role",
        "verified",
        "verificationToken",
        "resetToken",
        "refreshToken",
        "token",
        "redirect",
        "scopes",
        "expiresAt",
    ])
    .prop_map(String::from);
    prop_oneof![4 => known, 1 => text(nul)].boxed()
}

/// A value of roughly the right type for a field, so that many bodies pass validation and reach
/// the database.
fn typed_value(field: &'static str, nul: bool) -> BoxedStrategy<Value> {
    let number = |values: Vec<&'static str>| {
        select(values).prop_map(|n| serde_json::from_str::<Value>(n).expect("a number"))
    };
    match field {
        "views" => number(vec![
            "0",
            "1",
            "999999",
            "1000000",
            "1000001",
            "-1",
            "2.0",
            "9223372036854775807",
        ])
        .boxed(),
        "rating" => number(vec!["0", "5", "2.5", "-0.0", "5e-324", "4.999999999999999"]).boxed(),
        "featured" => any::<bool>().prop_map(Value::Bool).boxed(),
        "published" => prop_oneof![
            select(vec![
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00.123456789+14:00",
                "1970-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999Z",
                "0001-01-01T00:00:00Z",
                "2026-02-29T00:00:00Z",
            ])
            .prop_map(|t| Value::String(t.to_string())),
            text(nul).prop_map(Value::String),
        ]
        .boxed(),
        "status" => select(vec!["draft", "published", "Draft", ""])
            .prop_map(|s| Value::String(s.to_string()))
            .boxed(),
        "meta" => json(nul),
        "slug" => prop_oneof![
            "[a-z0-9-]{1,20}".prop_map(Value::String),
            text(nul).prop_map(Value::String),
        ]
        .boxed(),
        "contact" | "email" => prop_oneof![
            "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::String),
            text(nul).prop_map(|t| Value::String(format!("{t}@x.io"))),
            text(nul).prop_map(Value::String),
        ]
        .boxed(),
        _ => prop_oneof![4 => text(nul).prop_map(Value::String), 1 => json(nul)].boxed(),
    }
}

/// A JSON object: `base` (valid keys with typed values) and then random keys, typed or not.
fn object(base: Vec<&'static str>, extra: Vec<&'static str>, nul: bool) -> BoxedStrategy<Vec<u8>> {
    let fixed: Vec<BoxedStrategy<(String, Value)>> = base
        .into_iter()
        .map(|field| {
            typed_value(field, nul)
                .prop_map(move |v| (field.to_string(), v))
                .boxed()
        })
        .collect();
    let random = (key(nul), json(nul)).boxed();
    let pair = if extra.is_empty() {
        random
    } else {
        let typed = select(extra).prop_flat_map(move |field| {
            typed_value(field, nul).prop_map(move |v| (field.to_string(), v))
        });
        prop_oneof![4 => typed, 1 => random].boxed()
    };
    let extra = proptest::collection::vec(pair, 0..3);
    (fixed, extra)
        .prop_map(|(fixed, extra)| {
            let object: serde_json::Map<String, Value> = fixed.into_iter().chain(extra).collect();
            Value::Object(object).to_string().into_bytes()
        })
        .boxed()
}

/// A body for `route`: usually a JSON object that route expects, with random parts; sometimes
/// any JSON, form fields or bytes; with a content type to match, or not.
fn body(route: &'static str, nul: bool) -> BoxedStrategy<(Option<&'static str>, Vec<u8>)> {
    const POST_FIELDS: [&str; 13] = [
        "title",
        "slug",
        "body",
        "status",
        "views",
        "rating",
        "featured",
        "published",
        "meta",
        "contact",
        "note",
        "author",
        "secret",
    ];
    let expected = match route {
        "/api/posts" | "/api/posts/{id}" => object(vec!["title"], POST_FIELDS.to_vec(), nul),
        "/api/users" | "/api/users/register" => object(
            vec!["email", "password"],
            vec!["name", "role", "verified", "id", "oldPassword"],
            nul,
        ),
        "/api/users/{id}" => object(
            vec![],
            vec!["name", "role", "email", "password", "oldPassword"],
            nul,
        ),
        "/api/users/login" => object(vec!["email", "password"], vec!["redirect"], nul),
        "/api/users/refresh" | "/api/users/logout" => object(vec!["refreshToken"], vec![], nul),
        "/api/users/api-keys" => object(vec!["name"], vec!["scopes", "expiresAt"], nul),
        "/api/users/verify-email" => object(vec!["token"], vec![], nul),
        "/api/users/request-password-reset" => object(vec!["email"], vec![], nul),
        _ => object(vec!["token", "password"], vec![], nul),
    };
    let any_json = json(nul).prop_map(|value| value.to_string().into_bytes());
    let form = proptest::collection::vec((key(nul), text(nul)), 0..5).prop_map(|pairs| {
        serde_urlencoded::to_string(pairs)
            .unwrap_or_default()
            .into_bytes()
    });
    let bytes = proptest::collection::vec(any::<u8>(), 0..64)
        .prop_map(move |b| b.into_iter().filter(|&c| nul || c != 0).collect());
    let json_type = prop_oneof![
        8 => Just(Some("application/json")),
        1 => select(vec![Some("application/json; charset=utf-8"), Some("text/plain"), None]),
    ];
    prop_oneof![
        8 => (json_type.clone(), expected),
        2 => (json_type, any_json),
        2 => (Just(Some("application/x-www-form-urlencoded")), form),
        1 => (select(vec![Some("application/json"), Some("multipart/form-data"), None]), bytes),
    ]
    .boxed()
}

/// A filter: clauses over the posts fields with values of the right type (so many reach the
/// database), or not, joined with `&&`/`||`; sometimes any text.
fn filter(nul: bool) -> BoxedStrategy<String> {
    let quoted = move || {
        text(nul).prop_map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
    };
    let text_clause = (
        select(vec![
            "title", "slug", "body", "status", "contact", "note", "author", "id", "secret",
        ]),
        select(vec!["==", "!=", "~", "<", ">="]),
        quoted(),
    )
        .prop_map(|(f, o, v)| format!("{f} {o} {v}"));
    let number_clause = (
        select(vec!["views", "rating"]),
        select(vec!["==", "!=", "<", ">="]),
        select(vec![
            "0",
            "-1",
            "2.5",
            "1e308",
            "9223372036854775807",
            "null",
        ]),
    )
        .prop_map(|(f, o, v)| format!("{f} {o} {v}"));
    let time_clause = (
        select(vec!["published", "createdAt", "updatedAt"]),
        select(vec!["<", ">=", "=="]),
        select(vec![
            "now",
            "'2026-01-01T00:00:00Z'",
            "'9999-12-31T23:59:59Z'",
            "'0001-01-01T00:00:00Z'",
            "null",
        ]),
    )
        .prop_map(|(f, o, v)| format!("{f} {o} {v}"));
    let list_clause = (
        select(vec!["status", "title", "views"]),
        proptest::collection::vec(quoted(), 0..4),
    )
        .prop_map(|(f, items)| format!("{f} in [{}]", items.join(", ")));
    let other = select(vec![
        "featured",
        "!featured",
        "featured == null",
        "meta != null",
        "nope == 1",
        "(",
        "user.id == 'x'",
    ])
    .prop_map(String::from);
    let clause = prop_oneof![
        4 => text_clause,
        2 => number_clause,
        2 => time_clause,
        1 => list_clause,
        1 => other,
    ];
    prop_oneof![
        5 => (proptest::collection::vec(clause, 1..4), select(vec![" && ", " || "]))
            .prop_map(|(c, join)| c.join(join)),
        1 => text(nul),
    ]
    .boxed()
}

/// A query string: list parameters, mostly valid so that lists reach the database, with values
/// at the edges, unknown and repeated parameters, and raw (possibly broken) percent-encoding.
fn query(nul: bool) -> BoxedStrategy<String> {
    let number = prop_oneof![
        4 => select(vec!["1", "2", "20", "100"]),
        1 => select(vec![
            "", "0", "-1", "101", "1.5", "1e3", "abc", "99999999999999999999",
            "9223372036854775807", "+1", " 1",
        ]),
    ]
    .prop_map(String::from);
    let field = prop_oneof![
        5 => select(vec!["title", "-views", "rating", "createdAt", "-createdAt", "status", "id", "published"]),
        1 => select(vec!["secret", "note", "-", "", "nope", "--views", "+rating", "meta"]),
    ];
    let fields = proptest::collection::vec(field, 1..4).prop_map(|f| f.join(","));
    let pair = prop_oneof![
        4 => filter(nul).prop_map(|v| ("filter".to_string(), v)),
        2 => fields.clone().prop_map(|v| ("sort".to_string(), v)),
        2 => fields.prop_map(|v| ("select".to_string(), v)),
        2 => number.clone().prop_map(|v| ("limit".to_string(), v)),
        2 => number.prop_map(|v| ("page".to_string(), v)),
        1 => (text(nul), text(nul)),
    ];
    let encoded = (
        proptest::collection::vec(pair, 0..5),
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(mut pairs, distinct)| {
            if distinct {
                let mut seen = std::collections::HashSet::new();
                pairs.retain(|(name, _)| seen.insert(name.clone()));
            }
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        });
    let raw = select(vec![
        "filter=%",
        "filter=%zz",
        "limit=%FF",
        "sort=%2C%2C",
        "&&",
        "=",
        "a=b=c",
    ])
    .prop_map(String::from);
    prop_oneof![8 => encoded, 1 => raw].boxed()
}

/// An id in a path: a real one, near misses, and arbitrary text, percent-encoded or raw.
fn id(fixture: &Fixture, nul: bool) -> BoxedStrategy<String> {
    let real = select(vec![fixture.post.clone(), fixture.user.clone()]);
    let raw = select(vec![
        "x",
        "0",
        "-1",
        "%",
        "%FF",
        "%2F",
        "..",
        "%2e%2e",
        "a%20b",
        "00000000-0000-0000-0000-000000000000",
    ])
    .prop_map(String::from);
    let encoded = text(nul).prop_map(|s| {
        serde_urlencoded::to_string([("", s)])
            .unwrap_or_default()
            .trim_start_matches('=')
            .to_string()
    });
    prop_oneof![4 => real, 2 => raw, 3 => encoded].boxed()
}

/// Headers: credentials real, broken and foreign; origins; request ids; cookies.
fn headers(fixture: &Fixture, nul: bool) -> BoxedStrategy<Vec<(&'static str, String)>> {
    let token = fixture.token.clone();
    let authorization = prop_oneof![
        Just(format!("Bearer {token}")),
        Just(format!("bearer {token}")),
        Just(format!("Bearer {token}x")),
        Just(format!("Bearer {}", &token[..token.len() / 2])),
        Just("Bearer lk_abc_def".to_string()),
        Just("Bearer".to_string()),
        Just("Basic Zm9vOmJhcg==".to_string()),
        text(nul).prop_map(|t| format!("Bearer {t}")),
    ];
    let header = prop_oneof![
        3 => authorization.prop_map(|v| ("authorization", v)),
        1 => select(vec!["http://evil.example", "null", "http://127.0.0.1", "x"])
            .prop_map(|v| ("origin", v.to_string())),
        1 => select(vec!["cross-site", "same-origin", "none"])
            .prop_map(|v| ("sec-fetch-site", v.to_string())),
        1 => text(nul).prop_map(|v| ("x-request-id", v)),
        1 => text(nul).prop_map(|v| ("cookie", format!("lucent_session={v}"))),
        1 => select(vec!["*/*", "text/html", "application/json"]).prop_map(|v| ("accept", v.to_string())),
    ];
    let signed_in = vec![("authorization", format!("Bearer {}", fixture.token))];
    prop_oneof![
        3 => Just(Vec::new()),
        3 => Just(signed_in),
        2 => proptest::collection::vec(header, 1..3),
    ]
    .boxed()
}

fn request(fixture: &Fixture, nul: bool) -> impl Strategy<Value = Request> {
    let routes = select(vec![
        ("GET", "/api/posts?list"),
        ("GET", "/api/posts?list"),
        ("GET", "/api/posts?list"),
        ("GET", "/api/users?list"),
        ("GET", "/api/posts/{id}"),
        ("GET", "/api/posts/{id}?list"),
        ("DELETE", "/api/posts/{id}"),
        ("PATCH", "/api/posts/{id}"),
        ("PATCH", "/api/users/{id}"),
        ("POST", "/api/posts"),
        ("POST", "/api/posts"),
        ("PATCH", "/api/posts/{id}"),
        ("POST", "/api/users"),
        ("POST", "/api/users/register"),
        ("POST", "/api/users/login"),
        ("POST", "/api/users/refresh"),
        ("POST", "/api/users/logout"),
        ("POST", "/api/users/api-keys"),
        ("GET", "/api/users/me"),
        ("GET", "/api/users/sessions"),
        ("DELETE", "/api/users/sessions/{id}"),
        ("DELETE", "/api/users/api-keys/{id}"),
        ("POST", "/api/users/verify-email"),
        ("POST", "/api/users/request-password-reset"),
        ("POST", "/api/users/reset-password"),
        ("PUT", "/api/posts/{id}"),
    ]);
    let id = id(fixture, nul);
    let headers = headers(fixture, nul);
    routes
        .prop_flat_map(move |(method, route)| {
            (
                Just((method, route)),
                id.clone(),
                query(nul),
                headers.clone(),
                body(route, nul),
            )
        })
        .prop_map(
            |((method, route), id, query, mut headers, (content_type, body))| {
                let mut path = route.replace("{id}", &id);
                if let Some(bare) = path.strip_suffix("?list") {
                    path = format!("{bare}?{query}");
                }
                let body = if matches!(method, "POST" | "PATCH" | "PUT") {
                    if let Some(content_type) = content_type {
                        headers.push(("content-type", content_type.to_string()));
                    }
                    Some(body)
                } else {
                    None
                };
                Request {
                    method,
                    path,
                    headers,
                    body,
                }
            },
        )
}
