//! Fuzzing the config loader (bounded, part of `cargo test`): random TOML documents (random
//! tables, keys and values, and valid configs with random parts replaced) and random text, in
//! `lucent.toml` and in collection files. Loading never panics, every problem names its file and
//! its key path (or, for text that is not TOML, its line and column), and the rules of whatever
//! could be built compile or fail with located errors.

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as Cases, TestCaseError, TestRunner};

use super::Policies;
use crate::config::{Diagnostic, load_partial};

/// Documents that once broke an invariant; checked before the random ones.
const REGRESSIONS: &[(&str, &[(&str, &str)])] = &[
    // An empty or dotted key once gave an empty or ambiguous key path.
    ("\"\" = 1\n", &[]),
    ("[collections.\"\"]\n", &[]),
    (
        "[collections.\"a.b\"]\n[collections.\"a.b\".fields]\n\"\" = { type = \"string\" }\n",
        &[],
    ),
    ("[server]\n\"\" = 1\n", &[]),
    (
        "[collections.posts.fields.t]\ntype = \"string\"\naccess = { \"\" = \"x\" }\n",
        &[],
    ),
    ("", &[("schemas/x.toml", "\"\" = 1\n")]),
    ("", &[("schemas/x.toml", "[fields.\"\"]\ntype = 1\n")]),
    ("[server]\nhost = \"${}\"\n", &[]),
    ("x = \"${UNSET}\"\n", &[]),
    (
        "[collections.users]\nauth = { login_field = 5 }\n[collections.posts.access]\nread = \"user.x == 1\"\n",
        &[],
    ),
    (
        "[collections.users]\nauth = 5\n[collections.users.fields]\nf = { type = 1 }\n",
        &[],
    ),
    (
        "schemas = 5\n[collections.p.access]\nread = \"user.y\"\n",
        &[],
    ),
    (
        "[collections.p.fields]\nr = { type = \"relation\", to = 5 }\ns = { type = \"select\", options = \"a\" }\n",
        &[],
    ),
];

/// A valid configuration that mutations start from.
const VALID: &str = r#"
[server]
host = "127.0.0.1"
port = 8080
body_limit = "1MiB"
[auth]
jwt_expiry = "15m"
[auth.password]
min_length = 12
[email]
transport = "log"
[metrics]
enabled = true
token = "a-metrics-token"
[collections.users]
auth = { login_field = "email", max_login_attempts = 3, lock_time = "2s" }
[collections.users.fields]
name = { type = "string", max_length = 100 }
role = { type = "select", options = ["admin", "user"], default = "user", access = { create = "user.role == 'admin'", update = "user.role == 'admin'" } }
[collections.users.access]
read = "user != null && (doc.id == user.id || user.role == 'admin')"
[collections.posts.fields]
title = { type = "string", required = true, max_length = 200, pattern = "[a-z]+" }
views = { type = "integer", default = 0, min = 0 }
when = { type = "datetime" }
author = { type = "relation", to = "users", on_delete = "cascade" }
readers = { type = "relation", to = "users", many = true, max_items = 5 }
[collections.posts.access]
read = "doc.views > 1 || doc.author == user.id"
create = "data.author == user.id"
"#;

/// Keys Lucent knows, and some it must refuse.
const KEYS: &[&str] = &[
    "server",
    "database",
    "auth",
    "email",
    "metrics",
    "enabled",
    "token",
    "collections",
    "schemas",
    "host",
    "port",
    "env",
    "cors_origins",
    "body_limit",
    "max_limit",
    "max_batch",
    "static_dir",
    "url",
    "jwt_secret",
    "jwt_expiry",
    "refresh_expiry",
    "cookies",
    "password",
    "min_length",
    "max_length",
    "transport",
    "dir",
    "from",
    "templates",
    "verify",
    "reset",
    "subject",
    "posts",
    "users",
    "fields",
    "access",
    "slug",
    "label",
    "title",
    "type",
    "read",
    "create",
    "update",
    "delete",
    "options",
    "to",
    "on_delete",
    "many",
    "max_items",
    "default",
    "pattern",
    "min",
    "max",
    "required",
    "unique",
    "hidden",
    "login_field",
    "lock_time",
    "verify_email",
    "max_login_attempts",
    "id",
    "createdAt",
    "verified",
    "",
    "a.b",
    "Bad Name",
    "é",
    "x",
];

