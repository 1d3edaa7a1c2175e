//! The `refunds` table: each refund of a payment, and the payment's
//! `amount_refunded` kept with it (a check on `payments` keeps it within
//! the payment, so refunds can never add up to more than was paid).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::AsConn;
use super::payments::Payment;
use super::schema::{payments, refunds};
use crate::with_conn;

pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = refunds)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Refund {
    pub id: i64,
    pub payment_id: i64,
    pub booking_id: i64,
    pub gateway_refund_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: String,
    /// The refund line by line (`[{kind, amount}]` as JSON).
    pub lines: String,
    pub failure_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub checked_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = refunds, treat_none_as_default_value = false)]
pub struct NewRefund<'a> {
    pub payment_id: i64,
    pub booking_id: i64,
    pub gateway_refund_id: Option<&'a str>,
    pub amount: i64,
    pub currency: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub lines: &'a str,
    pub failure_reason: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Records a refund of `new.amount` and counts it against its payment, in
/// the caller's transaction; the payment's check refuses (an error) a
/// refund that would take back more than was paid.
pub async fn create(conn: &mut impl AsConn, new: &NewRefund<'_>) -> QueryResult<(Refund, Payment)> {
    use payments::dsl as p;
    let payment = with_conn!(conn, |c| {
        diesel::update(p::payments.find(new.payment_id))
            .set((
                p::amount_refunded.eq(p::amount_refunded + new.amount),
                p::updated_at.eq(new.updated_at),
            ))
            .returning(Payment::as_returning())
            .get_result(c)
            .await
    })?;
    let refund = with_conn!(conn, |c| {
        diesel::insert_into(refunds::table)
            .values(new)
            .returning(Refund::as_returning())
            .get_result(c)
            .await
    })?;
    Ok((refund, payment))
}

pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Refund>> {
    with_conn!(conn, |c| {
        refunds::table
            .find(id)
            .select(Refund::as_select())
            .first(c)
            .await
            .optional()
    })
}

pub async fn find_by_gateway_id(
    conn: &mut impl AsConn,
    gateway_id: &str,
) -> QueryResult<Option<Refund>> {
    with_conn!(conn, |c| {
        refunds::table
            .filter(refunds::gateway_refund_id.eq(gateway_id))
            .select(Refund::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// A booking's refunds, oldest first.
pub async fn for_booking(conn: &mut impl AsConn, booking_id: i64) -> QueryResult<Vec<Refund>> {
    with_conn!(conn, |c| {
        refunds::table
            .filter(refunds::booking_id.eq(booking_id))
            .order(refunds::id.asc())
            .select(Refund::as_select())
            .load(c)
            .await
    })
}

/// Notes the gateway's id of a refund Roost asked for (once).
pub async fn set_gateway_id(
    conn: &mut impl AsConn,
    id: i64,
    gateway_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    use refunds::dsl as r;
    with_conn!(conn, |c| {
        diesel::update(r::refunds.find(id).filter(r::gateway_refund_id.is_null()))
            .set((r::gateway_refund_id.eq(gateway_id), r::updated_at.eq(now)))
            .execute(c)
            .await
    })
    .map(|_| ())
}

/// Moves a pending refund to `status` (`succeeded` or `failed`); `None` if
/// it was not pending. A failed refund no longer counts against its payment.
pub async fn settle(
    conn: &mut impl AsConn,
    refund: &Refund,
    status: &str,
    gateway_id: Option<&str>,
    failure: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Option<(Refund, Payment)>> {
    use payments::dsl as p;
    use refunds::dsl as r;
    let gateway_id = gateway_id
        .map(str::to_owned)
        .or(refund.gateway_refund_id.clone());
    let settled = with_conn!(conn, |c| {
        diesel::update(r::refunds.find(refund.id).filter(r::status.eq(PENDING)))
            .set((
                r::status.eq(status),
                r::gateway_refund_id.eq(&gateway_id),
                r::failure_reason.eq(failure),
                r::updated_at.eq(now),
            ))
            .returning(Refund::as_returning())
            .get_result(c)
            .await
            .optional()
    })?;
    let Some(settled) = settled else {
        return Ok(None);
    };
    let back = if status == FAILED { settled.amount } else { 0 };
    let payment = with_conn!(conn, |c| {
        diesel::update(p::payments.find(settled.payment_id))
            .set((
                p::amount_refunded.eq(p::amount_refunded - back),
                p::updated_at.eq(now),
            ))
            .returning(Payment::as_returning())
            .get_result(c)
            .await
    })?;
    Ok(Some((settled, payment)))
}

/// What the payment's succeeded refunds add up to.
pub async fn succeeded_total(conn: &mut impl AsConn, payment_id: i64) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        refunds::table
            .filter(refunds::payment_id.eq(payment_id))
            .filter(refunds::status.eq(SUCCEEDED))
            .select(refunds::amount)
            .load::<i64>(c)
            .await
    })
    .map(|amounts| amounts.into_iter().sum())
}

/// Refunds decided but not yet sent to the gateway since before `before`
/// (the retry's work list), oldest first.
pub async fn unsent(
    conn: &mut impl AsConn,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Refund>> {
    with_conn!(conn, |c| {
        refunds::table
            .filter(refunds::status.eq(PENDING))
            .filter(refunds::gateway_refund_id.is_null())
            .filter(refunds::updated_at.le(before))
            .order(refunds::updated_at.asc())
            .limit(limit)
            .select(Refund::as_select())
            .load(c)
            .await
    })
}

/// Refunds the gateway has taken whose outcome has not arrived since
/// before `before`, and not asked about since then (the reconciler's list).
pub async fn awaiting_outcome(
    conn: &mut impl AsConn,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Refund>> {
    with_conn!(conn, |c| {
        refunds::table
            .filter(refunds::status.eq(PENDING))
            .filter(refunds::gateway_refund_id.is_not_null())
            .filter(refunds::updated_at.le(before))
            .filter(
                refunds::checked_at
                    .is_null()
                    .or(refunds::checked_at.le(before)),
            )
            .order(refunds::updated_at.asc())
            .limit(limit)
            .select(Refund::as_select())
            .load(c)
            .await
    })
}

/// Claims a refund for one reconciler: true if this caller asked first
/// since `before` (several nodes run the job; each refund is asked once).
pub async fn claim_check(
    conn: &mut impl AsConn,
    id: i64,
    before: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use refunds::dsl as r;
    with_conn!(conn, |c| {
        diesel::update(
            r::refunds
                .find(id)
                .filter(r::checked_at.is_null().or(r::checked_at.le(before))),
        )
        .set(r::checked_at.eq(now))
        .execute(c)
        .await
    })
    .map(|n| n == 1)
}
