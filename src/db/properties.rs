//! The `properties` table: listings, and the search over them.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::expression::{AppearsOnTable, Expression};
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{BigInt, Bool, Nullable};
use diesel_async::RunQueryDsl;

use super::schema::{calendar_entries, calendar_heads, properties};
use super::{AsConn, Conn};
use crate::with_conn;

/// How many columns `properties` has (a test checks it against the schema):
/// what bounds a multi-row insert's rows per statement.
pub const COLUMNS: usize = 43;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = properties)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Property {
    pub id: i64,
    pub host_id: i64,
    pub title: String,
    pub description: String,
    pub address: String,
    pub city: String,
    pub city_key: String,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    pub price_per_night: i64,
    pub currency: String,
    pub cleaning_fee: i64,
    pub max_guests: i64,
    pub min_nights: i64,
    pub max_nights: i64,
    pub amenities: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    pub weekend_price: Option<i64>,
    pub extra_guest_fee: Option<i64>,
    pub extra_guest_after: Option<i64>,
    pub weekly_discount_pct: Option<i64>,
    pub monthly_discount_pct: Option<i64>,
    pub tax_rate_bp: Option<i64>,
    pub advance_notice_days: i64,
    pub booking_window_days: i64,
    pub check_in_days: i64,
    pub check_out_days: i64,
    pub time_zone: String,
    pub cancellation_policy: String,
    pub check_in_minute: i64,
    /// Totals over its published guest reviews (see `domain::review::Totals`).
    pub review_count: i64,
    pub rating_sum: i64,
    pub cleanliness_sum: i64,
    pub accuracy_sum: i64,
    pub communication_sum: i64,
    pub location_sum: i64,
    pub check_in_sum: i64,
    pub value_sum: i64,
    /// The overall average in hundredths (0: no reviews), search's key.
    pub rating_avg_x100: i64,
    /// The day its last season ends (none: it has no seasons): no season
    /// touches nights from then on (see `rates::touching_locked`).
    pub seasons_end: Option<NaiveDate>,
}

impl Property {
    /// Its review totals.
    pub fn review_totals(&self) -> crate::domain::review::Totals {
        crate::domain::review::Totals {
            count: self.review_count,
            rating: self.rating_sum,
            categories: [
                self.cleanliness_sum,
                self.accuracy_sum,
                self.communication_sum,
                self.location_sum,
                self.check_in_sum,
                self.value_sum,
            ],
        }
    }

    /// Its cancellation policy (the default if the stored name is unknown
    /// to this build, which only a downgrade could cause).
    pub fn policy(&self) -> crate::domain::cancellation::CancellationPolicy {
        crate::domain::cancellation::CancellationPolicy::parse(&self.cancellation_policy)
            .unwrap_or_default()
    }

    /// Its local check-in time.
    pub fn check_in_time(&self) -> crate::domain::cancellation::CheckInTime {
        crate::domain::cancellation::CheckInTime::from_minute(self.check_in_minute)
    }

    /// The listing's rules, as stored (valid when written).
    pub fn rules(&self) -> crate::domain::StayRules {
        stored_rules(
            [self.max_guests, self.min_nights, self.max_nights],
            [self.advance_notice_days, self.booking_window_days],
            [self.check_in_days, self.check_out_days],
        )
    }

    /// Its time zone (UTC if the stored name is unknown to this build's
    /// tz database, which only a downgrade could cause).
    pub fn zone(&self) -> crate::domain::stay::TimeZone {
        stored_zone(&self.time_zone)
    }

    /// The prices the host set beside the base price and cleaning fee.
    pub fn pricing(&self) -> crate::domain::pricing::Pricing {
        crate::domain::pricing::Pricing {
            weekend_price: self.weekend_price,
            extra_guest_fee: self.extra_guest_fee,
            extra_guest_after: self.extra_guest_after,
            weekly_discount_pct: self.weekly_discount_pct,
            monthly_discount_pct: self.monthly_discount_pct,
            tax_rate_bp: self.tax_rate_bp,
        }
    }
}

