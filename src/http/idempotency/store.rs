//! The stored answers of idempotent requests (`_lucent_idempotency_keys`), in the database so
//! every instance sees them.
//!
//! A key is claimed by inserting its row "in progress" (no status yet): the row's primary key is
//! what makes one of several concurrent duplicates, on one instance or several, the only one to
//! run. The claim carries a random token; only its holder stores the answer
//! ([`Store::complete`]) or lets the key go ([`Store::release`]). While it runs, its lease is
//! renewed ([`Store::renew`]); a claim whose lease has lapsed (its instance crashed) is taken
//! over by the next retry, by a compare-and-set on the token.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use crate::db::Database;
use crate::db::system::IdempotencyKeys as Keys;
use crate::schema::now;

/// How long an answer is kept.
pub const KEEP: Duration = Duration::hours(24);
/// How long a claim holds without renewal: a crashed instance's claim blocks its key (409) at
/// most this long.
pub const LEASE: Duration = Duration::seconds(60);
/// At most one prune of expired rows per instance per this long.
const PRUNE_EVERY: Duration = Duration::seconds(60);
/// Claims lost to a concurrent taker before the answer is "in progress" anyway.
const ATTEMPTS: usize = 3;

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub status: u16,
    /// The headers kept with it, by name.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A claim on a key: the right to run its request and store (or drop) the answer.
#[derive(Debug, Clone)]
pub struct Ticket {
    id: String,
    token: String,
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it.
    Claimed(Ticket),
    /// The same request was answered: this is its answer.
    Replay(Stored),
    /// The same request is running.
    InProgress,
    /// The key was used for another request.
    Mismatch,
}

/// The table, and when this instance last pruned it.
#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    pruned_at: Arc<AtomicI64>,
}

/// A row as read back after a claim found it taken.
struct Row {
    fingerprint: String,
    token: String,
    status: Option<i32>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
    lease_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            pruned_at: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Claims row `id` for a request with `fingerprint`, or says what holds it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn claim(&self, id: &str, fingerprint: &str) -> Result<Claim, DbErr> {
        for _ in 0..ATTEMPTS {
            let now = now();
            let token = uuid::Uuid::now_v7().simple().to_string();
            let mut insert = Query::insert();
            insert
                .into_table(Keys::Table)
                .columns([
                    Keys::Id,
                    Keys::Fingerprint,
                    Keys::Claim,
                    Keys::LeaseUntil,
                    Keys::ExpiresAt,
                ])
                .values_panic([
                    id.into(),
                    fingerprint.into(),
                    token.as_str().into(),
                    (now + LEASE).into(),
                    (now + KEEP).into(),
                ])
                .on_conflict(OnConflict::column(Keys::Id).do_nothing().to_owned());
            if self.db.write(&insert).await? == 1 {
                self.prune_now_and_then(now).await;
                return Ok(Claim::Claimed(Ticket {
                    id: id.to_string(),
                    token,
                }));
            }
            // Released or pruned since the insert: try again.
            let Some(row) = self.read(id).await? else {
                continue;
            };
            // An expired answer is gone, whatever request it was for.
            let expired = row.expires_at <= now;
            if !expired && row.fingerprint != fingerprint {
                return Ok(Claim::Mismatch);
            }
            if !expired && let Some(status) = row.status {
                return Ok(Claim::Replay(stored(status, row.headers, row.body)?));
            }
            if !expired && row.lease_until > now {
                return Ok(Claim::InProgress);
            }
            // Expired, or abandoned by a crashed instance: take it over, unless another retry
            // did first.
            if self
                .take_over(id, fingerprint, &row.token, &token, now)
                .await?
            {
                return Ok(Claim::Claimed(Ticket {
                    id: id.to_string(),
                    token,
                }));
            }
        }
        Ok(Claim::InProgress)
    }

    async fn read(&self, id: &str) -> Result<Option<Row>, DbErr> {
        let mut select = Query::select();
        select
            .columns([
                Keys::Fingerprint,
                Keys::Claim,
                Keys::Status,
                Keys::Headers,
                Keys::Body,
                Keys::LeaseUntil,
                Keys::ExpiresAt,
            ])
            .from(Keys::Table)
            .and_where(Expr::col(Keys::Id).eq(id));
        // The writer: the row was just written, perhaps by this instance's write queue.
        let row: Option<QueryResult> = self.db.writer().query_one(&select).await?;
        row.map(|row| {
            Ok(Row {
                fingerprint: row.try_get_by_index(0)?,
                token: row.try_get_by_index(1)?,
                status: row.try_get_by_index(2)?,
                headers: row.try_get_by_index(3)?,
                body: row.try_get_by_index(4)?,
                lease_until: row.try_get_by_index(5)?,
                expires_at: row.try_get_by_index(6)?,
            })
        })
        .transpose()
    }

