//! Values into bound parameters and rows back into JSON, each column decoded by its declared type
//! (identical results on every engine; generic row-to-JSON conversion is not).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Value as SqlValue;
use sea_orm::{DbBackend, DbErr, QueryResult};
use serde_json::{Map, Value as Json};

use crate::schema::{Collection, FieldKind, Value, format_time};

/// One selected column of a collection's table; `Field(i)` is `collection.fields[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    CreatedAt,
    UpdatedAt,
    Field(usize),
}

impl Column {
    pub fn name<'a>(&self, collection: &'a Collection) -> &'a str {
        match self {
            Column::Id => "id",
            Column::CreatedAt => "createdAt",
            Column::UpdatedAt => "updatedAt",
            Column::Field(i) => &collection.fields[*i].name,
        }
    }
}

/// A value as a bound parameter for a column of `kind`.
pub fn to_sql_value(kind: &FieldKind, value: &Value, backend: DbBackend) -> SqlValue {
    match value {
        Value::Null => match kind {
            FieldKind::Integer => SqlValue::BigInt(None),
            FieldKind::Number => SqlValue::Double(None),
            FieldKind::Boolean => SqlValue::Bool(None),
            FieldKind::Datetime => SqlValue::ChronoDateTimeUtc(None),
            FieldKind::Json => match backend {
                DbBackend::Sqlite => SqlValue::String(None),
                _ => SqlValue::Json(None),
            },
            FieldKind::String
            | FieldKind::Text
            | FieldKind::Email
            | FieldKind::Select(_)
            | FieldKind::Relation { .. } => SqlValue::String(None),
        },
        Value::Text(s) => SqlValue::String(Some(s.clone())),
        Value::Int(i) => SqlValue::BigInt(Some(*i)),
        Value::Float(f) => SqlValue::Double(Some(*f)),
        Value::Bool(b) => SqlValue::Bool(Some(*b)),
        Value::Time(t) => SqlValue::ChronoDateTimeUtc(Some(*t)),
        Value::Json(j) => match backend {
            DbBackend::Sqlite => SqlValue::String(Some(j.to_string())),
            _ => SqlValue::Json(Some(Box::new(j.clone()))),
        },
        // A list has no column (its ids are join rows, written by records); should one ever be
        // bound, it is its JSON text.
        Value::List(_) => SqlValue::String(Some(value.to_json().to_string())),
    }
}

fn time(row: &QueryResult, index: usize) -> Result<Json, DbErr> {
    Ok(row
        .try_get_by_index::<Option<DateTime<Utc>>>(index)?
        .map_or(Json::Null, |t| Json::String(format_time(&t))))
}

/// Decodes the selected columns of `row` into a JSON object, in `columns` order. `columns` name
/// columns only (no to-many relation: its ids are loaded from its join table).
///
/// # Errors
/// When a column does not hold what its type promises (a database changed behind Lucent's back).
pub fn decode_row(
    row: &QueryResult,
    collection: &Collection,
    columns: &[Column],
    backend: DbBackend,
) -> Result<Map<String, Json>, DbErr> {
    let mut doc = Map::with_capacity(columns.len());
    for (index, column) in columns.iter().enumerate() {
        let value = match column {
            Column::Id => Json::String(row.try_get_by_index::<String>(index)?),
            Column::CreatedAt | Column::UpdatedAt => time(row, index)?,
            Column::Field(i) => match &collection.fields[*i].kind {
                FieldKind::String
                | FieldKind::Text
                | FieldKind::Email
                | FieldKind::Select(_)
                | FieldKind::Relation { .. } => row
                    .try_get_by_index::<Option<String>>(index)?
                    .map_or(Json::Null, Json::String),
                FieldKind::Integer => row
                    .try_get_by_index::<Option<i64>>(index)?
                    .map_or(Json::Null, Json::from),
                FieldKind::Number => row
                    .try_get_by_index::<Option<f64>>(index)?
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Json::Null, Json::Number),
                FieldKind::Boolean => row
                    .try_get_by_index::<Option<bool>>(index)?
                    .map_or(Json::Null, Json::Bool),
                FieldKind::Datetime => time(row, index)?,
                FieldKind::Json => match backend {
                    DbBackend::Sqlite => match row.try_get_by_index::<Option<String>>(index)? {
                        None => Json::Null,
                        Some(text) => {
                            serde_json::from_str(&text).map_err(|e| DbErr::Type(e.to_string()))?
                        }
                    },
                    _ => row
                        .try_get_by_index::<Option<Json>>(index)?
                        .unwrap_or(Json::Null),
                },
            },
        };
        doc.insert(column.name(collection).to_string(), value);
    }
    Ok(doc)
}
