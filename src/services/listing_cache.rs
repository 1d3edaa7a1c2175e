//! Listings remembered: what a listing's public page and its calendar's
//! prices are made of (the listing's row and its seasons), read from the
//! database once and answered from memory after, so browsing costs no
//! query per request.
//!
//! A change takes effect on every node within `ROOST_EVENT_POLL_MS`:
//! - here at once: every write to a listing's row or seasons forgets it
//!   after its commit: edits, pricing, seasons and reviews through
//!   [`EventBus::listing_changed`](crate::actors::EventBus::listing_changed),
//!   delisting through its `listing_removed` event;
//! - on other nodes at once through Redis, and in any case because nothing
//!   is remembered longer than `ROOST_EVENT_POLL_MS`, the same bound a lost
//!   word has on the search index.
//!
//! Only reads are answered here. Bookings, quotes and every write read the
//! database: a price a guest pays is never memory's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;

use crate::actors::bus::Follower;
use crate::db::properties::{self, Property};
use crate::db::rates::{self, Rate};
use crate::db::{Db, now};
use crate::domain::{CalendarEvent, EventKind, PropertyId, StayDates};
use crate::error::ApiError;
use crate::http::metrics::Metrics;

/// At most this many listings remembered; beyond it, the oldest tenth go.
const CAPACITY: usize = 20_000;

/// A listing as the database had it: its row (deleted or not) and its
/// seasons that had not ended by `seasons_from`.
pub struct Listing {
    pub property: Property,
    seasons: Vec<Rate>,
    seasons_from: NaiveDate,
    /// The listing's public page as JSON, made on its first read.
    page: OnceLock<Bytes>,
}

impl Listing {
    fn new(property: Property, seasons: Vec<Rate>, seasons_from: NaiveDate) -> Self {
        Self {
            property,
            seasons,
            seasons_from,
            page: OnceLock::new(),
        }
    }

    /// The listing's page as `make` writes it from the row, written once
    /// for as long as this reading is remembered: every read of a listing
    /// sends the same bytes, and serializing them was about a twentieth of
    /// the server's CPU on the listing-page benchmark (perf, `browse.js`).
    pub fn page(
        &self,
        make: impl FnOnce(&Property) -> serde_json::Result<Vec<u8>>,
    ) -> serde_json::Result<Bytes> {
        if let Some(page) = self.page.get() {
            return Ok(page.clone());
        }
        let page = Bytes::from(make(&self.property)?);
        Ok(self.page.get_or_init(|| page).clone())
    }

    /// The seasons touching `window`, or `None` when the window starts
    /// before what was read (the caller asks the database).
    pub fn seasons_touching(&self, window: StayDates) -> Option<Vec<Rate>> {
        if window.check_in() < self.seasons_from {
            return None;
        }
        let touching = self
            .seasons
            .iter()
            .filter(|r| r.end_date > window.check_in() && r.start_date < window.check_out())
            .cloned()
            .collect();
        Some(touching)
    }
}

/// The first day whose seasons a read keeps: a day's margin, since a
/// listing's local today is never before UTC's yesterday.
fn seasons_from() -> NaiveDate {
    now().date_naive() - chrono::Duration::days(1)
}

struct Remembered {
    listing: Arc<Listing>,
    read_at: Instant,
}

pub struct ListingCache {
    max_age: Duration,
    memory: Mutex<HashMap<PropertyId, Remembered>>,
    /// Bumped by every forgetting: a read that was out while a listing
    /// was forgotten is not remembered (it may be what just changed).
    generation: AtomicU64,
    metrics: Metrics,
}

