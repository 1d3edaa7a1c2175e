//! `/api/v1/properties`: listings, search, availability and host blocks.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::form::{Form, query_date};
use super::pagination::{DEFAULT_LIMIT, MAX_LIMIT, Page, bad_cursor, decode_opaque, encode_opaque};
use crate::auth::AuthUser;
use crate::commit::Reply;
use crate::db::calendar::Entry;
use crate::db::properties::{Flexible, Property, SearchCursor, SearchFilter, Sort, city_key};
use crate::domain::calendar::Busy;
use crate::domain::property::{Amenities, bounded_text};
use crate::domain::stay::{parse_date, window, ymd};
use crate::domain::{
    BlockId, Country, FieldError, FieldErrors, ListingInput, PropertyId, StayDates,
};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::{bookings, properties};
use crate::state::AppState;

/// A listing as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PropertyResponse {
    pub id: i64,
    pub host_id: i64,
    pub title: String,
    pub description: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    pub price_per_night: i64,
    pub currency: String,
    pub cleaning_fee: i64,
    pub max_guests: i64,
    pub min_nights: i64,
    pub max_nights: i64,
    pub amenities: Vec<&'static str>,
    pub advance_notice_days: i64,
    pub booking_window_days: i64,
    pub check_in_days: Vec<&'static str>,
    pub check_out_days: Vec<&'static str>,
    pub time_zone: String,
    /// What a guest's cancellation refunds (README "Cancellation policies").
    pub cancellation_policy: &'static str,
    /// The local check-in time, `HH:MM`: the policy's deadlines count from it.
    pub check_in_time: String,
    /// Its published guest reviews: how many, the overall average (two
    /// decimals, rounded half up; `null` with none) and each category's.
    pub review_count: i64,
    pub rating_avg: Option<f64>,
    pub category_ratings: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In a flexible-dates search only: the earliest free stay found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stay: Option<FreeStay>,
}

/// A stay a flexible-dates search found free: `[check_in, check_out)`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FreeStay {
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
}

impl From<Property> for PropertyResponse {
    fn from(p: Property) -> Self {
        let rules = p.rules();
        let (policy, check_in_time) = (p.policy(), p.check_in_time());
        let summary = super::reviews::RatingSummary::of_listing(&p.review_totals());
        Self {
            review_count: summary.review_count,
            rating_avg: summary.rating_avg,
            category_ratings: summary.categories.unwrap_or_default(),
            id: p.id,
            host_id: p.host_id,
            title: p.title,
            description: p.description,
            address: p.address,
            city: p.city,
            country: p.country,
            latitude: p.latitude,
            longitude: p.longitude,
            price_per_night: p.price_per_night,
            currency: p.currency,
            cleaning_fee: p.cleaning_fee,
            max_guests: p.max_guests,
            min_nights: p.min_nights,
            max_nights: p.max_nights,
            amenities: Amenities::from_mask(p.amenities).names(),
            advance_notice_days: rules.advance_notice_days,
            booking_window_days: rules.booking_window_days,
            check_in_days: rules.check_in_days.names(),
            check_out_days: rules.check_out_days.names(),
            cancellation_policy: policy.as_str(),
            check_in_time: check_in_time.to_hhmm(),
            time_zone: p.time_zone,
            created_at: p.created_at.and_utc(),
            updated_at: p.updated_at.and_utc(),
            stay: None,
        }
    }
}

