//! Fixtures shared by the rule tests: a `posts` collection with one field of every kind, two
//! auth collections, `orgs`, relations between them (`posts.author` → users, `posts.parent` →
//! posts, `users.org` → orgs), the rules guarding each collection, related documents kept in
//! memory, and environments to evaluate against.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value as Json, json};

use super::{Env, Guards, Hop, Link, Lookup, Mode, Rule, RuleError, UserContext};
use crate::schema::{
    AuthOptions, Collection, CollectionAccess, Field, FieldKind, FieldRole, OnDelete,
    PredicateSource, Schema,
};

fn collection(slug: &str, fields: Vec<Field>, auth: bool) -> Collection {
    Collection {
        slug: slug.into(),
        label: slug.into(),
        fields,
        auth: auth.then(|| AuthOptions {
            login_field: "email".into(),
            verify_email: false,
            require_verified: false,
            max_login_attempts: 5,
            lock_time: Duration::from_secs(600),
        }),
        access: CollectionAccess::default(),
        file: PathBuf::from("lucent.toml"),
        prefix: format!("collections.{slug}."),
    }
}

fn hidden(mut field: Field) -> Field {
    field.hidden = true;
    field
}

/// A to-many relation (`many = true`).
fn list(name: &str, to: &str) -> Field {
    Field::new(
        name,
        FieldKind::Relation {
            to: to.into(),
            on_delete: OnDelete::SetNull,
            many: Some(100),
        },
    )
}

fn relation(name: &str, to: &str) -> Field {
    Field::new(
        name,
        FieldKind::Relation {
            to: to.into(),
            on_delete: OnDelete::SetNull,
            many: None,
        },
    )
}

/// A field with a `read` rule (its source is [`FIELD_READ`]'s).
fn guarded(mut field: Field) -> Field {
    field.access.read = Some(PredicateSource {
        source: FIELD_READ.into(),
        path: format!("fields.{}.access.read", field.name),
    });
    field
}

/// The `read` rule of `users.nickname`: only the account itself reads it.
pub const FIELD_READ: &str = "doc.id == user.id";

/// The `read` rule of each collection, in schema order (posts, users, admins, orgs, tags).
pub const READ: [&str; 5] = [
    "doc.flag || doc.author == user.id",
    "doc.verified || doc.id == user.id",
    "false",
    "doc.name != 'hidden'",
    "doc.name != 'secret' || user.role == 'admin'",
];

/// `posts` has one field of each kind, a hidden `secret` and a `private` field that
/// [`readable`] refuses; `users` and `admins` are auth collections whose `level` differs in type.
pub fn schema() -> Schema {
    let posts = collection(
        "posts",
        vec![
            Field::new("title", FieldKind::String),
            Field::new("body", FieldKind::Text),
            Field::new(
                "status",
                FieldKind::Select(vec!["draft".into(), "published".into()]),
            ),
            Field::new("views", FieldKind::Integer),
            Field::new("score", FieldKind::Number),
            Field::new("flag", FieldKind::Boolean),
            Field::new("publishedAt", FieldKind::Datetime),
            Field::new("meta", FieldKind::Json),
            relation("author", "users"),
            hidden(Field::new("secret", FieldKind::String)),
            Field::new("private", FieldKind::String),
            relation("parent", "posts"),
            list("tags", "tags"),
        ],
        false,
    );
    let mut password = hidden(Field::new("password", FieldKind::String));
    password.role = FieldRole::Password;
    let users = collection(
        "users",
        vec![
            Field::new("email", FieldKind::Email),
            Field::new("name", FieldKind::String),
            Field::new(
                "role",
                FieldKind::Select(vec!["admin".into(), "user".into()]),
            ),
            Field::new("verified", FieldKind::Boolean),
            Field::new("level", FieldKind::Integer),
            password,
            relation("org", "orgs"),
            guarded(Field::new("nickname", FieldKind::String)),
            Field::new("private", FieldKind::String),
        ],
        true,
    );
    let admins = collection(
        "admins",
        vec![
            Field::new("email", FieldKind::Email),
            Field::new("level", FieldKind::String),
        ],
        true,
    );
    let orgs = collection("orgs", vec![Field::new("name", FieldKind::String)], false);
    let tags = collection("tags", vec![Field::new("name", FieldKind::String)], false);
    Schema::new(vec![posts, users, admins, orgs, tags])
}

