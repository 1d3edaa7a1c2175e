//! Storage: one set of Diesel queries over two backends.
//!
//! `Db` owns a connection pool for SQLite (the embedded default, through
//! diesel-async's `SyncConnectionWrapper`) or PostgreSQL (`AsyncPgConnection`).
//! Queries are written once and run on either backend through [`with_conn!`];
//! write transactions go through [`write_tx!`], which takes SQLite's write lock
//! up front (`BEGIN IMMEDIATE`) so concurrent writers queue on the busy timeout
//! instead of failing halfway.

pub mod audit;
pub mod bulk;
pub mod calendar;
pub mod changes;
pub mod events;
pub mod group;
pub mod idempotency;
pub mod migrations;
pub mod payments;
pub mod properties;
pub mod rates;
pub mod refunds;
pub mod reviews;
pub mod sandbox;
pub mod schema;
pub mod tokens;
pub mod users;

use std::sync::LazyLock;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel::connection::InstrumentationEvent;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use prometheus::IntCounter;
// Pooled connections are recycled the `Fast` way: a connection whose socket
// closed or whose transaction broke is dropped, and no `SELECT 1` is sent on
// every checkout (measured: 2.5 extra round trips per booking).
use diesel::connection::AnsiTransactionManager;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::{
    SpawnBlocking, SyncConnectionWrapper, SyncTransactionManagerWrapper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::config::DatabaseUrl;

/// The SQLite connection as diesel-async sees it: each statement runs on
/// tokio's blocking pool, except on the group committer's own thread,
/// where it runs in place ([`SqliteThreads`]).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, SqliteThreads>;

/// Where a SQLite statement runs. A statement is a blocking call; on a
/// runtime's worker it must go to the blocking pool, which costs two thread
/// hand-offs a statement (measured: about 1.7 ms of a booking's ten
/// statements went to them). The group committer ([`group`]) has a thread
/// of its own that does nothing but SQLite writes, so there a statement
/// runs in place.
///
/// Unlike diesel-async's default, a statement's future dropped halfway does
/// not wait for the statement (that wait blocked the thread in place and
/// panicked on actix's workers): the connection would stay shared with the
/// running statement. No such future is ever dropped: every database access
/// is a task that runs to its end ([`Db::run`], the committer).
pub struct SqliteThreads;

impl SpawnBlocking for SqliteThreads {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if !group::on_committer_thread() => handle
                .spawn_blocking(task)
                .map(|joined| joined.map_err(Into::into))
                .boxed(),
            _ => std::future::ready(Ok(task())).boxed(),
        }
    }

    fn get_runtime() -> Self {
        SqliteThreads
    }
}

/// `f` in a `BEGIN IMMEDIATE` transaction on `conn`: SQLite's write lock
/// taken up front, so a writer queues on the busy timeout instead of
/// failing halfway. (diesel-async offers this only for its default
/// spawner.) Writes nested inside with `AsyncConnection::transaction` are
/// savepoints.
pub async fn immediate_transaction<R, E, F>(conn: &mut SqliteConn, f: F) -> Result<R, E>
where
    for<'r> F: AsyncFnOnce(&'r mut SqliteConn) -> Result<R, E>,
    E: From<diesel::result::Error>,
{
    type Manager = SyncTransactionManagerWrapper<AnsiTransactionManager>;
    conn.spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
        .await?;
    match f(&mut *conn).await {
        Ok(value) => {
            Manager::commit_transaction(&mut *conn).await?;
            Ok(value)
        }
        Err(e) => {
            Manager::rollback_transaction(&mut *conn).await?;
            Err(e)
        }
    }
}