crate::raw_body! {
    /// A listing's fields. Creating one needs `title`, `address`, `city`,
    /// `country`, `latitude`, `longitude`, `price_per_night`, `currency`
    /// and `max_guests`; a change gives only what changes.
    #[schema(example = json!({
        "title": "Canal-side loft", "description": "Bright, quiet, two minutes from the tram.",
        "address": "Prinsengracht 263", "city": "Amsterdam", "country": "NL",
        "latitude": 52.3752, "longitude": 4.884, "price_per_night": 12500, "currency": "EUR",
        "cleaning_fee": 3000, "max_guests": 4, "min_nights": 1, "max_nights": 30,
        "amenities": ["wifi", "kitchen"], "time_zone": "Europe/Amsterdam"
    }))]
    ListingBody {
        #[schema(min_length = 1, max_length = 200)]
        title: String,
        #[schema(max_length = 5000)]
        description: String,
        address: String,
        city: String,
        /// ISO 3166-1 alpha-2.
        #[schema(min_length = 2, max_length = 2)]
        country: String,
        #[schema(minimum = -90, maximum = 90)]
        latitude: f64,
        #[schema(minimum = -180, maximum = 180)]
        longitude: f64,
        /// Minor units of `currency`.
        #[schema(minimum = 1)]
        price_per_night: i64,
        /// ISO 4217.
        #[schema(min_length = 3, max_length = 3)]
        currency: String,
        #[schema(minimum = 0)]
        cleaning_fee: i64,
        #[schema(minimum = 1, maximum = 50)]
        max_guests: i64,
        #[schema(minimum = 1)]
        min_nights: i64,
        #[schema(minimum = 1)]
        max_nights: i64,
        amenities: Vec<String>,
        #[schema(minimum = 0)]
        advance_notice_days: i64,
        #[schema(minimum = 1)]
        booking_window_days: i64,
        /// Weekdays a stay may start (`mon` … `sun`).
        check_in_days: Vec<String>,
        check_out_days: Vec<String>,
        /// An IANA time zone, e.g. `Europe/Lisbon`.
        time_zone: String,
        /// `flexible`, `moderate` or `strict`.
        cancellation_policy: String,
        /// `HH:MM`, listing-local.
        check_in_time: String,
    }
}

/// A listing body's fields, each read with its type checked.
pub fn listing_input(body: Map<String, Value>) -> Result<ListingInput, ApiError> {
    let mut form = Form::new(body, ListingBody::FIELDS);
    let input = ListingInput {
        title: form.string("title"),
        description: form.string("description"),
        address: form.string("address"),
        city: form.string("city"),
        country: form.string("country"),
        latitude: form.float("latitude"),
        longitude: form.float("longitude"),
        price_per_night: form.int("price_per_night"),
        currency: form.string("currency"),
        cleaning_fee: form.int("cleaning_fee"),
        max_guests: form.int("max_guests"),
        min_nights: form.int("min_nights"),
        max_nights: form.int("max_nights"),
        amenities: form.strings("amenities"),
        advance_notice_days: form.int("advance_notice_days"),
        booking_window_days: form.int("booking_window_days"),
        check_in_days: form.strings("check_in_days"),
        check_out_days: form.strings("check_out_days"),
        time_zone: form.string("time_zone"),
        cancellation_policy: form.string("cancellation_policy"),
        check_in_time: form.string("check_in_time"),
    };
    form.finish()?;
    Ok(input)
}

/// A change answered 204 No Content.
pub(super) fn no_content(_: &()) -> Result<Reply, ApiError> {
    Ok(Reply::empty(204))
}

#[utoipa::path(
    post,
    path = "/api/v1/properties",
    tag = "listings",
    request_body = ListingBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new listing", body = PropertyResponse),
        (status = 403, description = "Hosts and admins only", body = crate::error::Envelope),
    )
)]
pub async fn create_property(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: web::Json<ListingBody>,
) -> Result<HttpResponse, ApiError> {
    let input = listing_input(body.into_inner().into_map())?;
    let commit = meta.commit(Some(auth.id), |p: &Property| {
        Reply::json(201, &PropertyResponse::from(p.clone()))
    });
    let property = properties::create(&state.db, &state.bus, &commit, &auth, input).await?;
    Ok(commit.reply(&property)?.into())
}

#[utoipa::path(
    get,
    path = "/api/v1/properties/{id}",
    tag = "listings",
    params(("id" = i64, Path, description = "The listing's id")),
    responses(
        (status = 200, description = "The listing", body = PropertyResponse),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn get_property(
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let listing = state.listings.live(&state.db, id).await?;
    let page = listing
        .page(listing_page)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(page))
}