/// The rules guarding each collection's documents ([`READ`]) and `users.nickname`
/// ([`FIELD_READ`]).
pub struct TestGuards {
    read: Vec<Rule>,
    nickname: Rule,
    nickname_at: (usize, usize),
}

pub fn guards() -> TestGuards {
    let schema = schema();
    let rule = |slug: &str, source: &str| {
        let collection = schema.get(slug).expect("fixture collection");
        Rule::compile(source, Mode::Predicate, &schema, collection, &readable)
            .unwrap_or_else(|e| panic!("{source}: {e:?}"))
    };
    let slugs = ["posts", "users", "admins", "orgs", "tags"];
    let users = schema.index_of("users").expect("users");
    let nickname = schema.collections[users]
        .fields
        .iter()
        .position(|f| f.name == "nickname")
        .expect("nickname");
    TestGuards {
        read: slugs.iter().zip(READ).map(|(s, r)| rule(s, r)).collect(),
        nickname: rule("users", FIELD_READ),
        nickname_at: (users, nickname),
    }
}

impl Guards for TestGuards {
    fn read(&self, collection: usize) -> Option<&Rule> {
        self.read.get(collection)
    }

    fn field_read(&self, collection: usize, field: usize) -> Option<&Rule> {
        ((collection, field) == self.nickname_at).then_some(&self.nickname)
    }
}

/// Documents by table, in API form, that relation paths reach in memory.
#[derive(Debug, Clone, Default)]
pub struct Tables(pub BTreeMap<String, Vec<Map<String, Json>>>);

impl Lookup for Tables {
    fn follow(&self, hop: &Hop, doc: &Map<String, Json>) -> Vec<Map<String, Json>> {
        let rows = self.0.get(&hop.table).map_or(&[][..], Vec::as_slice);
        let text = |value: Option<&Json>| value.and_then(Json::as_str).map(str::to_string);
        let id = text(doc.get("id"));
        let ids = |value: Option<&Json>| -> Vec<String> {
            value
                .and_then(Json::as_array)
                .map(|items| items.iter().filter_map(|v| text(Some(v))).collect())
                .unwrap_or_default()
        };
        let by_id = |wanted: &str| -> Vec<Map<String, Json>> {
            rows.iter()
                .filter(|row| text(row.get("id")).as_deref() == Some(wanted))
                .cloned()
                .collect()
        };
        match &hop.link {
            Link::Forward { column } => match text(doc.get(column)) {
                Some(target) => by_id(&target),
                None => Vec::new(),
            },
            Link::Back { column } => rows
                .iter()
                .filter(|row| id.is_some() && text(row.get(column)) == id)
                .cloned()
                .collect(),
            // In the list's order.
            Link::ForwardMany { field, .. } => ids(doc.get(field))
                .iter()
                .flat_map(|target| by_id(target))
                .collect(),
            Link::BackMany { field, .. } => rows
                .iter()
                .filter(|row| {
                    id.as_ref()
                        .is_some_and(|id| ids(row.get(field)).contains(id))
                })
                .cloned()
                .collect(),
        }
    }
}

/// What a filter caller may read: everything but `private` fields.
pub fn readable(_: &Collection, field: &Field) -> bool {
    field.name != "private"
}

pub fn compile(source: &str, mode: Mode) -> Result<Rule, Vec<RuleError>> {
    let schema = schema();
    let posts = schema.get("posts").expect("fixture has posts").clone();
    Rule::compile(source, mode, &schema, &posts, &readable)
}

pub fn object(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub fn user(role: &str, scopes: Option<&[&str]>) -> UserContext {
    UserContext {
        id: "u1".into(),
        collection: "users".into(),
        fields: object(
            json!({"email": "ann@example.com", "name": "Ann", "role": role, "verified": true, "level": 3}),
        ),
        scopes: scopes.map(|s| s.iter().map(|s| s.to_string()).collect()),
    }
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(678_901)
}

pub fn env<'a>(
    user: Option<&'a UserContext>,
    doc: Option<&'a Map<String, Json>>,
    data: Option<&'a Map<String, Json>>,
) -> Env<'a> {
    Env {
        user,
        now: now(),
        doc,
        data,
        guards: None,
        lookup: None,
    }
}
