//! Background work that keeps the database lean: the hold sweeper (lapsed
//! holds marked expired, with their events), stays completed once their
//! check-out day has come where the listing is, and the pruning of old
//! calendar events and dead tokens.
//!
//! All of it runs in bounded batches, one short transaction each, through
//! [`drain`]: after a full batch it rests in proportion to how long the
//! batch took, so a backlog of any size drains steadily at a bounded share
//! of the database. Nothing here is ever one unbounded statement over a
//! large table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use crate::actors::property::expiry_records;
use crate::actors::{EventBus, PropertyRegistry};
use crate::db::events::{self, Change, LogHead};
use crate::db::{Backend, Db, DbConn, audit, calendar, idempotency, tokens};
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::review::window_closes_at;
use crate::domain::{CalendarEvent, EventKind};
use crate::error::ApiError;

/// Rows one pruning batch deletes (events, tokens).
pub const PRUNE_BATCH: i64 = 1_000;
/// The least rest between two full batches.
const MIN_REST: Duration = Duration::from_millis(1);
/// Pruning is never urgent: it rests as long as each batch took.
const PRUNE_REST: f64 = 1.0;

/// What one batch did: how many items it handled, and whether it was full
/// (so more may be waiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub done: usize,
    pub full: bool,
}

/// Runs `batch` until one comes back not full, resting after each full one
/// `rest` times as long as that one took (1.0: the work uses at most half
/// of one connection's time). Returns the items handled.
pub async fn drain<F, Fut>(rest: f64, mut batch: F) -> Result<usize, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Batch, ApiError>>,
{
    let mut total = 0;
    loop {
        let started = Instant::now();
        let Batch { done, full } = batch().await?;
        total += done;
        if !full {
            return Ok(total);
        }
        tokio::time::sleep(started.elapsed().mul_f64(rest).max(MIN_REST)).await;
    }
}

/// The hold sweeper's view of the node: where to write, and who must hear.
pub struct Sweeper<'a> {
    pub db: &'a Db,
    pub bus: &'a Arc<EventBus>,
    pub properties: &'a PropertyRegistry,
    /// Holds one batch reads from the queue.
    pub batch: i64,
    /// Counts the holds expired here.
    pub swept: &'a prometheus::IntCounter,
}

impl Sweeper<'_> {
    /// Marks every hold lapsed by now expired, batch after batch; returns
    /// how many this node expired.
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        drain(self.rest(), || self.sweep_batch()).await
    }

    /// How long to rest after a full batch, per second the batch took. On
    /// SQLite a batch holds the one write lock every request's write waits
    /// for, so the sweeper takes at most half of it (measured with
    /// booking.js running: bookings at 0.6 × their rate while it swept).
    /// On PostgreSQL a batch shares only the CPU and the rows it locks, so
    /// it may use four fifths of one connection: with booking.js running,
    /// 100,000 lapsed holds were swept in 29–34 s this way against 51–53 s
    /// resting as long as each batch took, and the booking rate stayed
    /// where it was before the sweep either way.
    fn rest(&self) -> f64 {
        match self.db.backend() {
            Backend::Sqlite => 1.0,
            Backend::Postgres => 0.25,
        }
    }

    /// One batch, one transaction: a page of the lapse queue; the calendars
    /// of its listings that no one else is writing, locked; their lapsed
    /// holds expired in one statement; their events in one insert, each
    /// listing's numbered on from its head (`calendar_heads.seq`). A listing busy
    /// elsewhere (a booking in flight, another node's sweeper) is skipped
    /// this time: its writer expires its lapsed holds itself, or the next
    /// batch does. After the commit, the events go to local subscribers,
    /// to other nodes, and to the listing's actor only if it is running
    /// here: no actor is started for this.
    pub async fn sweep_batch(&self) -> Result<Batch, ApiError> {
        let limit = self.batch;
        let (read, events) = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let now = crate::db::now().naive_utc();
                    let page = calendar::lapse_queue_page(c, now, limit).await?;
                    let mut listings: Vec<i64> = page.iter().map(|&(_, p)| p).collect();
                    listings.sort_unstable();
                    listings.dedup();
                    let heads = events::lock_free_heads(c, listings).await?;
                    let locked: HashSet<i64> = heads.iter().map(|h| h.property_id).collect();
                    let holds: Vec<i64> = page
                        .iter()
                        .filter(|(_, p)| locked.contains(p))
                        .map(|&(id, _)| id)
                        .collect();
                    let mut expired = calendar::expire_holds(c, holds, now).await?;
                    expired.sort_unstable_by_key(|e| (e.property_id, e.id));
                    let events = append_expirations(c, &heads, &expired, now).await?;
                    let records = expiry_records(&expired);
                    audit::record(c, &AuditActor::system(), &records, now).await?;
                    Ok::<_, ApiError>((page.len(), events))
                })
            })
            .await?;
        let done = events.len();
        self.swept.inc_by(done as u64);
        self.publish(events);
        Ok(Batch {
            done,
            full: read as i64 >= limit,
        })
    }

    fn publish(&self, events: Vec<CalendarEvent>) {
        for event in &events {
            self.properties.relay(Arc::new(event.clone()));
        }
        self.bus.publish(events);
    }
}

