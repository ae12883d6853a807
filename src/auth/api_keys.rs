//! API keys for automation: `lcnt_` + 256 random bits, stored only as a SHA-256 digest found
//! through a unique index (no scan, no comparison of secrets), with scopes and an expiry.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};
use serde_json::Value as Json;

use super::accounts::{Auth, Error, Result};
use super::secret::{digest, same_digest};
use super::store::now;
use super::{Credential, Principal};
use crate::db::Database;
use crate::records;
use crate::schema::{FieldError, format_time};

pub const API_KEYS: &str = "_lucent_api_keys";
pub const KEY_PREFIX: &str = "lcnt_";

/// What a key may do. Keys without scopes may do everything.
pub const SCOPES: [&str; 3] = ["read", "write", "admin"];

/// How often `lastUsedAt` is written at most, so reads do not turn into writes.
const LAST_USED_EVERY: chrono::Duration = chrono::Duration::seconds(60);

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// A key as its owner sees it; `key` only in the create answer.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// `None`: every operation.
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Option<String>>,
}

struct KeyRow {
    id: String,
    collection: String,
    user_id: String,
    name: String,
    prefix: String,
    key_hash: String,
    scopes: Option<Vec<String>>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: [&str; 10] = [
    "id",
    "collection",
    "user_id",
    "name",
    "prefix",
    "key_hash",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
];

/// A key row whose columns (`COLUMNS`, in order) start at column `at` of `row`.
fn key_row(row: &QueryResult, at: usize) -> Result<KeyRow, DbErr> {
    let scopes: Option<String> = row.try_get_by_index(at + 6)?;
    Ok(KeyRow {
        id: row.try_get_by_index(at)?,
        collection: row.try_get_by_index(at + 1)?,
        user_id: row.try_get_by_index(at + 2)?,
        name: row.try_get_by_index(at + 3)?,
        prefix: row.try_get_by_index(at + 4)?,
        key_hash: row.try_get_by_index(at + 5)?,
        scopes: scopes.map(|s| {
            s.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }),
        created_at: row.try_get_by_index(at + 7)?,
        expires_at: row.try_get_by_index(at + 8)?,
        last_used_at: row.try_get_by_index(at + 9)?,
    })
}

impl KeyRow {
    fn shown(self, key: Option<String>, with_last_used: bool) -> ApiKey {
        ApiKey {
            id: self.id,
            name: self.name,
            scopes: self.scopes,
            key,
            prefix: self.prefix,
            created_at: format_time(&self.created_at),
            expires_at: self.expires_at.as_ref().map(format_time),
            last_used_at: with_last_used.then(|| self.last_used_at.as_ref().map(format_time)),
        }
    }
}

/// Whether `scopes` (`None` = all) include `scope`; `admin` covers every operation.
pub fn grants(scopes: Option<&[String]>, scope: &str) -> bool {
    scopes.is_none_or(|s| s.iter().any(|have| have == scope || have == "admin"))
}

fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    Error::Records(records::Error::Validation(vec![FieldError::new(
        field, code, message,
    )]))
}

fn forbidden(message: &str) -> Error {
    Error::Records(records::Error::Forbidden(message.to_string()))
}

