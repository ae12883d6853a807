//! Refresh sessions (`_lucent_sessions`) and the refresh tokens they rotated away
//! (`_lucent_rotated_refresh`). All session state lives in the database, so several instances on
//! one database behave as one server: a session ended on one is ended on all at once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{DeleteStatement, Expr, ExprTrait, Order, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, TransactionTrait};

use crate::db::Database;
use crate::db::system::{RotatedRefresh, Sessions};
use crate::schema::now;

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

const COLUMNS: [Sessions; 9] = [
    Sessions::Id,
    Sessions::Collection,
    Sessions::UserId,
    Sessions::RefreshHash,
    Sessions::CookieHash,
    Sessions::UserAgent,
    Sessions::CreatedAt,
    Sessions::LastUsedAt,
    Sessions::ExpiresAt,
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
pub async fn insert(db: &Database, session: &SessionRow) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(Sessions::Table)
        .columns(COLUMNS)
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

/// A live (unexpired) session by id.
///
/// # Errors
/// Database failures.
pub async fn find(db: &Database, id: &str) -> Result<Option<SessionRow>, DbErr> {
    let mut select = Query::select();
    select
        .columns(COLUMNS)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id))
        .and_where(Expr::col(Sessions::ExpiresAt).gt(now()));
    // Every statement on a reader sees every transaction committed before it began, on any
    // connection or instance: an ended session is seen as ended.
    db.read_auth(async |c| c.query_one(&select).await)
        .await?
        .map(|row| session_row(&row))
        .transpose()
}

/// The condition "`session` is a live session of the account whose id is `user_id`, in
/// `collection`", for the one statement that loads an account only while its session lives.
pub fn is_live(session: &str, collection: &str, user_id: SimpleExpr) -> SimpleExpr {
    let mut live = Query::select();
    live.expr(Expr::val(1))
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(session))
        .and_where(Expr::col(Sessions::Collection).eq(collection))
        .and_where(Expr::col(Sessions::UserId).eq(user_id))
        .and_where(Expr::col(Sessions::ExpiresAt).gt(now()));
    Expr::exists(live)
}

/// A user's live sessions, newest first.
///
/// # Errors
/// Database failures.
pub async fn of_user(
    db: &Database,
    collection: &str,
    user_id: &str,
) -> Result<Vec<SessionRow>, DbErr> {
    let mut select = Query::select();
    select
        .columns(COLUMNS)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Collection).eq(collection))
        .and_where(Expr::col(Sessions::UserId).eq(user_id))
        .and_where(Expr::col(Sessions::ExpiresAt).gt(now()))
        .order_by(Sessions::CreatedAt, Order::Desc)
        .order_by(Sessions::Id, Order::Desc);
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
        .table(Sessions::Table)
        .value(Sessions::RefreshHash, new)
        .value(Sessions::LastUsedAt, now)
        .and_where(Expr::col(Sessions::Id).eq(id))
        .and_where(Expr::col(Sessions::RefreshHash).eq(old));
    if transaction.execute(&update).await?.rows_affected() != 1 {
        transaction.rollback().await?;
        return Ok(false);
    }
    let mut rotated = Query::insert();
    rotated
        .into_table(RotatedRefresh::Table)
        .columns([
            RotatedRefresh::Hash,
            RotatedRefresh::SessionId,
            RotatedRefresh::RotatedAt,
        ])
        .values_panic([old.into(), id.into(), now.into()]);
    transaction.execute(&rotated).await?;
    let mut prune = Query::delete();
    prune
        .from_table(RotatedRefresh::Table)
        .and_where(Expr::col(RotatedRefresh::RotatedAt).lt(now - keep));
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
        .from(RotatedRefresh::Table)
        .and_where(Expr::col(RotatedRefresh::Hash).eq(hash))
        .and_where(Expr::col(RotatedRefresh::SessionId).eq(id));
    Ok(db.writer().query_one(&select).await?.is_some())
}

/// Ends one session; returns whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete(db: &Database, id: &str) -> Result<bool, DbErr> {
    let mut delete = Query::delete();
    delete
        .from_table(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id));
    Ok(db.writer().execute(&delete).await?.rows_affected() > 0)
}

/// Ends every session of a user, but `keep` if given.
///
/// # Errors
/// Database failures.
pub async fn delete_of_user(
    db: &Database,
    collection: &str,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, DbErr> {
    let delete = delete_of_user_statement(collection, user_id, keep);
    Ok(db.writer().execute(&delete).await?.rows_affected())
}

/// The statement of [`delete_of_user`], for a write that must end the sessions in the same
/// transaction as it changes the account.
pub fn delete_of_user_statement(
    collection: &str,
    user_id: &str,
    keep: Option<&str>,
) -> DeleteStatement {
    let mut delete = Query::delete();
    delete
        .from_table(Sessions::Table)
        .and_where(Expr::col(Sessions::Collection).eq(collection))
        .and_where(Expr::col(Sessions::UserId).eq(user_id));
    if let Some(keep) = keep {
        delete.and_where(Expr::col(Sessions::Id).ne(keep));
    }
    delete
}
