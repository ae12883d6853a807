//! The property SPEC §6 asks for: on random rules and random rows, the SQL a rule compiles to
//! selects exactly the rows its in-memory evaluation accepts — on SQLite always, and on
//! PostgreSQL when `LUCENT_TEST_POSTGRES_URL` is set (a throwaway database is created there and
//! dropped afterwards).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::sea_query::{Alias, Expr, Query, Value};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use serde_json::{Map, Value as Json, json};

use super::Mode::Predicate;
use super::tests::{compile, now, object};
use super::{Env, Residual, Rule, UserContext};
use crate::schema::format_time;

const STRINGS: [&str; 12] = [
    "", "a", "A", "ab", "AB", "a%b", "a_b", "b", "é", "É", "Ab%", "u1",
];

#[derive(Debug, Clone)]
struct Row {
    title: Option<&'static str>,
    body: Option<&'static str>,
    author: Option<&'static str>,
    views: Option<i64>,
    score: Option<f64>,
    flag: Option<bool>,
    published_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    meta: Option<Json>,
}

fn times() -> [DateTime<Utc>; 4] {
    let now = now();
    let exact = DateTime::from_timestamp_millis(now.timestamp_millis()).expect("in range");
    [
        exact,
        exact - Duration::milliseconds(1),
        exact + Duration::days(1),
        exact - Duration::days(400),
    ]
}

fn text() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(proptest::sample::select(&STRINGS[..]))
}

fn row() -> impl Strategy<Value = Row> {
    let time = proptest::sample::select(times().to_vec());
    (
        (
            text(),
            text(),
            proptest::option::of(proptest::sample::select(vec!["u1", "u2"])),
        ),
        (
            proptest::option::of(-1i64..4),
            proptest::option::of(proptest::sample::select(vec![-1.0, 0.0, 2.5, 3.0])),
        ),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(time.clone()),
            time,
            any::<bool>(),
        ),
    )
        .prop_map(
            |((title, body, author), (views, score), (flag, published_at, created_at, meta))| Row {
                title,
                body,
                author,
                views,
                score,
                flag,
                published_at,
                created_at,
                meta: meta.then(|| json!({"k": 1})),
            },
        )
}

fn quoted(text: &str) -> String {
    format!("'{text}'")
}

/// A comparison over the fixture's `posts` columns, with operands of matching types.
fn leaf() -> impl Strategy<Value = String> {
    let str_col = proptest::sample::select(vec!["doc.title", "doc.body", "doc.author"]);
    let num_col = proptest::sample::select(vec!["doc.views", "doc.score"]);
    let time_col = proptest::sample::select(vec!["doc.publishedAt", "doc.createdAt"]);
    let op = proptest::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let str_lit = proptest::sample::select(STRINGS.to_vec()).prop_map(quoted);
    let num_lit = proptest::sample::select(vec!["-1", "0", "1", "2", "2.5", "3.0"]);
    let time_lit = proptest::sample::select(vec![
        "now",
        "'2026-01-02T03:04:05.678Z'",
        "'2026-01-02T04:04:05.677+01:00'",
        "'2025-01-01T00:00:00Z'",
    ]);
    let fixed = proptest::sample::select(vec![
        "doc.flag",
        "doc.flag == true",
        "doc.flag != false",
        "doc.flag == null",
        "(doc.views > 1) == doc.flag",
        "(doc.views > 1) != (doc.score > 1)",
        "doc.meta == null",
        "doc.meta != null",
        "doc.title == null",
        "null != doc.views",
        "doc.views < null",
        "doc.title ~ null",
        "user == null",
        "user.role == 'admin'",
        "doc.author == user.id",
        "doc.title ~ user.name",
        "'write' in user.scopes",
        "doc.title in user.scopes",
        "doc.views > user.level",
        "doc.views < data.views",
        "doc.title == data.title",
        "doc.body ~ data.title",
        "'a' in [doc.title, doc.body]",
        "doc.body in [null, 'a', doc.title]",
        "doc.title in []",
    ]);
    prop_oneof![
        (str_col.clone(), op.clone(), str_lit.clone()).prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (str_lit.clone(), op.clone(), str_col.clone()).prop_map(|(l, o, c)| format!("{l} {o} {c}")),
        (str_col.clone(), str_lit.clone()).prop_map(|(c, l)| format!("{c} ~ {l}")),
        (str_col.clone(), op.clone(), str_col.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (num_col.clone(), op.clone(), num_lit.clone()).prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (num_col.clone(), op.clone(), num_col.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (time_col.clone(), op.clone(), time_lit).prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (time_col.clone(), op, time_col).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (str_col, proptest::collection::vec(str_lit, 0..4))
            .prop_map(|(c, l)| format!("{c} in [{}]", l.join(", "))),
        (num_col, proptest::collection::vec(num_lit, 0..4))
            .prop_map(|(c, l)| format!("{c} in [{}]", l.join(", "))),
        fixed.prop_map(str::to_string),
    ]
}

fn rule_source() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|items| format!("({})", items.join(" && "))),
            proptest::collection::vec(inner, 2..4)
                .prop_map(|items| format!("({})", items.join(" || "))),
        ]
    })
}

