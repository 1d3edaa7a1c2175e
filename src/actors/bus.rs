//! `EventBus` owns this node's routes from committed calendar events to the
//! websocket sessions that follow them: by listing (calendars) and by user
//! (a guest's own bookings, a host's listings' bookings).
//!
//! Delivery never waits: each session has a bounded mailbox, and a session
//! whose mailbox is full is ended as too slow (it resumes with `since_seq`)
//! rather than buffered without limit. Events a property actor commits here
//! are also handed to the Redis relay ([`super::relay`]) for other nodes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use actix::dev::SendError;
use actix::prelude::*;
use tokio::sync::mpsc;

use super::session::{Control, Ending};
use crate::domain::{CalendarEvent, PropertyId, UserId};
use crate::http::metrics::Metrics;

pub type SessionId = u64;

/// An event for one session: on a listing it follows, or on its user channel.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum Deliver {
    Calendar(Arc<CalendarEvent>),
    Personal(Arc<CalendarEvent>),
    /// A frame for the user alone (a payment's outcome), sent as it is.
    Notice(Arc<Notice>),
}

/// A frame that is not a calendar event, sent as it is: for one user's
/// channel (a payment succeeded, failed or was refunded; a review of them
/// was published), or for a listing's subscribers (a review of it was
/// published: the rating and counts, nobody's identity). Live only: a
/// client that was away reads the resource (`GET /api/v1/bookings/{id}`,
/// `GET /api/v1/properties/{id}/reviews`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    pub to: Audience,
    pub frame: serde_json::Value,
}

/// Who hears a notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    User(UserId),
    Listing(PropertyId),
}

impl Notice {
    pub fn to_user(user: UserId, frame: serde_json::Value) -> Self {
        Self {
            to: Audience::User(user),
            frame,
        }
    }

    pub fn to_listing(listing: PropertyId, frame: serde_json::Value) -> Self {
        Self {
            to: Audience::Listing(listing),
            frame,
        }
    }
}

/// What this node sends other nodes through Redis.
#[derive(Clone, Debug)]
pub enum Outbound {
    Event(Arc<CalendarEvent>),
    Notice(Arc<Notice>),
    /// A listing's searchable row changed (see [`Follower::listing_changed`]).
    ListingChanged(PropertyId),
    /// A user's sign-ins may no longer hold (see `crate::auth::cache`).
    UserChanged(UserId),
}

/// Something that follows every listing, not a session: it sees each
/// event before any session does, whatever its source and even if it was
/// dispatched before, and hears of listing rows that changed. The search
/// index (`crate::search`) and the listing cache
/// (`crate::services::listing_cache`) are.
pub trait Follower: Send + Sync {
    fn event(&self, event: &CalendarEvent);
    fn listing_changed(&self, property: PropertyId);
}

/// Where an event came from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Committed by this node's actor.
    Local,
    /// Another node's, through Redis.
    Redis,
    /// Read from the event log (catching up).
    Log,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Redis => "redis",
            Source::Log => "log",
        }
    }
}

/// Redis, as far as this node can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RedisLink {
    /// No `REDIS_URL`: events reach other nodes through the log only.
    Disabled = 0,
    Up = 1,
    /// Configured but unreachable: local sessions are served; other nodes'
    /// events are read from the log until it is back.
    Down = 2,
}

pub struct EventBus {
    /// This process, in the Redis envelopes (so it skips its own).
    node: String,
    routes: Mutex<Routes>,
    outbox: OnceLock<mpsc::Sender<Outbound>>,
    followers: OnceLock<Vec<Arc<dyn Follower>>>,
    redis: AtomicU8,
    next_session: AtomicU64,
    max_per_ip: usize,
    metrics: Metrics,
}

struct Member {
    /// Shared, not cloned, when sending: a clone of a `Recipient` is a new
    /// sender that does not know the mailbox filled.
    recipient: Arc<Recipient<Deliver>>,
    control: Arc<Control>,
    user: Option<UserId>,
    ip: IpAddr,
    properties: HashSet<PropertyId>,
}

#[derive(Default)]
struct Routes {
    members: HashMap<SessionId, Member>,
    by_property: HashMap<PropertyId, HashSet<SessionId>>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    per_ip: HashMap<IpAddr, usize>,
    /// The highest seq dispatched here, per listing: an event at or below it
    /// (our own echoed back, or read from the log twice) is not sent again.
    dispatched: HashMap<PropertyId, i64>,
}

/// The session's place on the bus; leaving is dropping it.
pub struct Membership {
    bus: Arc<EventBus>,
    pub id: SessionId,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.bus.leave(self.id);
    }
}

/// The client's IP already has as many connections as it may.
#[derive(Debug)]
pub struct TooManyConnections;

