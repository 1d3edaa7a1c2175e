//! The GraphQL types: views over the database models (never the models
//! themselves), and the root query and mutation, each a thin call into
//! the services REST uses.

use actix_web::ResponseError;
use actix_web::web;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ErrorExtensions, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::Viewer;
use super::loaders::{Listings, Users};
use super::pricing::{Availability, Block, ListingPricing, PricingValues, Quote};
use crate::actors::property::effective_status;
use crate::api::rest::auth::{LoginBody, RegisterBody};
use crate::api::rest::bookings::booking_request;
use crate::api::rest::pagination::{PageQuery, encode_cursor};
use crate::api::rest::properties::{encode_search_cursor, listing_input, parse_search};
use crate::api::rest::reviews::review_input;
use crate::auth::AuthUser;
use crate::db::calendar::{BookingsOf, Entry};
use crate::db::payments::Payment as PaymentRow;
use crate::db::properties::Property;
use crate::db::reviews::Review as ReviewRow;
use crate::db::users::User as UserRow;
use crate::domain::review::{CATEGORIES, Side};
use crate::domain::{Amenities, PropertyId, UserId};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::{accounts, bookings, properties, reviews};
use crate::state::AppState;
use async_graphql::dataloader::DataLoader;

type Result<T> = std::result::Result<T, async_graphql::Error>;

/// An `ApiError` as a GraphQL error: its message, and REST's code (with
/// the field errors and the HTTP status REST would answer) in extensions.
pub fn fail(e: ApiError) -> async_graphql::Error {
    let status = e.status_code();
    let message = match &e {
        ApiError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "graphql request failed");
            "something went wrong on our side".to_owned()
        }
        ApiError::Unavailable(_) => {
            "the service is temporarily unavailable, try again shortly".to_owned()
        }
        other => other.to_string(),
    };
    let details = match &e {
        ApiError::Validation(fields) => serde_json::to_value(fields).ok(),
        ApiError::BadRequest { details, .. } => details.clone(),
        ApiError::PriceChanged(quote) => Some((**quote).clone()),
        _ => None,
    };
    let code = e.code();
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("status", status.as_u16());
        if let Some(details) = &details
            && let Ok(value) = async_graphql::Value::from_json(details.clone())
        {
            ext.set("details", value);
        }
    })
}

pub(super) fn state<'a>(ctx: &Context<'a>) -> Result<&'a web::Data<AppState>> {
    ctx.data::<web::Data<AppState>>()
}

fn viewer<'a>(ctx: &Context<'a>) -> Option<&'a AuthUser> {
    ctx.data::<Viewer>().ok().and_then(|v| v.0.as_ref())
}

pub(super) fn signed_in<'a>(ctx: &Context<'a>) -> Result<&'a AuthUser> {
    viewer(ctx).ok_or_else(|| fail(ApiError::Unauthorized))
}

fn meta<'a>(ctx: &Context<'a>) -> Result<&'a RequestMeta> {
    ctx.data::<RequestMeta>()
}

/// An object id: a positive whole number, given as an `ID`.
pub(super) fn id_of(id: &ID, field: &str) -> Result<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        fail(ApiError::validation(crate::domain::FieldError::new(
            field,
            "invalid_id",
            "must be a positive whole number",
        )))
    })
}

/// A mutation's change, audited as `user`'s. Under an Idempotency-Key its
/// transaction stores the provisional answer; the request stores the
/// answer it renders after (`keyed.rs`).
fn a_change<T>(meta: &RequestMeta, user: Option<UserId>) -> crate::commit::Commit<T> {
    meta.commit(user, |_: &T| super::keyed::lost_answer())
}

/// A user's own account.
pub struct User(UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Hosts' published reviews of them as a guest.
    async fn guest_review_count(&self) -> i64 {
        self.0.guest_review_count
    }
    async fn guest_rating_avg(&self) -> Option<f64> {
        self.0.guest_totals().rating_avg()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.and_utc()
    }
}

/// What anyone may see of a user: a listing's host, a reviewed guest.
pub struct PublicUser(UserRow);

#[Object]
impl PublicUser {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn guest_review_count(&self) -> i64 {
        self.0.guest_review_count
    }
    async fn guest_rating_avg(&self) -> Option<f64> {
        self.0.guest_totals().rating_avg()
    }
}

