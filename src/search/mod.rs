//! Availability search from memory. Every node keeps an [`Index`] of all
//! live listings, read from the database at start and kept current by the
//! calendar events that reach it (its own actors', other nodes' through
//! Redis, the log's) and by word of changed listing rows
//! ([`EventBus::listing_changed`](crate::actors::EventBus::listing_changed)).
//! Every `ROOST_EVENT_POLL_MS` a scan of the listing rows catches whatever
//! word was lost. A listing that may be behind is read again at once; until
//! it is, and until the first reading is in, searches go to the SQL. The
//! database stays the truth: memory answers only what the SQL would.

mod index;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::Notify;

pub use index::{Hit, Index, Reading};

use crate::actors::bus::Follower;
use crate::db::properties::{SearchFilter, Searchable};
use crate::db::{Db, calendar, properties};
use crate::domain::calendar::Busy;
use crate::domain::{CalendarEvent, PropertyId, StayDates};
use crate::error::ApiError;
use crate::http::metrics::Metrics;

/// How many listings one refresh query reads (SQLite's bound values limit).
const READ_CHUNK: usize = 5_000;

/// How many scanned rows are compared with memory per read lock.
const SCAN_CHUNK: usize = 2_000;

/// Where searches are answered now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Memory, unless a listing is being read again.
    Memory,
    /// Memory is still being read (searches go to the SQL meanwhile).
    Loading,
    /// `ROOST_SEARCH_FROM=database`.
    Database,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Memory => "memory",
            Mode::Loading => "loading",
            Mode::Database => "database",
        }
    }
}

pub struct Availability {
    enabled: bool,
    index: RwLock<Option<Index>>,
    /// Listings an event or a change touched before the first reading was
    /// in: it may have read them before.
    early: Mutex<Vec<i64>>,
    wake: Notify,
    metrics: Metrics,
}

impl Availability {
    pub fn new(enabled: bool, metrics: Metrics) -> Self {
        Self {
            enabled,
            index: RwLock::new(None),
            early: Mutex::new(Vec::new()),
            wake: Notify::new(),
            metrics,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<Index>> {
        // The index's methods leave it consistent before they could panic.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<Index>> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mode(&self) -> Mode {
        if !self.enabled {
            Mode::Database
        } else if self.read().is_some() {
            Mode::Memory
        } else {
            Mode::Loading
        }
    }

    /// The page's ids in order, if memory can answer for sure.
    pub fn search(&self, filter: &SearchFilter) -> Option<Vec<Hit>> {
        self.read().as_ref().and_then(|i| i.search(filter))
    }

    /// Counts a search by what answered it (`memory`, `database`).
    pub fn answered(&self, by: &str) {
        self.metrics.searches.with_label_values(&[by]).inc();
    }

    /// Checks the page's rows, read after memory answered, against memory.
    /// A row that differs was changed where no word of it reached this
    /// node (SQL run by hand, `roost seed` into a live deployment, a lost
    /// Redis message): it is marked to be read again, and false says the
    /// SQL should answer this search.
    pub fn confirm(&self, rows: &[Searchable]) -> bool {
        let differ: Vec<i64> = match self.read().as_ref() {
            Some(index) => rows
                .iter()
                .filter(|r| !index.agrees(r))
                .map(|r| r.id)
                .collect(),
            None => return false,
        };
        if differ.is_empty() {
            return true;
        }
        let mut guard = self.write();
        let Some(index) = guard.as_mut() else {
            return false;
        };
        tracing::info!(
            ?differ,
            "search: listings changed without word reaching this node"
        );
        for id in differ {
            index.mark(id);
        }
        self.publish(index);
        self.wake.notify_one();
        false
    }

    fn publish(&self, index: &Index) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.search_index_listings.set(gauge(index.len()));
        self.metrics.search_index_claims.set(gauge(index.claims()));
        self.metrics
            .search_index_stale
            .set(gauge(index.stale_count()));
    }

    /// Reads the index, then keeps it current until the process ends.
    pub async fn keep(self: Arc<Self>, db: Db, every: Duration) {
        if !self.enabled {
            return;
        }
        loop {
            match self.load(&db).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "search: reading the listings failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            if let Err(e) = self.refresh(&db).await {
                tracing::warn!(error = %e, "search: reading listings again failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.scan(&db).await {
                        tracing::warn!(error = %e, "search: scanning the listings failed");
                    }
                }
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn load(&self, db: &Db) -> Result<(), ApiError> {
        let from = crate::db::now().date_naive() - chrono::Duration::days(1);
        let started = std::time::Instant::now();
        let reading = read(db, None, from).await?;
        let mut guard = self.write();
        let mut index = Index::new(from, reading);
        let early = std::mem::take(&mut *self.early.lock().unwrap_or_else(|e| e.into_inner()));
        // Events that came while reading: their listings are read again.
        for id in early {
            index.mark(id);
        }
        tracing::info!(
            listings = index.len(),
            claims = index.claims(),
            ms = started.elapsed().as_millis() as u64,
            "search: availability index read"
        );
        self.publish(&index);
        *guard = Some(index);
        Ok(())
    }

    /// Reads the stale listings again, until none is left.
    async fn refresh(&self, db: &Db) -> Result<(), ApiError> {
        loop {
            let (ids, started, from) = match self.read().as_ref() {
                Some(index) => (index.stale(), index.epoch(), index.from()),
                None => return Ok(()),
            };
            if ids.is_empty() {
                return Ok(());
            }
            for chunk in ids.chunks(READ_CHUNK) {
                let reading = read(db, Some(chunk.to_vec()), from).await?;
                let mut guard = self.write();
                if let Some(index) = guard.as_mut() {
                    index.install(chunk, started, reading);
                    self.publish(index);
                }
            }
        }
    }

    /// Compares every live listing row with memory (what Redis did not
    /// bring, or brought and lost).
    async fn scan(&self, db: &Db) -> Result<(), ApiError> {
        let rows = db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(properties::searchables(&mut conn, None).await?)
            })
            .await?;
        // Compared a chunk at a time under the read lock, and only what
        // differs marked under the write lock: a scan compared whole under
        // the write lock held every search, calendar read and event back
        // for its length (perf at 100k listings: about 40 ms of CPU a scan).
        // A listing that changes meanwhile is at worst marked and read
        // again.
        let mut behind = Vec::new();
        for chunk in rows.chunks(SCAN_CHUNK) {
            match self.read().as_ref() {
                Some(index) => behind.extend(index.behind(chunk)),
                None => return Ok(()),
            }
        }
        let held = self.read().as_ref().map(Index::held).unwrap_or_default();
        let seen: HashSet<i64> = rows.iter().map(|r| r.listing.id).collect();
        behind.extend(held.into_iter().filter(|id| !seen.contains(id)));
        if !behind.is_empty() {
            let mut guard = self.write();
            if let Some(index) = guard.as_mut() {
                for &id in &behind {
                    index.mark(id);
                }
                tracing::info!(
                    marked = behind.len(),
                    "search: the scan found listings memory missed"
                );
                self.publish(index);
            }
        }
        self.metrics.search_scans.inc();
        Ok(())
    }
}