impl ListingCache {
    /// `max_age` zero: nothing is remembered.
    pub fn new(max_age: Duration, metrics: Metrics) -> Self {
        Self {
            max_age,
            memory: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PropertyId, Remembered>> {
        // Every change below leaves the map consistent before it can panic.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The listing (deleted or not), from memory if it is fresh enough,
    /// else read and remembered. Not found: no such row.
    pub async fn listing(&self, db: &Db, id: PropertyId) -> Result<Arc<Listing>, ApiError> {
        if let Some(found) = self.recall(id) {
            self.metrics
                .listing_reads
                .with_label_values(&["memory"])
                .inc();
            return Ok(found);
        }
        self.metrics
            .listing_reads
            .with_label_values(&["database"])
            .inc();
        let generation = self.generation.load(Ordering::SeqCst);
        let seasons_from = seasons_from();
        let listing = db
            .run(move |mut conn| async move {
                // One snapshot: the row and the seasons as of one commit.
                crate::snapshot_tx!(&mut conn, |c| {
                    let property = properties::find(c, id.0)
                        .await?
                        .ok_or(ApiError::NotFound("property"))?;
                    let seasons = rates::from(c, id.0, seasons_from).await?;
                    Ok::<_, ApiError>(Listing::new(property, seasons, seasons_from))
                })
            })
            .await?;
        let listing = Arc::new(listing);
        self.remember(generation, id, &listing);
        Ok(listing)
    }

    /// Many listings (deleted or not) by id, as [`ListingCache::listing`]
    /// each, those memory lacks read together in one snapshot: a search's
    /// page. An id with no row is left out.
    pub async fn listings(
        &self,
        db: &Db,
        ids: &[i64],
    ) -> Result<HashMap<i64, Arc<Listing>>, ApiError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for &id in ids {
            match self.recall(PropertyId(id)) {
                Some(listing) => {
                    found.insert(id, listing);
                }
                None => missing.push(id),
            }
        }
        let reads = &self.metrics.listing_reads;
        reads
            .with_label_values(&["memory"])
            .inc_by(found.len() as u64);
        if missing.is_empty() {
            return Ok(found);
        }
        reads
            .with_label_values(&["database"])
            .inc_by(missing.len() as u64);
        let generation = self.generation.load(Ordering::SeqCst);
        let seasons_from = seasons_from();
        let (rows, seasons) = db
            .run(move |mut conn| async move {
                crate::snapshot_tx!(&mut conn, |c| {
                    let rows = properties::find_many(c, &missing).await?;
                    let seasons = rates::from_many(c, &missing, seasons_from).await?;
                    Ok::<_, ApiError>((rows, seasons))
                })
            })
            .await?;
        let mut seasons_of: HashMap<i64, Vec<Rate>> = HashMap::new();
        for season in seasons {
            seasons_of
                .entry(season.property_id)
                .or_default()
                .push(season);
        }
        for property in rows {
            let id = property.id;
            let seasons = seasons_of.remove(&id).unwrap_or_default();
            let listing = Arc::new(Listing::new(property, seasons, seasons_from));
            self.remember(generation, PropertyId(id), &listing);
            found.insert(id, listing);
        }
        Ok(found)
    }

    /// A live listing (a deleted one is not found).
    pub async fn live(&self, db: &Db, id: PropertyId) -> Result<Arc<Listing>, ApiError> {
        let listing = self.listing(db, id).await?;
        if listing.property.deleted_at.is_some() {
            return Err(ApiError::NotFound("property"));
        }
        Ok(listing)
    }

    fn recall(&self, id: PropertyId) -> Option<Arc<Listing>> {
        let memory = self.lock();
        memory
            .get(&id)
            .filter(|r| r.read_at.elapsed() < self.max_age)
            .map(|r| r.listing.clone())
    }

    fn remember(&self, generation: u64, id: PropertyId, listing: &Arc<Listing>) {
        if self.max_age.is_zero() {
            return;
        }
        let mut memory = self.lock();
        // Checked under the lock that forgetting takes too.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if memory.len() >= CAPACITY {
            let max_age = self.max_age;
            memory.retain(|_, r| r.read_at.elapsed() < max_age);
        }
        if memory.len() >= CAPACITY {
            let mut ages: Vec<_> = memory.iter().map(|(id, r)| (r.read_at, *id)).collect();
            ages.sort_unstable();
            for (_, old) in ages.into_iter().take(CAPACITY / 10) {
                memory.remove(&old);
            }
        }
        let remembered = Remembered {
            listing: listing.clone(),
            read_at: Instant::now(),
        };
        memory.insert(id, remembered);
        self.metrics.listing_cache_entries.set(memory.len() as i64);
    }

    /// Forgets a listing whose row or seasons changed.
    pub fn forget(&self, id: PropertyId) {
        let mut memory = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        memory.remove(&id);
        self.metrics.listing_cache_entries.set(memory.len() as i64);
    }
}

impl Follower for ListingCache {
    /// Of the calendar's events, only delisting changes the row.
    fn event(&self, event: &CalendarEvent) {
        if event.kind == EventKind::ListingRemoved {
            self.forget(event.property_id);
        }
    }

    fn listing_changed(&self, property: PropertyId) {
        self.forget(property);
    }
}
