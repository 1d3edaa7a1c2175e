//! `/api/v1/bookings`: holding nights, my trips, my listings' bookings, cancelling.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::form::Form;
use super::pagination::{PageQuery, page};
use crate::actors::property::effective_status;
use crate::actors::property::{Cancelled, Changed};
use crate::auth::AuthUser;
use crate::commit::Reply;
use crate::db::calendar::{BookingsOf, Entry};
use crate::db::changes::Change as BookingChange;
use crate::db::payments::Payment;
use crate::db::refunds::Refund;
use crate::domain::cancellation::RefundQuote;
use crate::domain::cancellation::{CancellationPolicy, CancelledBy, RefundRule};
use crate::domain::payment::NextAction;
use crate::domain::pricing::{Line, NightPrice, PriceQuote};
use crate::domain::property::in_range;
use crate::domain::{BookingId, BookingStatus, Currency, PropertyId, StayDates, Transition};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::bookings;
use crate::services::payments::{self, Started};
use crate::state::AppState;

/// A booking as its guest and its host see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BookingResponse {
    pub id: i64,
    pub property_id: i64,
    pub guest_id: Option<i64>,
    /// As of now: a hold past its expiry reads `expired` even before the sweeper marks it.
    pub status: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub nights: Option<i64>,
    pub guests: Option<i64>,
    pub price_per_night: Option<i64>,
    pub cleaning_fee: Option<i64>,
    pub total: Option<i64>,
    pub currency: Option<String>,
    /// While pending: when the hold lapses unless paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<i64>,
    /// A completed stay's: when its review window closes
    /// (`/bookings/{id}/reviews`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviews_close_at: Option<DateTime<Utc>>,
    /// What each night was sold at, and the lines of the total (as quoted
    /// when it was booked; later price changes never touch them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub night_prices: Option<Vec<NightPrice>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<Line>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its latest payment (`GET /bookings/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentResponse>,
    /// Its refunds, oldest first (`GET /bookings/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunds: Option<Vec<RefundResponse>>,
    /// What its cancellation, or its move to a cheaper stay, refunds (that
    /// answer only): sent to the gateway now, its outcome a `payment` frame
    /// later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundQuote>,
    /// Its move to a dearer stay, awaiting the payment of the difference
    /// (the change's answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<ChangeResponse>,
}

/// A paid booking's change to a dearer stay.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangeResponse {
    pub id: i64,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: i64,
    pub total: i64,
    /// What `POST /bookings/{id}/payments` now charges.
    pub difference: i64,
    /// `awaiting_payment`, `applied`, `unavailable` (the nights were taken
    /// before it was paid: the difference went back) or `superseded`.
    pub status: String,
    pub lines: Option<Vec<Line>>,
}

impl From<BookingChange> for ChangeResponse {
    fn from(c: BookingChange) -> Self {
        let lines = serde_json::from_str::<PriceQuote>(&c.price_detail)
            .ok()
            .map(|q| q.lines);
        Self {
            id: c.id,
            check_in: c.check_in,
            check_out: c.check_out,
            guests: c.guests,
            total: c.total,
            difference: c.difference,
            status: c.status,
            lines,
        }
    }
}

/// A refund of a payment, line by line.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RefundResponse {
    pub id: i64,
    pub payment_id: i64,
    pub amount: i64,
    pub currency: String,
    /// `pending` (asked of the gateway), `succeeded` or `failed`.
    pub status: String,
    /// `booking_cancelled`, `booking_changed`, `hold_lapsed`, `already_paid`, `refunded_at_gateway`.
    pub reason: String,
    pub lines: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Refund> for RefundResponse {
    fn from(r: Refund) -> Self {
        Self {
            id: r.id,
            payment_id: r.payment_id,
            amount: r.amount,
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            lines: serde_json::from_str(&r.lines).unwrap_or(Value::Null),
            failure_reason: r.failure_reason,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// A payment as its guest and the listing's host see it: never a card
/// number, only its brand and last four digits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentResponse {
    pub id: i64,
    pub booking_id: i64,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    /// Refunded or being refunded.
    pub amount_refunded: i64,
    pub gateway: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_brand: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<String>,
    /// Just started: where the payer's client posts the card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Payment> for PaymentResponse {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id,
            booking_id: p.booking_id,
            status: p.status,
            amount: p.amount,
            currency: p.currency,
            amount_refunded: p.amount_refunded,
            gateway: p.gateway,
            failure_reason: p.failure_reason,
            card_brand: p.card_brand,
            card_last4: p.card_last4,
            next_action: None,
            created_at: p.created_at.and_utc(),
            updated_at: p.updated_at.and_utc(),
        }
    }
}

