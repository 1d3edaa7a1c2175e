//! The availability index: every live listing's searchable attributes and
//! its live claims, kept in the orders search sorts by. No I/O: the keeper
//! in [`super`] reads the database and feeds it events.
//!
//! A search here means exactly what `db::properties::search` means for the
//! same rows (the equivalence test runs both): the same filters, the same
//! rule that a hold stops claiming its nights when it expires, the same
//! orders and cursors. While any listing may be behind the database (it is
//! *stale*), [`Index::search`] answers `None` and the SQL answers instead.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use chrono::{NaiveDate, NaiveDateTime};

use crate::db::calendar::Claimed;
use crate::db::properties::{Scanned, SearchFilter, Searchable, Sort};
use crate::domain::calendar::{Calendar, Claim};
use crate::domain::event::Effect;
use crate::domain::stay::TimeZone;
use crate::domain::{CalendarEvent, StayDates, StayRules};

/// What a search filters and sorts a listing by.
#[derive(Clone, Debug, PartialEq)]
struct Attributes {
    city_key: String,
    country: String,
    latitude: f64,
    longitude: f64,
    price: i64,
    max_guests: i64,
    min_nights: i64,
    max_nights: i64,
    amenities: i64,
    review_count: i64,
    rating_x100: i64,
    /// For flexible dates: the listing's rules and zone.
    rules: StayRules,
    zone: TimeZone,
}

impl From<&Searchable> for Attributes {
    fn from(s: &Searchable) -> Self {
        Self {
            city_key: s.city_key.clone(),
            country: s.country.clone(),
            latitude: s.latitude,
            longitude: s.longitude,
            price: s.price_per_night,
            max_guests: s.max_guests,
            min_nights: s.min_nights,
            max_nights: s.max_nights,
            amenities: s.amenities,
            review_count: s.review_count,
            rating_x100: s.rating_avg_x100,
            rules: s.rules(),
            zone: s.zone(),
        }
    }
}

struct Listing {
    /// Its place in the night bitmaps (see [`Nights`]).
    slot: u32,
    attrs: Attributes,
    /// The seq of the last calendar event reflected here.
    seq: i64,
    calendar: Calendar,
}

/// Listings and claims as read from the database: the rows first, then the
/// claims (so the claims are at least as new as each row's seq).
#[derive(Default)]
pub struct Reading {
    pub listings: Vec<Scanned>,
    pub claims: Vec<Claimed>,
}

/// A listing memory may be behind on.
#[derive(Default)]
struct Stale {
    /// When it was last marked (see [`Index::mark`]).
    since: u64,
    /// The events that arrived for it since, replayed when it is read again.
    events: Vec<CalendarEvent>,
}

pub struct Index {
    /// Claims that end on or before this day are not kept: a search for
    /// earlier nights is left to the SQL.
    from: NaiveDate,
    /// Each listing's slot, and the listings by slot.
    listings: HashMap<i64, u32>,
    slots: Vec<Option<Listing>>,
    /// Every listing in each order search sorts by, each city's, and each
    /// map cell's (see [`Cell`]).
    all: Orders,
    by_city: HashMap<String, Orders>,
    by_cell: HashMap<Cell, Orders>,
    stale: HashMap<i64, Stale>,
    nights: Nights,
    /// Slots of listings gone, for new ones; then `next_slot`.
    free_slots: Vec<u32>,
    next_slot: u32,
    /// Counts marks, so that a reading started before a listing's last
    /// mark is not taken as current.
    epoch: u64,
    claims: usize,
}

impl Index {
    /// An index of `reading`, which kept the claims ending after `from`.
    pub fn new(from: NaiveDate, reading: Reading) -> Self {
        let mut index = Self {
            from,
            listings: HashMap::new(),
            slots: Vec::new(),
            all: Orders::default(),
            by_city: HashMap::new(),
            by_cell: HashMap::new(),
            stale: HashMap::new(),
            nights: Nights::new(from),
            free_slots: Vec::new(),
            next_slot: 0,
            epoch: 0,
            claims: 0,
        };
        let ids: Vec<i64> = reading.listings.iter().map(|l| l.listing.id).collect();
        index.install(&ids, 0, reading);
        index
    }

    /// The day before which claims are not kept (see [`Index::new`]).
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn len(&self) -> usize {
        self.listings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listings.is_empty()
    }

