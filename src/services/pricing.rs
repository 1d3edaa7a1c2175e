//! Prices: what hosts set (pricing, seasons), and what a stay costs (the
//! itemized quote a booking will be sold at).

use serde_json::json;

use crate::actors::property::{check_stay, price_list};
use crate::actors::{EventBus, PropertyRegistry};
use crate::auth::AuthUser;
use crate::commit::Commit;
use crate::db::properties::{self, Property};
use crate::db::rates::{self, NewRate, Rate};
use crate::db::{Db, audit, now};
use crate::domain::audit::{Action, AuditRecord, ObjectType};
use crate::domain::pricing::{PriceList, PriceQuote, Pricing};
use crate::domain::{PropertyId, StayDates};
use crate::error::ApiError;
use crate::services::{bookings, properties as listings};
use crate::state::AppState;

/// Replaces the listing's pricing (its host or an admin).
pub async fn set_pricing(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<Property>,
    auth: &AuthUser,
    id: PropertyId,
    pricing: Pricing,
) -> Result<Property, ApiError> {
    listings::get_owned(db, &commit.actor, auth, id, "pricing.update").await?;
    let commit = commit.clone();
    let property = db
        .write(move |c| {
            Box::pin(async move {
                let at = now().naive_utc();
                let property = properties::set_pricing(c, id.0, &pricing, at).await?;
                let record =
                    AuditRecord::new(Action::PricingUpdated, ObjectType::Property, Some(id.0))
                        .with(json!(pricing));
                audit::record(c, &commit.actor, &[record], at).await?;
                commit.seal(c, &property).await?;
                Ok::<_, ApiError>(property)
            })
        })
        .await?;
    bus.listing_changed(id);
    Ok(property)
}

/// The listing's seasons that have not ended by its local today, by start.
pub async fn list_rates(db: &Db, id: PropertyId) -> Result<Vec<Rate>, ApiError> {
    let from = listings::get(db, id).await?.zone().today(now());
    db.run(
        move |mut conn| async move { Ok::<_, ApiError>(rates::from(&mut conn, id.0, from).await?) },
    )
    .await
}

/// A season as a host asks for it: its nights, their price, and the
/// minimum stay it sets, if any.
pub struct Season {
    pub nights: StayDates,
    pub price: i64,
    pub min_nights: Option<i64>,
}

/// A season (its host or an admin); seasons of one listing never overlap.
pub async fn add_rate(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<Rate>,
    auth: &AuthUser,
    id: PropertyId,
    season: Season,
) -> Result<Rate, ApiError> {
    let Season {
        nights,
        price,
        min_nights,
    } = season;
    listings::get_owned(db, &commit.actor, auth, id, "rate.add").await?;
    let commit = commit.clone();
    let rate = db
        .write(move |c| {
            Box::pin(async move {
                let at = now().naive_utc();
                // The listing's lock: seasons of one listing are added in turn.
                properties::lock_calendar(c, id.0)
                    .await?
                    .filter(|p| p.deleted_at.is_none())
                    .ok_or(ApiError::NotFound("property"))?;
                let (start, end) = (nights.check_in(), nights.check_out());
                if !rates::touching(c, id.0, start, end).await?.is_empty() {
                    return Err(ApiError::Conflict {
                        code: "rates_overlap",
                        message: "another season of this listing covers some of these nights",
                    });
                }
                let new = NewRate {
                    property_id: id.0,
                    start_date: start,
                    end_date: end,
                    price,
                    min_nights,
                    created_at: at,
                };
                let rate = rates::insert(c, &new).await?;
                let record = AuditRecord::new(Action::RateAdded, ObjectType::Rate, Some(rate.id))
                    .with(
                        json!({"property_id": id.0, "start": start, "end": end, "price": price,
                       "min_nights": min_nights}),
                    );
                audit::record(c, &commit.actor, &[record], at).await?;
                commit.seal(c, &rate).await?;
                Ok(rate)
            })
        })
        .await?;
    bus.listing_changed(id);
    Ok(rate)
}

