//! The sandbox card processor's tables: its settings, its payments, and
//! its webhook outbox. Only the sandbox (`payments::sandbox`) reads them.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{
    sandbox_idempotency_keys, sandbox_payment_intents, sandbox_refunds, sandbox_settings,
    sandbox_webhook_outbox,
};
use super::{AsConn, Conn};
use crate::with_conn;

/// The processor's API key and webhook signing secret (made by migration).
pub async fn settings(conn: &mut impl AsConn) -> QueryResult<(String, String)> {
    with_conn!(conn, |c| {
        sandbox_settings::table
            .find(1_i64)
            .select((sandbox_settings::api_key, sandbox_settings::webhook_secret))
            .first(c)
            .await
    })
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sandbox_payment_intents, treat_none_as_default_value = false)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Intent {
    pub id: String,
    pub client_secret: String,
    pub amount: i64,
    pub currency: String,
    pub reference: String,
    pub status: String,
    pub last_error: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub succeed_at: Option<NaiveDateTime>,
    pub amount_refunded: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub async fn insert_intent(conn: &mut impl AsConn, intent: &Intent) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(sandbox_payment_intents::table)
            .values(intent)
            .execute(c)
            .await
    })
    .map(|_| ())
}

pub async fn find_intent(conn: &mut impl AsConn, id: &str) -> QueryResult<Option<Intent>> {
    with_conn!(conn, |c| {
        sandbox_payment_intents::table
            .find(id)
            .select(Intent::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Saves `intent` (by id) as it now is.
pub async fn save_intent(conn: &mut impl AsConn, intent: &Intent) -> QueryResult<()> {
    use sandbox_payment_intents::dsl as i;
    with_conn!(conn, |c| {
        diesel::update(i::sandbox_payment_intents.find(&intent.id))
            .set((
                i::status.eq(&intent.status),
                i::last_error.eq(&intent.last_error),
                i::card_brand.eq(&intent.card_brand),
                i::card_last4.eq(&intent.card_last4),
                i::succeed_at.eq(intent.succeed_at),
                i::amount_refunded.eq(intent.amount_refunded),
                i::updated_at.eq(intent.updated_at),
            ))
            .execute(c)
            .await
    })
    .map(|_| ())
}

/// Processing payments whose time has come: marked succeeded, returned.
pub async fn succeed_due(
    conn: &mut impl AsConn,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Intent>> {
    use sandbox_payment_intents::dsl as i;
    with_conn!(conn, |c| {
        let due: Vec<String> = i::sandbox_payment_intents
            .filter(i::status.eq("processing"))
            .filter(i::succeed_at.le(now))
            .select(i::id)
            .limit(limit)
            .load(c)
            .await?;
        diesel::update(
            i::sandbox_payment_intents
                .filter(i::id.eq_any(&due))
                .filter(i::status.eq("processing")),
        )
        .set((i::status.eq("succeeded"), i::updated_at.eq(now)))
        .returning(Intent::as_returning())
        .get_results(c)
        .await
    })
}

#[derive(Insertable)]
#[diesel(table_name = sandbox_webhook_outbox, treat_none_as_default_value = false)]
struct NewDelivery<'a> {
    event_id: &'a str,
    payload: &'a str,
    attempts: i64,
    next_attempt_at: NaiveDateTime,
    delivered_at: Option<NaiveDateTime>,
    last_error: Option<&'a str>,
    created_at: NaiveDateTime,
}

/// Queues an event's delivery for `at`.
pub async fn enqueue(
    conn: &mut impl AsConn,
    event_id: &str,
    payload: &str,
    at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = NewDelivery {
        event_id,
        payload,
        attempts: 0,
        next_attempt_at: at,
        delivered_at: None,
        last_error: None,
        created_at: now,
    };
    with_conn!(conn, |c| {
        diesel::insert_into(sandbox_webhook_outbox::table)
            .values(&row)
            .execute(c)
            .await
    })
    .map(|_| ())
}

/// A delivery to make.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub payload: String,
    pub attempts: i64,
}

/// Takes up to `limit` due deliveries for this worker: they are not due
/// again before `lease_until` (so another node's worker leaves them be,
/// and a worker that dies has them retried then). Call in a write
/// transaction; on PostgreSQL rows another worker holds are skipped.
pub async fn take_due(
    conn: &mut impl AsConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    use sandbox_webhook_outbox::dsl as o;
    let due = o::sandbox_webhook_outbox
        .filter(o::delivered_at.is_null())
        .filter(o::next_attempt_at.le(now))
        .order((o::next_attempt_at.asc(), o::id.asc()))
        .select((o::id, o::event_id, o::payload, o::attempts))
        .limit(limit);
    let rows: Vec<(i64, String, String, i64)> = match conn.as_conn() {
        Conn::Sqlite(c) => due.load(c).await?,
        Conn::Postgres(c) => due.for_update().skip_locked().load(c).await?,
    };
    let taken: Vec<Delivery> = rows
        .into_iter()
        .map(|(id, event_id, payload, attempts)| Delivery {
            id,
            event_id,
            payload,
            attempts,
        })
        .collect();
    let ids: Vec<i64> = taken.iter().map(|d| d.id).collect();
    with_conn!(conn, |c| {
        diesel::update(o::sandbox_webhook_outbox.filter(o::id.eq_any(&ids)))
            .set(o::next_attempt_at.eq(lease_until))
            .execute(c)
            .await
    })?;
    Ok(taken)
}

/// The delivery succeeded (the receiver answered 2xx).
pub async fn delivered(conn: &mut impl AsConn, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    use sandbox_webhook_outbox::dsl as o;
    with_conn!(conn, |c| {
        diesel::update(o::sandbox_webhook_outbox.find(id))
            .set((
                o::delivered_at.eq(Some(now)),
                o::attempts.eq(o::attempts + 1),
            ))
            .execute(c)
            .await
    })
    .map(|_| ())
}

/// The delivery failed: try again at `retry_at`.
pub async fn failed(
    conn: &mut impl AsConn,
    id: i64,
    retry_at: NaiveDateTime,
    error: &str,
) -> QueryResult<()> {
    use sandbox_webhook_outbox::dsl as o;
    with_conn!(conn, |c| {
        diesel::update(o::sandbox_webhook_outbox.find(id))
            .set((
                o::next_attempt_at.eq(retry_at),
                o::attempts.eq(o::attempts + 1),
                o::last_error.eq(Some(error)),
            ))
            .execute(c)
            .await
    })
    .map(|_| ())
}

/// A refund the processor made.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sandbox_refunds, treat_none_as_default_value = false)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SandboxRefund {
    pub id: String,
    pub payment_intent: String,
    pub amount: i64,
    pub status: String,
    pub reference: Option<String>,
    pub created_at: NaiveDateTime,
}

pub async fn insert_refund(conn: &mut impl AsConn, refund: &SandboxRefund) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(sandbox_refunds::table)
            .values(refund)
            .execute(c)
            .await
    })
    .map(|_| ())
}