/// Sets a listing's pricing (all six: `None` clears one), and moves its
/// rules version.
pub async fn set_pricing(
    conn: &mut impl AsConn,
    id: i64,
    p: &crate::domain::pricing::Pricing,
    now: NaiveDateTime,
) -> QueryResult<Property> {
    use properties::dsl as d;
    let property = with_conn!(conn, |c| {
        diesel::update(d::properties.find(id))
            .set((
                d::weekend_price.eq(p.weekend_price),
                d::extra_guest_fee.eq(p.extra_guest_fee),
                d::extra_guest_after.eq(p.extra_guest_after),
                d::weekly_discount_pct.eq(p.weekly_discount_pct),
                d::monthly_discount_pct.eq(p.monthly_discount_pct),
                d::tax_rate_bp.eq(p.tax_rate_bp),
                d::updated_at.eq(now),
            ))
            .returning(Property::as_returning())
            .get_result(c)
            .await
    })?;
    rules_changed(conn, id).await?;
    Ok(property)
}

/// A listing's columns as written on create and update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = properties, treat_none_as_default_value = false)]
pub struct PropertyFields<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub address: &'a str,
    pub city: &'a str,
    pub city_key: &'a str,
    pub country: &'a str,
    pub latitude: f64,
    pub longitude: f64,
    pub price_per_night: i64,
    pub currency: &'a str,
    pub cleaning_fee: i64,
    pub max_guests: i64,
    pub min_nights: i64,
    pub max_nights: i64,
    pub amenities: i64,
    pub advance_notice_days: i64,
    pub booking_window_days: i64,
    pub check_in_days: i64,
    pub check_out_days: i64,
    pub time_zone: &'a str,
    pub cancellation_policy: &'a str,
    pub check_in_minute: i64,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = properties, treat_none_as_default_value = false)]
pub struct NewProperty<'a> {
    pub host_id: i64,
    pub created_at: NaiveDateTime,
    #[diesel(embed)]
    pub fields: PropertyFields<'a>,
    #[diesel(embed)]
    pub pricing: PricingFields,
    /// The end of its last season, when it is written with its seasons
    /// (the seeder); otherwise none, and [`rates::insert`](super::rates::insert)
    /// keeps it.
    pub seasons_end: Option<NaiveDate>,
}

/// A listing's pricing columns as first written (`None`: none).
#[derive(Insertable, Clone, Copy, Default)]
#[diesel(table_name = properties, treat_none_as_default_value = false)]
pub struct PricingFields {
    pub weekend_price: Option<i64>,
    pub extra_guest_fee: Option<i64>,
    pub extra_guest_after: Option<i64>,
    pub weekly_discount_pct: Option<i64>,
    pub monthly_discount_pct: Option<i64>,
    pub tax_rate_bp: Option<i64>,
}

impl From<crate::domain::pricing::Pricing> for PricingFields {
    fn from(p: crate::domain::pricing::Pricing) -> Self {
        Self {
            weekend_price: p.weekend_price,
            extra_guest_fee: p.extra_guest_fee,
            extra_guest_after: p.extra_guest_after,
            weekly_discount_pct: p.weekly_discount_pct,
            monthly_discount_pct: p.monthly_discount_pct,
            tax_rate_bp: p.tax_rate_bp,
        }
    }
}

/// The search key of a city name: trimmed and lower-cased.
pub fn city_key(city: &str) -> String {
    city.trim().to_lowercase()
}

/// A new listing, and its calendar's head (no events yet). Call inside a
/// write transaction: a listing without its head cannot be locked.
pub async fn insert(conn: &mut impl AsConn, new: &NewProperty<'_>) -> QueryResult<Property> {
    let property: Property = with_conn!(conn, |c| {
        diesel::insert_into(properties::table)
            .values(new)
            .returning(Property::as_returning())
            .get_result(c)
            .await
    })?;
    add_heads(conn, vec![property.id]).await?;
    Ok(property)
}

/// Calendar heads (at seq 0) for these new listings: an `INSERT … SELECT`
/// on either backend, a few thousand ids at a time (SQLite binds each id,
/// and at most 32,766 values a statement).
async fn add_heads(conn: &mut impl AsConn, ids: Vec<i64>) -> QueryResult<()> {
    for chunk in ids.chunks(10_000) {
        with_conn!(conn, |c| {
            let new = properties::table
                .filter(properties::id.eq_any(chunk))
                .select(properties::id);
            diesel::insert_into(calendar_heads::table)
                .values(new)
                .into_columns(calendar_heads::property_id)
                .execute(c)
                .await
        })?;
    }
    Ok(())
}