/// A listing's rating in one category.
#[derive(SimpleObject)]
pub struct CategoryRating {
    pub category: &'static str,
    /// Two decimals, rounded half up; null with no reviews.
    pub average: Option<f64>,
}

/// A listing, as anyone sees it.
pub struct Listing(Property);

#[Object]
impl Listing {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn city(&self) -> &str {
        &self.0.city
    }
    async fn country(&self) -> &str {
        &self.0.country
    }
    async fn latitude(&self) -> f64 {
        self.0.latitude
    }
    async fn longitude(&self) -> f64 {
        self.0.longitude
    }
    /// In minor units of `currency`.
    async fn price_per_night(&self) -> i64 {
        self.0.price_per_night
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn cleaning_fee(&self) -> i64 {
        self.0.cleaning_fee
    }
    async fn max_guests(&self) -> i64 {
        self.0.max_guests
    }
    async fn min_nights(&self) -> i64 {
        self.0.min_nights
    }
    async fn max_nights(&self) -> i64 {
        self.0.max_nights
    }
    async fn amenities(&self) -> Vec<&'static str> {
        Amenities::from_mask(self.0.amenities).names()
    }
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    async fn cancellation_policy(&self) -> &'static str {
        self.0.policy().as_str()
    }
    async fn check_in_time(&self) -> String {
        self.0.check_in_time().to_hhmm()
    }
    async fn review_count(&self) -> i64 {
        self.0.review_count
    }
    /// Two decimals, rounded half up; null with no reviews.
    async fn rating_avg(&self) -> Option<f64> {
        self.0.review_totals().rating_avg()
    }
    async fn category_ratings(&self) -> Vec<CategoryRating> {
        CATEGORIES
            .iter()
            .zip(self.0.review_totals().category_avgs())
            .map(|(category, average)| CategoryRating { category, average })
            .collect()
    }
    /// What the host charges beside the nightly price.
    async fn pricing(&self, ctx: &Context<'_>) -> Result<ListingPricing> {
        let fee = state(ctx)?.settings.service_fee_bp;
        Ok(ListingPricing::of(&self.0, fee))
    }
    /// Its nights over `[from, to)` (`YYYY-MM-DD`, at most a year): which
    /// are taken, and each free one's price.
    async fn availability(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> Result<Availability> {
        let id = PropertyId(self.0.id);
        let found =
            crate::api::rest::properties::availability(state(ctx)?, id, Some(from), Some(to))
                .await
                .map_err(fail)?;
        Ok(Availability(found))
    }
    /// A stay's price line by line (`guests` 1 by default), and whether it
    /// can be booked now.
    async fn quote(
        &self,
        ctx: &Context<'_>,
        check_in: String,
        check_out: String,
        guests: Option<i64>,
    ) -> Result<Quote> {
        let id = PropertyId(self.0.id);
        let guests = guests.map(|g| g.to_string());
        let quoted = crate::api::rest::pricing::quote(
            state(ctx)?,
            id,
            Some(check_in),
            Some(check_out),
            guests,
        )
        .await
        .map_err(fail)?;
        Ok(Quote(quoted))
    }
    async fn host(&self, ctx: &Context<'_>) -> Result<PublicUser> {
        let users = ctx.data::<DataLoader<Users>>()?;
        let user = users.load_one(self.0.host_id).await?;
        let user = user.ok_or_else(|| fail(ApiError::NotFound("user")))?;
        Ok(PublicUser(user))
    }
    /// Its published reviews, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ListingReview>> {
        let state = state(ctx)?;
        let query = crate::api::rest::reviews::ReviewPageQuery::new(first.map(i64::from), after);
        let (before, limit) = query.parse().map_err(fail)?;
        let (_, rows) = reviews::of_listing(&state.db, PropertyId(self.0.id), before, limit)
            .await
            .map_err(fail)?;
        let mut connection = Connection::new(false, rows.len() as i64 == limit);
        for row in rows {
            let cursor = crate::api::rest::reviews::encode_review_cursor(&row).unwrap_or_default();
            connection.edges.push(Edge::new(cursor, ListingReview(row)));
        }
        Ok(connection)
    }
}

/// A published review.
pub struct ListingReview(ReviewRow);

