//! The `audit_log` table: append-only (the database refuses UPDATE and
//! DELETE). Rows go in inside the transaction of the change they record.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::audit_log;
use super::{AsConn, Conn};
use crate::domain::audit::{AuditActor, AuditRecord};
use crate::with_conn;

#[derive(Clone, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
struct NewRow {
    actor_id: Option<i64>,
    ip: Option<String>,
    request_id: Option<String>,
    action: String,
    object_type: String,
    object_id: Option<i64>,
    details: String,
    created_at: NaiveDateTime,
}

/// One row of the trail, as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct AuditRow {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<i64>,
    pub details: String,
    pub created_at: NaiveDateTime,
}

/// Writes `records` as done by `actor` at `now`: one statement on
/// PostgreSQL (a prepared one for a single row), one prepared insert per row
/// on SQLite (its own thread).
pub async fn record(
    conn: &mut impl AsConn,
    actor: &AuditActor,
    records: &[AuditRecord],
    now: NaiveDateTime,
) -> QueryResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewRow> = records
        .iter()
        .map(|r| NewRow {
            actor_id: actor.user.map(|u| u.0),
            ip: actor.ip.clone(),
            request_id: actor.request_id.clone(),
            action: r.action.as_str().to_owned(),
            object_type: r.object_type.as_str().to_owned(),
            object_id: r.object_id,
            details: r.details.to_string(),
            created_at: now,
        })
        .collect();
    const ROWS_PER_INSERT: usize = 2_000;
    match conn.as_conn() {
        Conn::Postgres(c) => {
            // Diesel never caches a slice insert's prepared statement (its
            // text depends on the row count), so a single row, the common
            // case (one per booking), goes in as a row: prepared once per
            // connection instead of parsed and planned on every call.
            if let [row] = rows.as_slice() {
                diesel::insert_into(audit_log::table)
                    .values(row)
                    .execute(c)
                    .await?;
                return Ok(());
            }
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                diesel::insert_into(audit_log::table)
                    .values(chunk)
                    .execute(c)
                    .await?;
            }
            Ok(())
        }
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |sync| {
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let insert = diesel::insert_into(audit_log::table).values(chunk);
                    diesel::RunQueryDsl::execute(insert, sync)?;
                }
                Ok(())
            })
            .await
        }
    }
}

/// What to list; every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<i64>,
    /// At or after this time.
    pub since: Option<NaiveDateTime>,
    /// Rows with a smaller id than this (the previous page's last).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// One page of the trail, newest first.
pub async fn list(conn: &mut impl AsConn, f: &AuditFilter) -> QueryResult<Vec<AuditRow>> {
    use audit_log::dsl as a;
    with_conn!(conn, |c| {
        let mut q = a::audit_log.select(AuditRow::as_select()).into_boxed();
        if let Some(actor) = f.actor_id {
            q = q.filter(a::actor_id.eq(actor));
        }
        if let Some(action) = &f.action {
            q = q.filter(a::action.eq(action));
        }
        if let Some(object_type) = &f.object_type {
            q = q.filter(a::object_type.eq(object_type));
        }
        if let Some(object_id) = f.object_id {
            q = q.filter(a::object_id.eq(object_id));
        }
        if let Some(since) = f.since {
            q = q.filter(a::created_at.ge(since));
        }
        if let Some(before) = f.before_id {
            q = q.filter(a::id.lt(before));
        }
        q.order(a::id.desc()).limit(f.limit).load(c).await
    })
}
