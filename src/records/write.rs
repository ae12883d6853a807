//! Create, update and delete: body checking, relation checks, and database errors turned into
//! answers (unique → 409, restrict → 409).

use chrono::{SubsecRound, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbErr, SqlErr};
use serde_json::Value as Json;

use super::{Doc, Error, Records, Result, present};
use crate::auth::Principal;
use crate::db::to_sql_value;
use crate::schema::{Collection, FieldError, FieldKind, FieldRole, SYSTEM_FIELDS, Value};

/// Whether a body creates a document or changes some fields of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

impl Records {
    /// Creates a document from a JSON body.
    ///
    /// # Errors
    /// `Validation` listing every failing field, `Unique` for a taken value, `NotFound` for an
    /// unknown collection.
    pub async fn create(&self, principal: &Principal, slug: &str, body: &Json) -> Result<Doc> {
        let (collection, _) = self.collection(slug)?;
        let _ = principal;
        let values = self.check_body(collection, body, Mode::Create).await?;
        let now = Utc::now().trunc_subsecs(3);
        let id = uuid::Uuid::now_v7().to_string();
        let backend = self.db.backend();

        let mut insert = Query::insert();
        insert.into_table(Alias::new(&collection.slug));
        let mut columns = vec![Alias::new("id")];
        let mut row: Vec<SimpleExpr> = vec![id.clone().into()];
        for (index, value) in &values {
            let field = &collection.fields[*index];
            columns.push(Alias::new(&field.name));
            row.push(Expr::val(to_sql_value(&field.kind, value, backend)));
        }
        columns.push(Alias::new("createdAt"));
        columns.push(Alias::new("updatedAt"));
        row.push(now.into());
        row.push(now.into());
        insert
            .columns(columns)
            .values(row)
            .map_err(|e| Error::Database(DbErr::Custom(e.to_string())))?;
        self.db
            .writer()
            .execute(&insert)
            .await
            .map_err(|e| write_error(collection, e))?;

        let mut doc = Doc::new();
        doc.insert("id".into(), Json::String(id));
        for (index, value) in values {
            doc.insert(collection.fields[index].name.clone(), value.to_json());
        }
        let stamp = Value::Time(now).to_json();
        doc.insert("createdAt".into(), stamp.clone());
        doc.insert("updatedAt".into(), stamp);
        Ok(present(collection, doc))
    }