impl EventBus {
    pub fn new(max_per_ip: usize, metrics: Metrics) -> Self {
        Self {
            node: uuid::Uuid::new_v4().simple().to_string(),
            routes: Mutex::new(Routes::default()),
            outbox: OnceLock::new(),
            followers: OnceLock::new(),
            redis: AtomicU8::new(RedisLink::Disabled as u8),
            next_session: AtomicU64::new(1),
            max_per_ip,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        // Every change below leaves the maps consistent before it can panic.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where this node's committed events go for Redis (set once, at start).
    pub fn set_outbox(&self, outbox: mpsc::Sender<Outbound>) {
        let _ = self.outbox.set(outbox);
    }

    /// Who follows every listing (set once, at start).
    pub fn set_followers(&self, followers: Vec<Arc<dyn Follower>>) {
        let _ = self.followers.set(followers);
    }

    fn followers(&self) -> &[Arc<dyn Follower>] {
        self.followers.get().map(Vec::as_slice).unwrap_or_default()
    }

    /// A listing's row or seasons changed here (created, edited, priced,
    /// delisted, its rating moved): the followers hear now, other nodes'
    /// through Redis.
    pub fn listing_changed(&self, property: PropertyId) {
        self.listing_changed_elsewhere(property);
        // Lost, other nodes' scans find it (`ROOST_EVENT_POLL_MS`).
        self.send_elsewhere(Outbound::ListingChanged(property));
    }

    /// A user's sign-ins changed here: other nodes hear through Redis (and
    /// read it in any case within `crate::auth::cache::TRUST`).
    pub fn user_changed(&self, user: UserId) {
        self.send_elsewhere(Outbound::UserChanged(user));
    }

    /// Queues word for the other nodes through Redis, if Redis is
    /// configured; counted, not waited for, when its backlog is full (each
    /// kind of word has a slower path that does not need it).
    fn send_elsewhere(&self, word: Outbound) {
        if let Some(outbox) = self.outbox.get()
            && outbox.try_send(word).is_err()
        {
            self.metrics
                .redis_publish_failures
                .with_label_values(&["backlog_full"])
                .inc();
        }
    }

    /// Another node changed a listing's row.
    pub fn listing_changed_elsewhere(&self, property: PropertyId) {
        for follower in self.followers() {
            follower.listing_changed(property);
        }
    }

    pub fn redis_link(&self) -> RedisLink {
        match self.redis.load(Ordering::Relaxed) {
            1 => RedisLink::Up,
            2 => RedisLink::Down,
            _ => RedisLink::Disabled,
        }
    }

    pub fn set_redis_link(&self, link: RedisLink) {
        self.redis.store(link as u8, Ordering::Relaxed);
    }

    /// A new session joins (no subscriptions yet).
    pub fn join(
        self: &Arc<Self>,
        recipient: Recipient<Deliver>,
        control: Arc<Control>,
        user: Option<UserId>,
        ip: IpAddr,
    ) -> Result<Membership, TooManyConnections> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let mut routes = self.lock();
        let open = routes.per_ip.entry(ip).or_default();
        if *open >= self.max_per_ip {
            return Err(TooManyConnections);
        }
        *open += 1;
        if let Some(user) = user {
            routes.by_user.entry(user).or_default().insert(id);
        }
        routes.members.insert(
            id,
            Member {
                recipient: Arc::new(recipient),
                control,
                user,
                ip,
                properties: HashSet::new(),
            },
        );
        self.metrics.ws_sessions.inc();
        Ok(Membership {
            bus: self.clone(),
            id,
        })
    }

    fn leave(&self, id: SessionId) {
        let mut routes = self.lock();
        let Some(member) = routes.members.remove(&id) else {
            return;
        };
        for property in &member.properties {
            remove_from(&mut routes.by_property, property, id);
        }
        if let Some(user) = member.user {
            remove_from(&mut routes.by_user, &user, id);
        }
        if let Some(open) = routes.per_ip.get_mut(&member.ip) {
            *open -= 1;
            if *open == 0 {
                routes.per_ip.remove(&member.ip);
            }
        }
        self.metrics.ws_sessions.dec();
    }

    /// A session that signed in after joining (GraphQL's `connection_init`)
    /// hears its user's channel from now on.
    pub fn identify(&self, id: SessionId, user: UserId) {
        let mut routes = self.lock();
        let Some(member) = routes.members.get_mut(&id) else {
            return;
        };
        if let Some(previous) = member.user.replace(user) {
            remove_from(&mut routes.by_user, &previous, id);
        }
        routes.by_user.entry(user).or_default().insert(id);
    }

    pub fn subscribe(&self, id: SessionId, property: PropertyId) {
        let mut routes = self.lock();
        if let Some(member) = routes.members.get_mut(&id) {
            member.properties.insert(property);
            routes.by_property.entry(property).or_default().insert(id);
        }
    }

    pub fn unsubscribe(&self, id: SessionId, property: PropertyId) {
        let mut routes = self.lock();
        if let Some(member) = routes.members.get_mut(&id) {
            member.properties.remove(&property);
            remove_from(&mut routes.by_property, &property, id);
        }
    }

    /// Someone here knows the listing as of `seq` (a snapshot, an actor's
    /// load): catching up from the log starts there if nothing was
    /// dispatched for it yet.
    pub fn observe(&self, property: PropertyId, seq: i64) {
        self.lock().dispatched.entry(property).or_insert(seq);
    }

    /// The highest seq dispatched for the listing, if any.
    pub fn dispatched(&self, property: PropertyId) -> Option<i64> {
        self.lock().dispatched.get(&property).copied()
    }

    /// Listings some session here follows.
    pub fn followed(&self) -> Vec<PropertyId> {
        self.lock().by_property.keys().copied().collect()
    }

    /// Forgets what was dispatched for listings no longer of interest here.
    pub fn forget_except(&self, keep: &HashSet<PropertyId>) {
        self.lock().dispatched.retain(|p, _| keep.contains(p));
    }

    /// Every open session's control (the watchdog's round).
    pub fn controls(&self) -> Vec<Arc<Control>> {
        self.lock()
            .members
            .values()
            .map(|m| m.control.clone())
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.lock().members.len()
    }

    /// Events this node's actor just committed: to local sessions, and to
    /// Redis for the other nodes.
    pub fn publish(&self, events: Vec<CalendarEvent>) {
        for event in events {
            let event = Arc::new(event);
            self.dispatch(&event, Source::Local);
            if let Some(outbox) = self.outbox.get()
                && outbox.try_send(Outbound::Event(event)).is_err()
            {
                // Other nodes read it from the log on their next poll.
                self.metrics
                    .redis_publish_failures
                    .with_label_values(&["backlog_full"])
                    .inc();
            }
        }
    }

    /// A notice for a user: to their sessions here, and to Redis for the
    /// other nodes'.
    pub fn notify(&self, notice: Notice) {
        let notice = Arc::new(notice);
        self.deliver_notice(&notice);
        if let Some(outbox) = self.outbox.get()
            && outbox.try_send(Outbound::Notice(notice)).is_err()
        {
            self.metrics
                .redis_publish_failures
                .with_label_values(&["backlog_full"])
                .inc();
        }
    }

    /// Hands a notice to its audience's sessions on this node.
    pub fn deliver_notice(&self, notice: &Arc<Notice>) {
        let targets: Vec<(Arc<Recipient<Deliver>>, Arc<Control>)> = {
            let routes = self.lock();
            let sessions = match notice.to {
                Audience::User(user) => routes.by_user.get(&user),
                Audience::Listing(listing) => routes.by_property.get(&listing),
            };
            sessions
                .into_iter()
                .flatten()
                .filter_map(|id| routes.members.get(id))
                .map(|m| (m.recipient.clone(), m.control.clone()))
                .collect()
        };
        for (recipient, control) in targets {
            if let Err(SendError::Full(_)) = recipient.try_send(Deliver::Notice(notice.clone())) {
                control.end(Ending::SlowConsumer);
            }
        }
    }

    /// Hands an event to the sessions that follow its listing or its people.
    /// False if it had been dispatched already.
    pub fn dispatch(&self, event: &Arc<CalendarEvent>, source: Source) -> bool {
        for follower in self.followers() {
            follower.event(event);
        }
        let mut targets = Vec::new();
        {
            let mut routes = self.lock();
            let last = routes.dispatched.entry(event.property_id).or_insert(0);
            if event.seq <= *last {
                return false;
            }
            *last = event.seq;
            let routes = &*routes;
            let followers = routes.by_property.get(&event.property_id);
            for id in followers.into_iter().flatten() {
                if let Some(m) = routes.members.get(id) {
                    targets.push((m.recipient.clone(), m.control.clone(), false));
                }
            }
            if event.kind.is_booking() {
                let people = [event.guest_id, Some(event.host_id)];
                for user in people.into_iter().flatten() {
                    for id in routes.by_user.get(&user).into_iter().flatten() {
                        if let Some(m) = routes.members.get(id) {
                            targets.push((m.recipient.clone(), m.control.clone(), true));
                        }
                    }
                }
            }
        }
        self.metrics
            .events
            .with_label_values(&[source.as_str()])
            .inc();
        for (recipient, control, personal) in targets {
            let message = if personal {
                Deliver::Personal(event.clone())
            } else {
                Deliver::Calendar(event.clone())
            };
            let sent = recipient.try_send(message);
            if let Err(SendError::Full(_)) = sent {
                control.end(Ending::SlowConsumer);
            }
        }
        true
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, HashSet<SessionId>>,
    key: &K,
    id: SessionId,
) {
    if let Some(ids) = map.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}