/// A listing's page, `GET /properties/{id}`'s body; also each item of a
/// search's page, followed by its `stay` when it has one.
fn listing_page(property: &Property) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&PropertyResponse::from(property.clone()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/properties/{id}",
    tag = "listings",
    params(("id" = i64, Path, description = "The listing's id")),
    request_body = ListingBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed listing", body = PropertyResponse),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn update_property(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<ListingBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let commit = meta.commit(Some(auth.id), |p: &Property| {
        Reply::json(200, &PropertyResponse::from(p.clone()))
    });
    // Who may change it is settled before what the change says.
    properties::get_owned(&state.db, &commit.actor, &auth, id, "property.update").await?;
    let input = listing_input(body.into_inner().into_map())?;
    let property = properties::update(&state.db, &state.bus, &commit, &auth, id, input).await?;
    Ok(commit.reply(&property)?.into())
}

#[utoipa::path(
    delete,
    path = "/api/v1/properties/{id}",
    tag = "listings",
    params(("id" = i64, Path, description = "The listing's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "Stays are booked on it: `has_upcoming_bookings`", body = crate::error::Envelope),
    )
)]
pub async fn delete_property(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let commit = meta.commit(Some(auth.id), no_content);
    properties::delete(&state.db, &state.properties, &commit, &auth, id).await?;
    Ok(commit.reply(&())?.into())
}

/// A search's query parameters, every one optional: what
/// [`parse_search`] reads (it reads the raw pairs, so that a repeated or
/// unknown name is refused) and what OpenAPI describes, from this one list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Its fields are named for the description; parse_search reads the pairs.
pub struct SearchParams {
    /// The listing's city, any case.
    city: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[param(min_length = 2, max_length = 2)]
    country: Option<String>,
    /// Nightly price at least, minor units.
    #[param(minimum = 0)]
    min_price: Option<i64>,
    /// Nightly price at most, minor units.
    #[param(minimum = 0)]
    max_price: Option<i64>,
    /// Sleeps at least this many.
    #[param(minimum = 1, maximum = 50)]
    guests: Option<i64>,
    /// Comma-separated amenity names, all required (`wifi,kitchen`).
    amenities: Option<String>,
    /// Published reviews' average at least this, 1 to 5 (two decimals).
    #[param(minimum = 1, maximum = 5)]
    min_rating: Option<f64>,
    /// A bounding box: all four or none.
    #[param(minimum = -90, maximum = 90)]
    min_lat: Option<f64>,
    #[param(minimum = -90, maximum = 90)]
    max_lat: Option<f64>,
    #[param(minimum = -180, maximum = 180)]
    min_lon: Option<f64>,
    #[param(minimum = -180, maximum = 180)]
    max_lon: Option<f64>,
    /// Free over `[check_in, check_out)`: both or neither, `YYYY-MM-DD`.
    #[param(value_type = Option<String>, format = Date)]
    check_in: Option<chrono::NaiveDate>,
    #[param(value_type = Option<String>, format = Date)]
    check_out: Option<chrono::NaiveDate>,
    /// Flexible dates: listings with any free stay of this many nights
    /// (that their rules allow) inside `[within_from, within_to)`, each
    /// with the earliest such stay. All three or none, and not with
    /// `check_in`/`check_out`; the window is at most 92 days.
    #[param(minimum = 1, maximum = 92)]
    nights: Option<i64>,
    #[param(value_type = Option<String>, format = Date)]
    within_from: Option<chrono::NaiveDate>,
    #[param(value_type = Option<String>, format = Date)]
    within_to: Option<chrono::NaiveDate>,
    /// `price_asc` (the default), `price_desc`, `newest` or `rating_desc`.
    #[param(pattern = "^(price_asc|price_desc|newest|rating_desc)$")]
    sort: Option<String>,
    /// Listings per page, 1 to 100 (20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor` (for the same sort).
    cursor: Option<String>,
}

/// The names a search accepts: [`SearchParams`]'.
static SEARCH_PARAMS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    use utoipa::IntoParams;
    SearchParams::into_params(|| None)
        .into_iter()
        .map(|p| p.name)
        .collect()
});