    /// Changes the fields present in `body`; `null` clears a non-required field.
    ///
    /// # Errors
    /// As [`Records::create`], and `NotFound` for an unknown id.
    pub async fn update(
        &self,
        principal: &Principal,
        slug: &str,
        id: &str,
        body: &Json,
    ) -> Result<Doc> {
        let (collection, plan) = self.collection(slug)?;
        let _ = principal;
        let mut stored = self
            .load(collection, plan, id, true)
            .await?
            .ok_or(Error::NotFound)?;
        let values = self.check_body(collection, body, Mode::Update).await?;
        let now = Utc::now().trunc_subsecs(3);
        let backend = self.db.backend();

        let mut update = Query::update();
        update.table(Alias::new(&collection.slug));
        for (index, value) in &values {
            let field = &collection.fields[*index];
            update.value(
                Alias::new(&field.name),
                to_sql_value(&field.kind, value, backend),
            );
        }
        update
            .value(Alias::new("updatedAt"), now)
            .and_where(Expr::col(Alias::new("id")).eq(id));
        let result = self
            .db
            .writer()
            .execute(&update)
            .await
            .map_err(|e| write_error(collection, e))?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound); // deleted meanwhile
        }
        for (index, value) in values {
            stored.insert(collection.fields[index].name.clone(), value.to_json());
        }
        stored.insert("updatedAt".into(), Value::Time(now).to_json());
        Ok(present(collection, stored))
    }

    /// Deletes a document and returns it as it was.
    ///
    /// # Errors
    /// `NotFound` for an unknown id, `Conflict` when a `restrict` relation still points at it.
    pub async fn delete(&self, principal: &Principal, slug: &str, id: &str) -> Result<Doc> {
        let (collection, plan) = self.collection(slug)?;
        let _ = principal;
        let stored = self
            .load(collection, plan, id, true)
            .await?
            .ok_or(Error::NotFound)?;
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(&collection.slug))
            .and_where(Expr::col(Alias::new("id")).eq(id));
        let result = self
            .db
            .writer()
            .execute(&delete)
            .await
            .map_err(|e| write_error(collection, e))?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(present(collection, stored))
    }

    /// Checks a body against the collection: every problem is collected, then reported at once.
    /// Returns the values to write, by field index.
    async fn check_body(
        &self,
        collection: &Collection,
        body: &Json,
        mode: Mode,
    ) -> Result<Vec<(usize, Value)>> {
        let Some(object) = body.as_object() else {
            return Err(Error::Validation(vec![FieldError::new(
                "",
                "invalid_type",
                "the body must be a JSON object",
            )]));
        };
        let mut errors = Vec::new();
        for key in object.keys() {
            if SYSTEM_FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    key,
                    "read_only",
                    format!("{key} is set by the server"),
                ));
                continue;
            }
            match collection.field(key).map(|f| f.role) {
                // Secret fields exist only inside Lucent: they read like any unknown name.
                None | Some(FieldRole::Secret) => {
                    errors.push(FieldError::new(
                        key,
                        "unknown_field",
                        format!("unknown field \"{key}\""),
                    ));
                }
                Some(FieldRole::Verified) => {
                    errors.push(FieldError::new(
                        key,
                        "read_only",
                        format!("{key} is set by Lucent"),
                    ));
                }
                Some(FieldRole::Password) => {
                    errors.push(FieldError::new(
                        key,
                        "read_only",
                        "passwords are set through the auth routes",
                    ));
                }
                Some(FieldRole::Data) => {}
            }
        }
        let mut values = Vec::new();
        for (index, field) in collection.fields.iter().enumerate() {
            if field.role != FieldRole::Data && field.role != FieldRole::Verified {
                continue;
            }
            let parsed = match (object.get(&field.name), mode) {
                (Some(input), _) if field.role == FieldRole::Data => field.parse(input),
                (Some(_), _) | (None, Mode::Update) => continue,
                (None, Mode::Create) => match &field.default {
                    Some(default) => Ok(default.clone()),
                    None => field.parse(&Json::Null),
                },
            };
            match parsed {
                Ok(value) => values.push((index, value)),
                Err(error) => errors.push(error),
            }
        }
        for (index, value) in &values {
            let field = &collection.fields[*index];
            if let (FieldKind::Relation { to, .. }, Value::Text(id)) = (&field.kind, value)
                && !self.exists(to, id).await?
            {
                errors.push(FieldError::new(
                    &field.name,
                    "invalid_relation",
                    format!("no {to} document has id \"{id}\""),
                ));
            }
        }
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(Error::Validation(errors))
        }
    }

    async fn exists(&self, slug: &str, id: &str) -> Result<bool> {
        let mut select = Query::select();
        select
            .expr(Expr::val(1))
            .from(Alias::new(slug))
            .and_where(Expr::col(Alias::new("id")).eq(id));
        Ok(self.db.writer().query_one(&select).await?.is_some())
    }
}

/// Turns constraint failures into answers; anything else stays a database error.
fn write_error(collection: &Collection, error: DbErr) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let field = collection
                .fields
                .iter()
                .filter(|f| f.unique)
                .find(|f| {
                    let index = format!("uq_{}_{}", collection.slug, f.name);
                    let column = format!("{}.{}", collection.slug, f.name);
                    message.contains(&index) || message.split([' ', ',']).any(|part| part == column)
                })
                .map(|f| f.name.clone())
                .unwrap_or_default();
            Error::Unique { field }
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => foreign_key_conflict(),
        // SQLite reports a RESTRICT violation with another extended code than the one sea-orm maps.
        _ if error.to_string().contains("FOREIGN KEY constraint failed") => foreign_key_conflict(),
        _ => Error::Database(error),
    }
}

fn foreign_key_conflict() -> Error {
    Error::Conflict(
        "the document is referenced by another document, or a related document no longer exists"
            .into(),
    )
}
