//! `PropertyActor` owns one listing's calendar: its bookings, holds and
//! blocks. Every write to that calendar is a message here, handled one at a
//! time and committed before the reply; availability is answered from memory.
//!
//! Memory is the fast path, the database the guarantee. Before refusing a
//! stay as taken, the actor makes sure memory is the database's calendar
//! (the listing's head, `calendar_heads.seq`, equals memory's seq, or the
//! calendar is read again: another process may have freed the nights), so
//! a 409 is always true of the database. One such read serves every
//! refusal asked for before it started ([`Checked`]). When the database
//! refuses a write the memory allowed (another process took the nights),
//! the actor reloads and answers 409.
//!
//! On PostgreSQL the actor also keeps the listing's rules ([`Rules`]) and
//! makes a hold judged on them in one statement, guarded by their version
//! ([`events::claim_guarded`]): no transaction, no lock. A hold the copy
//! refuses, or whose guard fails, is judged again under the listing's lock.
//!
//! Each write also records its events (seq-numbered, in the same
//! transaction) and, once committed, publishes them on the [`EventBus`].
//! Events committed by other nodes arrive as [`Relayed`]: memory follows
//! them in seq order, and forgets itself (to reload) when it missed one.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::FutureExt;

use super::bus::EventBus;
use super::refunds::{self, RefundSettled};
use crate::commit::Commit;
use crate::db::calendar::{
    self, Entry, KIND_BLOCK, KIND_BOOKING, NewEntry, STATUS_BLOCKED, is_overlap_violation,
    is_retryable_race,
};
use crate::db::changes::{self, Change as BookingChange, NewChange};
use crate::db::events::{self, Change};
use crate::db::payments::{self, Payment};
use crate::db::{Db, Unavailable, audit as audit_log, properties, rates};
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::calendar::{Busy, Calendar, Claim};
use crate::domain::cancellation::{CancelledBy, RefundQuote};
use crate::domain::event::Effect;
use crate::domain::payment::{EventKind as GatewayEventKind, GatewayEvent, PaymentStatus, Subject};
use crate::domain::pricing::{PriceList, QuoteView};
use crate::domain::stay::RuleBreach;
use crate::domain::{
    BlockId, BookingId, BookingStatus, CalendarEvent, Currency, EventKind, PropertyId, StayDates,
    Transition, UserId,
};
use crate::error::ApiError;

/// How many times a write that lost a deadlock is tried again.
const RACE_RETRIES: usize = 3;

pub struct PropertyActor {
    id: PropertyId,
    db: Db,
    bus: Arc<EventBus>,
    hold_ttl: Duration,
    idle_after: Duration,
    last_used: Instant,
    /// Shared with the one message future in flight (they run one at a time).
    state: Rc<RefCell<Option<Loaded>>>,
}

/// What the actor knows once it has read the listing: its calendar as of
/// event `seq`.
struct Loaded {
    deleted: bool,
    calendar: Calendar,
    seq: i64,
    /// The last read a refusal made, while memory is still at its seq.
    checked: Option<Checked>,
    /// The listing's rules as last read, for holds judged without the
    /// lock (PostgreSQL; see [`Rules`]).
    rules: Option<Rules>,
}

/// The listing's rules as read at one moment: its row with its head (the
/// seq and the rules version, `Headed::rules`), and its seasons that end
/// after `seasons_from`. A hold judged on them is claimed by a statement
/// that writes only while the rules version is still theirs
/// ([`events::claim_guarded`]), so they may be kept in memory without the
/// listing's lock: when they move, the claim fails its guard and is judged
/// again under the lock.
#[derive(Clone)]
struct Rules {
    property: Rc<properties::Headed>,
    seasons: Rc<[rates::Rate]>,
    seasons_from: chrono::NaiveDate,
}

impl Rules {
    /// Enough to judge a stay of `dates`: every season that could touch it.
    fn cover(&self, dates: &StayDates) -> bool {
        dates.check_in() >= self.seasons_from
    }

    /// The seasons that share a night with `dates`.
    fn touching(&self, dates: &StayDates) -> Vec<rates::Rate> {
        let (from, to) = (dates.check_in(), dates.check_out());
        self.seasons
            .iter()
            .filter(|r| r.end_date > from && r.start_date < to)
            .cloned()
            .collect()
    }
}

/// What a refusal read of the listing: its rules (with its head's seq)
/// and when the read started. A stay asked for before that may be refused
/// on it without a read of its own, if memory is still at that seq: the
/// database said so after the guest asked. So a crowd racing for one week
/// costs a read per wave, not per guest.
struct Checked {
    started: Instant,
    rules: Rules,
}

impl Checked {
    /// Usable for a stay of `dates` asked for at `asked` by memory at `seq`.
    fn serves(&self, asked: Instant, seq: i64, dates: &StayDates) -> bool {
        self.started > asked && self.rules.property.seq == seq && self.rules.cover(dates)
    }
}

impl Loaded {
    /// Follows one committed event. False when memory missed an earlier one
    /// (it can no longer be trusted).
    fn follow(&mut self, event: &CalendarEvent) -> bool {
        if event.seq <= self.seq {
            return true;
        }
        if event.seq != self.seq + 1 {
            return false;
        }
        match event.effect() {
            Some(Effect::Claim(claim)) => self.calendar.put(claim),
            Some(Effect::Free(id)) => self.calendar.remove(id),
            Some(Effect::Delisted) => self.deleted = true,
            None => {}
        }
        self.seq = event.seq;
        true
    }
}

impl PropertyActor {
    pub fn new(
        id: PropertyId,
        db: Db,
        bus: Arc<EventBus>,
        hold_ttl: Duration,
        idle_after: Duration,
        known: Option<(i64, Calendar)>,
    ) -> Self {
        // Started from the search index's copy (see the registry): current
        // as of `seq`, as a load would be.
        let loaded = known.map(|(seq, calendar)| {
            bus.observe(id, seq);
            bus.metrics().calendar_starts.inc();
            Loaded {
                deleted: false,
                calendar,
                seq,
                checked: None,
                rules: None,
            }
        });
        Self {
            id,
            db,
            bus,
            hold_ttl,
            idle_after,
            last_used: Instant::now(),
            state: Rc::new(RefCell::new(loaded)),
        }
    }

    /// Runs `work` as this message's whole turn: no other message is handled
    /// until it finishes. The calendar is loaded first if it is not yet.
    fn turn<T, F, Fut>(&mut self, work: F) -> AtomicResponse<Self, Result<T, ApiError>>
    where
        T: 'static,
        F: FnOnce(Turn) -> Fut + 'static,
        Fut: Future<Output = Result<T, ApiError>> + 'static,
    {
        self.last_used = Instant::now();
        let turn = Turn {
            id: self.id,
            db: self.db.clone(),
            bus: self.bus.clone(),
            hold_ttl: self.hold_ttl,
            state: self.state.clone(),
            stored_seq: Cell::new(None),
        };
        let fut = async move {
            turn.ensure_loaded().await?;
            work(turn).await
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|result, act, ctx| {
            // A listing that does not exist needs no actor.
            if matches!(result, Err(ApiError::NotFound("property"))) {
                act.state.replace(None);
                ctx.stop();
            }
            result
        })))
    }
}

impl Actor for PropertyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        let check_every = (self.idle_after / 2).max(Duration::from_millis(500));
        ctx.run_interval(check_every, |act, ctx| {
            if act.last_used.elapsed() >= act.idle_after {
                tracing::debug!(property = %act.id, "property actor idle, stopping");
                ctx.stop();
            }
        });
    }
}

/// One message's access to the actor: its listing, the database, its memory.
struct Turn {
    id: PropertyId,
    db: Db,
    bus: Arc<EventBus>,
    hold_ttl: Duration,
    state: Rc<RefCell<Option<Loaded>>>,
    /// The listing's head (seq) as this turn read it with the listing
    /// (the rules are read before a refusal anyway), so the refusal's
    /// check needs no read of its own.
    stored_seq: Cell<Option<i64>>,
}

/// Why a calendar write did not commit.
enum WriteError {
    /// A rule refused it (or the listing is gone); rolled back.
    Refused(ApiError),
    /// Another live claim has some of these nights.
    Taken,
    /// Lost a deadlock or serialization race; most likely, not surely, taken.
    Race,
    /// A claim judged on rules kept in memory: they refused it, or (`moved`)
    /// they were no longer current. Nothing was written; judge it again
    /// under the listing's lock (a refusal is made on the rules as
    /// committed, never on a copy).
    Rejudge {
        moved: bool,
    },
    Failed(ApiError),
}