/// How long a request waits for a pooled connection, or for a new one to open.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SQLite writer waits for another writer's lock before giving up.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// How many rows of a table with `columns` columns one multi-row INSERT
/// may carry on PostgreSQL, whose protocol counts a statement's bound
/// values in 16 bits (at most 65,535). The table's column count bounds
/// what any insert into it binds per row.
pub const fn pg_rows_per_insert(columns: usize) -> usize {
    u16::MAX as usize / columns
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool for one of the two backends. Cheap to clone.
#[derive(Clone)]
pub enum Db {
    /// With its group committer ([`group`]), unless turned off.
    Sqlite(Pool<SqliteConn>, Option<group::GroupCommit>),
    Postgres(Pool<AsyncPgConnection>),
}

/// One pooled connection, returned to the pool on drop.
// Held for one task at a time and moved once; boxing would add an allocation per query.
#[allow(clippy::large_enum_variant)]
pub enum DbConn {
    Sqlite(Object<SqliteConn>),
    Postgres(Object<AsyncPgConnection>),
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
#[error("database unavailable: {0}")]
pub struct Unavailable(String);

impl Unavailable {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A borrowed connection of either backend: what every query function runs on,
/// whether it came straight from the pool or is inside a transaction.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConn),
    Postgres(&'a mut AsyncPgConnection),
}

/// Anything a query can run on: a pooled connection, or one inside a transaction.
pub trait AsConn: Send {
    fn as_conn(&mut self) -> Conn<'_>;
}

impl AsConn for DbConn {
    fn as_conn(&mut self) -> Conn<'_> {
        match self {
            DbConn::Sqlite(obj) => Conn::Sqlite(obj),
            DbConn::Postgres(obj) => Conn::Postgres(obj),
        }
    }
}

impl AsConn for Conn<'_> {
    fn as_conn(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs one Diesel expression on whichever backend `conn` (any [`AsConn`]) is.
///
/// `with_conn!(conn, |c| users::table.count().get_result(c).await)`: the body
/// is compiled once per backend, so it must be valid Diesel for both.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $crate::db::AsConn::as_conn($conn) {
            $crate::db::Conn::Sqlite($c) => $body,
            $crate::db::Conn::Postgres($c) => $body,
        }
    };
}

/// Runs `body` in a write transaction on whichever backend `conn` is:
/// `BEGIN IMMEDIATE` on SQLite (the write lock taken up front), a plain
/// transaction on PostgreSQL. Inside, `c` is a `&mut Conn` for the query
/// functions. The body's error type must be `From<diesel::result::Error>`.
#[macro_export]
macro_rules! write_tx {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $crate::db::AsConn::as_conn($conn) {
            $crate::db::Conn::Sqlite(raw) => {
                $crate::db::immediate_transaction(raw, async |raw| {
                    let $c = &mut $crate::db::Conn::Sqlite(raw);
                    $body
                })
                .await
            }
            $crate::db::Conn::Postgres(raw) => {
                ::diesel_async::AsyncConnection::transaction(raw, async |raw| {
                    let $c = &mut $crate::db::Conn::Postgres(raw);
                    $body
                })
                .await
            }
        }
    };
}

/// Runs `body`'s reads against one snapshot of the database on whichever
/// backend `conn` is: a `REPEATABLE READ READ ONLY` transaction on
/// PostgreSQL (whose default gives each statement its own snapshot), a
/// deferred transaction on SQLite (WAL keeps its first read's snapshot to
/// the end). For a view put together from several statements, so that a
/// commit landing between two of them is seen whole or not at all.
#[macro_export]
macro_rules! snapshot_tx {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $crate::db::AsConn::as_conn($conn) {
            $crate::db::Conn::Sqlite(raw) => {
                ::diesel_async::AsyncConnection::transaction(raw, async |raw| {
                    let $c = &mut $crate::db::Conn::Sqlite(raw);
                    $body
                })
                .await
            }
            $crate::db::Conn::Postgres(raw) => {
                raw.build_transaction()
                    .repeatable_read()
                    .read_only()
                    .run(async |raw| {
                        let $c = &mut $crate::db::Conn::Postgres(raw);
                        $body
                    })
                    .await
            }
        }
    };
}

impl Db {
    /// Opens a pool for `url`. Nothing is connected until the first `get`.
    pub fn connect(url: &DatabaseUrl, pool_size: Option<usize>) -> anyhow::Result<Self> {
        Self::connect_counted(url, pool_size, None)
    }

