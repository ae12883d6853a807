//! The database: connections per engine, DDL, schema migrations, and the SQL of record operations. Every SQL
//! statement is built with sea-query from identifiers of the checked schema, values bound.

mod batch;
mod ddl;
mod lanes;
pub mod migrate;
mod rows;
pub mod system;
mod unit;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use batch::WriteQueue;
use lanes::Watch;
use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlxPostgresConnector,
    SqlxSqliteConnector, StatementBuilder,
};

pub use ddl::{datetime_type, table_statements};
pub use lanes::{Lanes, Lifted};
pub use rows::{Column, decode_row, to_sql_value};
pub use unit::{Transaction, Writes};

use crate::config::DatabaseConfig;

/// Record readers: SQLite reads beside the writer in WAL mode; on PostgreSQL they are most of
/// the pool. A list holds one for its page and its count.
const SQLITE_READERS: usize = 4;
const POSTGRES_READERS: usize = 8;
/// PostgreSQL connections for writes and transactions.
const POSTGRES_WRITERS: u32 = 8;
/// Authentication's own connections: a session or key lookup never queues behind record reads.
const AUTH_LANES: usize = 2;
/// SQLite loads the planner's statistics when a connection opens: read connections are replaced
/// this often, so they see what the writer's periodic `optimize` gathered.
const SQLITE_READER_LIFETIME: Duration = Duration::from_secs(300);

/// A connection to the configured database.
///
/// Record reads and authentication lookups run on their own groups of connections ([`Lanes`]),
/// so a slow list can delay neither sign-ins nor token checks. Every statement runs under the
/// configured time limit, and a read whose caller goes away is stopped (see `lanes`). SQLite
/// writes go to one writer connection, queued in-process (so they never fail with `database is
/// locked`) and group-committed; reads run beside it in WAL mode.
#[derive(Clone, Debug)]
pub struct Database {
    write: DatabaseConnection,
    reads: Lanes,
    auth: Lanes,
    backend: DbBackend,
    /// SQLite: group commit in front of the writer.
    queue: Option<WriteQueue>,
    /// SQLite: the writer's watch (its time limit is lifted while migrations run).
    write_watch: Option<Arc<Watch>>,
    /// Statements the record readers have run (for `GET /api/metrics`, and the tests that
    /// hold a request to a number of queries).
    read_statements: Arc<AtomicU64>,
}

