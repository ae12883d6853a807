//! The validator: a document as an export holds it (id, timestamps and every stored field),
//! checked against its collection with the API's own field checks (`Field::parse`: types,
//! required, lengths, patterns, options, ranges, list sizes, NUL characters) before anything is
//! written, every problem of the document collected. Access rules do not apply, and what only
//! Lucent writes through the API is taken as stored: a password arrives hashed and stays so.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::auth::password::is_hash;
use crate::schema::{Collection, FieldError, FieldRole, Value, has_nul, nul_error, parse_time};

/// The longest document id: the id column's size.
const MAX_ID: usize = 64;

/// A document that passed every check, with its values by field index (every field with a value,
/// relations and lists included).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Checked {
    pub id: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub values: Vec<(usize, Value)>,
}

/// Checks a stored document of `collection`.
///
/// A field the document leaves out takes its default, or is empty, as in a create; `id`,
/// `createdAt` and `updatedAt` are required. A password must be a password hash (import never
/// hashes: a plain password there is refused, not stored).
///
/// # Errors
/// Every problem found, one per field.
pub(super) fn check_document(
    collection: &Collection,
    doc: &Json,
) -> Result<Checked, Vec<FieldError>> {
    let Some(object) = doc.as_object() else {
        return Err(vec![FieldError::new(
            "",
            "invalid_type",
            "the document must be a JSON object",
        )]);
    };
    let mut errors = Vec::new();
    for key in object.keys() {
        let known = matches!(key.as_str(), "id" | "createdAt" | "updatedAt")
            || collection.field(key).is_some();
        if !known {
            errors.push(FieldError::new(
                key,
                "unknown_field",
                format!("unknown field \"{key}\""),
            ));
        }
    }
    let id = check_id(object.get("id")).map_err(|e| errors.push(e)).ok();
    let created = check_time("createdAt", object.get("createdAt"))
        .map_err(|e| errors.push(e))
        .ok();
    let updated = check_time("updatedAt", object.get("updatedAt"))
        .map_err(|e| errors.push(e))
        .ok();
    let mut values = Vec::new();
    for (index, field) in collection.fields.iter().enumerate() {
        let input = object.get(&field.name);
        let parsed = match (field.role, input) {
            (FieldRole::Password, None | Some(Json::Null)) if !field.required => Ok(Value::Null),
            (FieldRole::Password, Some(Json::String(hash))) if is_hash(hash) => {
                Ok(Value::Text(hash.clone()))
            }
            (FieldRole::Password, _) => Err(FieldError::new(
                &field.name,
                "invalid_password_hash",
                format!(
                    "{} must be a password hash, as exported (import never hashes a password)",
                    field.name
                ),
            )),
            (FieldRole::Data | FieldRole::Verified | FieldRole::Secret, Some(input)) => {
                field.parse(input)
            }
            (FieldRole::Data | FieldRole::Verified | FieldRole::Secret, None) => {
                match &field.default {
                    Some(default) => Ok(default.clone()),
                    None => field.parse(&Json::Null),
                }
            }
        };
        match parsed {
            Ok(value) => values.push((index, value)),
            Err(error) => errors.push(error),
        }
    }
    match (id, created, updated) {
        (Some(id), Some(created), Some(updated)) if errors.is_empty() => Ok(Checked {
            id,
            created,
            updated,
            values,
        }),
        _ => Err(errors),
    }
}

/// A document id: a non-empty string of at most [`MAX_ID`] bytes, as relations take them.
fn check_id(input: Option<&Json>) -> Result<String, FieldError> {
    let Some(input) = input else {
        return Err(FieldError::new("id", "required", "id is required"));
    };
    let Some(id) = input.as_str() else {
        return Err(FieldError::new("id", "invalid_type", "id must be a string"));
    };
    if has_nul(input) {
        return Err(nul_error("id"));
    }
    if id.is_empty() || id.len() > MAX_ID {
        return Err(FieldError::new(
            "id",
            "invalid_id",
            format!("id must be 1 to {MAX_ID} bytes long"),
        ));
    }
    Ok(id.to_string())
}

