//! `_lucent_email_tokens`: verification and reset tokens, stored only as SHA-256 digests.
//!
//! One row per token issued, bound to its purpose, collection, account and the address it was
//! mailed to. The same rows count the mails an account was sent in the last hour, so the rate
//! limit holds across every instance sharing the database.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Cond, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use sha2::{Digest, Sha256};

use crate::db::Database;
use crate::db::system::EmailTokens;
use crate::schema::now;

/// What a token may do; a token of one purpose is refused by the other flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
        }
    }
}

/// Holds the mail lock of an account until `transaction` ends: on PostgreSQL an advisory lock
/// (instances preparing mails for one account wait for each other); SQLite's one writer
/// already runs one transaction at a time.
///
/// # Errors
/// Database failures.
pub async fn lock_account<C: ConnectionTrait>(
    transaction: &C,
    collection: &str,
    user_id: &str,
) -> Result<(), DbErr> {
    if transaction.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let name = format!("lucent mail {collection}/{user_id}");
    let hash = Sha256::digest(name.as_bytes());
    let key = i64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [key.into()],
        ))
        .await
        .map(drop)
}

/// Deletes a token (one a failed mail attempt made and never delivered).
///
/// # Errors
/// Database failures.
pub async fn delete<C: ConnectionTrait>(connection: &C, hash: &str) -> Result<(), DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(EmailTokens::Table)
        .and_where(Expr::col(EmailTokens::Hash).eq(hash));
    connection.execute(&delete).await.map(drop)
}

/// How many tokens (= mails) an account was issued since `since`, of any purpose.
///
/// # Errors
/// Database failures.
pub async fn issued_since<C: ConnectionTrait>(
    connection: &C,
    collection: &str,
    user_id: &str,
    since: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let mut select = Query::select();
    select
        .expr(Expr::col(EmailTokens::Hash).count())
        .from(EmailTokens::Table)
        .and_where(Expr::col(EmailTokens::Collection).eq(collection))
        .and_where(Expr::col(EmailTokens::UserId).eq(user_id))
        .and_where(Expr::col(EmailTokens::CreatedAt).gt(since));
    Ok(match connection.query_one(&select).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    })
}

/// A token to store: the digest of the secret mailed out, never the secret.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub hash: &'a str,
    pub purpose: Purpose,
    pub collection: &'a str,
    pub user_id: &'a str,
    pub email_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Stores a token. A reset token first retires every unused reset token of the account, so
/// only the newest link works. Also prunes rows that can no longer be used or counted.
///
/// # Errors
/// Database failures.
pub async fn insert<C: ConnectionTrait>(writer: &C, token: &NewToken<'_>) -> Result<(), DbErr> {
    let now = now();
    if token.purpose == Purpose::Reset {
        let mut supersede = Query::update();
        supersede
            .table(EmailTokens::Table)
            .value(EmailTokens::UsedAt, now)
            .and_where(Expr::col(EmailTokens::Collection).eq(token.collection))
            .and_where(Expr::col(EmailTokens::UserId).eq(token.user_id))
            .and_where(Expr::col(EmailTokens::Purpose).eq(Purpose::Reset.as_str()))
            .and_where(Expr::col(EmailTokens::UsedAt).is_null());
        writer.execute(&supersede).await?;
    }
    let mut insert = Query::insert();
    insert
        .into_table(EmailTokens::Table)
        .columns([
            EmailTokens::Hash,
            EmailTokens::Purpose,
            EmailTokens::Collection,
            EmailTokens::UserId,
            EmailTokens::EmailHash,
            EmailTokens::CreatedAt,
            EmailTokens::ExpiresAt,
        ])
        .values_panic([
            token.hash.into(),
            token.purpose.as_str().into(),
            token.collection.into(),
            token.user_id.into(),
            token.email_hash.into(),
            now.into(),
            token.expires_at.into(),
        ]);
    writer.execute(&insert).await?;
    // Past the rate-limit window and either expired or used: nothing reads the row any more.
    let window = now - chrono::Duration::hours(1);
    let mut prune = Query::delete();
    prune
        .from_table(EmailTokens::Table)
        .and_where(Expr::col(EmailTokens::CreatedAt).lt(window))
        .cond_where(
            Cond::any()
                .add(Expr::col(EmailTokens::ExpiresAt).lt(now))
                .add(Expr::col(EmailTokens::UsedAt).is_not_null()),
        );
    writer.execute(&prune).await?;
    Ok(())
}

/// The account a live token belongs to, and the digest of the address it was mailed to.
#[derive(Debug)]
pub struct Owner {
    pub user_id: String,
    pub email_hash: String,
}

/// The owner of a token that is unused, unexpired, of `purpose` and of `collection`; a look
/// only, for checks worth doing before the token is spent.
///
/// # Errors
/// Database failures.
pub async fn live(
    db: &Database,
    hash: &str,
    purpose: Purpose,
    collection: &str,
) -> Result<Option<Owner>, DbErr> {
    let mut select = Query::select();
    select
        .columns([EmailTokens::UserId, EmailTokens::EmailHash])
        .from(EmailTokens::Table)
        .and_where(Expr::col(EmailTokens::Hash).eq(hash))
        .and_where(Expr::col(EmailTokens::Purpose).eq(purpose.as_str()))
        .and_where(Expr::col(EmailTokens::Collection).eq(collection))
        .and_where(Expr::col(EmailTokens::UsedAt).is_null())
        .and_where(Expr::col(EmailTokens::ExpiresAt).gt(now()));
    Ok(match db.writer().query_one(&select).await? {
        Some(row) => Some(Owner {
            user_id: row.try_get_by_index(0)?,
            email_hash: row.try_get_by_index(1)?,
        }),
        None => None,
    })
}

/// Uses a token up: one conditional UPDATE (unused, unexpired, this purpose and collection) whose
/// affected-row count decides, so of concurrent attempts with one token exactly one gets `true`.
///
/// # Errors
/// Database failures.
pub async fn consume(
    db: &Database,
    hash: &str,
    purpose: Purpose,
    collection: &str,
) -> Result<bool, DbErr> {
    let now = now();
    let mut update = Query::update();
    update
        .table(EmailTokens::Table)
        .value(EmailTokens::UsedAt, now)
        .and_where(Expr::col(EmailTokens::Hash).eq(hash))
        .and_where(Expr::col(EmailTokens::Purpose).eq(purpose.as_str()))
        .and_where(Expr::col(EmailTokens::Collection).eq(collection))
        .and_where(Expr::col(EmailTokens::UsedAt).is_null())
        .and_where(Expr::col(EmailTokens::ExpiresAt).gt(now));
    Ok(db.writer().execute(&update).await?.rows_affected() == 1)
}

/// Retires every unused token of `purpose` of an account (after it was verified or reset).
///
/// # Errors
/// Database failures.
pub async fn retire(
    db: &Database,
    collection: &str,
    user_id: &str,
    purpose: Purpose,
) -> Result<(), DbErr> {
    let mut update = Query::update();
    update
        .table(EmailTokens::Table)
        .value(EmailTokens::UsedAt, now())
        .and_where(Expr::col(EmailTokens::Collection).eq(collection))
        .and_where(Expr::col(EmailTokens::UserId).eq(user_id))
        .and_where(Expr::col(EmailTokens::Purpose).eq(purpose.as_str()))
        .and_where(Expr::col(EmailTokens::UsedAt).is_null());
    db.writer().execute(&update).await.map(|_| ())
}
