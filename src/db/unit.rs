//! Where a record write goes: the shared write path (group-committed on SQLite, a short
//! transaction on PostgreSQL), or a transaction a caller holds open for several writes (a batch
//! request). Record operations take a [`Writes`] and neither know nor care which: the statements
//! of one operation are always written all together or not at all, and what must happen only
//! once they are committed ([`Writes::after_commit`]) happens then, never for a write that was
//! rolled back.

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, IsolationLevel,
    QueryResult, Statement, StatementBuilder, TransactionTrait,
};

use super::Database;

/// Tries of a multi-statement write on the shared path that keeps meeting a deadlock.
const TOGETHER_ATTEMPTS: u32 = 3;

/// The target of a record operation's statements and of the reads that must see the latest
/// writes.
#[derive(Clone, Copy)]
pub enum Writes<'a> {
    /// Each operation commits on its own (SQLite: in the next group commit).
    Shared(&'a Database),
    /// Operations join a transaction the caller commits or drops.
    Within(&'a Transaction),
}

/// Work to run once a transaction has committed.
type AfterCommit = Box<dyn FnOnce() + Send>;

/// A transaction held for several record operations ([`Database::begin`]): the work its
/// operations registered with [`Writes::after_commit`] runs when it commits, in the order it was
/// registered, and is dropped with it when it is rolled back or dropped.
pub struct Transaction {
    inner: DatabaseTransaction,
    after_commit: std::sync::Mutex<Vec<AfterCommit>>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transaction")
    }
}

impl std::ops::Deref for Transaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.inner
    }
}

impl From<DatabaseTransaction> for Transaction {
    /// A transaction opened elsewhere (a nested one, say) taking record operations.
    fn from(inner: DatabaseTransaction) -> Self {
        Self {
            inner,
            after_commit: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Transaction {
    /// Commits, then runs the registered work.
    ///
    /// # Errors
    /// The commit's (then nothing registered runs).
    pub async fn commit(self) -> Result<(), DbErr> {
        let after = self
            .after_commit
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.commit().await?;
        for work in after {
            work();
        }
        Ok(())
    }

    /// Rolls back; the registered work is dropped.
    ///
    /// # Errors
    /// The rollback's.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.inner.rollback().await
    }
}

impl std::fmt::Debug for Writes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writes::Shared(_) => "Writes::Shared",
            Writes::Within(_) => "Writes::Within",
        })
    }
}

impl Writes<'_> {
    pub fn backend(&self) -> DbBackend {
        match self {
            Writes::Shared(db) => db.backend(),
            Writes::Within(transaction) => transaction.inner.get_database_backend(),
        }
    }

    /// Executes one operation's statements all together or not at all; the rows each affected.
    ///
    /// # Errors
    /// The first failing statement's error (nothing of the operation is then written).
    pub async fn execute(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbErr> {
        self.run(statements, false)
            .await
            .map(|affected| affected.unwrap_or_default())
    }

    /// As [`Writes::execute`], for an operation on one existing row (an update, a delete): when
    /// the first statement affects no row (the row went meanwhile), nothing of the operation is
    /// written (its other statements, the events of a change that did not happen) and the
    /// answer is `None`.
    ///
    /// # Errors
    /// As [`Writes::execute`].
    pub async fn execute_if_found(
        &self,
        statements: Vec<Statement>,
    ) -> Result<Option<Vec<u64>>, DbErr> {
        self.run(statements, true).await
    }

    async fn run(
        &self,
        statements: Vec<Statement>,
        if_found: bool,
    ) -> Result<Option<Vec<u64>>, DbErr> {
        match self {
            Writes::Shared(db) => db.write_operation(statements, if_found).await,
            // SQLite undoes a failing statement by itself and keeps the transaction (a constraint
            // violation aborts the statement only), so one statement needs no savepoint; sparing
            // its two commands halves what a batch of creates costs (each command is a round
            // trip to the connection's thread). PostgreSQL aborts the whole transaction instead.
            Writes::Within(transaction)
                if statements.len() == 1 && self.backend() == DbBackend::Sqlite =>
            {
                let mut statements = statements;
                let statement = statements.pop().expect("one statement");
                let affected = transaction
                    .inner
                    .execute_raw(statement)
                    .await?
                    .rows_affected();
                Ok((!if_found || affected > 0).then(|| vec![affected]))
            }
            Writes::Within(transaction) => {
                all_or_nothing(&transaction.inner, statements, if_found).await?
            }
        }
    }

    /// Runs `work` once the statements executed so far are committed: now on the shared path
    /// (call it after [`Writes::execute`] succeeded), at the commit of a held transaction, which
    /// drops it if it rolls back.
    pub fn after_commit(&self, work: impl FnOnce() + Send + 'static) {
        match self {
            Writes::Shared(_) => work(),
            Writes::Within(transaction) => transaction
                .after_commit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Box::new(work)),
        }
    }

    /// Builds `statement` for this engine.
    pub fn build<S: StatementBuilder>(&self, statement: &S) -> Statement {
        self.backend().build(statement)
    }

    /// A read that sees every write made so far (the writer's, or the open transaction's).
    ///
    /// # Errors
    /// The statement's.
    pub async fn query_one<S: StatementBuilder>(
        &self,
        statement: &S,
    ) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Writes::Shared(db) => db.writer().query_one(statement).await,
            Writes::Within(transaction) => transaction.inner.query_one(statement).await,
        }
    }

    /// As [`Writes::query_one`], every row.
    ///
    /// # Errors
    /// The statement's.
    pub async fn query_all<S: StatementBuilder>(
        &self,
        statement: &S,
    ) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Writes::Shared(db) => db.writer().query_all(statement).await,
            Writes::Within(transaction) => transaction.inner.query_all(statement).await,
        }
    }
}