impl From<diesel::result::Error> for WriteError {
    fn from(e: diesel::result::Error) -> Self {
        if is_overlap_violation(&e) {
            WriteError::Taken
        } else if is_retryable_race(&e) {
            WriteError::Race
        } else {
            WriteError::Failed(e.into())
        }
    }
}

impl From<Unavailable> for WriteError {
    fn from(e: Unavailable) -> Self {
        WriteError::Failed(e.into())
    }
}

impl From<ApiError> for WriteError {
    fn from(e: ApiError) -> Self {
        WriteError::Refused(e)
    }
}

pub fn dates_unavailable() -> ApiError {
    ApiError::Conflict {
        code: "dates_unavailable",
        message: "some of these dates are already booked, held or blocked",
    }
}

fn today(now: DateTime<Utc>) -> chrono::NaiveDate {
    now.date_naive()
}

impl Turn {
    async fn ensure_loaded(&self) -> Result<(), ApiError> {
        if self.state.borrow().is_none() {
            self.reload().await?;
        }
        Ok(())
    }

    /// Reads the listing's seq and live claims from the database, in one
    /// statement (an actor starts once per listing it serves).
    async fn reload(&self) -> Result<(), ApiError> {
        let id = self.id.0;
        let from = today(crate::db::now()) - chrono::Duration::days(1);
        let (seq, deleted_at, entries) = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(calendar::load_for_actor(&mut conn, id, from).await?)
            })
            .await?
            .ok_or(ApiError::NotFound("property"))?;
        // The rules kept, if any, stay: their version, not the calendar's
        // seq, says whether they are current.
        let rules = self.state.borrow().as_ref().and_then(|l| l.rules.clone());
        self.state.replace(Some(Loaded {
            deleted: deleted_at.is_some(),
            calendar: Calendar::new(entries.iter().filter_map(claim_of).collect()),
            seq,
            checked: None,
            rules,
        }));
        self.bus.observe(self.id, seq);
        self.bus.metrics().calendar_loads.inc();
        Ok(())
    }

    /// Makes memory the database's before it refuses: the listing's head
    /// (one indexed read, or none when this turn just read
    /// the listing for its rules) equal to memory's means no event was
    /// committed that memory has not followed, so memory already is the
    /// database's calendar; only when they differ is the calendar read
    /// again. Racing guests on one listing cost a read each, not a load.
    async fn refresh(&self) -> Result<(), ApiError> {
        let id = self.id;
        let stored = match self.stored_seq.take() {
            Some(seq) => Some(seq),
            None => self
                .db
                .run(move |mut conn| async move {
                    Ok::<_, ApiError>(events::positions(&mut conn, &[id]).await?)
                })
                .await?
                .first()
                .map(|&(_, seq)| seq),
        };
        if stored.is_none() || stored != self.with(|l| l.seq).ok() {
            self.reload().await?;
        }
        Ok(())
    }

    /// After a commit: memory follows the new events (or, if it had missed
    /// some, is forgotten until the next message reloads it) and the bus
    /// publishes them.
    fn committed(&self, events: Vec<CalendarEvent>) {
        {
            let mut state = self.state.borrow_mut();
            if let Some(loaded) = state.as_mut()
                && !events.iter().all(|e| loaded.follow(e))
            {
                *state = None;
            }
        }
        self.bus.publish(events);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Loaded) -> T) -> Result<T, ApiError> {
        self.state
            .borrow_mut()
            .as_mut()
            .map(f)
            .ok_or(ApiError::NotFound("property"))
    }

    fn require_listed(&self) -> Result<(), ApiError> {
        if self.with(|l| l.deleted)? {
            return Err(ApiError::NotFound("property"));
        }
        Ok(())
    }

    /// The listing's rules answer before its calendar: a stay they forbid
    /// is refused for that, whatever the calendar says. Only a stay memory
    /// would refuse as taken (by a claim other than `except`) needs them
    /// read first; every other stay meets them in its write transaction.
    /// A stay asked for at `asked` may use a read that started after then
    /// (see [`Checked`]).
    async fn rules_first(
        &self,
        stay: Stay,
        except: Option<i64>,
        asked: Option<Instant>,
    ) -> Result<(), ApiError> {
        let dates = stay.dates;
        if !self.is_taken_by_others(&dates, crate::db::now(), except)? {
            return Ok(());
        }
        let shared = asked.and_then(|asked| {
            self.with(|l| {
                l.checked
                    .as_ref()
                    .filter(|c| c.serves(asked, l.seq, &dates))
                    .map(|c| c.rules.clone())
            })
            .ok()
            .flatten()
        });
        let by = if shared.is_some() { "shared" } else { "read" };
        self.bus
            .metrics()
            .refusal_checks
            .with_label_values(&[by])
            .inc();
        let rules = match shared {
            Some(found) => found,
            None => self.read_rules(dates).await?,
        };
        let property = &rules.property;
        self.stored_seq.set(Some(property.seq));
        refuse_own(property, stay.guest)?;
        let prices = price_list(property, &rules.touching(&dates), stay.service_fee_bp)?;
        check_stay(property, &prices, &dates, stay.guests, crate::db::now())
    }

    /// Reads the listing's rules as committed, covering a stay of `dates`
    /// and any later one, and keeps them: for holds judged without the
    /// lock, and for the refusals asked for before the read started.
    async fn read_rules(&self, dates: StayDates) -> Result<Rules, ApiError> {
        let property_id = self.id.0;
        let seasons_from = dates
            .check_in()
            .min(today(crate::db::now()) - chrono::Duration::days(1));
        let started = Instant::now();
        let (property, seasons) = self
            .db
            .run(move |mut conn| async move {
                let property = properties::find_headed(&mut conn, property_id)
                    .await?
                    .ok_or(ApiError::NotFound("property"))?;
                // The row states where its last season ends: none after
                // `seasons_from`, no read (a season added since moved the
                // rules version on, and a claim on these fails its guard).
                let seasons = match property.seasons_end {
                    Some(end) if end > seasons_from => {
                        rates::from(&mut conn, property_id, seasons_from).await?
                    }
                    _ => Vec::new(),
                };
                Ok::<_, ApiError>((property, seasons))
            })
            .await?;
        let rules = Rules {
            property: Rc::new(property),
            seasons: Rc::from(seasons),
            seasons_from,
        };
        let checked = Checked {
            started,
            rules: rules.clone(),
        };
        self.with(|l| {
            l.checked = Some(checked);
            l.rules = Some(rules.clone());
        })?;
        Ok(rules)
    }

    /// The rules a hold of `dates` is judged on without the listing's lock
    /// (PostgreSQL): those kept, if they cover the stay, or read now. None
    /// on SQLite, whose writes read the rules under the write lock at no
    /// cost.
    async fn kept_rules(&self, dates: StayDates) -> Result<Option<Rules>, ApiError> {
        if matches!(self.db.backend(), crate::db::Backend::Sqlite) {
            return Ok(None);
        }
        let kept = self.with(|l| l.rules.clone().filter(|r| r.cover(&dates)))?;
        match kept {
            Some(rules) => Ok(Some(rules)),
            None => self.read_rules(dates).await.map(Some),
        }
    }

    /// Taken by a claim other than `except`?
    fn is_taken_by_others(
        &self,
        dates: &StayDates,
        now: DateTime<Utc>,
        except: Option<i64>,
    ) -> Result<bool, ApiError> {
        self.with(|l| l.calendar.conflict(dates, now, except).is_some())
    }

    /// Claims `dates` with the entry `write` inserts, inside its transaction.
    /// Memory says taken: the database is asked before refusing. The
    /// database refuses: memory is reloaded, and the answer is 409 if it
    /// then says taken; if not, the write is tried again.
    ///
    /// `write` gets a [`Sweep`]: whether to expire lapsed holds on the
    /// nights first. Memory holds every claim it has heard of, lapsed holds
    /// too; on PostgreSQL the expiry (a statement and a round trip) runs
    /// only when memory knows of a claim on the nights, and a lapsed hold
    /// it has not heard of is found by the exclusion constraint, which
    /// refuses the insert: reloaded, memory knows it, and the next try
    /// expires it. SQLite, with no such constraint, always expires.
    async fn claim<W, Fut>(&self, dates: StayDates, write: W) -> Result<Entry, ApiError>
    where
        W: Fn(Db, Sweep) -> Fut,
        Fut: Future<Output = Result<(Entry, Vec<CalendarEvent>), WriteError>>,
    {
        self.claim_except(dates, None, write).await
    }

    /// [`Turn::claim`], for nights claim `except` may already hold (a
    /// booking moving onto nights overlapping its own).
    async fn claim_except<T, W, Fut>(
        &self,
        dates: StayDates,
        except: Option<i64>,
        write: W,
    ) -> Result<T, ApiError>
    where
        W: Fn(Db, Sweep) -> Fut,
        Fut: Future<Output = Result<(T, Vec<CalendarEvent>), WriteError>>,
    {
        self.claim_ways(dates, except, None, |db, way| match way {
            Way::Locked(sweep) => write(db, sweep),
            // Never offered without rules.
            Way::Guarded(_) => write(db, Sweep(false)),
        })
        .await
    }

    /// [`Turn::claim_except`], offering `write` the [`Way::Guarded`] write
    /// on `rules` (kept in memory) when nothing needs sweeping. When that
    /// write answers [`WriteError::Rejudge`], the next try takes the lock.
    async fn claim_ways<T, W, Fut>(
        &self,
        dates: StayDates,
        except: Option<i64>,
        mut rules: Option<Rules>,
        write: W,
    ) -> Result<T, ApiError>
    where
        W: Fn(Db, Way) -> Fut,
        Fut: Future<Output = Result<(T, Vec<CalendarEvent>), WriteError>>,
    {
        if self.is_taken_by_others(&dates, crate::db::now(), except)? {
            self.refresh().await?;
            self.require_listed()?;
            if self.is_taken_by_others(&dates, crate::db::now(), except)? {
                return Err(dates_unavailable());
            }
        }
        let always = matches!(self.db.backend(), crate::db::Backend::Sqlite);
        for _ in 0..RACE_RETRIES {
            let sweep = Sweep(always || self.with(|l| l.calendar.touches(&dates, except))?);
            let way = match &rules {
                Some(rules) if !sweep.0 => Way::Guarded(rules.clone()),
                _ => Way::Locked(sweep),
            };
            match write(self.db.clone(), way).await {
                Ok((entry, events)) => {
                    self.committed(events);
                    return Ok(entry);
                }
                Err(WriteError::Refused(e)) | Err(WriteError::Failed(e)) => return Err(e),
                Err(WriteError::Rejudge { moved }) => {
                    rules = None;
                    if moved {
                        self.with(|l| l.rules = None)?;
                    }
                }
                Err(WriteError::Taken) | Err(WriteError::Race) => {
                    self.reload().await?;
                    if self.is_taken_by_others(&dates, crate::db::now(), except)? {
                        return Err(dates_unavailable());
                    }
                }
            }
        }
        Err(ApiError::Unavailable(Unavailable::new(
            "calendar write kept losing races",
        )))
    }
}

