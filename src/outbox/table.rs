//! `_lucent_outbox`, read and written: the insert a write adds to its own statements, the
//! worker's claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances never claim one row
//! together), what an attempt's outcome writes, and what `lucent outbox` and the metrics read.
//!
//! A claim sets `claim` to a new id and moves `next_at` to when the claim lapses: until then no
//! other worker takes the row, and every outcome is written only `WHERE claim = <that id>`, so a
//! worker whose claim lapsed (a stalled process) cannot overwrite a newer attempt's outcome.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement};

use crate::db::Database;
use crate::db::system::Outbox;
use crate::schema::now;

/// What a row delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Webhook,
    Email,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Email => "email",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Webhook, Kind::Email]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

const PENDING: &str = "pending";
const FAILED: &str = "failed";

/// Longest `last_error` kept.
const ERROR_CHARS: usize = 1000;

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub kind: Kind,
    pub target: String,
    pub event: String,
    pub payload: String,
}

impl NewDelivery {
    /// The insert, for the statements of the write that causes it.
    pub fn insert(&self, backend: DbBackend) -> Statement {
        let now = now();
        let mut insert = Query::insert();
        insert
            .into_table(Outbox::Table)
            .columns([
                Outbox::Id,
                Outbox::Kind,
                Outbox::Target,
                Outbox::Event,
                Outbox::Payload,
                Outbox::State,
                Outbox::Attempts,
                Outbox::NextAt,
                Outbox::CreatedAt,
            ])
            .values_panic([
                uuid::Uuid::now_v7().to_string().into(),
                self.kind.as_str().into(),
                self.target.clone().into(),
                self.event.clone().into(),
                self.payload.clone().into(),
                PENDING.into(),
                0i64.into(),
                now.into(),
                now.into(),
            ]);
        backend.build(&insert)
    }
}

/// A row a worker holds until its claim lapses.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub claim: String,
    pub kind: Kind,
    pub target: String,
    pub event: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub prepared: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Claimed {
    fn from_row(row: &QueryResult, claim: &str) -> Result<Option<Self>, DbErr> {
        let kind: String = row.try_get("", "kind")?;
        let Some(kind) = Kind::parse(&kind) else {
            return Ok(None);
        };
        let attempts: i64 = row.try_get("", "attempts")?;
        Ok(Some(Self {
            id: row.try_get("", "id")?,
            claim: claim.to_string(),
            kind,
            target: row.try_get("", "target")?,
            event: row.try_get("", "event")?,
            payload: row.try_get("", "payload")?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            prepared: row.try_get("", "prepared")?,
            created_at: row.try_get("", "created_at")?,
        }))
    }
}

/// Claims up to `limit` due rows until `until`, oldest due first.
///
/// # Errors
/// Database failures.
pub async fn claim(db: &Database, limit: u64, until: DateTime<Utc>) -> Result<Vec<Claimed>, DbErr> {
    let backend = db.backend();
    let claim = uuid::Uuid::now_v7().to_string();
    let mut due = Query::select();
    due.column(Outbox::Id)
        .from(Outbox::Table)
        .and_where(Expr::col(Outbox::State).eq(PENDING))
        .and_where(Expr::col(Outbox::NextAt).lte(now()))
        .order_by(Outbox::NextAt, Order::Asc)
        .limit(limit);
    if backend == DbBackend::Postgres {
        // Rows another instance is claiming right now are skipped, not waited for.
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let mut update = Query::update();
    update
        .table(Outbox::Table)
        .value(Outbox::Claim, claim.clone())
        .value(Outbox::NextAt, until)
        .and_where(Expr::col(Outbox::Id).in_subquery(due))
        .returning(Query::returning().columns([
            Outbox::Id,
            Outbox::Kind,
            Outbox::Target,
            Outbox::Event,
            Outbox::Payload,
            Outbox::Attempts,
            Outbox::Prepared,
            Outbox::CreatedAt,
        ]));
    let rows = db.writer().query_all(&update).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(row) = Claimed::from_row(row, &claim)? {
            claimed.push(row);
        }
    }
    claimed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(claimed)
}

