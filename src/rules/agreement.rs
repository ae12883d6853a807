//! The property SPEC §6 asks for: on random rules and random rows, the SQL a rule compiles to
//! selects exactly the rows its in-memory evaluation accepts — on SQLite always, and on
//! PostgreSQL when `LUCENT_TEST_POSTGRES_URL` is set (a throwaway database is created there and
//! dropped afterwards). Rules follow relations too (SPEC §10): posts → their author (random
//! users) → the author's org (random orgs), posts → their parent post and back, each hop
//! guarded by the reached collection's `read` rule (the fixture's), which memory evaluates
//! through a lookup over the same rows.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::sea_query::{Alias, Expr, Query, Value};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use serde_json::{Map, Value as Json, json};

use super::Mode::Predicate;
use super::tests::{Tables, compile, guards, now, object};
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
    parent: Option<&'static str>,
    /// A to-many relation to `tags` (`t9` names no tag).
    tags: Vec<&'static str>,
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

/// An account the posts' `author` may name (`u1` to `u3`).
#[derive(Debug, Clone)]
struct Account {
    name: Option<&'static str>,
    verified: Option<bool>,
    level: Option<i64>,
    org: Option<&'static str>,
    nickname: Option<&'static str>,
}

fn account() -> impl Strategy<Value = Account> {
    (
        text(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(-1i64..4),
        proptest::option::of(proptest::sample::select(vec!["o1", "o2", "o9"])),
        text(),
    )
        .prop_map(|(name, verified, level, org, nickname)| Account {
            name,
            verified,
            level,
            org,
            nickname,
        })
}

/// The org names: `hidden` is the one the orgs' read rule hides.
fn org_name() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(proptest::sample::select(vec!["hidden", "a", "A", "ab"]))
}

/// The tag names: `secret` is the one the tags' read rule hides (but from admins).
fn tag_name() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(proptest::sample::select(vec!["secret", "a", "A", "rust"]))
}

