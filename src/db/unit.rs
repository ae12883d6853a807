//! Where a record write goes: the shared write path (group-committed on SQLite, a short
//! transaction on PostgreSQL), or a transaction a caller holds open for several writes (a batch
//! request). Record operations take a [`Writes`] and neither know nor care which: the statements
//! of one operation are always written all together or not at all.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult, Statement,
    StatementBuilder, TransactionTrait,
};

use super::Database;

/// The target of a record operation's statements and of the reads that must see the latest
/// writes.
#[derive(Clone, Copy)]
pub enum Writes<'a> {
    /// Each operation commits on its own (SQLite: in the next group commit).
    Shared(&'a Database),
    /// Operations join a transaction the caller commits or drops.
    Within(&'a DatabaseTransaction),
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
            Writes::Within(transaction) => transaction.get_database_backend(),
        }
    }

    /// Executes one operation's statements all together or not at all; the rows each affected.
    ///
    /// # Errors
    /// The first failing statement's error (nothing of the operation is then written).
    pub async fn execute(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbErr> {
        match self {
            Writes::Shared(db) => db.write_all(statements).await,
            Writes::Within(transaction) => all_or_nothing(*transaction, statements).await?,
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
            Writes::Within(transaction) => transaction.query_one(statement).await,
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
            Writes::Within(transaction) => transaction.query_all(statement).await,
        }
    }
}

/// Runs `statements` under one savepoint of `connection`'s open transaction: all kept, or all
/// rolled back (the transaction itself stays usable). The outer `Err` is a failure of the
/// savepoint commands themselves, which leaves the transaction unusable.
pub(super) async fn all_or_nothing<C: ConnectionTrait>(
    connection: &C,
    statements: Vec<Statement>,
) -> Result<Result<Vec<u64>, DbErr>, DbErr> {
    connection
        .execute_unprepared("SAVEPOINT lucent_write")
        .await?;
    let mut affected = Vec::with_capacity(statements.len());
    for statement in statements {
        match connection.execute_raw(statement).await {
            Ok(done) => affected.push(done.rows_affected()),
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
    Ok(Ok(affected))
}

impl Database {
    /// Executes record-write statements all together or not at all, group-committed on SQLite;
    /// the rows each affected, once they are durable.
    ///
    /// # Errors
    /// The first failing statement's error (constraint violations included); nothing is then
    /// written.
    pub async fn write_all(&self, mut statements: Vec<Statement>) -> Result<Vec<u64>, DbErr> {
        if let Some(queue) = &self.queue {
            return queue.execute(statements).await;
        }
        if statements.len() == 1 {
            let statement = statements.pop().expect("one statement");
            let done = self.write.execute_raw(statement).await?;
            return Ok(vec![done.rows_affected()]);
        }
        let transaction = self.write.begin().await?;
        let mut affected = Vec::with_capacity(statements.len());
        for statement in statements {
            affected.push(transaction.execute_raw(statement).await?.rows_affected());
        }
        transaction.commit().await?;
        Ok(affected)
    }

    /// Opens a transaction on the writer for several record operations ([`Writes::Within`]).
    /// On SQLite it holds the one writer connection (group commits wait) until it is committed
    /// or dropped: prepare what can be prepared before opening it.
    ///
    /// # Errors
    /// When no writer connection can be had.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.write.begin().await
    }
}
