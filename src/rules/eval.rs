//! In-memory evaluation, and the value semantics SQL generation must reproduce.
//!
//! Null handling, in one place (SPEC §6; `sql.rs` emits the same rules):
//! - `==` / `!=` treat null as a value: `null == null`, and `null == 'a'` is false.
//! - `<`, `<=`, `>`, `>=` and `~` are false when either side is null.
//! - `x in list` compares like `==` with each item; it is false when the list is null.
//! - a null used as a condition is false (so `!doc.flag` holds for a null flag).
//! - a field of a null `user`, `doc` or `data` is null.
//! - a comparison through a relation path holds when it holds for ANY document the path
//!   reaches that the caller may read (false when there is none).
//!
//! Anything that cannot be evaluated (a body value of the wrong type, an over-long `~` pattern)
//! is a [`Fault`], and a faulting rule is false as a whole. Every operand is evaluated — no
//! short-circuit — so a fault denies whether or not another operand already decided the answer,
//! exactly as when the same rule is split between memory and SQL.

use std::cmp::Ordering;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value as Json};

use super::ast::CmpOp;
use super::error::Fault;
use super::ir::{Exists, Hop, MAX_PATTERN, Node, Ty, UserAttr, Val};
use super::parse::MAX_LIST;
use super::{Env, Guards, Rule};
use crate::schema::parse_time;

/// The rule's answer: a fault denies.
pub fn truth(node: &Node, env: &Env<'_>) -> Result<bool, Fault> {
    truth_in(node, env, None)
}

/// A document inside a relation path sees the document the path started from as `outer`.
type Outer<'o> = Option<&'o Map<String, Json>>;

fn truth_in(node: &Node, env: &Env<'_>, outer: Outer<'_>) -> Result<bool, Fault> {
    as_condition(value_in(node, env, outer)?)
}

/// A value used as a condition: null is false.
pub fn as_condition(val: Val) -> Result<bool, Fault> {
    match val {
        Val::Bool(b) => Ok(b),
        Val::Null => Ok(false),
        _ => Err(Fault("a condition is not a boolean")),
    }
}

/// `now` as rules see it: at the millisecond precision datetimes are stored with.
pub fn now(env: &Env<'_>) -> DateTime<Utc> {
    env.now.trunc_subsecs(3)
}

pub fn value(node: &Node, env: &Env<'_>) -> Result<Val, Fault> {
    value_in(node, env, None)
}

fn value_in(node: &Node, env: &Env<'_>, outer: Outer<'_>) -> Result<Val, Fault> {
    Ok(match node {
        Node::Or(items) => {
            let truths = items
                .iter()
                .map(|item| truth_in(item, env, outer))
                .collect::<Result<Vec<_>, _>>()?;
            Val::Bool(truths.contains(&true))
        }
        Node::And(items) => {
            let truths = items
                .iter()
                .map(|item| truth_in(item, env, outer))
                .collect::<Result<Vec<_>, _>>()?;
            Val::Bool(!truths.contains(&false))
        }
        Node::Not(inner) => Val::Bool(!truth_in(inner, env, outer)?),
        Node::Cmp(CmpOp::In, left, right) => Val::Bool(membership(left, right, env, outer)?),
        Node::Cmp(op, left, right) => {
            let (l, r) = (value_in(left, env, outer)?, value_in(right, env, outer)?);
            let (l, r) = typed(left, l, Some(right), r)?;
            Val::Bool(compare(*op, &l, &r)?)
        }
        Node::Const(val) => val.clone(),
        Node::Now => Val::Time(now(env)),
        Node::List(items) => Val::List(
            items
                .iter()
                .map(|item| value_in(item, env, outer))
                .collect::<Result<_, _>>()?,
        ),
        Node::User => match env.user {
            Some(_) => Val::Opaque,
            None => Val::Null,
        },
        Node::UserAttr(attr) => match (env.user, attr) {
            (None, _) => Val::Null,
            (Some(user), UserAttr::Id) => Val::Str(user.id.clone()),
            (Some(user), UserAttr::Collection) => Val::Str(user.collection.clone()),
            (Some(user), UserAttr::Scopes) => match &user.scopes {
                Some(scopes) => Val::List(scopes.iter().cloned().map(Val::Str).collect()),
                None => Val::Null,
            },
            (Some(user), UserAttr::Field(name, ty)) => field(Some(&user.fields), name, ty)?,
        },
        Node::Data(name, ty) => field(env.data, name, ty)?,
        Node::Doc(column) => field(env.doc, &column.name, &column.ty)?,
        Node::Outer(column) => field(outer, &column.name, &column.ty)?,
        Node::Exists(exists) => Val::Bool(any_related(exists, env)?),
        Node::Ids(ids) => field(env.doc, &ids.field, &Ty::List(Box::new(Ty::Str)))?,
    })
}

