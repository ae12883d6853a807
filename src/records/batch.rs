//! Batches: creates, updates and deletes run in ONE transaction, each through exactly the create,
//! update and delete of a single request (its rules, validation and answer), all written or none.
//!
//! The transaction holds a writer (on SQLite THE writer: group commits wait for it), so what can
//! be done before it opens is: the argon2 work of account passwords ([`Prepared`]: a new
//! password's hash, the check of the current one), done first with the hashing pool, never while
//! the transaction is open. What is left inside is statements and in-memory checks, bounded on
//! SQLite by the writer's time limit (`database.statement_timeout`, counted from `BEGIN`).
//!
//! On PostgreSQL concurrent writers lock rows: the rows a batch updates or deletes are locked
//! first, in one order for everyone (collection, then id), so two batches touching the same
//! documents in other orders queue instead of deadlocking; a deadlock or serialization failure
//! left (a row locked through a relation, a cascade) is retried with the whole batch a few times.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sea_orm::DbBackend;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Order, Query};
use serde_json::Value as Json;

use super::{Doc, Error, Records, Result};
use crate::access::Caller;
use crate::auth::Principal;
use crate::auth::password::check_policy;
use crate::db::{Writes, is_transient_conflict};
use crate::schema::{FieldRole, doc_id};

/// Attempts of a batch that meets a deadlock or a serialization failure (PostgreSQL).
const ATTEMPTS: u32 = 5;
/// The body key of an account's current password (as `body` reads it).
const OLD_PASSWORD: &str = "oldPassword";

/// One write of a batch: what `POST /api/C`, `PATCH /api/C/:id` or `DELETE /api/C/:id` would do.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Create {
        collection: String,
        body: Json,
    },
    Update {
        collection: String,
        id: String,
        body: Json,
    },
    Delete {
        collection: String,
        id: String,
    },
}

impl Operation {
    pub fn collection(&self) -> &str {
        match self {
            Operation::Create { collection, .. }
            | Operation::Update { collection, .. }
            | Operation::Delete { collection, .. } => collection,
        }
    }
}

/// How an operation changed its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

/// What one operation of a committed batch did: which document changed how (what an outbox
/// needs), and the document as the single route answers it to this caller.
#[derive(Debug, Clone)]
pub struct Written {
    pub change: Change,
    pub collection: String,
    pub id: String,
    pub doc: Doc,
}

/// Why a batch wrote nothing: the operation that failed (`None`: the transaction itself, e.g.
/// its commit), and its error.
#[derive(Debug)]
pub struct Failed {
    pub index: Option<usize>,
    pub error: Error,
}

/// The argon2 work of one operation, done before its transaction: the new password with its
/// hash, and the current password given with the stored hash it was checked against.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    new_password: Option<(String, String)>,
    current_password: Option<(String, String, bool)>,
}

impl Prepared {
    /// The hash made for `password`, if it was made beforehand.
    pub(super) fn hash_of(&self, password: &str) -> Option<&str> {
        self.new_password
            .as_ref()
            .filter(|(given, _)| given == password)
            .map(|(_, hash)| hash.as_str())
    }

    /// Whether `given` matches `stored`, if that was checked beforehand.
    pub(super) fn checked(&self, given: &str, stored: Option<&str>) -> Option<bool> {
        self.current_password
            .as_ref()
            .filter(|(g, hash, _)| g == given && Some(hash.as_str()) == stored)
            .map(|(_, _, matches)| *matches)
    }
}

