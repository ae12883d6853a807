//! Test harness: starts the real `lucent` binary on a free port with a temporary project folder,
//! on SQLite or on a fresh PostgreSQL database, and speaks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// The engines a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// An admin URL; each server gets its own database created from it and dropped after.
    Postgres(String),
}

/// SQLite always; PostgreSQL when `LUCENT_TEST_POSTGRES_URL` is set (else a line says it is skipped).
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    match std::env::var("LUCENT_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => all.push(Backend::Postgres(url)),
        _ => eprintln!("PostgreSQL skipped: LUCENT_TEST_POSTGRES_URL is not set"),
    }
    all
}

pub const POSTS: &str = r#"
[collections.users]
auth = true
[collections.users.fields]
name = { type = "string", max_length = 100 }

[collections.posts]
[collections.posts.fields]
title     = { type = "string", required = true, max_length = 20 }
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
author    = { type = "relation", to = "users" }
# The engine tests run anonymously; access rules have their own tests.
[collections.posts.access]
read = "true"
create = "true"
update = "true"
delete = "true"
[collections.users.access]
read = "true"
update = "true"
delete = "true"
"#;

pub struct Server {
    pub base: String,
    pub dir: TempDir,
    pub client: reqwest::Client,
    child: Option<Child>,
    database: Option<(String, String)>,
    pub database_url: Option<String>,
}

/// A fresh database on the PostgreSQL server behind `admin_url`; returns its URL.
pub fn create_postgres_database(admin_url: &str) -> (String, String) {
    let name = format!("lucent_t_{}", uuid::Uuid::now_v7().simple());
    psql(admin_url, &format!("CREATE DATABASE {name}"));
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    (format!("{base}/{name}"), name)
}

fn psql(admin_url: &str, sql: &str) {
    let admin_url = admin_url.to_string();
    let sql = sql.to_string();
    // A thread with its own runtime, so this works from Drop and from async tests alike.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(&admin_url)
                .await
                .expect("connect to PostgreSQL");
            db.execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            db.close().await.ok();
        });
    })
    .join()
    .expect("psql thread");
}

impl Server {
    /// Writes `config` as `lucent.toml` in a new folder and serves it.
    pub async fn start(backend: &Backend, config: &str) -> Server {
        Self::start_with(backend, config, &[], &[]).await
    }

    /// As [`Server::start`], with extra files (path, contents) and environment variables.
    pub async fn start_with(
        backend: &Backend,
        config: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Server {
        let mut server = Self::prepare(backend, config, files);
        server.spawn(env);
        server
    }

    /// The folder (with `config` and `files`) and the empty database of a server, not started:
    /// [`Server::spawn`] starts it.
    pub fn prepare(backend: &Backend, config: &str, files: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("lucent.toml"), config).unwrap();
        for (path, contents) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let (database, database_url) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres(admin) => {
                let (url, name) = create_postgres_database(admin);
                (Some((admin.clone(), name)), Some(url))
            }
        };
        Server {
            base: String::new(),
            dir,
            // No cookie jar: tests pass credentials explicitly, or build a client that keeps them.
            client: reqwest::Client::builder()
                .user_agent("lucent-tests")
                .build()
                .unwrap(),
            child: None,
            database,
            database_url,
        }
    }

    /// Starts (or restarts) the binary on the same folder and database.
    pub fn spawn(&mut self, env: &[(&str, &str)]) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lucent"));
        command
            .args(["serve", "--config"])
            .arg(self.dir.path().join("lucent.toml"))
            .args(["--port", "0"])
            .env("LUCENT_LOG", "warn")
            .env_remove("LUCENT_DATABASE_URL")
            .env_remove("LUCENT_ENV")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = &self.database_url {
            command.env("LUCENT_DATABASE_URL", url);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start lucent");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = sender.send(addr.to_string());
                }
            }
        });
        let base = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let status = child.try_wait();
                panic!("lucent did not start listening (exit: {status:?})")
            });
        self.base = base;
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        child.wait().unwrap()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A connection of the test's own to the server's database (SQLite: `data/lucent.db` of its
    /// folder), for looking at or changing what the server stored.
    pub async fn connect_database(&self) -> sea_orm::DatabaseConnection {
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.path().join("data/lucent.db").display()
            ),
        };
        sea_orm::Database::connect(&url).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        decode(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None).await
    }
}

/// Status and JSON body; every answer of Lucent's API is JSON, so a non-JSON body fails the test.
pub async fn decode(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

/// Asserts an error envelope with `status` and `code`, returning the envelope's `error`.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: u16, code: &str) -> Value {
    assert_eq!(answer.0.as_u16(), status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].is_string(), "{}", answer.1);
    assert!(answer.1["error"]["details"].is_array(), "{}", answer.1);
    answer.1["error"].clone()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((admin, name)) = self.database.take() {
            psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// The path of the `lucent` binary, for command tests.
pub fn lucent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lucent"))
}

/// Drops a database made by [`create_postgres_database`].
pub fn drop_postgres_database(admin_url: &str, name: &str) {
    psql(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}
