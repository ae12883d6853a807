//! `lucent export` and `lucent import` (SPEC §16): a round trip SQLite → PostgreSQL → SQLite that
//! gives back the same file, with an account that still signs in; every rejected line reported
//! with its number while the rest is imported; and a large export and import that stream in
//! bounded memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, Server, backends, lucent_bin};

const CONFIG: &str = r#"
[auth]
jwt_secret = "an export test secret of at least 32 bytes"

[collections.users]
auth = true
[collections.users.fields]
name     = { type = "string" }
notes    = { type = "text", hidden = true }
favorite = { type = "relation", to = "posts" }
manager  = { type = "relation", to = "users" }
[collections.users.access]
read = "true"
update = "true"

[collections.posts.fields]
title     = { type = "string", required = true, max_length = 40 }
body      = { type = "text" }
status    = { type = "select", options = ["draft", "published"], default = "draft" }
views     = { type = "integer", min = 0 }
rating    = { type = "number" }
featured  = { type = "boolean" }
published = { type = "datetime" }
meta      = { type = "json" }
contact   = { type = "email" }
secret    = { type = "string", hidden = true }
author    = { type = "relation", to = "users", required = true }
tags      = { type = "relation", to = "tags", many = true }
[collections.posts.access]
read = "true"
create = "true"
update = "true"

[collections.tags.fields]
name = { type = "string", unique = true }
[collections.tags.access]
read = "true"
create = "true"
"#;

const PASSWORD: &str = "correct horse battery staple";

/// A real argon2id hash (of a password nobody kept), as an export holds one.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zrYJvi0ytXrq9jkpgO1S2A$n6eMQBq+t0WVgrUtOqo5C/nuaVsNrVtXL8z5VLfSfQo";

/// Runs `lucent ARGS --config <server's folder>/lucent.toml` on the server's database.
fn lucent(server: &Server, args: &[&str]) -> Output {
    command(server, args).output().unwrap()
}