    /// How many claims it holds (lapsed holds included until their event).
    pub fn claims(&self) -> usize {
        self.claims
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn stale_count(&self) -> usize {
        self.stale.len()
    }

    /// Listings memory may be behind on.
    pub fn stale(&self) -> Vec<i64> {
        self.stale.keys().copied().collect()
    }

    /// The listing may have changed in the database (its row, or its
    /// calendar past what memory saw): searches go to the SQL until it is
    /// read again. Returns the mark's epoch.
    pub fn mark(&mut self, id: i64) -> u64 {
        self.epoch += 1;
        self.stale.entry(id).or_default().since = self.epoch;
        self.epoch
    }

    /// A committed calendar event, from any node: applied if it is the
    /// listing's next; kept for the listing's next reading if it is stale,
    /// unknown here, or past a gap.
    pub fn apply(&mut self, event: &CalendarEvent) {
        let id = event.property_id.0;
        if let Some(stale) = self.stale.get_mut(&id) {
            stale.events.push(event.clone());
            return;
        }
        let Some(listing) = self.get_mut(id) else {
            if event.effect() != Some(Effect::Delisted) {
                // A listing created after the last reading.
                self.mark(id);
                self.keep(event);
            }
            return;
        };
        if event.seq <= listing.seq {
            return;
        }
        if event.seq > listing.seq + 1 {
            self.mark(id);
            self.keep(event);
            return;
        }
        listing.seq = event.seq;
        match event.effect() {
            Some(Effect::Delisted) => self.remove(id),
            Some(effect) => self.recalendar(id, effect),
            None => {}
        }
    }

    /// Applies a claim or a release to the listing's calendar, and its
    /// firm nights to the bitmaps.
    fn recalendar(&mut self, id: i64, effect: Effect) {
        let Some(&slot) = self.listings.get(&id) else {
            return;
        };
        let Index {
            slots,
            nights,
            claims,
            ..
        } = self;
        let Some(Some(listing)) = slots.get_mut(slot as usize) else {
            return;
        };
        let before: Vec<StayDates> = listing.calendar.firm().collect();
        let count = listing.calendar.len();
        match effect {
            Effect::Claim(claim) => listing.calendar.put(claim),
            Effect::Free(claim) => listing.calendar.remove(claim),
            Effect::Delisted => {}
        }
        *claims = *claims + listing.calendar.len() - count;
        let after: Vec<StayDates> = listing.calendar.firm().collect();
        if before != after {
            for dates in &before {
                nights.set(listing.slot, dates, false);
            }
            for dates in &after {
                nights.set(listing.slot, dates, true);
            }
        }
    }

    fn keep(&mut self, event: &CalendarEvent) {
        if let Some(stale) = self.stale.get_mut(&event.property_id.0) {
            stale.events.push(event.clone());
        }
    }

    /// Installs a reading of the listings `ids`, begun at `started` (the
    /// epoch then): each listing not marked again since becomes current,
    /// with the events that arrived while it was stale replayed over it. A
    /// listing the reading lacks is gone (delisted).
    pub fn install(&mut self, ids: &[i64], started: u64, reading: Reading) {
        let mut rows: HashMap<i64, &Scanned> =
            reading.listings.iter().map(|l| (l.listing.id, l)).collect();
        let mut claims: HashMap<i64, Vec<Claim>> = HashMap::new();
        for row in &reading.claims {
            if let Some(claim) = row.claim() {
                claims.entry(row.property_id).or_default().push(claim);
            }
        }
        for &id in ids {
            let events = match self.stale.get(&id) {
                Some(s) if s.since > started => continue,
                Some(_) => self.stale.remove(&id).map(|s| s.events).unwrap_or_default(),
                None => Vec::new(),
            };
            self.remove(id);
            let Some(row) = rows.remove(&id) else {
                continue;
            };
            let found = claims.remove(&id).unwrap_or_default();
            self.insert(
                id,
                Attributes::from(&row.listing),
                row.seq,
                Calendar::new(found),
            );
            // The claims were read after the seq: events past it may be in
            // them already, and apply again harmlessly.
            let mut events = events;
            events.sort_by_key(|e| e.seq);
            let mut seq = row.seq;
            let mut gap = false;
            for event in events.iter().filter(|e| e.seq > row.seq) {
                gap |= event.seq > seq + 1;
                seq = seq.max(event.seq);
                match event.effect() {
                    Some(Effect::Delisted) => {
                        self.remove(id);
                        break;
                    }
                    Some(effect) => self.recalendar(id, effect),
                    None => {}
                }
            }
            if let Some(listing) = self.get_mut(id) {
                listing.seq = seq;
                if gap {
                    self.mark(id);
                }
            }
        }
    }

    /// Does memory hold the listing as `row` has it (its searchable
    /// columns, not its calendar)? A listing that is not here disagrees.
    pub fn agrees(&self, row: &Searchable) -> bool {
        self.get(row.id)
            .is_some_and(|l| l.attrs == Attributes::from(row))
    }

    /// Of `rows` (a part of a scan of every live listing row), those that
    /// memory has otherwise or lacks, for [`Index::mark`].
    pub fn behind(&self, rows: &[Scanned]) -> Vec<i64> {
        rows.iter()
            .filter(|row| !self.stale.contains_key(&row.listing.id))
            .filter(|row| match self.get(row.listing.id) {
                Some(l) => l.seq < row.seq || l.attrs != Attributes::from(&row.listing),
                None => true,
            })
            .map(|row| row.listing.id)
            .collect()
    }

    /// The listings memory holds and is not already reading again: what
    /// a scan that lacks one of them says is gone.
    pub fn held(&self) -> Vec<i64> {
        self.listings
            .keys()
            .filter(|id| !self.stale.contains_key(id))
            .copied()
            .collect()
    }

    fn insert(&mut self, id: i64, attrs: Attributes, seq: i64, calendar: Calendar) {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        });
        self.all.insert(id, slot, &attrs);
        self.by_city
            .entry(attrs.city_key.clone())
            .or_default()
            .insert(id, slot, &attrs);
        self.by_cell
            .entry(Cell::of(attrs.latitude, attrs.longitude))
            .or_default()
            .insert(id, slot, &attrs);
        for dates in calendar.firm() {
            self.nights.set(slot, &dates, true);
        }
        self.claims += calendar.len();
        let listing = Listing {
            slot,
            attrs,
            seq,
            calendar,
        };
        if self.slots.len() <= slot as usize {
            self.slots.resize_with(slot as usize + 1, || None);
        }
        self.slots[slot as usize] = Some(listing);
        self.listings.insert(id, slot);
    }

    /// A live listing's calendar and the seq it is current as of, unless
    /// memory may be behind on it (stale).
    pub fn calendar(&self, id: i64) -> Option<(i64, &Calendar)> {
        if self.stale.contains_key(&id) {
            return None;
        }
        self.get(id).map(|l| (l.seq, &l.calendar))
    }

    fn get(&self, id: i64) -> Option<&Listing> {
        let slot = *self.listings.get(&id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn get_mut(&mut self, id: i64) -> Option<&mut Listing> {
        let slot = *self.listings.get(&id)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    fn remove(&mut self, id: i64) {
        let Some(slot) = self.listings.remove(&id) else {
            return;
        };
        let Some(listing) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        let (a, slot) = (&listing.attrs, listing.slot);
        self.all.remove(id, slot, a);
        if let Some(orders) = self.by_city.get_mut(&a.city_key) {
            orders.remove(id, slot, a);
            if orders.by_id.is_empty() {
                self.by_city.remove(&a.city_key);
            }
        }
        let cell = Cell::of(a.latitude, a.longitude);
        if let Some(orders) = self.by_cell.get_mut(&cell) {
            orders.remove(id, slot, a);
            if orders.by_id.is_empty() {
                self.by_cell.remove(&cell);
            }
        }
        for dates in listing.calendar.firm() {
            self.nights.set(slot, &dates, false);
        }
        self.free_slots.push(slot);
        self.claims -= listing.calendar.len();
    }

    /// The page `filter` asks for, in its order: each listing's id and,
    /// for flexible dates, its earliest free stay. `None` when memory
    /// cannot answer for sure (a listing is stale, or the nights start
    /// before the claims kept).
    pub fn search(&self, f: &SearchFilter) -> Option<Vec<Hit>> {
        if !self.stale.is_empty() {
            return None;
        }
        let first_night = match (f.dates, f.flexible) {
            (Some((check_in, _, _)), _) => Some(check_in),
            (None, Some(flexible)) => Some(flexible.from),
            (None, None) => None,
        };
        if first_night.is_some_and(|d| d < self.from) {
            return None;
        }
        let limit = usize::try_from(f.limit).unwrap_or(0);
        // The listings a booking or block holds on some night of the stay:
        // skipped with one bit each, before any other check.
        let taken = f
            .dates
            .and_then(|(check_in, check_out, _)| self.nights.union(check_in, check_out));
        // What to walk: the city's orders; for a map search, the orders of
        // the cells its box touches (merged), unless it touches so many
        // that walking everything is as cheap; else everything.
        let parts: Vec<&Orders> = match (&f.city_key, f.bbox) {
            (Some(city), _) => match self.by_city.get(city) {
                Some(orders) => vec![orders],
                None => return Some(Vec::new()),
            },
            (None, Some(bbox)) => self.cells(bbox).unwrap_or_else(|| vec![&self.all]),
            (None, None) => vec![&self.all],
        };
        // A city's order holds only its listings: no need to compare names.
        let walk;
        let f = match &f.city_key {
            Some(_) => {
                walk = SearchFilter {
                    city_key: None,
                    ..f.clone()
                };
                &walk
            }
            None => f,
        };
        let hit = |&(id, slot): &(i64, u32)| {
            if taken.as_ref().is_some_and(|t| bit(t, slot)) {
                return None;
            }
            self.slots
                .get(slot as usize)?
                .as_ref()
                .and_then(|l| hit(l, f))
                .map(|stay| Hit { id, stay })
        };
        // Every order but price's ascending is walked from its end; a
        // cursor's `(key, id)` bounds the walk past it, on the side walked.
        let down = f.sort != Sort::PriceAsc;
        let keyed = |(_, id, slot): (i64, i64, u32)| (id, slot);
        let past = |key: (i64, i64, u32), top: (i64, i64, u32)| match (f.after, down) {
            (None, _) => (Unbounded, Unbounded),
            (Some(_), true) => (Unbounded, Excluded(key)),
            (Some(_), false) => (Excluded(top), Unbounded),
        };
        let (key, id) = f.after.map_or((0, 0), |k| (k.key, k.id));
        let bounds = past((key, id, 0), (key, id, u32::MAX));
        // A price range: the price order's walk starts and stops at it;
        // another order, when few listings are in the range, walks just
        // those, sorted (else the walk could pass every listing priced
        // outside it first).
        let priced = (f.min_price.is_some() || f.max_price.is_some()).then(|| {
            let (lo, hi) = (
                f.min_price.unwrap_or(i64::MIN),
                f.max_price.unwrap_or(i64::MAX),
            );
            (
                Included((lo, i64::MIN, 0)),
                Included((hi, i64::MAX, u32::MAX)),
            )
        });
        let page = match f.sort {
            Sort::PriceAsc | Sort::PriceDesc => {
                let bounds = match priced {
                    Some(range) => match within(bounds, range) {
                        Some(bounds) => bounds,
                        None => return Some(Vec::new()),
                    },
                    None => bounds,
                };
                let sets = parts.iter().map(|o| &o.by_price);
                take(merged(sets, bounds, down).map(keyed), hit, limit)
            }
            _ if let Some(few) = priced.and_then(|range| self.few_within(&parts, range)) => {
                // In the sort's order, past the cursor: by rating, or id.
                let mut few: Vec<(i64, i64, u32)> = few
                    .into_iter()
                    .map(|(_, id, slot)| match f.sort {
                        Sort::RatingDesc => (self.rating(slot), id, slot),
                        _ => (0, id, slot),
                    })
                    .filter(|&(k, i, _)| match (f.after, f.sort) {
                        (None, _) => true,
                        (Some(_), Sort::RatingDesc) => (k, i) < (key, id),
                        (Some(_), _) => i < id,
                    })
                    .collect();
                few.sort_unstable_by(|a, b| b.cmp(a));
                take(few.into_iter().map(keyed), hit, limit)
            }
            Sort::RatingDesc => {
                let sets = parts.iter().map(|o| &o.by_rating);
                take(merged(sets, bounds, down).map(keyed), hit, limit)
            }
            Sort::Newest => {
                let sets = parts.iter().map(|o| &o.by_id);
                let bounds = match f.after {
                    None => (Unbounded, Unbounded),
                    Some(_) => (Unbounded, Excluded((id, 0))),
                };
                take(merged(sets, bounds, down), hit, limit)
            }
        };
        Some(page)
    }

    /// The listings of `parts` whose `(price, id, slot)` is in `range`, if
    /// there are at most [`FEW`].
    fn few_within(
        &self,
        parts: &[&Orders],
        range: Span<(i64, i64, u32)>,
    ) -> Option<Vec<(i64, i64, u32)>> {
        let range = within((Unbounded, Unbounded), range)?;
        let mut found = Vec::new();
        for orders in parts {
            for &item in orders.by_price.range(range) {
                if found.len() == FEW {
                    return None;
                }
                found.push(item);
            }
        }
        Some(found)
    }

    fn rating(&self, slot: u32) -> i64 {
        self.slots
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map_or(0, |l| l.attrs.rating_x100)
    }

    /// The orders of every cell `bbox` touches, or `None` when it touches
    /// more than [`Cell::MOST`].
    fn cells(
        &self,
        (min_lat, max_lat, min_lon, max_lon): (f64, f64, f64, f64),
    ) -> Option<Vec<&Orders>> {
        let (low, high) = (Cell::of(min_lat, min_lon), Cell::of(max_lat, max_lon));
        let span = |a: i32, b: i32| usize::try_from(i64::from(b) - i64::from(a) + 1).unwrap_or(0);
        let (rows, columns) = (span(low.0, high.0), span(low.1, high.1));
        if rows.saturating_mul(columns) > Cell::MOST {
            return None;
        }
        let touched = (low.0..=high.0)
            .flat_map(|lat| (low.1..=high.1).map(move |lon| Cell(lat, lon)))
            .filter_map(|cell| self.by_cell.get(&cell))
            .collect();
        Some(touched)
    }
}

/// A range of an order's items, as `BTreeSet::range` takes it.
type Span<T> = (Bound<T>, Bound<T>);

/// How many listings a price range may hold for a search in another
/// order to sort just them rather than walk its order.
const FEW: usize = 512;

/// Where two ranges overlap, or `None` when they do not (`BTreeSet::range`
/// would panic on an empty one).
fn within<T: Ord + Copy>(a: Span<T>, b: Span<T>) -> Option<Span<T>> {
    // The later start and the earlier end; at equal values the excluded
    // bound is the tighter one.
    let start = match (a.0, b.0) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(p), Included(q)) => Included(p.max(q)),
        (Excluded(p), Excluded(q)) => Excluded(p.max(q)),
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) => {
            if e >= i {
                Excluded(e)
            } else {
                Included(i)
            }
        }
    };
    let end = match (a.1, b.1) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(p), Included(q)) => Included(p.min(q)),
        (Excluded(p), Excluded(q)) => Excluded(p.min(q)),
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) => {
            if e <= i {
                Excluded(e)
            } else {
                Included(i)
            }
        }
    };
    let empty = match (start, end) {
        (Included(s), Included(e)) => s > e,
        (Included(s) | Excluded(s), Excluded(e)) | (Excluded(s), Included(e)) => s >= e,
        _ => false,
    };
    (!empty).then_some((start, end))
}

