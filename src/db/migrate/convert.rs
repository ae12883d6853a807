//! Stored values carried to another field type when a migration changes it: what converts
//! without loss, and what stops the migration.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value as Json;

use super::snapshot::Kind;
use crate::schema::Value;

/// `value` (as read from the old column) as a value of `kind`; `Err` says why it cannot be.
///
/// Text parses into numbers, booleans (`true`/`false`) and RFC 3339 datetimes; any value becomes
/// text; numbers convert when no digit is lost; everything becomes JSON as it reads.
pub fn convert(value: &Json, kind: Kind) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let fail = || Err(format!("{value} is not a valid {}", kind.name()));
    match kind {
        Kind::String | Kind::Text | Kind::Email | Kind::Select | Kind::Relation => {
            Ok(Value::Text(match value {
                Json::String(s) if kind == Kind::Email => s.to_lowercase(),
                Json::String(s) => s.clone(),
                other => other.to_string(),
            }))
        }
        Kind::Integer => match value {
            Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(Value::Int(i)),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::Int(f as i64)),
                _ => fail(),
            },
            Json::Bool(b) => Ok(Value::Int(i64::from(*b))),
            Json::String(s) => s.trim().parse().map(Value::Int).or_else(|_| fail()),
            _ => fail(),
        },
        Kind::Number => match value {
            Json::Number(n) => n.as_f64().map(Value::Float).map_or_else(fail, Ok),
            Json::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::Float(f)),
                _ => fail(),
            },
            _ => fail(),
        },
        Kind::Boolean => match value {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::Number(n) if n.as_i64() == Some(0) => Ok(Value::Bool(false)),
            Json::Number(n) if n.as_i64() == Some(1) => Ok(Value::Bool(true)),
            Json::String(s) => match s.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => fail(),
            },
            _ => fail(),
        },
        Kind::Datetime => match value {
            Json::String(s) => match DateTime::parse_from_rfc3339(s.trim()) {
                Ok(t) => Ok(Value::Time(t.with_timezone(&Utc).trunc_subsecs(3))),
                Err(_) => fail(),
            },
            _ => fail(),
        },
        Kind::Json => Ok(Value::Json(value.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conversions() {
        let cases: Vec<(Json, Kind, Option<Value>)> = vec![
            (json!("42"), Kind::Integer, Some(Value::Int(42))),
            (json!(" 7 "), Kind::Integer, Some(Value::Int(7))),
            (json!("abc"), Kind::Integer, None),
            (json!(3.0), Kind::Integer, Some(Value::Int(3))),
            (json!(3.5), Kind::Integer, None),
            (json!(true), Kind::Integer, Some(Value::Int(1))),
            (json!(12), Kind::String, Some(Value::Text("12".into()))),
            (json!(1.5), Kind::Text, Some(Value::Text("1.5".into()))),
            (
                json!({"a": 1}),
                Kind::Text,
                Some(Value::Text("{\"a\":1}".into())),
            ),
            (
                json!("A@B.io"),
                Kind::Email,
                Some(Value::Text("a@b.io".into())),
            ),
            (json!("2.5"), Kind::Number, Some(Value::Float(2.5))),
            (json!("NaN"), Kind::Number, None),
            (json!(2), Kind::Number, Some(Value::Float(2.0))),
            (json!("true"), Kind::Boolean, Some(Value::Bool(true))),
            (json!(0), Kind::Boolean, Some(Value::Bool(false))),
            (json!("yes"), Kind::Boolean, None),
            (json!("not a date"), Kind::Datetime, None),
            (json!("x"), Kind::Json, Some(Value::Json(json!("x")))),
            (Json::Null, Kind::Integer, Some(Value::Null)),
        ];
        for (input, kind, expected) in cases {
            assert_eq!(convert(&input, kind).ok(), expected, "{input} → {kind:?}");
        }
        assert!(matches!(
            convert(&json!("2024-05-01T10:00:00Z"), Kind::Datetime),
            Ok(Value::Time(_))
        ));
    }
}