#[Object(name = "Review")]
impl ListingReview {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `GUEST` (of the listing) or `HOST` (of the guest).
    async fn side(&self) -> &'static str {
        match self.0.side() {
            Side::Guest => "GUEST",
            Side::Host => "HOST",
        }
    }
    async fn rating(&self) -> i64 {
        self.0.rating
    }
    async fn cleanliness(&self) -> Option<i64> {
        self.0.cleanliness
    }
    async fn accuracy(&self) -> Option<i64> {
        self.0.accuracy
    }
    async fn communication(&self) -> Option<i64> {
        self.0.communication
    }
    async fn location(&self) -> Option<i64> {
        self.0.location
    }
    async fn check_in(&self) -> Option<i64> {
        self.0.check_in
    }
    async fn value(&self) -> Option<i64> {
        self.0.value
    }
    /// `waiting` (its author alone sees it), `published` or `removed`.
    async fn status(&self) -> &'static str {
        match (self.0.removed_at, self.0.published_at) {
            (Some(_), _) => "removed",
            (None, Some(_)) => "published",
            (None, None) => "waiting",
        }
    }
    /// Plain text: show it as text, never as markup.
    async fn comment(&self) -> &str {
        &self.0.comment
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at.map(|t| t.and_utc())
    }
    /// The reviewed party's public reply.
    async fn reply(&self) -> Option<&str> {
        self.0.reply.as_deref()
    }
}

/// A signed-in session: the bearer token and its user.
pub struct Session(accounts::Session);

#[Object]
impl Session {
    /// Send as `Authorization: Bearer <token>`.
    async fn token(&self) -> &str {
        &self.0.token
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn user(&self) -> User {
        User(self.0.user.clone())
    }
}

/// How search results are ordered.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum SearchSort {
    PriceAsc,
    PriceDesc,
    Newest,
    RatingDesc,
}

impl SearchSort {
    fn rest_name(self) -> &'static str {
        match self {
            SearchSort::PriceAsc => "price_asc",
            SearchSort::PriceDesc => "price_desc",
            SearchSort::Newest => "newest",
            SearchSort::RatingDesc => "rating_desc",
        }
    }
}

/// Search's filters: the same as REST's query parameters, and checked by
/// the same code (field errors name REST's parameters).
#[derive(async_graphql::InputObject, Default)]
pub struct SearchFilter {
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub guests: Option<i64>,
    /// Every one of these.
    pub amenities: Option<Vec<String>>,
    /// `YYYY-MM-DD`, with `checkOut`: free for those nights.
    pub check_in: Option<String>,
    pub check_out: Option<String>,
    /// 1 to 5, at most two decimals.
    pub min_rating: Option<f64>,
    pub min_lat: Option<f64>,
    pub max_lat: Option<f64>,
    pub min_lon: Option<f64>,
    pub max_lon: Option<f64>,
    /// Flexible dates, with `withinFrom` and `withinTo`: listings with any
    /// free stay of this many nights (within their stay rules) that checks
    /// in and out inside the window; each edge's `stay` is the earliest.
    pub nights: Option<i64>,
    /// `YYYY-MM-DD`: the window's first check-in day.
    pub within_from: Option<String>,
    /// `YYYY-MM-DD`: the window's last check-out day (at most 92 days on).
    pub within_to: Option<String>,
}

/// What a flexible-dates search found free on a listing: `[checkIn, checkOut)`.
#[derive(SimpleObject)]
pub struct FreeStay {
    pub check_in: chrono::NaiveDate,
    pub check_out: chrono::NaiveDate,
}

/// A search result's edge, beyond its listing.
#[derive(SimpleObject)]
pub struct SearchEdgeFields {
    /// The earliest free stay, for a flexible-dates search; else null.
    pub stay: Option<FreeStay>,
}

