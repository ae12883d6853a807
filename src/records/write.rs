//! Create, update and delete: the rules, the checked body (`body`), the statement, and database
//! errors turned into answers (unique → 409, restrict → 409).

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{DbErr, SqlErr};
use serde_json::Value as Json;

use super::batch::Prepared;
use super::body::{Mode, object};
use super::lists::list_statements;
use super::{Doc, Error, Records, Result};
use crate::access::Caller;
use crate::auth::Principal;
use crate::db::{Writes, to_sql_value};
use crate::events::Change;
use crate::schema::{Collection, Field, Value, now};

impl Records {
    /// Creates a document from a JSON body.
    ///
    /// # Errors
    /// `Validation` listing every failing field, `Unique` for a taken value, `NotFound` for an
    /// unknown collection.
    pub async fn create(&self, principal: &Principal, slug: &str, body: &Json) -> Result<Doc> {
        let stored = self.create_stored(principal, slug, body).await?;
        self.render(principal, slug, stored)
    }

    /// [`Records::create`], answering the document as stored, hidden fields included: the caller
    /// renders it ([`Records::render`]) for whoever the answer goes to (register shows a new
    /// account as the account itself sees it).
    ///
    /// # Errors
    /// As [`Records::create`].
    pub(crate) async fn create_stored(
        &self,
        principal: &Principal,
        slug: &str,
        body: &Json,
    ) -> Result<Doc> {
        self.create_in(Writes::Shared(&self.db), principal, slug, body, None)
            .await
    }

    /// [`Records::create_stored`] through `writes`: the shared write path, or a transaction
    /// that holds several operations (a batch, with its password work `prepared` beforehand).
    ///
    /// # Errors
    /// As [`Records::create`].
    pub(crate) async fn create_in(
        &self,
        writes: Writes<'_>,
        principal: &Principal,
        slug: &str,
        body: &Json,
        prepared: Option<&Prepared>,
    ) -> Result<Doc> {
        let (collection, _, policy) = self.collection(slug)?;
        let caller = Caller::new(principal, &self.policies);
        caller.require_scope("write")?;
        let data = Some(object(body)?);
        if !caller.allows(&policy.create, None, data) {
            return Err(denied(&caller, "you may not create documents here"));
        }
        self.check_field_rules(collection, policy, &caller, None, data, Mode::Create)?;
        let values = self
            .check_body(writes, principal, collection, body, None, prepared)
            .await?;
        let now = now();
        let id = uuid::Uuid::now_v7().to_string();
        let backend = writes.backend();

        let mut insert = Query::insert();
        insert.into_table(Alias::new(&collection.slug));
        let mut columns = vec![Alias::new("id")];
        let mut row: Vec<SimpleExpr> = vec![id.clone().into()];
        for (index, value) in &values {
            let field = &collection.fields[*index];
            if field.has_column() {
                columns.push(Alias::new(&field.name));
                row.push(Expr::val(to_sql_value(&field.kind, value, backend)));
            }
        }
        columns.push(Alias::new("createdAt"));
        columns.push(Alias::new("updatedAt"));
        row.push(now.into());
        row.push(now.into());
        insert
            .columns(columns)
            .values(row)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut doc = Doc::new();
        doc.insert("id".into(), Json::String(id.clone()));
        for (index, value) in &values {
            doc.insert(collection.fields[*index].name.clone(), value.to_json());
        }
        let stamp = Value::Time(now).to_json();
        doc.insert("createdAt".into(), stamp.clone());
        doc.insert("updatedAt".into(), stamp);
        let change = Change::created(&collection.slug, doc.clone());
        let mut statements = vec![writes.build(&insert)];
        statements.extend(list_statements(writes, collection, &id, &values, false)?);
        statements.extend(self.events.statements(&change, backend));
        if let Err(error) = writes.execute(statements).await {
            return Err(self.explain(writes, collection, &values, error).await);
        }
        self.announce(writes, vec![change]);
        Ok(doc)
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
        self.update_in(Writes::Shared(&self.db), principal, slug, id, body, None)
            .await
    }