    /// As [`Db::connect`], each statement its connections send counted in
    /// `statements` (the server's `roost_db_statements_total`).
    pub fn connect_counted(
        url: &DatabaseUrl,
        pool_size: Option<usize>,
        statements: Option<IntCounter>,
    ) -> anyhow::Result<Self> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url| {
                    let counter = statements.clone();
                    async move {
                        let mut conn = establish_sqlite(url.to_owned()).await?;
                        count_statements(&mut conn, counter);
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(
                    path.to_string_lossy(),
                    config,
                );
                let pool = build_pool(manager, pool_size.unwrap_or(8))?;
                let committer = group::GroupCommit::start(pool.clone())?;
                Ok(Self::Sqlite(pool, Some(committer)))
            }
            DatabaseUrl::Postgres(url) => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url| {
                    let (url, counter) = (url.to_owned(), statements.clone());
                    async move {
                        let mut conn = AsyncPgConnection::establish(&url).await?;
                        count_statements(&mut conn, counter);
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
                    url.as_str(),
                    config,
                );
                Ok(Self::Postgres(build_pool(
                    manager,
                    pool_size.unwrap_or(16),
                )?))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `work` with a pooled connection, as its own task on the database
    /// runtime: dropping the returned future never cancels `work` halfway.
    /// Every database access in Roost goes through here.
    pub async fn run<T, E, F, Fut>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(DbConn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<Unavailable> + Send + 'static,
    {
        self.start(work).await
    }

    /// Runs `work` as one all-or-nothing write transaction ([`write_tx!`]).
    /// On SQLite it goes to the group committer, which carries the writes
    /// waiting at once in one transaction, each in its own savepoint, and
    /// one sync; the answer comes after that commit. `work` must not start
    /// a transaction of its own.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + From<Unavailable> + Send + 'static,
    {
        if let Db::Sqlite(_, Some(committer)) = self {
            return committer.write(work).await;
        }
        self.run(move |mut conn| async move { write_tx!(&mut conn, |c| work(c).await) })
            .await
    }

    /// Runs `work`, a change made by one statement, as its own
    /// transaction: on PostgreSQL with no `BEGIN` or `COMMIT` around it (a
    /// statement outside a transaction commits as it ends; two round trips
    /// saved), on SQLite as [`Db::write`] (the group committer carries it
    /// with the other writes waiting, one sync). `work` must make its change
    /// in one statement: two would commit one at a time on PostgreSQL.
    pub async fn write_alone<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + From<Unavailable> + Send + 'static,
    {
        match self {
            Db::Postgres(_) => {
                self.run(move |mut conn| async move { work(&mut conn.as_conn()).await })
                    .await
            }
            Db::Sqlite(..) => self.write(work).await,
        }
    }

    /// The same database with every write committed on its own (the
    /// group committer off: `ROOST_SQLITE_COMMIT=each`).
    pub fn without_group_commit(self) -> Self {
        match self {
            Db::Sqlite(pool, _) => Db::Sqlite(pool, None),
            postgres => postgres,
        }
    }

    /// The group committer's counters, when there is one.
    pub fn group_commit(&self) -> Option<&group::Counters> {
        match self {
            Db::Sqlite(_, Some(committer)) => Some(committer.counters()),
            _ => None,
        }
    }

    /// [`Db::run`], with `work` started now rather than when the answer is
    /// first awaited: the caller can start several (the seeder's batches)
    /// and do its own work meanwhile.
    pub fn start<T, E, F, Fut>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        F: FnOnce(DbConn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<Unavailable> + Send + 'static,
    {
        let db = self.clone();
        let task = db_runtime().map(|rt| rt.spawn(async move { work(db.get().await?).await }));
        async move {
            task?.await.map_err(|e| {
                // A panic inside database work is a bug, not an outage: say so loudly.
                tracing::error!(error = %e, "database task panicked or was cancelled");
                Unavailable(format!("database task failed: {e}"))
            })?
        }
    }

    /// A connection from the pool, or `Unavailable` once the pool's timeouts
    /// pass. Outside tests, use [`Db::run`]: a query future on a connection
    /// from here must not be dropped before it finishes.
    pub async fn get(&self) -> Result<DbConn, Unavailable> {
        match self {
            Db::Sqlite(pool, _) => pool
                .get()
                .await
                .map(DbConn::Sqlite)
                .map_err(|e| Unavailable(e.to_string())),
            Db::Postgres(pool) => pool
                .get()
                .await
                .map(DbConn::Postgres)
                .map_err(|e| Unavailable(e.to_string())),
        }
    }

    /// Opens every connection the pool may hold, all at once, so that the
    /// first burst of requests after a start does not wait for them (a
    /// race of 500 guests right after a start measured p99 54–65 ms, 30–35
    /// ms once the pool was open). On the database runtime, where every
    /// connection lives. The number opened.
    pub async fn warm(&self) -> Result<usize, Unavailable> {
        let db = self.clone();
        let size = match self {
            Db::Sqlite(pool, _) => pool.status().max_size,
            Db::Postgres(pool) => pool.status().max_size,
        };
        let task = db_runtime()?.spawn(async move {
            let held = futures_util::future::try_join_all((0..size).map(|_| db.get())).await?;
            Ok::<_, Unavailable>(held.len())
        });
        task.await
            .map_err(|e| Unavailable(format!("warming the pool failed: {e}")))?
    }

    /// Is the database answering? Used by `/readyz`.
    pub async fn ping(&self) -> Result<(), Unavailable> {
        self.run(|mut conn| async move {
            with_conn!(&mut conn, |c| c.batch_execute("SELECT 1").await)
                .map_err(|e| Unavailable(e.to_string()))
        })
        .await
    }
}

/// A pool whose every wait (for a free connection, a new one, a health
/// check) gives up after `POOL_TIMEOUT`, so a dead database means a quick 503.
fn build_pool<C>(manager: AsyncDieselConnectionManager<C>, size: usize) -> anyhow::Result<Pool<C>>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C>,
{
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .build()?)
}

/// Counts every statement `conn` starts (transactions' BEGIN and COMMIT
/// included) in `counter`, if there is one.
fn count_statements(conn: &mut impl AsyncConnection, counter: Option<IntCounter>) {
    if let Some(counter) = counter {
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                counter.inc();
            }
        });
    }
}

