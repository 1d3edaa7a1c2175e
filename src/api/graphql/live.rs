//! GraphQL subscriptions: a listing's calendar and my user channel, over
//! `/graphql/ws` (see `socket.rs`), by the same rules as `/ws`.
//!
//! `calendar(propertyId, sinceSeq)` starts with a snapshot (or, resuming,
//! a `CalendarResumed` and exactly the events after `sinceSeq`), then
//! every event in seq order with no gaps: one that arrives ahead of one
//! missed makes the feed read the missing ones from the log first. A feed
//! that cannot keep up ends its connection as too slow (close 4000), as a
//! `/ws` session does; the client reconnects and resumes from its last seq.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::web;
use async_graphql::{Context, ID, Json, SimpleObject, Subscription, Union};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::Stream;
use tokio::sync::mpsc;

use super::pricing::NightsTaken;
use super::types::{fail, id_of, signed_in, state};
use crate::actors::bus::{Audience, Deliver, EventBus, Notice, SessionId};
use crate::actors::session::{Control, Ending, MAX_HELD, Synced, read_sync};
use crate::domain::event::Effect;
use crate::domain::{CalendarEvent, PropertyId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, async_graphql::Error>;

/// Where one connection's events go: to each of its subscriptions' feeds.
/// The connection's actor is the bus member; it hands what the bus
/// delivers to [`Feeds::deliver`].
pub struct Feeds {
    bus: Arc<EventBus>,
    session: SessionId,
    control: Arc<Control>,
    max_subscriptions: usize,
    routes: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    next: u64,
    calendars: HashMap<u64, (PropertyId, mpsc::Sender<Arc<CalendarEvent>>)>,
    mine: HashMap<u64, mpsc::Sender<Mine>>,
}

/// What reaches a `myEvents` feed.
enum Mine {
    Booking(Arc<CalendarEvent>),
    Notice(Arc<Notice>),
}

/// A subscription's place in [`Feeds`]; dropping it (the subscription
/// completed, or its connection closed) takes it out.
struct Route {
    feeds: Arc<Feeds>,
    id: u64,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.feeds.remove(self.id);
    }
}

