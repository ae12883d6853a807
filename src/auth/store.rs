//! Lucent's auth tables: sessions, the refresh tokens they rotated away, and login attempts.
//! Every piece of auth state lives here, in the database, so several instances on one database
//! behave as one server.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, TransactionTrait};

use crate::db::Database;

pub const SESSIONS: &str = "_lucent_sessions";
pub const ATTEMPTS: &str = "_lucent_login_attempts";
/// The digests of refresh tokens a session has rotated away: presenting one of them is reuse.
/// A table of its own (not a column of `_lucent_sessions`), so databases made before it get it
/// from the same `CREATE TABLE IF NOT EXISTS` as new ones.
pub const ROTATED: &str = "_lucent_rotated_refresh";

fn col(name: &str) -> Alias {
    Alias::new(name)
}

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A stored session.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub collection: String,
    pub user_id: String,
    pub refresh_hash: String,
    pub cookie_hash: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const SESSION_COLUMNS: [&str; 9] = [
    "id",
    "collection",
    "user_id",
    "refresh_hash",
    "cookie_hash",
    "user_agent",
    "created_at",
    "last_used_at",
    "expires_at",
];

fn session_row(row: &QueryResult) -> Result<SessionRow, DbErr> {
    Ok(SessionRow {
        id: row.try_get_by_index(0)?,
        collection: row.try_get_by_index(1)?,
        user_id: row.try_get_by_index(2)?,
        refresh_hash: row.try_get_by_index(3)?,
        cookie_hash: row.try_get_by_index(4)?,
        user_agent: row.try_get_by_index(5)?,
        created_at: row.try_get_by_index(6)?,
        last_used_at: row.try_get_by_index(7)?,
        expires_at: row.try_get_by_index(8)?,
    })
}

/// # Errors
/// Database failures.
pub async fn insert_session(db: &Database, session: &SessionRow) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(col(SESSIONS))
        .columns(SESSION_COLUMNS.map(col))
        .values_panic([
            session.id.clone().into(),
            session.collection.clone().into(),
            session.user_id.clone().into(),
            session.refresh_hash.clone().into(),
            session.cookie_hash.clone().into(),
            session.user_agent.clone().into(),
            session.created_at.into(),
            session.last_used_at.into(),
            session.expires_at.into(),
        ]);
    db.writer().execute(&insert).await.map(|_| ())
}

/// A live (unexpired) session by id. Read from the writer so a session ended a moment ago on
/// any connection is seen as ended.
///
/// # Errors
/// Database failures.
pub async fn find_session(db: &Database, id: &str) -> Result<Option<SessionRow>, DbErr> {
    let mut select = Query::select();
    select
        .columns(SESSION_COLUMNS.map(col))
        .from(col(SESSIONS))
        .and_where(Expr::col(col("id")).eq(id))
        .and_where(Expr::col(col("expires_at")).gt(now()));
    // Every statement on a reader sees every transaction committed before it began, on any
    // connection or instance: an ended session is seen as ended.
    db.read_auth(async |c| c.query_one(&select).await)
        .await?
        .map(|row| session_row(&row))
        .transpose()
}

/// A user's live sessions, newest first.
///
/// # Errors
/// Database failures.
pub async fn user_sessions(
    db: &Database,
    collection: &str,
    user_id: &str,
) -> Result<Vec<SessionRow>, DbErr> {
    let mut select = Query::select();
    select
        .columns(SESSION_COLUMNS.map(col))
        .from(col(SESSIONS))
        .and_where(Expr::col(col("collection")).eq(collection))
        .and_where(Expr::col(col("user_id")).eq(user_id))
        .and_where(Expr::col(col("expires_at")).gt(now()))
        .order_by(col("created_at"), Order::Desc)
        .order_by(col("id"), Order::Desc);
    db.read(async |c| c.query_all(&select).await)
        .await?
        .iter()
        .map(session_row)
        .collect()
}

/// Replaces the refresh hash only if it is still `old`, and keeps `old` as a rotated-away
/// digest of the session: of two concurrent refreshes with one token, exactly one wins. Returns
/// whether this one did. Rotated digests older than `keep` (the refresh lifetime, so their session
/// has expired) are pruned.
///
/// # Errors
/// Database failures.
pub async fn rotate_refresh(
    db: &Database,
    id: &str,
    old: &str,
    new: &str,
    keep: chrono::Duration,
) -> Result<bool, DbErr> {
    let now = now();
    let transaction = db.writer().begin().await?;
    let mut update = Query::update();
    update
        .table(col(SESSIONS))
        .value(col("refresh_hash"), new)
        .value(col("last_used_at"), now)
        .and_where(Expr::col(col("id")).eq(id))
        .and_where(Expr::col(col("refresh_hash")).eq(old));
    if transaction.execute(&update).await?.rows_affected() != 1 {
        transaction.rollback().await?;
        return Ok(false);
    }
    let mut rotated = Query::insert();
    rotated
        .into_table(col(ROTATED))
        .columns([col("hash"), col("session_id"), col("rotated_at")])
        .values_panic([old.into(), id.into(), now.into()]);
    transaction.execute(&rotated).await?;
    let mut prune = Query::delete();
    prune
        .from_table(col(ROTATED))
        .and_where(Expr::col(col("rotated_at")).lt(now - keep));
    transaction.execute(&prune).await?;
    transaction.commit().await?;
    Ok(true)
}