/// `GET /properties?…`: every filter optional, all given ones must match.
#[utoipa::path(
    get,
    path = "/api/v1/properties",
    tag = "listings",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of listings, in the sort's order", body = Page<PropertyResponse>),
    )
)]
pub async fn search_properties(
    state: web::Data<AppState>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let filter = parse_search(query.into_inner())?;
    let (sort, limit) = (filter.sort, filter.limit);
    let rows = properties::search(&state.db, &state.search, &state.listings, filter).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|f| encode_search_cursor(sort, f.property()))
        })
        .flatten();
    let body = search_page(&rows, next_cursor).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// A search's `Page<PropertyResponse>`, written from each listing's page
/// (made once while the listing is remembered, and sent by its own
/// `GET` too). Every item cloned and serialized afresh cost about a third
/// of the server's CPU a search (`search.js`: 200–264 µs a search before,
/// 148–161 µs after).
fn search_page(
    rows: &[properties::Found],
    next_cursor: Option<String>,
) -> serde_json::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(rows.len() * 1_024 + 64);
    body.extend_from_slice(b"{\"items\":[");
    for (i, found) in rows.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let page = match found.remembered() {
            Some(listing) => listing.page(listing_page)?,
            None => listing_page(found.property())?.into(),
        };
        let Some(stay) = found.stay else {
            body.extend_from_slice(&page);
            continue;
        };
        // The page is an object: its fields, then the stay's.
        let Some((b'}', fields)) = page.split_last() else {
            return Err(serde::ser::Error::custom(
                "a listing's page is not an object",
            ));
        };
        body.extend_from_slice(fields);
        body.extend_from_slice(b",\"stay\":");
        let stay = FreeStay {
            check_in: stay.check_in(),
            check_out: stay.check_out(),
        };
        serde_json::to_writer(&mut body, &stay)?;
        body.push(b'}');
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut body, &next_cursor)?;
    body.push(b'}');
    Ok(body)
}

fn sort_name(sort: Sort) -> &'static str {
    match sort {
        Sort::PriceAsc => "price_asc",
        Sort::PriceDesc => "price_desc",
        Sort::Newest => "newest",
        Sort::RatingDesc => "rating_desc",
    }
}

/// A search cursor names its sort, so it cannot be replayed under another.
pub fn encode_search_cursor(sort: Sort, last: &Property) -> String {
    encode_opaque(&format!(
        "{}:{}:{}",
        sort_name(sort),
        sort.key(last),
        last.id
    ))
}

fn decode_search_cursor(sort: Sort, raw: &str) -> Result<SearchCursor, FieldError> {
    let text = decode_opaque(raw)?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(key), Some(id), None) if name == sort_name(sort) => {
            match (key.parse(), id.parse()) {
                (Ok(key), Ok(id)) => Ok(SearchCursor { key, id }),
                _ => Err(bad_cursor()),
            }
        }
        _ => Err(bad_cursor()),
    }
}

