//! Login lockout (`_lucent_login_attempts`): failed attempts counted per key in the database, so
//! every instance sharing it enforces one limit.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, TransactionTrait};

use super::secret::digest;
use crate::db::Database;
use crate::db::system::LoginAttempts;
use crate::schema::now;

/// The key login attempts of an identifier are counted under: the found account's id when the
/// account exists (so every spelling that finds it — `İtem` and `item` on PostgreSQL, whose
/// `LOWER()` is not Rust's — shares one count), else the normalized identifier. The one place
/// this key is made: login counts under it, a completed password reset clears it.
pub fn key(collection: &str, account: Option<&str>, identifier: &str) -> String {
    match account {
        Some(id) => digest(&format!("{collection}\u{0}id\u{0}{id}")),
        None => digest(&format!(
            "{collection}\u{0}login\u{0}{}",
            identifier.trim().to_lowercase()
        )),
    }
}

/// A lockout key's state right after an attempt was counted.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    /// Attempts since the last success, reset or expired lock, this one included.
    pub attempts: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Counts one login attempt for `key` before its password is verified, in one atomic statement
/// (an upsert returning the new count), so parallel attempts on one instance or several each get
/// their own number: at most `max` of them are ever numbered `<= max` per lock window. The
/// attempt that reaches `max` also starts the lock (`lock` long); a success deletes the row
/// ([`clear`]) before it is used. A lock that has run out starts a fresh count. A new
/// row also prunes rows idle for longer than `keep`, so the table cannot grow without bound.
///
/// # Errors
/// Database failures.
pub async fn count(
    db: &Database,
    key: &str,
    max: u32,
    lock: chrono::Duration,
    keep: chrono::Duration,
) -> Result<Counted, DbErr> {
    let now = now();
    let max = i64::from(Ord::max(max, 1));
    let until = now + lock;
    let first_lock = (max == 1).then_some(until);
    let stored = |column: LoginAttempts| Expr::col((LoginAttempts::Table, column));
    let expired = stored(LoginAttempts::LockedUntil).lte(now);
    // MySQL assigns left to right and later expressions see earlier assignments: there
    // `failures` is already this attempt's count when `locked_until` is computed.
    let this_attempt = if db.backend() == DbBackend::MySql {
        stored(LoginAttempts::Failures)
    } else {
        stored(LoginAttempts::Failures).add(1i64)
    };
    let mut upsert = Query::insert();
    upsert
        .into_table(LoginAttempts::Table)
        .columns([
            LoginAttempts::Key,
            LoginAttempts::Failures,
            LoginAttempts::LockedUntil,
            LoginAttempts::UpdatedAt,
        ])
        .values_panic([key.into(), 1i64.into(), first_lock.into(), now.into()])
        .on_conflict(
            OnConflict::column(LoginAttempts::Key)
                .value(
                    LoginAttempts::Failures,
                    Expr::case(expired.clone(), 1i64)
                        .finally(stored(LoginAttempts::Failures).add(1i64)),
                )
                .value(
                    LoginAttempts::LockedUntil,
                    Expr::case(expired, first_lock)
                        .case(
                            stored(LoginAttempts::LockedUntil)
                                .is_null()
                                .and(this_attempt.gte(max)),
                            until,
                        )
                        .finally(stored(LoginAttempts::LockedUntil)),
                )
                .value(LoginAttempts::UpdatedAt, now)
                .to_owned(),
        );
    let mut read = Query::select();
    read.columns([LoginAttempts::Failures, LoginAttempts::LockedUntil])
        .from(LoginAttempts::Table)
        .and_where(Expr::col(LoginAttempts::Key).eq(key));
    let row = if db.backend() == DbBackend::MySql {
        // No RETURNING: the upsert's row lock holds until the read in the same transaction.
        let transaction = db.writer().begin().await?;
        transaction.execute(&upsert).await?;
        let row = transaction.query_one(&read).await?;
        transaction.commit().await?;
        row
    } else {
        upsert.returning(
            Query::returning().columns([LoginAttempts::Failures, LoginAttempts::LockedUntil]),
        );
        db.writer().query_one(&upsert).await?
    };
    let row = row.ok_or_else(|| DbErr::RecordNotFound("_lucent_login_attempts".into()))?;
    let counted = Counted {
        attempts: row.try_get_by_index(0)?,
        locked_until: row.try_get_by_index(1)?,
    };
    if counted.attempts == 1 {
        let mut prune = Query::delete();
        prune
            .from_table(LoginAttempts::Table)
            .and_where(Expr::col(LoginAttempts::UpdatedAt).lt(now - keep));
        db.writer().execute(&prune).await?;
    }
    Ok(counted)
}

/// Forgets the failures of a key (after a successful login or a password reset).
///
/// # Errors
/// Database failures.
pub async fn clear(db: &Database, key: &str) -> Result<(), DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(LoginAttempts::Table)
        .and_where(Expr::col(LoginAttempts::Key).eq(key));
    db.writer().execute(&delete).await.map(|_| ())
}
