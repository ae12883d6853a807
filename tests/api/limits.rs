//! Work and time limits (SPEC §7): `~` caps, statement time limits, statements stopped when their
//! client leaves, authentication on its own connections, header and idle timeouts, NUL bytes,
//! and owner-only database files.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, POSTS, Server, assert_error, backends, decode};

/// `notes` hold long text anyone may list; `users` sign up freely.
fn notes_config(extra: &str) -> String {
    format!(
        r#"
[server]
body_limit = "2MiB"
{extra}
[collections.users]
auth = true
[collections.notes.fields]
body = {{ type = "text" }}
[collections.notes.access]
read = "true"
create = "true"
"#
    )
}

/// The slowest filter the caps allow over notes `slow_note` made: four 256-character `~`
/// operands. The first three are found only at the end of the ~900 KiB text and the last one
/// nowhere, so every clause scans all of it (SQLite: ~1 s per clause per row here) and no row
/// ever matches: nothing comes back until the whole table has been scanned.
fn slow_filter() -> String {
    let found = format!("body ~ '{}b'", "a".repeat(255));
    let missing = format!("body ~ '{}c'", "a".repeat(255));
    let filter = format!("{found} && {found} && {found} && {missing}");
    format!("/api/notes?filter={}", urlencode(&filter))
}

