//! The `calendar_entries` table: every claim on a listing's nights, a guest's
//! booking (a hold while pending) or a host's block.
//!
//! Live claims of one listing never overlap. PostgreSQL enforces it with an
//! exclusion constraint; on SQLite, [`overlapping`] and the insert run inside
//! one `BEGIN IMMEDIATE` transaction, which no other writer can interleave.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::{sql, update};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;

use super::schema::{calendar_entries, calendar_heads, properties};
use super::{AsConn, Conn};
use crate::with_conn;

/// How many columns `calendar_entries` has (a test checks it against the schema):
/// what bounds a multi-row insert's rows per statement.
pub const COLUMNS: usize = 21;

/// The statuses that claim nights. A pending row stops claiming them once
/// its `hold_expires_at` passes, even before the sweeper marks it expired.
pub const LIVE_STATUSES: [&str; 4] = ["pending", "confirmed", "completed", "blocked"];
pub const KIND_BOOKING: &str = "booking";
pub const KIND_BLOCK: &str = "block";
pub const STATUS_BLOCKED: &str = "blocked";

/// Is the entry in a status that claims nights? The SQL spells out
/// [`LIVE_STATUSES`] as literals, the predicate of the live-claims index
/// (`calendar_entries_live`), so both planners can use that index, which
/// holds no expired or cancelled row (see [`literal`]).
#[diesel::dsl::auto_type]
pub fn is_live() -> _ {
    let live: SqlLiteral<Bool> =
        sql("\"calendar_entries\".\"status\" IN ('pending', 'confirmed', 'completed', 'blocked')");
    live
}

/// Does the entry claim its nights at `now`? A live status, and not a hold
/// that has lapsed. The one definition every query of taken nights uses.
#[diesel::dsl::auto_type]
pub fn claims_nights_at(now: NaiveDateTime) -> _ {
    let live: is_live = is_live();
    let pending: SqlLiteral<Text> = literal("'pending'");
    live.and(
        calendar_entries::status
            .ne(pending)
            .or(calendar_entries::hold_expires_at.gt(now)),
    )
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = calendar_entries)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Entry {
    pub id: i64,
    pub property_id: i64,
    pub kind: String,
    pub status: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub hold_expires_at: Option<NaiveDateTime>,
    pub created_by: i64,
    pub guest_id: Option<i64>,
    pub guests: Option<i64>,
    pub nights: Option<i64>,
    pub price_per_night: Option<i64>,
    pub cleaning_fee: Option<i64>,
    pub total: Option<i64>,
    pub currency: Option<String>,
    pub reason: Option<String>,
    pub cancelled_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// What a booking was sold at (a `PriceQuote` as JSON).
    pub price_detail: Option<String>,
    /// A completed stay's: when its review window closes.
    pub reviews_close_at: Option<NaiveDateTime>,
}

impl Entry {
    /// What the booking was sold at, night by night and line by line. A
    /// booking stored before quotes were kept reads as its nights at the
    /// stored nightly price and its cleaning fee, the rest of its total on
    /// the nights.
    pub fn sold(&self) -> crate::domain::pricing::PriceQuote {
        use crate::domain::pricing::{Line, LineKind, NightPrice, PriceQuote, Rate};
        if let Some(quote) = self
            .price_detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<PriceQuote>(d).ok())
        {
            return quote;
        }
        let total = self.total.unwrap_or(0);
        let cleaning = self.cleaning_fee.unwrap_or(0).min(total).max(0);
        let nights = self
            .check_in
            .iter_days()
            .take_while(|d| *d < self.check_out)
            .map(|date| NightPrice {
                date,
                amount: self.price_per_night.unwrap_or(0),
                rate: Rate::Base,
            })
            .collect();
        let lines = [
            (LineKind::Nights, total - cleaning),
            (LineKind::CleaningFee, cleaning),
        ]
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(kind, amount)| Line { kind, amount })
        .collect();
        PriceQuote {
            nights,
            lines,
            total,
        }
    }
}

