//! Listings: hosts create, change and delist their own; anyone searches and reads.

use crate::actors::EventBus;
use crate::actors::PropertyRegistry;
use crate::actors::property::Delist;
use crate::auth::AuthUser;
use crate::commit::Commit;
use crate::db::properties::{
    self, NewProperty, Property, PropertyFields, SearchCursor, SearchFilter, city_key,
};
use crate::db::{Db, audit, now};
use crate::db::{DbConn, calendar};
use crate::domain::StayDates;
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::calendar::{Calendar, Claim};
use crate::domain::stay::TimeZone;
use crate::domain::{
    Amenities, Country, Currency, FieldErrors, Listing, ListingInput, PropertyId, Role,
};
use crate::error::ApiError;
use crate::search::Availability;
use crate::services::audit as trail;
use crate::services::listing_cache::{self, ListingCache};
use serde_json::json;
use std::sync::Arc;

/// Only hosts (and admins) list places.
fn require_host(auth: &AuthUser) -> Result<(), ApiError> {
    match auth.role {
        Role::Host | Role::Admin => Ok(()),
        Role::Guest => Err(ApiError::Forbidden(
            "only hosts can list places; become a host with PATCH /api/v1/users/me",
        )),
    }
}

/// The listing's owner, or an admin.
pub fn require_owner(auth: &AuthUser, property: &Property) -> Result<(), ApiError> {
    if property.host_id == auth.id.0 || auth.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only the listing's host may change it"))
    }
}

pub async fn create(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<Property>,
    auth: &AuthUser,
    input: ListingInput,
) -> Result<Property, ApiError> {
    if let Err(refusal) = require_host(auth) {
        let kind = ObjectType::Property;
        let actor = &commit.actor;
        return Err(trail::denied(db, actor, kind, None, "property.create", refusal).await);
    }
    let listing = parse(input)?;
    let host_id = auth.id.0;
    let commit = commit.clone();
    let created = db
        .write(move |c| {
            Box::pin(async move {
                let now = now().naive_utc();
                let key = city_key(&listing.city);
                let new = NewProperty {
                    host_id,
                    created_at: now,
                    fields: fields_of(&listing, &key, now),
                    pricing: Default::default(),
                    seasons_end: None,
                };
                let property = properties::insert(c, &new).await?;
                let record = AuditRecord::new(
                    Action::PropertyCreated,
                    ObjectType::Property,
                    Some(property.id),
                )
                .with(json!({"title": property.title, "city": property.city, "host_id": host_id}));
                audit::record(c, &commit.actor, &[record], now).await?;
                commit.seal(c, &property).await?;
                Ok::<_, ApiError>(property)
            })
        })
        .await?;
    bus.listing_changed(PropertyId(created.id));
    Ok(created)
}

fn parse(input: ListingInput) -> Result<Listing, ApiError> {
    let mut errors = FieldErrors::new();
    input
        .parse(&mut errors)
        .ok_or_else(|| ApiError::Validation(errors.into_vec()))
}

fn fields_of<'a>(
    listing: &'a Listing,
    city_key: &'a str,
    now: chrono::NaiveDateTime,
) -> PropertyFields<'a> {
    PropertyFields {
        title: &listing.title,
        description: &listing.description,
        address: &listing.address,
        city: &listing.city,
        city_key,
        country: listing.country.as_str(),
        latitude: listing.latitude,
        longitude: listing.longitude,
        price_per_night: listing.price_per_night,
        currency: listing.currency.code(),
        cleaning_fee: listing.cleaning_fee,
        max_guests: listing.rules.max_guests,
        min_nights: listing.rules.min_nights,
        max_nights: listing.rules.max_nights,
        amenities: listing.amenities.mask(),
        advance_notice_days: listing.rules.advance_notice_days,
        booking_window_days: listing.rules.booking_window_days,
        check_in_days: listing.rules.check_in_days.mask(),
        check_out_days: listing.rules.check_out_days.mask(),
        time_zone: listing.time_zone.name(),
        cancellation_policy: listing.cancellation_policy.as_str(),
        check_in_minute: listing.check_in_time.minute(),
        updated_at: now,
    }
}