    /// Replaces the claim `old` on row `id` by a fresh one; whether this call did.
    async fn take_over(
        &self,
        id: &str,
        fingerprint: &str,
        old: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let mut update = Query::update();
        update
            .table(Keys::Table)
            .value(Keys::Fingerprint, fingerprint)
            .value(Keys::Claim, token)
            .value(Keys::Status, Option::<i32>::None)
            .value(Keys::Headers, Option::<String>::None)
            .value(Keys::Body, Option::<Vec<u8>>::None)
            .value(Keys::LeaseUntil, now + LEASE)
            .value(Keys::ExpiresAt, now + KEEP)
            .and_where(Expr::col(Keys::Id).eq(id))
            .and_where(Expr::col(Keys::Claim).eq(old));
        Ok(self.db.write(&update).await? == 1)
    }

    /// Keeps `ticket`'s claim from lapsing for another [`LEASE`].
    ///
    /// # Errors
    /// Database failures.
    pub async fn renew(&self, ticket: &Ticket) -> Result<(), DbErr> {
        let mut update = Query::update();
        update
            .table(Keys::Table)
            .value(Keys::LeaseUntil, now() + LEASE)
            .and_where(Expr::col(Keys::Id).eq(&ticket.id))
            .and_where(Expr::col(Keys::Claim).eq(&ticket.token))
            .and_where(Expr::col(Keys::Status).is_null());
        self.db.write(&update).await.map(drop)
    }

    /// Stores the answer of `ticket`'s request, kept for [`KEEP`]. Returns whether the claim was
    /// still this one's (it is not if its lease lapsed and a retry took the key over).
    ///
    /// # Errors
    /// Database failures.
    pub async fn complete(&self, ticket: &Ticket, answer: &Stored) -> Result<bool, DbErr> {
        let now = now();
        let headers = serde_json::to_string(&answer.headers)
            .map_err(|e| DbErr::Custom(format!("answer headers: {e}")))?;
        let mut update = Query::update();
        update
            .table(Keys::Table)
            .value(Keys::Status, i32::from(answer.status))
            .value(Keys::Headers, headers)
            .value(Keys::Body, answer.body.clone())
            .value(Keys::LeaseUntil, now)
            .value(Keys::ExpiresAt, now + KEEP)
            .and_where(Expr::col(Keys::Id).eq(&ticket.id))
            .and_where(Expr::col(Keys::Claim).eq(&ticket.token));
        Ok(self.db.write(&update).await? == 1)
    }

    /// Lets the key of `ticket` go, unanswered: the next request with it runs.
    ///
    /// # Errors
    /// Database failures.
    pub async fn release(&self, ticket: &Ticket) -> Result<(), DbErr> {
        let mut delete = Query::delete();
        delete
            .from_table(Keys::Table)
            .and_where(Expr::col(Keys::Id).eq(&ticket.id))
            .and_where(Expr::col(Keys::Claim).eq(&ticket.token))
            .and_where(Expr::col(Keys::Status).is_null());
        self.db.write(&delete).await.map(drop)
    }

    /// Deletes expired answers, at most once per [`PRUNE_EVERY`] on this instance, when a new
    /// claim is made (as login attempts prune on a new row): the table holds a day of keys, not
    /// all of them. A failure is logged; the claim stands.
    async fn prune_now_and_then(&self, now: DateTime<Utc>) {
        let last = self.pruned_at.load(Ordering::Relaxed);
        let due = now.timestamp() - last >= PRUNE_EVERY.num_seconds();
        if !due
            || self
                .pruned_at
                .compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let mut prune = Query::delete();
        prune
            .from_table(Keys::Table)
            .and_where(Expr::col(Keys::ExpiresAt).lt(now));
        if let Err(e) = self.db.write(&prune).await {
            tracing::warn!(error = %e, "pruning expired idempotency keys failed");
        }
    }
}

fn stored(status: i32, headers: Option<String>, body: Option<Vec<u8>>) -> Result<Stored, DbErr> {
    let corrupt = |what: &str| DbErr::Custom(format!("a stored idempotent answer has {what}"));
    let headers = match headers {
        Some(text) => serde_json::from_str(&text).map_err(|_| corrupt("unreadable headers"))?,
        None => Vec::new(),
    };
    Ok(Stored {
        status: u16::try_from(status).map_err(|_| corrupt("a bad status"))?,
        headers,
        body: body.unwrap_or_default(),
    })
}