fn slow_note() -> Value {
    json!({"body": format!("{}b", "a".repeat(900 * 1024))})
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn seed_slow_notes(server: &Server, rows: usize) {
    let note = slow_note();
    for _ in 0..rows {
        let (status, answer) = server.post("/api/notes", &note).await;
        assert_eq!(status, 201, "{answer}");
    }
}

/// The host:port of a server, for raw connections.
fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Opens a connection and sends `GET path` on it, leaving the answer unread.
async fn send_get(server: &Server, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address(server)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn a_filter_holds_at_most_eight_contains_and_1024_operand_characters() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let clauses =
            |n: usize, operand: &str| vec![format!("title ~ '{operand}'"); n].join(" && ");
        let list = |filter: String| {
            let server = &server;
            async move {
                server
                    .get(&format!("/api/posts?filter={}", urlencode(&filter)))
                    .await
            }
        };
        assert_eq!(list(clauses(8, "x")).await.0, 200);
        let x256 = "x".repeat(256);
        assert_eq!(list(clauses(4, &x256)).await.0, 200);
        let error = assert_error(&list(clauses(9, "x")).await, 400, "bad_request");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("at most 8 `~` comparisons"),
            "{error}"
        );
        let error = assert_error(
            &list(format!("{} && title ~ 'y'", clauses(4, &x256))).await,
            400,
            "bad_request",
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("at most 1024 characters in all"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_statement_over_the_time_limit_is_a_503_timeout() {
    for backend in backends() {
        let config = notes_config("[database]\nstatement_timeout = \"300ms\"");
        let server = Server::start(&backend, &config).await;
        seed_slow_notes(&server, 2).await;
        let answer = server.get(&slow_filter()).await;
        assert_error(&answer, 503, "timeout");
        // The server goes on: the next list answers.
        let (status, page) = server.get("/api/notes?select=id").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["totalDocs"], 2);
    }
}

/// How many statements of the server's database are running now. SQLite: connection threads
/// (sqlx gives each connection one) that used CPU over a short window; PostgreSQL: active
/// backends of the server's database.
async fn running_statements(server: &Server, backend: &Backend) -> usize {
    match backend {
        Backend::Sqlite => {
            let before = sqlite_thread_ticks(server.pid());
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = sqlite_thread_ticks(server.pid());
            after
                .iter()
                .filter(|(thread, ticks)| before.get(*thread).is_some_and(|b| *ticks > b))
                .count()
        }
        Backend::Postgres(admin) => {
            use sea_orm::ConnectionTrait;
            let name = server
                .database_url
                .as_ref()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            let db = sea_orm::Database::connect(admin.as_str()).await.unwrap();
            let row = db
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = $1 AND state = 'active' AND query ILIKE '%like%'",
                    [name.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            let count: i64 = row.try_get_by_index(0).unwrap();
            db.close().await.ok();
            usize::try_from(count).unwrap()
        }
    }
}

/// CPU ticks used so far by each SQLite connection thread of process `pid`.
fn sqlite_thread_ticks(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut ticks = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `tid (comm) state ...`: sqlx names its threads `sqlx-sqlite-worker-N`.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains("sqlx-sqlite") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let used = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks.insert(task.file_name().to_string_lossy().into_owned(), used);
    }
    ticks
}

/// Polls until `running_statements` is `expected`, for at most `bound`.
async fn wait_for_running(server: &Server, backend: &Backend, expected: usize, bound: Duration) {
    let started = Instant::now();
    loop {
        let running = running_statements(server, backend).await;
        if running == expected {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "{running} statements running after {bound:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The attack of issue 12: slow lists on every record reader. Sign-ins and token checks still
/// answer (they have their own connections), and once the clients give up, their statements
/// stop at once on the database instead of running to the end (minutes here; the time limit is
/// set far away so that only the client's leaving can stop them).
#[tokio::test]
async fn slow_lists_never_delay_authentication_and_stop_when_their_clients_leave() {
    for backend in backends() {
        let config = notes_config("[database]\nstatement_timeout = \"600s\"");
        let server = Server::start(&backend, &config).await;
        seed_slow_notes(&server, 12).await;
        let (status, account) = server
            .post(
                "/api/users/register",
                &json!({"email": "victim@example.com", "password": "a-long-enough-password-1"}),
            )
            .await;
        assert_eq!(status, 201, "{account}");
        let token = account["token"].as_str().unwrap().to_string();

        // As many slow lists as there are record readers (a list holds one).
        let readers = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres(_) => 8,
        };
        let mut attackers = Vec::new();
        for _ in 0..readers {
            attackers.push(send_get(&server, &slow_filter()).await);
        }
        wait_for_running(&server, &backend, readers, Duration::from_secs(60)).await;

        let me = decode(
            server
                .client
                .request(Method::GET, server.url("/api/users/me"))
                .bearer_auth(&token)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("/me answers while every reader is busy"),
        )
        .await;
        assert_eq!(me.0, StatusCode::OK, "{}", me.1);
        assert_eq!(
            running_statements(&server, &backend).await,
            readers,
            "the slow lists were still running when /me answered"
        );

        drop(attackers);
        wait_for_running(&server, &backend, 0, Duration::from_secs(30)).await;
        let (status, page) = server.get("/api/notes?select=id").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["totalDocs"], 12);
    }
}

/// Reads one whole response (headers and `Content-Length` body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return text;
            }
        }
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection closed mid-response: {text}");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Whether the server closes `stream` (end of file or reset) within `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    match tokio::time::timeout(bound, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!(
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&chunk[..n])
        ),
        Err(_) => false,
    }
}

/// Defect 9 of issue 12: a half-sent request held its connection open for good. Now a request
/// has `header_timeout` from its first byte to its last header, and a keep-alive connection
/// waits `idle_timeout` for its next request (the idle wait is not cut by the header timeout).
#[tokio::test]
async fn half_sent_requests_and_idle_connections_time_out() {
    let config = format!("[server]\nheader_timeout = \"1s\"\nidle_timeout = \"6s\"\n{POSTS}");
    let server = Server::start(&Backend::Sqlite, &config).await;

    let mut half = TcpStream::connect(address(&server)).await.unwrap();
    half.write_all(b"GET /api/health HT").await.unwrap();
    // Well before the idle timeout, so it is the header timeout that closes it.
    assert!(
        closed_within(&mut half, Duration::from_secs(4)).await,
        "a half-sent request line kept its connection open"
    );

    let mut idle = TcpStream::connect(address(&server)).await.unwrap();
    // Longer than the header timeout: an idle connection is not yet sending a request.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut idle).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Kept alive after the answer, then closed once idle for the idle timeout.
    assert!(
        closed_within(&mut idle, Duration::from_secs(30)).await,
        "an idle keep-alive connection stayed open"
    );
}