/// Confirmed stays whose check-out day has come, in the listing's own time
/// zone, become `completed`: per listing, one transaction under its lock
/// (so a cancellation, or another node's completer, takes turns with it),
/// each booking moved only if it is still confirmed, with its
/// `booking_completed` event and a `booking.completed` audit row, and its
/// review window opened (closing `review_window_days` after check-out, see
/// `domain::review`). Several nodes may run it at once: a stay is
/// completed once.
pub struct Completer<'a> {
    pub db: &'a Db,
    pub bus: &'a Arc<EventBus>,
    pub properties: &'a PropertyRegistry,
    pub batch: i64,
    pub review_window_days: i64,
}

impl Completer<'_> {
    /// Completes every stay due by now; returns how many this node did.
    pub async fn complete(&self) -> Result<usize, ApiError> {
        drain(1.0, || self.complete_batch()).await
    }

    pub async fn complete_batch(&self) -> Result<Batch, ApiError> {
        let now = crate::db::now();
        // No listing's local date is past UTC's by more than a day (UTC+14).
        let latest = now.date_naive() + chrono::Duration::days(1);
        let limit = self.batch;
        let candidates = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(calendar::to_complete(&mut conn, latest, limit).await?)
            })
            .await?;
        // A full page of stays not yet due where they are (later time
        // zones) makes no progress: then wait for the next round.
        let page_full = candidates.len() as i64 >= limit;
        let mut due: HashMap<i64, Vec<(i64, NaiveDateTime)>> = HashMap::new();
        for (booking, listing, check_out, zone) in candidates {
            let zone = crate::domain::stay::TimeZone::parse(&zone)
                .unwrap_or(crate::domain::stay::TimeZone::UTC);
            if check_out <= zone.today(now) {
                let closes = window_closes_at(check_out, zone, self.review_window_days);
                due.entry(listing)
                    .or_default()
                    .push((booking, closes.naive_utc()));
            }
        }
        let mut done = 0;
        for (listing, bookings) in due {
            let events = self
                .db
                .write(move |c| {
                    Box::pin(async move {
                        let at = crate::db::now().naive_utc();
                        let Some(property) =
                            crate::db::properties::lock_calendar(c, listing).await?
                        else {
                            return Ok::<_, ApiError>(Vec::new());
                        };
                        let mut completed = Vec::new();
                        for &(id, closes) in &bookings {
                            if let Some(e) = calendar::complete(c, id, closes, at).await? {
                                completed.push(e);
                            }
                        }
                        let changes: Vec<Change<'_>> = completed
                            .iter()
                            .map(|e| (EventKind::BookingCompleted, Some(e)))
                            .collect();
                        let events = events::append(c, &property, &changes, at).await?;
                        let records: Vec<AuditRecord> = completed
                            .iter()
                            .map(|e| {
                                AuditRecord::new(
                                    Action::BookingCompleted,
                                    ObjectType::Booking,
                                    Some(e.id),
                                )
                                .with(serde_json::json!({"property_id": e.property_id,
                                                         "check_out": e.check_out}))
                            })
                            .collect();
                        audit::record(c, &AuditActor::system(), &records, at).await?;
                        Ok(events)
                    })
                })
                .await?;
            done += events.len();
            for event in &events {
                self.properties.relay(Arc::new(event.clone()));
            }
            self.bus.publish(events);
        }
        Ok(Batch {
            done,
            full: page_full && done > 0,
        })
    }
}

