//! The `calendar_events` table: each listing's event log. Events are written
//! in the transaction that made the change, numbered after the listing's
//! head (`calendar_heads.seq`, the number of its last event), which moves
//! with them; the head is locked first (with the listing's row by
//! `properties::lock_calendar`, or alone by the update of a guarded claim,
//! [`claim_guarded`]), so numbers never repeat or skip.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel_async::RunQueryDsl;

use std::collections::BTreeMap;

use super::audit;
use super::calendar::{self, Entry, NewEntry};
use super::properties::Headed;
use super::schema::{calendar_entries, calendar_events, calendar_heads, deployment, properties};
use super::{AsConn, Conn};
use crate::domain::{CalendarEvent, EventKind, PropertyId, UserId};
use crate::with_conn;

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = calendar_events, treat_none_as_default_value = false)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
struct EventRow {
    property_id: i64,
    seq: i64,
    kind: String,
    entry_id: Option<i64>,
    check_in: Option<NaiveDate>,
    check_out: Option<NaiveDate>,
    hold_expires_at: Option<NaiveDateTime>,
    guest_id: Option<i64>,
    host_id: i64,
    created_at: NaiveDateTime,
}

impl EventRow {
    fn to_event(&self) -> QueryResult<CalendarEvent> {
        self.clone().into_event()
    }

    fn into_event(self) -> QueryResult<CalendarEvent> {
        let kind = EventKind::parse(&self.kind).ok_or_else(|| {
            diesel::result::Error::DeserializationError(
                format!("unknown calendar event kind {:?}", self.kind).into(),
            )
        })?;
        Ok(CalendarEvent {
            property_id: PropertyId(self.property_id),
            seq: self.seq,
            kind,
            entry_id: self.entry_id,
            check_in: self.check_in,
            check_out: self.check_out,
            hold_expires_at: self.hold_expires_at.map(|t| t.and_utc()),
            at: self.created_at.and_utc(),
            guest_id: self.guest_id.map(UserId),
            host_id: UserId(self.host_id),
        })
    }
}

/// The listing's event number `seq`: `kind`, of `entry` (none: of the
/// listing itself).
fn event_row(
    head: &LogHead,
    seq: i64,
    kind: EventKind,
    entry: Option<&Entry>,
    now: NaiveDateTime,
) -> EventRow {
    EventRow {
        property_id: head.property_id,
        seq,
        kind: kind.as_str().to_owned(),
        entry_id: entry.map(|e| e.id),
        check_in: entry.map(|e| e.check_in),
        check_out: entry.map(|e| e.check_out),
        hold_expires_at: entry.and_then(|e| e.hold_expires_at),
        guest_id: entry.and_then(|e| e.guest_id),
        host_id: head.host_id,
        created_at: now,
    }
}

/// What happened, to which booking or block (none: to the listing itself).
pub type Change<'a> = (EventKind, Option<&'a Entry>);

/// A listing's log as its writer sees it, with the calendar locked: the
/// number of its last event, and whose listing it is (for routing).
#[derive(Clone, Copy, Debug, Queryable, Selectable)]
#[diesel(table_name = properties)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct LogHead {
    #[diesel(column_name = id)]
    pub property_id: i64,
    pub host_id: i64,
    #[diesel(select_expression = calendar_heads::seq)]
    pub seq: i64,
}

impl From<&Headed> for LogHead {
    fn from(p: &Headed) -> Self {
        Self {
            property_id: p.id,
            host_id: p.host_id,
            seq: p.seq,
        }
    }
}

/// Locks the calendars of those of these listings that no other transaction
/// is writing, and reads where their logs stand; the rest are left out
/// (they are busy: try them later). On PostgreSQL `FOR NO KEY UPDATE SKIP LOCKED`
/// on the listings' rows and heads, so this never waits; on SQLite the
/// `BEGIN IMMEDIATE` write lock already holds every calendar, and each
/// listing is read by its rowid (see `calendar::expire_holds` for why not by
/// a list). Deleted listings are included.
pub async fn lock_free_heads(conn: &mut impl AsConn, ids: Vec<i64>) -> QueryResult<Vec<LogHead>> {
    match conn.as_conn() {
        Conn::Postgres(c) => {
            properties::table
                .inner_join(calendar_heads::table)
                .filter(properties::id.eq_any(ids))
                .select(LogHead::as_select())
                .for_no_key_update()
                .skip_locked()
                .load(c)
                .await
        }
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |sync| {
                let mut heads = Vec::with_capacity(ids.len());
                for id in ids {
                    let head = properties::table
                        .inner_join(calendar_heads::table)
                        .filter(properties::id.eq(id))
                        .select(LogHead::as_select());
                    heads.extend(diesel::RunQueryDsl::get_result(head, sync).optional()?);
                }
                Ok(heads)
            })
            .await
        }
    }
}