/// Deletes delivered rows (still held by their claims): sent rows are not kept.
///
/// # Errors
/// Database failures.
pub async fn delivered(db: &Database, rows: &[(String, String)]) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    // The claims of one worker are its own: a row it claimed twice (its first claim lapsed) is
    // delivered either way.
    let mut claims: Vec<&str> = rows.iter().map(|(_, claim)| claim.as_str()).collect();
    claims.sort_unstable();
    claims.dedup();
    let mut delete = Query::delete();
    delete
        .from_table(Outbox::Table)
        .and_where(Expr::col(Outbox::Id).is_in(rows.iter().map(|(id, _)| id.as_str())))
        .and_where(Expr::col(Outbox::Claim).is_in(claims));
    db.writer().execute(&delete).await.map(drop)
}

/// Records a failed attempt: the row is due again at `next` (released), or failed for good
/// when `next` is `None`.
///
/// # Errors
/// Database failures.
pub async fn attempt_failed(
    db: &Database,
    row: &Claimed,
    next: Option<DateTime<Utc>>,
    error: &str,
) -> Result<(), DbErr> {
    let error: String = error.chars().take(ERROR_CHARS).collect();
    let mut update = Query::update();
    update
        .table(Outbox::Table)
        .value(Outbox::Attempts, i64::from(row.attempts.saturating_add(1)))
        .value(Outbox::LastError, error)
        .value(Outbox::Claim, Option::<String>::None)
        .and_where(Expr::col(Outbox::Id).eq(row.id.as_str()))
        .and_where(Expr::col(Outbox::Claim).eq(row.claim.as_str()));
    match next {
        Some(at) => update.value(Outbox::NextAt, at),
        None => update.value(Outbox::State, FAILED),
    };
    db.writer().execute(&update).await.map(drop)
}

/// Deletes a row there turned out to be nothing to deliver for (a mail to no account).
///
/// # Errors
/// Database failures.
pub async fn dropped(db: &Database, row: &Claimed) -> Result<(), DbErr> {
    delivered(db, &[(row.id.clone(), row.claim.clone())]).await
}

/// Stores what this attempt leaves to undo, through `connection` (the transaction of the
/// attempt's own writes); false when the claim has lapsed (then the transaction must not
/// commit).
///
/// # Errors
/// Database failures.
pub async fn set_prepared<C: ConnectionTrait>(
    connection: &C,
    row: &Claimed,
    prepared: Option<&str>,
) -> Result<bool, DbErr> {
    let mut update = Query::update();
    update
        .table(Outbox::Table)
        .value(Outbox::Prepared, prepared.map(str::to_string))
        .and_where(Expr::col(Outbox::Id).eq(row.id.as_str()))
        .and_where(Expr::col(Outbox::Claim).eq(row.claim.as_str()));
    Ok(connection.execute(&update).await?.rows_affected() == 1)
}

/// Makes every claimed row due now: at the start of a SQLite server (the only one), whose
/// claims can only be those of a process that is gone.
///
/// # Errors
/// Database failures.
pub async fn release_claims(db: &Database) -> Result<u64, DbErr> {
    let mut update = Query::update();
    update
        .table(Outbox::Table)
        .value(Outbox::Claim, Option::<String>::None)
        .value(Outbox::NextAt, now())
        .and_where(Expr::col(Outbox::State).eq(PENDING))
        .and_where(Expr::col(Outbox::Claim).is_not_null());
    Ok(db.writer().execute(&update).await?.rows_affected())
}

/// Requeues one row (pending or failed) or every failed row: due now, attempts from zero.
/// Returns how many rows were requeued.
///
/// # Errors
/// Database failures.
pub async fn requeue(db: &Database, which: Requeue<'_>) -> Result<u64, DbErr> {
    let mut update = Query::update();
    update
        .table(Outbox::Table)
        .value(Outbox::State, PENDING)
        .value(Outbox::Attempts, 0i64)
        .value(Outbox::NextAt, now())
        .value(Outbox::Claim, Option::<String>::None);
    match which {
        Requeue::One(id) => update.and_where(Expr::col(Outbox::Id).eq(id)),
        Requeue::Failed => update.and_where(Expr::col(Outbox::State).eq(FAILED)),
    };
    Ok(db.writer().execute(&update).await?.rows_affected())
}