impl SearchFilter {
    fn params(
        self,
        sort: Option<SearchSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = Vec::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push((name.to_owned(), value));
            }
        };
        let num = |v: Option<i64>| v.map(|n| n.to_string());
        let float = |v: Option<f64>| v.map(|n| n.to_string());
        put("city", self.city);
        put("country", self.country);
        put("min_price", num(self.min_price));
        put("max_price", num(self.max_price));
        put("guests", num(self.guests));
        put("amenities", self.amenities.map(|a| a.join(",")));
        put("check_in", self.check_in);
        put("check_out", self.check_out);
        put("min_rating", float(self.min_rating));
        put("min_lat", float(self.min_lat));
        put("max_lat", float(self.max_lat));
        put("min_lon", float(self.min_lon));
        put("max_lon", float(self.max_lon));
        put("nights", num(self.nights));
        put("within_from", self.within_from);
        put("within_to", self.within_to);
        put("sort", sort.map(|s| s.rest_name().to_owned()));
        put("limit", first.map(|n| n.to_string()));
        put("cursor", after);
        params
    }
}

/// A booking, as its guest and its listing's host see it.
pub struct Booking(Entry);

#[Object]
impl Booking {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// As of now: a hold past its expiry reads `expired`.
    async fn status(&self) -> &'static str {
        effective_status(&self.0, crate::db::now())
            .map(crate::domain::BookingStatus::as_str)
            .unwrap_or("unknown")
    }
    async fn check_in(&self) -> chrono::NaiveDate {
        self.0.check_in
    }
    async fn check_out(&self) -> chrono::NaiveDate {
        self.0.check_out
    }
    async fn guests(&self) -> Option<i64> {
        self.0.guests
    }
    /// What it was sold at, in minor units of `currency`.
    async fn total(&self) -> Option<i64> {
        self.0.total
    }
    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_deref()
    }
    async fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.hold_expires_at.map(|t| t.and_utc())
    }
    async fn reviews_close_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviews_close_at.map(|t| t.and_utc())
    }
    async fn guest_id(&self) -> Option<ID> {
        self.0.guest_id.map(|g| ID(g.to_string()))
    }
    async fn listing(&self, ctx: &Context<'_>) -> Result<Listing> {
        let listings = ctx.data::<DataLoader<Listings>>()?;
        let found = listings.load_one(self.0.property_id).await?;
        let found = found.ok_or_else(|| fail(ApiError::NotFound("property")))?;
        Ok(Listing(found))
    }
    /// Its latest payment.
    async fn payment(&self, ctx: &Context<'_>) -> Result<Option<Payment>> {
        let id = crate::domain::BookingId(self.0.id);
        let (payment, _) = bookings::money_of(&state(ctx)?.db, id)
            .await
            .map_err(fail)?;
        Ok(payment.map(|p| Payment(p, None)))
    }
}

/// A payment: never a card number.
pub struct Payment(PaymentRow, Option<String>);

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn amount(&self) -> i64 {
        self.0.amount
    }
    async fn amount_refunded(&self) -> i64 {
        self.0.amount_refunded
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Just started: where the payer's client posts the card.
    async fn confirm_url(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

/// Whose bookings: my trips, or my listings'.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum BookingRole {
    Guest,
    Host,
}

/// A listing's fields, as REST's body names them (checked by the same
/// code; field errors name them in snake_case).
#[derive(async_graphql::InputObject, serde::Serialize, Default)]
pub struct ListingFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub price_per_night: Option<i64>,
    pub currency: Option<String>,
    pub cleaning_fee: Option<i64>,
    pub max_guests: Option<i64>,
    pub min_nights: Option<i64>,
    pub max_nights: Option<i64>,
    pub amenities: Option<Vec<String>>,
    pub advance_notice_days: Option<i64>,
    pub booking_window_days: Option<i64>,
    pub check_in_days: Option<Vec<String>>,
    pub check_out_days: Option<Vec<String>>,
    pub time_zone: Option<String>,
    pub cancellation_policy: Option<String>,
    pub check_in_time: Option<String>,
}

/// A review's fields: a guest gives all eight, a host `rating` and `comment`.
#[derive(async_graphql::InputObject, serde::Serialize, Default)]
pub struct ReviewFields {
    pub rating: Option<i64>,
    pub cleanliness: Option<i64>,
    pub accuracy: Option<i64>,
    pub communication: Option<i64>,
    pub location: Option<i64>,
    pub check_in: Option<i64>,
    pub value: Option<i64>,
    pub comment: Option<String>,
}