/// Moves these listings' heads on by `by` (SQLite runs it once per
/// listing, by rowid; PostgreSQL's is part of [`append_statement`]).
#[diesel::dsl::auto_type]
pub fn bump_seqs_of(ids: Vec<i64>, by: i64) -> _ {
    diesel::dsl::update(calendar_heads::table.filter(calendar_heads::property_id.eq_any(ids)))
        .set(calendar_heads::seq.eq(calendar_heads::seq + by))
}

/// Records `changes` as the listing's next events, in order. Call inside the
/// write transaction that made them, with `property` as
/// `properties::lock_calendar` returned it.
pub async fn append(
    conn: &mut impl AsConn,
    property: &Headed,
    changes: &[Change<'_>],
    now: NaiveDateTime,
) -> QueryResult<Vec<CalendarEvent>> {
    append_all(conn, &[(LogHead::from(property), changes)], now).await
}

/// [`append`], with the audit rows of the same change written too: on
/// PostgreSQL in the append's own statement (a round trip and a statement
/// fewer for the write), on SQLite after it.
pub async fn append_audited(
    conn: &mut impl AsConn,
    property: &Headed,
    changes: &[Change<'_>],
    audit: audit::Rows,
    now: NaiveDateTime,
) -> QueryResult<Vec<CalendarEvent>> {
    append_logs(conn, &[(LogHead::from(property), changes)], audit, now).await
}

/// A new claim on a calendar locked by `property` (as
/// `properties::lock_calendar` returned it): its row, its event (`kind`,
/// numbered next) and `audit`, rows about it (each row's object is the new
/// row, whatever it names). On PostgreSQL one statement ([`ClaimStatement`];
/// the insert and the append were two round trips), on SQLite the insert
/// then [`append_audited`]. PostgreSQL's exclusion constraint refuses the
/// insert here as it would alone.
pub async fn insert_claim(
    conn: &mut impl AsConn,
    property: &Headed,
    new: &NewEntry<'_>,
    kind: EventKind,
    audit: audit::Rows,
    now: NaiveDateTime,
) -> QueryResult<(Entry, Vec<CalendarEvent>)> {
    let head = LogHead::from(property);
    debug_assert_eq!(
        new.property_id, head.property_id,
        "a claim on its own listing"
    );
    match conn.as_conn() {
        Conn::Postgres(c) => {
            let statement = ClaimStatement {
                insert: diesel::insert_into(calendar_entries::table)
                    .values(new)
                    .returning(Entry::as_returning()),
                listing: head.property_id,
                seq: head.seq + 1,
                kind: kind.as_str(),
                host_id: head.host_id,
                at: now,
                audit: audit.unnest(),
                entry: Entry::as_select(),
            };
            let (entry, logged): (Entry, i64) = statement.get_result(c).await?;
            if logged != 1 {
                // A listing vanished under its lock: never number events for it.
                return Err(diesel::result::Error::NotFound);
            }
            let event = event_row(&head, head.seq + 1, kind, Some(&entry), now).into_event()?;
            Ok((entry, vec![event]))
        }
        Conn::Sqlite(_) => {
            let entry = calendar::insert(conn, new).await?;
            let audit = audit.about(entry.id);
            let events = append_logs(conn, &[(head, &[(kind, Some(&entry))])], audit, now).await?;
            Ok((entry, events))
        }
    }
}

/// [`insert_claim`]'s statement on PostgreSQL: the insert, the listing's
/// head moved on by one, the audit rows and the event, each a
/// data-modifying `WITH` reading the new row; its answer is the new row and
/// the number of events written (1, or 0 if the listing's row was gone).
/// Prepared once per connection: the insert's text never varies
/// (`NewEntry` writes every column).
struct ClaimStatement<I> {
    insert: I,
    listing: i64,
    seq: i64,
    kind: &'static str,
    host_id: i64,
    at: NaiveDateTime,
    audit: audit::Unnest,
    entry: diesel::dsl::AsSelect<Entry, Pg>,
}

/// [`ClaimStatement`]'s key in the prepared-statement cache.
struct ClaimStatementId;

impl<I> QueryId for ClaimStatement<I> {
    type QueryId = ClaimStatementId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<I> diesel::query_builder::Query for ClaimStatement<I> {
    type SqlType = (
        diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<Entry, Pg>>,
        diesel::sql_types::BigInt,
    );
}

impl<I: QueryFragment<Pg>> QueryFragment<Pg> for ClaimStatement<I> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        out.push_sql("WITH e AS (");
        self.insert.walk_ast(out.reborrow())?;
        out.push_sql("), bumped AS (UPDATE calendar_heads SET seq = seq + 1 WHERE property_id = ");
        out.push_bind_param::<BigInt, _>(&self.listing)?;
        out.push_sql(" RETURNING property_id), audited AS (");
        self.audit.walk(Some("e"), out.reborrow())?;
        out.push_sql(
            "), logged AS (INSERT INTO calendar_events (property_id, seq, kind, entry_id, \
             check_in, check_out, hold_expires_at, guest_id, host_id, created_at) SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&self.listing)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.seq)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", e.id, e.check_in, e.check_out, e.hold_expires_at, e.guest_id, ");
        out.push_bind_param::<BigInt, _>(&self.host_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" FROM e WHERE EXISTS (SELECT 1 FROM bumped) RETURNING 1) SELECT ");
        self.entry.walk_ast(out.reborrow())?;
        out.push_sql(", (SELECT count(*) FROM logged) FROM e AS calendar_entries");
        Ok(())
    }
}

/// A new claim judged on the listing's rules as read at version `rules`
/// (`properties::Headed::rules`), made without the listing's lock: one
/// statement that moves the listing's head on only while its rules version
/// is still `rules`, and inserts the row (`new`), its event (`kind`, numbered
/// by the head it moved) and `audit` (rows about it) only if it did. Run on
/// its own it is its own transaction: the round trips for `BEGIN`, the lock
/// and `COMMIT` are saved.
///
/// The version sits on the head's row, which the statement updates, so it
/// is compared under that row's lock: a change of the rules committed while
/// the claim waited for the lock is seen (PostgreSQL rechecks an updated
/// row's condition on its newest version), and one not yet begun waits for
/// the claim. Every other writer of the calendar locks the head too
/// (`properties::lock_calendar`), so writers still take turns.
///
/// `None`: the rules moved (or the listing is gone); nothing was written,
/// and the claim must be judged again on the rules as they are now. SQLite
/// has no such statement (its writes hold the database's write lock and
/// read the rules under it): always `None` there. PostgreSQL's exclusion
/// constraint refuses the insert here as it would alone.
pub async fn claim_guarded(
    conn: &mut impl AsConn,
    (listing, host_id, rules): (i64, i64, i64),
    new: &NewEntry<'_>,
    kind: EventKind,
    audit: audit::Rows,
    now: NaiveDateTime,
) -> QueryResult<Option<(Entry, Vec<CalendarEvent>)>> {
    debug_assert_eq!(new.property_id, listing, "a claim on its own listing");
    let Conn::Postgres(c) = conn.as_conn() else {
        return Ok(None);
    };
    let statement = GuardedClaim {
        new,
        listing,
        rules,
        kind: kind.as_str(),
        host_id,
        at: now,
        audit: audit.unnest(),
        entry: Entry::as_select(),
    };
    let Some((entry, seq)) = statement.get_result::<(Entry, i64)>(c).await.optional()? else {
        return Ok(None);
    };
    let head = LogHead {
        property_id: listing,
        host_id,
        seq: seq - 1,
    };
    let event = event_row(&head, seq, kind, Some(&entry), now).into_event()?;
    Ok(Some((entry, vec![event])))
}

/// [`claim_guarded`]'s statement: the head moved on where the rules
/// version matches, then the row, the audit rows and the event, each a
/// data-modifying `WITH` that reads what came before it, so none runs if
/// the head did not move. Its answer is the new row and its event's seq, or
/// no row. Prepared once per connection (its text never varies).
struct GuardedClaim<'a> {
    new: &'a NewEntry<'a>,
    listing: i64,
    rules: i64,
    kind: &'static str,
    host_id: i64,
    at: NaiveDateTime,
    audit: audit::Unnest,
    entry: diesel::dsl::AsSelect<Entry, Pg>,
}

/// [`GuardedClaim`]'s key in the prepared-statement cache.
struct GuardedClaimId;

impl QueryId for GuardedClaim<'_> {
    type QueryId = GuardedClaimId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for GuardedClaim<'_> {
    type SqlType = (
        diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<Entry, Pg>>,
        diesel::sql_types::BigInt,
    );
}

