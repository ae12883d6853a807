//! Fixtures shared by the rule tests: a `posts` collection with one field of every kind, two
//! auth collections, and environments to evaluate against.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value as Json, json};

use super::{Env, Mode, Rule, RuleError, UserContext};
use crate::schema::{
    AuthOptions, Collection, CollectionAccess, Field, FieldKind, FieldRole, OnDelete, Schema,
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
            Field::new(
                "author",
                FieldKind::Relation {
                    to: "users".into(),
                    on_delete: OnDelete::SetNull,
                },
            ),
            hidden(Field::new("secret", FieldKind::String)),
            Field::new("private", FieldKind::String),
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
    Schema::new(vec![posts, users, admins])
}

/// What a filter caller may read: everything but `private`.
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