fn command(server: &Server, args: &[&str]) -> Command {
    let mut command = Command::new(lucent_bin());
    command
        .args(args)
        .arg("--config")
        .arg(server.path().join("lucent.toml"))
        .env("LUCENT_LOG", "error")
        .env_remove("LUCENT_DATABASE_URL");
    if let Some(url) = &server.database_url {
        command.env("LUCENT_DATABASE_URL", url);
    }
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exports the server's database to `file` in its folder and returns the file's text.
fn export(server: &Server, file: &str) -> String {
    let path = server.path().join(file);
    let out = lucent(server, &["export", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read_to_string(path).unwrap()
}

fn import(server: &Server, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", file.to_str().unwrap()];
    args.extend(extra);
    lucent(server, &args)
}

/// Every field type, a to-many list, a relation cycle (users.favorite → posts, posts.author →
/// users), a self-reference, hidden fields and an account: exported from SQLite, imported into
/// PostgreSQL and exported again (the same file), then back into SQLite (the same file again);
/// the account signs in with its password on each, over HTTP.
#[tokio::test]
async fn a_round_trip_across_engines_gives_back_the_same_file() {
    let source = Server::start(&Backend::Sqlite, CONFIG).await;
    let (status, account) = source
        .post(
            "/api/users/register",
            &json!({"email": "Ann@Example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let ann = account["user"]["id"].as_str().unwrap().to_string();
    let mut tags = Vec::new();
    for name in ["rust", "databases"] {
        let (status, tag) = source.post("/api/tags", &json!({"name": name})).await;
        assert_eq!(status, 201, "{tag}");
        tags.push(tag["doc"]["id"].as_str().unwrap().to_string());
    }
    let (status, post) = source
        .post(
            "/api/posts",
            &json!({
                "title": "Hello, ünïcode",
                "body": "two\nlines \"quoted\"",
                "status": "published",
                "views": 9_007_199_254_740_993_i64,
                "rating": 4.25,
                "featured": true,
                "published": "2026-01-02T03:04:05.678Z",
                "meta": {"z": 1, "a": [1, {"y": null, "b": 2.5}], "m": "x"},
                "contact": "Press@Example.org",
                "secret": "hidden in posts",
                "author": ann,
                "tags": [tags[1], tags[0]],
            }),
        )
        .await;
    assert_eq!(status, 201, "{post}");
    let post = post["doc"]["id"].as_str().unwrap().to_string();
    let (status, bare) = source
        .post("/api/posts", &json!({"title": "Bare", "author": ann}))
        .await;
    assert_eq!(status, 201, "{bare}");
    let (status, body) = source
        .patch(
            &format!("/api/users/{ann}"),
            &json!({"favorite": post, "manager": ann, "notes": "hidden in users"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Exported while the server runs.
    let exported = export(&source, "backup.ndjson");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(source.path().join("backup.ndjson"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the export holds password hashes");
    }
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{exported}");
    assert_eq!(lines[0]["lucent"], "export");
    assert_eq!(lines[0]["format"], 1);
    // Targets first: posts need their author, users only optionally a post.
    assert_eq!(lines[0]["collections"], json!(["tags", "users", "posts"]));
    assert_eq!(lines[6], json!({"lucent": "end", "documents": 5}));
    let user = &lines[3]["doc"];
    assert_eq!(lines[3]["collection"], "users");
    assert_eq!(user["email"], "ann@example.com");
    assert!(user["password"].as_str().unwrap().starts_with("$argon2id$"));
    assert_eq!(user["notes"], "hidden in users");
    assert_eq!(user["favorite"], post.as_str());
    assert_eq!(user["manager"], ann.as_str());
    let full = lines[4..6]
        .iter()
        .find(|l| l["doc"]["id"] == post.as_str())
        .unwrap();
    assert_eq!(full["doc"]["secret"], "hidden in posts");
    assert_eq!(full["doc"]["tags"], json!([tags[1], tags[0]]));
    // JSON keys sorted at every depth, so both engines write the same line.
    assert!(
        exported.contains(r#""meta":{"a":[1,{"b":2.5,"y":null}],"m":"x","z":1}"#),
        "{exported}"
    );

    // One collection, to stdout.
    let out = lucent(&source, &["export", "--collection", "tags"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let only: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(only[0]["collections"], json!(["tags"]));
    assert_eq!(only[1..3], lines[1..3]);
    assert_eq!(only[3], json!({"lucent": "end", "documents": 2}));
    let out = lucent(&source, &["export", "--collection", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("there is no collection \"nope\""));

    let mut targets = Vec::new();
    match backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    {
        Some(postgres) => targets.push(postgres),
        None => eprintln!("the PostgreSQL leg of the round trip is skipped"),
    }
    targets.push(Backend::Sqlite);
    let mut file = source.path().join("backup.ndjson");
    let mut kept = Vec::new();
    for backend in targets {
        let mut target = Server::prepare(&backend, CONFIG, &[]);
        let out = import(&target, &file, &[]);
        assert!(out.status.success(), "{backend:?}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            "imported 5 documents (users 1, posts 2, tags 2)"
        );
        let again = export(&target, "again.ndjson");
        assert_eq!(again, exported, "{backend:?}");
        file = target.path().join("again.ndjson");

        target.spawn(&[]);
        let (status, login) = target
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {login}");
        assert_eq!(login["user"]["id"], ann.as_str());
        assert_eq!(login["user"]["favorite"], post.as_str());
        let (status, shown) = target.get(&format!("/api/posts/{post}")).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["doc"]["tags"], json!([tags[1], tags[0]]));
        assert_eq!(shown["doc"]["views"], 9_007_199_254_740_993_i64);
        assert!(shown["doc"].get("secret").is_none(), "still hidden");
        kept.push(target);
    }
}

/// Every bad line is reported with its number and why, in line order; the rest is imported,
/// relations pointing further down the file (across batches of two lines) included; the exit
/// status says lines were rejected. A dry run reports the same and writes nothing.
#[tokio::test]
async fn rejected_lines_are_reported_and_the_rest_imported() {
    let doc = |collection: &str, doc: Value| {
        let mut doc = doc;
        doc["createdAt"] = json!("2026-01-01T00:00:00.000Z");
        doc["updatedAt"] = json!("2026-01-01T00:00:00.000Z");
        json!({"collection": collection, "doc": doc}).to_string()
    };
    let lines = [
        json!({"lucent": "export", "format": 1, "version": "0", "collections": []}).to_string(),
        doc("tags", json!({"id": "t1", "name": "one"})),
        r#"{"collection":"tags","doc":{"id":"t9","#.to_string(),
        doc("pages", json!({"id": "x1"})),
        doc(
            "posts",
            json!({"id": "p1", "views": "many", "author": "u1"}),
        ),
        doc("tags", json!({"id": "t1", "name": "again"})),
        doc("tags", json!({"id": "t2", "name": "one"})),
        // Its required author is three lines (two batches) further down.
        doc(
            "posts",
            json!({"id": "p2", "title": "Waits", "author": "u1"}),
        ),
        // One tag of its list never comes: imported without the list.
        doc(
            "posts",
            json!({"id": "p3", "title": "Partial", "author": "u1", "tags": ["t1", "t404"]}),
        ),
        doc(
            "users",
            json!({"id": "u1", "email": "u1@example.com", "password": HASH}),
        ),
        doc(
            "posts",
            json!({"id": "p4", "title": "Orphan", "author": "ghost"}),
        ),
        doc(
            "users",
            json!({"id": "u2", "email": "u2@example.com", "password": PASSWORD}),
        ),
        json!({"lucent": "end", "documents": 11}).to_string(),
    ];
    let expected = [
        "line 3: invalid JSON at column 38: EOF while parsing a value",
        "line 4: unknown collection \"pages\"",
        "line 5: posts \"p1\": title: title is required; views: views must be an integer",
        "line 6: tags \"t1\": id: line 2 has the same id",
        "line 7: tags \"t2\": name: name is already taken",
        "line 12: users \"u2\": password: password must be a password hash, as exported (import never hashes a password)",
        "line 9: posts \"p3\": tags: no tags document has id \"t404\"; the document was imported without tags",
        "line 11: posts \"p4\": author: no users document has id \"ghost\"",
    ];
    for backend in backends() {
        let server = Server::prepare(&backend, CONFIG, &[]);
        let file = server.path().join("bad.ndjson");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();

        let dry = import(&server, &file, &["--batch-size", "2", "--dry-run"]);
        let real = import(&server, &file, &["--batch-size", "2"]);
        for (out, summary) in [
            (
                &dry,
                "dry run: 4 documents would be imported (users 1, posts 2, tags 1); 8 lines rejected; nothing was written",
            ),
            (
                &real,
                "imported 4 documents (users 1, posts 2, tags 1); 8 lines rejected",
            ),
        ] {
            assert_eq!(out.status.code(), Some(1), "{backend:?}");
            let stderr = text(&out.stderr);
            let reported: Vec<&str> = stderr.lines().collect();
            assert_eq!(reported, expected, "{backend:?}: {stderr}");
            assert_eq!(text(&out.stdout).trim(), summary, "{backend:?}");
        }
        // What the real run wrote (the dry run wrote nothing before it: no id was taken).
        let exported = export(&server, "after.ndjson");
        let docs: Vec<Value> = exported
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l.get("doc").is_some())
            .map(|l| l["doc"].clone())
            .collect();
        let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["t1", "u1", "p2", "p3"], "{backend:?}");
        assert_eq!(docs[2]["author"], "u1");
        assert_eq!(docs[3]["tags"], json!([]));
        assert_eq!(docs[1]["password"], HASH);

        // A file cut short (no end line) is reported as such; importing it again rejects every
        // document as already there.
        let cut = server.path().join("cut.ndjson");
        std::fs::write(&cut, lines[..2].join("\n")).unwrap();
        let out = import(&server, &cut, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stderr).lines().collect::<Vec<_>>(),
            [
                "line 2: tags \"t1\": id: a tags document with this id already exists",
                "lucent: the file has no end line: it was cut short (or is not a whole export)",
            ]
        );

        // Lines out of place; an end line that counts otherwise; a later format.
        let odd = server.path().join("odd.ndjson");
        let odd_lines = [
            doc("tags", json!({"id": "t5", "name": "five"})),
            lines[0].clone(),
            json!({"lucent": "end", "documents": 5}).to_string(),
            doc("tags", json!({"id": "t6", "name": "six"})),
        ];
        std::fs::write(&odd, odd_lines.join("\n")).unwrap();
        let out = import(&server, &odd, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stderr).lines().collect::<Vec<_>>(),
            [
                "line 2: a header line may only come first",
                "line 4: a line after the end line",
                "lucent: the file's end line counts 5 documents, but 1 document line was read",
            ]
        );
        assert_eq!(
            text(&out.stdout).trim(),
            "imported 1 document (tags 1); 2 lines rejected"
        );
        let later = server.path().join("later.ndjson");
        std::fs::write(&later, lines[0].replace(r#""format":1"#, r#""format":2"#)).unwrap();
        let out = import(&server, &later, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stderr).trim(),
            "lucent: line 1: the file is format 2, from a later Lucent; this one reads format 1"
        );
    }
}

/// The peak resident memory of a finished child, in KiB (`wait4` reports the child's own).
fn wait_peak_rss(child: std::process::Child) -> (bool, i64) {
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not waited for yet; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        usage.ru_maxrss,
    )
}

/// 20,000 documents of 2 KB (40 MB of NDJSON) go in and out with a peak memory far below the
/// data's size, and an import from stdin commits its first batches before its input ends.
#[tokio::test]
async fn a_large_export_and_import_stream() {
    const DOCS: usize = 20_000;
    let server = Server::prepare(&Backend::Sqlite, CONFIG, &[]);
    let user = |id: &str| {
        json!({"collection": "users", "doc": {
            "id": id, "email": format!("{id}@example.com"), "password": HASH,
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
        }})
        .to_string()
    };
    let post = |i: usize| {
        json!({"collection": "posts", "doc": {
            "id": format!("p{i:06}"), "title": format!("post {i}"), "body": "x".repeat(2000),
            "views": i, "author": "u1",
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
        }})
        .to_string()
    };
    let run = |args: &[&str]| -> (bool, i64) {
        let child = command(&server, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_peak_rss(child)
    };

    // What the command takes with (almost) nothing to do.
    let small = server.path().join("small.ndjson");
    std::fs::write(&small, user("u1") + "\n").unwrap();
    let (ok, baseline) = run(&["import", small.to_str().unwrap()]);
    assert!(ok);

    let big = server.path().join("big.ndjson");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    for i in 0..DOCS {
        writeln!(file, "{}", post(i)).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let size = std::fs::metadata(&big).unwrap().len() as i64 / 1024;
    assert!(size > 40_000, "{size} KiB");
    let (ok, import_peak) = run(&["import", big.to_str().unwrap()]);
    assert!(ok);
    let out = server.path().join("out.ndjson");
    let (ok, export_peak) = run(&["export", "--out", out.to_str().unwrap()]);
    assert!(ok);
    let exported = std::fs::read_to_string(&out).unwrap();
    // The header, the account, the posts, the end line.
    assert_eq!(exported.lines().count(), 1 + 1 + DOCS + 1);
    // Reading the whole input (or table) at once would take more than the data's size; a
    // stream takes a batch or a page.
    eprintln!(
        "peak RSS: baseline {baseline} KiB, import {import_peak} KiB, export {export_peak} KiB, data {size} KiB"
    );
    for (what, peak) in [("import", import_peak), ("export", export_peak)] {
        assert!(
            peak < baseline + size / 2,
            "{what}: peak {peak} KiB, baseline {baseline} KiB, data {size} KiB"
        );
    }

    // From stdin: the first batches are committed while the input is still open.
    let streamed = Server::prepare(&Backend::Sqlite, CONFIG, &[]);
    let mut child = command(&streamed, &["import", "-", "--batch-size", "100"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", user("u1")).unwrap();
    for i in 0..250 {
        writeln!(stdin, "{}", post(i)).unwrap();
    }
    stdin.flush().unwrap();
    let database: PathBuf = streamed.path().join("data/lucent.db");
    let deadline = Instant::now() + Duration::from_secs(120);
    let committed = loop {
        let count = count_posts(&database).await;
        if count >= 199 || Instant::now() > deadline {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Two batches of 100 lines (the account and 199 posts) at least.
    assert!(
        committed >= 199,
        "{committed} posts committed before the input ended"
    );
    for i in 250..300 {
        writeln!(stdin, "{}", post(i)).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(count_posts(&database).await, 300);
}

/// The posts committed in a SQLite database (0 while it does not exist yet).
async fn count_posts(database: &Path) -> i64 {
    use sea_orm::ConnectionTrait;
    if !database.exists() {
        return 0;
    }
    let url = format!("sqlite://{}?mode=ro", database.display());
    let Ok(db) = sea_orm::Database::connect(&url).await else {
        return 0;
    };
    let count = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT COUNT(*) FROM posts",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0);
    db.close().await.ok();
    count
}
