//! SQLite's single writer, used well: group commit.
//!
//! SQLite takes one writer at a time, and with `synchronous = FULL` every
//! commit waits for the disk. Writes that each took the lock and synced on
//! their own queued on the busy timeout (a sleeping retry loop) and paid a
//! sync apiece. Here every write made through [`Db::write`](super::Db::write)
//! (the listing actors', and the request paths' outside them: accounts and
//! sign-ins, listings, pricing, reviews, payments started, Idempotency-Key
//! claims) goes to one committer instead:
//! it takes whatever writes are waiting, opens one `BEGIN IMMEDIATE`, runs
//! each write inside its own savepoint, and commits them all with one sync.
//!
//! Each write stays all-or-nothing to its caller: one that fails is rolled
//! back to its savepoint and gets its own error, and the others go on; if
//! the commit itself fails, every write in it is answered `Unavailable` and
//! none of them is on disk. No caller hears `Ok` before the commit that
//! carries its write has returned, so a 2xx still means on disk.
//!
//! Nothing waits to fill a batch: the committer starts as soon as one write
//! is queued, and the writes that arrive while it syncs are the next batch.
//! Under no load a write commits alone, as before; under load the batches
//! grow by themselves.
//!
//! The committer has a thread of its own, and there SQLite's statements run
//! in place rather than on tokio's blocking pool ([`super::SqliteThreads`]):
//! a batch is one thread doing nothing but its writes, without two thread
//! hand-offs per statement, which had cost about 1.7 ms a booking and held
//! grouped bookings at about 640/s.

use std::cell::Cell;

use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot};

use super::{Conn, SqliteConn, Unavailable};

/// The most writes one transaction carries: a bound on how long a write
/// that arrives just after a batch started waits for the next one.
const MAX_BATCH: usize = 64;

/// Tells a write how its batch ended (`Err`: the commit failed).
type Finish = Box<dyn FnOnce(Result<(), &diesel::result::Error>) + Send>;

/// One write, type-erased: it runs in its savepoint and hands back how to
/// answer its caller once the batch's commit is known.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConn) -> BoxFuture<'c, Finish> + Send>;

/// The committer's queue. Cheap to clone; the committer stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    counters: Counters,
}

/// What the committer has done (`roost_db_group_*` at `/metrics`).
#[derive(Clone)]
pub struct Counters {
    /// Transactions committed (or tried) by the committer.
    pub commits: IntCounter,
    /// Writes those transactions carried.
    pub writes: IntCounter,
}

thread_local! {
    static COMMITTER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Is this the committer's own thread, where SQLite statements run in place?
pub fn on_committer_thread() -> bool {
    COMMITTER_THREAD.with(Cell::get)
}

impl GroupCommit {
    /// Starts the committer on a thread of its own, taking a connection
    /// from `pool` for each batch. Its statements run in place there: the
    /// thread does nothing else, so blocking it blocks nobody.
    pub fn start(pool: Pool<SqliteConn>) -> anyhow::Result<Self> {
        let counters = Counters {
            commits: IntCounter::new(
                "db_group_commits_total",
                "SQLite transactions the group committer committed",
            )?,
            writes: IntCounter::new(
                "db_group_commit_writes_total",
                "Writes carried by the group committer's transactions",
            )?,
        };
        let (queue, jobs) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let loop_counters = counters.clone();
        std::thread::Builder::new()
            .name("roost-sqlite-commit".into())
            .spawn(move || {
                COMMITTER_THREAD.with(|on| on.set(true));
                runtime.block_on(commit_loop(pool, jobs, loop_counters));
            })?;
        Ok(Self { queue, counters })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Runs `work` in the next batch, inside its own savepoint, and answers
    /// once that batch's commit has returned.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + From<Unavailable> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |raw: &mut SqliteConn| {
            async move {
                // Nested in the batch's transaction, this is a savepoint:
                // an error rolls back this write alone.
                let outcome = raw
                    .transaction(async |raw| work(&mut Conn::Sqlite(raw)).await)
                    .await;
                Box::new(move |committed: Result<(), &diesel::result::Error>| {
                    let reply = match (outcome, committed) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(e)) => {
                            Err(Unavailable::new(format!("commit failed: {e}")).into())
                        }
                        (Err(e), _) => Err(e),
                    };
                    // The caller may have gone (a client hung up): the write stands.
                    let _ = answer.send(reply);
                }) as Finish
            }
            .boxed()
        });
        self.queue
            .send(job)
            .map_err(|_| Unavailable::new("the SQLite committer has stopped"))?;
        answered.await.unwrap_or_else(|_| {
            // The batch never reached its commit (no connection, or the
            // write lock not had within the busy timeout): nothing of it
            // was written.
            Err(Unavailable::new("the write's transaction could not start").into())
        })
    }
}

async fn commit_loop(
    pool: Pool<SqliteConn>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    counters: Counters,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let writes = std::mem::take(&mut batch);
        counters.commits.inc();
        counters.writes.inc_by(writes.len() as u64);
        // Caught: a panic in one write ends that batch (its callers hear
        // `Unavailable`), not the committer.
        if let Err(e) = std::panic::AssertUnwindSafe(commit(&pool, writes))
            .catch_unwind()
            .await
        {
            tracing::error!(error = ?e, "a SQLite group commit panicked");
        }
    }
}

/// One batch: `BEGIN IMMEDIATE`, each write in its savepoint, one `COMMIT`.
async fn commit(pool: &Pool<SqliteConn>, writes: Vec<Job>) {
    let mut conn = match pool.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "no SQLite connection for a group commit");
            return; // dropping the writes answers them `Unavailable`
        }
    };
    let mut done: Vec<Finish> = Vec::with_capacity(writes.len());
    let committed = super::immediate_transaction(&mut conn, async |raw| {
        for write in writes {
            done.push(write(raw).await);
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await;
    if let Err(e) = &committed {
        tracing::warn!(error = %e, writes = done.len(), "a SQLite group commit failed");
    }
    for finish in done {
        finish(committed.as_ref().map(|_| ()));
    }
}