fn row() -> impl Strategy<Value = Row> {
    let time = proptest::sample::select(times().to_vec());
    (
        (
            text(),
            text(),
            proptest::option::of(proptest::sample::select(vec!["u1", "u2", "u3", "u9"])),
            proptest::option::of(proptest::sample::select(vec!["r0", "r1", "r2", "r3", "r9"])),
            proptest::sample::subsequence(vec!["t1", "t2", "t3", "t9"], 0..=3),
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
            |(
                (title, body, author, parent, tags),
                (views, score),
                (flag, published_at, created_at, meta),
            )| Row {
                title,
                body,
                author,
                parent,
                tags,
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
        "doc.author.verified",
        "doc.author.id == user.id",
        "doc.author.name == user.name",
        "doc.author.level > user.level",
        "doc.author.level > data.views",
        "doc.author.level < 2.5",
        "doc.author.org == null",
        "doc.author.id != null",
        "doc.author.name == doc.title",
        "doc.author.name < doc.body",
        "doc.posts_via_parent.flag",
        "doc.posts_via_parent.author == user.id",
        "doc.parent.parent.parent.views > 1",
        "doc.author.posts_via_author.views > 1",
        "doc.author.org.users_via_org.verified",
        "doc.author.name in [doc.title, 'a']",
        "'t1' in doc.tags",
        "'t9' in doc.tags",
        "!('t2' in doc.tags)",
        "doc.title in doc.tags",
        "user.id in doc.tags",
        "data.title in doc.tags",
        "'t1' in doc.parent.tags",
        "doc.tags.posts_via_tags.views > 1",
        "doc.tags.name == doc.title",
    ]);
    let related_str = proptest::sample::select(vec![
        "doc.author.name",
        "doc.author.nickname",
        "doc.author.org.name",
        "doc.posts_via_parent.title",
        "doc.parent.author.name",
        "doc.parent.title",
        "doc.tags.name",
        "doc.parent.tags.name",
    ]);
    prop_oneof![
        (str_col.clone(), op.clone(), str_lit.clone()).prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (str_lit.clone(), op.clone(), str_col.clone()).prop_map(|(l, o, c)| format!("{l} {o} {c}")),
        (str_col.clone(), str_lit.clone()).prop_map(|(c, l)| format!("{c} ~ {l}")),
        (str_col.clone(), op.clone(), str_col.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (num_col.clone(), op.clone(), num_lit.clone()).prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (num_col.clone(), op.clone(), num_col.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (time_col.clone(), op.clone(), time_lit).prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (time_col.clone(), op.clone(), time_col).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (related_str.clone(), op.clone(), str_lit.clone())
            .prop_map(|(c, o, l)| format!("{c} {o} {l}")),
        (str_lit.clone(), op.clone(), related_str.clone())
            .prop_map(|(l, o, c)| format!("{l} {o} {c}")),
        (related_str.clone(), str_lit.clone()).prop_map(|(c, l)| format!("{c} ~ {l}")),
        (
            related_str,
            proptest::collection::vec(str_lit.clone(), 0..3)
        )
            .prop_map(|(c, l)| format!("{c} in [{}]", l.join(", "))),
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
        "parent": row.parent,
        "tags": row.tags,
        "views": row.views,
        "score": row.score,
        "flag": row.flag,
        "publishedAt": row.published_at.as_ref().map(format_time),
        "createdAt": format_time(&row.created_at),
        "updatedAt": format_time(&row.created_at),
        "meta": row.meta,
    }))
}

/// An account as the API shows it.
fn account_document(id: &str, account: &Account) -> Map<String, Json> {
    object(json!({
        "id": id,
        "name": account.name,
        "verified": account.verified,
        "level": account.level,
        "org": account.org,
        "nickname": account.nickname,
    }))
}

/// The related rows, as memory evaluation looks them up.
fn tables(
    rows: &[Row],
    accounts: &[Account],
    orgs: &[Option<&str>],
    tags: &[Option<&str>],
) -> Tables {
    let mut tables = Tables::default();
    tables.0.insert(
        "posts".into(),
        rows.iter()
            .enumerate()
            .map(|(i, row)| document(&format!("r{i}"), row))
            .collect(),
    );
    tables.0.insert(
        "users".into(),
        accounts
            .iter()
            .enumerate()
            .map(|(i, a)| account_document(&format!("u{}", i + 1), a))
            .collect(),
    );
    tables.0.insert(
        "orgs".into(),
        orgs.iter()
            .enumerate()
            .map(|(i, name)| object(json!({"id": format!("o{}", i + 1), "name": name})))
            .collect(),
    );
    tables.0.insert(
        "tags".into(),
        tags.iter()
            .enumerate()
            .map(|(i, name)| object(json!({"id": format!("t{}", i + 1), "name": name})))
            .collect(),
    );
    tables
}

async fn create_table(db: &DatabaseConnection) {
    let ddl = match db.get_database_backend() {
        DbBackend::Postgres => {
            r#"CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT, author TEXT, parent TEXT,
            views BIGINT, score DOUBLE PRECISION, flag BOOLEAN, "publishedAt" TIMESTAMPTZ,
            "createdAt" TIMESTAMPTZ NOT NULL, "updatedAt" TIMESTAMPTZ NOT NULL, meta JSONB);
            CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, verified BOOLEAN, level BIGINT,
            org TEXT, nickname TEXT);
            CREATE TABLE orgs (id TEXT PRIMARY KEY, name TEXT);
            CREATE TABLE tags (id TEXT PRIMARY KEY, name TEXT);
            CREATE TABLE _lucent_rel_posts_tags (source TEXT, target TEXT, position BIGINT,
            PRIMARY KEY (source, target))"#
        }
        _ => {
            r#"CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT, author TEXT, parent TEXT,
            views BIGINT, score DOUBLE, flag BOOLEAN, "publishedAt" TEXT, "createdAt" TEXT NOT NULL,
            "updatedAt" TEXT NOT NULL, meta TEXT);
            CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, verified BOOLEAN, level BIGINT,
            org TEXT, nickname TEXT);
            CREATE TABLE orgs (id TEXT PRIMARY KEY, name TEXT);
            CREATE TABLE tags (id TEXT PRIMARY KEY, name TEXT);
            CREATE TABLE _lucent_rel_posts_tags (source TEXT, target TEXT, position BIGINT,
            PRIMARY KEY (source, target))"#
        }
    };
    db.execute_unprepared(ddl).await.expect("create tables");
}