/// Who asks, and with what body: anonymous, a session user, an API key, a user whose `level`
/// has the other auth collection's type (so `user.level` comparisons fault).
fn caller() -> impl Strategy<Value = (Option<UserContext>, Option<Map<String, Json>>)> {
    let user = |role: &str, name: &str, level: Json, scopes: Option<Vec<String>>| UserContext {
        id: "u1".into(),
        collection: "users".into(),
        fields: object(json!({"role": role, "name": name, "level": level})),
        scopes,
    };
    let users = vec![
        None,
        Some(user("admin", "A", json!(1), None)),
        Some(user(
            "user",
            "%",
            json!(2),
            Some(vec!["write".into(), "ab".into()]),
        )),
        Some(user("user", "b", json!("x"), None)),
    ];
    let bodies = vec![
        None,
        Some(object(json!({"views": 2, "title": "A"}))),
        Some(object(json!({"views": "x"}))),
    ];
    (
        proptest::sample::select(users),
        proptest::sample::select(bodies),
    )
}

/// The row as the API shows it, which is what `eval` reads.
fn document(id: &str, row: &Row) -> Map<String, Json> {
    object(json!({
        "id": id,
        "title": row.title,
        "body": row.body,
        "author": row.author,
        "views": row.views,
        "score": row.score,
        "flag": row.flag,
        "publishedAt": row.published_at.as_ref().map(format_time),
        "createdAt": format_time(&row.created_at),
        "updatedAt": format_time(&row.created_at),
        "meta": row.meta,
    }))
}

async fn create_table(db: &DatabaseConnection) {
    let ddl = match db.get_database_backend() {
        DbBackend::Postgres => {
            r#"CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT, author TEXT, views BIGINT,
            score DOUBLE PRECISION, flag BOOLEAN, "publishedAt" TIMESTAMPTZ, "createdAt" TIMESTAMPTZ NOT NULL,
            "updatedAt" TIMESTAMPTZ NOT NULL, meta JSONB)"#
        }
        _ => {
            r#"CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT, author TEXT, views BIGINT,
            score DOUBLE, flag BOOLEAN, "publishedAt" TEXT, "createdAt" TEXT NOT NULL, "updatedAt" TEXT NOT NULL,
            meta TEXT)"#
        }
    };
    db.execute_unprepared(ddl).await.expect("create table");
}

