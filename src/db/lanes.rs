//! Connections whose statements can be stopped. A lane is a one-connection pool with a [`Watch`],
//! so the watch always speaks for the statement running on that connection:
//!
//! - a statement ends at its time limit: on SQLite the lane's progress handler reads the watch's
//!   deadline (armed each time the connection is taken); on PostgreSQL the server enforces
//!   `statement_timeout`, set on every connection;
//! - a caller that goes away mid-statement (its future dropped, e.g. the client disconnected)
//!   stops it: on SQLite the progress handler sees the watch stopped; on PostgreSQL the lane's
//!   backend gets `pg_cancel_backend`. Either way the lane is handed to the next caller only once
//!   its connection is idle again, so a stop can never hit the next caller's statement.
//!
//! [`Lanes`] hands out free lanes of a group (the record readers, or authentication's own).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::time::Instant;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sea_orm::sqlx::{Executor, Row};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// SQLite virtual-machine steps between two looks at the watch. SQLite looks only at loop
/// edges (about once per row scanned) and a single step can be long (one `LIKE` over a 900 KiB
/// value: ~0.5–1 s), so the handler must run at nearly every row for a stop or a deadline to
/// be noticed within one row's work; a look costs a few nanoseconds (see [`now_nanos`]).
const PROGRESS_STEPS: i32 = 8;

/// How long a caller waits for a free lane (the old pools' acquire timeout) before it is told the
/// server is busy.
const WAIT_FOR_LANE: Duration = Duration::from_secs(10);

/// What the statement on one connection may do: run until `deadline`, unless stopped.
#[derive(Debug)]
pub(super) struct Watch {
    /// The time limit of one use of the connection; `None`: unlimited.
    limit: Option<Duration>,
    /// The [`now_nanos`] after which the statement is interrupted; `u64::MAX`: never.
    deadline: AtomicU64,
    /// Set while the limit is lifted (migrations).
    lifted: AtomicBool,
    stopped: AtomicBool,
    /// PostgreSQL: the backend process of the lane's current connection, and its start time.
    pid: AtomicI32,
    backend_start: AtomicI64,
}

/// A monotonic clock in nanoseconds, cheap enough to read at every row a statement scans: on
/// Linux the coarse clock (read in user space, ~5 ns, millisecond resolution, plenty for a limit
/// in seconds); elsewhere `Instant`.
fn now_nanos() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec it is given.
        let read = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
        // It cannot fail for this clock; if it did, 0 would make no deadline pass.
        if read != 0 {
            return 0;
        }
        u64::try_from(now.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Watch {
    pub(super) fn new(limit: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            deadline: AtomicU64::new(u64::MAX),
            lifted: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            pid: AtomicI32::new(0),
            backend_start: AtomicI64::new(0),
        })
    }

    /// Starts the clock for the use of the connection that begins now.
    fn arm(&self) {
        let deadline = match self.limit {
            Some(limit) if !self.lifted.load(Ordering::Relaxed) => {
                now_nanos().saturating_add(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX))
            }
            _ => u64::MAX,
        };
        self.deadline.store(deadline, Ordering::Relaxed);
    }

    /// The progress handler's question: may the running statement go on?
    fn proceed(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed) && now_nanos() < self.deadline.load(Ordering::Relaxed)
    }

    /// Lifts the time limit from the next use of the connection on, until the guard is dropped.
    pub(super) fn lift(self: &Arc<Self>) -> Lifted {
        self.lifted.store(true, Ordering::Relaxed);
        Lifted(self.clone())
    }
}

/// The time limit of a watch, lifted while this lives.
#[derive(Debug)]
pub struct Lifted(Arc<Watch>);

impl Drop for Lifted {
    fn drop(&mut self) {
        self.0.lifted.store(false, Ordering::Relaxed);
    }
}

/// A pool of one SQLite connection whose statements obey `watch`.
pub(super) fn sqlite_lane_options(
    watch: &Arc<Watch>,
    lifetime: Option<Duration>,
) -> SqlitePoolOptions {
    let on_connect = watch.clone();
    let on_acquire = watch.clone();
    SqlitePoolOptions::new()
        .max_connections(1)
        .max_lifetime(lifetime)
        // A local file cannot hang up: the ping would only add a round trip to the connection's
        // thread to every statement.
        .test_before_acquire(false)
        .after_connect(move |connection, _| {
            let watch = on_connect.clone();
            Box::pin(async move {
                let mut handle = connection.lock_handle().await?;
                let handler = watch.clone();
                handle.set_progress_handler(PROGRESS_STEPS, move || handler.proceed());
                watch.arm();
                Ok(())
            })
        })
        .before_acquire(move |_, _| {
            on_acquire.arm();
            Box::pin(async { Ok(true) })
        })
}

/// A SQLite lane, connected on first use.
pub(super) fn sqlite_lane(
    options: SqliteConnectOptions,
    watch: &Arc<Watch>,
    lifetime: Option<Duration>,
) -> DatabaseConnection {
    let pool = sqlite_lane_options(watch, lifetime).connect_lazy_with(options);
    SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
}

/// The backend of this connection: its pid, and when it started (in microseconds), which with
/// the pid names this backend alone even if the pid is later reused.
const BACKEND: &str = "SELECT pid, (extract(epoch FROM backend_start) * 1000000)::bigint \
                       FROM pg_stat_activity WHERE pid = pg_backend_pid()";