/// Whether some document `exists.hops` reach from `env.doc`, each readable by the caller,
/// satisfies `exists.cond` (which reads the starting document as `Outer`).
fn any_related(exists: &Exists, env: &Env<'_>) -> Result<bool, Fault> {
    // SQL generation evaluates the parts of the condition that read no document once, whatever
    // the rows: a fault there denies even when no document is reached, so they are evaluated
    // once here too, against no document.
    truth_in(&exists.cond, &Env { doc: None, ..*env }, env.doc)?;
    let Some(start) = env.doc else {
        return Ok(false);
    };
    let (Some(guards), Some(lookup)) = (env.guards, env.lookup) else {
        return Err(Fault("related documents cannot be looked up here"));
    };
    let mut reached = vec![start.clone()];
    for hop in &exists.hops {
        let mut next = Vec::new();
        for doc in &reached {
            next.extend(
                lookup
                    .follow(hop, doc)
                    .into_iter()
                    .filter(|found| readable(hop, found, guards, env)),
            );
        }
        reached = next;
    }
    let mut hit = false;
    for doc in &reached {
        hit |= truth_in(
            &exists.cond,
            &Env {
                doc: Some(doc),
                ..*env
            },
            Some(start),
        )?;
    }
    Ok(hit)
}

/// Whether the caller may read `doc`, reached by `hop`: its collection's `read` rule, and the
/// `read` rules of the fields the path reads there.
fn readable(hop: &Hop, doc: &Map<String, Json>, guards: &dyn Guards, env: &Env<'_>) -> bool {
    let env = env.reading(Some(doc));
    let passes = |rule: Option<&Rule>| rule.is_none_or(|rule| rule.eval(&env));
    passes(guards.read(hop.to))
        && hop
            .guarded
            .iter()
            .all(|&field| passes(guards.field_read(hop.to, field)))
}

/// Two values about to be compared, each checked against the column type of the other side.
/// SQL generation binds a value for a column with the same [`coerce`], so both fail alike.
pub fn typed(left: &Node, l: Val, right: Option<&Node>, r: Val) -> Result<(Val, Val), Fault> {
    let r = match left {
        Node::Doc(column) | Node::Outer(column) => coerce(&column.ty, r)?,
        _ => r,
    };
    let l = match right {
        Some(Node::Doc(column) | Node::Outer(column)) => coerce(&column.ty, l)?,
        _ => l,
    };
    Ok((l, r))
}

/// A value as one of type `ty` (a column's), or a fault. Strings become datetimes by RFC 3339.
pub fn coerce(ty: &Ty, val: Val) -> Result<Val, Fault> {
    Ok(match (ty, val) {
        (_, Val::Null) => Val::Null,
        (Ty::Time, Val::Str(text)) => Val::Time(as_time(&text)?),
        (Ty::Str, val @ Val::Str(_))
        | (Ty::Bool, val @ Val::Bool(_))
        | (Ty::Int | Ty::Float, val @ (Val::Int(_) | Val::Float(_)))
        | (Ty::Time, val @ Val::Time(_)) => val,
        _ => return Err(Fault("a value does not have the column's type")),
    })
}

/// Applies a comparison operator other than `in` to two values.
pub fn compare(op: CmpOp, l: &Val, r: &Val) -> Result<bool, Fault> {
    match op {
        CmpOp::Eq => equal(l, r),
        CmpOp::Ne => Ok(!equal(l, r)?),
        CmpOp::Lt => Ok(order(l, r)?.is_some_and(Ordering::is_lt)),
        CmpOp::Le => Ok(order(l, r)?.is_some_and(Ordering::is_le)),
        CmpOp::Gt => Ok(order(l, r)?.is_some_and(Ordering::is_gt)),
        CmpOp::Ge => Ok(order(l, r)?.is_some_and(Ordering::is_ge)),
        CmpOp::Contains => contains(l, r),
        CmpOp::In => Err(Fault("`in` needs its operand nodes")),
    }
}