    /// [`Records::update`] through `writes`, with password work `prepared` beforehand.
    ///
    /// # Errors
    /// As [`Records::update`].
    pub(crate) async fn update_in(
        &self,
        writes: Writes<'_>,
        principal: &Principal,
        slug: &str,
        id: &str,
        body: &Json,
        prepared: Option<&Prepared>,
    ) -> Result<Doc> {
        let (collection, plan, policy) = self.collection(slug)?;
        let caller = Caller::new(principal, &self.policies);
        caller.require_scope("write")?;
        let data = Some(object(body)?);
        let mut stored = self
            .load_readable(collection, plan, policy, &caller, id, Some(writes))
            .await?;
        if !self
            .permits(writes, collection, &caller, &policy.update, &stored, data)
            .await?
        {
            return Err(denied(&caller, "you may not update this document"));
        }
        self.check_field_rules(
            collection,
            policy,
            &caller,
            Some(&stored),
            data,
            Mode::Update,
        )?;
        let mut values = self
            .check_body(writes, principal, collection, body, Some(&stored), prepared)
            .await?;
        let credentials_changed = self.account_changes(collection, &stored, &mut values);
        let now = now();
        let backend = writes.backend();

        let mut update = Query::update();
        update.table(Alias::new(&collection.slug));
        for (index, value) in values
            .iter()
            .filter(|(i, _)| collection.fields[*i].has_column())
        {
            let field = &collection.fields[*index];
            update.value(
                Alias::new(&field.name),
                to_sql_value(&field.kind, value, backend),
            );
        }
        update
            .value(Alias::new("updatedAt"), now)
            .and_where(Expr::col(Alias::new("id")).eq(id));
        let previous = stored.clone();
        for (index, value) in &values {
            stored.insert(collection.fields[*index].name.clone(), value.to_json());
        }
        stored.insert("updatedAt".into(), Value::Time(now).to_json());
        let change = Change::updated(&collection.slug, stored.clone(), previous);
        let mut statements = vec![writes.build(&update)];
        statements.extend(list_statements(writes, collection, id, &values, true)?);
        if credentials_changed {
            let keep = principal
                .user()
                .filter(|u| u.collection == collection.slug && u.id == id)
                .and_then(|u| u.session_id.as_deref());
            statements.extend(self.credentials_changed(collection, id, keep));
        }
        statements.extend(self.events.statements(&change, backend));
        match writes.execute_if_found(statements).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(Error::NotFound), // deleted meanwhile: nothing was written
            Err(error) => {
                let explained = self.explain(writes, collection, &values, error).await;
                // Deleted meanwhile, a document's new list fails its foreign key: still a 404.
                if matches!(explained, Error::Conflict(_))
                    && !self
                        .missing(writes, &collection.slug, &[id.to_string()])
                        .await?
                        .is_empty()
                {
                    return Err(Error::NotFound);
                }
                return Err(explained);
            }
        }
        self.announce(writes, vec![change]);
        Ok(self.shown(collection, policy, &caller, stored))
    }

    /// Deletes a document and returns it as it was.
    ///
    /// # Errors
    /// `NotFound` for an unknown id, `Conflict` when a `restrict` relation still points at it.
    pub async fn delete(&self, principal: &Principal, slug: &str, id: &str) -> Result<Doc> {
        self.delete_in(Writes::Shared(&self.db), principal, slug, id)
            .await
    }

    /// [`Records::delete`] through `writes`.
    ///
    /// # Errors
    /// As [`Records::delete`].
    pub(crate) async fn delete_in(
        &self,
        writes: Writes<'_>,
        principal: &Principal,
        slug: &str,
        id: &str,
    ) -> Result<Doc> {
        let (collection, plan, policy) = self.collection(slug)?;
        let caller = Caller::new(principal, &self.policies);
        caller.require_scope("write")?;
        let stored = self
            .load_readable(collection, plan, policy, &caller, id, Some(writes))
            .await?;
        if !self
            .permits(writes, collection, &caller, &policy.delete, &stored, None)
            .await?
        {
            return Err(denied(&caller, "you may not delete this document"));
        }
        let mut changes = vec![Change::deleted(&collection.slug, stored.clone())];
        changes.extend(self.cascaded(writes, collection, id).await?);
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(&collection.slug))
            .and_where(Expr::col(Alias::new("id")).eq(id));
        let mut statements = vec![writes.build(&delete)];
        statements.extend(self.account_deleted(collection, id));
        for change in &changes {
            statements.extend(self.events.statements(change, writes.backend()));
        }
        let found = writes
            .execute_if_found(statements)
            .await
            .map_err(|e| write_error(collection, e))?;
        if found.is_none() {
            return Err(Error::NotFound);
        }
        self.announce(writes, changes);
        Ok(self.shown(collection, policy, &caller, stored))
    }

    /// A failed write explained: a foreign-key failure on a relation value is a validation error
    /// naming the field; the rest as [`write_error`] says.
    async fn explain(
        &self,
        writes: Writes<'_>,
        collection: &Collection,
        values: &[(usize, Value)],
        error: DbErr,
    ) -> Error {
        let explained = write_error(collection, error);
        if matches!(explained, Error::Conflict(_))
            && let Ok(missing) = self.missing_targets(writes, collection, values).await
            && !missing.is_empty()
        {
            return Error::Validation(missing);
        }
        explained
    }
}

/// Turns constraint failures into answers; anything else stays a database error.
fn write_error(collection: &Collection, error: DbErr) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => Error::Unique {
            field: unique_field(collection, &message)
                .map(|f| f.name.clone())
                .unwrap_or_default(),
        },
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => foreign_key_conflict(),
        // SQLite reports a RESTRICT violation with another extended code than the one sea-orm maps.
        _ if error.to_string().contains("FOREIGN KEY constraint failed") => foreign_key_conflict(),
        _ => Error::Database(error),
    }
}

/// The unique field a unique violation's message names: by its index (`uq_<collection>_<field>`)
/// or, on SQLite, its column (`posts.slug`); `None` for the primary key.
pub(super) fn unique_field<'a>(collection: &'a Collection, message: &str) -> Option<&'a Field> {
    collection.fields.iter().filter(|f| f.unique).find(|f| {
        let index = format!("uq_{}_{}", collection.slug, f.name);
        let column = format!("{}.{}", collection.slug, f.name);
        message.contains(&index) || message.split([' ', ',']).any(|part| part == column)
    })
}

fn foreign_key_conflict() -> Error {
    Error::Conflict(
        "the document is referenced by another document, or a related document no longer exists"
            .into(),
    )
}

/// A denied operation: 401 for anonymous callers (signing in may help), 403 otherwise.
fn denied(caller: &Caller, message: &str) -> Error {
    if caller.is_anonymous() {
        Error::Unauthorized
    } else {
        Error::Forbidden(message.to_string())
    }
}
