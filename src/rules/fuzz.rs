//! Fuzzing the rule language (bounded, part of `cargo test`): the lexer, parser and checker on
//! arbitrary strings and on random expressions built from the grammar, well- and ill-typed. None
//! may panic; every error points inside the source (a column from 1 to one past its last
//! character); a rule that compiles can be evaluated, lowered to SQL for every engine and
//! analysed without a panic.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use sea_orm::DbBackend;
use serde_json::json;

use super::Env;
use super::Mode::{Filter, Predicate};
use super::tests::{Tables, compile, env, guards, object, user};
use super::{RuleError, Suspect};

/// Inputs that once broke an invariant, or are close to the edges; checked before the random ones.
const REGRESSIONS: &[&str] = &[
    "",
    " ",
    "\n",
    "(",
    ")",
    "[",
    "'",
    "\"",
    "'\\",
    "\"\\u",
    "doc.",
    ".",
    "..",
    "doc..title",
    "!",
    "!!!!",
    "&&",
    "a &",
    "a |",
    "a = b",
    "1e309 == doc.score",
    "9223372036854775808 == doc.views",
    "-9223372036854775808 == doc.views",
    "doc.views == -",
    "doc.title ~ '\u{0}'",
    "é == ü",
    "doc.title == 'é'\u{301}",
    "\u{feff}true",
    "doc.title in [",
    "doc.title in [,]",
    "doc.title in ['a',]",
    "user.scopes in user.scopes",
    "now in [now]",
    "doc.publishedAt == '2026-13-40T99:99:99Z'",
    "doc.publishedAt < '+275760-09-13T00:00:00Z'",
    "doc.title.x.y.z == 1",
    "author.name.x.y == 1",
    "parent.parent.parent.parent.parent == null",
    "posts_via_parent == posts_via_parent",
    "author.name == author.name",
    "user.id.x == 1",
    "data == null",
    "(((((((((((((((((((((((((((((((((((true)))))))))))))))))))))))))))))))))))",
];

/// Checks the invariants for one source in both modes.
fn check_source(source: &str) -> Result<(), TestCaseError> {
    let width = source.chars().count();
    for mode in [Predicate, Filter] {
        match compile(source, mode) {
            Err(errors) => {
                prop_assert!(!errors.is_empty(), "{source:?}: an error without a message");
                for RuleError { column, message } in &errors {
                    prop_assert!(
                        (1..=width + 1).contains(column),
                        "{source:?} ({mode:?}): column {column} outside 1..={} for {message}",
                        width + 1
                    );
                    prop_assert!(!message.is_empty(), "{source:?}: an empty message");
                }
            }
            Ok(rule) => {
                let admin = user("admin", Some(&["read"]));
                let doc = object(json!({
                    "id": "p1", "title": "x", "views": 3, "score": 2.5, "flag": true,
                    "publishedAt": "2026-01-01T00:00:00.000Z", "meta": {"a": 1}, "body": null, "author": "u1",
                }));
                let data = object(json!({"views": "not a number", "title": 5, "flag": "x"}));
                let guards = guards();
                let mut tables = Tables::default();
                tables
                    .0
                    .insert("users".into(), vec![object(json!({"id": "u1", "name": 1}))]);
                let related = Env {
                    guards: Some(&guards),
                    lookup: Some(&tables),
                    ..env(Some(&admin), Some(&doc), Some(&data))
                };
                for env in [
                    env(None, None, None),
                    env(Some(&admin), Some(&doc), Some(&data)),
                    related,
                ] {
                    let _ = rule.eval(&env);
                    for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
                        let _ = rule.to_condition(&env, backend);
                    }
                }
                let _ = rule.user_reads();
                let _ = rule.may_hold(&Suspect::Anonymous);
                let _ = rule.may_hold(&Suspect::Account {
                    collection: "users",
                    known: &doc,
                });
            }
        }
    }
    Ok(())
}