/// Runs `statements` under one savepoint of `connection`'s open transaction: all kept, or all
/// rolled back (the transaction itself stays usable); also rolled back, answering `None`, when
/// `if_found` and the first statement affected no row. The outer `Err` is a failure of the
/// savepoint commands themselves, which leaves the transaction unusable.
pub(super) async fn all_or_nothing<C: ConnectionTrait>(
    connection: &C,
    statements: Vec<Statement>,
    if_found: bool,
) -> Result<Result<Option<Vec<u64>>, DbErr>, DbErr> {
    connection
        .execute_unprepared("SAVEPOINT lucent_write")
        .await?;
    let mut affected = Vec::with_capacity(statements.len());
    for statement in statements {
        match connection.execute_raw(statement).await {
            Ok(done) => {
                affected.push(done.rows_affected());
                if if_found && affected == [0] {
                    connection
                        .execute_unprepared("ROLLBACK TO lucent_write; RELEASE lucent_write")
                        .await?;
                    return Ok(Ok(None));
                }
            }
            Err(error) => {
                connection
                    .execute_unprepared("ROLLBACK TO lucent_write; RELEASE lucent_write")
                    .await?;
                return Ok(Err(error));
            }
        }
    }
    connection
        .execute_unprepared("RELEASE lucent_write")
        .await?;
    Ok(Ok(Some(affected)))
}

impl Database {
    /// Executes record-write statements all together or not at all, group-committed on SQLite;
    /// the rows each affected, once they are durable.
    ///
    /// # Errors
    /// The first failing statement's error (constraint violations included); nothing is then
    /// written.
    pub async fn write_all(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbErr> {
        self.write_operation(statements, false)
            .await
            .map(|affected| affected.unwrap_or_default())
    }

    /// [`Database::write_all`]; with `if_found`, nothing is written (and the answer is `None`)
    /// when the first statement affects no row.
    async fn write_operation(
        &self,
        mut statements: Vec<Statement>,
        if_found: bool,
    ) -> Result<Option<Vec<u64>>, DbErr> {
        if let Some(queue) = &self.queue {
            return queue.execute(statements, if_found).await;
        }
        if statements.len() == 1 {
            let statement = statements.pop().expect("one statement");
            let done = self.write.execute_raw(statement).await?;
            let affected = done.rows_affected();
            return Ok((!if_found || affected > 0).then(|| vec![affected]));
        }
        // Several statements hold row locks together: one may deadlock with a batch (or another
        // such write) that locks the same rows in another order, and is then tried again.
        let mut attempt = 1;
        loop {
            match self.write_together(&statements, if_found).await {
                Err(error)
                    if attempt < TOGETHER_ATTEMPTS && super::is_transient_conflict(&error) =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn write_together(
        &self,
        statements: &[Statement],
        if_found: bool,
    ) -> Result<Option<Vec<u64>>, DbErr> {
        let transaction = self.write.begin().await?;
        let mut affected = Vec::with_capacity(statements.len());
        for statement in statements {
            affected.push(
                transaction
                    .execute_raw(statement.clone())
                    .await?
                    .rows_affected(),
            );
            if if_found && affected == [0] {
                transaction.rollback().await?;
                return Ok(None);
            }
        }
        transaction.commit().await?;
        Ok(Some(affected))
    }

    /// Opens a transaction on the writer for several record operations ([`Writes::Within`]).
    /// On SQLite it holds the one writer connection (group commits wait) until it is committed
    /// or dropped: prepare what can be prepared before opening it.
    ///
    /// # Errors
    /// When no writer connection can be had.
    pub async fn begin(&self) -> Result<Transaction, DbErr> {
        Ok(Transaction {
            inner: self.write.begin().await?,
            after_commit: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Opens a read-only transaction that sees the database as it was when it began, for reads
    /// spread over many statements that must agree with each other (an export):
    /// `REPEATABLE READ READ ONLY` on PostgreSQL; on SQLite a deferred transaction on the writer
    /// connection, whose first read fixes its view of the WAL (other processes' writes go on).
    ///
    /// # Errors
    /// When no connection can be had.
    pub async fn snapshot(&self) -> Result<DatabaseTransaction, DbErr> {
        match self.backend {
            DbBackend::Postgres => {
                self.write
                    .begin_with_config(
                        Some(IsolationLevel::RepeatableRead),
                        Some(AccessMode::ReadOnly),
                    )
                    .await
            }
            _ => self.write.begin().await,
        }
    }
}
