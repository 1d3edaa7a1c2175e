//! The `payments` table (Roost's record of each payment a guest starts for
//! a booking) and `webhook_events` (each gateway event, processed once).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::AsConn;
use super::schema::{payments, webhook_events};
use crate::with_conn;

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = payments)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Payment {
    pub id: i64,
    pub booking_id: i64,
    pub guest_id: i64,
    pub gateway: String,
    pub gateway_payment_id: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub failure_reason: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Refunded, or being refunded (pending refunds count).
    pub amount_refunded: i64,
    /// When the reconciler last asked the gateway about it.
    pub checked_at: Option<NaiveDateTime>,
    /// The change whose difference it pays (none: the booking's total).
    pub change_id: Option<i64>,
}

impl Payment {
    /// What is paid and not (being) given back.
    pub fn refundable(&self) -> i64 {
        if self.status == "succeeded" || self.status == "refunded" {
            self.amount - self.amount_refunded
        } else {
            0
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
pub struct NewPayment<'a> {
    pub booking_id: i64,
    pub guest_id: i64,
    pub gateway: &'a str,
    pub gateway_payment_id: &'a str,
    pub status: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub failure_reason: Option<&'a str>,
    pub card_brand: Option<&'a str>,
    pub card_last4: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub change_id: Option<i64>,
}

pub async fn insert(conn: &mut impl AsConn, new: &NewPayment<'_>) -> QueryResult<Payment> {
    with_conn!(conn, |c| {
        diesel::insert_into(payments::table)
            .values(new)
            .returning(Payment::as_returning())
            .get_result(c)
            .await
    })
}

pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Payment>> {
    with_conn!(conn, |c| {
        payments::table
            .find(id)
            .select(Payment::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The payment the gateway knows as `gateway_payment_id`, and the listing
/// of its booking.
pub async fn find_with_listing(
    conn: &mut impl AsConn,
    gateway: &str,
    gateway_payment_id: &str,
) -> QueryResult<Option<(Payment, i64)>> {
    use super::schema::calendar_entries;
    with_conn!(conn, |c| {
        payments::table
            .inner_join(calendar_entries::table.on(calendar_entries::id.eq(payments::booking_id)))
            .filter(payments::gateway.eq(gateway))
            .filter(payments::gateway_payment_id.eq(gateway_payment_id))
            .select((Payment::as_select(), calendar_entries::property_id))
            .first(c)
            .await
            .optional()
    })
}

pub async fn find_by_gateway_id(
    conn: &mut impl AsConn,
    gateway: &str,
    gateway_payment_id: &str,
) -> QueryResult<Option<Payment>> {
    with_conn!(conn, |c| {
        payments::table
            .filter(payments::gateway.eq(gateway))
            .filter(payments::gateway_payment_id.eq(gateway_payment_id))
            .select(Payment::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// A booking's payments, newest first.
pub async fn for_booking(conn: &mut impl AsConn, booking_id: i64) -> QueryResult<Vec<Payment>> {
    with_conn!(conn, |c| {
        payments::table
            .filter(payments::booking_id.eq(booking_id))
            .order(payments::id.desc())
            .select(Payment::as_select())
            .load(c)
            .await
    })
}

/// Saves a payment's status and what the gateway said of it.
pub async fn save(conn: &mut impl AsConn, p: &Payment) -> QueryResult<Payment> {
    use payments::dsl as d;
    with_conn!(conn, |c| {
        diesel::update(d::payments.find(p.id))
            .set((
                d::status.eq(&p.status),
                d::failure_reason.eq(&p.failure_reason),
                d::card_brand.eq(&p.card_brand),
                d::card_last4.eq(&p.card_last4),
                d::updated_at.eq(p.updated_at),
            ))
            .returning(Payment::as_returning())
            .get_result(c)
            .await
    })
}

/// Payments started since `since` and last changed before `before` whose
/// outcome has not arrived, and not asked about since `before` (the
/// reconciler's list), oldest first.
pub async fn unsettled(
    conn: &mut impl AsConn,
    since: NaiveDateTime,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Payment>> {
    with_conn!(conn, |c| {
        payments::table
            .filter(payments::status.eq_any(["requires_payment_method", "processing"]))
            .filter(payments::created_at.ge(since))
            .filter(payments::updated_at.le(before))
            .filter(
                payments::checked_at
                    .is_null()
                    .or(payments::checked_at.le(before)),
            )
            .order(payments::updated_at.asc())
            .limit(limit)
            .select(Payment::as_select())
            .load(c)
            .await
    })
}

/// Claims a payment for one reconciler: true if this caller asked first
/// since `before` (several nodes run the job; each payment is asked once).
pub async fn claim_check(
    conn: &mut impl AsConn,
    id: i64,
    before: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use payments::dsl as d;
    with_conn!(conn, |c| {
        diesel::update(
            d::payments
                .find(id)
                .filter(d::checked_at.is_null().or(d::checked_at.le(before))),
        )
        .set(d::checked_at.eq(now))
        .execute(c)
        .await
    })
    .map(|n| n == 1)
}

/// Records a gateway event as processed; false if it already was (then
/// the caller changes nothing). Inside the transaction that processes it.
pub async fn record_event(
    conn: &mut impl AsConn,
    gateway: &str,
    event_id: &str,
    kind: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use webhook_events::dsl as w;
    with_conn!(conn, |c| {
        diesel::insert_into(w::webhook_events)
            .values((
                w::gateway.eq(gateway),
                w::event_id.eq(event_id),
                w::kind.eq(kind),
                w::received_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await
    })
    .map(|n| n == 1)
}
