//! Static questions about a compiled rule, for the warnings of `lucent check` and `serve`: which
//! `user` fields it reads (and for which auth collections that read matters), and whether it
//! could hold for a caller of whom only some values are known.

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use super::Rule;
use super::ast::CmpOp;
use super::error::Fault;
use super::eval::{as_condition, compare, equal, from_json, typed};
use super::ir::{Node, UserAttr, Val};

/// A `user.<field>` read in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRead {
    pub field: String,
    /// The auth collections whose accounts can reach the read: those a conjunct such as
    /// `user.collection == 'users'` next to it allows; `None` for every one.
    pub only: Option<BTreeSet<String>>,
}

/// A caller about whom only some things are known, for [`Rule::may_hold`].
#[derive(Debug, Clone, Copy)]
pub enum Suspect<'a> {
    Anonymous,
    /// An account of `collection` whose fields named in `known` have those values (in API
    /// form). Every other field, its id and its scopes, and every `doc` and `data` value, may be
    /// anything.
    Account {
        collection: &'a str,
        known: &'a Map<String, Json>,
    },
}

impl Rule {
    /// Every `user.<field>` the rule reads, with the collections it is restricted to.
    pub fn user_reads(&self) -> Vec<UserRead> {
        let mut reads = Vec::new();
        collect_reads(&self.node, None, &mut reads);
        reads
    }

    /// Whether the rule may hold for `suspect`, for some stored document, body and time: false
    /// only when it is false whatever the unknown values are.
    pub fn may_hold(&self, suspect: &Suspect<'_>) -> bool {
        !matches!(truth(&self.node, suspect), Ok(Some(false)) | Err(_))
    }
}

fn collect_reads(node: &Node, only: Option<&BTreeSet<String>>, reads: &mut Vec<UserRead>) {
    match node {
        Node::And(items) => {
            // A conjunct that pins `user.collection` holds for the whole conjunction: the other
            // conjuncts matter only for accounts of those collections.
            let mut narrowed = only.cloned();
            for allowed in items.iter().filter_map(collection_guard) {
                narrowed = Some(match narrowed {
                    None => allowed,
                    Some(before) => before.intersection(&allowed).cloned().collect(),
                });
            }
            for item in items {
                collect_reads(item, narrowed.as_ref(), reads);
            }
        }
        Node::Or(items) | Node::List(items) => {
            for item in items {
                collect_reads(item, only, reads);
            }
        }
        Node::Not(inner) => collect_reads(inner, only, reads),
        Node::Cmp(_, left, right) => {
            collect_reads(left, only, reads);
            collect_reads(right, only, reads);
        }
        Node::UserAttr(UserAttr::Field(name, _)) => reads.push(UserRead {
            field: name.clone(),
            only: only.cloned(),
        }),
        Node::Exists(exists) => collect_reads(&exists.cond, only, reads),
        Node::Const(_)
        | Node::Now
        | Node::User
        | Node::UserAttr(_)
        | Node::Data(..)
        | Node::Doc(_)
        | Node::Outer(_)
        | Node::Ids(_) => {}
    }
}

/// The collections `user.collection == 'a'` or `user.collection in ['a', 'b']` allows.
fn collection_guard(node: &Node) -> Option<BTreeSet<String>> {
    let is_collection = |node: &Node| matches!(node, Node::UserAttr(UserAttr::Collection));
    let literal = |node: &Node| match node {
        Node::Const(Val::Str(slug)) => Some(slug.clone()),
        _ => None,
    };
    match node {
        Node::Cmp(CmpOp::Eq, left, right) if is_collection(left) => {
            literal(right).map(|slug| BTreeSet::from([slug]))
        }
        Node::Cmp(CmpOp::Eq, left, right) if is_collection(right) => {
            literal(left).map(|slug| BTreeSet::from([slug]))
        }
        Node::Cmp(CmpOp::In, left, right) if is_collection(left) => match right.as_ref() {
            Node::List(items) => items.iter().map(literal).collect(),
            _ => None,
        },
        _ => None,
    }
}

