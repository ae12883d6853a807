//! Field values: JSON input checked against a field's rules, and the typed values stored.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use regex::Regex;
use serde_json::Value as Json;

use super::{Field, FieldKind};

/// What an `email` value must match (after trimming), also stated in the OpenAPI document.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// The longest `email` value (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX_LENGTH: usize = 254;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(EMAIL_PATTERN).expect("valid regex"));

/// A stored value, typed by its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Kept at millisecond precision, which is what the API shows.
    Time(DateTime<Utc>),
    Json(Json),
    /// The ids of a to-many relation, in order: kept in its join table, never in a column.
    List(Vec<String>),
}

impl Value {
    /// The JSON form shown to clients.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Text(s) => Json::String(s.clone()),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Bool(b) => Json::Bool(*b),
            Value::Time(t) => Json::String(format_time(t)),
            Value::Json(j) => j.clone(),
            Value::List(ids) => Json::Array(ids.iter().cloned().map(Json::String).collect()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A document as the API shows it: field name → JSON value.
pub type Doc = serde_json::Map<String, Json>;

/// The `id` of a stored document (empty when it has none).
pub fn doc_id(doc: &Doc) -> &str {
    doc.get("id").and_then(Json::as_str).unwrap_or_default()
}

/// The current time at the precision datetimes are stored with (milliseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// RFC 3339 in UTC with milliseconds, the one format datetimes take in responses.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A datetime parsed from RFC 3339 and cut to milliseconds.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
}

/// Whether a JSON value holds a NUL character (U+0000) in a string or an object key. Text is
/// text: PostgreSQL refuses NUL in `text` and `jsonb`, so it is refused on every engine, before
/// any database sees it.
pub fn has_nul(value: &Json) -> bool {
    match value {
        Json::String(s) => s.contains('\0'),
        Json::Array(items) => items.iter().any(has_nul),
        Json::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Json::Null | Json::Bool(_) | Json::Number(_) => false,
    }
}

/// The error for a value of `field` holding a NUL character.
pub fn nul_error(field: &str) -> FieldError {
    FieldError::new(
        field,
        "invalid_character",
        format!("{field} may not contain NUL characters (U+0000)"),
    )
}

/// One failing field of a body, as reported in an error's `details`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            code,
            message: message.into(),
        }
    }
}

impl Field {
    /// Checks a JSON value against this field's type and rules and converts it. `null` is accepted
    /// for optional fields and refused (`required`) for required ones.
    ///
    /// # Errors
    /// The first rule the value breaks.
    pub fn parse(&self, input: &Json) -> Result<Value, FieldError> {
        let name = self.name.as_str();
        if let Some(max_items) = self.kind.max_items() {
            return self.parse_list(input, max_items);
        }
        if input.is_null() {
            return if self.required {
                Err(FieldError::new(
                    name,
                    "required",
                    format!("{name} is required"),
                ))
            } else {
                Ok(Value::Null)
            };
        }
        if has_nul(input) {
            return Err(nul_error(name));
        }
        let wrong_type = || {
            FieldError::new(
                name,
                "invalid_type",
                format!("{name} must be {}", self.expected()),
            )
        };
        let value = match &self.kind {
            FieldKind::String | FieldKind::Text => {
                Value::Text(input.as_str().ok_or_else(wrong_type)?.to_string())
            }
            FieldKind::Email => {
                let text = input.as_str().ok_or_else(wrong_type)?.trim();
                if text.len() > EMAIL_MAX_LENGTH || !EMAIL.is_match(text) {
                    return Err(FieldError::new(
                        name,
                        "invalid_email",
                        format!("{name} must be a valid email address"),
                    ));
                }
                Value::Text(text.to_lowercase())
            }
            FieldKind::Select(options) => {
                let text = input.as_str().ok_or_else(wrong_type)?;
                if !options.iter().any(|o| o == text) {
                    return Err(FieldError::new(
                        name,
                        "invalid_option",
                        format!("{name} must be one of: {}", options.join(", ")),
                    ));
                }
                Value::Text(text.to_string())
            }
            FieldKind::Relation { .. } => {
                Value::Text(document_id(name, input.as_str().ok_or_else(wrong_type)?)?)
            }
            FieldKind::Integer => Value::Int(input.as_i64().ok_or_else(wrong_type)?),
            FieldKind::Number => Value::Float(
                input
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(wrong_type)?,
            ),
            FieldKind::Boolean => Value::Bool(input.as_bool().ok_or_else(wrong_type)?),
            FieldKind::Datetime => {
                Value::Time(input.as_str().and_then(parse_time).ok_or_else(wrong_type)?)
            }
            FieldKind::Json => Value::Json(input.clone()),
        };
        self.check_rules(&value)?;
        Ok(value)
    }