impl QueryFragment<Pg> for GuardedClaim<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamp};
        let new = self.new;
        out.push_sql(
            "WITH bumped AS (UPDATE calendar_heads SET seq = seq + 1 WHERE property_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.listing)?;
        out.push_sql(" AND rules = ");
        out.push_bind_param::<BigInt, _>(&self.rules)?;
        // Every column `NewEntry` writes, in its order.
        out.push_sql(
            " RETURNING seq), e AS (INSERT INTO calendar_entries (property_id, kind, status, \
             check_in, check_out, hold_expires_at, created_by, guest_id, guests, nights, \
             price_per_night, cleaning_fee, total, currency, reason, created_at, updated_at, \
             price_detail, reviews_close_at) SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&new.property_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(new.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(new.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Date, _>(&new.check_in)?;
        out.push_sql(", ");
        out.push_bind_param::<Date, _>(&new.check_out)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&new.hold_expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&new.created_by)?;
        for value in [
            &new.guest_id,
            &new.guests,
            &new.nights,
            &new.price_per_night,
            &new.cleaning_fee,
            &new.total,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(value)?;
        }
        for value in [&new.currency, &new.reason] {
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(value)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&new.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&new.updated_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&new.price_detail)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&new.reviews_close_at)?;
        out.push_sql(" FROM bumped RETURNING *), audited AS (");
        self.audit.walk(Some("e"), out.reborrow())?;
        out.push_sql(
            "), logged AS (INSERT INTO calendar_events (property_id, seq, kind, entry_id, \
             check_in, check_out, hold_expires_at, guest_id, host_id, created_at) SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&self.listing)?;
        out.push_sql(", bumped.seq, ");
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", e.id, e.check_in, e.check_out, e.hold_expires_at, e.guest_id, ");
        out.push_bind_param::<BigInt, _>(&self.host_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" FROM e, bumped RETURNING 1) SELECT ");
        self.entry.walk_ast(out.reborrow())?;
        out.push_sql(", bumped.seq FROM e AS calendar_entries, bumped");
        Ok(())
    }
}