impl From<Started> for PaymentResponse {
    fn from(s: Started) -> Self {
        let mut response = PaymentResponse::from(s.payment);
        response.next_action = s.next_action;
        response
    }
}

impl From<Entry> for BookingResponse {
    fn from(e: Entry) -> Self {
        let status = effective_status(&e, crate::db::now())
            .map(BookingStatus::as_str)
            .unwrap_or("unknown");
        let sold: Option<PriceQuote> = e
            .price_detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok());
        let (night_prices, lines) = match sold {
            Some(q) => (Some(q.nights), Some(q.lines)),
            None => (None, None),
        };
        Self {
            id: e.id,
            property_id: e.property_id,
            guest_id: e.guest_id,
            status: status.to_owned(),
            check_in: e.check_in,
            check_out: e.check_out,
            nights: e.nights,
            guests: e.guests,
            price_per_night: e.price_per_night,
            cleaning_fee: e.cleaning_fee,
            total: e.total,
            currency: e.currency,
            hold_expires_at: e
                .hold_expires_at
                .filter(|_| status == "pending")
                .map(|t| t.and_utc()),
            cancelled_by: e.cancelled_by,
            reviews_close_at: e.reviews_close_at.map(|t| t.and_utc()),
            night_prices,
            lines,
            created_at: e.created_at.and_utc(),
            updated_at: e.updated_at.and_utc(),
            payment: None,
            refunds: None,
            refund: None,
            pending_change: None,
        }
    }
}

crate::raw_body! {
    /// A booking: a listing's nights `[check_in, check_out)`.
    #[schema(example = json!({"property_id": 1, "check_in": "2030-06-01", "check_out": "2030-06-04", "guests": 2}))]
    BookingBody {
        #[schema(required = true, minimum = 1)]
        property_id: i64,
        /// `YYYY-MM-DD`.
        #[schema(required = true, format = Date)]
        check_in: String,
        /// `YYYY-MM-DD`, after `check_in`.
        #[schema(required = true, format = Date)]
        check_out: String,
        /// 1 by default.
        #[schema(minimum = 1, maximum = 50)]
        guests: i64,
        /// The total the client was quoted, in minor units: if the price is
        /// not that now, 409 `price_changed` with the new quote.
        #[schema(minimum = 0)]
        expected_total: i64,
    }
}

crate::raw_body! {
    /// A change to a booking: any of its dates and its guests.
    #[schema(example = json!({"check_out": "2030-06-05", "guests": 3}))]
    ChangeBody {
        #[schema(format = Date)]
        check_in: String,
        #[schema(format = Date)]
        check_out: String,
        #[schema(minimum = 1, maximum = 50)]
        guests: i64,
    }
}

/// A booking's body (`{property_id, check_in, check_out, guests,
/// expected_total?}`), every bad field reported at once: REST's and
/// GraphQL's `book`.
pub fn booking_request(body: Map<String, Value>) -> Result<bookings::BookingRequest, ApiError> {
    let mut form = Form::new(body, BookingBody::FIELDS);
    let property_id = form.int("property_id");
    if property_id.is_none() {
        form.missing("property_id");
    }
    let (check_in, check_out) = (form.date("check_in"), form.date("check_out"));
    let dates = match (check_in, check_out) {
        (Some(a), Some(b)) => form.check("check_out", StayDates::new(a, b)),
        _ => None,
    };
    let guests = form.int("guests").unwrap_or(1);
    let guests = form.check(
        "guests",
        crate::domain::property::in_range(guests, 1, crate::domain::property::MAX_GUESTS),
    );
    let expected_total = form
        .int("expected_total")
        .and_then(|t| form.check("expected_total", in_range(t, 0, i64::MAX)));
    form.finish()?;
    let (Some(property_id), Some(dates), Some(guests)) = (property_id, dates, guests) else {
        return Err(ApiError::Validation(Vec::new()));
    };
    Ok(bookings::BookingRequest {
        property: PropertyId(property_id),
        dates,
        guests,
        expected_total,
    })
}

/// `POST /bookings {property_id, check_in, check_out, guests}` → 201, pending.
#[utoipa::path(
    post,
    path = "/api/v1/bookings",
    tag = "bookings",
    request_body = BookingBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A pending booking holding the nights", body = BookingResponse),
        (status = 404, description = "No such listing", body = crate::error::Envelope),
        (status = 409, description = "`dates_unavailable`, or `price_changed` with the new quote in `details`", body = crate::error::Envelope),
        (status = 422, description = "The stay breaks the listing's rules (guests, nights, how far ahead), or it is your own listing (`own_listing`)", body = crate::error::Envelope),
    )
)]
pub async fn create_booking(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: web::Json<BookingBody>,
) -> Result<HttpResponse, ApiError> {
    let request = booking_request(body.into_inner().into_map())?;
    let commit = meta.commit(Some(auth.id), |e: &Entry| {
        Reply::json(201, &BookingResponse::from(e.clone()))
    });
    let booking =
        bookings::create(&state.properties, &state.settings, &commit, &auth, request).await?;
    Ok(commit.reply(&booking)?.into())
}

