//! API keys (`_lucent_api_keys`) for automation: `lcnt_` + 256 random bits, stored only as a
//! SHA-256 digest found through a unique index (no scan, no comparison of secrets), with scopes
//! and an expiry. What a key-management request may do is decided in `accounts::api_keys`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, DeleteStatement, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use super::secret::digest;
use crate::db::Database;
use crate::db::system::ApiKeys;
use crate::schema::{format_time, now};

pub const KEY_PREFIX: &str = "lcnt_";

/// How often `lastUsedAt` is written at most, so reads do not turn into writes.
pub const LAST_USED_EVERY: chrono::Duration = chrono::Duration::seconds(60);

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

/// A stored key.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub collection: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: [ApiKeys; 10] = [
    ApiKeys::Id,
    ApiKeys::Collection,
    ApiKeys::UserId,
    ApiKeys::Name,
    ApiKeys::Prefix,
    ApiKeys::KeyHash,
    ApiKeys::Scopes,
    ApiKeys::CreatedAt,
    ApiKeys::ExpiresAt,
    ApiKeys::LastUsedAt,
];

impl KeyRow {
    /// A key row whose columns (as [`join_owner`] selects them) start at column `at` of `row`.
    ///
    /// # Errors
    /// A column that does not hold what it should.
    pub fn from_row(row: &QueryResult, at: usize) -> Result<KeyRow, DbErr> {
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

    /// The key as its owner sees it: the whole `key` only right after it was made.
    pub fn shown(self, key: Option<String>, with_last_used: bool) -> ApiKey {
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

/// A new key's text (shown once) and the row that stores it.
#[derive(Debug)]
pub struct NewKey {
    pub key: String,
    pub row: KeyRow,
}

/// Makes a key for account `user_id` of `collection`.
pub fn generate(
    collection: &str,
    user_id: &str,
    name: String,
    scopes: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
) -> NewKey {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let row = KeyRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        collection: collection.to_string(),
        user_id: user_id.to_string(),
        name,
        prefix: key[..12].to_string(),
        key_hash: digest(&key),
        scopes,
        created_at: now(),
        expires_at,
        last_used_at: None,
    };
    NewKey { key, row }
}

/// # Errors
/// Database failures.
pub async fn insert(db: &Database, row: &KeyRow) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(ApiKeys::Table)
        .columns(COLUMNS)
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
    db.writer().execute(&insert).await.map(|_| ())
}

/// An account's keys, newest first.
///
/// # Errors
/// Database failures.
pub async fn of_user(db: &Database, collection: &str, user_id: &str) -> Result<Vec<KeyRow>, DbErr> {
    let mut select = Query::select();
    select
        .columns(COLUMNS)
        .from(ApiKeys::Table)
        .and_where(Expr::col(ApiKeys::Collection).eq(collection))
        .and_where(Expr::col(ApiKeys::UserId).eq(user_id))
        .order_by(ApiKeys::CreatedAt, Order::Desc)
        .order_by(ApiKeys::Id, Order::Desc);
    let rows = db.writer().query_all(&select).await?;
    rows.iter().map(|row| KeyRow::from_row(row, 0)).collect()
}

/// Deletes key `id` of an account; returns whether it was theirs.
///
/// # Errors
/// Database failures.
pub async fn revoke(
    db: &Database,
    collection: &str,
    user_id: &str,
    id: &str,
) -> Result<bool, DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(ApiKeys::Table)
        .and_where(Expr::col(ApiKeys::Id).eq(id))
        .and_where(Expr::col(ApiKeys::Collection).eq(collection))
        .and_where(Expr::col(ApiKeys::UserId).eq(user_id));
    Ok(db.writer().execute(&delete).await?.rows_affected() > 0)
}

/// Deletes every key of an account (the account is being deleted, or its password was reset).
///
/// # Errors
/// Database failures.
pub async fn delete_of_user(db: &Database, collection: &str, user_id: &str) -> Result<(), DbErr> {
    let delete = delete_of_user_statement(collection, user_id);
    db.writer().execute(&delete).await.map(|_| ())
}

/// The statement of [`delete_of_user`], for a write that deletes the account in the same
/// transaction.
pub fn delete_of_user_statement(collection: &str, user_id: &str) -> DeleteStatement {
    let mut delete = Query::delete();
    delete
        .from_table(ApiKeys::Table)
        .and_where(Expr::col(ApiKeys::Collection).eq(collection))
        .and_where(Expr::col(ApiKeys::UserId).eq(user_id));
    delete
}

/// Records that a key was used now, at most every [`LAST_USED_EVERY`].
///
/// # Errors
/// Database failures.
pub async fn touch(db: &Database, row: &KeyRow) -> Result<(), DbErr> {
    let now = now();
    if row
        .last_used_at
        .is_some_and(|at| now - at < LAST_USED_EVERY)
    {
        return Ok(());
    }
    let mut touch = Query::update();
    touch
        .table(ApiKeys::Table)
        .value(ApiKeys::LastUsedAt, now)
        .and_where(Expr::col(ApiKeys::Id).eq(row.id.as_str()));
    db.writer().execute(&touch).await.map(|_| ())
}

/// Extends a `SELECT` of the accounts of `collection` (table `table`) with the key whose digest
/// is `key_hash`: its columns are appended (read them with [`KeyRow::from_row`]) and the key's
/// owner must be the row. One statement finds the key and its account.
pub fn join_owner(select: &mut SelectStatement, table: &str, collection: &str, key_hash: &str) {
    let table = Alias::new(table);
    for column in COLUMNS {
        select.column((ApiKeys::Table, column));
    }
    select
        .inner_join(
            ApiKeys::Table,
            Expr::col((ApiKeys::Table, ApiKeys::UserId)).equals((table, Alias::new("id"))),
        )
        .and_where(Expr::col((ApiKeys::Table, ApiKeys::Collection)).eq(collection))
        .and_where(Expr::col((ApiKeys::Table, ApiKeys::KeyHash)).eq(key_hash));
}
