//! The `booking_changes` table: a confirmed booking's move to a dearer
//! stay, waiting for the payment of the difference.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::AsConn;
use super::schema::booking_changes;
use crate::with_conn;

pub const AWAITING_PAYMENT: &str = "awaiting_payment";
pub const APPLIED: &str = "applied";
pub const UNAVAILABLE: &str = "unavailable";
pub const SUPERSEDED: &str = "superseded";

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = booking_changes)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Change {
    pub id: i64,
    pub booking_id: i64,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: i64,
    pub total: i64,
    pub difference: i64,
    pub price_detail: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = booking_changes)]
pub struct NewChange<'a> {
    pub booking_id: i64,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: i64,
    pub total: i64,
    pub difference: i64,
    pub price_detail: &'a str,
    pub status: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Records a change awaiting payment; one awaiting before it is superseded.
pub async fn request(conn: &mut impl AsConn, new: &NewChange<'_>) -> QueryResult<Change> {
    use booking_changes::dsl as d;
    with_conn!(conn, |c| {
        diesel::update(
            d::booking_changes
                .filter(d::booking_id.eq(new.booking_id))
                .filter(d::status.eq(AWAITING_PAYMENT)),
        )
        .set((d::status.eq(SUPERSEDED), d::updated_at.eq(new.updated_at)))
        .execute(c)
        .await
    })?;
    with_conn!(conn, |c| {
        diesel::insert_into(booking_changes::table)
            .values(new)
            .returning(Change::as_returning())
            .get_result(c)
            .await
    })
}

pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Change>> {
    with_conn!(conn, |c| {
        booking_changes::table
            .find(id)
            .select(Change::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The booking's change awaiting payment, if any.
pub async fn awaiting(conn: &mut impl AsConn, booking_id: i64) -> QueryResult<Option<Change>> {
    with_conn!(conn, |c| {
        booking_changes::table
            .filter(booking_changes::booking_id.eq(booking_id))
            .filter(booking_changes::status.eq(AWAITING_PAYMENT))
            .select(Change::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Ends a change awaiting payment (`applied` or `unavailable`); `None` if
/// it was no longer awaiting.
pub async fn end(
    conn: &mut impl AsConn,
    id: i64,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<Change>> {
    use booking_changes::dsl as d;
    with_conn!(conn, |c| {
        diesel::update(
            d::booking_changes
                .find(id)
                .filter(d::status.eq(AWAITING_PAYMENT)),
        )
        .set((d::status.eq(status), d::updated_at.eq(now)))
        .returning(Change::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}