/// A square of the map, [`Cell::DEGREES`] on a side: a map search walks
/// only the listings in the cells its box touches. Every listing inside a
/// box is in one of them, since a cell is the floor of a division, which
/// never puts a larger coordinate in a smaller cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Cell(i32, i32);

impl Cell {
    const DEGREES: f64 = 0.1;
    /// A box touching more cells than this walks every listing instead:
    /// merging that many orders costs about as much.
    const MOST: usize = 36;

    fn of(latitude: f64, longitude: f64) -> Self {
        // `as` saturates (and makes NaN 0); coordinates are validated.
        let cell = |degrees: f64| (degrees / Self::DEGREES).floor() as i32;
        Cell(cell(latitude), cell(longitude))
    }
}

/// Walks one order of several sets as one: each set's items within
/// `bounds`, ascending (descending when `down`), merged in that order.
fn merged<'a, T: Ord + Copy + 'a>(
    sets: impl Iterator<Item = &'a BTreeSet<T>>,
    bounds: Span<T>,
    down: bool,
) -> Merged<T, Box<dyn Iterator<Item = T> + 'a>> {
    let parts = sets
        .map(|set| {
            let range = set.range(bounds).copied();
            if down {
                Box::new(range.rev()) as Box<dyn Iterator<Item = T>>
            } else {
                Box::new(range)
            }
        })
        .collect();
    Merged::new(parts, down)
}