/// A value, or not known.
enum Partial {
    Known(Val),
    Unknown,
}

/// Three-valued truth (`None`: unknown). Like `eval`, a fault in known values denies the whole
/// rule, since every operand is evaluated.
fn truth(node: &Node, suspect: &Suspect<'_>) -> Result<Option<bool>, Fault> {
    match value(node, suspect)? {
        Partial::Known(val) => as_condition(val).map(Some),
        Partial::Unknown => Ok(None),
    }
}

fn value(node: &Node, suspect: &Suspect<'_>) -> Result<Partial, Fault> {
    use Partial::{Known, Unknown};
    Ok(match node {
        Node::Or(items) | Node::And(items) => {
            let truths = items
                .iter()
                .map(|item| truth(item, suspect))
                .collect::<Result<Vec<_>, _>>()?;
            // The value that decides: true for `||`, false for `&&`.
            let decisive = matches!(node, Node::Or(_));
            if truths.contains(&Some(decisive)) {
                Known(Val::Bool(decisive))
            } else if truths.contains(&None) {
                Unknown
            } else {
                Known(Val::Bool(!decisive))
            }
        }
        Node::Not(inner) => match truth(inner, suspect)? {
            Some(b) => Known(Val::Bool(!b)),
            None => Unknown,
        },
        Node::Cmp(CmpOp::In, left, right) => membership(left, right, suspect)?,
        Node::Cmp(op, left, right) => match (value(left, suspect)?, value(right, suspect)?) {
            (Known(l), Known(r)) => {
                let (l, r) = typed(left, l, Some(right), r)?;
                Known(Val::Bool(compare(*op, &l, &r)?))
            }
            _ => Unknown,
        },
        Node::Const(val) => Known(val.clone()),
        // Related documents, like the stored one, may be anything.
        Node::Now
        | Node::List(_)
        | Node::Data(..)
        | Node::Doc(_)
        | Node::Outer(_)
        | Node::Exists(_)
        | Node::Ids(_) => Unknown,
        Node::User => match suspect {
            Suspect::Anonymous => Known(Val::Null),
            Suspect::Account { .. } => Known(Val::Opaque),
        },
        Node::UserAttr(attr) => match (suspect, attr) {
            (Suspect::Anonymous, _) => Known(Val::Null),
            (Suspect::Account { collection, .. }, UserAttr::Collection) => {
                Known(Val::Str(collection.to_string()))
            }
            (Suspect::Account { .. }, UserAttr::Id | UserAttr::Scopes) => Unknown,
            (Suspect::Account { known, .. }, UserAttr::Field(name, ty)) => match known.get(name) {
                Some(json) => Known(from_json(json, ty)?),
                None => Unknown,
            },
        },
    })
}

