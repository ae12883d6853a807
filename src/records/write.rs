//! Create, update and delete: body checking, relation checks, and database errors turned into
//! answers (unique → 409, restrict → 409).

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbErr, SqlErr};
use serde_json::Value as Json;

use super::{Doc, Error, Records, Result};
use crate::access::{Caller, CollectionPolicy};
use crate::auth::Principal;
use crate::auth::password::check_policy;
use crate::db::to_sql_value;
use crate::schema::{Collection, FieldError, FieldKind, FieldRole, SYSTEM_FIELDS, Value, now};

/// The body key carrying the current password when an account changes its password or login.
const OLD_PASSWORD: &str = "oldPassword";

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
        let (collection, _, policy) = self.collection(slug)?;
        let caller = Caller::new(principal);
        caller.require_scope("write")?;
        let data = Some(object(body)?);
        if !caller.allows(&policy.create, None, data) {
            return Err(denied(&caller, "you may not create documents here"));
        }
        self.check_field_rules(collection, policy, &caller, None, data, Mode::Create)?;
        let values = self
            .check_body(principal, collection, body, Mode::Create, None)
            .await?;
        let now = now();
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
            .map_err(|e| Error::Internal(e.to_string()))?;
        if let Err(error) = self.db.write(&insert).await {
            return Err(self.explain(collection, &values, error).await);
        }

        let mut doc = Doc::new();
        doc.insert("id".into(), Json::String(id));
        for (index, value) in values {
            doc.insert(collection.fields[index].name.clone(), value.to_json());
        }
        let stamp = Value::Time(now).to_json();
        doc.insert("createdAt".into(), stamp.clone());
        doc.insert("updatedAt".into(), stamp);
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
        let (collection, plan, policy) = self.collection(slug)?;
        let caller = Caller::new(principal);
        caller.require_scope("write")?;
        let data = Some(object(body)?);
        let mut stored = self
            .load_readable(collection, plan, policy, &caller, id, true)
            .await?;
        if !caller.allows(&policy.update, Some(&stored), data) {
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
            .check_body(principal, collection, body, Mode::Update, Some(&stored))
            .await?;
        let credentials_changed = self.account_changes(collection, &stored, &mut values);
        let now = now();
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
        let affected = match self.db.write(&update).await {
            Ok(affected) => affected,
            Err(error) => return Err(self.explain(collection, &values, error).await),
        };
        if affected == 0 {
            return Err(Error::NotFound); // deleted meanwhile
        }
        for (index, value) in values {
            stored.insert(collection.fields[index].name.clone(), value.to_json());
        }
        stored.insert("updatedAt".into(), Value::Time(now).to_json());
        if credentials_changed {
            let keep = principal
                .user()
                .filter(|u| u.collection == collection.slug && u.id == id)
                .and_then(|u| u.session_id.as_deref());
            self.credentials_changed(collection, id, keep).await?;
        }
        Ok(self.shown(collection, policy, &caller, stored))
    }

    /// Deletes a document and returns it as it was.
    ///
    /// # Errors
    /// `NotFound` for an unknown id, `Conflict` when a `restrict` relation still points at it.
    pub async fn delete(&self, principal: &Principal, slug: &str, id: &str) -> Result<Doc> {
        let (collection, plan, policy) = self.collection(slug)?;
        let caller = Caller::new(principal);
        caller.require_scope("write")?;
        let stored = self
            .load_readable(collection, plan, policy, &caller, id, true)
            .await?;
        if !caller.allows(&policy.delete, Some(&stored), None) {
            return Err(denied(&caller, "you may not delete this document"));
        }
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(&collection.slug))
            .and_where(Expr::col(Alias::new("id")).eq(id));
        let affected = self
            .db
            .write(&delete)
            .await
            .map_err(|e| write_error(collection, e))?;
        if affected == 0 {
            return Err(Error::NotFound);
        }
        self.account_deleted(collection, id).await?;
        Ok(self.shown(collection, policy, &caller, stored))
    }

    /// Field `create`/`update` rules for the fields present in a body: 403 naming the first field
    /// the caller may not write. `verified` without such a rule stays Lucent's (checked later).
    fn check_field_rules(
        &self,
        collection: &Collection,
        policy: &CollectionPolicy,
        caller: &Caller,
        stored: Option<&Doc>,
        data: Option<&Doc>,
        mode: Mode,
    ) -> Result<()> {
        let Some(data) = data else { return Ok(()) };
        for (field, rules) in collection.fields.iter().zip(&policy.fields) {
            if !data.contains_key(&field.name) {
                continue;
            }
            let rule = match mode {
                Mode::Create => rules.create.as_ref(),
                Mode::Update => rules.update.as_ref(),
            };
            if let Some(rule) = rule
                && !caller.allows(rule, stored, Some(data))
            {
                return Err(Error::Forbidden(format!(
                    "you may not set the field \"{}\"",
                    field.name
                )));
            }
        }
        Ok(())
    }

    /// Checks a body against the collection: every problem is collected, then reported at once.
    /// Returns the values to write, by field index (a new password already hashed).
    async fn check_body(
        &self,
        principal: &Principal,
        collection: &Collection,
        body: &Json,
        mode: Mode,
        stored: Option<&Doc>,
    ) -> Result<Vec<(usize, Value)>> {
        let object = object(body)?;
        let mut errors = Vec::new();
        let mut new_password = None;
        // `verified` is Lucent's, unless a field rule for this operation governs it (and, having
        // been checked already, allowed it).
        let verified_writable = self.schema.index_of(&collection.slug).is_some_and(|index| {
            let policy = &self.policies.collections[index];
            collection
                .fields
                .iter()
                .zip(&policy.fields)
                .any(|(field, rules)| {
                    field.role == FieldRole::Verified
                        && match mode {
                            Mode::Create => rules.create.is_some(),
                            Mode::Update => rules.update.is_some(),
                        }
                })
        });
        for (key, input) in object {
            if key == OLD_PASSWORD && collection.auth.is_some() {
                if !input.is_string() {
                    errors.push(FieldError::new(
                        key,
                        "invalid_type",
                        format!("{key} must be a string"),
                    ));
                }
                continue;
            }
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
                Some(FieldRole::Verified) if !verified_writable => {
                    errors.push(FieldError::new(
                        key,
                        "read_only",
                        format!("{key} is set by Lucent"),
                    ));
                }
                Some(FieldRole::Verified) => {}
                Some(FieldRole::Password) => match input.as_str() {
                    Some(password) => {
                        let broken = check_policy(&self.policy, password, key);
                        if broken.is_empty() {
                            new_password = Some(password.to_string());
                        }
                        errors.extend(broken);
                    }
                    None => errors.push(FieldError::new(
                        key,
                        "invalid_type",
                        format!("{key} must be a string"),
                    )),
                },
                Some(FieldRole::Data) => {}
            }
        }
        let mut values = Vec::new();
        for (index, field) in collection.fields.iter().enumerate() {
            if field.role == FieldRole::Password
                && mode == Mode::Create
                && !object.contains_key(&field.name)
            {
                errors.push(FieldError::new(
                    &field.name,
                    "required",
                    format!("{} is required", field.name),
                ));
            }
            if field.role != FieldRole::Data && field.role != FieldRole::Verified {
                continue;
            }
            let parsed = match (object.get(&field.name), mode) {
                (Some(input), _) if field.role == FieldRole::Data || verified_writable => {
                    field.parse(input)
                }
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
        // Relation targets are checked by the database's foreign keys when the row is written
        // (one statement fewer per write); only a body that fails anyway is checked here, so it
        // reports every failing field at once.
        if !errors.is_empty() {
            errors.extend(self.missing_targets(collection, &values).await?);
        }
        if let (Some(stored), Some(auth)) = (stored, &collection.auth)
            && errors.is_empty()
        {
            // Changing one's own password or login needs the current password.
            let login_changes = values.iter().any(|(i, v)| {
                let field = &collection.fields[*i];
                field.name == auth.login_field && stored.get(&field.name) != Some(&v.to_json())
            });
            let own = stored
                .get("id")
                .and_then(Json::as_str)
                .is_some_and(|id| principal.is_account(&collection.slug, id));
            if own && (login_changes || new_password.is_some()) {
                let hash = stored
                    .get("password")
                    .and_then(Json::as_str)
                    .map(str::to_string);
                match object.get(OLD_PASSWORD).and_then(Json::as_str) {
                    None => errors.push(FieldError::new(
                        OLD_PASSWORD,
                        "required",
                        "the current password is required to change the password or login",
                    )),
                    Some(old) => {
                        if !self.passwords.verify(old.to_string(), hash).await? {
                            errors.push(FieldError::new(
                                OLD_PASSWORD,
                                "invalid_password",
                                "the current password is wrong",
                            ));
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        if let Some(password) = new_password
            && let Some(index) = collection
                .fields
                .iter()
                .position(|f| f.role == FieldRole::Password)
        {
            let hash = self.passwords.hash(password).await?;
            values.push((index, Value::Text(hash)));
        }
        Ok(values)
    }

    /// The relation values whose target does not exist.
    async fn missing_targets(
        &self,
        collection: &Collection,
        values: &[(usize, Value)],
    ) -> Result<Vec<FieldError>> {
        let mut errors = Vec::new();
        for (index, value) in values {
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
        Ok(errors)
    }

    /// A failed write explained: a foreign-key failure on a relation value is a validation error
    /// naming the field; the rest as [`write_error`] says.
    async fn explain(
        &self,
        collection: &Collection,
        values: &[(usize, Value)],
        error: DbErr,
    ) -> Error {
        let explained = write_error(collection, error);
        if matches!(explained, Error::Conflict(_))
            && let Ok(missing) = self.missing_targets(collection, values).await
            && !missing.is_empty()
        {
            return Error::Validation(missing);
        }
        explained
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

/// A body's fields; any other JSON (an array, a string, ...) is a 400 before any rule runs.
fn object(body: &Json) -> Result<&Doc> {
    body.as_object().ok_or_else(|| {
        Error::Validation(vec![FieldError::new(
            "",
            "invalid_type",
            "the body must be a JSON object",
        )])
    })
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

/// A denied operation: 401 for anonymous callers (signing in may help), 403 otherwise.
fn denied(caller: &Caller, message: &str) -> Error {
    if caller.is_anonymous() {
        Error::Unauthorized
    } else {
        Error::Forbidden(message.to_string())
    }
}
