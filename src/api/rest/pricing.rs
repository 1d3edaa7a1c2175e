//! `/api/v1/properties/{id}/pricing`, `…/rates` and `…/quote`: the prices
//! hosts set, and what a stay costs, line by line.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::form::{Form, query_date};
use crate::auth::AuthUser;
use crate::commit::Reply;
use crate::db::properties::Property;
use crate::db::rates::Rate;
use crate::domain::pricing::{Pricing, QuoteView};
use crate::domain::property::{MAX_GUESTS, MAX_PRICE, in_range};
use crate::domain::stay::{MAX_NIGHTS, window};
use crate::domain::{FieldError, FieldErrors, PropertyId, StayDates};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::pricing::{self, Season};
use crate::state::AppState;

/// A listing's pricing as clients see it (`null`: none).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PricingResponse {
    pub property_id: i64,
    pub currency: String,
    pub price_per_night: i64,
    pub cleaning_fee: i64,
    #[serde(flatten)]
    pub pricing: Pricing,
    /// The platform's fee on every stay (a server setting).
    pub service_fee_bp: i64,
}

fn pricing_response(p: &Property, service_fee_bp: i64) -> PricingResponse {
    PricingResponse {
        property_id: p.id,
        currency: p.currency.clone(),
        price_per_night: p.price_per_night,
        cleaning_fee: p.cleaning_fee,
        pricing: p.pricing(),
        service_fee_bp,
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/properties/{id}/pricing",
    tag = "pricing",
    params(("id" = i64, Path, description = "The listing's id")),
    responses(
        (status = 200, description = "The listing's pricing", body = PricingResponse),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn get_pricing(
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<web::Json<PricingResponse>, ApiError> {
    let id = PropertyId(path.into_inner());
    let listing = state.listings.live(&state.db, id).await?;
    Ok(web::Json(pricing_response(
        &listing.property,
        state.settings.service_fee_bp,
    )))
}

crate::raw_body! {
    /// A listing's pricing beside its nightly price; each absent or `null`
    /// (or a percentage or rate of 0): none.
    #[schema(example = json!({"weekend_price": 15000, "weekly_discount_pct": 10, "tax_rate_bp": 900}))]
    PricingBody {
        /// Friday and Saturday nights, minor units.
        #[schema(minimum = 1)]
        weekend_price: Option<i64>,
        /// Per extra guest per night, minor units (with `extra_guest_after`).
        #[schema(minimum = 1)]
        extra_guest_fee: Option<i64>,
        /// Guests included in the price (with `extra_guest_fee`).
        #[schema(minimum = 1, maximum = 50)]
        extra_guest_after: Option<i64>,
        #[schema(minimum = 0, maximum = 99)]
        weekly_discount_pct: Option<i64>,
        #[schema(minimum = 0, maximum = 99)]
        monthly_discount_pct: Option<i64>,
        /// Basis points of the stay.
        #[schema(minimum = 0, maximum = 10000)]
        tax_rate_bp: Option<i64>,
    }
}

crate::raw_body! {
    /// A season: nights `[start, end)` cost `price`.
    #[schema(example = json!({"start": "2030-07-01", "end": "2030-09-01", "price": 16000, "min_nights": 3}))]
    RateBody {
        #[schema(required = true, format = Date)]
        start: String,
        #[schema(required = true, format = Date)]
        end: String,
        /// Minor units per night.
        #[schema(required = true, minimum = 1)]
        price: i64,
        /// A stay touching the season is at least this long.
        #[schema(minimum = 1)]
        min_nights: i64,
    }
}

/// The pricing a body sets: every field optional (absent or `null`: none),
/// each checked; a percentage or rate of 0 also means none.
pub fn pricing_input(body: Map<String, Value>) -> Result<Pricing, ApiError> {
    let mut form = Form::new(body, PricingBody::FIELDS);
    let field = |form: &mut Form, name: &str, min: i64, max: i64| {
        form.int(name)
            .and_then(|v| form.check(name, in_range(v, min, max)))
    };
    let weekend_price = field(&mut form, "weekend_price", 1, MAX_PRICE);
    let extra_guest_fee = field(&mut form, "extra_guest_fee", 1, MAX_PRICE);
    let extra_guest_after = field(&mut form, "extra_guest_after", 1, MAX_GUESTS);
    let none_if_zero = |v: Option<i64>| v.filter(|v| *v != 0);
    let weekly = none_if_zero(field(&mut form, "weekly_discount_pct", 0, 99));
    let monthly = none_if_zero(field(&mut form, "monthly_discount_pct", 0, 99));
    let tax = none_if_zero(field(&mut form, "tax_rate_bp", 0, 10_000));
    // A fee per extra guest needs to know after how many guests it starts.
    match (extra_guest_fee, extra_guest_after) {
        (Some(_), None) => form.errors().push(FieldError::new(
            "extra_guest_after",
            "required",
            "extra_guest_after is required with extra_guest_fee",
        )),
        (None, Some(_)) => form.errors().push(FieldError::new(
            "extra_guest_fee",
            "required",
            "extra_guest_fee is required with extra_guest_after",
        )),
        _ => {}
    }
    form.finish()?;
    Ok(Pricing {
        weekend_price,
        extra_guest_fee,
        extra_guest_after,
        weekly_discount_pct: weekly,
        monthly_discount_pct: monthly,
        tax_rate_bp: tax,
    })
}

/// `PUT /properties/{id}/pricing`: replaces the whole pricing.
#[utoipa::path(
    put,
    path = "/api/v1/properties/{id}/pricing",
    tag = "pricing",
    params(("id" = i64, Path, description = "The listing's id")),
    request_body = PricingBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new pricing", body = PricingResponse),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn put_pricing(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<PricingBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let fee = state.settings.service_fee_bp;
    let commit = meta.commit(Some(auth.id), move |p: &Property| {
        Reply::json(200, &pricing_response(p, fee))
    });
    // Who may change it is settled before what the change says.
    crate::services::properties::get_owned(&state.db, &commit.actor, &auth, id, "pricing.update")
        .await?;
    let pricing = pricing_input(body.into_inner().into_map())?;
    let property = pricing::set_pricing(&state.db, &state.bus, &commit, &auth, id, pricing).await?;
    Ok(commit.reply(&property)?.into())
}

/// A season as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateResponse {
    pub id: i64,
    pub property_id: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub price: i64,
    pub min_nights: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<&Rate> for RateResponse {
    fn from(r: &Rate) -> Self {
        Self {
            id: r.id,
            property_id: r.property_id,
            start: r.start_date,
            end: r.end_date,
            price: r.price,
            min_nights: r.min_nights,
            created_at: r.created_at.and_utc(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RatesResponse {
    pub items: Vec<RateResponse>,
}

/// `GET /properties/{id}/rates`: seasons that have not ended, by start.
#[utoipa::path(
    get,
    path = "/api/v1/properties/{id}/rates",
    tag = "pricing",
    params(("id" = i64, Path, description = "The listing's id")),
    responses(
        (status = 200, description = "Seasons that have not ended", body = RatesResponse),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn list_rates(
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<web::Json<RatesResponse>, ApiError> {
    let rates = pricing::list_rates(&state.db, PropertyId(path.into_inner())).await?;
    Ok(web::Json(RatesResponse {
        items: rates.iter().map(RateResponse::from).collect(),
    }))
}

/// `POST /properties/{id}/rates {start, end, price, min_nights?}` → 201.
#[utoipa::path(
    post,
    path = "/api/v1/properties/{id}/rates",
    tag = "pricing",
    params(("id" = i64, Path, description = "The listing's id")),
    request_body = RateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The season", body = RateResponse),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "Overlaps another season: `rates_overlap`", body = crate::error::Envelope),
    )
)]
pub async fn create_rate(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<RateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let commit = meta.commit(Some(auth.id), |r: &Rate| {
        Reply::json(201, &RateResponse::from(r))
    });
    crate::services::properties::get_owned(&state.db, &commit.actor, &auth, id, "rate.add").await?;
    let season = rate_input(body.into_inner().into_map())?;
    let rate = pricing::add_rate(&state.db, &state.bus, &commit, &auth, id, season).await?;
    Ok(commit.reply(&rate)?.into())
}

/// A season's body `{start, end, price, min_nights?}`, every bad field
/// reported at once: its nights, their price, and its minimum stay.
pub fn rate_input(body: Map<String, Value>) -> Result<Season, ApiError> {
    let mut form = Form::new(body, RateBody::FIELDS);
    let (start, end) = (form.date("start"), form.date("end"));
    let nights = match (start, end) {
        (Some(start), Some(end)) => form.check("end", window(start, end)),
        _ => None,
    };
    let price = match form.int("price") {
        Some(p) => form.check("price", in_range(p, 1, MAX_PRICE)),
        None => {
            form.missing("price");
            None
        }
    };
    let min_nights = form
        .int("min_nights")
        .and_then(|n| form.check("min_nights", in_range(n, 1, MAX_NIGHTS)));
    form.finish()?;
    match (nights, price) {
        (Some(nights), Some(price)) => Ok(Season {
            nights,
            price,
            min_nights,
        }),
        _ => Err(ApiError::Validation(Vec::new())),
    }
}

/// `DELETE /properties/{id}/rates/{rate_id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/properties/{id}/rates/{rate_id}",
    tag = "pricing",
    params(("id" = i64, Path, description = "The listing's id"), ("rate_id" = i64, Path, description = "The season's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn delete_rate(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (property, rate) = path.into_inner();
    let commit = meta.commit(Some(auth.id), super::properties::no_content);
    pricing::remove_rate(
        &state.db,
        &state.bus,
        &commit,
        &auth,
        PropertyId(property),
        rate,
    )
    .await?;
    Ok(commit.reply(&())?.into())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuoteQuery {
    /// `YYYY-MM-DD`.
    #[param(required = true, value_type = String, format = Date)]
    check_in: Option<String>,
    /// `YYYY-MM-DD`, after `check_in`.
    #[param(required = true, value_type = String, format = Date)]
    check_out: Option<String>,
    /// 1 by default.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 50)]
    guests: Option<String>,
}

/// `GET /properties/{id}/quote?check_in=&check_out=&guests=`: the stay's
/// price, line by line, and whether it can be booked now (if not, the
/// code a booking would be refused with).
#[utoipa::path(
    get,
    path = "/api/v1/properties/{id}/quote",
    tag = "pricing",
    params(("id" = i64, Path, description = "The listing's id"), QuoteQuery),
    responses(
        (status = 200, description = "The stay's price, line by line, and whether it can be booked", body = crate::domain::pricing::QuoteView),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn get_quote(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<QuoteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let query = query.into_inner();
    let q = quote(&state, id, query.check_in, query.check_out, query.guests).await?;
    Ok(HttpResponse::Ok().json(QuoteView::new(&q.prices, &q.quote, q.refusal)))
}

/// A stay's quote from raw `check_in`, `check_out` (`YYYY-MM-DD`) and
/// `guests` (1 when absent), checked here: REST's and GraphQL's.
pub async fn quote(
    state: &AppState,
    id: PropertyId,
    check_in: Option<String>,
    check_out: Option<String>,
    guests: Option<String>,
) -> Result<pricing::StayQuote, ApiError> {
    let mut errors = FieldErrors::new();
    let mut date = |name: &str, raw: &Option<String>| query_date(&mut errors, name, raw);
    let (check_in, check_out) = (date("check_in", &check_in), date("check_out", &check_out));
    let dates = match (check_in, check_out) {
        (Some(a), Some(b)) => errors.check("check_out", StayDates::new(a, b)),
        _ => None,
    };
    let guests = match guests.as_deref() {
        None => Some(1),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) => errors.check("guests", in_range(n, 1, MAX_GUESTS)),
            Err(_) => {
                errors.push(FieldError::new(
                    "guests",
                    "wrong_type",
                    "guests must be a whole number",
                ));
                None
            }
        },
    };
    let (Some(dates), Some(guests)) = (dates.filter(|_| errors.is_empty()), guests) else {
        return Err(ApiError::Validation(errors.into_vec()));
    };
    let fee = state.settings.service_fee_bp;
    pricing::quote(&state.db, &state.properties, fee, id, dates, guests).await
}