fn membership(left: &Node, right: &Node, suspect: &Suspect<'_>) -> Result<Partial, Fault> {
    use Partial::{Known, Unknown};
    let Known(l) = value(left, suspect)? else {
        return Ok(Unknown);
    };
    let items: Vec<(Option<&Node>, Val)> = match right {
        Node::List(items) => {
            let mut known = Vec::with_capacity(items.len());
            for item in items {
                match value(item, suspect)? {
                    Known(val) => known.push((Some(item), val)),
                    Unknown => return Ok(Unknown),
                }
            }
            known
        }
        _ => match value(right, suspect)? {
            Known(Val::Null) => return Ok(Known(Val::Bool(false))),
            Known(Val::List(items)) => items.into_iter().map(|item| (None, item)).collect(),
            Known(_) => return Err(Fault("`in` needs a list")),
            Unknown => return Ok(Unknown),
        },
    };
    let mut hit = false;
    for (node, item) in items {
        let (a, b) = typed(left, l.clone(), node, item)?;
        hit |= equal(&a, &b)?;
    }
    Ok(Known(Val::Bool(hit)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Mode::Predicate;
    use super::super::tests::{compile, object};
    use super::*;

    #[test]
    fn user_reads_table() {
        type Reads = Vec<(&'static str, Option<BTreeSet<String>>)>;
        let set = |slugs: &[&str]| Some(slugs.iter().map(|s| s.to_string()).collect());
        let cases: Vec<(&str, Reads)> = vec![
            ("user.role == 'admin'", vec![("role", None)]),
            ("user.id == doc.author && user.scopes == null", vec![]),
            (
                "user.collection == 'users' && user.role == 'admin'",
                vec![("role", set(&["users"]))],
            ),
            (
                "'users' == user.collection && (user.role == 'admin' || user.name == 'x')",
                vec![("role", set(&["users"])), ("name", set(&["users"]))],
            ),
            (
                "user.collection in ['users', 'admins'] && !(user.role == 'x')",
                vec![("role", set(&["admins", "users"]))],
            ),
            // Only a conjunct guards: beside `||` or under `!`, the read is unrestricted.
            (
                "user.collection == 'users' || user.role == 'admin'",
                vec![("role", None)],
            ),
            (
                "!(user.collection == 'users') && user.role == 'admin'",
                vec![("role", None)],
            ),
            (
                "user.collection != 'users' && user.role == 'x'",
                vec![("role", None)],
            ),
            // A guard narrows what an outer one allowed.
            (
                "user.collection in ['users', 'admins'] && (user.collection == 'users' && user.level > 1)",
                vec![("level", set(&["users"]))],
            ),
            ("doc.title in [user.name, 'x']", vec![("name", None)]),
        ];
        for (source, expected) in cases {
            let rule = compile(source, Predicate).unwrap_or_else(|e| panic!("{source}: {e:?}"));
            let got: Vec<(String, Option<BTreeSet<String>>)> = rule
                .user_reads()
                .into_iter()
                .map(|read| (read.field, read.only))
                .collect();
            let expected: Vec<(String, Option<BTreeSet<String>>)> = expected
                .into_iter()
                .map(|(field, only)| (field.to_string(), only))
                .collect();
            assert_eq!(got, expected, "{source}");
        }
    }

    #[test]
    fn may_hold_table() {
        let plain = object(json!({"role": "user", "name": null}));
        let nothing = Map::new();
        let anonymous = Suspect::Anonymous;
        let member = Suspect::Account {
            collection: "users",
            known: &plain,
        };
        let unknown_member = Suspect::Account {
            collection: "users",
            known: &nothing,
        };
        let cases = [
            ("true", &anonymous, true),
            ("false", &anonymous, false),
            ("user != null", &anonymous, false),
            ("user != null", &member, true),
            ("user.role == 'admin'", &anonymous, false),
            ("user.role == 'admin'", &member, false),
            ("user.role == 'admin'", &unknown_member, true),
            ("user.role != 'admin'", &member, true),
            // doc, data, the id and now are unknown: they may make a rule hold
            ("doc.author == user.id", &member, true),
            (
                "data.author == user.id || user.role == 'admin'",
                &member,
                true,
            ),
            ("user != null && doc.views > 3", &anonymous, false),
            ("user.collection == 'users'", &member, true),
            ("user.collection == 'admins'", &member, false),
            (
                "user.collection == 'admins' && doc.views > 3",
                &member,
                false,
            ),
            (
                "user.collection == 'admins' || doc.views > 3",
                &member,
                true,
            ),
            ("!(user.role == 'admin')", &member, true),
            ("!(user.role == 'user')", &member, false),
            ("user.role in ['admin', 'owner']", &member, false),
            ("user.role in ['admin', doc.title]", &member, true),
            ("'write' in user.scopes", &member, true),
            ("'write' in user.scopes", &anonymous, false),
            ("user.name == null && now > doc.createdAt", &member, true),
            // a fault in known values denies whatever the rest is
            ("user.level < 'x' || doc.views > 1", &unknown_member, true),
        ];
        for (source, suspect, expected) in cases {
            let rule = compile(source, Predicate).unwrap_or_else(|e| panic!("{source}: {e:?}"));
            assert_eq!(rule.may_hold(suspect), expected, "{source}");
        }
    }
}