impl Records {
    /// Runs `operations` in one transaction, each as its single route would (the caller's
    /// credentials, the rules, the validation): every document written, or none.
    ///
    /// # Errors
    /// The first failing operation's index and error (nothing is then written); `Conflict` when
    /// concurrent writers kept deadlocking with it (PostgreSQL; 5 attempts).
    pub async fn batch(
        &self,
        principal: &Principal,
        operations: &[Operation],
    ) -> Result<Vec<Written>, Failed> {
        let prepared = self.prepare(principal, operations).await?;
        let mut attempt = 1;
        loop {
            let result = self.attempt(principal, operations, &prepared).await;
            match result {
                Err(failed) if failed.error.is_transient_conflict() => {
                    if attempt == ATTEMPTS {
                        tracing::warn!(error = %failed.error, "a batch kept conflicting with concurrent writes");
                        return Err(Failed {
                            index: failed.index,
                            error: Error::Conflict(
                                "concurrent writes kept conflicting with this batch; try again"
                                    .into(),
                            ),
                        });
                    }
                    tracing::debug!(error = %failed.error, attempt, "batch conflicted; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// One try: the transaction, the row locks, every operation, the commit.
    async fn attempt(
        &self,
        principal: &Principal,
        operations: &[Operation],
        prepared: &[Prepared],
    ) -> Result<Vec<Written>, Failed> {
        let whole = |error: Error| Failed { index: None, error };
        let transaction = self.db.begin().await.map_err(|e| whole(e.into()))?;
        let writes = Writes::Within(&transaction);
        let mut written = Vec::with_capacity(operations.len());
        let mut failure = self.lock_targets(writes, operations).await.err().map(whole);
        if failure.is_none() {
            for (index, (operation, prepared)) in operations.iter().zip(prepared).enumerate() {
                match self.apply(writes, principal, operation, prepared).await {
                    Ok(done) => written.push(done),
                    Err(error) => {
                        failure = Some(Failed {
                            index: Some(index),
                            error,
                        });
                        break;
                    }
                }
            }
        }
        if let Some(failed) = failure {
            // Given back now rather than when dropped: on SQLite the writer is waited for.
            if let Err(e) = transaction.rollback().await {
                tracing::warn!(error = %e, "rolling a failed batch back failed");
            }
            return Err(failed);
        }
        transaction.commit().await.map_err(|e| whole(e.into()))?;
        Ok(written)
    }

    async fn apply(
        &self,
        writes: Writes<'_>,
        principal: &Principal,
        operation: &Operation,
        prepared: &Prepared,
    ) -> Result<Written> {
        let (change, id, doc) = match operation {
            Operation::Create { collection, body } => {
                let stored = self
                    .create_in(writes, principal, collection, body, Some(prepared))
                    .await?;
                let id = doc_id(&stored).to_string();
                (
                    Change::Created,
                    id,
                    self.render(principal, collection, stored)?,
                )
            }
            Operation::Update {
                collection,
                id,
                body,
            } => {
                let doc = self
                    .update_in(writes, principal, collection, id, body, Some(prepared))
                    .await?;
                (Change::Updated, id.clone(), doc)
            }
            Operation::Delete { collection, id } => {
                let doc = self.delete_in(writes, principal, collection, id).await?;
                (Change::Deleted, id.clone(), doc)
            }
        };
        Ok(Written {
            change,
            collection: operation.collection().to_string(),
            id,
            doc,
        })
    }

    /// PostgreSQL: locks the rows the batch updates or deletes, by collection then id, so that
    /// batches over the same documents take their locks in one order. (SQLite has one writer.)
    async fn lock_targets(&self, writes: Writes<'_>, operations: &[Operation]) -> Result<()> {
        if writes.backend() != DbBackend::Postgres {
            return Ok(());
        }
        let mut targets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for operation in operations {
            if let Operation::Update { collection, id, .. } | Operation::Delete { collection, id } =
                operation
                && self.schema.get(collection).is_some()
            {
                targets.entry(collection).or_default().insert(id);
            }
        }
        for (slug, ids) in targets {
            let mut select = Query::select();
            select
                .column(Alias::new("id"))
                .from(Alias::new(slug))
                .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
                .order_by(Alias::new("id"), Order::Asc)
                .lock(LockType::NoKeyUpdate);
            writes.query_all(&select).await?;
        }
        Ok(())
    }

    /// The argon2 work of every operation that sets or checks an account password, done before
    /// the transaction, a few at a time. Only for operations whose rules (as far as they can be
    /// told without a transaction) let them through: a batch the caller may not make costs no
    /// hashing. Whatever is not prepared here is done inside, as a single request would.
    async fn prepare(
        &self,
        principal: &Principal,
        operations: &[Operation],
    ) -> Result<Vec<Prepared>, Failed> {
        let mut prepared: Vec<Prepared> = operations.iter().map(|_| Prepared::default()).collect();
        let mut hashes = Vec::new();
        let mut checks = Vec::new();
        for (index, operation) in operations.iter().enumerate() {
            let plan = self
                .password_work(principal, operation)
                .await
                .map_err(|error| Failed {
                    index: Some(index),
                    error,
                })?;
            if let Some(password) = plan.hash {
                hashes.push((index, password));
            }
            if let Some(check) = plan.check {
                checks.push((index, check));
            }
        }
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        let fail = |index: usize| {
            move |error: Error| Failed {
                index: Some(index),
                error,
            }
        };
        for chunk in hashes.chunks(parallel) {
            let mut running = tokio::task::JoinSet::new();
            for (index, password) in chunk.iter().cloned() {
                let passwords = self.passwords.clone();
                running.spawn(
                    async move { (index, password.clone(), passwords.hash(password).await) },
                );
            }
            while let Some(done) = running.join_next().await {
                let (index, password, hash) = done.map_err(|e| Failed {
                    index: None,
                    error: Error::Internal(e.to_string()),
                })?;
                let hash = hash.map_err(|e| fail(index)(e.into()))?;
                prepared[index].new_password = Some((password, hash));
            }
        }
        for (index, (given, stored)) in checks {
            let matches = self
                .passwords
                .verify(given.clone(), Some(stored.clone()))
                .await
                .map_err(|e| fail(index)(e.into()))?;
            prepared[index].current_password = Some((given, stored, matches));
        }
        Ok(prepared)
    }

    /// Which argon2 work `operation` will need: the new password to hash (one the policy
    /// accepts), and the current password to check against the stored hash (an account changing
    /// its own credentials). Reads the document to update outside the transaction.
    async fn password_work(
        &self,
        principal: &Principal,
        operation: &Operation,
    ) -> Result<PasswordWork> {
        let mut work = PasswordWork::default();
        let (slug, id, body) = match operation {
            Operation::Create { collection, body } => (collection, None, body),
            Operation::Update {
                collection,
                id,
                body,
            } => (collection, Some(id), body),
            Operation::Delete { .. } => return Ok(work),
        };
        let Ok((collection, plan, policy)) = self.collection(slug) else {
            return Ok(work);
        };
        let Some(field) = collection
            .fields
            .iter()
            .find(|f| f.role == FieldRole::Password)
        else {
            return Ok(work);
        };
        let Some(data) = body.as_object() else {
            return Ok(work);
        };
        let caller = Caller::new(principal, &self.policies);
        if caller.require_scope("write").is_err() {
            return Ok(work);
        }
        let new_password = data
            .get(&field.name)
            .and_then(Json::as_str)
            .filter(|p| check_policy(&self.policy, p, &field.name).is_empty());
        let Some(id) = id else {
            if caller.allows(&policy.create, None, Some(data)) {
                work.hash = new_password.map(str::to_string);
            }
            return Ok(work);
        };
        let given = data.get(OLD_PASSWORD).and_then(Json::as_str);
        if new_password.is_none() && given.is_none() {
            return Ok(work);
        }
        let stored = match self
            .load_readable(collection, plan, policy, &caller, id, None)
            .await
        {
            Ok(stored) => stored,
            Err(Error::NotFound) => return Ok(work),
            Err(error) => return Err(error),
        };
        if !caller.allows(&policy.update, Some(&stored), Some(data)) {
            return Ok(work);
        }
        work.hash = new_password.map(str::to_string);
        if let (Some(given), Some(hash)) = (given, stored.get(&field.name).and_then(Json::as_str))
            && principal.is_account(slug, id)
        {
            work.check = Some((given.to_string(), hash.to_string()));
        }
        Ok(work)
    }
}

#[derive(Debug, Default)]
struct PasswordWork {
    hash: Option<String>,
    check: Option<(String, String)>,
}

/// A short wait before retrying, longer each time and spread so that the batches that collided
/// do not collide again.
fn backoff(attempt: u32) -> Duration {
    let spread: u64 = rand::random_range(0..10);
    Duration::from_millis(u64::from(attempt) * 10 + spread)
}

impl Error {
    /// A deadlock or serialization failure: the same work may succeed when tried again.
    fn is_transient_conflict(&self) -> bool {
        matches!(self, Error::Database(e) if is_transient_conflict(e))
    }
}