/// Defect 10 of issue 12: NUL characters were 500s on PostgreSQL. Every way text reaches the
/// database refuses them alike on every engine: 400 for values, 404 for an id in a path.
#[tokio::test]
async fn nul_characters_are_refused_alike_on_every_engine() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        let (status, post) = server.post("/api/posts", &json!({"title": "ok"})).await;
        assert_eq!(status, 201, "{post}");
        let id = post["doc"]["id"].as_str().unwrap();

        for (body, field) in [
            (json!({"title": "a\u{0}b"}), "title"),
            (json!({"title": "ok", "body": "\u{0}"}), "body"),
            (json!({"title": "ok", "meta": {"k\u{0}": 1}}), "meta"),
            (
                json!({"title": "ok", "meta": {"a": [1, {"b": "x\u{0}"}]}}),
                "meta",
            ),
            (json!({"title": "ok", "author": "\u{0}"}), "author"),
        ] {
            let created = server.post("/api/posts", &body).await;
            let error = assert_error(&created, 400, "validation_failed");
            assert_eq!(error["details"][0]["field"], field, "{body}");
            assert_eq!(error["details"][0]["code"], "invalid_character", "{body}");
            let updated = server.patch(&format!("/api/posts/{id}"), &body).await;
            assert_error(&updated, 400, "validation_failed");
        }
        for path in [
            "/api/posts/%00",
            "/api/posts/a%00b",
            "/api/users/%00",
            "/api/posts/%00/x",
        ] {
            assert_error(&server.get(path).await, 404, "not_found");
            assert_error(&server.delete(path).await, 404, "not_found");
            assert_error(
                &server.patch(path, &json!({"title": "x"})).await,
                404,
                "not_found",
            );
        }
        for filter in ["title == 'a%00b'", "title ~ '%00'", "title %00== 'a'"] {
            let listed = server.get(&format!("/api/posts?filter={filter}")).await;
            assert_error(&listed, 400, "bad_request");
        }

        // Account routes: bodies, the session cookie, headers.
        for (path, body) in [
            (
                "/api/users/register",
                json!({"email": "a\u{0}@example.com", "password": "a-long-enough-password-1"}),
            ),
            (
                "/api/users/register",
                json!({"email": "b@example.com", "password": "pass\u{0}word-long-enough"}),
            ),
            (
                "/api/users/login",
                json!({"email": "a\u{0}@example.com", "password": "x"}),
            ),
            ("/api/users/refresh", json!({"refreshToken": "a\u{0}.b"})),
            (
                "/api/users/request-password-reset",
                json!({"email": "\u{0}@example.com"}),
            ),
        ] {
            assert_error(&server.post(path, &body).await, 400, "validation_failed");
        }
        let form = server
            .client
            .post(server.url("/api/users/register"))
            .form(&[
                ("email", "a\u{0}@example.com"),
                ("password", "a-long-enough-password-1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::BAD_REQUEST);
        let cookie = server
            .client
            .get(server.url("/api/users/me"))
            .header("Cookie", "lucent_session=a%00b.c")
            .send()
            .await
            .unwrap();
        assert_error(&decode(cookie).await, 400, "bad_request");
        // Header values cannot carry NUL at all: HTTP refuses the request before Lucent sees it.
        let mut raw = TcpStream::connect(address(&server)).await.unwrap();
        raw.write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\nUser-Agent: a\0b\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut raw).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    }
}

/// Defect 11 of issue 12 (files): the SQLite database, its WAL and shared-memory files and the
/// folder Lucent makes for them are the owner's alone.
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_and_its_folder_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&Backend::Sqlite, POSTS).await;
    let (status, _) = server.post("/api/posts", &json!({"title": "x"})).await;
    assert_eq!(status, 201);
    let mode = |path: &str| {
        std::fs::metadata(server.path().join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    for file in [
        "data/lucent.db",
        "data/lucent.db-wal",
        "data/lucent.db-shm",
        "data/jwt_secret",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}