/// Many at once (the seeder), returning their ids in order: one multi-row
/// INSERT on PostgreSQL, a row at a time (a prepared statement, inside the
/// caller's transaction) on SQLite.
pub async fn insert_many(
    conn: &mut impl AsConn,
    rows: &[NewProperty<'_>],
) -> QueryResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(rows.len());
    match conn.as_conn() {
        Conn::Sqlite(c) => {
            for row in rows {
                let id = diesel::insert_into(properties::table)
                    .values(row)
                    .returning(properties::id)
                    .get_result(c)
                    .await?;
                ids.push(id);
            }
        }
        Conn::Postgres(c) => {
            for chunk in rows.chunks(super::pg_rows_per_insert(COLUMNS)) {
                let insert = diesel::insert_into(properties::table).values(chunk);
                ids.extend(
                    insert
                        .returning(properties::id)
                        .get_results::<i64>(c)
                        .await?,
                );
            }
        }
    }
    add_heads(conn, ids.clone()).await?;
    Ok(ids)
}

/// A listing, deleted or not.
pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Property>> {
    with_conn!(conn, |c| {
        properties::table
            .find(id)
            .select(Property::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The listings of `ids` that exist, deleted or not, in no particular order.
pub async fn find_many(conn: &mut impl AsConn, ids: &[i64]) -> QueryResult<Vec<Property>> {
    with_conn!(conn, |c| {
        properties::table
            .filter(properties::id.eq_any(ids))
            .select(Property::as_select())
            .load(c)
            .await
    })
}

/// Locks the listing's calendar for the rest of this write transaction and
/// reads the listing and its head as committed. Every calendar write starts
/// here or in [`events::claim_guarded`](super::events::claim_guarded)
/// (which locks the head alone), so writers of one calendar take turns on
/// any node: `SELECT … FOR NO KEY UPDATE` of the listing's row and its head
/// on PostgreSQL; on SQLite the `BEGIN IMMEDIATE` write lock already holds.
pub async fn lock_calendar(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Headed>> {
    let found: Option<(Property, i64, i64)> = match conn.as_conn() {
        Conn::Sqlite(c) => headed(id).first(c).await.optional()?,
        // Both rows: the head is what every writer of the calendar moves,
        // and locking it makes PostgreSQL read it as the writer before
        // committed it (a row only read would come from the snapshot taken
        // before the wait). `NO KEY`: the foreign keys of the rows a writer
        // inserts take a key-share lock on the listing's row, which `FOR
        // UPDATE` would block. A guarded claim holding the head would then
        // wait for this lock while this one waits for the head.
        Conn::Postgres(c) => headed(id).for_no_key_update().first(c).await.optional()?,
    };
    Ok(found.map(Headed::from))
}

/// The listing and its head, as committed, locking nothing.
pub async fn find_headed(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Headed>> {
    let found: Option<(Property, i64, i64)> =
        with_conn!(conn, |c| { headed(id).first(c).await.optional() })?;
    Ok(found.map(Headed::from))
}

/// The listing's row and its head's seq and rules version.
#[diesel::dsl::auto_type]
fn headed<DB: diesel::backend::Backend>(id: i64) -> _ {
    let columns: diesel::dsl::AsSelect<Property, DB> = Property::as_select();
    properties::table
        .inner_join(calendar_heads::table)
        .filter(properties::id.eq(id))
        .select((columns, calendar_heads::seq, calendar_heads::rules))
}

/// Moves the listing's rules version on: call in the transaction of every
/// change to what a claim on it is judged by (its row's prices and stay
/// rules, its time zone, its deletion, its seasons), after the change (the
/// listing's row is locked before its head, as [`lock_calendar`] does).
/// A claim made on the rules read before fails its guard and is judged
/// again ([`events::claim_guarded`](super::events::claim_guarded)).
pub async fn rules_changed(conn: &mut impl AsConn, id: i64) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(calendar_heads::table.find(id))
            .set(calendar_heads::rules.eq(calendar_heads::rules + 1))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// A listing, and where its event log stands: the number of its last
/// event (its head; see `db::events`). Read under the calendar's lock
/// ([`lock_calendar`]), it is what the log's writers number from.
#[derive(Clone, Debug)]
pub struct Headed {
    pub property: Property,
    pub seq: i64,
    /// The version of the rules the row states ([`rules_changed`]).
    pub rules: i64,
}

impl From<(Property, i64, i64)> for Headed {
    fn from((property, seq, rules): (Property, i64, i64)) -> Self {
        Self {
            property,
            seq,
            rules,
        }
    }
}

impl std::ops::Deref for Headed {
    type Target = Property;

    fn deref(&self) -> &Property {
        &self.property
    }
}

/// Rewrites a live listing's columns, and moves its rules version.
pub async fn update(
    conn: &mut impl AsConn,
    id: i64,
    fields: &PropertyFields<'_>,
) -> QueryResult<Option<Property>> {
    let updated = with_conn!(conn, |c| {
        diesel::update(
            properties::table
                .find(id)
                .filter(properties::deleted_at.is_null()),
        )
        .set(fields)
        .returning(Property::as_returning())
        .get_result(c)
        .await
        .optional()
    })?;
    if updated.is_some() {
        rules_changed(conn, id).await?;
    }
    Ok(updated)
}

/// Marks a live listing deleted, and moves its rules version; false if it
/// already was (or never existed).
pub async fn mark_deleted(
    conn: &mut impl AsConn,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let marked = with_conn!(conn, |c| {
        diesel::update(
            properties::table
                .find(id)
                .filter(properties::deleted_at.is_null()),
        )
        .set((
            properties::deleted_at.eq(now),
            properties::updated_at.eq(now),
        ))
        .execute(c)
        .await
        .map(|n| n == 1)
    })?;
    if marked {
        rules_changed(conn, id).await?;
    }
    Ok(marked)
}

/// One page of a host's live listings, by id.
pub async fn list_by_host(
    conn: &mut impl AsConn,
    host_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<Property>> {
    with_conn!(conn, |c| {
        properties::table
            .filter(properties::host_id.eq(host_id))
            .filter(properties::deleted_at.is_null())
            .filter(properties::id.gt(after_id))
            .order(properties::id.asc())
            .limit(limit)
            .select(Property::as_select())
            .load(c)
            .await
    })
}

diesel::infix_operator!(BitAnd, " & ", BigInt);

diesel::define_sql_function! {
    /// SQL's COALESCE, for a flag that may be NULL and its default.
    fn coalesce(value: Nullable<Bool>, default: Bool) -> Bool;
}

/// How search results are ordered; each order has an index that yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    PriceAsc,
    PriceDesc,
    Newest,
    /// Best rated first (by `rating_avg_x100`; unrated listings last),
    /// then newest.
    RatingDesc,
}

/// Where the previous page ended: the last row's sort key (its price, or
/// its rating in hundredths) and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchCursor {
    pub key: i64,
    pub id: i64,
}

impl Sort {
    /// A listing's key in this order (besides its id).
    pub fn key(self, p: &Property) -> i64 {
        match self {
            Sort::PriceAsc | Sort::PriceDesc => p.price_per_night,
            Sort::Newest => 0,
            Sort::RatingDesc => p.rating_avg_x100,
        }
    }
}

/// A search, parsed. Every filter is optional; all given ones must match.
#[derive(Clone, Debug)]
pub struct SearchFilter {
    pub city_key: Option<String>,
    pub country: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub guests: Option<i64>,
    /// Every bit set here must be set in the listing's amenities.
    pub amenities: Option<i64>,
    /// The least overall rating, in hundredths (unrated listings never pass).
    pub min_rating_x100: Option<i64>,
    /// (min_lat, max_lat, min_lon, max_lon)
    pub bbox: Option<(f64, f64, f64, f64)>,
    /// Free for `[check_in, check_out)`, a stay of this many nights allowed.
    pub dates: Option<(NaiveDate, NaiveDate, i64)>,
    /// Flexible dates: some free stay of `nights` inside the window (the
    /// SQL only checks that the listing allows that many nights; the rest
    /// is `domain::calendar::Calendar::earliest_free`, in `services`).
    pub flexible: Option<Flexible>,
    /// A hold whose expiry is at or before this no longer blocks its dates.
    pub now: NaiveDateTime,
    pub sort: Sort,
    pub after: Option<SearchCursor>,
    pub limit: i64,
}

/// A flexible-dates search: `nights` nights anywhere in `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flexible {
    pub nights: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A condition that keeps its query out of the prepared-statement cache, so
/// PostgreSQL plans it for its actual values on every call (a custom plan)
/// instead of settling on a generic plan after five calls. For the search
/// that matters: its best plan depends on the dates and the place, and the
/// generic plan for a dates-only search was measured 12× slower. Planning
/// costs about 0.2 ms a call.
#[derive(Debug, Clone, Copy, diesel::expression::ValidGrouping)]
struct PlannedPerCall<E>(E);

impl<E: Expression> Expression for PlannedPerCall<E> {
    type SqlType = E::SqlType;
}

impl<E: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for PlannedPerCall<E> {}

impl<DB: diesel::backend::Backend, E: QueryFragment<DB>> QueryFragment<DB> for PlannedPerCall<E> {
    fn walk_ast<'b>(
        &'b self,
        mut pass: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        self.0.walk_ast(pass)
    }
}

/// Live listings matching `filter`, in its order, starting after its cursor.
pub async fn search(conn: &mut impl AsConn, f: &SearchFilter) -> QueryResult<Vec<Property>> {
    with_conn!(conn, |c| {
        use properties::dsl as p;
        let mut q = p::properties
            .filter(PlannedPerCall(p::deleted_at.is_null()))
            .select(Property::as_select())
            .into_boxed();
        if let Some(city) = &f.city_key {
            q = q.filter(p::city_key.eq(city));
        }
        if let Some(country) = &f.country {
            q = q.filter(p::country.eq(country));
        }
        if let Some(min) = f.min_price {
            q = q.filter(p::price_per_night.ge(min));
        }
        if let Some(max) = f.max_price {
            q = q.filter(p::price_per_night.le(max));
        }
        if let Some(guests) = f.guests {
            q = q.filter(p::max_guests.ge(guests));
        }
        if let Some(min) = f.min_rating_x100 {
            q = q
                .filter(p::review_count.gt(0))
                .filter(p::rating_avg_x100.ge(min));
        }
        if let Some(mask) = f.amenities {
            q = q.filter(BitAnd::new(p::amenities, mask.into_sql::<BigInt>()).eq(mask));
        }
        if let Some((min_lat, max_lat, min_lon, max_lon)) = f.bbox {
            q = q
                .filter(p::latitude.between(min_lat, max_lat))
                .filter(p::longitude.between(min_lon, max_lon));
        }
        if let Some(flexible) = f.flexible {
            q = q
                .filter(p::min_nights.le(flexible.nights))
                .filter(p::max_nights.ge(flexible.nights));
        }
        if let Some((check_in, check_out, nights)) = f.dates {
            use calendar_entries::dsl as e;
            let clashes = e::calendar_entries
                .filter(e::property_id.eq(p::id))
                .filter(super::calendar::claims_nights_at(f.now))
                .filter(e::check_in.lt(check_out))
                .filter(e::check_out.gt(check_in));
            q = q
                .filter(p::min_nights.le(nights))
                .filter(p::max_nights.ge(nights));
            // "No clash", spelled for PostgreSQL's planner (see README,
            // "Performance"): NOT EXISTS becomes an anti join whose row count
            // it misjudges, and for some dates it then hashes every live
            // calendar row (≈125 ms at 1M bookings). A LIMIT 1 subquery is
            // always a probe through the listing's own index, and wrapped in
            // COALESCE it is a plain boolean the planner guesses half the
            // listings pass, so it walks the sort's index probing until the
            // page is full instead of probing every match and sorting.
            q = q.filter(coalesce(
                clashes
                    .select(false.into_sql::<Bool>())
                    .limit(1)
                    .single_value(),
                true,
            ));
        }
        q = match (f.sort, f.after) {
            (Sort::PriceAsc, Some(k)) => q.filter(
                p::price_per_night
                    .gt(k.key)
                    .or(p::price_per_night.eq(k.key).and(p::id.gt(k.id))),
            ),
            (Sort::PriceDesc, Some(k)) => q.filter(
                p::price_per_night
                    .lt(k.key)
                    .or(p::price_per_night.eq(k.key).and(p::id.lt(k.id))),
            ),
            (Sort::Newest, Some(k)) => q.filter(p::id.lt(k.id)),
            (Sort::RatingDesc, Some(k)) => q.filter(
                p::rating_avg_x100
                    .lt(k.key)
                    .or(p::rating_avg_x100.eq(k.key).and(p::id.lt(k.id))),
            ),
            (_, None) => q,
        };
        q = match f.sort {
            Sort::PriceAsc => q.order((p::price_per_night.asc(), p::id.asc())),
            Sort::PriceDesc => q.order((p::price_per_night.desc(), p::id.desc())),
            Sort::Newest => q.order(p::id.desc()),
            Sort::RatingDesc => q.order((p::rating_avg_x100.desc(), p::id.desc())),
        };
        q.limit(f.limit).load(c).await
    })
}

/// What the in-memory search index keeps of a listing (see `crate::search`):
/// every column a search filters or sorts by, and its calendar's seq.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = properties)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Searchable {
    pub id: i64,
    pub city_key: String,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    pub price_per_night: i64,
    pub max_guests: i64,
    pub min_nights: i64,
    pub max_nights: i64,
    pub amenities: i64,
    pub review_count: i64,
    pub rating_avg_x100: i64,
    /// What a flexible-dates search checks besides the nights.
    pub advance_notice_days: i64,
    pub booking_window_days: i64,
    pub check_in_days: i64,
    pub check_out_days: i64,
    pub time_zone: String,
}

impl Searchable {
    /// The listing's rules, as stored (see [`Property::rules`]).
    pub fn rules(&self) -> crate::domain::StayRules {
        stored_rules(
            [self.max_guests, self.min_nights, self.max_nights],
            [self.advance_notice_days, self.booking_window_days],
            [self.check_in_days, self.check_out_days],
        )
    }

    /// Its time zone (see [`Property::zone`]).
    pub fn zone(&self) -> crate::domain::stay::TimeZone {
        stored_zone(&self.time_zone)
    }
}

/// Stay rules from their columns: `[max_guests, min_nights, max_nights]`,
/// `[advance_notice_days, booking_window_days]`, the two weekday masks.
fn stored_rules(counts: [i64; 3], days: [i64; 2], weekdays: [i64; 2]) -> crate::domain::StayRules {
    use crate::domain::stay::Weekdays;
    let [max_guests, min_nights, max_nights] = counts;
    let [advance_notice_days, booking_window_days] = days;
    crate::domain::StayRules {
        max_guests,
        min_nights,
        max_nights,
        advance_notice_days,
        booking_window_days,
        check_in_days: Weekdays::from_mask(weekdays[0]),
        check_out_days: Weekdays::from_mask(weekdays[1]),
    }
}

/// A stored time zone name (UTC if this build's tz database lacks it).
fn stored_zone(name: &str) -> crate::domain::stay::TimeZone {
    crate::domain::stay::TimeZone::parse(name).unwrap_or(crate::domain::stay::TimeZone::UTC)
}

impl From<&Property> for Searchable {
    fn from(p: &Property) -> Self {
        Self {
            id: p.id,
            city_key: p.city_key.clone(),
            country: p.country.clone(),
            latitude: p.latitude,
            longitude: p.longitude,
            price_per_night: p.price_per_night,
            max_guests: p.max_guests,
            min_nights: p.min_nights,
            max_nights: p.max_nights,
            amenities: p.amenities,
            review_count: p.review_count,
            rating_avg_x100: p.rating_avg_x100,
            advance_notice_days: p.advance_notice_days,
            booking_window_days: p.booking_window_days,
            check_in_days: p.check_in_days,
            check_out_days: p.check_out_days,
            time_zone: p.time_zone.clone(),
        }
    }
}

/// A live listing as search sees it, and the seq its calendar stood at.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = properties)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Scanned {
    #[diesel(embed)]
    pub listing: Searchable,
    #[diesel(select_expression = calendar_heads::seq)]
    pub seq: i64,
}

/// The live listings of `ids` (every live listing, given none), as search
/// sees them.
pub async fn searchables(conn: &mut impl AsConn, ids: Option<&[i64]>) -> QueryResult<Vec<Scanned>> {
    with_conn!(conn, |c| {
        let mut q = properties::table
            .inner_join(calendar_heads::table)
            .filter(properties::deleted_at.is_null())
            .select(Scanned::as_select())
            .into_boxed();
        if let Some(ids) = ids {
            q = q.filter(properties::id.eq_any(ids));
        }
        q.load(c).await
    })
}