#[test]
fn regression_inputs() {
    for source in REGRESSIONS {
        check_source(source).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn arbitrary_strings_never_panic_and_errors_point_inside() {
    let mut runner = runner(3000);
    let any_text = any::<String>();
    // Mostly the language's own characters, so the parser and checker get past the lexer.
    let rule_chars = "[a-zA-Z_.=!<>~&|()\\[\\],'\" 0-9\\\\é\u{0}\t\n-]{0,80}";
    runner
        .run(&prop_oneof![any_text, rule_chars], |source| {
            check_source(&source)
        })
        .unwrap();
}

/// A value: names (known, unknown, too deep), literals at the edges, quoted strings with escapes.
fn atom() -> impl Strategy<Value = String> {
    let names = select(vec![
        "doc.title",
        "doc.views",
        "doc.score",
        "doc.flag",
        "doc.publishedAt",
        "doc.meta",
        "doc.author",
        "doc.secret",
        "doc.private",
        "doc.id",
        "doc.createdAt",
        "doc.nope",
        "doc",
        "title",
        "views",
        "private",
        "secret",
        "user",
        "user.id",
        "user.role",
        "user.level",
        "user.scopes",
        "user.collection",
        "user.verified",
        "user.password",
        "user.nope",
        "data.title",
        "data.views",
        "data.flag",
        "data",
        "nope",
        "doc.title.length",
        "doc.author.name",
        "author.name",
        "author.verified",
        "author.nickname",
        "author.password",
        "doc.author.org.name",
        "author.org.users_via_org.level",
        "parent.parent.parent.parent.title",
        "posts_via_parent.title",
        "posts_via_parent",
        "doc.author.posts_via_author.views",
        "data.author.name",
        "tags",
        "doc.tags",
        "tags.name",
        "parent.tags",
        "tags.posts_via_tags.title",
        "data.tags",
    ]);
    let literals = select(vec![
        "0",
        "-1",
        "2.5",
        "1e3",
        "1e309",
        "9223372036854775807",
        "9223372036854775808",
        "-0",
        ".5",
        "1.",
        "0x10",
        "true",
        "false",
        "null",
        "now",
        "'2026-01-01T00:00:00Z'",
        "'2026-01-01'",
        "''",
        "'a\\'b'",
        "\"a\\\"b\"",
        "'\\n'",
        "'unterminated",
        "'%_'",
    ]);
    let strings = "[a-zA-Zé%_\\\\' ]{0,12}".prop_map(|s| format!("{s:?}"));
    let long = (250usize..270).prop_map(|n| format!("'{}'", "x".repeat(n)));
    prop_oneof![
        6 => names.prop_map(String::from),
        4 => literals.prop_map(String::from),
        2 => strings,
        1 => long,
    ]
}

/// Random expressions from the grammar, with the odd stray token.
fn expression() -> impl Strategy<Value = String> {
    let op = select(vec![
        "==", "!=", "<", "<=", ">", ">=", "~", "in", "&&", "||", "=", "!",
    ]);
    atom().prop_recursive(6, 80, 6, move |inner| {
        prop_oneof![
            4 => (inner.clone(), op.clone(), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            2 => inner.clone().prop_map(|e| format!("({e})")),
            1 => inner.clone().prop_map(|e| format!("!{e}")),
            1 => proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            1 => (inner.clone(), select(vec!["(", ")", "[", "]", ",", ".", "'", "&", "|"]))
                .prop_map(|(e, junk)| format!("{e}{junk}")),
        ]
    })
}

#[test]
fn random_expressions_never_panic_and_errors_point_inside() {
    let mut runner = runner(3000);
    runner
        .run(&expression(), |source| check_source(&source))
        .unwrap();
}

#[test]
fn deep_and_long_inputs_never_panic_and_errors_point_inside() {
    let mut runner = runner(200);
    let deep = (0usize..200).prop_map(|n| format!("{}true{}", "(".repeat(n), ")".repeat(n)));
    let nots = (0usize..200).prop_map(|n| format!("{}true", "!".repeat(n)));
    let chain = (0usize..200).prop_map(|n| vec!["doc.flag"; n + 1].join(" && "));
    let list = (990usize..1010).prop_map(|n| format!("doc.views in [{}]", vec!["1"; n].join(",")));
    let big = (16_000usize..16_500).prop_map(|n| format!("doc.title == '{}'", "x".repeat(n)));
    runner
        .run(&prop_oneof![deep, nots, chain, list, big], |source| {
            check_source(&source)
        })
        .unwrap();
}