/// Iterators that each yield in one order, yielding in that order.
struct Merged<T, I> {
    parts: Vec<I>,
    heads: Vec<Option<T>>,
    down: bool,
}

impl<T: Ord + Copy, I: Iterator<Item = T>> Merged<T, I> {
    fn new(mut parts: Vec<I>, down: bool) -> Self {
        let heads = parts.iter_mut().map(Iterator::next).collect();
        Self { parts, heads, down }
    }
}

impl<T: Ord + Copy, I: Iterator<Item = T>> Iterator for Merged<T, I> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let mut best: Option<(usize, T)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let Some(item) = *head else { continue };
            let first = best.is_none_or(|(_, b)| if self.down { item > b } else { item < b });
            if first {
                best = Some((i, item));
            }
        }
        let (i, item) = best?;
        self.heads[i] = self.parts.get_mut(i).and_then(Iterator::next);
        Some(item)
    }
}

/// Listings in each order search sorts by: `(price, id)`, `(rating, id)`
/// and id, each walked either way from a cursor, with each listing's slot.
#[derive(Default)]
struct Orders {
    by_price: BTreeSet<(i64, i64, u32)>,
    by_rating: BTreeSet<(i64, i64, u32)>,
    by_id: BTreeSet<(i64, u32)>,
}