/// Opens one SQLite connection the way Roost needs it: WAL (readers never
/// block the writer), a busy timeout (writers queue instead of failing),
/// foreign keys on, and full fsync on commit (a 2xx means the data is on disk).
async fn establish_sqlite(path: String) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;"
    ))
    .await
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The current time as stored: UTC, to the microsecond (PostgreSQL's
/// precision, so both backends hand back exactly what was written).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// Is this a unique-constraint violation (a duplicate key)?
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The runtime every database operation runs on: multi-threaded (so the
/// SQLite wrapper may block in place) and process-wide (never dropped inside
/// async code). Database work is spawned here as tasks, so a request that is
/// dropped, say by a client hanging up, abandons only its wait: the query or
/// transaction it started still runs to its end, and no connection is
/// returned to the pool halfway through one.
static DB_RUNTIME: LazyLock<std::io::Result<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("roost-db")
        .enable_all()
        .build()
});

fn db_runtime() -> Result<&'static tokio::runtime::Runtime, Unavailable> {
    DB_RUNTIME
        .as_ref()
        .map_err(|e| Unavailable(format!("database runtime failed to start: {e}")))
}

#[cfg(test)]
mod tests {
    /// Each bulk-inserted table's `COLUMNS` is its column count in the
    /// schema, so a column added later cannot push a multi-row insert past
    /// PostgreSQL's bound-value limit unnoticed.
    #[test]
    fn bulk_inserts_know_their_tables_columns() {
        let schema = include_str!("schema.rs");
        let columns = |table: &str| {
            let start = schema
                .find(&format!("    {table} (id) {{"))
                .unwrap_or_else(|| panic!("{table} in schema.rs"));
            let body = &schema[start..];
            let end = body.find("    }").expect("end of the table");
            body[..end].lines().filter(|l| l.contains("->")).count()
        };
        assert_eq!(super::properties::COLUMNS, columns("properties"));
        assert_eq!(super::users::COLUMNS, columns("users"));
        assert_eq!(super::calendar::COLUMNS, columns("calendar_entries"));
        assert_eq!(super::reviews::COLUMNS, columns("reviews"));
        assert_eq!(super::rates::COLUMNS, columns("rate_overrides"));
    }
}
