//! The `audit_log` table: append-only (the database refuses UPDATE and
//! DELETE). Rows go in inside the transaction of the change they record.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
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

/// Audit rows about to be written: [`rows`] makes them, [`write`] writes
/// them, or they ride in another statement on PostgreSQL
/// (`events::append_audited`).
#[derive(Clone, Default)]
pub struct Rows(Vec<NewRow>);

impl Rows {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These rows, each about the object `id`.
    pub fn about(mut self, id: i64) -> Rows {
        for row in &mut self.0 {
            row.object_id = Some(id);
        }
        self
    }

    /// These rows, then `more`.
    pub fn and(mut self, more: Rows) -> Rows {
        self.0.extend(more.0);
        self
    }

    /// On PostgreSQL, the rows as one `INSERT … SELECT FROM unnest(…)`: its
    /// text is the same for any number of rows, so a statement carrying it
    /// is prepared once.
    pub(super) fn unnest(&self) -> Unnest {
        let r = &self.0;
        Unnest {
            actor_ids: r.iter().map(|r| r.actor_id).collect(),
            ips: r.iter().map(|r| r.ip.clone()).collect(),
            request_ids: r.iter().map(|r| r.request_id.clone()).collect(),
            actions: r.iter().map(|r| r.action.clone()).collect(),
            object_types: r.iter().map(|r| r.object_type.clone()).collect(),
            object_ids: r.iter().map(|r| r.object_id).collect(),
            details: r.iter().map(|r| r.details.clone()).collect(),
            created_ats: r.iter().map(|r| r.created_at).collect(),
        }
    }
}

/// [`Rows::unnest`]: the rows' columns, bound as arrays.
pub(super) struct Unnest {
    actor_ids: Vec<Option<i64>>,
    ips: Vec<Option<String>>,
    request_ids: Vec<Option<String>>,
    actions: Vec<String>,
    object_types: Vec<String>,
    object_ids: Vec<Option<i64>>,
    details: Vec<String>,
    created_ats: Vec<NaiveDateTime>,
}

impl QueryId for Unnest {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for Unnest {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(None, out)
    }
}

impl Unnest {
    /// The insert; with `about`, the name of a row source in the same
    /// statement that yields one row with an `id` (a row just inserted),
    /// every row's `object_id` is that id (the bound ones are ignored).
    pub(super) fn walk<'b>(
        &'b self,
        about: Option<&'static str>,
        mut out: AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
        out.push_sql(
            "INSERT INTO audit_log (actor_id, ip, request_id, action, object_type, \
             object_id, details, created_at) ",
        );
        match about {
            None => out.push_sql("SELECT * FROM unnest("),
            Some(source) => {
                out.push_sql("SELECT a.actor_id, a.ip, a.request_id, a.action, a.object_type, ");
                out.push_sql(source);
                out.push_sql(".id, a.details, a.created_at FROM ");
                out.push_sql(source);
                out.push_sql(", unnest(");
            }
        }
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.actor_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.ips)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.request_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.actions)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.object_types)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.object_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.details)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.created_ats)?;
        out.push_sql(")");
        if about.is_some() {
            out.push_sql(
                " AS a(actor_id, ip, request_id, action, object_type, object_id, details, \
                 created_at)",
            );
        }
        Ok(())
    }
}

/// `records` as done by `actor` at `now`, ready to write.
pub fn rows(actor: &AuditActor, records: &[AuditRecord], now: NaiveDateTime) -> Rows {
    Rows(
        records
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
            .collect(),
    )
}

/// Writes `records` as done by `actor` at `now` ([`write`]).
pub async fn record(
    conn: &mut impl AsConn,
    actor: &AuditActor,
    records: &[AuditRecord],
    now: NaiveDateTime,
) -> QueryResult<()> {
    write(conn, rows(actor, records, now)).await
}

/// Writes `rows`: on PostgreSQL one statement, prepared once per connection
/// whatever the number of rows (Diesel caches no multi-row `VALUES`
/// insert, whose text depends on the count); on SQLite multi-row inserts
/// on its own thread.
pub async fn write(conn: &mut impl AsConn, Rows(rows): Rows) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match conn.as_conn() {
        Conn::Postgres(c) => {
            Rows(rows).unnest().execute(c).await?;
            Ok(())
        }
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |sync| {
                // SQLite binds at most 32,766 values a statement.
                for chunk in rows.chunks(2_000) {
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