/// Whether a claim's write expires the lapsed holds on its nights first
/// ([`Turn::claim`]).
#[derive(Clone, Copy, Debug)]
struct Sweep(bool);

/// How a claim is written ([`Turn::claim_ways`]).
enum Way {
    /// Under the listing's lock, judged on the rules read under it, after
    /// expiring the lapsed holds on the nights if [`Sweep`] says so.
    Locked(Sweep),
    /// Judged on rules kept in memory, in one statement that writes only
    /// while they are current ([`events::claim_guarded`]; PostgreSQL).
    Guarded(Rules),
}

/// The claim a stored entry makes, if it still makes one.
fn claim_of(entry: &Entry) -> Option<Claim> {
    let busy = match entry.status.as_str() {
        STATUS_BLOCKED => Busy::Blocked,
        "pending" => Busy::Held,
        "confirmed" | "completed" => Busy::Booked,
        _ => return None,
    };
    Some(Claim {
        id: entry.id,
        dates: StayDates::from_stored(entry.check_in, entry.check_out),
        busy,
        held_until: entry
            .hold_expires_at
            .filter(|_| busy == Busy::Held)
            .map(|t| t.and_utc()),
    })
}

/// Inside a calendar write: locks the listing (see
/// `properties::lock_calendar`) and reads it, if it is still listed.
async fn lock_listed(
    c: &mut crate::db::Conn<'_>,
    property_id: i64,
) -> Result<properties::Headed, ApiError> {
    properties::lock_calendar(c, property_id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(ApiError::NotFound("property"))
}

/// Inside a calendar write, with the listing locked: claims `new`'s nights
/// and records the events. No live claim may share a night with them. With
/// `sweep`, the lapsed holds on these nights are first marked expired (the
/// listing's others are left to the sweeper); without, a lapsed hold there
/// still counts as taken on PostgreSQL, and [`Turn::claim`] reloads and
/// tries again with `sweep`. On PostgreSQL the exclusion constraint guards
/// the insert; on SQLite the check below, inside the immediate
/// transaction, is the guard. Audited as `action` on `object` by `commit`'s
/// actor, with the request's answer sealed under its key.
async fn insert_claim(
    c: &mut crate::db::Conn<'_>,
    property: &properties::Headed,
    new: &NewEntry<'_>,
    (kind, action, object): (EventKind, Action, ObjectType),
    commit: &Commit<Entry>,
    now: DateTime<Utc>,
    sweep: Sweep,
) -> Result<(Entry, Vec<CalendarEvent>), WriteError> {
    let (entry, events) = insert_audited(
        c,
        property,
        new,
        kind,
        (&commit.actor, action, object),
        now,
        sweep,
    )
    .await?;
    commit.seal(c, &entry).await?;
    Ok((entry, events))
}

/// [`insert_claim`]'s row, events and audit rows.
async fn insert_audited(
    c: &mut crate::db::Conn<'_>,
    property: &properties::Headed,
    new: &NewEntry<'_>,
    kind: EventKind,
    audit: (&AuditActor, Action, ObjectType),
    now: DateTime<Utc>,
    sweep: Sweep,
) -> Result<(Entry, Vec<CalendarEvent>), WriteError> {
    let expired = if sweep.0 {
        let (from, to) = (new.check_in, new.check_out);
        calendar::expire_lapsed_holds(c, property.id, from, to, now.naive_utc()).await?
    } else {
        Vec::new()
    };
    // PostgreSQL's exclusion constraint compares the rows still pending,
    // lapsed or not, with the new one: its refusal of the insert
    // (`WriteError::Taken`) is the check, and a statement is saved. SQLite
    // has no such constraint: it asks (for live claims only, and always
    // sweeps first).
    if matches!(c, crate::db::Conn::Sqlite(_)) {
        let (from, to, at) = (new.check_in, new.check_out, now.naive_utc());
        if calendar::overlapping(c, property.id, from, to, at)
            .await?
            .is_some()
        {
            return Err(WriteError::Taken);
        }
    }
    let at = now.naive_utc();
    let claimed = claim_audit(new, audit, at);
    if expired.is_empty() {
        // The usual case: the row, its event and its audit row at once.
        return Ok(events::insert_claim(c, property, new, kind, claimed, at).await?);
    }
    let entry = calendar::insert(c, new).await?;
    let mut changes = expirations(&expired);
    changes.push((kind, Some(&entry)));
    let audit = claimed.about(entry.id).and(audit_log::rows(
        &AuditActor::system(),
        &expiry_records(&expired),
        at,
    ));
    let events = events::append_audited(c, property, &changes, audit, at).await?;
    Ok((entry, events))
}

/// The audit row of a new claim (`action` on `object`, by `actor`): about
/// the new row, whose id the write fills in.
fn claim_audit(
    new: &NewEntry<'_>,
    (actor, action, object): (&AuditActor, Action, ObjectType),
    at: chrono::NaiveDateTime,
) -> audit_log::Rows {
    let details = claim_details(
        new.property_id,
        (new.check_in, new.check_out),
        new.guests,
        new.total,
        new.currency,
    );
    audit_log::rows(
        actor,
        &[AuditRecord::new(action, object, None).with(details)],
        at,
    )
}

/// What the audit trail says of a claim: its listing and nights, and for a
/// booking who stays and the price it was sold at.
fn claim_details(
    property_id: i64,
    (check_in, check_out): (NaiveDate, NaiveDate),
    guests: Option<i64>,
    total: Option<i64>,
    currency: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "property_id": property_id,
        "check_in": check_in,
        "check_out": check_out,
        "guests": guests,
        "total": total,
        "currency": currency,
    })
}

/// `booking.expired` rows for holds Roost expired (not a person's doing).
pub fn expiry_records(expired: &[Entry]) -> Vec<AuditRecord> {
    expired
        .iter()
        .map(|e| {
            AuditRecord::new(Action::BookingExpired, ObjectType::Booking, Some(e.id))
                .with(serde_json::json!({"property_id": e.property_id}))
        })
        .collect()
}

