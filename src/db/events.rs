//! The `calendar_events` table: each listing's event log. Events are written
//! in the transaction that made the change, numbered after the listing's
//! `calendar_seq`, which moves with them; the listing's row is locked first
//! (`properties::lock_calendar`), so numbers never repeat or skip.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::AsConn;
use super::calendar::Entry;
use super::properties::Property;
use super::schema::{calendar_events, deployment, properties};
use crate::domain::{CalendarEvent, EventKind, PropertyId, UserId};
use crate::with_conn;

#[derive(Queryable, Selectable, Insertable)]
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

/// What happened, to which booking or block (none: to the listing itself).
pub type Change<'a> = (EventKind, Option<&'a Entry>);

/// Records `changes` as the listing's next events, in order. Call inside the
/// write transaction that made them, with `property` as
/// `properties::lock_calendar` returned it.
pub async fn append(
    conn: &mut impl AsConn,
    property: &Property,
    changes: &[Change<'_>],
    now: NaiveDateTime,
) -> QueryResult<Vec<CalendarEvent>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<EventRow> = changes
        .iter()
        .zip(property.calendar_seq + 1..)
        .map(|((kind, entry), seq)| EventRow {
            property_id: property.id,
            seq,
            kind: kind.as_str().to_owned(),
            entry_id: entry.map(|e| e.id),
            check_in: entry.map(|e| e.check_in),
            check_out: entry.map(|e| e.check_out),
            hold_expires_at: entry.and_then(|e| e.hold_expires_at),
            guest_id: entry.and_then(|e| e.guest_id),
            host_id: property.host_id,
            created_at: now,
        })
        .collect();
    let last = property.calendar_seq + rows.len() as i64;
    with_conn!(conn, |c| {
        diesel::update(properties::table.find(property.id))
            .set(properties::calendar_seq.eq(last))
            .execute(c)
            .await?;
        // One row at a time: SQLite has no multi-row insert here, and a
        // write rarely records more than two events.
        for row in &rows {
            diesel::insert_into(calendar_events::table)
                .values(row)
                .execute(c)
                .await?;
        }
        QueryResult::Ok(())
    })?;
    rows.into_iter().map(EventRow::into_event).collect()
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
            .find(property_id.0)
            .select((
                properties::calendar_seq,
                properties::deleted_at.is_not_null(),
            ))
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
        properties::table
            .filter(properties::id.eq_any(&ids))
            .select((properties::id, properties::calendar_seq))
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, seq)| (PropertyId(id), seq))
        .collect())
}

/// Deletes events recorded before `before`; returns how many.
pub async fn prune(conn: &mut impl AsConn, before: NaiveDateTime) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::delete(calendar_events::table.filter(calendar_events::created_at.lt(before)))
            .execute(c)
            .await
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