/// `createdAt` or `updatedAt`: an RFC 3339 datetime, kept to the millisecond.
fn check_time(name: &str, input: Option<&Json>) -> Result<DateTime<Utc>, FieldError> {
    let Some(input) = input else {
        return Err(FieldError::new(
            name,
            "required",
            format!("{name} is required"),
        ));
    };
    input.as_str().and_then(parse_time).ok_or_else(|| {
        FieldError::new(
            name,
            "invalid_type",
            format!("{name} must be an RFC 3339 datetime string"),
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{CollectionAccess, Field, FieldKind, OnDelete};

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zrYJvi0ytXrq9jkpgO1S2A$n6eMQBq+t0WVgrUtOqo5C/nuaVsNrVtXL8z5VLfSfQo";

    fn accounts() -> Collection {
        let mut title = Field::new("title", FieldKind::String);
        title.required = true;
        title.max_length = Some(5);
        let mut views = Field::new("views", FieldKind::Integer);
        views.default = Some(Value::Int(7));
        let mut password = Field::new("password", FieldKind::String);
        password.role = FieldRole::Password;
        password.hidden = true;
        let mut token = Field::new("resetToken", FieldKind::String);
        token.role = FieldRole::Secret;
        token.hidden = true;
        let tags = Field::new(
            "tags",
            FieldKind::Relation {
                to: "tags".into(),
                on_delete: OnDelete::SetNull,
                many: Some(2),
            },
        );
        Collection {
            slug: "users".into(),
            label: "Users".into(),
            fields: vec![title, views, password, token, tags],
            auth: None,
            access: CollectionAccess::default(),
            file: "lucent.toml".into(),
            prefix: String::new(),
        }
    }

    fn doc(extra: Json) -> Json {
        let mut doc = json!({
            "id": "u1",
            "title": "hi",
            "createdAt": "2026-01-02T03:04:05.678Z",
            "updatedAt": "2026-01-02T03:04:05.678Z",
        });
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        doc
    }

    fn codes(input: Json) -> Vec<(String, &'static str)> {
        match check_document(&accounts(), &input) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    #[test]
    fn a_stored_document_keeps_its_id_times_and_hash() {
        let checked = check_document(
            &accounts(),
            &doc(json!({"password": HASH, "resetToken": "t", "tags": ["a", "b"]})),
        )
        .unwrap();
        assert_eq!(checked.id, "u1");
        assert_eq!(
            checked.created.to_rfc3339(),
            "2026-01-02T03:04:05.678+00:00"
        );
        assert_eq!(
            checked.values,
            vec![
                (0, Value::Text("hi".into())),
                (1, Value::Int(7)),
                (2, Value::Text(HASH.into())),
                (3, Value::Text("t".into())),
                (4, Value::List(vec!["a".into(), "b".into()])),
            ]
        );
        // Left out: the default, or empty.
        let bare = check_document(&accounts(), &doc(json!({}))).unwrap();
        assert_eq!(bare.values[2], (2, Value::Null));
        assert_eq!(bare.values[4], (4, Value::List(Vec::new())));
    }

    #[test]
    fn every_problem_of_a_document_is_reported() {
        let cases: Vec<(Json, Vec<(&str, &str)>)> = vec![
            (json!([1]), vec![("", "invalid_type")]),
            (
                json!({"title": "hi"}),
                vec![
                    ("id", "required"),
                    ("createdAt", "required"),
                    ("updatedAt", "required"),
                ],
            ),
            (doc(json!({"id": 5})), vec![("id", "invalid_type")]),
            (doc(json!({"id": ""})), vec![("id", "invalid_id")]),
            (
                doc(json!({"id": "x".repeat(65)})),
                vec![("id", "invalid_id")],
            ),
            (
                doc(json!({"id": "a\u{0}"})),
                vec![("id", "invalid_character")],
            ),
            (
                doc(json!({"createdAt": "yesterday"})),
                vec![("createdAt", "invalid_type")],
            ),
            // The API's own field checks, all of them at once.
            (
                doc(json!({"title": "too long", "views": "7", "tags": ["a", "a"]})),
                vec![
                    ("title", "too_long"),
                    ("views", "invalid_type"),
                    ("tags", "invalid_relation"),
                ],
            ),
            (doc(json!({"title": null})), vec![("title", "required")]),
            (
                doc(json!({"tags": ["a", "b", "c"]})),
                vec![("tags", "too_many")],
            ),
            (doc(json!({"titel": "x"})), vec![("titel", "unknown_field")]),
            // A plain password is refused, not hashed.
            (
                doc(json!({"password": "correct horse battery"})),
                vec![("password", "invalid_password_hash")],
            ),
            (
                doc(json!({"password": 1})),
                vec![("password", "invalid_password_hash")],
            ),
        ];
        for (input, expected) in cases {
            let expected: Vec<(String, &str)> = expected
                .into_iter()
                .map(|(field, code)| (field.to_string(), code))
                .collect();
            assert_eq!(codes(input.clone()), expected, "{input}");
        }
    }
}