/// Records each listing's changes as its next events, for any number of
/// listings at once, moving each listing's head on by its number
/// of events: on PostgreSQL one statement ([`append_statement`]), on SQLite
/// one blocking task. Call inside the write transaction that made the
/// changes, with every listing's calendar locked and its head read under
/// that lock.
pub async fn append_all(
    conn: &mut impl AsConn,
    logs: &[(LogHead, &[Change<'_>])],
    now: NaiveDateTime,
) -> QueryResult<Vec<CalendarEvent>> {
    append_logs(conn, logs, audit::Rows::default(), now).await
}

/// [`append_all`], and `audit` ([`append_audited`]).
async fn append_logs(
    conn: &mut impl AsConn,
    logs: &[(LogHead, &[Change<'_>])],
    audit: audit::Rows,
    now: NaiveDateTime,
) -> QueryResult<Vec<CalendarEvent>> {
    let mut rows = Vec::new();
    // How far each listing's seq moves.
    let mut bumps: BTreeMap<i64, i64> = BTreeMap::new();
    for (head, changes) in logs {
        if changes.is_empty() {
            continue;
        }
        bumps.insert(head.property_id, changes.len() as i64);
        rows.extend(
            changes
                .iter()
                .zip(head.seq + 1..)
                .map(|((kind, entry), seq)| event_row(head, seq, *kind, *entry, now)),
        );
    }
    if rows.is_empty() {
        audit::write(conn, audit).await?;
        return Ok(Vec::new());
    }
    let events = rows
        .iter()
        .map(EventRow::to_event)
        .collect::<QueryResult<Vec<_>>>()?;
    let bumps: Vec<(i64, i64)> = bumps.into_iter().collect();
    // The audit rows the append's statement did not carry.
    let (written, audit) = match conn.as_conn() {
        Conn::Postgres(c) if !audit.is_empty() => {
            let append = append_statement(&bumps, &events);
            let audited = AuditedAppend(append, audit.unnest());
            (audited.execute(c).await?, audit::Rows::default())
        }
        Conn::Postgres(c) => (append_statement(&bumps, &events).execute(c).await?, audit),
        Conn::Sqlite(c) => {
            let written = c
                .spawn_blocking(move |sync| {
                    for (id, by) in bumps {
                        if diesel::RunQueryDsl::execute(bump_seqs_of(vec![id], by), sync)? != 1 {
                            return Ok(0);
                        }
                    }
                    // SQLite binds at most 32,766 values a statement.
                    for chunk in rows.chunks(2_000) {
                        let insert = diesel::insert_into(calendar_events::table).values(chunk);
                        diesel::RunQueryDsl::execute(insert, sync)?;
                    }
                    Ok(rows.len())
                })
                .await?;
            (written, audit)
        }
    };
    if written != events.len() {
        // A listing vanished under its lock: never number events for it.
        return Err(diesel::result::Error::NotFound);
    }
    audit::write(conn, audit).await?;
    Ok(events)
}

/// PostgreSQL's append in one statement (one round trip, where an UPDATE
/// and an INSERT were two), prepared once per connection like every
/// statement Diesel builds (an `sql_query` is parsed and planned on every
/// run): the listings' heads move on by their counts (`bumps`:
/// listing, count; each listing once), found by key, and the events go in,
/// bound as arrays (any number of rows in twelve bound values), only if
/// every listing's row was there. Its answer is the number of events
/// written: all of them, or none.
pub struct AppendStatement {
    listings: Vec<i64>,
    counts: Vec<i64>,
    property_ids: Vec<i64>,
    seqs: Vec<i64>,
    kinds: Vec<&'static str>,
    entry_ids: Vec<Option<i64>>,
    check_ins: Vec<Option<NaiveDate>>,
    check_outs: Vec<Option<NaiveDate>>,
    holds_until: Vec<Option<NaiveDateTime>>,
    guest_ids: Vec<Option<i64>>,
    host_ids: Vec<i64>,
    ats: Vec<NaiveDateTime>,
}

pub fn append_statement(bumps: &[(i64, i64)], events: &[CalendarEvent]) -> AppendStatement {
    let (listings, counts) = bumps.iter().copied().unzip();
    AppendStatement {
        listings,
        counts,
        property_ids: events.iter().map(|e| e.property_id.0).collect(),
        seqs: events.iter().map(|e| e.seq).collect(),
        kinds: events.iter().map(|e| e.kind.as_str()).collect(),
        entry_ids: events.iter().map(|e| e.entry_id).collect(),
        check_ins: events.iter().map(|e| e.check_in).collect(),
        check_outs: events.iter().map(|e| e.check_out).collect(),
        holds_until: events
            .iter()
            .map(|e| e.hold_expires_at.map(|t| t.naive_utc()))
            .collect(),
        guest_ids: events.iter().map(|e| e.guest_id.map(|g| g.0)).collect(),
        host_ids: events.iter().map(|e| e.host_id.0).collect(),
        ats: events.iter().map(|e| e.at.naive_utc()).collect(),
    }
}

impl QueryId for AppendStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for AppendStatement {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(None, out)
    }
}

/// An [`AppendStatement`] that also writes audit rows, in a data-modifying
/// `WITH` of its own (run whatever the outer statement reads; the events'
/// refusal is an error that rolls the transaction back, rows and all). A
/// type of its own: Diesel keys its cache of prepared statements by type.
struct AuditedAppend(AppendStatement, audit::Unnest);

impl QueryId for AuditedAppend {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for AuditedAppend {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk(Some(&self.1), out)
    }
}

impl AppendStatement {
    fn walk<'b>(
        &'b self,
        audit: Option<&'b audit::Unnest>,
        mut out: AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Timestamp};
        out.push_sql("WITH b(listings, counts) AS (SELECT ");
        out.push_bind_param::<Array<BigInt>, _>(&self.listings)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.counts)?;
        out.push_sql(
            "), bumped AS (UPDATE calendar_heads \
             SET seq = seq + b.counts[array_position(b.listings, calendar_heads.property_id)] \
             FROM b WHERE calendar_heads.property_id = ANY (b.listings) \
             RETURNING calendar_heads.property_id) ",
        );
        if let Some(audit) = audit {
            out.push_sql(", audited AS (");
            audit.walk_ast(out.reborrow())?;
            out.push_sql(") ");
        }
        out.push_sql(
            "INSERT INTO calendar_events (property_id, seq, kind, entry_id, check_in, \
             check_out, hold_expires_at, guest_id, host_id, created_at) \
             SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<BigInt>, _>(&self.property_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.seqs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.entry_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Date>>, _>(&self.check_ins)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Date>>, _>(&self.check_outs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Timestamp>>, _>(&self.holds_until)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.guest_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.host_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.ats)?;
        out.push_sql(
            ") WHERE (SELECT count(*) FROM bumped) = (SELECT cardinality(listings) FROM b)",
        );
        Ok(())
    }
}

/// Where a listing's log stands.
pub struct LogPosition {
    /// The number of its last event.
    pub seq: i64,
    pub deleted: bool,
}

/// The listing's position (`None`: no such listing) and up to `limit` of its
/// events after `after`, in order.
pub async fn after(
    conn: &mut impl AsConn,
    property_id: PropertyId,
    after: i64,
    limit: i64,
) -> QueryResult<Option<(LogPosition, Vec<CalendarEvent>)>> {
    let position = with_conn!(conn, |c| {
        properties::table
            .inner_join(calendar_heads::table)
            .filter(properties::id.eq(property_id.0))
            .select((calendar_heads::seq, properties::deleted_at.is_not_null()))
            .first::<(i64, bool)>(c)
            .await
            .optional()
    })?;
    let Some((seq, deleted)) = position else {
        return Ok(None);
    };
    let rows: Vec<EventRow> = with_conn!(conn, |c| {
        calendar_events::table
            .filter(calendar_events::property_id.eq(property_id.0))
            .filter(calendar_events::seq.gt(after))
            .order(calendar_events::seq.asc())
            .limit(limit)
            .select(EventRow::as_select())
            .load(c)
            .await
    })?;
    let events = rows
        .into_iter()
        .map(EventRow::into_event)
        .collect::<QueryResult<_>>()?;
    Ok(Some((LogPosition { seq, deleted }, events)))
}

/// Each of these listings' last event number.
pub async fn positions(
    conn: &mut impl AsConn,
    ids: &[PropertyId],
) -> QueryResult<Vec<(PropertyId, i64)>> {
    let ids: Vec<i64> = ids.iter().map(|p| p.0).collect();
    let rows: Vec<(i64, i64)> = with_conn!(conn, |c| {
        calendar_heads::table
            .filter(calendar_heads::property_id.eq_any(&ids))
            .select((calendar_heads::property_id, calendar_heads::seq))
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, seq)| (PropertyId(id), seq))
        .collect())
}

/// Deletes up to about `limit` of the oldest events recorded before
/// `before`; returns how many. Two index range reads on `created_at`: the
/// time of the `limit`-th oldest, then the delete up to it (events sharing
/// that instant, at most one transaction's, go too).
pub async fn prune(
    conn: &mut impl AsConn,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    use calendar_events::dsl as e;
    let nth_oldest: Option<NaiveDateTime> = with_conn!(conn, |c| {
        e::calendar_events
            .filter(e::created_at.lt(before))
            .order(e::created_at.asc())
            .select(e::created_at)
            .offset(limit - 1)
            .first(c)
            .await
            .optional()
    })?;
    with_conn!(conn, |c| {
        let old = e::calendar_events.filter(e::created_at.lt(before));
        match nth_oldest {
            Some(upto) => {
                diesel::delete(old.filter(e::created_at.le(upto)))
                    .execute(c)
                    .await
            }
            // Fewer than `limit` old events: all of them.
            None => diesel::delete(old).execute(c).await,
        }
    })
}

/// The Redis channel this deployment's nodes share (set once, by migration).
pub async fn channel(conn: &mut impl AsConn) -> QueryResult<String> {
    with_conn!(conn, |c| {
        deployment::table
            .find(1_i64)
            .select(deployment::event_channel)
            .first(c)
            .await
    })
}