/// `PATCH /bookings/{id} {check_in?, check_out?, guests?}`: its guest moves
/// a pending booking, re-priced; or nothing changes.
#[utoipa::path(
    patch,
    path = "/api/v1/bookings/{id}",
    tag = "bookings",
    params(("id" = i64, Path, description = "The booking's id")),
    request_body = ChangeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed booking, with any refund or payment the change needs", body = BookingResponse),
        (status = 403, description = "Not your booking", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "`dates_unavailable`, `payment_started` or `booking_changed`", body = crate::error::Envelope),
        (status = 422, description = "The booking cannot change now, or the new stay breaks the listing's rules", body = crate::error::Envelope),
    )
)]
pub async fn change_booking(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<ChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let change = change_input(body.into_inner().into_map())?;
    let commit = meta.commit(Some(auth.id), |c: &Changed| {
        let mut response = BookingResponse::from(c.entry.clone());
        response.refund = c.refund.clone();
        response.pending_change = c.awaiting.clone().map(ChangeResponse::from);
        Reply::json(200, &response)
    });
    let id = BookingId(path.into_inner());
    let booking = bookings::change(
        &state.db,
        &state.properties,
        &state.settings,
        &commit,
        &auth,
        id,
        change,
    )
    .await?;
    let reply = commit.reply(&booking)?;
    settle_change(&state, id, &booking).await;
    Ok(reply.into())
}

/// A change's body `{check_in?, check_out?, guests?}`.
pub fn change_input(body: Map<String, Value>) -> Result<bookings::BookingChange, ApiError> {
    let mut form = Form::new(body, ChangeBody::FIELDS);
    let check_in = form
        .string("check_in")
        .and_then(|raw| form.check("check_in", crate::domain::stay::parse_date(&raw)));
    let check_out = form
        .string("check_out")
        .and_then(|raw| form.check("check_out", crate::domain::stay::parse_date(&raw)));
    let guests = form.int("guests").and_then(|g| {
        form.check(
            "guests",
            in_range(g, 1, crate::domain::property::MAX_GUESTS),
        )
    });
    form.finish()?;
    Ok(bookings::BookingChange {
        check_in,
        check_out,
        guests,
    })
}

/// After a change commits: the guest told of a difference to pay, and a
/// refund of a shortened stay sent.
pub async fn settle_change(state: &AppState, id: BookingId, changed: &Changed) {
    let settlement = state.settlement();
    if let Some(waiting) = &changed.awaiting {
        settlement.tell_change(changed.entry.guest_id, waiting, "change_awaiting_payment");
    }
    if changed.refund.as_ref().is_some_and(|r| r.total > 0) {
        settlement.send_refunds(id).await;
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `guest` (my trips, the default) or `host` (my listings' bookings).
    role: Option<String>,
    /// Rows per page, 1 to 100 (20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// `GET /bookings` (my trips) or `?role=host` (bookings of my listings), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/bookings",
    tag = "bookings",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My trips (or my listings' bookings), newest first", body = super::pagination::Page<BookingResponse>),
    )
)]
pub async fn list_bookings(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let of = match query.role.as_deref() {
        None | Some("guest") => BookingsOf::Guest(auth.id.0),
        Some("host") => BookingsOf::Host(auth.id.0),
        Some(_) => {
            return Err(ApiError::validation(crate::domain::FieldError::new(
                "role",
                "unknown_role",
                "role must be guest or host",
            )));
        }
    };
    let request = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .parse()?;
    let rows = bookings::list(&state.db, of, request.before_id(), request.limit).await?;
    Ok(HttpResponse::Ok().json(page(rows, request.limit, |e| e.id, BookingResponse::from)))
}

#[utoipa::path(
    get,
    path = "/api/v1/bookings/{id}",
    tag = "bookings",
    params(("id" = i64, Path, description = "The booking's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The booking", body = BookingResponse),
        (status = 404, description = "`not_found`: no such booking, or not its guest's, its host's or an admin's to see", body = crate::error::Envelope),
    )
)]
pub async fn get_booking(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<web::Json<BookingResponse>, ApiError> {
    let (actor, id) = (meta.actor(Some(auth.id)), BookingId(path.into_inner()));
    let (booking, _) = bookings::get(&state.db, &actor, &auth, id, "booking.read").await?;
    let (payment, refunds) = bookings::money_of(&state.db, id).await?;
    let mut response = BookingResponse::from(booking);
    response.payment = payment.map(PaymentResponse::from);
    response.refunds = Some(refunds.into_iter().map(RefundResponse::from).collect());
    Ok(web::Json(response))
}

#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/cancel",
    tag = "bookings",
    params(("id" = i64, Path, description = "The booking's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled booking, with its refund", body = BookingResponse),
        (status = 403, description = "Not your booking", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "It changed meanwhile: `booking_changed`", body = crate::error::Envelope),
        (status = 422, description = "Cannot be cancelled now", body = crate::error::Envelope),
    )
)]
pub async fn cancel_booking(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let commit = meta.commit(Some(auth.id), |c: &Cancelled| {
        let mut response = BookingResponse::from(c.entry.clone());
        response.refund = c.refund.clone();
        Reply::json(200, &response)
    });
    let id = BookingId(path.into_inner());
    let cancelled = bookings::cancel(&state.db, &state.properties, &commit, &auth, id).await?;
    let reply = commit.reply(&cancelled)?;
    state.settlement().send_refunds(id).await;
    Ok(reply.into())
}