pub fn parse_search(params: Vec<(String, String)>) -> Result<SearchFilter, ApiError> {
    let mut errors = FieldErrors::new();
    let mut get = std::collections::HashMap::new();
    for (name, value) in params {
        if !SEARCH_PARAMS.contains(&name) {
            errors.push(FieldError::new(
                &name,
                "unknown_parameter",
                format!(
                    "unknown parameter; expected one of: {}",
                    SEARCH_PARAMS.join(", ")
                ),
            ));
        } else if get.insert(name.clone(), value).is_some() {
            errors.push(FieldError::new(
                &name,
                "repeated_parameter",
                "give each parameter once (amenities as a comma-separated list)",
            ));
        }
    }
    let int = |errors: &mut FieldErrors, name: &str, min: i64, max: i64| {
        get.get(name).and_then(|raw| {
            let parsed = raw
                .trim()
                .parse::<i64>()
                .map_err(|_| FieldError::new(name, "not_a_number", "must be a whole number"))
                .and_then(|n| crate::domain::property::in_range(n, min, max));
            errors.check(name, parsed)
        })
    };
    let min_price = int(&mut errors, "min_price", 0, i64::MAX);
    let max_price = int(&mut errors, "max_price", 0, i64::MAX);
    let guests = int(
        &mut errors,
        "guests",
        1,
        crate::domain::property::MAX_GUESTS,
    );
    let limit = int(&mut errors, "limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    if let (Some(min), Some(max)) = (min_price, max_price)
        && min > max
    {
        errors.push(FieldError::new(
            "max_price",
            "less_than_min_price",
            "max_price must be at least min_price",
        ));
    }
    let coord = |errors: &mut FieldErrors, name: &str, limit: f64| {
        get.get(name).and_then(|raw| {
            let parsed = raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (-limit..=limit).contains(v))
                .ok_or_else(|| {
                    FieldError::new(
                        name,
                        "out_of_range",
                        format!("must be a number from -{limit} to {limit}"),
                    )
                });
            errors.check(name, parsed)
        })
    };
    let bbox_parts = [
        coord(&mut errors, "min_lat", 90.0),
        coord(&mut errors, "max_lat", 90.0),
        coord(&mut errors, "min_lon", 180.0),
        coord(&mut errors, "max_lon", 180.0),
    ];
    let given = ["min_lat", "max_lat", "min_lon", "max_lon"]
        .iter()
        .filter(|n| get.contains_key(**n))
        .count();
    let bbox = match bbox_parts {
        [Some(a), Some(b), Some(c), Some(d)] => {
            if a > b || c > d {
                errors.push(FieldError::new(
                    "bbox",
                    "invalid_bounding_box",
                    "min_lat must not exceed max_lat, nor min_lon max_lon",
                ));
            }
            Some((a, b, c, d))
        }
        _ => {
            if given > 0 && given < 4 {
                errors.push(FieldError::new(
                    "bbox",
                    "incomplete_bounding_box",
                    "give all of min_lat, max_lat, min_lon and max_lon, or none",
                ));
            }
            None
        }
    };
    let city_filter = get.get("city").and_then(|c| {
        errors
            .check("city", bounded_text(c, 1, 100))
            .map(|c| city_key(&c))
    });
    let country = get.get("country").and_then(|c| {
        errors
            .check("country", Country::parse(c))
            .map(|c| c.to_string())
    });
    let amenities = get.get("amenities").and_then(|raw| {
        let names: Vec<&str> = raw.split(',').filter(|s| !s.trim().is_empty()).collect();
        errors
            .check("amenities", Amenities::parse(&names))
            .map(|a| a.mask())
    });
    let date = |errors: &mut FieldErrors, name: &str| {
        get.get(name)
            .and_then(|raw| errors.check(name, parse_date(raw)))
    };
    let (check_in, check_out) = (
        date(&mut errors, "check_in"),
        date(&mut errors, "check_out"),
    );
    let dates = match (check_in, check_out) {
        (Some(a), Some(b)) => errors
            .check("check_out", StayDates::new(a, b))
            .map(|d| (d.check_in(), d.check_out(), d.nights())),
        _ => {
            if get.contains_key("check_in") != get.contains_key("check_out") {
                errors.push(FieldError::new(
                    "check_out",
                    "incomplete_dates",
                    "give both check_in and check_out, or neither",
                ));
            }
            None
        }
    };
    let flexible = flexible_dates(&get, &mut errors);
    if flexible.is_some() && (get.contains_key("check_in") || get.contains_key("check_out")) {
        errors.push(FieldError::new(
            "nights",
            "conflicting_dates",
            "give check_in and check_out, or nights, within_from and within_to, not both",
        ));
    }
    let sort = match get.get("sort").map(|s| s.trim()) {
        None | Some("price_asc") => Sort::PriceAsc,
        Some("price_desc") => Sort::PriceDesc,
        Some("newest") => Sort::Newest,
        Some("rating_desc") => Sort::RatingDesc,
        Some(_) => {
            errors.push(FieldError::new(
                "sort",
                "unknown_sort",
                "sort must be one of price_asc, price_desc, newest, rating_desc",
            ));
            Sort::PriceAsc
        }
    };
    let min_rating_x100 = get
        .get("min_rating")
        .and_then(|raw| errors.check("min_rating", crate::domain::review::min_rating_x100(raw)));
    let after = get
        .get("cursor")
        .and_then(|raw| errors.check("cursor", decode_search_cursor(sort, raw)));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors.into_vec()));
    }
    Ok(SearchFilter {
        city_key: city_filter,
        country,
        min_price,
        max_price,
        guests,
        amenities,
        min_rating_x100,
        bbox,
        dates,
        flexible,
        now: crate::db::now().naive_utc(),
        sort,
        after,
        limit,
    })
}

