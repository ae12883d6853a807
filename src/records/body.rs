//! Checking a body before it is written: field rules of the caller, then every field's own rules,
//! the system and Lucent-managed fields, the password policy and the current password of an
//! account changing its credentials, and relation targets — every problem collected and reported
//! at once.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::Value as Json;

use super::batch::Prepared;
use super::{Doc, Error, Records, Result};
use crate::access::{Caller, CollectionPolicy};
use crate::auth::Principal;
use crate::auth::password::check_policy;
use crate::db::Writes;
use crate::schema::{Collection, FieldError, FieldKind, FieldRole, SYSTEM_FIELDS, Value};

/// The body key carrying the current password when an account changes its password or login.
const OLD_PASSWORD: &str = "oldPassword";

/// Whether a body creates a document or changes some fields of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Update,
}

impl Records {
    /// Field `create`/`update` rules for the fields present in a body: 403 naming the first field
    /// the caller may not write. `verified` without such a rule stays Lucent's (checked later).
    pub(super) fn check_field_rules(
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

    /// Checks a body against the collection for a create, or for an update of `stored`: every
    /// problem is collected, then reported at once. Returns the values to write, by field index
    /// (a new password already hashed). The argon2 work `prepared` did before the transaction is
    /// used rather than done again.
    pub(super) async fn check_body(
        &self,
        writes: Writes<'_>,
        principal: &Principal,
        collection: &Collection,
        body: &Json,
        stored: Option<&Doc>,
        prepared: Option<&Prepared>,
    ) -> Result<Vec<(usize, Value)>> {
        let mode = if stored.is_some() {
            Mode::Update
        } else {
            Mode::Create
        };
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
            errors.extend(self.missing_targets(writes, collection, &values).await?);
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
                        let matches = match prepared.and_then(|p| p.checked(old, hash.as_deref())) {
                            Some(matches) => matches,
                            None => self.passwords.verify(old.to_string(), hash).await?,
                        };
                        if !matches {
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
            let hash = match prepared.and_then(|p| p.hash_of(&password)) {
                Some(hash) => hash.to_string(),
                None => self.passwords.hash(password).await?,
            };
            values.push((index, Value::Text(hash)));
        }
        Ok(values)
    }

    /// The relation values whose target does not exist.
    pub(super) async fn missing_targets(
        &self,
        writes: Writes<'_>,
        collection: &Collection,
        values: &[(usize, Value)],
    ) -> Result<Vec<FieldError>> {
        let mut errors = Vec::new();
        for (index, value) in values {
            let field = &collection.fields[*index];
            let FieldKind::Relation { to, .. } = &field.kind else {
                continue;
            };
            let ids = match value {
                Value::Text(id) => std::slice::from_ref(id),
                Value::List(ids) => ids.as_slice(),
                _ => continue,
            };
            let missing = self.missing(writes, to, ids).await?;
            let message = match missing.as_slice() {
                [] => continue,
                [id] => format!("no {to} document has id \"{id}\""),
                ids => format!(
                    "no {to} documents have ids {}",
                    ids.iter()
                        .map(|id| format!("\"{id}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            errors.push(FieldError::new(&field.name, "invalid_relation", message));
        }
        Ok(errors)
    }

    /// Which of `ids` (in their order) no document of `slug` has: one query.
    pub(super) async fn missing(
        &self,
        writes: Writes<'_>,
        slug: &str,
        ids: &[String],
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(slug))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().map(String::as_str)));
        let mut found = std::collections::HashSet::with_capacity(ids.len());
        for row in writes.query_all(&select).await? {
            found.insert(row.try_get_by_index::<String>(0)?);
        }
        Ok(ids
            .iter()
            .filter(|id| !found.contains(*id))
            .cloned()
            .collect())
    }
}

/// A body's fields; any other JSON (an array, a string, ...) is a 400 before any rule runs.
pub(super) fn object(body: &Json) -> Result<&Doc> {
    body.as_object().ok_or_else(|| {
        Error::Validation(vec![FieldError::new(
            "",
            "invalid_type",
            "the body must be a JSON object",
        )])
    })
}