impl Orders {
    fn insert(&mut self, id: i64, slot: u32, a: &Attributes) {
        self.by_price.insert((a.price, id, slot));
        self.by_rating.insert((a.rating_x100, id, slot));
        self.by_id.insert((id, slot));
    }

    fn remove(&mut self, id: i64, slot: u32, a: &Attributes) {
        self.by_price.remove(&(a.price, id, slot));
        self.by_rating.remove(&(a.rating_x100, id, slot));
        self.by_id.remove(&(id, slot));
    }
}

/// For each night from the index's first day, the listings (by slot) a
/// booking or a block holds that night, as a bitmap: a date search ORs
/// its nights' maps and skips each listing whose bit is set with one test.
/// Holds are not in them (they lapse): the exact check sees them.
struct Nights {
    from: NaiveDate,
    taken: Vec<Vec<u64>>,
}

impl Nights {
    /// How many nights the maps cover; a search past them checks each
    /// listing's calendar instead.
    const SPAN: usize = 800;

    fn new(from: NaiveDate) -> Self {
        Self {
            from,
            taken: Vec::new(),
        }
    }

    /// The night's place in the maps, if they cover it.
    fn place(&self, night: NaiveDate) -> Option<usize> {
        usize::try_from((night - self.from).num_days())
            .ok()
            .filter(|&n| n < Self::SPAN)
    }