/// What `lucent outbox retry` requeues.
#[derive(Debug, Clone, Copy)]
pub enum Requeue<'a> {
    One(&'a str),
    Failed,
}

/// Pending and failed rows of one kind and target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    pub kind: String,
    pub target: String,
    pub pending: i64,
    pub failed: i64,
    /// When the oldest row still here was written.
    pub oldest: Option<DateTime<Utc>>,
}

/// The outbox by kind and target.
///
/// # Errors
/// Database failures.
pub async fn status(db: &Database) -> Result<Vec<TargetStatus>, DbErr> {
    let mut select = Query::select();
    select
        .columns([Outbox::Kind, Outbox::Target, Outbox::State])
        .expr(Expr::col(Outbox::Id).count())
        .expr(Expr::col(Outbox::CreatedAt).min())
        .from(Outbox::Table)
        .group_by_columns([Outbox::Kind, Outbox::Target, Outbox::State])
        .order_by(Outbox::Kind, Order::Desc)
        .order_by(Outbox::Target, Order::Asc);
    let rows = db.writer().query_all(&select).await?;
    let mut targets: Vec<TargetStatus> = Vec::new();
    for row in rows {
        let kind: String = row.try_get_by_index(0)?;
        let target: String = row.try_get_by_index(1)?;
        let state: String = row.try_get_by_index(2)?;
        let count: i64 = row.try_get_by_index(3)?;
        let oldest = oldest_of(&row, db.backend())?;
        let entry = match targets.last_mut() {
            Some(last) if last.kind == kind && last.target == target => last,
            _ => {
                targets.push(TargetStatus {
                    kind,
                    target,
                    pending: 0,
                    failed: 0,
                    oldest: None,
                });
                targets.last_mut().expect("just pushed")
            }
        };
        if state == FAILED {
            entry.failed += count;
        } else {
            entry.pending += count;
        }
        entry.oldest = match (entry.oldest, oldest) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
    }
    Ok(targets)
}

/// `MIN(created_at)`: SQLite gives an aggregate of a datetime column back as text.
fn oldest_of(row: &QueryResult, backend: DbBackend) -> Result<Option<DateTime<Utc>>, DbErr> {
    if backend == DbBackend::Sqlite {
        let text: Option<String> = row.try_get_by_index(4)?;
        return Ok(text.and_then(|t| crate::schema::parse_time(&t)));
    }
    row.try_get_by_index(4)
}

/// Rows one failed row of the outbox shows in `lucent outbox status`.
#[derive(Debug, Clone)]
pub struct FailedRow {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub event: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The failed rows, oldest first, at most `limit`.
///
/// # Errors
/// Database failures.
pub async fn failed(db: &Database, limit: u64) -> Result<Vec<FailedRow>, DbErr> {
    let mut select = Query::select();
    select
        .columns([
            Outbox::Id,
            Outbox::Kind,
            Outbox::Target,
            Outbox::Event,
            Outbox::Attempts,
            Outbox::LastError,
            Outbox::CreatedAt,
        ])
        .from(Outbox::Table)
        .and_where(Expr::col(Outbox::State).eq(FAILED))
        .order_by(Outbox::CreatedAt, Order::Asc)
        .limit(limit);
    let rows = db.writer().query_all(&select).await?;
    rows.iter()
        .map(|row| {
            Ok(FailedRow {
                id: row.try_get("", "id")?,
                kind: row.try_get("", "kind")?,
                target: row.try_get("", "target")?,
                event: row.try_get("", "event")?,
                attempts: row.try_get("", "attempts")?,
                last_error: row.try_get("", "last_error")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// Pending and failed rows by kind, for `lucent_outbox_backlog`.
///
/// # Errors
/// Database failures.
pub async fn backlog(db: &Database) -> Result<Vec<(String, String, i64)>, DbErr> {
    let mut select = Query::select();
    select
        .columns([Outbox::Kind, Outbox::State])
        .expr(Expr::col(Outbox::Id).count())
        .from(Outbox::Table)
        .group_by_columns([Outbox::Kind, Outbox::State]);
    // Not on the record readers: a scrape is not a record read (their statement counter,
    // `lucent_db_read_statements_total`, stays a count of what record requests cost).
    let rows = db.read_auth(async |c| c.query_all(&select).await).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
            ))
        })
        .collect()
}
