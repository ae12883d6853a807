//! Schema migrations, driven through the binary: a project evolves its config version by version
//! with data in between (to-many lists included), on SQLite and PostgreSQL, and its `migrations/`
//! folder rebuilds the same schema (join tables and their triggers too) on an empty database of
//! the other engine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{
    Backend, Server, backends, create_postgres_database, drop_postgres_database, lucent_bin,
};

const V1: &str = r#"
[collections.posts]
[collections.posts.fields]
title = { type = "string", required = true }
views = { type = "string" }
body  = { type = "text" }

[collections.comments]
[collections.comments.fields]
text = { type = "text", required = true }
post = { type = "relation", to = "posts", on_delete = "cascade" }
"#;

/// Additive: a new optional field, a new required field with a default, a new index, a relaxed
/// constraint, a new collection.
const V2: &str = r#"
[collections.posts]
[collections.posts.fields]
title   = { type = "string", required = true, index = true }
views   = { type = "string" }
body    = { type = "text" }
summary = { type = "string" }
status  = { type = "select", options = ["draft", "published"], default = "draft", required = true }

[collections.comments]
[collections.comments.fields]
text = { type = "text" }
post = { type = "relation", to = "posts", on_delete = "cascade" }

[collections.tags]
[collections.tags.fields]
name = { type = "string", required = true, unique = true }
"#;

/// `title` renamed to `headline`.
const V3: &str = r#"
[collections.posts]
[collections.posts.fields]
headline = { type = "string", required = true, index = true }
views    = { type = "string" }
body     = { type = "text" }
summary  = { type = "string" }
status   = { type = "select", options = ["draft", "published"], default = "draft", required = true }

[collections.comments]
[collections.comments.fields]
text = { type = "text" }
post = { type = "relation", to = "posts", on_delete = "cascade" }

[collections.tags]
[collections.tags.fields]
name = { type = "string", required = true, unique = true }
"#;

/// `body` dropped.
const V4: &str = r#"
[collections.posts]
[collections.posts.fields]
headline = { type = "string", required = true, index = true }
views    = { type = "string" }
summary  = { type = "string" }
status   = { type = "select", options = ["draft", "published"], default = "draft", required = true }

[collections.comments]
[collections.comments.fields]
text = { type = "text" }
post = { type = "relation", to = "posts", on_delete = "cascade" }

[collections.tags]
[collections.tags.fields]
name = { type = "string", required = true, unique = true }
"#;

/// `views` becomes an integer.
const V5: &str = r#"
[collections.posts]
[collections.posts.fields]
headline = { type = "string", required = true, index = true }
views    = { type = "integer" }
summary  = { type = "string" }
status   = { type = "select", options = ["draft", "published"], default = "draft", required = true }

[collections.comments]
[collections.comments.fields]
text = { type = "text" }
post = { type = "relation", to = "posts", on_delete = "cascade" }

[collections.tags]
[collections.tags.fields]
name = { type = "string", required = true, unique = true }
"#;

/// To-many relations: a new list of tags, a new list of related posts that cascades, and a
/// comment's one post becoming a list (each id kept as a one-element list): all applied at start.
const V6: &str = r#"
[collections.posts]
[collections.posts.fields]
headline = { type = "string", required = true, index = true }
views    = { type = "integer" }
summary  = { type = "string" }
status   = { type = "select", options = ["draft", "published"], default = "draft", required = true }
tags     = { type = "relation", to = "tags", many = true }
related  = { type = "relation", to = "posts", many = true, on_delete = "cascade" }

[collections.comments]
[collections.comments.fields]
text = { type = "text" }
post = { type = "relation", to = "posts", many = true, on_delete = "cascade" }

[collections.tags]
[collections.tags.fields]
name = { type = "string", required = true, unique = true }
"#;

/// A list of tags becoming one tag: refused at start while a list holds more than one id; once
/// applied, each post keeps its first.
const V7: &str = r#"
[collections.posts]
[collections.posts.fields]
headline = { type = "string", required = true, index = true }
views    = { type = "integer" }
summary  = { type = "string" }
status   = { type = "select", options = ["draft", "published"], default = "draft", required = true }
tags     = { type = "relation", to = "tags" }
related  = { type = "relation", to = "posts", many = true, on_delete = "cascade" }