/// A stored listing as the domain sees it (stored rows were valid when written).
fn listing_of(p: &Property) -> Result<Listing, ApiError> {
    let corrupt = |what: &str| ApiError::Internal(anyhow::anyhow!("property {}: {what}", p.id));
    Ok(Listing {
        title: p.title.clone(),
        description: p.description.clone(),
        address: p.address.clone(),
        city: p.city.clone(),
        country: Country::parse(&p.country).map_err(|_| corrupt("country"))?,
        latitude: p.latitude,
        longitude: p.longitude,
        price_per_night: p.price_per_night,
        currency: Currency::parse(&p.currency).map_err(|_| corrupt("currency"))?,
        cleaning_fee: p.cleaning_fee,
        rules: p.rules(),
        amenities: Amenities::from_mask(p.amenities),
        time_zone: TimeZone::parse(&p.time_zone).map_err(|_| corrupt("time_zone"))?,
        cancellation_policy: p.policy(),
        check_in_time: p.check_in_time(),
    })
}

/// A listing, deleted or not (for checks that must see past deletion).
pub async fn find_any(db: &Db, id: PropertyId) -> Result<Property, ApiError> {
    db.run(move |mut conn| async move {
        properties::find(&mut conn, id.0)
            .await?
            .ok_or(ApiError::NotFound("property"))
    })
    .await
}

/// A live listing; a deleted one is not found.
pub async fn get(db: &Db, id: PropertyId) -> Result<Property, ApiError> {
    let property = find_any(db, id).await?;
    if property.deleted_at.is_some() {
        return Err(ApiError::NotFound("property"));
    }
    Ok(property)
}

/// A live listing its host (or an admin) is about to change; anyone else
/// is refused, and the refusal recorded as an attempt at `attempted`.
pub async fn get_owned(
    db: &Db,
    actor: &AuditActor,
    auth: &AuthUser,
    id: PropertyId,
    attempted: &str,
) -> Result<Property, ApiError> {
    let property = get(db, id).await?;
    if let Err(refusal) = require_owner(auth, &property) {
        let kind = ObjectType::Property;
        return Err(trail::denied(db, actor, kind, Some(id.0), attempted, refusal).await);
    }
    Ok(property)
}

/// Lays `input` over the listing and saves the whole, if valid. Bookings
/// already made keep the price they were sold at.
pub async fn update(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<Property>,
    auth: &AuthUser,
    id: PropertyId,
    input: ListingInput,
) -> Result<Property, ApiError> {
    let current = get_owned(db, &commit.actor, auth, id, "property.update").await?;
    let given = input.given();
    // Checked over the listing as read, so a bad edit is refused before it
    // waits for the write; then laid again over the row as locked, so an
    // edit committed meanwhile keeps its fields (laying it over the read
    // copy lost them: tested by concurrent edits of different fields).
    parse(input.clone().over(&listing_of(&current)?))?;
    let commit = commit.clone();
    let updated = db
        .write(move |c| {
            Box::pin(async move {
                let locked = properties::lock_calendar(c, id.0)
                    .await?
                    .filter(|p| p.deleted_at.is_none())
                    .ok_or(ApiError::NotFound("property"))?;
                let listing = parse(input.over(&listing_of(&locked)?))?;
                let now = now().naive_utc();
                let key = city_key(&listing.city);
                let property = properties::update(c, id.0, &fields_of(&listing, &key, now))
                    .await?
                    .ok_or(ApiError::NotFound("property"))?;
                let record =
                    AuditRecord::new(Action::PropertyUpdated, ObjectType::Property, Some(id.0))
                        .with(json!({"fields": given}));
                audit::record(c, &commit.actor, &[record], now).await?;
                commit.seal(c, &property).await?;
                Ok::<_, ApiError>(property)
            })
        })
        .await?;
    bus.listing_changed(id);
    Ok(updated)
}

/// Delists: through the listing's actor, so no booking slips in meanwhile.
pub async fn delete(
    db: &Db,
    registry: &PropertyRegistry,
    commit: &Commit<()>,
    auth: &AuthUser,
    id: PropertyId,
) -> Result<(), ApiError> {
    get_owned(db, &commit.actor, auth, id, "property.delete").await?;
    let commit = commit.clone();
    registry.send(id, Delist { commit }).await
}