/// Whether `hash` is the digest of a refresh token that session `id` rotated away (a real
/// token, so presenting it is reuse), rather than any other wrong secret.
///
/// # Errors
/// Database failures.
pub async fn was_rotated(db: &Database, id: &str, hash: &str) -> Result<bool, DbErr> {
    let mut select = Query::select();
    select
        .expr(Expr::val(1))
        .from(col(ROTATED))
        .and_where(Expr::col(col("hash")).eq(hash))
        .and_where(Expr::col(col("session_id")).eq(id));
    Ok(db.writer().query_one(&select).await?.is_some())
}

/// Ends one session; returns whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete_session(db: &Database, id: &str) -> Result<bool, DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(col(SESSIONS))
        .and_where(Expr::col(col("id")).eq(id));
    Ok(db.writer().execute(&delete).await?.rows_affected() > 0)
}

/// Ends every session of a user, but `keep` if given.
///
/// # Errors
/// Database failures.
pub async fn delete_user_sessions(
    db: &Database,
    collection: &str,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(col(SESSIONS))
        .and_where(Expr::col(col("collection")).eq(collection))
        .and_where(Expr::col(col("user_id")).eq(user_id));
    if let Some(keep) = keep {
        delete.and_where(Expr::col(col("id")).ne(keep));
    }
    Ok(db.writer().execute(&delete).await?.rows_affected())
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
/// ([`clear_attempts`]) before it is used. A lock that has run out starts a fresh count. A new
/// row also prunes rows idle for longer than `keep`, so the table cannot grow without bound.
///
/// # Errors
/// Database failures.
pub async fn count_attempt(
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
    let stored = |name: &str| Expr::col((col(ATTEMPTS), col(name)));
    let expired = stored("locked_until").lte(now);
    // MySQL assigns left to right and later expressions see earlier assignments: there
    // `failures` is already this attempt's count when `locked_until` is computed.
    let this_attempt = if db.backend() == DbBackend::MySql {
        stored("failures")
    } else {
        stored("failures").add(1i64)
    };
    let mut upsert = Query::insert();
    upsert
        .into_table(col(ATTEMPTS))
        .columns([
            col("key"),
            col("failures"),
            col("locked_until"),
            col("updated_at"),
        ])
        .values_panic([key.into(), 1i64.into(), first_lock.into(), now.into()])
        .on_conflict(
            OnConflict::column(col("key"))
                .value(
                    col("failures"),
                    Expr::case(expired.clone(), 1i64).finally(stored("failures").add(1i64)),
                )
                .value(
                    col("locked_until"),
                    Expr::case(expired, first_lock)
                        .case(
                            stored("locked_until").is_null().and(this_attempt.gte(max)),
                            until,
                        )
                        .finally(stored("locked_until")),
                )
                .value(col("updated_at"), now)
                .to_owned(),
        );
    let mut read = Query::select();
    read.columns([col("failures"), col("locked_until")])
        .from(col(ATTEMPTS))
        .and_where(Expr::col(col("key")).eq(key));
    let row = if db.backend() == DbBackend::MySql {
        // No RETURNING: the upsert's row lock holds until the read in the same transaction.
        let transaction = db.writer().begin().await?;
        transaction.execute(&upsert).await?;
        let row = transaction.query_one(&read).await?;
        transaction.commit().await?;
        row
    } else {
        upsert.returning(Query::returning().columns([col("failures"), col("locked_until")]));
        db.writer().query_one(&upsert).await?
    };
    let row = row.ok_or_else(|| DbErr::RecordNotFound(ATTEMPTS.into()))?;
    let counted = Counted {
        attempts: row.try_get_by_index(0)?,
        locked_until: row.try_get_by_index(1)?,
    };
    if counted.attempts == 1 {
        let mut prune = Query::delete();
        prune
            .from_table(col(ATTEMPTS))
            .and_where(Expr::col(col("updated_at")).lt(now - keep));
        db.writer().execute(&prune).await?;
    }
    Ok(counted)
}

/// Forgets the failures of a key (after a successful login or a password reset).
///
/// # Errors
/// Database failures.
pub async fn clear_attempts(db: &Database, key: &str) -> Result<(), DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(col(ATTEMPTS))
        .and_where(Expr::col(col("key")).eq(key));
    db.writer().execute(&delete).await.map(|_| ())
}