#[derive(Insertable, Default, Clone)]
#[diesel(table_name = calendar_entries, treat_none_as_default_value = false)]
pub struct NewEntry<'a> {
    pub property_id: i64,
    pub kind: &'a str,
    pub status: &'a str,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub hold_expires_at: Option<NaiveDateTime>,
    pub created_by: i64,
    pub guest_id: Option<i64>,
    pub guests: Option<i64>,
    pub nights: Option<i64>,
    pub price_per_night: Option<i64>,
    pub cleaning_fee: Option<i64>,
    pub total: Option<i64>,
    pub currency: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub price_detail: Option<&'a str>,
    pub reviews_close_at: Option<NaiveDateTime>,
}

/// Did the database refuse a write because it would overlap a live claim?
/// (PostgreSQL's exclusion constraint, SQLSTATE 23P01.)
pub fn is_overlap_violation(e: &Error) -> bool {
    matches!(e, Error::DatabaseError(_, info)
        if info.constraint_name() == Some("calendar_entries_no_overlap"))
}

/// Did the write lose a deadlock (PostgreSQL 40P01) or a serialization race?
/// Racing inserts into the exclusion constraint's index can deadlock; the
/// loser is most likely, but not certainly, a conflict.
pub fn is_retryable_race(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

pub async fn insert(conn: &mut impl AsConn, new: &NewEntry<'_>) -> QueryResult<Entry> {
    with_conn!(conn, |c| {
        diesel::insert_into(calendar_entries::table)
            .values(new)
            .returning(Entry::as_returning())
            .get_result(c)
            .await
    })
}

/// What [`insert_many`] says of each row it wrote.
#[derive(Queryable, Debug, Clone)]
pub struct Written {
    pub id: i64,
    pub property_id: i64,
    pub status: String,
    pub guest_id: Option<i64>,
    pub check_out: NaiveDate,
    pub reviews_close_at: Option<NaiveDateTime>,
}

/// Many at once (the seeder): multi-row INSERTs, as many rows to each as
/// the backend's bound values allow, on SQLite in one blocking task
/// (inside the caller's transaction) rather than one task per row. Says
/// what it wrote, in no particular order.
pub async fn insert_many(
    conn: &mut impl AsConn,
    rows: Vec<NewEntry<'static>>,
) -> QueryResult<Vec<Written>> {
    use calendar_entries::dsl as e;
    let written = (
        e::id,
        e::property_id,
        e::status,
        e::guest_id,
        e::check_out,
        e::reviews_close_at,
    );
    match conn.as_conn() {
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |sync| {
                // SQLite allows 32,766 bound values per statement.
                let mut out = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(1_000) {
                    let insert = diesel::insert_into(calendar_entries::table)
                        .values(chunk)
                        .returning(written);
                    out.extend(diesel::RunQueryDsl::get_results::<Written>(insert, sync)?);
                }
                Ok(out)
            })
            .await
        }
        Conn::Postgres(c) => {
            let mut out = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(super::pg_rows_per_insert(COLUMNS)) {
                let insert = diesel::insert_into(calendar_entries::table)
                    .values(chunk)
                    .returning(written);
                out.extend(insert.get_results::<Written>(c).await?);
            }
            Ok(out)
        }
    }
}

pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Entry>> {
    with_conn!(conn, |c| {
        calendar_entries::table
            .find(id)
            .select(Entry::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// A listing's live claims that end after `from`: what its actor holds in memory.
pub async fn live_for_property(
    conn: &mut impl AsConn,
    property_id: i64,
    from: NaiveDate,
) -> QueryResult<Vec<Entry>> {
    with_conn!(conn, |c| {
        calendar_entries::table
            .filter(calendar_entries::property_id.eq(property_id))
            .filter(is_live())
            .filter(calendar_entries::check_out.gt(from))
            .order(calendar_entries::check_in.asc())
            .select(Entry::as_select())
            .load(c)
            .await
    })
}

/// What a listing's actor loads, read in one statement (so one snapshot):
/// the listing's head (its last event's seq), when it was delisted (if it was), and its
/// live claims that end after `from`, by check-in. `None`: no such listing.
pub async fn load_for_actor(
    conn: &mut impl AsConn,
    property_id: i64,
    from: NaiveDate,
) -> QueryResult<Option<(i64, Option<NaiveDateTime>, Vec<Entry>)>> {
    let rows: Vec<(i64, Option<NaiveDateTime>, Option<Entry>)> = with_conn!(conn, |c| {
        properties::table
            .inner_join(calendar_heads::table)
            .left_join(
                calendar_entries::table.on(calendar_entries::property_id
                    .eq(properties::id)
                    .and(is_live())
                    .and(calendar_entries::check_out.gt(from))),
            )
            .filter(properties::id.eq(property_id))
            .order(calendar_entries::check_in.asc())
            .select((
                calendar_heads::seq,
                properties::deleted_at,
                Option::<Entry>::as_select(),
            ))
            .load(c)
            .await
    })?;
    let Some(&(seq, deleted_at, _)) = rows.as_slice().first() else {
        return Ok(None);
    };
    let entries = rows.into_iter().filter_map(|(_, _, entry)| entry).collect();
    Ok(Some((seq, deleted_at, entries)))
}

/// The listing's claims on a night of `[check_in, check_out)` at `now`,
/// read through the live-claims index (expired and cancelled rows are
/// not in it).
#[diesel::dsl::auto_type]
pub fn claims_on(
    property_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
) -> _ {
    let claims: claims_nights_at = claims_nights_at(now);
    calendar_entries::property_id
        .eq(property_id)
        .and(claims)
        .and(calendar_entries::check_in.lt(check_out))
        .and(calendar_entries::check_out.gt(check_in))
}

/// The first live claim on the listing sharing a night with
/// `[check_in, check_out)` at `now` (a lapsed hold claims nothing).
pub async fn overlapping(
    conn: &mut impl AsConn,
    property_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
) -> QueryResult<Option<Entry>> {
    overlapping_other(conn, property_id, check_in, check_out, now, 0).await
}

/// [`overlapping`], but for entry `except` (a booking moving to nights
/// that overlap its own).
pub async fn overlapping_other(
    conn: &mut impl AsConn,
    property_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
    except: i64,
) -> QueryResult<Option<Entry>> {
    with_conn!(conn, |c| {
        calendar_entries::table
            .filter(claims_on(property_id, check_in, check_out, now))
            .filter(calendar_entries::id.ne(except))
            .select(Entry::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// A booking's new nights, guests and price, if it is still `status`
/// (`None` if not).
pub async fn move_booking(
    conn: &mut impl AsConn,
    id: i64,
    status: &str,
    moved: &NewEntry<'_>,
    now: NaiveDateTime,
) -> QueryResult<Option<Entry>> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        diesel::update(e::calendar_entries.find(id).filter(e::status.eq(status)))
            .set((
                e::check_in.eq(moved.check_in),
                e::check_out.eq(moved.check_out),
                e::guests.eq(moved.guests),
                e::nights.eq(moved.nights),
                e::price_per_night.eq(moved.price_per_night),
                e::cleaning_fee.eq(moved.cleaning_fee),
                e::total.eq(moved.total),
                e::price_detail.eq(moved.price_detail),
                e::updated_at.eq(now),
            ))
            .returning(Entry::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// A constant written into the SQL rather than bound: a planner can match
/// a partial index's `WHERE status = 'pending'` only against the literal
/// (SQLite never sees through a bound parameter; PostgreSQL only in a
/// custom plan). Only for the fixed strings below, never for input.
fn literal(quoted: &'static str) -> SqlLiteral<Text> {
    sql(quoted)
}

/// The listing's pending holds that lapsed by `now` and share a night with
/// `[check_in, check_out)`. Every condition but the dates is served by
/// `calendar_entries_pending_by_property` (listing first), and none lets
/// the sweeper's `calendar_entries_lapse_queue` serve it (that index also
/// requires `kind = 'booking'`, which this never says), so any plan reads
/// this listing's lapsed holds and no other listing's.
#[diesel::dsl::auto_type]
pub fn lapsed_holds_of(
    property_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
) -> _ {
    let pending: SqlLiteral<Text> = literal("'pending'");
    calendar_entries::property_id
        .eq(property_id)
        .and(calendar_entries::status.eq(pending))
        .and(calendar_entries::hold_expires_at.le(now))
        .and(calendar_entries::check_in.lt(check_out))
        .and(calendar_entries::check_out.gt(check_in))
}

/// Marks the listing's lapsed holds on these nights expired (the
/// statement; see [`expire_lapsed_holds`]).
#[diesel::dsl::auto_type]
pub fn expire_lapsed_holds_of(
    property_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
) -> _ {
    let expired: &'static str = "expired";
    let lapsed: lapsed_holds_of = lapsed_holds_of(property_id, check_in, check_out, now);
    update(calendar_entries::table.filter(lapsed)).set((
        calendar_entries::status.eq(expired),
        calendar_entries::updated_at.eq(now),
    ))
}

/// Marks the listing's lapsed holds that share a night with
/// `[check_in, check_out)` expired; returns them. A new claim on those
/// nights needs it (PostgreSQL's exclusion constraint still counts a
/// `pending` row); the listing's other lapsed holds are the sweeper's, so
/// a booking does no work for holds it does not touch.
pub async fn expire_lapsed_holds(
    conn: &mut impl AsConn,
    property_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
) -> QueryResult<Vec<Entry>> {
    with_conn!(conn, |c| {
        expire_lapsed_holds_of(property_id, check_in, check_out, now)
            .returning(Entry::as_returning())
            .get_results(c)
            .await
    })
}

/// Lapsed holds of any listing, as the sweeper's queue reads them: exactly
/// the predicate of `calendar_entries_lapse_queue`.
#[diesel::dsl::auto_type]
pub fn lapse_queue(now: NaiveDateTime) -> _ {
    let pending: SqlLiteral<Text> = literal("'pending'");
    let booking: SqlLiteral<Text> = literal("'booking'");
    calendar_entries::status
        .eq(pending)
        .and(calendar_entries::kind.eq(booking))
        .and(calendar_entries::hold_expires_at.le(now))
}

/// The first `limit` lapsed holds in the order they lapsed, as (hold,
/// listing): the first `limit` entries of the queue's index, however many
/// holds have lapsed.
#[diesel::dsl::auto_type]
pub fn lapse_queue_page_of(now: NaiveDateTime, limit: i64) -> _ {
    let lapsed: lapse_queue = lapse_queue(now);
    calendar_entries::table
        .filter(lapsed)
        .order(calendar_entries::hold_expires_at.asc())
        .select((calendar_entries::id, calendar_entries::property_id))
        .limit(limit)
}

/// The sweeper's next page (see [`lapse_queue_page_of`]). On PostgreSQL
/// the holds are locked, and holds another transaction has locked are
/// skipped, so sweepers on several nodes take different pages and never
/// wait.
pub async fn lapse_queue_page(
    conn: &mut impl AsConn,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    match conn.as_conn() {
        // Inside `BEGIN IMMEDIATE`: no other writer runs until commit.
        Conn::Sqlite(c) => lapse_queue_page_of(now, limit).load(c).await,
        Conn::Postgres(c) => {
            lapse_queue_page_of(now, limit)
                .for_update()
                .skip_locked()
                .load(c)
                .await
        }
    }
}

/// Marks these holds expired, those still pending and lapsed at `now`
/// (PostgreSQL's statement; see [`expire_holds`]). It finds them by id
/// only: it does not say `kind`, so the lapse queue's index, which a
/// planner with stale statistics would walk end to end (measured: 106,000
/// rows filtered to expire 500), cannot serve it.
#[diesel::dsl::auto_type]
pub fn expire_holds_of(ids: Vec<i64>, now: NaiveDateTime) -> _ {
    let pending: SqlLiteral<Text> = literal("'pending'");
    let expired: &'static str = "expired";
    update(
        calendar_entries::table
            .filter(calendar_entries::id.eq_any(ids))
            .filter(calendar_entries::status.eq(pending))
            .filter(calendar_entries::hold_expires_at.le(now)),
    )
    .set((
        calendar_entries::status.eq(expired),
        calendar_entries::updated_at.eq(now),
    ))
}

/// The same for one hold (SQLite's statement; see [`expire_holds`]).
#[diesel::dsl::auto_type]
pub fn expire_hold_of(id: i64, now: NaiveDateTime) -> _ {
    let pending: SqlLiteral<Text> = literal("'pending'");
    let expired: &'static str = "expired";
    update(
        calendar_entries::table
            .filter(calendar_entries::id.eq(id))
            .filter(calendar_entries::status.eq(pending))
            .filter(calendar_entries::hold_expires_at.le(now)),
    )
    .set((
        calendar_entries::status.eq(expired),
        calendar_entries::updated_at.eq(now),
    ))
}

/// Marks these holds expired, those still pending and lapsed at `now`;
/// returns them. The caller holds their listings' calendar locks.
///
/// PostgreSQL: one statement for them all. SQLite: one execution of one
/// prepared statement per hold, by rowid, on its own thread (no round
/// trips to save there). An id list would do on SQLite only while its
/// statistics agree: once they call the list a large part of the table
/// (analyzed when it was small), it scans the whole table instead.
pub async fn expire_holds(
    conn: &mut impl AsConn,
    ids: Vec<i64>,
    now: NaiveDateTime,
) -> QueryResult<Vec<Entry>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match conn.as_conn() {
        Conn::Postgres(c) => {
            expire_holds_of(ids, now)
                .returning(Entry::as_returning())
                .get_results(c)
                .await
        }
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |sync| {
                let mut expired = Vec::with_capacity(ids.len());
                for id in ids {
                    let one = expire_hold_of(id, now).returning(Entry::as_returning());
                    expired.extend(diesel::RunQueryDsl::get_result(one, sync).optional()?);
                }
                Ok(expired)
            })
            .await
        }
    }
}

/// Moves an entry from `from` to `to`, if it is still in `from`.
pub async fn set_status(
    conn: &mut impl AsConn,
    id: i64,
    from: &str,
    to: &str,
    cancelled_by: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<Option<Entry>> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        diesel::update(e::calendar_entries.find(id).filter(e::status.eq(from)))
            .set((
                e::status.eq(to),
                e::cancelled_by.eq(cancelled_by),
                e::updated_at.eq(now),
            ))
            .returning(Entry::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Completes a confirmed stay, its review window closing at `reviews_close_at`;
/// none if it is no longer confirmed.
pub async fn complete(
    conn: &mut impl AsConn,
    id: i64,
    reviews_close_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Option<Entry>> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        diesel::update(
            e::calendar_entries
                .find(id)
                .filter(e::status.eq("confirmed")),
        )
        .set((
            e::status.eq("completed"),
            e::reviews_close_at.eq(reviews_close_at),
            e::updated_at.eq(now),
        ))
        .returning(Entry::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Confirmed stays whose check-out is on or before `by` (the latest local
/// date anywhere): (booking, listing, check-out, the listing's time zone),
/// earliest check-out first.
pub async fn to_complete(
    conn: &mut impl AsConn,
    by: NaiveDate,
    limit: i64,
) -> QueryResult<Vec<(i64, i64, NaiveDate, String)>> {
    use super::schema::properties::dsl as p;
    use calendar_entries::dsl as e;
    let confirmed: SqlLiteral<Text> = literal("'confirmed'");
    with_conn!(conn, |c| {
        e::calendar_entries
            .inner_join(p::properties)
            .filter(e::status.eq(confirmed.clone()))
            .filter(e::check_out.le(by))
            .order((e::check_out.asc(), e::id.asc()))
            .limit(limit)
            .select((e::id, e::property_id, e::check_out, p::time_zone))
            .load(c)
            .await
    })
}

/// Moves a pending hold's expiry to `until`; `None` if it is no longer pending.
pub async fn extend_hold(
    conn: &mut impl AsConn,
    id: i64,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Option<Entry>> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        diesel::update(e::calendar_entries.find(id).filter(e::status.eq("pending")))
            .set((e::hold_expires_at.eq(Some(until)), e::updated_at.eq(now)))
            .returning(Entry::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Deletes a block of this listing; returns it, or `None` if there was none.
pub async fn delete_block(
    conn: &mut impl AsConn,
    property_id: i64,
    id: i64,
) -> QueryResult<Option<Entry>> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        diesel::delete(
            e::calendar_entries
                .find(id)
                .filter(e::property_id.eq(property_id))
                .filter(e::kind.eq(KIND_BLOCK)),
        )
        .returning(Entry::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Does the listing have a booking that still claims a night after `today`?
pub async fn has_upcoming_bookings(
    conn: &mut impl AsConn,
    property_id: i64,
    today: NaiveDate,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        diesel::select(diesel::dsl::exists(
            e::calendar_entries
                .filter(e::property_id.eq(property_id))
                .filter(e::kind.eq(KIND_BOOKING))
                .filter(e::status.ne("completed"))
                .filter(claims_nights_at(now))
                .filter(e::check_out.gt(today)),
        ))
        .get_result(c)
        .await
    })
}

/// Whose bookings a listing shows.
#[derive(Clone, Copy, Debug)]
pub enum BookingsOf {
    /// Trips this user booked.
    Guest(i64),
    /// Bookings of this host's listings.
    Host(i64),
}

/// One page of bookings, newest first, starting below `before_id`.
pub async fn list_bookings(
    conn: &mut impl AsConn,
    of: BookingsOf,
    before_id: i64,
    limit: i64,
) -> QueryResult<Vec<Entry>> {
    use calendar_entries::dsl as e;
    with_conn!(conn, |c| {
        let mut q = e::calendar_entries
            .inner_join(properties::table)
            .filter(e::kind.eq(KIND_BOOKING))
            .filter(e::id.lt(before_id))
            .select(Entry::as_select())
            .into_boxed();
        q = match of {
            BookingsOf::Guest(id) => q.filter(e::guest_id.eq(id)),
            BookingsOf::Host(id) => q.filter(properties::host_id.eq(id)),
        };
        q.order(e::id.desc()).limit(limit).load(c).await
    })
}

/// A live claim as the search index keeps it (see `crate::search`).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = calendar_entries)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Claimed {
    pub id: i64,
    pub property_id: i64,
    pub status: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub hold_expires_at: Option<NaiveDateTime>,
}

impl Claimed {
    /// The claim the row makes, as the SQL reads it (see
    /// [`claims_nights_at`]): a hold until its expiry; a pending row
    /// without one claims nothing (the schema allows none).
    pub fn claim(&self) -> Option<crate::domain::calendar::Claim> {
        use crate::domain::calendar::{Busy, Claim};
        let busy = match self.status.as_str() {
            "pending" => Busy::Held,
            "confirmed" | "completed" => Busy::Booked,
            STATUS_BLOCKED => Busy::Blocked,
            _ => return None,
        };
        if busy == Busy::Held && self.hold_expires_at.is_none() {
            return None;
        }
        Some(Claim {
            id: self.id,
            dates: crate::domain::StayDates::from_stored(self.check_in, self.check_out),
            busy,
            held_until: self
                .hold_expires_at
                .filter(|_| busy == Busy::Held)
                .map(|t| t.and_utc()),
        })
    }
}

/// The live claims ending after `from` of the listings `ids` (of every
/// listing, given none).
pub async fn live_claims(
    conn: &mut impl AsConn,
    ids: Option<&[i64]>,
    from: NaiveDate,
) -> QueryResult<Vec<Claimed>> {
    with_conn!(conn, |c| {
        let mut q = calendar_entries::table
            .filter(is_live())
            .filter(calendar_entries::check_out.gt(from))
            .select(Claimed::as_select())
            .into_boxed();
        if let Some(ids) = ids {
            q = q.filter(calendar_entries::property_id.eq_any(ids));
        }
        q.load(c).await
    })
}