/// One `booking_expired` event per expired hold (sorted by listing, then
/// id), after its listing's last event.
async fn append_expirations(
    c: &mut crate::db::Conn<'_>,
    heads: &[LogHead],
    expired: &[calendar::Entry],
    now: NaiveDateTime,
) -> diesel::QueryResult<Vec<CalendarEvent>> {
    let heads: HashMap<i64, LogHead> = heads.iter().map(|h| (h.property_id, *h)).collect();
    let changes: Vec<Change<'_>> = expired
        .iter()
        .map(|e| (EventKind::BookingExpired, Some(e)))
        .collect();
    let listing = |change: &Change<'_>| change.1.map(|e| e.property_id);
    let mut logs = Vec::new();
    for group in changes.chunk_by(|a, b| listing(a) == listing(b)) {
        // Every expired hold's listing was locked, or it was not expired.
        let head = listing(&group[0])
            .and_then(|id| heads.get(&id))
            .ok_or(diesel::result::Error::NotFound)?;
        logs.push((*head, group));
    }
    events::append_all(c, &logs, now).await
}

/// Runs one pruning `step` (a bounded delete, with a pooled connection) until
/// a batch comes back short; a step answers (rows deleted, batch full).
async fn prune<F, Fut>(db: &Db, step: F) -> Result<usize, ApiError>
where
    F: Fn(DbConn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = diesel::QueryResult<(usize, bool)>> + Send + 'static,
{
    drain(PRUNE_REST, || {
        let step = step.clone();
        async move {
            let (done, full) = db
                .run(move |conn| async move { Ok::<_, ApiError>(step(conn).await?) })
                .await?;
            Ok(Batch { done, full })
        }
    })
    .await
}

/// A delete of up to about `PRUNE_BATCH` rows: full if it reached it.
fn counted(done: usize) -> (usize, bool) {
    (done, done as i64 >= PRUNE_BATCH)
}

/// Deletes calendar events recorded before `before`, a batch at a time.
pub async fn prune_events(db: &Db, before: NaiveDateTime) -> Result<usize, ApiError> {
    prune(db, move |mut conn| async move {
        events::prune(&mut conn, before, PRUNE_BATCH)
            .await
            .map(counted)
    })
    .await
}

/// Deletes tokens that expired or were revoked before `cutoff`, a batch at a time.
pub async fn prune_tokens(db: &Db, cutoff: NaiveDateTime) -> Result<usize, ApiError> {
    prune(db, move |mut conn| async move {
        tokens::delete_dead(&mut conn, cutoff, PRUNE_BATCH).await
    })
    .await
}

/// Deletes Idempotency-Keys past their retention, a batch at a time.
pub async fn prune_idempotency_keys(db: &Db, now: NaiveDateTime) -> Result<usize, ApiError> {
    prune(db, move |mut conn| async move {
        idempotency::prune(&mut conn, now, PRUNE_BATCH)
            .await
            .map(counted)
    })
    .await
}