async fn insert(db: &DatabaseConnection, rows: &[Row]) {
    db.execute_unprepared("DELETE FROM posts")
        .await
        .expect("clear table");
    for (i, row) in rows.iter().enumerate() {
        let values: Vec<Value> = vec![
            Value::String(Some(format!("r{i}"))),
            Value::String(row.title.map(str::to_string)),
            Value::String(row.body.map(str::to_string)),
            Value::String(row.author.map(str::to_string)),
            Value::BigInt(row.views),
            Value::Double(row.score),
            Value::Bool(row.flag),
            Value::ChronoDateTimeUtc(row.published_at),
            Value::ChronoDateTimeUtc(Some(row.created_at)),
            Value::ChronoDateTimeUtc(Some(row.created_at)),
            Value::Json(row.meta.clone().map(Box::new)),
        ];
        let columns = [
            "id",
            "title",
            "body",
            "author",
            "views",
            "score",
            "flag",
            "publishedAt",
            "createdAt",
            "updatedAt",
            "meta",
        ];
        let statement = Query::insert()
            .into_table(Alias::new("posts"))
            .columns(columns.map(Alias::new))
            .values_panic(values.into_iter().map(Expr::val))
            .to_owned();
        db.execute(&statement).await.expect("insert row");
    }
}

async fn selected(db: &DatabaseConnection, rule: &Rule, env: &Env<'_>) -> BTreeSet<String> {
    let cond = match rule.to_condition(env, db.get_database_backend()) {
        Residual::True => sea_orm::sea_query::Condition::all(),
        Residual::False => return BTreeSet::new(),
        Residual::Cond(cond) => cond,
    };
    let query = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("posts"))
        .cond_where(cond)
        .to_owned();
    let rows = db
        .query_all(&query)
        .await
        .unwrap_or_else(|e| panic!("query failed: {e}"));
    rows.iter()
        .map(|row| row.try_get::<String>("", "id").expect("id column"))
        .collect()
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url);
    // One connection: an in-memory SQLite database exists per connection.
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    Database::connect(options).await.expect("connect")
}

fn check_agreement(databases: &[DatabaseConnection], runtime: &tokio::runtime::Runtime) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    // Failures are reported with their shrunk input; no regression file is kept beside the source.
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(rule_source(), 1..5),
        proptest::collection::vec(row(), 0..10),
        caller(),
    );
    let result = runner.run(&strategy, |(sources, rows, (user, data))| {
        runtime.block_on(async {
            let env = Env {
                user: user.as_ref(),
                now: now(),
                doc: None,
                data: data.as_ref(),
                guards: None,
                lookup: None,
            };
            for db in databases {
                insert(db, &rows).await;
                for source in &sources {
                    let rule = compile(source, Predicate)
                        .map_err(|e| TestCaseError::fail(format!("{source}: {e:?}")))?;
                    let expected: BTreeSet<String> = rows
                        .iter()
                        .enumerate()
                        .map(|(i, row)| (format!("r{i}"), row))
                        .filter(|(id, row)| {
                            rule.eval(&Env {
                                doc: Some(&document(id, row)),
                                ..env
                            })
                        })
                        .map(|(id, _)| id)
                        .collect();
                    let got = selected(db, &rule, &env).await;
                    prop_assert_eq!(
                        &got,
                        &expected,
                        "{:?} on {:?}",
                        source,
                        db.get_database_backend()
                    );
                }
            }
            Ok(())
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn sql_agrees_with_eval() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut databases = vec![runtime.block_on(connect("sqlite::memory:"))];
    let postgres = std::env::var("LUCENT_TEST_POSTGRES_URL").ok();
    let scratch = format!("lucent_rules_{}", std::process::id());
    let admin = match &postgres {
        Some(url) => {
            let admin = runtime.block_on(connect(url));
            runtime
                .block_on(admin.execute_unprepared(&format!("CREATE DATABASE {scratch}")))
                .expect("create database");
            let (base, _) = url
                .rsplit_once('/')
                .expect("a database URL ends with /name");
            databases.push(runtime.block_on(connect(&format!("{base}/{scratch}"))));
            Some(admin)
        }
        None => {
            println!(
                "rules agreement: PostgreSQL skipped (set LUCENT_TEST_POSTGRES_URL to run it)"
            );
            None
        }
    };
    for db in &databases {
        runtime.block_on(create_table(db));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_agreement(&databases, &runtime)
    }));
    for db in databases {
        runtime.block_on(db.close()).expect("close");
    }
    if let Some(admin) = admin {
        runtime
            .block_on(admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {scratch}")))
            .expect("drop database");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