async fn insert_related(
    db: &DatabaseConnection,
    accounts: &[Account],
    orgs: &[Option<&str>],
    tags: &[Option<&str>],
) {
    db.execute_unprepared("DELETE FROM users; DELETE FROM orgs; DELETE FROM tags")
        .await
        .expect("clear tables");
    for (i, name) in tags.iter().enumerate() {
        let statement = Query::insert()
            .into_table(Alias::new("tags"))
            .columns(["id", "name"].map(Alias::new))
            .values_panic([
                Expr::val(format!("t{}", i + 1)),
                Expr::val(name.map(str::to_string)),
            ])
            .to_owned();
        db.execute(&statement).await.expect("insert tag");
    }
    for (i, account) in accounts.iter().enumerate() {
        let values: Vec<Value> = vec![
            Value::String(Some(format!("u{}", i + 1))),
            Value::String(account.name.map(str::to_string)),
            Value::Bool(account.verified),
            Value::BigInt(account.level),
            Value::String(account.org.map(str::to_string)),
            Value::String(account.nickname.map(str::to_string)),
        ];
        let statement = Query::insert()
            .into_table(Alias::new("users"))
            .columns(["id", "name", "verified", "level", "org", "nickname"].map(Alias::new))
            .values_panic(values.into_iter().map(Expr::val))
            .to_owned();
        db.execute(&statement).await.expect("insert account");
    }
    for (i, name) in orgs.iter().enumerate() {
        let statement = Query::insert()
            .into_table(Alias::new("orgs"))
            .columns(["id", "name"].map(Alias::new))
            .values_panic([
                Expr::val(format!("o{}", i + 1)),
                Expr::val(name.map(str::to_string)),
            ])
            .to_owned();
        db.execute(&statement).await.expect("insert org");
    }
}

async fn insert(db: &DatabaseConnection, rows: &[Row]) {
    db.execute_unprepared("DELETE FROM posts; DELETE FROM _lucent_rel_posts_tags")
        .await
        .expect("clear table");
    for (i, row) in rows.iter().enumerate() {
        for (position, tag) in row.tags.iter().enumerate() {
            let statement = Query::insert()
                .into_table(Alias::new("_lucent_rel_posts_tags"))
                .columns(["source", "target", "position"].map(Alias::new))
                .values_panic([
                    Expr::val(format!("r{i}")),
                    Expr::val(*tag),
                    Expr::val(position as i64),
                ])
                .to_owned();
            db.execute(&statement).await.expect("insert list row");
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let values: Vec<Value> = vec![
            Value::String(Some(format!("r{i}"))),
            Value::String(row.title.map(str::to_string)),
            Value::String(row.body.map(str::to_string)),
            Value::String(row.author.map(str::to_string)),
            Value::String(row.parent.map(str::to_string)),
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
            "parent",
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
        (
            proptest::collection::vec(account(), 3),
            proptest::collection::vec(org_name(), 2),
            proptest::collection::vec(tag_name(), 3),
        ),
        caller(),
    );
    let guards = guards();
    let result = runner.run(
        &strategy,
        |(sources, rows, (accounts, orgs, tags), (user, data))| {
            runtime.block_on(async {
                let tables = tables(&rows, &accounts, &orgs, &tags);
                let env = Env {
                    user: user.as_ref(),
                    now: now(),
                    doc: None,
                    data: data.as_ref(),
                    guards: Some(&guards),
                    lookup: Some(&tables),
                };
                for db in databases {
                    insert(db, &rows).await;
                    insert_related(db, &accounts, &orgs, &tags).await;
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
        },
    );
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