const STRINGS: &[&str] = &[
    "string",
    "text",
    "email",
    "integer",
    "number",
    "boolean",
    "select",
    "datetime",
    "json",
    "relation",
    "users",
    "posts",
    "nobody",
    "cascade",
    "restrict",
    "dev",
    "prod",
    "log",
    "file",
    "smtp",
    "smtp://u:p@h:25",
    "user != null",
    "true",
    "doc.nope == 1",
    "user.role == 'admin'",
    "doc.title ~ ",
    "user.name == data.title",
    "${SET}",
    "${UNSET}",
    "${UNSET:-x}",
    "${",
    "10m",
    "-5s",
    "1MiB",
    "lots",
    "",
    "(",
    "[a-",
    "http://a",
    "https://a.io/",
    "x",
    "email",
    "username",
    "Lucent <a@b>",
    "not a mailbox",
    "http://h/{token}",
    "\u{0}",
    "é",
];

fn value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        4 => select(STRINGS).prop_map(|s| toml::Value::String(s.to_string())),
        1 => any::<String>().prop_map(toml::Value::String),
        2 => select(vec![0i64, 1, -1, 5, 80, 65536, i64::MAX, i64::MIN, 4_294_967_296])
            .prop_map(toml::Value::Integer),
        1 => select(vec![0.5, -1.5, 1e300, f64::NAN, f64::INFINITY, -0.0])
            .prop_map(toml::Value::Float),
        2 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => select(vec!["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"])
            .prop_map(|d| toml::Value::Datetime(d.parse().expect("a TOML datetime"))),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            proptest::collection::vec((select(KEYS), inner), 0..6).prop_map(|pairs| {
                toml::Value::Table(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A change to a document: a value set (or removed) at a path of keys.
#[derive(Debug, Clone)]
struct Mutation {
    path: Vec<&'static str>,
    value: Option<toml::Value>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let known_paths = select(vec![
        vec!["server"],
        vec!["server", "port"],
        vec!["auth", "password", "min_length"],
        vec!["collections", "users", "auth"],
        vec!["collections", "users", "auth", "login_field"],
        vec!["collections", "users", "fields", "role"],
        vec!["collections", "users", "fields", "role", "access"],
        vec!["collections", "users", "fields", "role", "options"],
        vec!["collections", "users", "access", "read"],
        vec!["collections", "posts"],
        vec!["collections", "posts", "fields"],
        vec!["collections", "posts", "fields", "title", "max_length"],
        vec!["collections", "posts", "fields", "title", "type"],
        vec!["collections", "posts", "fields", "author", "to"],
        vec!["collections", "posts", "fields", "views", "default"],
        vec!["collections", "posts", "access", "create"],
        vec!["collections"],
        vec!["schemas"],
    ]);
    let random_path = proptest::collection::vec(select(KEYS), 1..4);
    (
        prop_oneof![3 => known_paths, 1 => random_path],
        proptest::option::weighted(0.8, value()),
    )
        .prop_map(|(path, value)| Mutation { path, value })
}

fn apply(table: &mut toml::Table, mutation: &Mutation) {
    let Some((last, parents)) = mutation.path.split_last() else {
        return;
    };
    let mut table = table;
    for key in parents {
        let entry = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            return;
        };
        table = inner;
    }
    match &mutation.value {
        Some(value) => {
            table.insert(last.to_string(), value.clone());
        }
        None => {
            table.remove(*last);
        }
    }
}

/// A project: `lucent.toml` text and collection files.
#[derive(Debug, Clone)]
struct Project {
    config: String,
    files: Vec<(&'static str, String)>,
}

fn to_text(value: toml::Value) -> String {
    match value {
        toml::Value::Table(table) => toml::to_string(&table).unwrap_or_default(),
        other => format!("x = {other}"),
    }
}

fn project() -> impl Strategy<Value = Project> {
    let mutated = proptest::collection::vec(mutation(), 1..6).prop_map(|mutations| {
        let mut table: toml::Table = toml::from_str(VALID).expect("valid");
        for mutation in &mutations {
            apply(&mut table, mutation);
        }
        toml::to_string(&table).unwrap_or_default()
    });
    let random = value().prop_map(to_text);
    // Text that is almost TOML: a valid document with one character changed.
    let corrupted = (
        0..VALID.len(),
        select(vec!["", "[", "]", "=", "\"", "'", "\n", "{", "é"]),
    )
        .prop_map(|(at, text)| {
            let at = (0..=at)
                .rev()
                .find(|i| VALID.is_char_boundary(*i))
                .unwrap_or(0);
            let mut config = VALID.to_string();
            config.replace_range(at..(at + 1).min(VALID.len()), text);
            config
        });
    let config = prop_oneof![4 => mutated, 2 => random, 1 => corrupted, 1 => any::<String>()];
    let file = prop_oneof![
        3 => value().prop_map(to_text),
        1 => any::<String>(),
        1 => Just("[fields]\nbody = { type = \"text\" }\n[access]\nread = \"doc.bdy == 1\"\n".to_string()),
    ];
    let files = proptest::collection::vec(
        (
            select(vec![
                "schemas/users.toml",
                "schemas/notes.toml",
                "schemas/Bad.toml",
            ]),
            file,
        ),
        0..3,
    );
    (config, files).prop_map(|(config, files)| Project { config, files })
}

/// Loads a project and checks the invariants.
fn check(config: &str, files: &[(&str, &str)]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lucent.toml");
    std::fs::write(&path, config).expect("write");
    let mut written: Vec<PathBuf> = vec![path.clone()];
    for (name, text) in files {
        let file = dir.path().join(name);
        std::fs::create_dir_all(file.parent().expect("in a folder")).expect("mkdir");
        std::fs::write(&file, text).expect("write");
        written.push(file);
    }
    let lookup = |name: &str| (name == "SET").then(|| "value".to_string());
    let (loaded, diags) = load_partial(&path, &lookup);
    for diagnostic in &diags.0 {
        located(diagnostic, &written, config)?;
    }
    match Policies::compile(&loaded.schema) {
        Ok(_) => prop_assert!(
            loaded.schema.gaps.is_empty(),
            "rules compiled over a schema with gaps"
        ),
        Err(rule_errors) => {
            prop_assert!(
                !rule_errors.is_empty() || !diags.is_empty(),
                "rules refused without a reason for\n{config}"
            );
            for diagnostic in &rule_errors.0 {
                located(diagnostic, &written, config)?;
                prop_assert!(
                    diagnostic.snippet.is_some(),
                    "a rule error without its column: {diagnostic}"
                );
            }
        }
    }
    Ok(())
}

fn located(d: &Diagnostic, files: &[PathBuf], config: &str) -> Result<(), TestCaseError> {
    let text = d.to_string();
    prop_assert!(files.contains(&d.file), "{text}: not one of {files:?}");
    prop_assert!(
        !d.path.is_empty() || d.message.starts_with("invalid TOML at line "),
        "not located: {text:?}\nin\n{config}"
    );
    if let Some((source, column)) = &d.snippet {
        prop_assert!(
            (1..=source.chars().count() + 1).contains(column),
            "column outside the rule: {text}"
        );
    }
    Ok(())
}

#[test]
fn regression_documents() {
    for (config, files) in REGRESSIONS {
        check(config, files).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn random_documents_load_without_panics_and_every_problem_is_located() {
    let mut runner = TestRunner::new(Cases {
        cases: 1500,
        failure_persistence: None,
        ..Cases::default()
    });
    runner
        .run(&project(), |project| {
            let files: Vec<(&str, &str)> = project
                .files
                .iter()
                .map(|(name, text)| (*name, text.as_str()))
                .collect();
            check(&project.config, &files)
        })
        .unwrap();
}

#[test]
fn the_valid_document_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lucent.toml");
    std::fs::write(&path, VALID).unwrap();
    let (config, diags) = load_partial(&path, &|_| None);
    assert!(diags.is_empty(), "{diags}");
    assert!(Policies::compile(&config.schema).is_ok());
}