/// `x in [..]` or `x in <list value>`: like `==` with any item; false for a null list.
fn membership(left: &Node, right: &Node, env: &Env<'_>, outer: Outer<'_>) -> Result<bool, Fault> {
    let mut l = value_in(left, env, outer)?;
    if let Node::Ids(_) = right {
        // SQL binds the value as an id before it looks at any list: so does memory.
        l = coerce(&Ty::Str, l)?;
    }
    let items: Vec<(Option<&Node>, Val)> = match right {
        Node::List(items) => items
            .iter()
            .map(|item| Ok((Some(item), value_in(item, env, outer)?)))
            .collect::<Result<_, _>>()?,
        _ => match value_in(right, env, outer)? {
            Val::Null => return Ok(false),
            Val::List(items) if items.len() > MAX_LIST => return Err(Fault("list too long")),
            Val::List(items) => items.into_iter().map(|item| (None, item)).collect(),
            _ => return Err(Fault("`in` needs a list")),
        },
    };
    let hits = items
        .into_iter()
        .map(|(node, item)| {
            let (a, b) = typed(left, l.clone(), node, item)?;
            equal(&a, &b)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(hits.contains(&true))
}

/// Null-safe equality. Integers and numbers compare as numbers; a string meeting a datetime is
/// read as RFC 3339 (only reachable through a `user` field of mixed type).
pub fn equal(l: &Val, r: &Val) -> Result<bool, Fault> {
    Ok(match (l, r) {
        (Val::Null, other) | (other, Val::Null) => matches!(other, Val::Null),
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::Time(a), Val::Time(b)) => a == b,
        (Val::Time(_) | Val::Str(_), Val::Time(_) | Val::Str(_)) => {
            order(l, r)? == Some(Ordering::Equal)
        }
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            order(l, r)? == Some(Ordering::Equal)
        }
        _ => return Err(Fault("values of different types compared")),
    })
}

/// Ordering, or `None` when a side is null. Strings order by code point (bytes), which is what
/// SQLite does and what `COLLATE "C"` makes PostgreSQL do.
pub fn order(l: &Val, r: &Val) -> Result<Option<Ordering>, Fault> {
    Ok(Some(match (l, r) {
        (Val::Null, _) | (_, Val::Null) => return Ok(None),
        (Val::Int(a), Val::Int(b)) => a.cmp(b),
        // Mixed integer/number comparisons go through f64, as PostgreSQL's bigint-to-double
        // cast does; values beyond 2^53 may differ from SQLite's exact comparison.
        (Val::Int(a), Val::Float(b)) => numbers(*a as f64, *b)?,
        (Val::Float(a), Val::Int(b)) => numbers(*a, *b as f64)?,
        (Val::Float(a), Val::Float(b)) => numbers(*a, *b)?,
        (Val::Str(a), Val::Str(b)) => a.cmp(b),
        (Val::Time(a), Val::Time(b)) => a.cmp(b),
        (Val::Time(a), Val::Str(b)) => a.cmp(&as_time(b)?),
        (Val::Str(a), Val::Time(b)) => as_time(a)?.cmp(b),
        _ => return Err(Fault("values cannot be ordered")),
    }))
}

/// Numbers are finite (JSON and the lexer refuse the rest), so this only fails on a bug.
fn numbers(a: f64, b: f64) -> Result<Ordering, Fault> {
    a.partial_cmp(&b).ok_or(Fault("not a finite number"))
}

fn as_time(text: &str) -> Result<DateTime<Utc>, Fault> {
    parse_time(text).ok_or(Fault("invalid datetime"))
}

