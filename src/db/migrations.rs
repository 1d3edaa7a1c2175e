//! Schema migrations, one directory per backend under `migrations/`, embedded
//! in the binary. They run at `serve` start and with `roost migrate`.
//!
//! Several processes may start at once against one database, so migrations
//! run under a lock: a PostgreSQL advisory lock, or SQLite's write lock.

use diesel::Connection;
use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Any number; the same in every Roost process.
const MIGRATION_LOCK_KEY: i64 = 0x0052_6f6f_7374;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Applies every pending migration; returns the names of those applied.
pub async fn run(url: &DatabaseUrl) -> anyhow::Result<Vec<String>> {
    let url = url.clone();
    // The harness is synchronous: keep it off the async workers.
    let applied = tokio::task::spawn_blocking(move || match url {
        DatabaseUrl::Sqlite(path) => run_sqlite(&path.to_string_lossy()),
        DatabaseUrl::Postgres(url) => run_postgres(&url),
    })
    .await?
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied)
}

/// How long a starting node waits for another to finish setting up a SQLite file.
const SQLITE_SETUP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

fn run_sqlite(path: &str) -> Result<Vec<String>, BoxError> {
    // Switching a fresh file to WAL takes an exclusive lock, and SQLite may
    // refuse it at once (no busy handler) while another process sets up the
    // same file: wait for that one instead of failing.
    let started = std::time::Instant::now();
    loop {
        match try_run_sqlite(path) {
            Err(e) if is_locked(&*e) && started.elapsed() < SQLITE_SETUP_PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn is_locked(e: &(dyn std::error::Error + 'static)) -> bool {
    let text = e.to_string();
    text.contains("database is locked") || text.contains("database is busy")
}

fn try_run_sqlite(path: &str) -> Result<Vec<String>, BoxError> {
    let mut conn = SqliteConnection::establish(path)?;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "PRAGMA busy_timeout = {}",
            super::SQLITE_BUSY_TIMEOUT_MS
        )),
        &mut conn,
    )?;
    diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA journal_mode = WAL"), &mut conn)?;
    // SQLite changes a table's constraints only by rebuilding it (create
    // the new one, copy, drop the old, rename), which foreign keys would
    // refuse halfway: they are off while migrating (SQLite's documented
    // procedure), and checked whole before the migrations commit.
    diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA foreign_keys = OFF"), &mut conn)?;
    // Inside one immediate transaction each migration becomes a savepoint,
    // and a second process waits for the first to finish.
    conn.immediate_transaction(|c| {
        let applied: Vec<String> = c
            .run_pending_migrations(SQLITE)
            .map(|versions| versions.iter().map(ToString::to_string).collect())?;
        let broken: Vec<Violation> =
            diesel::RunQueryDsl::load(diesel::sql_query("PRAGMA foreign_key_check"), c)?;
        if let Some(v) = broken.first() {
            return Err(format!(
                "migrations left {} row(s) whose foreign key refers to nothing (first: table {} → {})",
                broken.len(),
                v.table,
                v.parent
            )
            .into());
        }
        Ok(applied)
    })
}

/// A row of `PRAGMA foreign_key_check`.
#[derive(diesel::QueryableByName)]
struct Violation {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    parent: String,
}

fn run_postgres(url: &str) -> Result<Vec<String>, BoxError> {
    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url)?;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")),
        &mut conn,
    )?;
    let result = conn
        .run_pending_migrations(POSTGRES)
        .map(|versions| versions.iter().map(ToString::to_string).collect());
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")),
        &mut conn,
    )?;
    result
}