/// Nights before the listing's local today cannot be claimed.
fn refuse_past(
    property: &properties::Property,
    dates: &StayDates,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let today = property.zone().today(now);
    if dates.check_in() < today {
        return Err(ApiError::Unprocessable {
            code: "dates_in_past",
            message: format!(
                "check_in {} is before today, {today}, where the listing is",
                dates.check_in()
            ),
        });
    }
    Ok(())
}

/// A guest asks for nights: a hold (a pending booking) until it is paid or lapses.
#[derive(Message, Clone)]
#[rtype(result = "Result<Entry, ApiError>")]
pub struct PlaceHold {
    pub guest: UserId,
    pub dates: StayDates,
    pub guests: i64,
    /// The platform's service fee, basis points (`ROOST_SERVICE_FEE_BP`).
    pub service_fee_bp: i64,
    /// The total the guest was quoted: if the price has moved since, 409
    /// `price_changed` and nothing is held.
    pub expected_total: Option<i64>,
    /// Who asked (the audit trail's `booking.held`), and the answer to
    /// store under the request's Idempotency-Key.
    pub commit: Commit<Entry>,
    /// When the guest asked (a refusal may use a read started after).
    pub asked: Instant,
}

impl PlaceHold {
    fn stay(&self) -> Stay {
        Stay {
            guest: self.guest,
            dates: self.dates,
            guests: self.guests,
            service_fee_bp: self.service_fee_bp,
        }
    }
}

/// A stay as the rules judge it.
struct Stay {
    guest: UserId,
    dates: StayDates,
    guests: i64,
    service_fee_bp: i64,
}

impl Handler<PlaceHold> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Entry, ApiError>>;

    fn handle(&mut self, msg: PlaceHold, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            turn.require_listed()?;
            let hold_ttl = chrono::Duration::from_std(turn.hold_ttl)
                .map_err(|e| ApiError::Internal(e.into()))?;
            let property_id = turn.id.0;
            turn.rules_first(msg.stay(), None, Some(msg.asked)).await?;
            let rules = turn.kept_rules(msg.dates).await?;
            let commit = msg.commit.clone();
            let held = turn
                .claim_ways(msg.dates, None, rules, |db, way| {
                    let msg = msg.clone();
                    async move {
                        match way {
                            Way::Guarded(rules) => {
                                let now = crate::db::now();
                                let touching = rules.touching(&msg.dates);
                                // Refused on the copy: judged again under the lock.
                                let Ok(terms) = hold_terms(&msg, &rules.property, &touching, now)
                                else {
                                    return Err(WriteError::Rejudge { moved: false });
                                };
                                let p = &rules.property;
                                let guard = (p.id, p.host_id, p.rules);
                                let write = Guarded {
                                    msg,
                                    terms,
                                    guard,
                                    now,
                                    hold_ttl,
                                };
                                write.run(db).await
                            }
                            Way::Locked(sweep) => {
                                db.write(move |c| {
                                    async move {
                                        let now = crate::db::now();
                                        let property = lock_listed(c, property_id).await?;
                                        let (from, to) =
                                            (msg.dates.check_in(), msg.dates.check_out());
                                        let seasons =
                                            rates::touching_locked(c, &property, from, to).await?;
                                        let terms = hold_terms(&msg, &property, &seasons, now)?;
                                        let hold = msg.hold(property_id, &terms, now, hold_ttl);
                                        let held = (
                                            EventKind::BookingHeld,
                                            Action::BookingHeld,
                                            ObjectType::Booking,
                                        );
                                        let commit = &msg.commit;
                                        insert_claim(c, &property, &hold, held, commit, now, sweep)
                                            .await
                                    }
                                    .boxed()
                                })
                                .await
                            }
                        }
                    }
                })
                .await;
            if held.is_ok() {
                // Either way sealed the answer in the hold's transaction.
                commit.committed();
            }
            held
        })
    }
}

/// What a hold is sold at: its price per night, fee, total and the quote's
/// lines, in the listing's currency.
struct HoldTerms {
    price_per_night: i64,
    cleaning_fee: i64,
    total: i64,
    currency: &'static str,
    detail: String,
}

/// Judges a hold of `msg`'s stay on the listing's rules (its row, and its
/// seasons that touch the nights): the terms it is sold at, or the
/// refusal (the rules', or 409 `price_changed` when the guest was quoted
/// another total).
fn hold_terms(
    msg: &PlaceHold,
    property: &properties::Property,
    seasons: &[rates::Rate],
    now: DateTime<Utc>,
) -> Result<HoldTerms, ApiError> {
    refuse_own(property, msg.guest)?;
    let prices = price_list(property, seasons, msg.service_fee_bp)?;
    check_stay(property, &prices, &msg.dates, msg.guests, now)?;
    let quote = prices
        .quote(&msg.dates, msg.guests)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("price overflow")))?;
    if msg.expected_total.is_some_and(|t| t != quote.total) {
        let view = QuoteView::new(&prices, &quote, None);
        return Err(ApiError::PriceChanged(Box::new(
            serde_json::to_value(view).map_err(|e| ApiError::Internal(e.into()))?,
        )));
    }
    Ok(HoldTerms {
        price_per_night: property.price_per_night,
        cleaning_fee: property.cleaning_fee,
        total: quote.total,
        currency: prices.currency.code(),
        detail: serde_json::to_string(&quote).map_err(|e| ApiError::Internal(e.into()))?,
    })
}

impl PlaceHold {
    /// The hold's row on listing `property_id`, sold on `terms`, lapsing
    /// `ttl` after `now`.
    fn hold<'a>(
        &self,
        property_id: i64,
        terms: &'a HoldTerms,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> NewEntry<'a> {
        NewEntry {
            property_id,
            kind: KIND_BOOKING,
            status: BookingStatus::Pending.as_str(),
            check_in: self.dates.check_in(),
            check_out: self.dates.check_out(),
            hold_expires_at: Some((now + ttl).naive_utc()),
            created_by: self.guest.0,
            guest_id: Some(self.guest.0),
            guests: Some(self.guests),
            nights: Some(self.dates.nights()),
            price_per_night: Some(terms.price_per_night),
            cleaning_fee: Some(terms.cleaning_fee),
            total: Some(terms.total),
            currency: Some(terms.currency),
            reason: None,
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
            price_detail: Some(&terms.detail),
            reviews_close_at: None,
        }
    }
}

/// A hold judged on rules kept in memory, written by one guarded statement
/// ([`events::claim_guarded`]): on its own, its own transaction; with the
/// request's Idempotency-Key, in one with the key's answer.
struct Guarded {
    msg: PlaceHold,
    terms: HoldTerms,
    /// The listing, its host and the rules version the terms were judged on.
    guard: (i64, i64, i64),
    now: DateTime<Utc>,
    hold_ttl: chrono::Duration,
}

impl Guarded {
    async fn run(self, db: Db) -> Result<(Entry, Vec<CalendarEvent>), WriteError> {
        let claimed = if self.msg.commit.is_keyed() {
            db.write(move |c| async move { self.write(c).await }.boxed())
                .await?
        } else {
            db.write_alone(move |c| async move { self.write(c).await }.boxed())
                .await?
        };
        claimed.ok_or(WriteError::Rejudge { moved: true })
    }

    async fn write(
        &self,
        c: &mut impl crate::db::AsConn,
    ) -> Result<Option<(Entry, Vec<CalendarEvent>)>, WriteError> {
        let msg = &self.msg;
        let hold = msg.hold(self.guard.0, &self.terms, self.now, self.hold_ttl);
        let at = self.now.naive_utc();
        let audit = claim_audit(
            &hold,
            (&msg.commit.actor, Action::BookingHeld, ObjectType::Booking),
            at,
        );
        let kind = EventKind::BookingHeld;
        let claimed = events::claim_guarded(c, self.guard, &hold, kind, audit, at).await?;
        if let Some((entry, _)) = &claimed {
            msg.commit.seal(c, entry).await?;
        }
        Ok(claimed)
    }
}

fn expirations(expired: &[Entry]) -> Vec<Change<'_>> {
    expired
        .iter()
        .map(|e| (EventKind::BookingExpired, Some(e)))
        .collect()
}

/// Hosts do not book their own listings.
fn refuse_own(property: &properties::Property, guest: UserId) -> Result<(), ApiError> {
    if property.host_id == guest.0 {
        return Err(ApiError::Unprocessable {
            code: "own_listing",
            message: "hosts cannot book their own listing".into(),
        });
    }
    Ok(())
}