    fn set(&mut self, slot: u32, dates: &StayDates, on: bool) {
        let (word, mask) = (slot as usize / 64, 1u64 << (slot % 64));
        let mut night = dates.check_in();
        while night < dates.check_out() {
            if let Some(n) = self.place(night) {
                if self.taken.len() <= n {
                    self.taken.resize_with(n + 1, Vec::new);
                }
                let map = &mut self.taken[n];
                if map.len() <= word {
                    map.resize(word + 1, 0);
                }
                if on {
                    map[word] |= mask;
                } else {
                    map[word] &= !mask;
                }
            }
            night += chrono::Duration::days(1);
        }
    }

    /// The listings held on any night of `[check_in, check_out)`, if the
    /// maps cover all of them.
    fn union(&self, check_in: NaiveDate, check_out: NaiveDate) -> Option<Vec<u64>> {
        let (first, last) = (
            self.place(check_in)?,
            self.place(check_out - chrono::Duration::days(1))?,
        );
        let mut out: Vec<u64> = Vec::new();
        for map in self.taken.iter().take(last + 1).skip(first) {
            if out.len() < map.len() {
                out.resize(map.len(), 0);
            }
            for (o, m) in out.iter_mut().zip(map) {
                *o |= m;
            }
        }
        Some(out)
    }
}

fn bit(map: &[u64], slot: u32) -> bool {
    map.get(slot as usize / 64)
        .is_some_and(|w| w & (1u64 << (slot % 64)) != 0)
}