/// One PostgreSQL connection (a pool of one) that records its backend in `watch`. The
/// time limit itself is the server's `statement_timeout`, set by the connect options.
pub(super) fn postgres_lane(
    options: sea_orm::sqlx::postgres::PgConnectOptions,
    watch: &Arc<Watch>,
) -> DatabaseConnection {
    let on_connect = watch.clone();
    let pool = sea_orm::sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect(move |connection, _| {
            let watch = on_connect.clone();
            Box::pin(async move {
                let row = connection.fetch_one(BACKEND).await?;
                watch.pid.store(row.try_get(0)?, Ordering::Relaxed);
                watch
                    .backend_start
                    .store(row.try_get(1)?, Ordering::Relaxed);
                Ok(())
            })
        })
        .connect_lazy_with(options);
    SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
}

#[derive(Debug)]
struct Lane {
    connection: DatabaseConnection,
    watch: Arc<Watch>,
}

/// A group of lanes; [`Lanes::run`] takes a free one.
#[derive(Debug, Clone)]
pub struct Lanes {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    lanes: Vec<Lane>,
    free: Mutex<Vec<usize>>,
    permits: Arc<Semaphore>,
    /// PostgreSQL: a connection outside the group to send cancels from.
    canceller: Option<DatabaseConnection>,
}

impl Lanes {
    /// `lanes` with their watches; on PostgreSQL, `canceller` is where cancels are sent from.
    /// Every statement the lanes run adds one to `statements`, when given.
    pub(super) fn new(
        lanes: Vec<(DatabaseConnection, Arc<Watch>)>,
        canceller: Option<DatabaseConnection>,
        statements: Option<Arc<AtomicU64>>,
    ) -> Self {
        let count = lanes.len();
        Self {
            inner: Arc::new(Inner {
                lanes: lanes
                    .into_iter()
                    .map(|(mut connection, watch)| {
                        if let Some(statements) = statements.clone() {
                            connection.set_metric_callback(move |_| {
                                statements.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                        Lane { connection, watch }
                    })
                    .collect(),
                free: Mutex::new((0..count).rev().collect()),
                permits: Arc::new(Semaphore::new(count)),
                canceller,
            }),
        }
    }

    /// Runs `work` on a free lane, waiting for one. If the returned future is dropped before
    /// `work` finishes, the statement it was running is stopped.
    ///
    /// # Errors
    /// `work`'s own, or `ConnectionAcquire(Timeout)` when no lane was free in time.
    pub async fn run<T, W>(&self, work: W) -> Result<T, DbErr>
    where
        W: AsyncFnOnce(&DatabaseConnection) -> Result<T, DbErr>,
    {
        let permit =
            tokio::time::timeout(WAIT_FOR_LANE, self.inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
                .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
        let index = self
            .inner
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .expect("a permit stands for a free lane");
        let mut lease = Lease {
            inner: self.inner.clone(),
            index,
            permit: Some(permit),
            finished: false,
        };
        let result = work(&self.inner.lanes[index].connection).await;
        lease.finished = true;
        result
    }

    /// How many lanes are taken, and how many are free (for `GET /api/metrics`).
    pub fn usage(&self) -> (usize, usize) {
        let free = self.inner.permits.available_permits();
        (self.inner.lanes.len().saturating_sub(free), free)
    }

    /// Every lane's connection, e.g. to close them.
    pub(super) fn connections(&self) -> impl Iterator<Item = &DatabaseConnection> {
        self.inner.lanes.iter().map(|lane| &lane.connection)
    }
}

/// A lane in use. Dropped unfinished, it stops the lane's statement and frees the lane once the
/// connection is idle.
struct Lease {
    inner: Arc<Inner>,
    index: usize,
    permit: Option<OwnedSemaphorePermit>,
    finished: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let free = |inner: &Inner, index: usize| {
            inner
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(index);
        };
        if self.finished {
            // The permit is released after this body, so the lane is free before it.
            free(&self.inner, self.index);
            return;
        }
        let (inner, index, permit) = (self.inner.clone(), self.index, self.permit.take());
        let watch = inner.lanes[index].watch.clone();
        watch.stopped.store(true, Ordering::Relaxed);
        let stop = async move {
            let lane = &inner.lanes[index];
            if let Some(canceller) = &inner.canceller {
                cancel_backend(canceller, &watch).await;
            }
            // Taking the connection waits until the stopped statement has ended.
            let _ = idle(&lane.connection).await;
            watch.stopped.store(false, Ordering::Relaxed);
            free(&inner, index);
            drop(permit);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(stop);
            }
            // The runtime is going away, and the connections with it.
            Err(_) => drop(stop),
        }
    }
}

/// Waits until the lane's one connection is free, then gives it back.
async fn idle(connection: &DatabaseConnection) -> Result<(), DbErr> {
    let acquired = match connection.get_database_backend() {
        DbBackend::Sqlite => connection
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .map(drop),
        DbBackend::Postgres => connection
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map(drop),
        // Other engines' lanes share one pool and are not stopped (see `Database::connect`).
        _ => Ok(()),
    };
    acquired.map_err(|e| DbErr::Custom(e.to_string()))
}

/// Cancels what the lane's PostgreSQL backend is running. The lane is still held, so the
/// statement running there is the one being stopped (an idle backend ignores a cancel, and one
/// that has exited, or a later backend with its pid, is not matched).
async fn cancel_backend(canceller: &DatabaseConnection, watch: &Watch) {
    let pid = watch.pid.load(Ordering::Relaxed);
    if pid == 0 {
        return;
    }
    let cancel = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
         WHERE pid = $1 AND (extract(epoch FROM backend_start) * 1000000)::bigint = $2",
        [
            pid.into(),
            watch.backend_start.load(Ordering::Relaxed).into(),
        ],
    );
    if let Err(e) = canceller.execute_raw(cancel).await {
        tracing::warn!(error = %e, pid, "cancelling an abandoned statement failed");
    }
}