/// What prices the listing's nights: its row and the seasons that touch
/// the nights in question.
pub fn price_list(
    property: &properties::Property,
    seasons: &[rates::Rate],
    service_fee_bp: i64,
) -> Result<PriceList, ApiError> {
    let currency = Currency::parse(&property.currency)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored currency: {}", e.message)))?;
    Ok(PriceList {
        currency,
        base_price: property.price_per_night,
        cleaning_fee: property.cleaning_fee,
        pricing: property.pricing(),
        rates: seasons.iter().map(rates::Rate::as_override).collect(),
        service_fee_bp,
    })
}

/// The listing's rules, as committed now, applied to a stay: the refusal a
/// booking of it would get, whatever the calendar says.
pub fn check_stay(
    property: &properties::Property,
    prices: &PriceList,
    dates: &StayDates,
    guests: i64,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut rules = property.rules();
    if let Some(season) = prices.override_min_nights(dates) {
        rules.min_nights = rules.min_nights.max(season);
    }
    let today = property.zone().today(now);
    let refuse = |code: &'static str, message: String| ApiError::Unprocessable { code, message };
    rules
        .check(dates, guests, today)
        .map_err(|breach| match breach {
            RuleBreach::InThePast => refuse(
                "dates_in_past",
                format!(
                    "check_in {} is before today, {today}, where the listing is",
                    dates.check_in()
                ),
            ),
            RuleBreach::TooSoon { days } => refuse(
                "too_soon",
                format!(
                    "this listing needs {days} days' notice: check in on {} or later",
                    today + chrono::Duration::days(days)
                ),
            ),
            RuleBreach::TooFarAhead { days } => refuse(
                "too_far_ahead",
                format!(
                    "this listing takes bookings up to {days} days ahead: check in by {}",
                    today + chrono::Duration::days(days)
                ),
            ),
            RuleBreach::CheckInDay => refuse(
                "check_in_day_not_allowed",
                format!(
                    "check-in is allowed on {}",
                    rules.check_in_days.names().join(", ")
                ),
            ),
            RuleBreach::CheckOutDay => refuse(
                "check_out_day_not_allowed",
                format!(
                    "check-out is allowed on {}",
                    rules.check_out_days.names().join(", ")
                ),
            ),
            RuleBreach::TooManyGuests { max } => refuse(
                "too_many_guests",
                format!("this listing takes at most {max} guests"),
            ),
            RuleBreach::TooFewNights { min } => refuse(
                "stay_too_short",
                format!("the minimum stay for these nights is {min} nights"),
            ),
            RuleBreach::TooManyNights { max } => refuse(
                "stay_too_long",
                format!("this listing's maximum stay is {max} nights"),
            ),
        })
}

/// Cancels a booking (its guest's or host's decision, checked by the caller):
/// its nights are free the moment this returns, and a paid stay's refund
/// (under the listing's policy for its guest, all of it for its host or an
/// admin) is owed in the same transaction.
#[derive(Message, Clone)]
#[rtype(result = "Result<Cancelled, ApiError>")]
pub struct CancelBooking {
    pub booking: BookingId,
    pub by: UserId,
    pub as_: CancelledBy,
    pub commit: Commit<Cancelled>,
}

/// A cancelled booking, and the refund its cancellation owes (if paid).
#[derive(Clone, Debug)]
pub struct Cancelled {
    pub entry: Entry,
    pub refund: Option<RefundQuote>,
}

impl Handler<CancelBooking> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Cancelled, ApiError>>;

    fn handle(&mut self, msg: CancelBooking, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            let property_id = turn.id.0;
            let cancelled = turn
                .db
                .write(move |c| {
                    async move {
                        let now = crate::db::now();
                        let at = now.naive_utc();
                        let property = properties::lock_calendar(c, property_id)
                            .await?
                            .ok_or(ApiError::NotFound("booking"))?;
                        let entry = calendar::find(c, msg.booking.0)
                            .await?
                            .filter(|e| e.property_id == property_id && e.kind == KIND_BOOKING)
                            .ok_or(ApiError::NotFound("booking"))?;
                        let status = effective_status(&entry, now)?;
                        let next = status.apply(Transition::Cancel).map_err(|refused| {
                            ApiError::Unprocessable {
                                code: "invalid_transition",
                                message: refused.to_string(),
                            }
                        })?;
                        // What its cancellation gives back, decided on the
                        // booking as it stood.
                        let paid = payments::for_booking(c, entry.id).await?;
                        let terms =
                            refunds::cancellation_terms(&property, &entry, &paid, msg.as_, now);
                        let cancelled = calendar::set_status(
                            c,
                            entry.id,
                            &entry.status,
                            next.as_str(),
                            Some(msg.by.0),
                            at,
                        )
                        .await?
                        .ok_or(ApiError::Conflict {
                            code: "booking_changed",
                            message: "the booking changed meanwhile; read it and try again",
                        })?;
                        // A lapsed hold cancelled before the sweeper saw it
                        // had freed its nights already; the event says so too.
                        let change = (EventKind::BookingCancelled, Some(&cancelled));
                        let events = events::append(c, &property, &[change], at).await?;
                        let actor = &msg.commit.actor;
                        let mut details = serde_json::json!({
                            "property_id": property_id,
                            "was": status.as_str(),
                            "by": msg.as_,
                        });
                        let refund = (terms.refundable > 0).then_some(terms.quote);
                        if let Some(quote) = &refund {
                            details["refund_owed"] = serde_json::json!(quote.total);
                            details["refund_rule"] = serde_json::json!(quote.rule);
                            details["policy"] = serde_json::json!(property.policy());
                            refunds::owe(
                                c,
                                actor,
                                cancelled.id,
                                &paid,
                                quote,
                                "booking_cancelled",
                                at,
                            )
                            .await?;
                        }
                        let record = AuditRecord::new(
                            Action::BookingCancelled,
                            ObjectType::Booking,
                            Some(cancelled.id),
                        )
                        .with(details);
                        audit_log::record(c, actor, &[record], at).await?;
                        let done = Cancelled {
                            entry: cancelled,
                            refund,
                        };
                        msg.commit.seal(c, &done).await?;
                        Ok::<_, ApiError>((done, events))
                    }
                    .boxed()
                })
                .await?;
            let (done, events) = cancelled;
            turn.committed(events);
            Ok(done)
        })
    }
}

/// Its guest moves a booking to other nights (or another number of
/// guests), re-quoted: a pending one (no payment started) moves in one
/// transaction; a paid, confirmed one moves at once to a stay that costs no
/// more (the difference refunded under the listing's policy, in the same
/// transaction), and to a dearer one only once the difference is paid (a
/// change awaiting payment is recorded; the nights are not held).
#[derive(Message, Clone)]
#[rtype(result = "Result<Changed, ApiError>")]
pub struct ChangeBooking {
    pub booking: BookingId,
    pub guest: UserId,
    pub dates: StayDates,
    pub guests: i64,
    pub service_fee_bp: i64,
    pub commit: Commit<Changed>,
}

/// What a change did: the booking as it now is, the refund a cheaper move
/// owes, or the dearer change awaiting its payment.
#[derive(Clone, Debug)]
pub struct Changed {
    pub entry: Entry,
    pub refund: Option<RefundQuote>,
    pub awaiting: Option<BookingChange>,
}

impl Handler<ChangeBooking> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Changed, ApiError>>;

    fn handle(&mut self, msg: ChangeBooking, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            turn.require_listed()?;
            let property_id = turn.id.0;
            let except = Some(msg.booking.0);
            let stay = Stay {
                guest: msg.guest,
                dates: msg.dates,
                guests: msg.guests,
                service_fee_bp: msg.service_fee_bp,
            };
            turn.rules_first(stay, except, None).await?;
            turn.claim_except(msg.dates, except, |db, _| {
                let msg = msg.clone();
                async move {
                    db.write(move |c| {
                        async move {
                            let now = crate::db::now();
                            change_booking(c, property_id, &msg, now).await
                        }
                        .boxed()
                    })
                    .await
                }
            })
            .await
        })
    }
}