/// The rows of `ids` (of every live listing, given none), then their claims.
async fn read(db: &Db, ids: Option<Vec<i64>>, from: NaiveDate) -> Result<Reading, ApiError> {
    db.run(move |mut conn| async move {
        let listings = properties::searchables(&mut conn, ids.as_deref()).await?;
        let claims = calendar::live_claims(&mut conn, ids.as_deref(), from).await?;
        Ok::<_, ApiError>(Reading { listings, claims })
    })
    .await
}

impl Availability {
    /// A live listing's calendar as memory has it, and the seq it is
    /// current as of, for a listing's actor starting: none while memory is
    /// off, still being read, or may be behind on the listing.
    pub fn calendar(&self, id: PropertyId) -> Option<(i64, crate::domain::calendar::Calendar)> {
        if !self.enabled {
            return None;
        }
        let guard = self.read();
        let (seq, calendar) = guard.as_ref()?.calendar(id.0)?;
        Some((seq, calendar.clone()))
    }

    /// A live listing's taken nights inside `window` as memory has them,
    /// for its calendar page: none when memory cannot say (off, still being
    /// read, behind on the listing, or the window starts before the claims
    /// it keeps), and the listing's actor answers. As current as the
    /// actor's: this node's commits reach memory before their reply, other
    /// nodes' by the same road as the actor's.
    pub fn taken(
        &self,
        id: PropertyId,
        window: &StayDates,
        now: DateTime<Utc>,
    ) -> Option<Vec<(StayDates, Busy)>> {
        if !self.enabled {
            return None;
        }
        let guard = self.read();
        let index = guard.as_ref()?;
        if window.check_in() < index.from() {
            return None;
        }
        let (_, calendar) = index.calendar(id.0)?;
        Some(calendar.unavailable(window, now))
    }
}

impl Follower for Availability {
    fn event(&self, event: &CalendarEvent) {
        if !self.enabled {
            return;
        }
        let mut guard = self.write();
        match guard.as_mut() {
            Some(index) => {
                let stale = index.stale_count();
                index.apply(event);
                self.publish(index);
                if index.stale_count() > stale {
                    self.wake.notify_one();
                }
            }
            None => self.remember(event.property_id),
        }
    }

    fn listing_changed(&self, property: PropertyId) {
        if !self.enabled {
            return;
        }
        let mut guard = self.write();
        match guard.as_mut() {
            Some(index) => {
                index.mark(property.0);
                self.publish(index);
                self.wake.notify_one();
            }
            None => self.remember(property),
        }
    }
}

impl Availability {
    fn remember(&self, property: PropertyId) {
        self.early
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(property.0);
    }
}