/// The longest window a flexible-dates search may look through.
pub const MAX_FLEXIBLE_WINDOW_DAYS: i64 = 92;

/// `nights`, `within_from` and `within_to`, all or none.
fn flexible_dates(
    get: &std::collections::HashMap<String, String>,
    errors: &mut FieldErrors,
) -> Option<Flexible> {
    let names = ["nights", "within_from", "within_to"];
    let given = names.iter().filter(|n| get.contains_key(**n)).count();
    if given == 0 {
        return None;
    }
    if given < names.len() {
        errors.push(FieldError::new(
            "nights",
            "incomplete_flexible_dates",
            "give all of nights, within_from and within_to, or none",
        ));
        return None;
    }
    let nights = get.get("nights").and_then(|raw| {
        let parsed = raw
            .trim()
            .parse::<i64>()
            .map_err(|_| FieldError::new("nights", "not_a_number", "must be a whole number"))
            .and_then(|n| crate::domain::property::in_range(n, 1, MAX_FLEXIBLE_WINDOW_DAYS));
        errors.check("nights", parsed)
    });
    let from = get
        .get("within_from")
        .and_then(|raw| errors.check("within_from", parse_date(raw)));
    let to = get
        .get("within_to")
        .and_then(|raw| errors.check("within_to", parse_date(raw)));
    let (nights, from, to) = (nights?, from?, to?);
    let days = (to - from).num_days();
    if days > MAX_FLEXIBLE_WINDOW_DAYS {
        errors.push(FieldError::new(
            "within_to",
            "window_too_long",
            format!("the window may be at most {MAX_FLEXIBLE_WINDOW_DAYS} days"),
        ));
        return None;
    }
    if days < nights {
        errors.push(FieldError::new(
            "within_to",
            "window_too_short",
            "the window must hold at least the nights asked for",
        ));
        return None;
    }
    Some(Flexible { nights, from, to })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AvailabilityResponse {
    pub property_id: i64,
    #[serde(serialize_with = "ymd")]
    pub from: NaiveDate,
    #[serde(serialize_with = "ymd")]
    pub to: NaiveDate,
    /// The taken nights inside the window, `[start, end)`, clipped to it.
    pub unavailable: Vec<BusyRange>,
    /// Each free night's price (before fees, discounts and taxes: see the
    /// quote), for date pickers.
    pub currency: &'static str,
    pub prices: Vec<crate::domain::pricing::NightPrice>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BusyRange {
    #[serde(serialize_with = "ymd")]
    pub start: NaiveDate,
    #[serde(serialize_with = "ymd")]
    pub end: NaiveDate,
    pub kind: Busy,
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// `YYYY-MM-DD`: the window's first night.
    #[param(required = true, value_type = String, format = Date)]
    from: Option<String>,
    /// `YYYY-MM-DD`: the night after its last.
    #[param(required = true, value_type = String, format = Date)]
    to: Option<String>,
}

/// `GET /properties/{id}/availability?from=&to=`: anyone may look; nobody
/// learns who booked.
#[utoipa::path(
    get,
    path = "/api/v1/properties/{id}/availability",
    tag = "listings",
    params(("id" = i64, Path, description = "The listing's id"), AvailabilityQuery),
    responses(
        (status = 200, description = "Taken nights and free nights' prices", body = AvailabilityResponse),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn get_availability(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<AvailabilityQuery>,
) -> Result<web::Json<AvailabilityResponse>, ApiError> {
    let id = PropertyId(path.into_inner());
    let query = query.into_inner();
    let found = availability(&state, id, query.from, query.to).await?;
    Ok(web::Json(found))
}

/// A listing's taken nights and free nights' prices over `[from, to)`
/// (dates as `YYYY-MM-DD`, checked here): REST's and GraphQL's.
pub async fn availability(
    state: &AppState,
    id: PropertyId,
    from: Option<String>,
    to: Option<String>,
) -> Result<AvailabilityResponse, ApiError> {
    let mut errors = FieldErrors::new();
    let mut date = |name: &str, raw: &Option<String>| query_date(&mut errors, name, raw);
    let (from, to) = (date("from", &from), date("to", &to));
    let range = match (from, to) {
        (Some(from), Some(to)) => errors.check("to", window(from, to)),
        _ => None,
    };
    let Some(range) = range.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors.into_vec()));
    };
    let fee = state.settings.service_fee_bp;
    let nights = crate::services::pricing::nights(state, fee, id, range).await?;
    Ok(AvailabilityResponse {
        property_id: id.0,
        from: range.check_in(),
        to: range.check_out(),
        currency: nights.currency,
        prices: nights.free,
        unavailable: nights
            .taken
            .into_iter()
            .map(|(dates, kind)| BusyRange {
                start: dates.check_in(),
                end: dates.check_out(),
                kind,
            })
            .collect(),
    })
}

