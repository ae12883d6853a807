//! The database: connections per engine, DDL, schema migrations, and the SQL of record operations. Every SQL
//! statement is built with sea-query from identifiers of the checked schema, values bound.

mod batch;
mod ddl;
pub mod migrate;
mod rows;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use batch::WriteQueue;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database as SeaDatabase, DatabaseConnection, DbBackend, DbErr,
    SqlxSqliteConnector, StatementBuilder,
};

pub use ddl::{datetime_type, table_statements};
pub use rows::{Column, decode_row, to_sql_value};

/// A connection to the configured database.
///
/// SQLite gets two pools: one writer connection (so writes queue in-process instead of failing with
/// `database is locked`) and several read-only connections, which WAL lets run beside the writer.
/// Other engines use one pool for both.
#[derive(Clone, Debug)]
pub struct Database {
    read: DatabaseConnection,
    write: DatabaseConnection,
    backend: DbBackend,
    /// SQLite: group commit in front of the writer.
    queue: Option<WriteQueue>,
}

impl Database {
    /// Connects to `url` (`sqlite://...`, `postgres://...`, `mysql://...`), creating a SQLite
    /// file and its folder when missing.
    ///
    /// # Errors
    /// When the database cannot be reached or opened.
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        if url.starts_with("sqlite:") {
            return Self::connect_sqlite(url).await;
        }
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(16)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        let connection = SeaDatabase::connect(options).await?;
        let backend = connection.get_database_backend();
        Ok(Self {
            read: connection.clone(),
            write: connection,
            backend,
            queue: None,
        })
    }

    async fn connect_sqlite(url: &str) -> Result<Self, DbErr> {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a killed process without losing a committed write; only a
            // power loss can roll back the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        // Readers open on first use (after startup has refreshed the planner's statistics) and
        // are replaced every few minutes: SQLite loads statistics when a connection opens.
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .max_lifetime(Duration::from_secs(300))
            .connect_lazy_with(options.read_only(true));
        let write = SqlxSqliteConnector::from_sqlx_sqlite_pool(writer);
        Ok(Self {
            read: SqlxSqliteConnector::from_sqlx_sqlite_pool(readers),
            queue: Some(WriteQueue::start(write.clone())),
            write,
            backend: DbBackend::Sqlite,
        })
    }

    /// Executes a record write (insert, update, delete), group-committed on SQLite; returns the
    /// rows it affected once it is durable.
    ///
    /// # Errors
    /// The statement's error (constraint violations included).
    pub async fn write<S: StatementBuilder>(&self, statement: &S) -> Result<u64, DbErr> {
        let statement = self.backend.build(statement);
        match &self.queue {
            Some(queue) => queue.execute(statement).await,
            None => self
                .write
                .execute_raw(statement)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    /// The connection for statements that only read.
    pub fn reader(&self) -> &DatabaseConnection {
        &self.read
    }

    /// The connection for statements that write (and reads that must see the latest write).
    pub fn writer(&self) -> &DatabaseConnection {
        &self.write
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Refreshes the query planner's statistics where they are stale. Without them SQLite takes
    /// an equality on a low-cardinality indexed column (`status = 'published'`) for a selective
    /// one and sorts half the table instead of walking the sort index: measured 27× slower on
    /// a 3,000-row list page. Cheap when nothing changed; PostgreSQL's autovacuum does this itself.
    ///
    /// # Errors
    /// When the statement fails.
    pub async fn optimize(&self) -> Result<(), DbErr> {
        if self.backend == DbBackend::Sqlite {
            self.write
                .execute_unprepared("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")
                .await?;
        }
        Ok(())
    }

    /// Answers when the database does.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.read.execute_unprepared("SELECT 1").await.map(|_| ())
    }

    /// Closes every connection, letting SQLite checkpoint its WAL.
    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}
