//! JSON Schemas of one collection: the document as answers show it (whole, or as `select` may
//! cut it), the bodies that create and change one, and the list parameters. Request schemas
//! carry every limit the server enforces, so a body a schema allows is one the server takes, and
//! a body it refuses is one the server refuses; none carries `default` (generators such as
//! openapi-typescript turn a property with a default into a required one).

use serde_json::{Map, Value as Json, json};

use crate::config::PasswordPolicy;
use crate::records::{MAX_PAGE, MAX_SORT_KEYS};
use crate::schema::{
    Collection, EMAIL_MAX_LENGTH, EMAIL_PATTERN, Field, FieldKind, FieldRole, Value,
};

/// The ids Lucent gives documents: UUIDv7 in lowercase hex with hyphens.
pub const DOC_ID_PATTERN: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// The ids of sessions and API keys: 32 lowercase hex digits.
pub const HEX_ID_PATTERN: &str = "^[0-9a-f]{32}$";

/// Text never holds U+0000 (PostgreSQL cannot store it; every engine answers 400).
pub const NO_NUL: &str = "^[^\\u0000]*$";

/// Longest `filter` (SPEC §6).
const MAX_FILTER: usize = 16 * 1024;

/// Which body a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Create,
    Update,
    /// A register form (`application/x-www-form-urlencoded`): every value is a string.
    Form,
}

/// A string whose text the server checks: the field's own pattern, else no NUL.
fn text(pattern: Option<&str>) -> Json {
    json!({"type": "string", "pattern": pattern.unwrap_or(NO_NUL)})
}