    /// A to-many relation's value: a JSON array of distinct document ids, at most `max_items`;
    /// `null` is the empty list, which a required field refuses.
    fn parse_list(&self, input: &Json, max_items: usize) -> Result<Value, FieldError> {
        let name = self.name.as_str();
        let items = match input {
            Json::Null => &Vec::new(),
            Json::Array(items) => items,
            _ => {
                return Err(FieldError::new(
                    name,
                    "invalid_type",
                    format!("{name} must be {}", self.expected()),
                ));
            }
        };
        if items.is_empty() && self.required {
            return Err(FieldError::new(
                name,
                "required",
                format!("{name} is required (at least one id)"),
            ));
        }
        if items.len() > max_items {
            return Err(FieldError::new(
                name,
                "too_many",
                format!("{name} takes at most {max_items} ids"),
            ));
        }
        let mut ids: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let Some(text) = item.as_str() else {
                return Err(FieldError::new(
                    name,
                    "invalid_type",
                    format!("{name} must be {}", self.expected()),
                ));
            };
            if has_nul(item) {
                return Err(nul_error(name));
            }
            let id = document_id(name, text)?;
            if ids.contains(&id) {
                return Err(FieldError::new(
                    name,
                    "invalid_relation",
                    format!("{name} lists \"{id}\" more than once"),
                ));
            }
            ids.push(id);
        }
        Ok(Value::List(ids))
    }

    fn expected(&self) -> &'static str {
        match self.kind {
            FieldKind::String | FieldKind::Text | FieldKind::Email | FieldKind::Select(_) => {
                "a string"
            }
            FieldKind::Relation { many: Some(_), .. } => "a list of document ids (strings)",
            FieldKind::Relation { many: None, .. } => "a document id (string)",
            FieldKind::Integer => "an integer",
            FieldKind::Number => "a number",
            FieldKind::Boolean => "a boolean",
            FieldKind::Datetime => "an RFC 3339 datetime string",
            FieldKind::Json => "JSON",
        }
    }

    fn check_rules(&self, value: &Value) -> Result<(), FieldError> {
        let name = self.name.as_str();
        match value {
            Value::Text(text) => {
                let length = text.chars().count();
                if let Some(min) = self.min_length.filter(|&min| length < min) {
                    return Err(FieldError::new(
                        name,
                        "too_short",
                        format!("{name} must be at least {min} characters"),
                    ));
                }
                if let Some(max) = self.max_length.filter(|&max| length > max) {
                    return Err(FieldError::new(
                        name,
                        "too_long",
                        format!("{name} must be at most {max} characters"),
                    ));
                }
                if let Some(pattern) = self.pattern.as_ref().filter(|p| !p.is_match(text)) {
                    return Err(FieldError::new(
                        name,
                        "pattern_mismatch",
                        format!(
                            "{name} must match the pattern {}",
                            pattern
                                .as_str()
                                .trim_start_matches("^(?:")
                                .trim_end_matches(")$")
                        ),
                    ));
                }
            }
            Value::Int(_) | Value::Float(_) => {
                let number = match value {
                    Value::Int(i) => *i as f64,
                    Value::Float(f) => *f,
                    _ => unreachable!("matched above"),
                };
                if let Some(min) = self.min.filter(|&min| number < min) {
                    return Err(FieldError::new(
                        name,
                        "too_small",
                        format!("{name} must be at least {min}"),
                    ));
                }
                if let Some(max) = self.max.filter(|&max| number > max) {
                    return Err(FieldError::new(
                        name,
                        "too_large",
                        format!("{name} must be at most {max}"),
                    ));
                }
            }
            Value::Null | Value::Bool(_) | Value::Time(_) | Value::Json(_) | Value::List(_) => {}
        }
        Ok(())
    }
}