impl Feeds {
    pub fn new(
        bus: Arc<EventBus>,
        session: SessionId,
        control: Arc<Control>,
        max_subscriptions: usize,
    ) -> Self {
        Self {
            bus,
            session,
            control,
            max_subscriptions,
            routes: Mutex::new(Routes::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        // Every change below leaves the maps consistent before it can panic.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new calendar feed: events for `property` from now on, queued
    /// until it reads them.
    fn follow(
        self: &Arc<Self>,
        property: PropertyId,
    ) -> std::result::Result<(Route, mpsc::Receiver<Arc<CalendarEvent>>), ApiError> {
        let (tx, rx) = mpsc::channel(MAX_HELD);
        let mut routes = self.lock();
        self.room_for_one(&routes)?;
        routes.next += 1;
        let id = routes.next;
        routes.calendars.insert(id, (property, tx));
        self.bus.subscribe(self.session, property);
        let route = Route {
            feeds: self.clone(),
            id,
        };
        Ok((route, rx))
    }

    /// A new feed of the connection's user channel.
    fn mine(self: &Arc<Self>) -> std::result::Result<(Route, mpsc::Receiver<Mine>), ApiError> {
        let (tx, rx) = mpsc::channel(MAX_HELD);
        let mut routes = self.lock();
        self.room_for_one(&routes)?;
        routes.next += 1;
        let id = routes.next;
        routes.mine.insert(id, tx);
        let route = Route {
            feeds: self.clone(),
            id,
        };
        Ok((route, rx))
    }

    /// A connection runs at most `max_subscriptions` subscriptions of
    /// either kind (each holds a queue).
    fn room_for_one(&self, routes: &Routes) -> std::result::Result<(), ApiError> {
        let limit = self.max_subscriptions;
        if routes.calendars.len() + routes.mine.len() < limit {
            return Ok(());
        }
        Err(ApiError::BadRequest {
            code: "too_many_subscriptions",
            message: format!("a connection may run at most {limit} subscriptions"),
            details: None,
        })
    }

    fn remove(&self, id: u64) {
        let mut routes = self.lock();
        routes.mine.remove(&id);
        if let Some((property, _)) = routes.calendars.remove(&id) {
            let still = routes.calendars.values().any(|(p, _)| *p == property);
            if !still {
                self.bus.unsubscribe(self.session, property);
            }
        }
    }

    /// Hands what the bus delivered to the feeds that want it. A feed
    /// whose queue is full ends the connection as too slow.
    pub fn deliver(&self, message: Deliver) {
        let routes = self.lock();
        let mut full = false;
        match message {
            Deliver::Calendar(event) => {
                for (property, tx) in routes.calendars.values() {
                    if *property == event.property_id {
                        full |= is_full(tx.try_send(event.clone()));
                    }
                }
            }
            Deliver::Personal(event) => {
                for tx in routes.mine.values() {
                    full |= is_full(tx.try_send(Mine::Booking(event.clone())));
                }
            }
            Deliver::Notice(notice) => {
                if let Audience::User(_) = notice.to {
                    for tx in routes.mine.values() {
                        full |= is_full(tx.try_send(Mine::Notice(notice.clone())));
                    }
                }
            }
        }
        if full {
            self.control.end(Ending::SlowConsumer);
        }
    }
}

fn is_full<T>(sent: std::result::Result<(), mpsc::error::TrySendError<T>>) -> bool {
    matches!(sent, Err(mpsc::error::TrySendError::Full(_)))
}

fn feeds<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Feeds>> {
    ctx.data::<Arc<Feeds>>().map_err(|_| {
        fail(ApiError::BadRequest {
            code: "subscriptions_over_websocket",
            message: "subscriptions are served over the websocket at /graphql/ws \
                      (graphql-transport-ws)"
                .into(),
            details: None,
        })
    })
}

/// A night claim in a snapshot.
#[derive(SimpleObject)]
pub struct CalendarClaim {
    pub entry_id: ID,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub busy: NightsTaken,
    pub hold_expires_at: Option<DateTime<Utc>>,
}

/// The listing's whole calendar as of `seq`.
#[derive(SimpleObject)]
pub struct CalendarSnapshot {
    pub property_id: ID,
    pub seq: i64,
    pub unavailable: Vec<CalendarClaim>,
}

/// Resuming: the events after `sinceSeq` follow, up to `seq`.
#[derive(SimpleObject)]
pub struct CalendarResumed {
    pub property_id: ID,
    pub since_seq: i64,
    pub seq: i64,
}

/// One change to the calendar, `seq` one more than the last.
#[derive(SimpleObject)]
pub struct CalendarChange {
    pub property_id: ID,
    pub seq: i64,
    /// `booking_held`, `booking_confirmed`, `block_added`, …
    pub kind: &'static str,
    pub entry_id: Option<ID>,
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    pub status: Option<&'static str>,
    /// How the nights are taken now (null: this freed them).
    pub busy: Option<NightsTaken>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

impl From<&CalendarEvent> for CalendarChange {
    fn from(e: &CalendarEvent) -> Self {
        Self {
            property_id: ID(e.property_id.0.to_string()),
            seq: e.seq,
            kind: e.kind.as_str(),
            entry_id: e.entry_id.map(|id| ID(id.to_string())),
            check_in: e.check_in,
            check_out: e.check_out,
            status: e.kind.status(),
            busy: match e.effect() {
                Some(Effect::Claim(claim)) => Some(claim.busy.into()),
                _ => None,
            },
            hold_expires_at: e.hold_expires_at,
            at: e.at,
        }
    }
}

#[derive(Union)]
pub enum CalendarUpdate {
    Snapshot(CalendarSnapshot),
    Resumed(CalendarResumed),
    Change(CalendarChange),
}

/// One of my bookings (as its guest, or as its listing's host) changed.
#[derive(SimpleObject)]
pub struct BookingUpdate {
    pub kind: &'static str,
    pub booking_id: Option<ID>,
    pub property_id: ID,
    pub status: Option<&'static str>,
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    /// `guest` or `host`: which of them I am.
    pub role: &'static str,
    pub at: DateTime<Utc>,
}

/// A payment's outcome, a refund, a review of me published: the frame
/// `/ws` sends, as it is (`data.type` names it).
#[derive(SimpleObject)]
pub struct AccountNotice {
    #[graphql(name = "type")]
    pub kind: String,
    pub data: Json<serde_json::Value>,
}

#[derive(Union)]
pub enum MyEvent {
    Booking(BookingUpdate),
    Notice(AccountNotice),
}

/// One calendar subscription's state between events.
struct CalendarFeed {
    state: web::Data<AppState>,
    property: PropertyId,
    /// The last seq the client has.
    delivered: i64,
    ready: VecDeque<CalendarUpdate>,
    events: mpsc::Receiver<Arc<CalendarEvent>>,
    /// An event ahead of `delivered + 1`, waiting for the log read.
    ahead: Option<Arc<CalendarEvent>>,
    done: bool,
    _route: Route,
}

impl CalendarFeed {
    /// Puts what a sync read found in front of the client; `resuming`
    /// announces a resume first.
    fn synced(&mut self, synced: Synced, resuming: bool) {
        match synced {
            Synced::Snapshot(snapshot) => {
                self.delivered = snapshot.seq;
                let unavailable = snapshot
                    .claims
                    .iter()
                    .map(|c| CalendarClaim {
                        entry_id: ID(c.id.to_string()),
                        check_in: c.dates.check_in(),
                        check_out: c.dates.check_out(),
                        busy: c.busy.into(),
                        hold_expires_at: c.held_until,
                    })
                    .collect();
                self.ready
                    .push_back(CalendarUpdate::Snapshot(CalendarSnapshot {
                        property_id: ID(self.property.0.to_string()),
                        seq: snapshot.seq,
                        unavailable,
                    }));
            }
            Synced::Events { since, events } => {
                if resuming {
                    let seq = events.last().map_or(since, |e| e.seq);
                    self.ready
                        .push_back(CalendarUpdate::Resumed(CalendarResumed {
                            property_id: ID(self.property.0.to_string()),
                            since_seq: since,
                            seq,
                        }));
                }
                self.delivered = self.delivered.max(since);
                for event in &events {
                    if event.seq > self.delivered {
                        self.delivered = event.seq;
                        self.ready
                            .push_back(CalendarUpdate::Change(CalendarChange::from(event)));
                    }
                }
            }
        }
        self.state.bus.observe(self.property, self.delivered);
    }

    /// The next update, or `None` when the feed (or its connection) ends.
    async fn next(mut self) -> Option<(Result<CalendarUpdate>, Self)> {
        loop {
            if let Some(update) = self.ready.pop_front() {
                return Some((Ok(update), self));
            }
            if self.done {
                return None;
            }
            let event = match self.ahead.take() {
                Some(event) => event,
                None => self.events.recv().await?,
            };
            if event.seq <= self.delivered {
                continue;
            }
            if event.seq == self.delivered + 1 {
                self.delivered = event.seq;
                let change = CalendarChange::from(event.as_ref());
                self.ready.push_back(CalendarUpdate::Change(change));
                continue;
            }
            // Ahead of one this client has not had: read the gap from the log.
            let since = Some(self.delivered);
            match read_sync(self.state.clone(), self.property, since).await {
                Ok(synced) => {
                    self.synced(synced, false);
                    self.ahead = Some(event);
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(fail(e)), self));
                }
            }
        }
    }
}

/// One `myEvents` subscription.
struct MyFeed {
    user: UserId,
    events: mpsc::Receiver<Mine>,
    _route: Route,
}

impl MyFeed {
    async fn next(mut self) -> Option<(MyEvent, Self)> {
        let event = match self.events.recv().await? {
            Mine::Booking(e) => MyEvent::Booking(BookingUpdate {
                kind: e.kind.as_str(),
                booking_id: e.entry_id.map(|id| ID(id.to_string())),
                property_id: ID(e.property_id.0.to_string()),
                status: e.kind.status(),
                check_in: e.check_in,
                check_out: e.check_out,
                role: if e.guest_id == Some(self.user) {
                    "guest"
                } else {
                    "host"
                },
                at: e.at,
            }),
            Mine::Notice(n) => MyEvent::Notice(AccountNotice {
                kind: n
                    .frame
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("notice")
                    .to_owned(),
                data: Json(n.frame.clone()),
            }),
        };
        Some((event, self))
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// A listing's calendar: a snapshot (or, with `sinceSeq`, the events
    /// after it), then every change in seq order. Anyone may follow; no
    /// update names a guest.
    async fn calendar(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        since_seq: Option<i64>,
    ) -> Result<impl Stream<Item = Result<CalendarUpdate>> + use<>> {
        let property = PropertyId(id_of(&property_id, "property_id")?);
        if since_seq.is_some_and(|s| s < 0) {
            return Err(fail(ApiError::validation(crate::domain::FieldError::new(
                "since_seq",
                "out_of_range",
                "must be 0 or more",
            ))));
        }
        let feeds = feeds(ctx)?;
        let state = state(ctx)?.clone();
        // Follow first, then read: nothing committed in between is missed.
        let (route, events) = feeds.follow(property).map_err(fail)?;
        let synced = read_sync(state.clone(), property, since_seq)
            .await
            .map_err(fail)?;
        let mut feed = CalendarFeed {
            state,
            property,
            delivered: 0,
            ready: VecDeque::new(),
            events,
            ahead: None,
            done: false,
            _route: route,
        };
        feed.synced(synced, since_seq.is_some());
        Ok(futures_util::stream::unfold(feed, CalendarFeed::next))
    }

    /// My user channel: my bookings' changes (as guest or host), and my
    /// payments' and reviews' notices. Signed in only.
    async fn my_events(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = MyEvent> + use<>> {
        let user = signed_in(ctx)?.id;
        let (route, events) = feeds(ctx)?.mine().map_err(fail)?;
        let feed = MyFeed {
            user,
            events,
            _route: route,
        };
        Ok(futures_util::stream::unfold(feed, MyFeed::next))
    }
}