pub async fn find_refund(conn: &mut impl AsConn, id: &str) -> QueryResult<Option<SandboxRefund>> {
    with_conn!(conn, |c| {
        sandbox_refunds::table
            .find(id)
            .select(SandboxRefund::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The first answer given to an `Idempotency-Key`: (the request it
/// answered, status, body).
pub async fn find_key(
    conn: &mut impl AsConn,
    key: &str,
) -> QueryResult<Option<(String, i64, String)>> {
    use sandbox_idempotency_keys::dsl as k;
    with_conn!(conn, |c| {
        k::sandbox_idempotency_keys
            .find(key)
            .select((k::request, k::status, k::response))
            .first(c)
            .await
            .optional()
    })
}

/// Remembers the answer to an `Idempotency-Key`, in the transaction that
/// made it (a racing second request with the key fails on the key).
pub async fn save_key(
    conn: &mut impl AsConn,
    key: &str,
    request: &str,
    status: i64,
    response: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    use sandbox_idempotency_keys::dsl as k;
    with_conn!(conn, |c| {
        diesel::insert_into(k::sandbox_idempotency_keys)
            .values((
                k::key.eq(key),
                k::request.eq(request),
                k::status.eq(status),
                k::response.eq(response),
                k::created_at.eq(now),
            ))
            .execute(c)
            .await
    })
    .map(|_| ())
}