/// Removes a season (its host or an admin); bookings keep their price.
pub async fn remove_rate(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<()>,
    auth: &AuthUser,
    id: PropertyId,
    rate_id: i64,
) -> Result<(), ApiError> {
    listings::get_owned(db, &commit.actor, auth, id, "rate.remove").await?;
    let commit = commit.clone();
    db.write(move |c| {
        Box::pin(async move {
            let at = now().naive_utc();
            // The listing's lock, as for adding: its `seasons_end` moves
            // with the seasons, and a hold reads both under it.
            properties::lock_calendar(c, id.0).await?;
            let rate = rates::delete(c, id.0, rate_id)
                .await?
                .ok_or(ApiError::NotFound("rate"))?;
            let record = AuditRecord::new(Action::RateRemoved, ObjectType::Rate, Some(rate.id))
                .with(json!({"property_id": id.0, "start": rate.start_date, "end": rate.end_date}));
            audit::record(c, &commit.actor, &[record], at).await?;
            commit.seal(c, &()).await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    bus.listing_changed(id);
    Ok(())
}

/// What prices the listing's nights in `window`: its row and the seasons
/// touching it.
pub async fn prices_for(
    db: &Db,
    id: PropertyId,
    window: StayDates,
    service_fee_bp: i64,
) -> Result<(Property, PriceList), ApiError> {
    let property = listings::get(db, id).await?;
    let (from, to) = (window.check_in(), window.check_out());
    let seasons = db
        .run(move |mut conn| async move {
            Ok::<_, ApiError>(rates::touching(&mut conn, id.0, from, to).await?)
        })
        .await?;
    let prices = price_list(&property, &seasons, service_fee_bp)?;
    Ok((property, prices))
}

/// A listing's nights over a window: the taken ones (clipped to it, never
/// whose) and each free night's price (before fees, discounts and taxes).
pub struct Nights {
    pub taken: Vec<(StayDates, crate::domain::calendar::Busy)>,
    pub currency: &'static str,
    pub free: Vec<crate::domain::pricing::NightPrice>,
}

/// Read from the listing cache: a calendar shown, not a price sold.
pub async fn nights(
    state: &AppState,
    service_fee_bp: i64,
    id: PropertyId,
    window: StayDates,
) -> Result<Nights, ApiError> {
    // From the search index's copy of the calendar when it has one: a read
    // that needs no message to the actor (measured on the listing page,
    // browse.js: the round trip to the actors' thread was about a tenth of
    // the server's CPU).
    let reads = &state.metrics.calendar_reads;
    let taken = match state.search.taken(id, &window, crate::db::now()) {
        Some(taken) => {
            reads.with_label_values(&["memory"]).inc();
            taken
        }
        None => {
            reads.with_label_values(&["actor"]).inc();
            bookings::availability(&state.properties, id, window).await?
        }
    };
    let listing = state.listings.live(&state.db, id).await?;
    let prices = match listing.seasons_touching(window) {
        Some(seasons) => price_list(&listing.property, &seasons, service_fee_bp)?,
        None => prices_for(&state.db, id, window, service_fee_bp).await?.1,
    };
    let free = window
        .check_in()
        .iter_days()
        .take_while(|d| *d < window.check_out())
        .filter(|d| {
            !taken
                .iter()
                .any(|(b, _)| b.check_in() <= *d && *d < b.check_out())
        })
        .map(|d| prices.night(d))
        .collect();
    Ok(Nights {
        taken,
        currency: prices.currency.code(),
        free,
    })
}

/// A stay's price, and the refusal a booking of it would get now (its
/// rules first, then the calendar), if any.
pub struct StayQuote {
    pub prices: PriceList,
    pub quote: PriceQuote,
    pub refusal: Option<&'static str>,
}

pub async fn quote(
    db: &Db,
    registry: &PropertyRegistry,
    service_fee_bp: i64,
    id: PropertyId,
    dates: StayDates,
    guests: i64,
) -> Result<StayQuote, ApiError> {
    let (property, prices) = prices_for(db, id, dates, service_fee_bp).await?;
    let quote = prices
        .quote(&dates, guests)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("price overflow")))?;
    let refusal = match check_stay(&property, &prices, &dates, guests, now()) {
        Err(ApiError::Unprocessable { code, .. }) => Some(code),
        Err(other) => return Err(other),
        Ok(()) => {
            let taken = bookings::availability(registry, id, dates).await?;
            (!taken.is_empty()).then_some("dates_unavailable")
        }
    };
    Ok(StayQuote {
        prices,
        quote,
        refusal,
    })
}