async fn change_booking(
    c: &mut crate::db::Conn<'_>,
    property_id: i64,
    msg: &ChangeBooking,
    now: DateTime<Utc>,
) -> Result<(Changed, Vec<CalendarEvent>), WriteError> {
    let at = now.naive_utc();
    let property = lock_listed(c, property_id).await?;
    let current = calendar::find(c, msg.booking.0)
        .await?
        .filter(|e| e.property_id == property_id && e.kind == KIND_BOOKING)
        .filter(|e| e.guest_id == Some(msg.guest.0))
        .ok_or(ApiError::NotFound("booking"))?;
    let status = effective_status(&current, now)?;
    let paid = payments::for_booking(c, current.id).await?;
    match status {
        BookingStatus::Pending if paid.is_empty() => {}
        // Money may already be on its way for the old price.
        BookingStatus::Pending => {
            return Err(ApiError::Conflict {
                code: "payment_started",
                message: "a payment was started for this booking; wait for it, or cancel and book again",
            }
            .into());
        }
        BookingStatus::Confirmed => {}
        _ => {
            return Err(ApiError::Unprocessable {
                code: "invalid_transition",
                message: "only a pending or confirmed booking can be changed".into(),
            }
            .into());
        }
    }
    let (from, to) = (msg.dates.check_in(), msg.dates.check_out());
    let seasons = rates::touching_locked(c, &property, from, to).await?;
    let prices = price_list(&property, &seasons, msg.service_fee_bp)?;
    check_stay(&property, &prices, &msg.dates, msg.guests, now)?;
    let quote = prices
        .quote(&msg.dates, msg.guests)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("price overflow")))?;
    let expired = calendar::expire_lapsed_holds(c, property_id, from, to, at).await?;
    if calendar::overlapping_other(c, property_id, from, to, at, current.id)
        .await?
        .is_some()
    {
        return Err(WriteError::Taken);
    }
    let detail = serde_json::to_string(&quote).map_err(|e| ApiError::Internal(e.into()))?;
    let old_total = current.total.unwrap_or(0);
    let actor = &msg.commit.actor;
    let mut appended = expirations(&expired);
    audit_log::record(c, &AuditActor::system(), &expiry_records(&expired), at).await?;
    let from_to = |to: serde_json::Value| {
        serde_json::json!({
            "property_id": property_id,
            "from": {"check_in": current.check_in, "check_out": current.check_out,
                     "guests": current.guests, "total": current.total},
            "to": to,
        })
    };
    if status == BookingStatus::Confirmed && quote.total > old_total {
        // Dearer: it waits for the difference to be paid; the booking keeps
        // its nights meanwhile.
        let change = changes::request(
            c,
            &NewChange {
                booking_id: current.id,
                check_in: from,
                check_out: to,
                guests: msg.guests,
                total: quote.total,
                difference: quote.total - old_total,
                price_detail: &detail,
                status: changes::AWAITING_PAYMENT,
                created_at: at,
                updated_at: at,
            },
        )
        .await?;
        let record = AuditRecord::new(
            Action::BookingChangeRequested,
            ObjectType::Booking,
            Some(current.id),
        )
        .with(from_to(
            serde_json::json!({"check_in": from, "check_out": to,
                "guests": msg.guests, "total": quote.total, "difference": change.difference,
                "change_id": change.id}),
        ));
        audit_log::record(c, actor, &[record], at).await?;
        let events = events::append(c, &property, &appended, at).await?;
        let done = Changed {
            entry: current,
            refund: None,
            awaiting: Some(change),
        };
        msg.commit.seal(c, &done).await?;
        return Ok((done, events));
    }
    let moved = NewEntry {
        check_in: from,
        check_out: to,
        guests: Some(msg.guests),
        nights: Some(msg.dates.nights()),
        price_per_night: Some(property.price_per_night),
        cleaning_fee: Some(property.cleaning_fee),
        total: Some(quote.total),
        price_detail: Some(&detail),
        ..Default::default()
    };
    let changed = calendar::move_booking(c, current.id, &current.status, &moved, at)
        .await?
        .ok_or(ApiError::Conflict {
            code: "booking_changed",
            message: "the booking changed meanwhile; read it and try again",
        })?;
    // A paid stay made cheaper: the difference, under the policy.
    let mut refund = None;
    if status == BookingStatus::Confirmed {
        // Another change awaiting payment is moot now.
        if let Some(waiting) = changes::awaiting(c, current.id).await? {
            changes::end(c, waiting.id, changes::SUPERSEDED, at).await?;
        }
        let quote = refunds::change_refund(&property, &current, &changed, &paid, now);
        if quote.total > 0 {
            refunds::owe(c, actor, current.id, &paid, &quote, "booking_changed", at).await?;
        }
        refund = Some(quote);
    }
    appended.push((EventKind::BookingChanged, Some(&changed)));
    let events = events::append(c, &property, &appended, at).await?;
    let mut details = from_to(serde_json::json!({"check_in": changed.check_in,
        "check_out": changed.check_out, "guests": changed.guests, "total": changed.total}));
    if let Some(r) = &refund {
        details["refund"] = serde_json::json!(r.total);
    }
    let record = AuditRecord::new(
        Action::BookingChanged,
        ObjectType::Booking,
        Some(changed.id),
    )
    .with(details);
    audit_log::record(c, actor, &[record], at).await?;
    let done = Changed {
        entry: changed,
        refund,
        awaiting: None,
    };
    msg.commit.seal(c, &done).await?;
    Ok((done, events))
}

/// A booking's status as of `now`: a pending hold past its expiry is expired,
/// whether or not the sweeper has marked it yet.
pub fn effective_status(entry: &Entry, now: DateTime<Utc>) -> Result<BookingStatus, ApiError> {
    let status: BookingStatus = entry.status.parse().map_err(|_| {
        ApiError::Internal(anyhow::anyhow!("stored booking status {:?}", entry.status))
    })?;
    let lapsed = entry.hold_expires_at.is_some_and(|t| t.and_utc() <= now);
    Ok(if status == BookingStatus::Pending && lapsed {
        BookingStatus::Expired
    } else {
        status
    })
}

/// The host blocks nights (maintenance, their own use…).
#[derive(Message, Clone)]
#[rtype(result = "Result<Entry, ApiError>")]
pub struct AddBlock {
    pub by: UserId,
    pub dates: StayDates,
    pub reason: String,
    pub commit: Commit<Entry>,
}

impl Handler<AddBlock> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Entry, ApiError>>;

    fn handle(&mut self, msg: AddBlock, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            turn.require_listed()?;
            let property_id = turn.id.0;
            let added = turn
                .claim(msg.dates, |db, sweep| {
                    let msg = msg.clone();
                    async move {
                        db.write(move |c| {
                            async move {
                                let now = crate::db::now();
                                let property = lock_listed(c, property_id).await?;
                                refuse_past(&property, &msg.dates, now)?;
                                let block = NewEntry {
                                    property_id,
                                    kind: KIND_BLOCK,
                                    status: STATUS_BLOCKED,
                                    check_in: msg.dates.check_in(),
                                    check_out: msg.dates.check_out(),
                                    created_by: msg.by.0,
                                    reason: Some(&msg.reason),
                                    created_at: now.naive_utc(),
                                    updated_at: now.naive_utc(),
                                    ..Default::default()
                                };
                                let added =
                                    (EventKind::BlockAdded, Action::BlockAdded, ObjectType::Block);
                                insert_claim(c, &property, &block, added, &msg.commit, now, sweep)
                                    .await
                            }
                            .boxed()
                        })
                        .await
                    }
                })
                .await;
            if added.is_ok() {
                // The block's transaction sealed the answer.
                msg.commit.committed();
            }
            added
        })
    }
}

/// The host lifts a block.
#[derive(Message, Clone)]
#[rtype(result = "Result<(), ApiError>")]
pub struct RemoveBlock {
    pub block: BlockId,
    pub commit: Commit<()>,
}

impl Handler<RemoveBlock> for PropertyActor {
    type Result = AtomicResponse<Self, Result<(), ApiError>>;

    fn handle(&mut self, msg: RemoveBlock, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            let property_id = turn.id.0;
            let events = turn
                .db
                .write(move |c| {
                    async move {
                        let now = crate::db::now().naive_utc();
                        let property = properties::lock_calendar(c, property_id)
                            .await?
                            .ok_or(ApiError::NotFound("block"))?;
                        let removed = calendar::delete_block(c, property_id, msg.block.0)
                            .await?
                            .ok_or(ApiError::NotFound("block"))?;
                        let change = (EventKind::BlockRemoved, Some(&removed));
                        let record = AuditRecord::new(
                            Action::BlockRemoved,
                            ObjectType::Block,
                            Some(removed.id),
                        )
                        .with(claim_details(
                            removed.property_id,
                            (removed.check_in, removed.check_out),
                            removed.guests,
                            removed.total,
                            removed.currency.as_deref(),
                        ));
                        let audit = audit_log::rows(&msg.commit.actor, &[record], now);
                        let events =
                            events::append_audited(c, &property, &[change], audit, now).await?;
                        msg.commit.seal(c, &()).await?;
                        Ok::<_, ApiError>(events)
                    }
                    .boxed()
                })
                .await?;
            turn.committed(events);
            Ok(())
        })
    }
}