[collections.comments]
[collections.comments.fields]
text = { type = "text" }
post = { type = "relation", to = "posts", many = true, on_delete = "cascade" }

[collections.tags]
[collections.tags.fields]
name = { type = "string", required = true, unique = true }
"#;

/// Runs `lucent ARGS --config <project>/lucent.toml` against the project's database.
fn lucent(dir: &Path, database_url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(lucent_bin());
    command
        .args(args)
        .arg("--config")
        .arg(dir.join("lucent.toml"))
        .env("LUCENT_LOG", "warn")
        .env_remove("LUCENT_DATABASE_URL")
        .env_remove("LUCENT_ENV");
    if let Some(url) = database_url {
        command.env("LUCENT_DATABASE_URL", url);
    }
    command.output().expect("run lucent")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn succeeds(output: Output) -> String {
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

#[track_caller]
fn fails(output: Output) -> String {
    assert!(!output.status.success(), "{}", text(&output));
    text(&output)
}

fn migrate(server: &Server, args: &[&str]) -> Output {
    let mut all = vec!["migrate"];
    all.extend(args);
    lucent(server.path(), server.database_url.as_deref(), &all)
}

/// Starts `serve` and expects it to refuse: returns what it printed.
fn serve_refused(server: &Server) -> String {
    let mut child = Command::new(lucent_bin())
        .args(["serve", "--port", "0", "--config"])
        .arg(server.path().join("lucent.toml"))
        .env("LUCENT_LOG", "warn")
        .env_remove("LUCENT_DATABASE_URL")
        .env_remove("LUCENT_ENV")
        .envs(
            server
                .database_url
                .iter()
                .map(|url| ("LUCENT_DATABASE_URL", url)),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lucent");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("serve started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fails(child.wait_with_output().unwrap())
}

fn set_config(server: &Server, config: &str) {
    std::fs::write(server.path().join("lucent.toml"), open(config)).unwrap();
}

/// `config` with every collection readable and writable by anyone: these tests are about the
/// schema, access rules have their own.
fn open(config: &str) -> String {
    let mut text = config.to_string();
    for line in config.lines() {
        if let Some(slug) = line
            .strip_prefix("[collections.")
            .and_then(|rest| rest.strip_suffix(']'))
            .filter(|slug| !slug.contains('.'))
        {
            text.push_str(&format!(
                "\n[collections.{slug}.access]\nread = \"true\"\ncreate = \"true\"\nupdate = \"true\"\ndelete = \"true\"\n"
            ));
        }
    }
    text
}

fn migration_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("migrations"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn last_migration(dir: &Path) -> (PathBuf, String) {
    let path = migration_files(dir).pop().expect("a migration file");
    let contents = std::fs::read_to_string(&path).unwrap();
    (path, contents)
}

async fn posts(server: &Server) -> Vec<Value> {
    let (status, body) = server.get("/api/posts?sort=createdAt").await;
    assert_eq!(status, 200, "{body}");
    body["docs"].as_array().expect("docs").clone()
}

fn column(docs: &[Value], key: &str) -> Vec<Value> {
    docs.iter().map(|d| d[key].clone()).collect()
}

#[tokio::test]
async fn config_versions_migrate_with_their_data() {
    for backend in backends() {
        scenario(&backend).await;
    }
}

async fn scenario(backend: &Backend) {
    // v1: `serve` on an empty database writes and applies the initial migration.
    let mut server = Server::start(backend, &open(V1)).await;
    let files = migration_files(server.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("migrations/0001_initial.toml"));
    let mut ids = Vec::new();
    for (title, views) in [("first", "10"), ("second", "20")] {
        let (status, post) = server
            .post(
                "/api/posts",
                &json!({"title": title, "views": views, "body": format!("{title} body")}),
            )
            .await;
        assert_eq!(status, 201, "{post}");
        ids.push(post["doc"]["id"].as_str().unwrap().to_string());
    }
    let (status, comment) = server
        .post("/api/comments", &json!({"text": "nice", "post": ids[0]}))
        .await;
    assert_eq!(status, 201, "{comment}");
    server.stop();

    // v2, additive: applied at start, written as a file, rows kept, defaults filled in.
    set_config(&server, V2);
    server.spawn(&[]);
    let (_, v2) = last_migration(server.path());
    assert_eq!(migration_files(server.path()).len(), 2);
    for expected in [
        "op = \"add_field\"",
        "op = \"create_collection\"",
        "fill = \"draft\"",
    ] {
        assert!(v2.contains(expected), "missing `{expected}` in:\n{v2}");
    }
    let docs = posts(&server).await;
    assert_eq!(column(&docs, "title"), [json!("first"), json!("second")]);
    assert_eq!(column(&docs, "status"), [json!("draft"), json!("draft")]);
    assert_eq!(column(&docs, "summary"), [Value::Null, Value::Null]);
    let (status, post) = server
        .post(
            "/api/posts",
            &json!({"title": "third", "summary": "s", "views": "30x"}),
        )
        .await;
    assert_eq!(status, 201, "{post}");
    let (status, _) = server.post("/api/comments", &json!({})).await;
    assert_eq!(status, 201, "`comments.text` is no longer required");
    let (status, _) = server.post("/api/tags", &json!({"name": "rust"})).await;
    assert_eq!(status, 201);
    server.stop();

    // v3, a rename: `serve` refuses; `migrate new` writes drop + add with a note; the edited file
    // renames and keeps the values.
    set_config(&server, V3);
    let refusal = serve_refused(&server);
    for expected in [
        "drop field posts.title",
        "lucent migrate new NAME",
        "lucent migrate apply",
    ] {
        assert!(
            refusal.contains(expected),
            "missing `{expected}` in:\n{refusal}"
        );
    }
    let status = succeeds(migrate(&server, &["status"]));
    assert!(status.contains("needs `lucent migrate new`"), "{status}");
    succeeds(migrate(&server, &["new", "rename_title"]));
    let (path, written) = last_migration(server.path());
    assert!(path.ends_with("0003_rename_title.toml"), "{path:?}");
    for expected in [
        "op = \"drop_field\"",
        "op = \"add_field\"",
        "op = \"rename_field\"",
        "from = \"title\"",
    ] {
        assert!(
            written.contains(expected),
            "missing `{expected}` in:\n{written}"
        );
    }
    std::fs::write(
        &path,
        "# title is now headline\n[[operation]]\nop = \"rename_field\"\ncollection = \"posts\"\nfrom = \"title\"\nto = \"headline\"\n",
    )
    .unwrap();
    let applied = succeeds(migrate(&server, &["apply"]));
    assert!(applied.contains("applied 0003_rename_title"), "{applied}");
    server.spawn(&[]);
    let docs = posts(&server).await;
    assert_eq!(
        column(&docs, "headline"),
        [json!("first"), json!("second"), json!("third")]
    );
    assert!(docs[0].get("title").is_none());
    server.stop();

    // An applied migration edited afterwards is reported, and `serve` will not start on it.
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{original}# an edit\n")).unwrap();
    let status = fails(migrate(&server, &["status"]));
    assert!(
        status.contains("0003_rename_title") && status.contains("EDITED"),
        "{status}"
    );
    assert!(serve_refused(&server).contains("edited"));
    std::fs::write(&path, original).unwrap();

    // v4, a drop: refused by `serve`, applied by `migrate apply`.
    set_config(&server, V4);
    assert!(serve_refused(&server).contains("drop field posts.body"));
    succeeds(migrate(&server, &["new", "drop_body"]));
    let (_, written) = last_migration(server.path());
    assert!(written.contains("op = \"drop_field\""), "{written}");
    assert!(
        !written.contains("rename_field"),
        "nothing was added: {written}"
    );
    // A pending file that deletes data is not run by `serve`, only by `migrate apply`.
    assert!(serve_refused(&server).contains("lucent migrate apply"));
    succeeds(migrate(&server, &["apply"]));
    server.spawn(&[]);
    let docs = posts(&server).await;
    assert_eq!(docs.len(), 3);
    assert!(docs[0].get("body").is_none());
    assert_eq!(
        column(&docs, "views"),
        [json!("10"), json!("20"), json!("30x")]
    );
    server.stop();

    // v5, a type change over data that does not convert: a clear error, nothing applied.
    set_config(&server, V5);
    assert!(serve_refused(&server).contains("changes type from string to integer"));
    succeeds(migrate(&server, &["new", "views_integer"]));
    let (path, written) = last_migration(server.path());
    let failed = fails(migrate(&server, &["apply"]));
    for expected in [
        "0005_views_integer",
        "1 row(s) hold values that do not convert from string to integer",
        "\"30x\" is not a valid integer",
        "rolled back",
    ] {
        assert!(
            failed.contains(expected),
            "missing `{expected}` in:\n{failed}"
        );
    }
    let status = succeeds(migrate(&server, &["status"]));
    assert!(status.contains("pending: 1"), "{status}");

    // Fix the data under v4 (the file put aside), then the same migration converts every row.
    std::fs::remove_file(&path).unwrap();
    set_config(&server, V4);
    server.spawn(&[]);
    let docs = posts(&server).await;
    assert_eq!(
        column(&docs, "views"),
        [json!("10"), json!("20"), json!("30x")]
    );
    let id = docs[2]["id"].as_str().unwrap();
    let (status, body) = server
        .patch(&format!("/api/posts/{id}"), &json!({"views": "30"}))
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop();
    std::fs::write(&path, written).unwrap();
    set_config(&server, V5);
    succeeds(migrate(&server, &["apply"]));
    server.spawn(&[]);
    let docs = posts(&server).await;
    assert_eq!(column(&docs, "views"), [json!(10), json!(20), json!(30)]);
    let (status, comments) = server.get("/api/comments").await;
    assert_eq!(status, 200);
    assert_eq!(
        comments["docs"].as_array().unwrap().len(),
        2,
        "relations survive rebuilds"
    );
    server.stop();

    // v6, lists: applied at start; a comment's post becomes a one-element list.
    set_config(&server, V6);
    server.spawn(&[]);
    let (_, v6) = last_migration(server.path());
    for expected in ["many = true", "op = \"alter_field\"", "op = \"add_field\""] {
        assert!(v6.contains(expected), "missing `{expected}` in:\n{v6}");
    }
    let (_, comments) = server.get("/api/comments?sort=createdAt").await;
    let posts_of: Vec<Value> = column(comments["docs"].as_array().unwrap(), "post");
    assert_eq!(posts_of, [json!([ids[0]]), json!([])]);
    let (_, tags) = server.get("/api/tags").await;
    let rust = tags["docs"][0]["id"].clone();
    let (status, go) = server.post("/api/tags", &json!({"name": "go"})).await;
    assert_eq!(status, 201, "{go}");
    let go = go["doc"]["id"].clone();
    let (status, body) = server
        .patch(
            &format!("/api/posts/{}", ids[1]),
            &json!({"tags": [go, rust], "related": [ids[0]]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop();

    // v7, a list becoming one id: refused while a list holds two; applied, the first is kept,
    // and the cascading list of related posts still cascades after SQLite rebuilt `posts`.
    set_config(&server, V7);
    assert!(serve_refused(&server).contains("keeps only the first id of its list"));
    succeeds(migrate(&server, &["new", "one_tag"]));
    succeeds(migrate(&server, &["apply"]));
    server.spawn(&[]);
    let docs = posts(&server).await;
    assert_eq!(
        column(&docs, "tags"),
        [Value::Null, go.clone(), Value::Null]
    );
    assert_eq!(docs[1]["related"], json!([ids[0]]));
    let (status, body) = server.delete(&format!("/api/posts/{}", ids[0])).await;
    assert_eq!(status, 200, "{body}");
    let docs = posts(&server).await;
    assert_eq!(
        docs.len(),
        1,
        "the post listing the deleted one as related went with it: {docs:?}"
    );
    let (_, comments) = server.get("/api/comments").await;
    assert_eq!(
        comments["docs"].as_array().unwrap().len(),
        1,
        "the comment whose list held the deleted post went with it"
    );
    server.stop();

    let status = succeeds(migrate(&server, &["status"]));
    assert!(
        status.contains("pending: 0") && status.contains("not in a migration: none"),
        "{status}"
    );
    let evolved = describe(server.path(), server.database_url.as_deref()).await;

    // The folder replayed on an empty database of the other engine gives the same schema, and
    // the same schema as that engine gets from the final config directly.
    let other = match backend {
        Backend::Sqlite => backends()
            .into_iter()
            .find(|b| matches!(b, Backend::Postgres(_)))
            .unwrap_or(Backend::Sqlite),
        Backend::Postgres(_) => Backend::Sqlite,
    };
    let replay = Project::new(&other, &open(V7));
    copy_folder(
        &server.path().join("migrations"),
        &replay.dir.path().join("migrations"),
    );
    let applied = succeeds(lucent(replay.path(), replay.url(), &["migrate", "apply"]));
    assert!(applied.contains("applied 0005_views_integer"), "{applied}");
    let status = succeeds(lucent(replay.path(), replay.url(), &["check"]));
    assert!(status.contains("database: up to date"), "{status}");
    let replayed = describe(replay.path(), replay.url()).await;
    assert_eq!(portable(&replayed), portable(&evolved));
    assert_eq!(replayed.snapshot, evolved.snapshot);

    let direct = match &other {
        Backend::Sqlite => {
            let mut fresh = Server::start(&Backend::Sqlite, &open(V7)).await;
            fresh.stop();
            describe(fresh.path(), None).await
        }
        Backend::Postgres(_) => {
            let fresh = Project::new(&other, &open(V7));
            let url = fresh.url().unwrap().to_string();
            let mut server = Server::start_with(
                &Backend::Sqlite,
                &open(V7),
                &[],
                &[("LUCENT_DATABASE_URL", &url)],
            )
            .await;
            server.stop();
            describe(fresh.path(), fresh.url()).await
        }
    };
    assert_eq!(
        replayed.tables, direct.tables,
        "replayed = created from the config"
    );
}

/// A project folder with an empty database that no `serve` touched yet.
struct Project {
    dir: TempDir,
    database: Option<(String, String, String)>,
}

impl Project {
    fn new(backend: &Backend, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lucent.toml"), config).unwrap();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(admin) => {
                let (url, name) = create_postgres_database(admin);
                Some((admin.clone(), name, url))
            }
        };
        Self { dir, database }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> Option<&str> {
        self.database.as_ref().map(|(_, _, url)| url.as_str())
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Some((admin, name, _)) = self.database.take() {
            drop_postgres_database(&admin, &name);
        }
    }
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The tables of a database as sorted lines (columns, indexes, foreign keys), and the schema
/// Lucent recorded. Lucent's own tables are left out.
#[derive(Debug)]
struct Description {
    tables: Vec<String>,
    snapshot: Value,
}

async fn describe(dir: &Path, url: Option<&str>) -> Description {
    let url = url.map_or_else(
        || format!("sqlite://{}?mode=ro", dir.join("data/lucent.db").display()),
        str::to_string,
    );
    let db = sea_orm::Database::connect(&url).await.expect("connect");
    let backend = db.get_database_backend();
    let all = |sql: &str, values: Vec<sea_orm::Value>| {
        let statement = Statement::from_sql_and_values(backend, sql, values);
        let db = &db;
        async move { db.query_all_raw(statement).await.expect("describe query") }
    };
    let mut lines = Vec::new();
    let sqlite = backend == DbBackend::Sqlite;
    let tables: Vec<String> = if sqlite {
        all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND (substr(name, 1, 1) <> '_' OR substr(name, 1, 12) = '_lucent_rel_')", vec![]).await
    } else {
        all("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND (substr(table_name, 1, 1) <> '_' OR substr(table_name, 1, 12) = '_lucent_rel_')", vec![]).await
    }
    .iter()
    .map(|r| r.try_get_by_index(0).unwrap())
    .collect();
    for table in tables {
        if sqlite {
            for row in all(
                "SELECT name, type, \"notnull\" FROM pragma_table_info(?)",
                vec![table.clone().into()],
            )
            .await
            {
                let (name, kind, not_null): (String, String, i64) = (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                    row.try_get_by_index(2).unwrap(),
                );
                let null = if not_null == 1 || name == "id" {
                    "not null"
                } else {
                    "null"
                };
                lines.push(format!("{table} column {name} {kind} {null}"));
            }
            for row in all(
                "SELECT name, \"unique\" FROM pragma_index_list(?) WHERE origin = 'c'",
                vec![table.clone().into()],
            )
            .await
            {
                let (name, unique): (String, i64) = (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                );
                let columns: Vec<String> = all(
                    "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
                    vec![name.clone().into()],
                )
                .await
                .iter()
                .map(|r| {
                    r.try_get_by_index::<Option<String>>(0)
                        .unwrap()
                        .unwrap_or_else(|| "expr".into())
                })
                .collect();
                let unique = if unique == 1 { "unique " } else { "" };
                lines.push(format!(
                    "{table} {unique}index {name} ({})",
                    columns.join(", ")
                ));
            }
            for row in all(
                "SELECT \"from\", \"table\", on_delete FROM pragma_foreign_key_list(?)",
                vec![table.clone().into()],
            )
            .await
            {
                let (from, to, on_delete): (String, String, String) = (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                    row.try_get_by_index(2).unwrap(),
                );
                lines.push(format!(
                    "{table} foreign key {from} -> {to} on delete {on_delete}"
                ));
            }
        } else {
            for row in all("SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", vec![table.clone().into()]).await {
                let (name, kind, nullable): (String, String, String) = (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                    row.try_get_by_index(2).unwrap(),
                );
                let null = if nullable == "NO" { "not null" } else { "null" };
                lines.push(format!("{table} column {name} {kind} {null}"));
            }
            for row in all("SELECT i.relname::text, x.indisunique, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = $1 AND NOT x.indisprimary", vec![table.clone().into()]).await {
                let (name, unique, definition): (String, bool, String) = (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                    row.try_get_by_index(2).unwrap(),
                );
                let inside = definition
                    .rsplit_once(" (")
                    .map(|(_, cols)| cols.trim_end_matches(')'))
                    .unwrap_or_default();
                let columns: Vec<String> = inside
                    .split(", ")
                    .map(|c| if c.contains('(') { "expr".into() } else { c.trim_matches('"').to_string() })
                    .collect();
                let unique = if unique { "unique " } else { "" };
                lines.push(format!("{table} {unique}index {name} ({})", columns.join(", ")));
            }
            for row in all("SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid WHERE c.contype = 'f' AND t.relname = $1", vec![table.clone().into()]).await {
                let definition: String = row.try_get_by_index(0).unwrap();
                // FOREIGN KEY (post) REFERENCES posts(id) ON DELETE CASCADE
                let from = between(&definition, "FOREIGN KEY (", ")");
                let to = between(&definition, "REFERENCES ", "(");
                let on_delete = definition.split_once("ON DELETE ").map_or("NO ACTION", |(_, a)| a);
                lines.push(format!(
                    "{table} foreign key {} -> {} on delete {on_delete}",
                    from.trim_matches('"'),
                    to.trim_matches('"')
                ));
            }
        }
    }
    // Triggers (the cascades of lists), by table.
    let triggers = if sqlite {
        all(
            "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'",
            vec![],
        )
        .await
    } else {
        all("SELECT c.relname::text, t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal", vec![]).await
    };
    for row in triggers {
        let (table, name): (String, String) = (
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
        );
        lines.push(format!("{table} trigger {name}"));
    }
    lines.sort();
    let snapshot = all("SELECT snapshot FROM _lucent_schema", vec![]).await;
    let snapshot: String = snapshot[0].try_get_by_index(0).unwrap();
    db.close().await.ok();
    Description {
        tables: lines,
        snapshot: serde_json::from_str(&snapshot).unwrap(),
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    text.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map_or("", |(inside, _)| inside)
}

/// The description with each column type reduced to what every engine shares.
fn portable(description: &Description) -> Vec<String> {
    let mut lines: Vec<String> = description
        .tables
        .iter()
        .map(|line| {
            let Some((head, rest)) = line.split_once(" column ") else {
                return line.clone();
            };
            let (name, rest) = rest.split_once(' ').unwrap();
            let (kind, null) = rest
                .rsplit_once(if rest.ends_with("not null") {
                    " not null"
                } else {
                    " null"
                })
                .map(|(k, _)| (k, rest.ends_with("not null")))
                .unwrap();
            // SQLite reports the standard type names in capitals.
            let kind = kind.to_lowercase();
            let kind = match kind.as_str() {
                "text" | "jsonb" => "text",
                k if k.starts_with("varchar") || k == "character varying" => "varchar",
                "bigint" | "integer" => "integer",
                k if k.starts_with("double") => "double",
                "boolean" => "boolean",
                k if k.starts_with("timestamp") => "timestamp",
                other => other,
            };
            format!(
                "{head} column {name} {kind} {}",
                if null { "not null" } else { "null" }
            )
        })
        .collect();
    lines.sort();
    lines
}

const L1: &str = r#"
[collections.tags]
[collections.tags.fields]
name = { type = "string" }

[collections.posts]
[collections.posts.fields]
title = { type = "string" }
tags  = { type = "relation", to = "tags", many = true }
picks = { type = "relation", to = "tags", many = true }
solo  = { type = "relation", to = "tags", many = true }
"#;

/// `max_items` lowered (no migration: a write check), `picks` cascading, `solo` one id (no list
/// holds more than one: safe).
const L2: &str = r#"
[collections.tags]
[collections.tags.fields]
name = { type = "string" }

[collections.posts]
[collections.posts.fields]
title = { type = "string" }
tags  = { type = "relation", to = "tags", many = true, max_items = 1 }
picks = { type = "relation", to = "tags", many = true, on_delete = "cascade" }
solo  = { type = "relation", to = "tags" }
"#;

/// `tags` removed, `picks` renamed to `favourites`.
const L3: &str = r#"
[collections.tags]
[collections.tags.fields]
name = { type = "string" }

[collections.posts]
[collections.posts.fields]
title      = { type = "string" }
favourites = { type = "relation", to = "tags", many = true, on_delete = "cascade" }
solo       = { type = "relation", to = "tags" }
"#;

#[tokio::test]
async fn list_changes_migrate() {
    for backend in backends() {
        let mut server = Server::start(&backend, &open(L1)).await;
        let mut tags = Vec::new();
        for name in ["t1", "t2"] {
            let (status, tag) = server.post("/api/tags", &json!({ "name": name })).await;
            assert_eq!(status, 201, "{tag}");
            tags.push(tag["doc"]["id"].clone());
        }
        let (t1, t2) = (&tags[0], &tags[1]);
        let (status, a) = server
            .post(
                "/api/posts",
                &json!({"title": "a", "tags": [t1, t2], "picks": [t1], "solo": [t2]}),
            )
            .await;
        assert_eq!(status, 201, "{a}");
        let (status, _) = server.post("/api/posts", &json!({"title": "b"})).await;
        assert_eq!(status, 201);
        server.stop();

        // L2: applied at start; a lower max_items changes no table and keeps longer lists.
        set_config(&server, L2);
        let before = migration_files(server.path()).len();
        server.spawn(&[]);
        assert_eq!(migration_files(server.path()).len(), before + 1);
        let (_, written) = last_migration(server.path());
        assert!(!written.contains("posts.tags"), "{written}");
        assert!(!written.contains("name = \"tags\""), "{written}");
        let docs = posts(&server).await;
        assert_eq!(docs[0]["tags"], json!([t1, t2]));
        assert_eq!(column(&docs, "solo"), [t2.clone(), Value::Null]);
        let id = docs[0]["id"].as_str().unwrap().to_string();
        let (status, body) = server
            .patch(&format!("/api/posts/{id}"), &json!({"tags": [t1, t2]}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"][0]["code"], "too_many");
        server.stop();

        // L3: removing a list is refused at start; `migrate new` drops it, edited to rename
        // `picks` instead of dropping and adding it.
        set_config(&server, L3);
        let refusal = serve_refused(&server);
        for expected in ["drop field posts.tags", "lucent migrate new NAME"] {
            assert!(refusal.contains(expected), "{expected} in:\n{refusal}");
        }
        succeeds(migrate(&server, &["new", "lists"]));
        let (path, written) = last_migration(server.path());
        assert!(written.contains("op = \"rename_field\""), "{written}");
        std::fs::write(
            &path,
            "[[operation]]\nop = \"drop_field\"\ncollection = \"posts\"\nfield = \"tags\"\n\n\
             [[operation]]\nop = \"rename_field\"\ncollection = \"posts\"\nfrom = \"picks\"\nto = \"favourites\"\n",
        )
        .unwrap();
        succeeds(migrate(&server, &["apply"]));
        let tables = describe(server.path(), server.database_url.as_deref())
            .await
            .tables
            .join("\n");
        assert!(!tables.contains("_lucent_rel_posts_tags"), "{tables}");
        assert!(!tables.contains("_lucent_rel_posts_picks"), "{tables}");
        assert!(
            tables.contains(
                "_lucent_rel_posts_favourites trigger _lucent_rel_posts_favourites_cascade"
            ),
            "{tables}"
        );
        server.spawn(&[]);
        let docs = posts(&server).await;
        assert!(docs[0].get("tags").is_none());
        assert_eq!(docs[0]["favourites"], json!([t1]));
        // The renamed list still cascades: deleting t1 deletes `a`.
        let (status, body) = server
            .delete(&format!("/api/tags/{}", t1.as_str().unwrap()))
            .await;
        assert_eq!(status, 200, "{body}");
        let docs = posts(&server).await;
        assert_eq!(column(&docs, "title"), [json!("b")]);
        server.stop();
        let status = succeeds(migrate(&server, &["status"]));
        assert!(status.contains("pending: 0"), "{status}");
    }
}

const M1: &str = r#"
[collections.tags]
[collections.tags.fields]
name = { type = "string" }

[collections.labels]
[collections.labels.fields]
name = { type = "string" }

[collections.posts]
[collections.posts.fields]
ref   = { type = "string" }
favs  = { type = "relation", to = "tags", many = true }
picks = { type = "relation", to = "tags", many = true }
"#;

/// Text holding an id becomes a list of tags; a list becomes text (its first id).
const M2: &str = r#"
[collections.tags]
[collections.tags.fields]
name = { type = "string" }

[collections.labels]
[collections.labels.fields]
name = { type = "string" }

[collections.posts]
[collections.posts.fields]
ref   = { type = "relation", to = "tags", many = true }
favs  = { type = "string" }
picks = { type = "relation", to = "tags", many = true }
"#;

/// A list pointed at another collection, whose documents do not have the ids.
const M3: &str = r#"
[collections.tags]
[collections.tags.fields]
name = { type = "string" }

[collections.labels]
[collections.labels.fields]
name = { type = "string" }

[collections.posts]
[collections.posts.fields]
ref   = { type = "relation", to = "tags", many = true }
favs  = { type = "string" }
picks = { type = "relation", to = "labels", many = true }
"#;

#[tokio::test]
async fn lists_convert_from_and_to_other_types() {
    for backend in backends() {
        let mut server = Server::start(&backend, &open(M1)).await;
        let (_, tag) = server.post("/api/tags", &json!({"name": "t"})).await;
        let tag = tag["doc"]["id"].clone();
        let (status, post) = server
            .post(
                "/api/posts",
                &json!({"ref": tag, "favs": [tag], "picks": [tag]}),
            )
            .await;
        assert_eq!(status, 201, "{post}");
        let (status, _) = server.post("/api/posts", &json!({})).await;
        assert_eq!(status, 201);
        server.stop();

        set_config(&server, M2);
        let refusal = serve_refused(&server);
        for expected in [
            "changes type from string to relation → [tags]",
            "changes type from relation → [tags] to string",
        ] {
            assert!(refusal.contains(expected), "{expected} in:\n{refusal}");
        }
        succeeds(migrate(&server, &["new", "convert"]));
        succeeds(migrate(&server, &["apply"]));
        server.spawn(&[]);
        let docs = posts(&server).await;
        assert_eq!(column(&docs, "ref"), [json!([tag]), json!([])]);
        assert_eq!(column(&docs, "favs"), [tag.clone(), Value::Null]);
        server.stop();

        set_config(&server, M3);
        succeeds(migrate(&server, &["new", "picks_labels"]));
        let failed = fails(migrate(&server, &["apply"]));
        for expected in ["0003_picks_labels", "rolled back"] {
            assert!(failed.contains(expected), "{expected} in:\n{failed}");
        }
        let (path, _) = last_migration(server.path());
        std::fs::remove_file(path).unwrap();
        set_config(&server, M2);
        server.spawn(&[]);
        let docs = posts(&server).await;
        assert_eq!(column(&docs, "picks"), [json!([tag]), json!([])]);
        server.stop();
    }
}