/// `~`: whether `pattern` occurs in `text`, ignoring ASCII case only. Non-ASCII letters must
/// match exactly, because SQLite's `lower()` folds ASCII only and PostgreSQL's is made to agree
/// (see `sql.rs`). The pattern is checked before nulls, as SQL generation checks it before any
/// row is seen.
pub fn contains(text: &Val, pattern: &Val) -> Result<bool, Fault> {
    match pattern {
        Val::Str(p) if p.chars().count() > MAX_PATTERN => {
            return Err(Fault("`~` pattern too long"));
        }
        Val::Str(_) | Val::Null => {}
        _ => return Err(Fault("`~` needs strings")),
    }
    match (text, pattern) {
        (Val::Null, _) | (_, Val::Null) => Ok(false),
        (Val::Str(t), Val::Str(p)) => Ok(t.to_ascii_lowercase().contains(&p.to_ascii_lowercase())),
        _ => Err(Fault("`~` needs strings")),
    }
}

/// A field of an object in API form (absent = null; no object = null), read as `ty`.
fn field(object: Option<&Map<String, Json>>, name: &str, ty: &Ty) -> Result<Val, Fault> {
    match object.and_then(|object| object.get(name)) {
        None => Ok(Val::Null),
        Some(json) => from_json(json, ty),
    }
}