/// A relation value: a non-empty id of at most 64 bytes (the id column's size).
fn document_id(name: &str, text: &str) -> Result<String, FieldError> {
    if text.is_empty() || text.len() > 64 {
        return Err(FieldError::new(
            name,
            "invalid_relation",
            format!("{name} must be a document id"),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(kind: FieldKind) -> Field {
        Field::new("f", kind)
    }

    #[test]
    fn parse_table() {
        let mut bounded = field(FieldKind::String);
        bounded.min_length = Some(2);
        bounded.max_length = Some(3);
        let mut ranged = field(FieldKind::Integer);
        ranged.min = Some(0.0);
        ranged.max = Some(10.0);
        let mut patterned = field(FieldKind::String);
        patterned.pattern = Some(Regex::new("^(?:[a-z]+)$").unwrap());
        let mut required = field(FieldKind::Text);
        required.required = true;
        let select = field(FieldKind::Select(vec!["a".into(), "b".into()]));

        let cases: Vec<(&Field, Json, Result<Value, &str>)> = vec![
            (&bounded, json!("ab"), Ok(Value::Text("ab".into()))),
            (&bounded, json!("a"), Err("too_short")),
            (&bounded, json!("abcd"), Err("too_long")),
            (&bounded, json!("äöü"), Ok(Value::Text("äöü".into()))),
            (&bounded, json!(5), Err("invalid_type")),
            (&bounded, json!(null), Ok(Value::Null)),
            (&required, json!(null), Err("required")),
            (&ranged, json!(10), Ok(Value::Int(10))),
            (&ranged, json!(11), Err("too_large")),
            (&ranged, json!(-1), Err("too_small")),
            (&ranged, json!(1.5), Err("invalid_type")),
            (&ranged, json!("1"), Err("invalid_type")),
            (&patterned, json!("abc"), Ok(Value::Text("abc".into()))),
            (&patterned, json!("abc1"), Err("pattern_mismatch")),
            (&select, json!("b"), Ok(Value::Text("b".into()))),
            (&select, json!("c"), Err("invalid_option")),
        ];
        for (f, input, expected) in cases {
            let got = f.parse(&input).map_err(|e| e.code);
            assert_eq!(got, expected, "{input}");
        }
    }

    /// A NUL character anywhere in a value (a string, a JSON value or key, however deep) is
    /// refused for every kind of field; other control characters are text like any other.
    #[test]
    fn nul_characters_are_refused_in_every_kind() {
        let kinds = [
            FieldKind::String,
            FieldKind::Text,
            FieldKind::Email,
            FieldKind::Select(vec!["a\0".into()]),
            FieldKind::Relation {
                to: "users".into(),
                on_delete: crate::schema::OnDelete::SetNull,
                many: None,
            },
            FieldKind::Datetime,
            FieldKind::Json,
        ];
        for kind in kinds {
            let f = field(kind);
            for bad in [json!("a\u{0}b"), json!("\u{0}")] {
                let error = f.parse(&bad).unwrap_err();
                assert_eq!(error.code, "invalid_character", "{:?} {bad}", f.kind);
            }
        }
        let f = field(FieldKind::Json);
        for bad in [
            json!({"k\u{0}": 1}),
            json!({"a": [1, {"b": "x\u{0}"}]}),
            json!(["\u{0}"]),
        ] {
            assert_eq!(
                f.parse(&bad).unwrap_err().code,
                "invalid_character",
                "{bad}"
            );
        }
        assert!(f.parse(&json!({"a": ["\u{1}", "b\tc"]})).is_ok());
        assert!(field(FieldKind::Text).parse(&json!("\u{1}\u{7f}")).is_ok());
    }

    #[test]
    fn lists_of_ids() {
        let mut tags = field(FieldKind::Relation {
            to: "tags".into(),
            on_delete: crate::schema::OnDelete::SetNull,
            many: Some(2),
        });
        let ok = |ids: &[&str]| Ok(Value::List(ids.iter().map(|s| s.to_string()).collect()));
        let cases: Vec<(Json, Result<Value, &str>)> = vec![
            (json!(["b", "a"]), ok(&["b", "a"])),
            (json!([]), ok(&[])),
            (json!(null), ok(&[])),
            (json!("a"), Err("invalid_type")),
            (json!({"a": 1}), Err("invalid_type")),
            (json!(["a", 1]), Err("invalid_type")),
            (json!(["a", null]), Err("invalid_type")),
            (json!(["a", "a"]), Err("invalid_relation")),
            (json!([""]), Err("invalid_relation")),
            (json!(["x".repeat(65)]), Err("invalid_relation")),
            (json!(["a", "b", "c"]), Err("too_many")),
            (json!(["a\u{0}"]), Err("invalid_character")),
        ];
        for (input, expected) in &cases {
            let got = tags.parse(input).map_err(|e| e.code);
            assert_eq!(&got, expected, "{input}");
        }
        assert_eq!(ok(&["a"]).unwrap().to_json(), json!(["a"]));
        tags.required = true;
        for empty in [json!([]), json!(null)] {
            assert_eq!(tags.parse(&empty).unwrap_err().code, "required");
        }
        assert!(tags.parse(&json!(["a"])).is_ok());
    }

    #[test]
    fn email_is_lowercased_and_checked() {
        let f = field(FieldKind::Email);
        assert_eq!(
            f.parse(&json!("Jane@Example.COM")).unwrap(),
            Value::Text("jane@example.com".into())
        );
        for bad in ["jane", "jane@", "@x.io", "a b@x.io", "jane@localhost"] {
            assert_eq!(
                f.parse(&json!(bad)).unwrap_err().code,
                "invalid_email",
                "{bad}"
            );
        }
    }

    #[test]
    fn datetimes_are_normalized_to_utc_milliseconds() {
        let f = field(FieldKind::Datetime);
        let v = f.parse(&json!("2026-01-02T03:04:05.678912+02:00")).unwrap();
        assert_eq!(v.to_json(), json!("2026-01-02T01:04:05.678Z"));
        assert_eq!(
            f.parse(&json!("yesterday")).unwrap_err().code,
            "invalid_type"
        );
    }

    #[test]
    fn numbers_must_be_finite() {
        let f = field(FieldKind::Number);
        assert_eq!(f.parse(&json!(1.25)).unwrap(), Value::Float(1.25));
        assert_eq!(f.parse(&json!(3)).unwrap(), Value::Float(3.0));
        assert_eq!(f.parse(&json!(true)).unwrap_err().code, "invalid_type");
    }
}