impl Auth {
    /// The account behind a key-management request: a session (token or cookie), or a key with
    /// the `admin` scope; of this collection.
    fn key_manager<'p>(&self, principal: &'p Principal, slug: &str) -> Result<&'p super::AuthUser> {
        self.auth_collection(slug)?;
        let user = principal
            .user()
            .filter(|u| u.collection == slug)
            .ok_or(Error::Unauthorized)?;
        if user.credential == Credential::ApiKey
            && !user
                .scopes
                .as_ref()
                .is_some_and(|s| s.iter().any(|x| x == "admin"))
        {
            return Err(forbidden("managing API keys needs the admin scope"));
        }
        Ok(user)
    }

    /// Creates a key for the principal's account. The whole key appears only in this answer.
    ///
    /// # Errors
    /// `Validation` for a missing name, unknown scopes or an `expiresAt` that is not a future
    /// RFC 3339 time; `Forbidden` for a key asking for scopes its creator lacks.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        slug: &str,
        body: &Json,
    ) -> Result<ApiKey> {
        let user = self.key_manager(principal, slug)?;
        let Some(object) = body.as_object() else {
            return Err(invalid(
                "",
                "invalid_type",
                "the body must be a JSON object",
            ));
        };
        let mut errors = Vec::new();
        for key in object
            .keys()
            .filter(|k| !["name", "scopes", "expiresAt"].contains(&k.as_str()))
        {
            errors.push(FieldError::new(
                key,
                "unknown_field",
                format!("unknown field \"{key}\""),
            ));
        }
        let name = object
            .get("name")
            .and_then(Json::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(FieldError::new(
                "name",
                "required",
                "name is required (at most 200 characters)",
            ));
        } else if name.contains('\0') {
            errors.push(crate::schema::nul_error("name"));
        }
        let scopes: Option<Vec<String>> = match object.get("scopes") {
            None | Some(Json::Null) => None,
            Some(Json::Array(items)) => {
                let mut scopes = Vec::new();
                for item in items {
                    match item.as_str().filter(|s| SCOPES.contains(s)) {
                        Some(scope) if !scopes.iter().any(|s| s == scope) => {
                            scopes.push(scope.to_string())
                        }
                        Some(_) => {}
                        None => errors.push(FieldError::new(
                            "scopes",
                            "invalid_scope",
                            "scopes may be read, write and admin",
                        )),
                    }
                }
                if scopes.is_empty() && errors.is_empty() {
                    errors.push(FieldError::new(
                        "scopes",
                        "invalid_scope",
                        "give at least one scope, or omit scopes for all",
                    ));
                }
                Some(scopes)
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "scopes",
                    "invalid_type",
                    "scopes must be a list",
                ));
                None
            }
        };
        let expires_at = match object.get("expiresAt") {
            None | Some(Json::Null) => None,
            Some(value) => match value.as_str().and_then(crate::schema::parse_time) {
                Some(at) if at > now() => Some(at),
                Some(_) => {
                    errors.push(FieldError::new(
                        "expiresAt",
                        "in_the_past",
                        "expiresAt must be in the future",
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "expiresAt",
                        "invalid_type",
                        "expiresAt must be an RFC 3339 datetime",
                    ));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(Error::Records(records::Error::Validation(errors)));
        }
        if user.credential == Credential::ApiKey {
            let wanted: Vec<&str> = scopes
                .as_ref()
                .map_or(SCOPES.to_vec(), |s| s.iter().map(String::as_str).collect());
            let have = user.scopes.as_deref().unwrap_or_default();
            if wanted.iter().any(|w| !have.iter().any(|h| h == w)) {
                return Err(forbidden("a key cannot create a key with scopes it lacks"));
            }
        }
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
        let row = KeyRow {
            id: uuid::Uuid::now_v7().simple().to_string(),
            collection: slug.to_string(),
            user_id: user.id.clone(),
            name,
            prefix: key[..12].to_string(),
            key_hash: digest(&key),
            scopes,
            created_at: now(),
            expires_at,
            last_used_at: None,
        };
        let mut insert = Query::insert();
        insert
            .into_table(col(API_KEYS))
            .columns(COLUMNS.map(col))
            .values_panic([
                row.id.clone().into(),
                row.collection.clone().into(),
                row.user_id.clone().into(),
                row.name.clone().into(),
                row.prefix.clone().into(),
                row.key_hash.clone().into(),
                row.scopes.as_ref().map(|s| s.join(",")).into(),
                row.created_at.into(),
                row.expires_at.into(),
                row.last_used_at.into(),
            ]);
        self.inner.db.writer().execute(&insert).await?;
        Ok(row.shown(Some(key), false))
    }

    /// The principal's own keys, without secrets.
    ///
    /// # Errors
    /// As for every key-management call.
    pub async fn list_api_keys(&self, principal: &Principal, slug: &str) -> Result<Vec<ApiKey>> {
        let user = self.key_manager(principal, slug)?;
        let mut select = Query::select();
        select
            .columns(COLUMNS.map(col))
            .from(col(API_KEYS))
            .and_where(Expr::col(col("collection")).eq(slug))
            .and_where(Expr::col(col("user_id")).eq(user.id.as_str()))
            .order_by(col("created_at"), Order::Desc)
            .order_by(col("id"), Order::Desc);
        let rows = self.inner.db.writer().query_all(&select).await?;
        rows.iter()
            .map(|row| Ok(key_row(row, 0)?.shown(None, true)))
            .collect()
    }

    /// Revokes one of the principal's own keys; it stops working on the next request.
    ///
    /// # Errors
    /// `NotFound` for a key that is not the principal's.
    pub async fn revoke_api_key(&self, principal: &Principal, slug: &str, id: &str) -> Result<()> {
        let user = self.key_manager(principal, slug)?;
        let mut delete = Query::delete();
        delete
            .from_table(col(API_KEYS))
            .and_where(Expr::col(col("id")).eq(id))
            .and_where(Expr::col(col("collection")).eq(slug))
            .and_where(Expr::col(col("user_id")).eq(user.id.as_str()));
        match self
            .inner
            .db
            .writer()
            .execute(&delete)
            .await?
            .rows_affected()
        {
            0 => Err(Error::Records(records::Error::NotFound)),
            _ => Ok(()),
        }
    }

    /// Authenticates `Authorization: Bearer lcnt_...`: the request acts as the key's owner, with
    /// the key's scopes.
    ///
    /// # Errors
    /// `TokenExpired` for an expired key; `Unauthorized` for an unknown or revoked one.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let hash = digest(key);
        // One statement finds the key and its account (per auth collection; usually one).
        let mut found = None;
        for collection in self
            .inner
            .records
            .schema()
            .collections
            .iter()
            .filter(|c| c.auth.is_some())
        {
            if let Some(hit) = self
                .inner
                .records
                .account_by_key(&collection.slug, &hash, &COLUMNS)
                .await?
            {
                found = Some(hit);
                break;
            }
        }
        let (doc, row, offset) = found.ok_or(Error::Unauthorized)?;
        let row = key_row(&row, offset)?;
        if !same_digest(&row.key_hash, &hash) {
            return Err(Error::Unauthorized);
        }
        let now = now();
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::TokenExpired);
        }
        if row
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_EVERY)
        {
            let mut touch = Query::update();
            touch
                .table(col(API_KEYS))
                .value(col("last_used_at"), now)
                .and_where(Expr::col(col("id")).eq(row.id.as_str()));
            self.inner.db.writer().execute(&touch).await?;
        }
        let scopes = row
            .scopes
            .unwrap_or_else(|| SCOPES.map(str::to_string).to_vec());
        Ok(self.principal(&row.collection, doc, None, Some(scopes), Credential::ApiKey))
    }
}

/// Deletes every key of an account (the account is being deleted).
///
/// # Errors
/// Database failures.
pub async fn delete_user_keys(db: &Database, collection: &str, user_id: &str) -> Result<(), DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(col(API_KEYS))
        .and_where(Expr::col(col("collection")).eq(collection))
        .and_where(Expr::col(col("user_id")).eq(user_id));
    db.writer().execute(&delete).await.map(|_| ())
}