/// A listing a search found, with its earliest free stay for flexible dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub id: i64,
    pub stay: Option<StayDates>,
}

fn take(
    ids: impl Iterator<Item = (i64, u32)>,
    hit: impl Fn(&(i64, u32)) -> Option<Hit>,
    limit: usize,
) -> Vec<Hit> {
    ids.filter_map(|id| hit(&id)).take(limit).collect()
}

/// `db::properties::search`'s filters, one for one: `None` if the listing
/// does not match; else, for flexible dates, its earliest free stay.
fn hit(l: &Listing, f: &SearchFilter) -> Option<Option<StayDates>> {
    let a = &l.attrs;
    let matches = f.city_key.as_ref().is_none_or(|c| *c == a.city_key)
        && f.country.as_ref().is_none_or(|c| *c == a.country)
        && f.min_price.is_none_or(|m| a.price >= m)
        && f.max_price.is_none_or(|m| a.price <= m)
        && f.guests.is_none_or(|g| a.max_guests >= g)
        && f.min_rating_x100
            .is_none_or(|m| a.review_count > 0 && a.rating_x100 >= m)
        && f.amenities.is_none_or(|m| a.amenities & m == m)
        && f.bbox.is_none_or(|(min_lat, max_lat, min_lon, max_lon)| {
            (min_lat..=max_lat).contains(&a.latitude) && (min_lon..=max_lon).contains(&a.longitude)
        })
        && f.dates.is_none_or(|(check_in, check_out, nights)| {
            a.min_nights <= nights
                && a.max_nights >= nights
                && free(&l.calendar, check_in, check_out, f.now)
        });
    if !matches {
        return None;
    }
    match f.flexible {
        None => Some(None),
        Some(flexible) => {
            if a.min_nights > flexible.nights || a.max_nights < flexible.nights {
                return None;
            }
            let now = f.now.and_utc();
            let stay = l.calendar.earliest_free(
                &a.rules,
                (flexible.from, flexible.to),
                flexible.nights,
                f.guests.unwrap_or(1),
                a.zone.today(now),
                now,
            )?;
            Some(Some(stay))
        }
    }
}

fn free(
    calendar: &Calendar,
    check_in: NaiveDate,
    check_out: NaiveDate,
    now: NaiveDateTime,
) -> bool {
    let dates = StayDates::from_stored(check_in, check_out);
    calendar.conflict(&dates, now.and_utc(), None).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::RangeBounds;

    /// `within` is exactly where both ranges hold, and `None` where
    /// `BTreeSet::range` would panic.
    #[test]
    fn within_is_the_overlap_of_two_ranges() {
        let set: BTreeSet<i64> = (0..20).collect();
        let bounds = |lo: i64, hi: i64| {
            [
                Unbounded,
                Included(lo),
                Excluded(lo),
                Included(hi),
                Excluded(hi),
            ]
        };
        for lo in 0..6 {
            for hi in 0..6 {
                for a0 in bounds(lo, hi) {
                    for a1 in bounds(hi, lo) {
                        for b0 in bounds(hi, lo) {
                            for b1 in bounds(lo, hi) {
                                let holds = |x: &i64| (a0, a1).contains(x) && (b0, b1).contains(x);
                                let want: Vec<i64> = set.iter().copied().filter(holds).collect();
                                let got: Vec<i64> = within((a0, a1), (b0, b1))
                                    .map(|r| set.range(r).copied().collect())
                                    .unwrap_or_default();
                                assert_eq!(got, want, "{a0:?}..{a1:?} and {b0:?}..{b1:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Merged orders come out in the one order, either way.
    #[test]
    fn merged_sets_walk_in_one_order() {
        let sets: Vec<BTreeSet<i64>> = vec![
            [1, 4, 9].into(),
            BTreeSet::new(),
            [2, 3, 10, 11].into(),
            [5].into(),
        ];
        let all: Vec<i64> = merged(sets.iter(), (Unbounded, Unbounded), false).collect();
        assert_eq!(all, [1, 2, 3, 4, 5, 9, 10, 11]);
        let down: Vec<i64> = merged(sets.iter(), (Included(3), Excluded(10)), true).collect();
        assert_eq!(down, [9, 5, 4, 3]);
    }
}