/// A bound as the field's type writes it: integers stay integers.
fn bound(kind: &FieldKind, value: f64) -> Json {
    if *kind == FieldKind::Integer && value.fract() == 0.0 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// A value as a description shows it.
fn shown(value: &Value) -> String {
    value.to_json().to_string()
}

/// What an input value must be, with every limit the server checks.
fn input_field(field: &Field, body: Body) -> Json {
    let mut schema = match &field.kind {
        FieldKind::String | FieldKind::Text => {
            text(field.pattern.as_ref().map(regex::Regex::as_str))
        }
        FieldKind::Email => email(),
        FieldKind::Integer => json!({
            "type": "integer", "format": "int64",
            "minimum": field.min.map_or(json!(i64::MIN), |m| bound(&field.kind, m)),
            "maximum": field.max.map_or(json!(i64::MAX), |m| bound(&field.kind, m)),
        }),
        FieldKind::Number => json!({"type": "number", "format": "double"}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::Select(options) => json!({"type": "string", "enum": options}),
        FieldKind::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldKind::Json => json!({}),
        FieldKind::Relation { to, many: None, .. } => json!({
            "type": "string", "format": "uuid", "pattern": DOC_ID_PATTERN,
            "description": format!("the id of a {to} document"),
        }),
        FieldKind::Relation {
            to,
            many: Some(max_items),
            ..
        } => json!({
            "type": "array",
            "items": {"type": "string", "format": "uuid", "pattern": DOC_ID_PATTERN},
            "uniqueItems": true,
            "minItems": usize::from(field.required),
            "maxItems": max_items,
            "description": format!(
                "ids of {to} documents, in order, each at most once (null: none)"
            ),
        }),
    };
    let object = schema.as_object_mut().expect("built as an object");
    if field.kind == FieldKind::Number {
        if let Some(min) = field.min {
            object.insert("minimum".into(), json!(min));
        }
        if let Some(max) = field.max {
            object.insert("maximum".into(), json!(max));
        }
    }
    if let Some(n) = field.min_length {
        object.insert("minLength".into(), json!(n));
    }
    if let Some(n) = field.max_length {
        object.insert("maxLength".into(), json!(n));
    }
    describe(field, object);
    if let Some(default) = field.default.as_ref().filter(|_| body != Body::Update) {
        let text = object
            .get("description")
            .and_then(Json::as_str)
            .map_or_else(String::new, |d| format!("{d}. "));
        object.insert(
            "description".into(),
            json!(format!("{text}Default when omitted: {}", shown(default))),
        );
    }
    if field.hidden {
        object.insert("writeOnly".into(), json!(true));
    }
    nullable(field, schema)
}

/// What an output value is: its type, without the input limits (stored values may predate a
/// tightened limit).
fn output_field(field: &Field) -> Json {
    let mut schema = match &field.kind {
        FieldKind::String | FieldKind::Text => json!({"type": "string"}),
        FieldKind::Email => json!({"type": "string", "description": EMAIL_DESCRIPTION}),
        FieldKind::Integer => json!({"type": "integer", "format": "int64"}),
        FieldKind::Number => json!({"type": "number", "format": "double"}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::Select(options) => json!({"type": "string", "enum": options}),
        FieldKind::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldKind::Json => json!({}),
        FieldKind::Relation { to, many: None, .. } => json!({
            "type": "string", "format": "uuid", "description": format!("the id of a {to} document"),
        }),
        // Never null: an empty list is `[]`. No `maxItems`: lists may predate a lower limit.
        FieldKind::Relation {
            to, many: Some(_), ..
        } => json!({
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "description": format!("ids of {to} documents, in order"),
        }),
    };
    describe(field, schema.as_object_mut().expect("built as an object"));
    if field.is_list() {
        return schema;
    }
    nullable(field, schema)
}

fn describe(field: &Field, object: &mut Map<String, Json>) {
    if let Some(label) = &field.label {
        object.insert("title".into(), json!(label));
    }
    if let Some(description) = &field.description {
        object.insert("description".into(), json!(description));
    }
}

/// An optional field may hold `null`. A `json` field takes any value already; a required one
/// takes any value but `null`.
fn nullable(field: &Field, mut schema: Json) -> Json {
    match (&field.kind, field.required) {
        (FieldKind::Json, false) => {}
        (FieldKind::Json, true) => {
            schema["anyOf"] = json!(
                ["object", "array", "string", "number", "boolean"].map(|t| json!({"type": t}))
            );
        }
        (kind, false) => {
            schema["nullable"] = json!(true);
            if let FieldKind::Select(options) = kind {
                let mut values: Vec<Json> = options.iter().map(|o| json!(o)).collect();
                values.push(Json::Null);
                schema["enum"] = json!(values);
            }
        }
        (_, true) => {}
    }
    schema
}

fn system_fields(properties: &mut Map<String, Json>) {
    for name in ["createdAt", "updatedAt"] {
        properties.insert(
            name.into(),
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        );
    }
}

/// A document as answers show it. Whole (`selected = false`): every field the caller may read is
/// present (`null` when empty), so all are required but those a field `read` rule can withhold.
/// Cut by `select` (`selected = true`): only `id` is sure to be there.
pub fn document(collection: &Collection, selected: bool) -> Json {
    let mut properties = Map::new();
    properties.insert(
        "id".into(),
        json!({"type": "string", "format": "uuid", "readOnly": true}),
    );
    let mut required = vec![json!("id")];
    for field in collection.fields.iter().filter(|f| !f.hidden) {
        properties.insert(field.name.clone(), output_field(field));
        if !selected && field.access.read.is_none() {
            required.push(json!(field.name));
        }
    }
    system_fields(&mut properties);
    properties.insert(
        "expand".into(),
        super::schema_ref(&format!("{}Expand", collection.slug)),
    );
    if !selected {
        required.extend([json!("createdAt"), json!("updatedAt")]);
    }
    let title = if selected {
        format!("{} (as `select` leaves it)", collection.label)
    } else {
        collection.label.clone()
    };
    json!({"type": "object", "title": title, "properties": properties, "required": required})
}

/// A password as `[auth.password]` wants it.
pub fn password(policy: &PasswordPolicy) -> Json {
    let mut rules = Vec::new();
    for (on, what) in [
        (policy.require_uppercase, "an uppercase letter"),
        (policy.require_lowercase, "a lowercase letter"),
        (policy.require_numbers, "a number"),
        (policy.require_symbols, "a symbol"),
    ] {
        if on {
            rules.push(format!("must contain {what}"));
        }
    }
    if policy.reject_common {
        rules.push("must not be one of the most common passwords".into());
    }
    let mut schema = json!({
        "type": "string", "format": "password", "writeOnly": true, "pattern": NO_NUL,
        "minLength": policy.min_length, "maxLength": policy.max_length,
    });
    if !rules.is_empty() {
        schema["description"] = json!(format!("{} (400 otherwise)", rules.join("; ")));
    }
    schema
}

/// No `format: email`: validators disagree on what it allows (schemathesis refuses `.@a.io`,
/// which Lucent takes), while `pattern` says exactly what the server checks.
const EMAIL_DESCRIPTION: &str = "an email address (stored lower-cased)";

/// An email address as the server accepts it.
pub fn email() -> Json {
    json!({"type": "string", "maxLength": EMAIL_MAX_LENGTH, "pattern": EMAIL_PATTERN,
           "description": EMAIL_DESCRIPTION})
}

/// Whether a body may set `field`: ordinary fields (hidden ones too: they are write-only), and
/// `verified` where a field rule for that operation governs it.
fn writable(field: &Field, body: Body) -> bool {
    match field.role {
        FieldRole::Data => true,
        FieldRole::Verified => match body {
            Body::Create | Body::Form => field.access.create.is_some(),
            Body::Update => field.access.update.is_some(),
        },
        FieldRole::Password | FieldRole::Secret => false,
    }
}

/// Whether a form can carry a value of this field (a form value is always a string).
fn takes_text(kind: &FieldKind) -> bool {
    match kind {
        FieldKind::String
        | FieldKind::Text
        | FieldKind::Email
        | FieldKind::Select(_)
        | FieldKind::Datetime
        | FieldKind::Json
        | FieldKind::Relation { many: None, .. } => true,
        FieldKind::Integer
        | FieldKind::Number
        | FieldKind::Boolean
        | FieldKind::Relation { many: Some(_), .. } => false,
    }
}

/// A body that creates a document or changes some of its fields. Unknown fields are refused
/// (`additionalProperties: false`); required fields without a default are required on create.
pub fn input(collection: &Collection, policy: &PasswordPolicy, body: Body) -> Json {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in collection.fields.iter().filter(|f| writable(f, body)) {
        if body == Body::Form && !takes_text(&field.kind) {
            continue;
        }
        let mut schema = input_field(field, body);
        if body == Body::Form {
            // A form cannot send `null`.
            if let Some(object) = schema.as_object_mut() {
                object.remove("nullable");
                if let Some(Json::Array(values)) = object.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
            }
        }
        properties.insert(field.name.clone(), schema);
        if field.required && field.default.is_none() && body != Body::Update {
            required.push(json!(field.name));
        }
    }
    if collection.auth.is_some() {
        properties.insert("password".into(), password(policy));
        match body {
            Body::Update => {
                properties.insert(
                    "oldPassword".into(),
                    json!({"type": "string", "format": "password", "writeOnly": true, "pattern": NO_NUL,
                           "description": "the current password: needed to change one's own password or login field"}),
                );
            }
            Body::Create | Body::Form => required.push(json!("password")),
        }
    }
    if body == Body::Form {
        properties.insert(
            "redirect".into(),
            redirect("on success, answer 303 to this path of this site instead of the JSON answer"),
        );
        properties.insert("error_redirect".into(), redirect(
            "with `redirect`: on failure, answer 303 to this path with `?error=CODE` (default: the Referer's path)",
        ));
    }
    let mut schema =
        json!({"type": "object", "properties": properties, "additionalProperties": false});
    // OpenAPI 3.0 wants a `required` list to be non-empty when present.
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A form's `redirect`/`error_redirect`: a relative path on this site, never `//host` or `/\host`,
/// no backslash or control character.
pub fn redirect(description: &str) -> Json {
    json!({
        "type": "string", "maxLength": super::super::body::MAX_REDIRECT,
        "pattern": r"^/(?:[^/\\\u0000-\u001f\u007f-\u009f][^\\\u0000-\u001f\u007f-\u009f]*)?$",
        "description": description,
    })
}

/// `a|b|c` of the field names a caller may name in `sort` and `select`, escaped for a pattern
/// (field names are `[A-Za-z][A-Za-z0-9_]*`, so nothing needs escaping).
fn nameable(collection: &Collection) -> String {
    let mut names = vec!["id"];
    names.extend(
        collection
            .fields
            .iter()
            .filter(|f| !f.hidden)
            .map(|f| f.name.as_str()),
    );
    names.extend(["createdAt", "updatedAt"]);
    names.join("|")
}

/// The parameters of a list.
pub fn list_parameters(collection: &Collection, max_limit: u32) -> Vec<Json> {
    let names = nameable(collection);
    let query = |name: &str, description: &str, schema: Json| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    vec![
        query(
            "filter",
            "An expression (docs/access.md), ANDed with the read rule; empty means none. At most 32 levels of nesting, 1,000 items in an `in` list, 8 `~` clauses with at most 1,024 operand characters in all (256 in one); a field you may not read is refused like an unknown one.",
            json!({"type": "string", "format": "lucent-filter", "maxLength": MAX_FILTER}),
        ),
        query(
            "sort",
            &format!(
                "Comma list of at most {MAX_SORT_KEYS} fields, each with an optional `-` (descending) or `+` prefix. Default `-createdAt`; ties are broken by `createdAt`, then `id`."
            ),
            json!({"type": "string", "pattern": format!("^[-+]?(?:{names})(?:,[-+]?(?:{names})){{0,{}}}$", MAX_SORT_KEYS - 1)}),
        ),
        query(
            "limit",
            "Page size. Default 20 (or `max_limit` when lower).",
            json!({"type": "integer", "minimum": 1, "maximum": max_limit}),
        ),
        query(
            "page",
            "1-based page number; a page past the end has no `docs`. Default 1.",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
        query(
            "select",
            "Comma list of the fields to return; `id` is always returned. Default: every field you may read.",
            json!({"type": "string", "pattern": format!("^(?:{names})(?:,(?:{names}))*$")}),
        ),
    ]
}

/// One page of a list; its documents are cut by `select`.
pub fn page(slug: &str) -> Json {
    json!({
        "type": "object",
        "required": ["docs", "totalDocs", "limit", "page", "totalPages", "hasNextPage", "hasPrevPage"],
        "properties": {
            "docs": {"type": "array", "items": super::schema_ref(&format!("{slug}Selected"))},
            "totalDocs": {"type": "integer"}, "limit": {"type": "integer"}, "page": {"type": "integer"},
            "totalPages": {"type": "integer"}, "hasNextPage": {"type": "boolean"}, "hasPrevPage": {"type": "boolean"},
        },
    })
}