/// What cancelling now would refund, line by line, under the listing's
/// policy (the guest's view) or in full (the host's or an admin's).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CancellationResponse {
    pub booking_id: i64,
    /// Can it be cancelled now (pending or confirmed)?
    pub cancellable: bool,
    pub cancelled_by: CancelledBy,
    pub policy: CancellationPolicy,
    /// The listing's local check-in time, and the instant it falls on.
    pub check_in_time: String,
    pub time_zone: String,
    pub check_in_at: DateTime<Utc>,
    /// The last instant a guest's cancellation refunds everything.
    pub full_refund_until: Option<DateTime<Utc>>,
    pub rule: RefundRule,
    pub currency: String,
    pub currency_exponent: u16,
    /// Paid and not yet refunded.
    pub paid: i64,
    pub refund: i64,
    pub lines: Vec<Line>,
    /// What the host keeps.
    pub kept: i64,
}

#[utoipa::path(
    get,
    path = "/api/v1/bookings/{id}/cancellation",
    tag = "bookings",
    params(("id" = i64, Path, description = "The booking's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What cancelling now would refund", body = CancellationResponse),
        (status = 404, description = "`not_found`: no such booking, or not yours to see", body = crate::error::Envelope),
    )
)]
pub async fn get_cancellation(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<web::Json<CancellationResponse>, ApiError> {
    let (actor, id) = (meta.actor(Some(auth.id)), BookingId(path.into_inner()));
    let (terms, property, entry, by) =
        bookings::cancellation_terms(&state.db, &actor, &auth, id).await?;
    let cancellable = effective_status(&entry, crate::db::now())?
        .apply(Transition::Cancel)
        .is_ok();
    let currency = Currency::parse(&property.currency)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored currency: {}", e.message)))?;
    Ok(web::Json(CancellationResponse {
        booking_id: entry.id,
        cancellable,
        cancelled_by: by,
        policy: property.policy(),
        check_in_time: property.check_in_time().to_hhmm(),
        time_zone: property.time_zone.clone(),
        check_in_at: terms.check_in_at,
        full_refund_until: terms.full_refund_until,
        rule: terms.quote.rule,
        currency: currency.code().to_owned(),
        currency_exponent: currency.exponent(),
        paid: terms.refundable,
        refund: terms.quote.total,
        kept: terms.refundable - terms.quote.total,
        lines: terms.quote.lines,
    }))
}

/// `POST /bookings/{id}/payments` → 201: a payment of the booking's total,
/// with the `next_action` its guest's client follows to pay.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/payments",
    tag = "payments",
    params(("id" = i64, Path, description = "The booking's id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A payment of the booking's total, with the client's next action", body = PaymentResponse),
        (status = 403, description = "Not your booking", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 422, description = "Nothing to pay now: `invalid_transition`", body = crate::error::Envelope),
        (status = 409, description = "`payment_in_progress` or `already_paid`", body = crate::error::Envelope),
    )
)]
pub async fn create_payment(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let commit = meta.commit(Some(auth.id), |s: &Started| {
        Reply::json(201, &PaymentResponse::from(s.clone()))
    });
    let booking = BookingId(path.into_inner());
    let gateway = state.payments.as_ref();
    let started = payments::start(&state.db, gateway, &commit, &auth, booking).await?;
    Ok(commit.reply(&started)?.into())
}