/// A listing a search found, with its earliest free stay for flexible dates.
pub struct Found {
    row: Row,
    pub stay: Option<StayDates>,
}

/// Where a found listing's row is.
enum Row {
    /// In a remembered listing, when memory answered (its page's JSON is
    /// made once for every answer that shows it).
    Remembered(Arc<listing_cache::Listing>),
    /// Read for this search.
    Read(Box<Property>),
}

impl Found {
    fn read(property: Property, stay: Option<StayDates>) -> Self {
        Self {
            row: Row::Read(Box::new(property)),
            stay,
        }
    }

    pub fn property(&self) -> &Property {
        match &self.row {
            Row::Remembered(listing) => &listing.property,
            Row::Read(property) => property,
        }
    }

    pub fn into_property(self) -> Property {
        match self.row {
            Row::Remembered(listing) => listing.property.clone(),
            Row::Read(property) => *property,
        }
    }

    /// The remembered listing, when memory answered.
    pub fn remembered(&self) -> Option<&listing_cache::Listing> {
        match &self.row {
            Row::Remembered(listing) => Some(listing),
            Row::Read(_) => None,
        }
    }
}

/// How many candidates a flexible-dates search reads from the SQL at a time.
const FLEXIBLE_BATCH: i64 = 200;

/// One page of a search: its ids from memory when memory can answer (then
/// the page's rows come from the remembered listings, those not
/// remembered read together, and are checked against the index), else
/// from the SQL.
pub async fn search(
    db: &Db,
    memory: &Availability,
    listings: &ListingCache,
    filter: SearchFilter,
) -> Result<Vec<Found>, ApiError> {
    if let Some(hits) = memory.search(&filter) {
        if hits.is_empty() {
            memory.answered("memory");
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = hits.iter().map(|h| h.id).collect();
        let rows = listings.listings(db, &wanted).await?;
        let page: Vec<Found> = hits
            .iter()
            .filter_map(|h| {
                let listing = rows.get(&h.id)?;
                let property = &listing.property;
                property.deleted_at.is_none().then(|| Found {
                    row: Row::Remembered(listing.clone()),
                    stay: h.stay,
                })
            })
            .collect();
        let seen: Vec<properties::Searchable> = page.iter().map(|f| f.property().into()).collect();
        if memory.confirm(&seen) {
            memory.answered("memory");
            return Ok(page);
        }
    }
    memory.answered("database");
    db.run(move |mut conn| async move { search_sql(&mut conn, filter).await })
        .await
}

/// The search in SQL. Flexible dates walk the listings that match
/// everything else in the sort's order, a batch at a time, reading each
/// batch's claims and keeping the listings with a free stay.
async fn search_sql(conn: &mut DbConn, filter: SearchFilter) -> Result<Vec<Found>, ApiError> {
    let Some(flexible) = filter.flexible else {
        let rows = properties::search(conn, &filter).await?;
        return Ok(rows
            .into_iter()
            .map(|property| Found::read(property, None))
            .collect());
    };
    let limit = usize::try_from(filter.limit).unwrap_or(0);
    let now = filter.now.and_utc();
    let mut batch = filter.clone();
    batch.limit = FLEXIBLE_BATCH;
    let mut found = Vec::new();
    loop {
        let rows = properties::search(conn, &batch).await?;
        let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
        let mut claims: std::collections::HashMap<i64, Vec<Claim>> = Default::default();
        for row in calendar::live_claims(conn, Some(&ids), flexible.from).await? {
            if let Some(claim) = row.claim() {
                claims.entry(row.property_id).or_default().push(claim);
            }
        }
        let full = rows.len() as i64 == batch.limit;
        let last = rows.last().map(|p| SearchCursor {
            key: batch.sort.key(p),
            id: p.id,
        });
        for property in rows {
            let calendar = Calendar::new(claims.remove(&property.id).unwrap_or_default());
            let stay = calendar.earliest_free(
                &property.rules(),
                (flexible.from, flexible.to),
                flexible.nights,
                filter.guests.unwrap_or(1),
                property.zone().today(now),
                now,
            );
            if let Some(stay) = stay {
                found.push(Found::read(property, Some(stay)));
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if !full {
            return Ok(found);
        }
        batch.after = last;
    }
}