/// The host deletes the listing: refused while it has upcoming bookings.
#[derive(Message, Clone)]
#[rtype(result = "Result<(), ApiError>")]
pub struct Delist {
    pub commit: Commit<()>,
}

impl Handler<Delist> for PropertyActor {
    type Result = AtomicResponse<Self, Result<(), ApiError>>;

    fn handle(&mut self, msg: Delist, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            turn.require_listed()?;
            let property_id = turn.id.0;
            let events = turn
                .db
                .write(move |c| delist(c, property_id, msg.commit).boxed())
                .await?;
            turn.committed(events);
            Ok(())
        })
    }
}

/// Delisting's transaction: the listing marked deleted unless it has
/// upcoming bookings, its `listing_removed` event and its audit row.
async fn delist(
    c: &mut crate::db::Conn<'_>,
    property_id: i64,
    commit: Commit<()>,
) -> Result<Vec<CalendarEvent>, ApiError> {
    let now = crate::db::now();
    // The lock first: any booking in flight commits
    // before this looks for upcoming bookings.
    let property = lock_listed(c, property_id).await?;
    if !properties::mark_deleted(c, property_id, now.naive_utc()).await? {
        return Err(ApiError::NotFound("property"));
    }
    if calendar::has_upcoming_bookings(c, property_id, property.zone().today(now), now.naive_utc())
        .await?
    {
        return Err(ApiError::Conflict {
            code: "has_upcoming_bookings",
            message: "this listing has upcoming bookings; cancel them first",
        });
    }
    let change = (EventKind::ListingRemoved, None);
    let events = events::append(c, &property, &[change], now.naive_utc()).await?;
    let record = AuditRecord::new(
        Action::PropertyDeleted,
        ObjectType::Property,
        Some(property_id),
    );
    audit_log::record(c, &commit.actor, &[record], now.naive_utc()).await?;
    commit.seal(c, &()).await?;
    Ok(events)
}

/// The nights taken inside `window`, from memory.
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<(StayDates, Busy)>, ApiError>")]
pub struct GetAvailability {
    pub window: StayDates,
}

impl Handler<GetAvailability> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Vec<(StayDates, Busy)>, ApiError>>;

    fn handle(&mut self, msg: GetAvailability, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            turn.require_listed()?;
            turn.with(|l| l.calendar.unavailable(&msg.window, crate::db::now()))
        })
    }
}

/// The listing's live claims and the event they are current as of: what a
/// new subscriber starts from.
pub struct Snapshot {
    pub seq: i64,
    pub claims: Vec<Claim>,
}

#[derive(Message, Clone)]
#[rtype(result = "Result<Snapshot, ApiError>")]
pub struct GetSnapshot;

impl Handler<GetSnapshot> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Snapshot, ApiError>>;

    fn handle(&mut self, _: GetSnapshot, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            turn.require_listed()?;
            turn.with(|l| Snapshot {
                seq: l.seq,
                claims: l.calendar.live(crate::db::now()),
            })
        })
    }
}

/// An event another node committed, relayed through Redis or read from the log.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relayed(pub Arc<CalendarEvent>);

impl Handler<Relayed> for PropertyActor {
    type Result = ();

    fn handle(&mut self, msg: Relayed, _: &mut Context<Self>) {
        // Handled between turns, never inside one.
        let mut state = self.state.borrow_mut();
        if let Some(loaded) = state.as_mut()
            && !loaded.follow(&msg.0)
        {
            tracing::debug!(property = %self.id, seq = msg.0.seq, "missed an event; will reload");
            *state = None;
        }
    }
}

/// A gateway's event about one of this listing's bookings' payments,
/// processed once and in one transaction: the event recorded as processed,
/// the payment moved on (never back), the booking confirmed (or its hold
/// extended while the payment is processing), the calendar event and the
/// audit rows. A payment that succeeds with no stay left to sell is marked
/// owed a refund, which the caller makes.
#[derive(Message, Clone)]
#[rtype(result = "Result<Settled, ApiError>")]
pub struct SettlePayment {
    pub gateway: String,
    pub event: GatewayEvent,
    /// Roost's payment row.
    pub payment: i64,
    /// How long a processing payment keeps its hold, at least.
    pub processing_hold: Duration,
    pub actor: AuditActor,
}

/// What settling an event did.
#[derive(Clone, Debug)]
pub enum Settled {
    /// This event had been processed: nothing changed.
    Duplicate,
    /// Processed, but it moved nothing (a late `processing` after success…).
    Unchanged(Payment),
    Processing(Payment),
    Failed(Payment),
    Confirmed(Box<Payment>, Box<Entry>),
    /// Paid, with no stay to sell: its refund is owed (sent next).
    RefundOwed(Payment),
    /// A change's difference paid, but its nights were taken meanwhile (or
    /// the booking moved on): the booking stays as it was, the payment's
    /// refund is owed.
    ChangeUnavailable(Payment, Box<BookingChange>),
    /// The gateway's word of a refund.
    Refund(Box<RefundSettled>),
}

/// A hold extended for a processing payment never lives longer than this
/// after it was made.
const MAX_HOLD: chrono::Duration = chrono::Duration::hours(24);

impl Handler<SettlePayment> for PropertyActor {
    type Result = AtomicResponse<Self, Result<Settled, ApiError>>;

    fn handle(&mut self, msg: SettlePayment, _: &mut Context<Self>) -> Self::Result {
        self.turn(move |turn| async move {
            let property_id = turn.id.0;
            let (settled, events) = turn
                .db
                .write(move |c| {
                    async move {
                        let now = crate::db::now();
                        settle(c, property_id, &msg, now).await
                    }
                    .boxed()
                })
                .await?;
            turn.committed(events);
            Ok(settled)
        })
    }
}

fn payment_record(action: Action, payment: &Payment, details: serde_json::Value) -> AuditRecord {
    AuditRecord::new(action, ObjectType::Payment, Some(payment.id)).with(details)
}