/// A JSON value as a value of type `ty`. Bodies reach predicates before validation, so a wrong
/// type here is a fault (deny), never a panic.
pub fn from_json(json: &Json, ty: &Ty) -> Result<Val, Fault> {
    let wrong = Fault("a value does not have its field's type");
    Ok(match (ty, json) {
        (_, Json::Null) => Val::Null,
        (Ty::Str, Json::String(s)) => Val::Str(s.clone()),
        (Ty::Bool, Json::Bool(b)) => Val::Bool(*b),
        (Ty::Int | Ty::Float, Json::Number(n)) => match (ty, n.as_i64()) {
            (Ty::Int, Some(i)) => Val::Int(i),
            _ => Val::Float(n.as_f64().ok_or(wrong)?),
        },
        (Ty::Time, Json::String(s)) => Val::Time(as_time(s)?),
        (Ty::Json, _) => Val::Opaque,
        (Ty::List(item), Json::Array(items)) => Val::List(
            items
                .iter()
                .map(|json| from_json(json, item))
                .collect::<Result<_, _>>()?,
        ),
        (Ty::Any, Json::String(s)) => Val::Str(s.clone()),
        (Ty::Any, Json::Bool(b)) => Val::Bool(*b),
        (Ty::Any, Json::Number(_)) => from_json(json, &Ty::Int)?,
        (Ty::Any, Json::Array(_)) => from_json(json, &Ty::List(Box::new(Ty::Any)))?,
        (Ty::Any, Json::Object(_)) => Val::Opaque,
        _ => return Err(wrong),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Env;
    use super::super::Mode::Predicate;
    use super::super::tests::{Tables, compile, env, guards, object, user};

    #[test]
    fn eval_table() {
        let admin = user("admin", None);
        let member = user("user", None);
        let key = user("user", Some(&["read", "write"]));
        let doc = object(json!({
            "id": "p1", "title": "Hello 100% a_b École", "status": "draft", "views": 3, "score": 2.5,
            "flag": null, "publishedAt": "2025-06-01T00:00:00.000Z", "createdAt": "2026-01-02T03:04:05.678Z",
            "author": "u1", "meta": {"k": 1}, "body": null
        }));
        let good = object(json!({"title": "New", "views": 7, "author": "u1"}));
        let bad = object(json!({"views": "seven", "publishedAt": "yesterday"}));
        let anon_env = env(None, Some(&doc), None);
        let admin_env = env(Some(&admin), Some(&doc), Some(&good));
        let member_env = env(Some(&member), Some(&doc), None);
        let key_env = env(Some(&key), Some(&doc), None);
        let bad_env = env(Some(&admin), Some(&doc), Some(&bad));
        let create_env = env(Some(&member), None, Some(&good));

        let cases = [
            // user null vs set; a field of a null user is null
            ("user == null", &anon_env, true),
            ("user != null", &member_env, true),
            ("user.role == 'admin'", &anon_env, false),
            ("user.role != 'admin'", &anon_env, true),
            ("user.role == null", &anon_env, true),
            ("user.role == 'admin'", &admin_env, true),
            ("user.verified && user.level > 2", &member_env, true),
            // scopes: a list for API keys, null otherwise, and `in` a null list is false
            ("'write' in user.scopes", &key_env, true),
            ("'admin' in user.scopes", &key_env, false),
            ("'write' in user.scopes", &member_env, false),
            ("!('write' in user.scopes)", &member_env, true),
            ("user.scopes == null", &member_env, true),
            ("user.scopes == null", &key_env, false),
            // null as a value in == and !=; ordering and ~ with null are false
            ("null == null", &anon_env, true),
            ("doc.body == null && doc.updatedAt == null", &anon_env, true),
            ("doc.body != 'x'", &anon_env, true),
            ("doc.body == 'x'", &anon_env, false),
            ("doc.body < 'x'", &anon_env, false),
            ("!(doc.body < 'x')", &anon_env, true),
            ("doc.body ~ ''", &anon_env, false),
            ("doc.views < null", &anon_env, false),
            ("doc.flag", &anon_env, false),
            ("!doc.flag", &anon_env, true),
            ("doc.meta != null", &anon_env, true),
            // ~: case-insensitive (ASCII only) substring; % and _ are literal
            ("doc.title ~ 'hello'", &anon_env, true),
            ("doc.title ~ '100%'", &anon_env, true),
            ("doc.title ~ '1%0'", &anon_env, false),
            ("doc.title ~ 'A_B'", &anon_env, true),
            ("doc.title ~ 'a_c'", &anon_env, false),
            ("doc.title ~ 'hello%world'", &anon_env, false),
            ("doc.title ~ 'ÉCOLE'", &anon_env, true),
            ("doc.title ~ 'écOLE'", &anon_env, false),
            ("doc.title ~ ''", &anon_env, true),
            // in with literal lists, null items compare like ==
            ("doc.status in ['draft', 'published']", &anon_env, true),
            ("doc.status in []", &anon_env, false),
            ("doc.body in [null, 'x']", &anon_env, true),
            ("doc.body in ['x']", &anon_env, false),
            ("doc.views in [1, 3.0]", &anon_env, true),
            ("'u1' in [doc.body, doc.author]", &anon_env, true),
            // numbers compare numerically across integer and number
            (
                "doc.views == 3.0 && doc.score > 2 && doc.score < doc.views",
                &anon_env,
                true,
            ),
            // datetimes vs now and literals (any offset)
            ("doc.publishedAt < now", &anon_env, true),
            ("doc.createdAt == now", &anon_env, true),
            (
                "doc.publishedAt == '2025-06-01T02:00:00+02:00'",
                &anon_env,
                true,
            ),
            (
                "doc.publishedAt > '2025-06-01T00:00:00.001Z'",
                &anon_env,
                false,
            ),
            // data: absent keys and absent bodies read as null
            (
                "data.author == user.id && data.views > doc.views",
                &admin_env,
                true,
            ),
            ("data.title == null", &anon_env, true),
            ("doc.title == null && data.views == 7", &create_env, true),
            // a fault (a body value of the wrong type) denies, whatever else holds
            ("data.views > 1", &bad_env, false),
            ("!(data.views > 1)", &bad_env, false),
            ("true || data.views > 1", &bad_env, false),
            ("data.publishedAt == null || true", &bad_env, false),
            // user fields declared with different types are checked when the rule runs
            ("user.level == 3", &member_env, true),
            ("user.level < 'x'", &member_env, false),
            ("!(user.level < 'x')", &member_env, false),
        ];
        for (source, env, expected) in cases {
            let rule = compile(source, Predicate).unwrap_or_else(|e| panic!("{source}: {e:?}"));
            assert_eq!(rule.eval(env), expected, "{source}");
        }
    }

    #[test]
    fn over_long_runtime_pattern_denies() {
        let long = object(json!({"title": "x".repeat(257)}));
        let short = object(json!({"title": "x".repeat(256)}));
        let doc = object(json!({"title": "x".repeat(300)}));
        let rule = compile("doc.title ~ data.title || true", Predicate).unwrap();
        assert!(!rule.eval(&env(None, Some(&doc), Some(&long))));
        assert!(rule.eval(&env(None, Some(&doc), Some(&short))));
    }

    /// Relation paths in memory: ANY readable reached document; no document, nothing reached;
    /// without a lookup (or the guarding rules), a rule that must follow a relation denies.
    #[test]
    fn relation_table() {
        let guards = guards();
        let mut tables = Tables::default();
        tables.0.insert(
            "users".into(),
            vec![
                object(json!({"id": "u1", "name": "Ann", "verified": false, "nickname": "an"})),
                object(json!({"id": "u2", "name": "Bob", "verified": true, "org": "o1"})),
            ],
        );
        tables.0.insert(
            "orgs".into(),
            vec![object(json!({"id": "o1", "name": "hidden"}))],
        );
        tables.0.insert(
            "posts".into(),
            vec![
                object(json!({"id": "p1", "author": "u2", "flag": true, "parent": null, "tags": ["t2", "t1"]})),
                object(json!({"id": "p2", "author": "u1", "flag": false, "parent": "p1", "tags": []})),
                object(json!({"id": "p3", "author": "u1", "flag": true, "parent": "p1", "tags": ["t1"]})),
            ],
        );
        tables.0.insert(
            "tags".into(),
            vec![
                object(json!({"id": "t1", "name": "rust"})),
                object(json!({"id": "t2", "name": "secret"})),
            ],
        );
        let p1 = tables.0["posts"][0].clone();
        let p2 = tables.0["posts"][1].clone();
        let p3 = tables.0["posts"][2].clone();
        let ann = user("user", None);
        let with = |user, doc| Env {
            guards: Some(&guards),
            lookup: Some(&tables),
            ..env(user, doc, None)
        };
        let cases = [
            ("doc.author.name == 'Bob'", with(None, Some(&p1)), true),
            // Ann is not verified: only Ann herself reads her account.
            ("doc.author.name == 'Ann'", with(None, Some(&p2)), false),
            (
                "doc.author.name == 'Ann'",
                with(Some(&ann), Some(&p2)),
                true,
            ),
            ("!(doc.author.name == 'Ann')", with(None, Some(&p2)), true),
            // Her nickname is hers alone even where her account is readable.
            (
                "doc.author.nickname == 'an'",
                with(Some(&ann), Some(&p2)),
                true,
            ),
            (
                "doc.author.org.name == 'hidden'",
                with(None, Some(&p1)),
                false,
            ),
            ("doc.author.org == 'o1'", with(None, Some(&p1)), true),
            // Any child: p2 is not readable anonymously, p3 is.
            (
                "doc.posts_via_parent.id == 'p2'",
                with(None, Some(&p1)),
                false,
            ),
            (
                "doc.posts_via_parent.id == 'p3'",
                with(None, Some(&p1)),
                true,
            ),
            (
                "doc.posts_via_parent.id == 'p2'",
                with(Some(&ann), Some(&p1)),
                true,
            ),
            (
                "doc.parent.author.name == doc.author",
                with(Some(&ann), Some(&p2)),
                false,
            ),
            (
                "doc.parent.author == doc.author",
                with(Some(&ann), Some(&p3)),
                false,
            ),
            (
                "doc.parent.author.id != doc.author",
                with(None, Some(&p3)),
                true,
            ),
            ("doc.author.name == null", with(None, None), false),
            // Lists: an id among them (whether or not its document is readable), any readable
            // document they reach, and back.
            (
                "'t2' in doc.tags && !('t3' in doc.tags)",
                with(None, Some(&p1)),
                true,
            ),
            ("doc.tags.name == 'secret'", with(None, Some(&p1)), false),
            ("doc.tags.name == 'rust'", with(None, Some(&p1)), true),
            (
                "doc.tags.posts_via_tags.id == 'p3'",
                with(None, Some(&p1)),
                true,
            ),
            ("doc.tags.id == 't1'", with(None, Some(&p2)), false),
            ("'t1' in doc.tags", env(None, Some(&p3), None), true),
            (
                "doc.author.name == 'Bob'",
                env(None, Some(&p1), None),
                false,
            ),
            (
                "!(doc.author.name == 'Bob')",
                env(None, Some(&p1), None),
                false,
            ),
        ];
        for (source, env, expected) in cases {
            let rule = compile(source, Predicate).unwrap_or_else(|e| panic!("{source}: {e:?}"));
            assert_eq!(rule.eval(&env), expected, "{source}");
        }
    }
}