/// An input object as the JSON body REST would parse, nulls dropped.
fn as_body<T: serde::Serialize>(input: &T) -> Result<serde_json::Map<String, serde_json::Value>> {
    let value = serde_json::to_value(input).map_err(|e| fail(ApiError::Internal(e.into())))?;
    let mut map = match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    map.retain(|_, v| !v.is_null());
    Ok(map)
}

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let auth = signed_in(ctx)?;
        let user = accounts::get(&state(ctx)?.db, auth.id)
            .await
            .map_err(fail)?;
        Ok(User(user))
    }

    /// A booking its guest, its listing's host or an admin may see.
    async fn booking(&self, ctx: &Context<'_>, id: ID) -> Result<Booking> {
        let auth = signed_in(ctx)?;
        let id = crate::domain::BookingId(id_of(&id, "id")?);
        let actor = meta(ctx)?.actor(Some(auth.id));
        let (entry, _) = bookings::get(&state(ctx)?.db, &actor, auth, id, "booking.read")
            .await
            .map_err(fail)?;
        Ok(Booking(entry))
    }

    /// My trips (`GUEST`, the default) or my listings' bookings (`HOST`),
    /// newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn my_bookings(
        &self,
        ctx: &Context<'_>,
        role: Option<BookingRole>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Booking>> {
        let auth = signed_in(ctx)?;
        let of = match role.unwrap_or(BookingRole::Guest) {
            BookingRole::Guest => BookingsOf::Guest(auth.id.0),
            BookingRole::Host => BookingsOf::Host(auth.id.0),
        };
        let request = PageQuery {
            limit: first.map(i64::from),
            cursor: after,
        }
        .parse()
        .map_err(fail)?;
        let rows = bookings::list(&state(ctx)?.db, of, request.before_id(), request.limit)
            .await
            .map_err(fail)?;
        let mut connection = Connection::new(false, rows.len() as i64 == request.limit);
        for row in rows {
            connection
                .edges
                .push(Edge::new(encode_cursor(row.id), Booking(row)));
        }
        Ok(connection)
    }

    /// A live listing.
    async fn listing(&self, ctx: &Context<'_>, id: ID) -> Result<Listing> {
        let id = PropertyId(id_of(&id, "id")?);
        let state = state(ctx)?;
        let listing = state.listings.live(&state.db, id).await.map_err(fail)?;
        Ok(Listing(listing.property.clone()))
    }

    /// Live listings matching every filter given, in `sort` order (by
    /// price, lowest first, by default); `first` 1 to 100 (20), `after` a
    /// previous page's `endCursor`.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        filter: Option<SearchFilter>,
        sort: Option<SearchSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Listing, EmptyFields, SearchEdgeFields>> {
        let params = filter.unwrap_or_default().params(sort, first, after);
        let filter = parse_search(params).map_err(fail)?;
        let (sort, limit) = (filter.sort, filter.limit);
        let state = state(ctx)?;
        let rows = properties::search(&state.db, &state.search, &state.listings, filter)
            .await
            .map_err(fail)?;
        let mut connection = Connection::new(false, rows.len() as i64 == limit);
        for found in rows {
            let cursor = encode_search_cursor(sort, found.property());
            let stay = found.stay.map(|s| FreeStay {
                check_in: s.check_in(),
                check_out: s.check_out(),
            });
            let fields = SearchEdgeFields { stay };
            connection.edges.push(Edge::with_additional_fields(
                cursor,
                Listing(found.into_property()),
                fields,
            ));
        }
        Ok(connection)
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// A new account (a guest unless `role` is `host`).
    async fn register(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        name: String,
        role: Option<String>,
    ) -> Result<User> {
        let account = RegisterBody {
            email: Some(email),
            password: Some(password),
            name: Some(name),
            role,
        }
        .parse()
        .map_err(fail)?;
        let commit = a_change(meta(ctx)?, None);
        let user = accounts::create(&state(ctx)?.db, &commit, account)
            .await
            .map_err(fail)?;
        Ok(User(user))
    }

    /// A new listing (a host or an admin).
    async fn create_listing(&self, ctx: &Context<'_>, input: ListingFields) -> Result<Listing> {
        let auth = signed_in(ctx)?;
        let input = listing_input(as_body(&input)?).map_err(fail)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let created = properties::create(&state(ctx)?.db, &state(ctx)?.bus, &commit, auth, input)
            .await
            .map_err(fail)?;
        Ok(Listing(created))
    }

    /// Changes a listing's fields (its host or an admin); the ones not
    /// given stay as they are.
    async fn update_listing(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ListingFields,
    ) -> Result<Listing> {
        let auth = signed_in(ctx)?;
        let id = PropertyId(id_of(&id, "id")?);
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        // Who may change it is settled before what the change says.
        properties::get_owned(&state.db, &commit.actor, auth, id, "property.update")
            .await
            .map_err(fail)?;
        let input = listing_input(as_body(&input)?).map_err(fail)?;
        let updated = properties::update(&state.db, &state.bus, &commit, auth, id, input)
            .await
            .map_err(fail)?;
        Ok(Listing(updated))
    }

    /// Replaces a listing's pricing (as `PUT /properties/{id}/pricing`).
    async fn set_pricing(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        input: PricingValues,
    ) -> Result<Listing> {
        let auth = signed_in(ctx)?;
        let id = PropertyId(id_of(&property_id, "property_id")?);
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        properties::get_owned(&state.db, &commit.actor, auth, id, "pricing.update")
            .await
            .map_err(fail)?;
        let pricing = crate::api::rest::pricing::pricing_input(as_body(&input)?).map_err(fail)?;
        let updated = crate::services::pricing::set_pricing(
            &state.db, &state.bus, &commit, auth, id, pricing,
        )
        .await
        .map_err(fail)?;
        Ok(Listing(updated))
    }

    /// Its host blocks nights `[start, end)` (`YYYY-MM-DD`).
    async fn block_nights(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        start: String,
        end: String,
        reason: Option<String>,
    ) -> Result<Block> {
        let auth = signed_in(ctx)?;
        let id = PropertyId(id_of(&property_id, "property_id")?);
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        properties::get_owned(&state.db, &commit.actor, auth, id, "block.add")
            .await
            .map_err(fail)?;
        let mut body = serde_json::Map::new();
        body.insert("start".into(), start.into());
        body.insert("end".into(), end.into());
        if let Some(reason) = reason {
            body.insert("reason".into(), reason.into());
        }
        let (dates, reason) = crate::api::rest::properties::block_input(body).map_err(fail)?;
        let block = bookings::add_block(
            &state.db,
            &state.properties,
            &commit,
            auth,
            id,
            dates,
            reason,
        )
        .await
        .map_err(fail)?;
        Ok(Block(block))
    }

    /// Its host frees a block's nights.
    async fn remove_block(&self, ctx: &Context<'_>, property_id: ID, block_id: ID) -> Result<bool> {
        let auth = signed_in(ctx)?;
        let id = PropertyId(id_of(&property_id, "property_id")?);
        let block = crate::domain::BlockId(id_of(&block_id, "block_id")?);
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        bookings::remove_block(&state.db, &state.properties, &commit, auth, id, block)
            .await
            .map_err(fail)?;
        Ok(true)
    }

    /// Holds nights: a pending booking, priced now (as `POST /bookings`).
    async fn book(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        check_in: String,
        check_out: String,
        guests: Option<i64>,
        expected_total: Option<i64>,
    ) -> Result<Booking> {
        let auth = signed_in(ctx)?;
        let mut body = serde_json::Map::new();
        body.insert(
            "property_id".into(),
            id_of(&property_id, "property_id")?.into(),
        );
        body.insert("check_in".into(), check_in.into());
        body.insert("check_out".into(), check_out.into());
        if let Some(guests) = guests {
            body.insert("guests".into(), guests.into());
        }
        if let Some(total) = expected_total {
            body.insert("expected_total".into(), total.into());
        }
        let request = booking_request(body).map_err(fail)?;
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let entry = bookings::create(&state.properties, &state.settings, &commit, auth, request)
            .await
            .map_err(fail)?;
        Ok(Booking(entry))
    }

    /// Its guest moves a booking or changes its guests (as `PATCH
    /// /bookings/{id}`): re-priced; a paid stay's difference is charged or
    /// refunded.
    async fn change_booking(
        &self,
        ctx: &Context<'_>,
        id: ID,
        check_in: Option<String>,
        check_out: Option<String>,
        guests: Option<i64>,
    ) -> Result<Booking> {
        let auth = signed_in(ctx)?;
        let id = crate::domain::BookingId(id_of(&id, "id")?);
        let mut body = serde_json::Map::new();
        let given = [
            ("check_in", check_in.map(Into::into)),
            ("check_out", check_out.map(Into::into)),
            ("guests", guests.map(Into::into)),
        ];
        for (name, value) in given {
            if let Some(value) = value {
                body.insert(name.into(), value);
            }
        }
        let change = crate::api::rest::bookings::change_input(body).map_err(fail)?;
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let changed = bookings::change(
            &state.db,
            &state.properties,
            &state.settings,
            &commit,
            auth,
            id,
            change,
        )
        .await
        .map_err(fail)?;
        crate::api::rest::bookings::settle_change(state, id, &changed).await;
        Ok(Booking(changed.entry))
    }

    /// Its guest or its listing's host (or an admin) cancels; a paid
    /// stay's refund is decided in the same transaction.
    async fn cancel_booking(&self, ctx: &Context<'_>, id: ID) -> Result<Booking> {
        let auth = signed_in(ctx)?;
        let id = crate::domain::BookingId(id_of(&id, "id")?);
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let cancelled = bookings::cancel(&state.db, &state.properties, &commit, auth, id)
            .await
            .map_err(fail)?;
        state.settlement().send_refunds(id).await;
        Ok(Booking(cancelled.entry))
    }

    /// Its guest starts paying a pending booking (as `POST
    /// /bookings/{id}/payments`): the card goes to `confirmUrl`.
    async fn pay(&self, ctx: &Context<'_>, booking_id: ID) -> Result<Payment> {
        let auth = signed_in(ctx)?;
        let booking = crate::domain::BookingId(id_of(&booking_id, "booking_id")?);
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let started = crate::services::payments::start(
            &state.db,
            state.payments.as_ref(),
            &commit,
            auth,
            booking,
        )
        .await
        .map_err(fail)?;
        let confirm = started.next_action.and_then(|a| a.confirm_url);
        Ok(Payment(started.payment, confirm))
    }

    /// Reviews a completed stay: the guest the listing, the host the guest.
    async fn write_review(
        &self,
        ctx: &Context<'_>,
        booking_id: ID,
        input: ReviewFields,
    ) -> Result<ListingReview> {
        let auth = signed_in(ctx)?;
        let booking = crate::domain::BookingId(id_of(&booking_id, "booking_id")?);
        let input = review_input(as_body(&input)?, None).map_err(fail)?;
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let review = reviews::write(&state.db, &state.bus, &commit, auth, booking, input)
            .await
            .map_err(fail)?;
        Ok(ListingReview(review))
    }

    /// Its author changes a review within 48 hours of its publication.
    async fn edit_review(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ReviewFields,
    ) -> Result<ListingReview> {
        let auth = signed_in(ctx)?;
        let id = id_of(&id, "id")?;
        let input = review_input(as_body(&input)?, None).map_err(fail)?;
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let review = reviews::edit(&state.db, &state.bus, &commit, auth, id, input)
            .await
            .map_err(fail)?;
        Ok(ListingReview(review))
    }

    /// The reviewed party's one public reply (editable for 48 hours).
    async fn reply_to_review(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: String,
    ) -> Result<ListingReview> {
        let auth = signed_in(ctx)?;
        let id = id_of(&id, "id")?;
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, Some(auth.id));
        let review = reviews::reply(&state.db, &commit, auth, id, Some(comment))
            .await
            .map_err(fail)?;
        Ok(ListingReview(review))
    }

    /// Signs in: a bearer token for the other requests.
    async fn sign_in(&self, ctx: &Context<'_>, email: String, password: String) -> Result<Session> {
        let body = LoginBody {
            email: Some(email),
            password: Some(password),
        };
        let (email, password) = body.parse().map_err(fail)?;
        let state = state(ctx)?;
        let commit = a_change(meta(ctx)?, None);
        let session = accounts::login(
            &state.db,
            &commit,
            &state.decoy_hash,
            state.token_ttl(),
            email,
            password,
        )
        .await
        .map_err(fail)?;
        Ok(Session(session))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_statuses_ride_along_with_the_codes() {
        let e = super::fail(crate::error::ApiError::NotFound("property"));
        let ext = e.extensions.unwrap();
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("not_found"))
        );
        assert_eq!(ext.get("status"), Some(&async_graphql::Value::from(404)));
    }
}