async fn settle(
    c: &mut crate::db::Conn<'_>,
    property_id: i64,
    msg: &SettlePayment,
    now: DateTime<Utc>,
) -> Result<(Settled, Vec<CalendarEvent>), ApiError> {
    let at = now.naive_utc();
    let property = properties::lock_calendar(c, property_id)
        .await?
        .ok_or(ApiError::NotFound("property"))?;
    let event = &msg.event;
    if !payments::record_event(c, &msg.gateway, &event.id, event.kind.as_str(), at).await? {
        return Ok((Settled::Duplicate, Vec::new()));
    }
    let mut payment = payments::find(c, msg.payment)
        .await?
        .ok_or(ApiError::NotFound("payment"))?;
    let actor = &msg.actor;
    let reported = match &event.subject {
        Subject::Payment(reported) => reported,
        Subject::Refund(reported) => {
            let settled =
                refunds::settle(c, actor, &payment, event.kind, reported, &event.id, at).await?;
            return Ok((Settled::Refund(Box::new(settled)), Vec::new()));
        }
    };
    let entry = calendar::find(c, payment.booking_id)
        .await?
        .filter(|e| e.property_id == property_id)
        .ok_or(ApiError::NotFound("booking"))?;
    let status = PaymentStatus::parse(&payment.status).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "stored payment status {:?}",
            payment.status
        ))
    })?;
    if let Some(card) = &reported.card {
        payment.card_brand = Some(card.brand.clone());
        payment.card_last4 = Some(card.last4.clone());
    }
    payment.updated_at = at;
    let money = serde_json::json!({
        "booking_id": entry.id,
        "amount": payment.amount,
        "currency": payment.currency,
        "event_id": event.id,
    });
    match event.kind {
        // A refund's events carry a refund (settled above).
        GatewayEventKind::RefundSucceeded | GatewayEventKind::RefundFailed => {
            Ok((Settled::Unchanged(payment), Vec::new()))
        }
        GatewayEventKind::PaymentProcessing => {
            if status != PaymentStatus::RequiresPaymentMethod {
                return Ok((Settled::Unchanged(payment), Vec::new()));
            }
            payment.status = PaymentStatus::Processing.as_str().into();
            payment.failure_reason = None;
            let payment = payments::save(c, &payment).await?;
            let mut events = Vec::new();
            let mut details = money.clone();
            // While it processes, its hold does not lapse.
            let lapsed = effective_status(&entry, now)? != BookingStatus::Pending;
            let hold = chrono::Duration::from_std(msg.processing_hold)
                .map_err(|e| ApiError::Internal(e.into()))?;
            if let (false, Some(until)) = (lapsed, entry.hold_expires_at) {
                let wanted = (at + hold).min(entry.created_at + MAX_HOLD);
                if wanted > until
                    && let Some(held) = calendar::extend_hold(c, entry.id, wanted, at).await?
                {
                    details["hold_extended_to"] = serde_json::json!(wanted.and_utc());
                    let change = (EventKind::BookingHeld, Some(&held));
                    events = events::append(c, &property, &[change], at).await?;
                }
            }
            let record = payment_record(Action::PaymentProcessing, &payment, details);
            audit_log::record(c, actor, &[record], at).await?;
            Ok((Settled::Processing(payment), events))
        }
        GatewayEventKind::PaymentFailed => {
            if status.is_paid() {
                return Ok((Settled::Unchanged(payment), Vec::new()));
            }
            payment.status = PaymentStatus::RequiresPaymentMethod.as_str().into();
            payment.failure_reason = Some(
                reported
                    .failure
                    .clone()
                    .unwrap_or_else(|| "card_declined".into()),
            );
            let payment = payments::save(c, &payment).await?;
            let mut details = money.clone();
            details["reason"] = serde_json::json!(payment.failure_reason);
            let record = payment_record(Action::PaymentFailed, &payment, details);
            audit_log::record(c, actor, &[record], at).await?;
            Ok((Settled::Failed(payment), Vec::new()))
        }
        GatewayEventKind::PaymentSucceeded => {
            if status.is_paid() {
                return Ok((Settled::Unchanged(payment), Vec::new()));
            }
            if let Some(change) = payment.change_id {
                return settle_change(c, &property, &entry, payment, change, money, actor, now)
                    .await;
            }
            payment.status = PaymentStatus::Succeeded.as_str().into();
            payment.failure_reason = None;
            let booking = effective_status(&entry, now)?;
            let late = booking == BookingStatus::Expired;
            let free = match booking {
                BookingStatus::Pending => true,
                // Paid after the hold lapsed: the stay is still sold if
                // no one else has taken its nights since.
                BookingStatus::Expired => {
                    calendar::overlapping(c, property_id, entry.check_in, entry.check_out, at)
                        .await?
                        .is_none()
                }
                _ => false,
            };
            if !free {
                let reason = match booking {
                    BookingStatus::Expired => "hold_lapsed",
                    BookingStatus::Cancelled => "booking_cancelled",
                    _ => "already_paid",
                };
                payment.status = PaymentStatus::Succeeded.as_str().into();
                let payment = payments::save(c, &payment).await?;
                let mut details = money.clone();
                details["refund"] = serde_json::json!(reason);
                let records = vec![payment_record(Action::PaymentSucceeded, &payment, details)];
                audit_log::record(c, actor, &records, at).await?;
                // All of it goes back.
                let whole = RefundQuote::whole(&entry.sold(), payment.refundable());
                let paid = [payment.clone()];
                refunds::owe(c, actor, entry.id, &paid, &whole, reason, at).await?;
                let mut records = Vec::new();
                let mut events = Vec::new();
                // A lapsed hold the sweeper had not reached yet: expired now.
                if entry.status == BookingStatus::Pending.as_str() {
                    let expired = calendar::expire_holds(c, vec![entry.id], at).await?;
                    events = events::append(c, &property, &expirations(&expired), at).await?;
                    records.extend(expiry_records(&expired));
                }
                audit_log::record(c, actor, &records, at).await?;
                return Ok((Settled::RefundOwed(payment), events));
            }
            let transition = if late {
                Transition::ConfirmLate
            } else {
                Transition::Confirm
            };
            let next = booking
                .apply(transition)
                .map_err(|refused| ApiError::Internal(refused.into()))?;
            let confirmed =
                calendar::set_status(c, entry.id, &entry.status, next.as_str(), None, at)
                    .await?
                    .ok_or(ApiError::Conflict {
                        code: "booking_changed",
                        message: "the booking changed meanwhile",
                    })?;
            let payment = payments::save(c, &payment).await?;
            let change = (EventKind::BookingConfirmed, Some(&confirmed));
            let records = [
                payment_record(Action::PaymentSucceeded, &payment, money),
                AuditRecord::new(
                    Action::BookingConfirmed,
                    ObjectType::Booking,
                    Some(confirmed.id),
                )
                .with(serde_json::json!({"payment_id": payment.id, "late": late})),
            ];
            let audit = audit_log::rows(actor, &records, at);
            let events = events::append_audited(c, &property, &[change], audit, at).await?;
            Ok((
                Settled::Confirmed(Box::new(payment), Box::new(confirmed)),
                events,
            ))
        }
    }
}

/// A change's difference paid: the booking moves to the change's nights in
/// this transaction, if they are free and the booking is still the
/// confirmed one the change was asked of; otherwise it stays as it was and
/// the payment goes back whole.
#[allow(clippy::too_many_arguments)]
async fn settle_change(
    c: &mut crate::db::Conn<'_>,
    property: &properties::Headed,
    entry: &Entry,
    mut payment: Payment,
    change_id: i64,
    money: serde_json::Value,
    actor: &AuditActor,
    now: DateTime<Utc>,
) -> Result<(Settled, Vec<CalendarEvent>), ApiError> {
    let at = now.naive_utc();
    payment.status = PaymentStatus::Succeeded.as_str().into();
    payment.failure_reason = None;
    let payment = payments::save(c, &payment).await?;
    let mut records = vec![payment_record(Action::PaymentSucceeded, &payment, money)];
    let change = changes::find(c, change_id)
        .await?
        .ok_or(ApiError::NotFound("change"))?;
    let applicable = effective_status(entry, now)? == BookingStatus::Confirmed
        && change.status == changes::AWAITING_PAYMENT;
    let free = applicable
        && calendar::overlapping_other(
            c,
            property.id,
            change.check_in,
            change.check_out,
            at,
            entry.id,
        )
        .await?
        .is_none();
    let from = serde_json::json!({"check_in": entry.check_in, "check_out": entry.check_out,
                                  "guests": entry.guests, "total": entry.total});
    if free {
        let moved = NewEntry {
            check_in: change.check_in,
            check_out: change.check_out,
            guests: Some(change.guests),
            nights: Some((change.check_out - change.check_in).num_days()),
            price_per_night: Some(property.price_per_night),
            cleaning_fee: Some(property.cleaning_fee),
            total: Some(change.total),
            price_detail: Some(&change.price_detail),
            ..Default::default()
        };
        let changed = calendar::move_booking(c, entry.id, &entry.status, &moved, at)
            .await?
            .ok_or(ApiError::Conflict {
                code: "booking_changed",
                message: "the booking changed meanwhile",
            })?;
        changes::end(c, change.id, changes::APPLIED, at).await?;
        let events = events::append(
            c,
            property,
            &[(EventKind::BookingChanged, Some(&changed))],
            at,
        )
        .await?;
        records.push(
            AuditRecord::new(
                Action::BookingChanged,
                ObjectType::Booking,
                Some(changed.id),
            )
            .with(
                serde_json::json!({"property_id": property.id, "change_id": change.id,
                    "payment_id": payment.id, "from": from,
                    "to": {"check_in": changed.check_in, "check_out": changed.check_out,
                           "guests": changed.guests, "total": changed.total}}),
            ),
        );
        audit_log::record(c, actor, &records, at).await?;
        return Ok((
            Settled::Confirmed(Box::new(payment), Box::new(changed)),
            events,
        ));
    }
    let change = if change.status == changes::AWAITING_PAYMENT {
        changes::end(c, change.id, changes::UNAVAILABLE, at)
            .await?
            .unwrap_or(change)
    } else {
        change
    };
    records.push(
        AuditRecord::new(
            Action::BookingChangeFailed,
            ObjectType::Booking,
            Some(entry.id),
        )
        .with(
            serde_json::json!({"property_id": property.id, "change_id": change.id,
                "payment_id": payment.id, "change_status": change.status, "kept": from}),
        ),
    );
    audit_log::record(c, actor, &records, at).await?;
    let whole = RefundQuote::whole(&entry.sold(), payment.refundable());
    refunds::owe(
        c,
        actor,
        entry.id,
        std::slice::from_ref(&payment),
        &whole,
        "change_unavailable",
        at,
    )
    .await?;
    Ok((
        Settled::ChangeUnavailable(payment, Box::new(change)),
        Vec::new(),
    ))
}