/// A host's block as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BlockResponse {
    pub id: i64,
    pub property_id: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

impl From<Entry> for BlockResponse {
    fn from(e: Entry) -> Self {
        Self {
            id: e.id,
            property_id: e.property_id,
            start: e.check_in,
            end: e.check_out,
            reason: e.reason.unwrap_or_default(),
            created_at: e.created_at.and_utc(),
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/properties/{id}/blocks",
    tag = "calendar",
    params(("id" = i64, Path, description = "The listing's id")),
    request_body = BlockBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The block", body = BlockResponse),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "`dates_unavailable`", body = crate::error::Envelope),
    )
)]
pub async fn create_block(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PropertyId(path.into_inner());
    let commit = meta.commit(Some(auth.id), |e: &Entry| {
        Reply::json(201, &BlockResponse::from(e.clone()))
    });
    properties::get_owned(&state.db, &commit.actor, &auth, id, "block.add").await?;
    let (dates, reason) = block_input(body.into_inner().into_map())?;
    let block = bookings::add_block(
        &state.db,
        &state.properties,
        &commit,
        &auth,
        id,
        dates,
        reason,
    )
    .await?;
    Ok(commit.reply(&block)?.into())
}

crate::raw_body! {
    /// A host's block of nights `[start, end)`.
    #[schema(example = json!({"start": "2030-07-01", "end": "2030-07-08", "reason": "Repainting"}))]
    BlockBody {
        /// The first blocked night, `YYYY-MM-DD`.
        #[schema(required = true, format = Date)]
        start: String,
        /// The night after the last, `YYYY-MM-DD`.
        #[schema(required = true, format = Date)]
        end: String,
        #[schema(max_length = 500)]
        reason: String,
    }
}

/// A block's body `{start, end, reason?}`: its nights and its reason.
pub fn block_input(body: Map<String, Value>) -> Result<(StayDates, String), ApiError> {
    let mut form = Form::new(body, BlockBody::FIELDS);
    let (start, end) = (form.date("start"), form.date("end"));
    let dates = match (start, end) {
        (Some(start), Some(end)) => form.check("end", StayDates::new(start, end)),
        _ => None,
    };
    let reason = form.string("reason").unwrap_or_default();
    let reason = form.check("reason", bounded_text(&reason, 0, 500));
    form.finish()?;
    match (dates, reason) {
        (Some(dates), Some(reason)) => Ok((dates, reason)),
        _ => Err(ApiError::Validation(Vec::new())),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/properties/{id}/blocks/{block_id}",
    tag = "calendar",
    params(("id" = i64, Path, description = "The listing's id"), ("block_id" = i64, Path, description = "The block's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The nights are free again"),
        (status = 403, description = "Not your listing", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn delete_block(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (property, block) = path.into_inner();
    let commit = meta.commit(Some(auth.id), no_content);
    let (property, block) = (PropertyId(property), BlockId(block));
    bookings::remove_block(
        &state.db,
        &state.properties,
        &commit,
        &auth,
        property,
        block,
    )
    .await?;
    Ok(commit.reply(&())?.into())
}