impl Database {
    /// Connects to the configured URL (`sqlite://...` or `postgres://...`),
    /// creating a SQLite file and its folder (owner-only) when missing.
    ///
    /// # Errors
    /// When the database cannot be reached or opened.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, DbErr> {
        let url = config.url.as_str();
        if url.starts_with("sqlite:") {
            return Self::connect_sqlite(url, config.statement_timeout).await;
        }
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Self::connect_postgres(url, config.statement_timeout).await;
        }
        Err(DbErr::Custom(format!(
            "unsupported database URL \"{}\": Lucent runs on SQLite and PostgreSQL",
            url.split(':').next().unwrap_or_default()
        )))
    }

    async fn connect_postgres(url: &str, limit: Option<Duration>) -> Result<Self, DbErr> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(sqlx_error)?
            .disable_statement_logging();
        if let Some(limit) = limit {
            // Sent when each connection starts, so every statement runs under it at no cost.
            options = options.options([("statement_timeout", format!("{}ms", limit.as_millis()))]);
        }
        let write = sea_orm::sqlx::postgres::PgPoolOptions::new()
            .max_connections(POSTGRES_WRITERS)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(sqlx_error)?;
        let write = SqlxPostgresConnector::from_sqlx_postgres_pool(write);
        let lanes = |count: usize, statements: Option<Arc<AtomicU64>>| {
            let lanes = (0..count)
                .map(|_| {
                    let watch = Watch::new(limit);
                    (lanes::postgres_lane(options.clone(), &watch), watch)
                })
                .collect();
            Lanes::new(lanes, Some(write.clone()), statements)
        };
        let read_statements = Arc::<AtomicU64>::default();
        Ok(Self {
            reads: lanes(POSTGRES_READERS, Some(read_statements.clone())),
            auth: lanes(AUTH_LANES, None),
            write,
            backend: DbBackend::Postgres,
            queue: None,
            write_watch: None,
            read_statements,
        })
    }

    async fn connect_sqlite(url: &str, limit: Option<Duration>) -> Result<Self, DbErr> {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            create_private_dir(parent)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(sqlx_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a killed process without losing a committed write; only a
            // power loss can roll back the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // The cascade trigger of a to-many list (`ddl::cascade_trigger`) runs nested in
            // itself when a chain of deletes passes the same list twice.
            .pragma("recursive_triggers", "ON");
        // The database holds every secret Lucent keeps. SQLite creates a missing file under the
        // process's umask (often world-readable) and gives the WAL and shared-memory files the
        // database file's mode, so the file is made here, owner-only, before SQLite opens it.
        create_private_file(Path::new(path))
            .map_err(|e| DbErr::Custom(format!("cannot create {path}: {e}")))?;
        let write_watch = Watch::new(limit);
        let writer = lanes::sqlite_lane_options(&write_watch, None)
            .connect_with(options.clone())
            .await
            .map_err(sqlx_error)?;
        let write = SqlxSqliteConnector::from_sqlx_sqlite_pool(writer);
        // Readers open on first use (after startup has refreshed the planner's statistics).
        let lanes = |count: usize, statements: Option<Arc<AtomicU64>>| {
            let lanes = (0..count)
                .map(|_| {
                    let watch = Watch::new(limit);
                    let lane = lanes::sqlite_lane(
                        options.clone().read_only(true),
                        &watch,
                        Some(SQLITE_READER_LIFETIME),
                    );
                    (lane, watch)
                })
                .collect();
            Lanes::new(lanes, None, statements)
        };
        let read_statements = Arc::<AtomicU64>::default();
        Ok(Self {
            reads: lanes(SQLITE_READERS, Some(read_statements.clone())),
            auth: lanes(AUTH_LANES, None),
            queue: Some(WriteQueue::start(write.clone())),
            write,
            backend: DbBackend::Sqlite,
            write_watch: Some(write_watch),
            read_statements,
        })
    }

    /// Executes a record write (insert, update, delete), group-committed on SQLite; returns the
    /// rows it affected once it is durable.
    ///
    /// # Errors
    /// The statement's error (constraint violations included).
    pub async fn write<S: StatementBuilder>(&self, statement: &S) -> Result<u64, DbErr> {
        let statement = self.backend.build(statement);
        Ok(self.write_all(vec![statement]).await?[0])
    }

    /// Runs `work` on a record reader. If the returned future is dropped (the client went
    /// away), the statement running is stopped on the database.
    ///
    /// # Errors
    /// `work`'s own.
    pub async fn read<T>(
        &self,
        work: impl AsyncFnOnce(&DatabaseConnection) -> Result<T, DbErr>,
    ) -> Result<T, DbErr> {
        self.reads.run(work).await
    }

    /// Runs `work` on authentication's own connections (session, key and account lookups),
    /// which record reads never hold.
    ///
    /// # Errors
    /// `work`'s own.
    pub async fn read_auth<T>(
        &self,
        work: impl AsyncFnOnce(&DatabaseConnection) -> Result<T, DbErr>,
    ) -> Result<T, DbErr> {
        self.auth.run(work).await
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
        self.read_auth(async |c| c.execute_unprepared("SELECT 1").await.map(drop))
            .await
    }

    /// Lifts the statement time limit from the SQLite writer until the guard is dropped, for
    /// migrations, which may rebuild whole tables. (PostgreSQL migrations lift it inside their
    /// transaction with `SET LOCAL`.)
    pub fn lift_write_limit(&self) -> Option<Lifted> {
        self.write_watch.as_ref().map(Watch::lift)
    }

    /// Connections in use and idle, per group: the writer pool, the record readers and
    /// authentication's lanes (for `GET /api/metrics`).
    pub fn pool_usage(&self) -> [PoolUsage; 3] {
        let (size, idle) = match self.backend {
            DbBackend::Sqlite => {
                let pool = self.write.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.write.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let lanes = |pool: &'static str, lanes: &Lanes| {
            let (in_use, idle) = lanes.usage();
            PoolUsage { pool, in_use, idle }
        };
        [
            PoolUsage {
                pool: "writer",
                in_use: size.saturating_sub(idle),
                idle,
            },
            lanes("readers", &self.reads),
            lanes("auth", &self.auth),
        ]
    }

    /// How many statements the record readers have run since the database was opened.
    pub fn read_statements(&self) -> u64 {
        self.read_statements.load(Ordering::Relaxed)
    }

    /// Closes every connection, letting SQLite checkpoint its WAL.
    pub async fn close(self) {
        for connection in self.reads.connections().chain(self.auth.connections()) {
            let _ = connection.close_by_ref().await;
        }
        let _ = self.write.close().await;
    }
}

/// The connections of one group of [`Database`]: taken by a statement or a transaction, or
/// open and free (a lane not yet connected counts as free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// `writer`, `readers` or `auth`.
    pub pool: &'static str,
    pub in_use: usize,
    pub idle: usize,
}

/// Whether `error` is a statement stopped by its time limit (or by a cancel), which the API
/// answers with 503 rather than 500.
pub fn is_timeout(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                // SQLITE_INTERRUPT from the progress handler; PostgreSQL's query_canceled.
                sea_orm::sqlx::Error::Database(e) => {
                    matches!(e.code().as_deref(), Some("9") | Some("57014"))
                }
                sea_orm::sqlx::Error::PoolTimedOut => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether `error` is a deadlock or a serialization failure (PostgreSQL's 40P01 and 40001): the
/// database gave up on the transaction for another's sake, and the same work tried again may
/// succeed.
pub fn is_transient_conflict(error: &DbErr) -> bool {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                sea_orm::sqlx::Error::Database(e)
                    if matches!(e.code().as_deref(), Some("40P01") | Some("40001"))
            )
        }
        _ => false,
    }
}

/// Whether `error` is PostgreSQL refusing a NUL character in text or JSON. Values are checked
/// for NUL before they reach the database; this names what slipped through, so it is a 400.
pub fn is_nul_refused(error: &DbErr) -> bool {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                sea_orm::sqlx::Error::Database(e)
                    if matches!(e.code().as_deref(), Some("22021") | Some("22P05"))
            )
        }
        _ => false,
    }
}

fn sqlx_error(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error)))
}

/// Creates `dir` and its missing parents readable by the owner only (the folders that hold the
/// database and the development secret).
///
/// # Errors
/// The file system's.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates an empty file at `path`, readable by the owner only, unless one exists (or the
/// database lives in memory).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.to_string_lossy().starts_with(":memory:") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
