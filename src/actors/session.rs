//! `Session` owns one websocket connection: the listings it follows (and
//! from which event each one's client is current), and its user channel.
//!
//! Per listing the client gets a snapshot (or, resuming, exactly the events
//! after its `since_seq`), then every event in seq order with no gaps: an
//! event that arrives ahead of one missed (another node's, reordered by
//! Redis) makes the session read the missing ones from the log first.
//!
//! A session that cannot keep up is ended, never buffered without limit:
//! its mailbox is bounded, and when the bus finds it full (or the client has
//! been silent past the timeout) the [`Control`] ends the connection with a
//! close frame telling the client why, and shuts the socket if the client
//! does not even read that.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, Parser};
use actix_web::web;
use actix_web_actors::ws;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::Stream;
use futures_util::task::AtomicWaker;
use serde::Serialize;
use serde_json::Value;

use super::bus::{Deliver, Membership};
use super::property::{GetSnapshot, Snapshot};
use crate::auth::AuthUser;
use crate::db::events;
use crate::domain::calendar::Busy;
use crate::domain::event::Effect;
use crate::domain::{CalendarEvent, EventKind, PropertyId, UserId};
use crate::error::ApiError;
use crate::http::metrics::Metrics;
use crate::state::AppState;

/// A resume further back than this many events gets a snapshot instead.
const MAX_REPLAY: i64 = 1000;
/// Events held for one listing while its log is read, before the session
/// counts as too slow.
pub const MAX_HELD: usize = 1024;

/// Why the server ends a session, and the close frame that says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Ending {
    /// It could not read as fast as events came: reconnect and resume with
    /// `since_seq`.
    SlowConsumer = 1,
    /// Nothing heard from the client (not even a pong) past the timeout.
    Silent = 2,
    /// The server is shutting down: reconnect (to another node) and resume.
    ShuttingDown = 3,
    /// The token the session signed in with was revoked (sign-out, a
    /// password change, deactivation) or expired: sign in again.
    SignedOut = 4,
}

impl Ending {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Ending::SlowConsumer),
            2 => Some(Ending::Silent),
            3 => Some(Ending::ShuttingDown),
            4 => Some(Ending::SignedOut),
            _ => None,
        }
    }

    pub fn close_code(self) -> u16 {
        match self {
            Ending::SlowConsumer => 4000,
            Ending::Silent => 4001,
            Ending::ShuttingDown => 1001,
            Ending::SignedOut => 4401,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Ending::SlowConsumer => "slow_consumer",
            Ending::Silent => "timeout",
            Ending::ShuttingDown => "going_away",
            Ending::SignedOut => "unauthorized",
        }
    }
}

/// What the bus, the watchdog and the connection's outgoing stream share
/// about one session. It works while the session's actor is stuck (the
/// actor only runs when the connection can take more output).
pub struct Control {
    started: Instant,
    last_heard_ms: AtomicU64,
    ending: AtomicU8,
    ending_at_ms: AtomicU64,
    waker: AtomicWaker,
    /// The connection's socket, to shut when the client will not read.
    socket: Option<std::net::TcpStream>,
    /// The bearer token the session signed in with, if it did
    /// ([`sign_in_watch`] ends the session when it stops being valid).
    token: Mutex<Option<String>>,
    metrics: Metrics,
}

impl Control {
    pub fn new(socket: Option<std::net::TcpStream>, metrics: Metrics) -> Self {
        Self {
            started: Instant::now(),
            last_heard_ms: AtomicU64::new(0),
            ending: AtomicU8::new(0),
            ending_at_ms: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            socket,
            token: Mutex::new(None),
            metrics,
        }
    }

    /// The session is signed in with `token` (at connect, or by a GraphQL
    /// `connection_init`).
    pub fn signed_in_with(&self, token: &str) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.to_owned());
    }

    fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The client said something (any frame, a pong).
    pub fn heard(&self) {
        self.last_heard_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    pub fn silent_for(&self) -> Duration {
        let heard = self.last_heard_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(heard))
    }

    /// Ends the session (the first reason given wins): the outgoing stream
    /// sends the close frame next and finishes.
    pub fn end(&self, why: Ending) {
        if self
            .ending
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.ending_at_ms.store(self.now_ms(), Ordering::Release);
            self.metrics
                .ws_disconnects
                .with_label_values(&[why.reason()])
                .inc();
            self.waker.wake();
        }
    }

    pub fn ending(&self) -> Option<Ending> {
        Ending::from_u8(self.ending.load(Ordering::Acquire))
    }

    /// How long ago the session was ended, if it was.
    pub fn ended_for(&self) -> Option<Duration> {
        self.ending()?;
        let at = self.ending_at_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now_ms().saturating_sub(at)))
    }

    /// Shuts the socket: for a client that was told to go and did not read it.
    pub fn force_close(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The bytes the session's websocket context writes.
type Frames = Pin<Box<dyn Stream<Item = Result<Bytes, actix_web::Error>>>>;

/// The connection's outgoing bytes: the session's frames, until the session
/// is ended from outside; then its close frame, and the end.
pub struct SessionStream {
    inner: Option<Frames>,
    control: Arc<Control>,
}

impl SessionStream {
    pub fn new(
        inner: impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
        control: Arc<Control>,
    ) -> Self {
        Self {
            inner: Some(Box::pin(inner)),
            control,
        }
    }
}

impl Stream for SessionStream {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.control.waker.register(cx.waker());
        if let Some(why) = self.control.ending() {
            // Dropping the session's context drops the session (and what it
            // had queued): its membership leaves the bus.
            if self.inner.take().is_none() {
                return Poll::Ready(None);
            }
            let mut frame = BytesMut::new();
            let reason = CloseReason {
                code: CloseCode::from(why.close_code()),
                description: Some(why.reason().into()),
            };
            Parser::write_close(&mut frame, Some(reason), false);
            return Poll::Ready(Some(Ok(frame.freeze())));
        }
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

/// Ends sessions that went silent, and shuts the sockets of sessions ended
/// a heartbeat ago whose clients did not read their close frame.
pub async fn watchdog(state: web::Data<AppState>) {
    let limits = state.settings.websocket.clone();
    let mut tick = tokio::time::interval(limits.heartbeat);
    loop {
        tick.tick().await;
        for control in state.bus.controls() {
            match control.ended_for() {
                Some(ended) if ended >= limits.heartbeat => control.force_close(),
                Some(_) => {}
                None if control.silent_for() >= limits.client_timeout => {
                    control.end(Ending::Silent)
                }
                None => {}
            }
        }
    }
}

/// Ends every session whose token stopped being valid: each
/// [`TRUST`](crate::auth::cache::TRUST) it asks about each signed-in
/// session's token as a request would (from memory, which forgets a
/// revoked token at once on the node that revoked it and within `TRUST`
/// elsewhere; from the database when memory cannot answer), once per token
/// however many sessions share it, and ends those refused with
/// [`Ending::SignedOut`]. A database that cannot answer ends nothing.
pub async fn sign_in_watch(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(crate::auth::cache::TRUST);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut by_token: HashMap<String, Vec<Arc<Control>>> = HashMap::new();
        for control in state.bus.controls() {
            if let (None, Some(token)) = (control.ending(), control.token()) {
                by_token.entry(token).or_default().push(control);
            }
        }
        for (token, controls) in by_token {
            if let Err(ApiError::Unauthorized) = AuthUser::from_token(&state, &token).await {
                controls.iter().for_each(|c| c.end(Ending::SignedOut));
            }
        }
    }
}

/// One listing a session follows.
#[derive(Default)]
struct Subscription {
    /// The last event the client has (from its snapshot or events); `None`
    /// until the first sync answers.
    delivered: Option<i64>,
    /// A snapshot or log read is in flight.
    syncing: bool,
    /// Events that came while syncing, handled after it.
    held: Vec<Arc<CalendarEvent>>,
    /// Tells a stale sync answer (after unsubscribe or resubscribe) apart.
    generation: u64,
}

pub struct Session {
    state: web::Data<AppState>,
    user: Option<UserId>,
    ip: IpAddr,
    control: Arc<Control>,
    membership: Option<Membership>,
    subscriptions: HashMap<PropertyId, Subscription>,
    generations: u64,
}

impl Session {
    pub fn new(
        state: web::Data<AppState>,
        user: Option<UserId>,
        ip: IpAddr,
        control: Arc<Control>,
    ) -> Self {
        Self {
            state,
            user,
            ip,
            control,
            membership: None,
            subscriptions: HashMap::new(),
            generations: 0,
        }
    }

    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, frame: &Outgoing<'_>) {
        match serde_json::to_string(frame) {
            Ok(text) => ctx.text(text),
            Err(e) => tracing::error!(error = %e, "websocket frame did not serialize"),
        }
    }

    fn error(
        &self,
        ctx: &mut ws::WebsocketContext<Self>,
        code: &'static str,
        message: String,
        property_id: Option<PropertyId>,
    ) {
        self.send(
            ctx,
            &Outgoing::Error {
                code,
                message,
                property_id,
            },
        );
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return self.error(
                ctx,
                "bad_json",
                "a frame must be a JSON object".into(),
                None,
            );
        };
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return self.error(
                ctx,
                "bad_frame",
                "a frame must be a JSON object with a string \"type\"".into(),
                None,
            );
        };
        match kind {
            "subscribe" => match parse_subscribe(&value) {
                Ok((property, since)) => self.subscribe(property, since, ctx),
                Err(message) => self.error(ctx, "bad_frame", message, None),
            },
            "unsubscribe" => match property_id(&value) {
                Ok(property) => self.unsubscribe(property, ctx),
                Err(message) => self.error(ctx, "bad_frame", message, None),
            },
            "ping" => self.send(ctx, &Outgoing::Pong),
            other => {
                let message = format!(
                    "unknown frame type {:?}; expected subscribe, unsubscribe or ping",
                    truncate(other, 64)
                );
                self.error(ctx, "unknown_type", message, None)
            }
        }
    }

    fn subscribe(
        &mut self,
        property: PropertyId,
        since: Option<i64>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let limit = self.state.settings.websocket.max_subscriptions;
        if !self.subscriptions.contains_key(&property) && self.subscriptions.len() >= limit {
            let message = format!("a connection may follow at most {limit} listings");
            return self.error(ctx, "too_many_subscriptions", message, Some(property));
        }
        // (Re)subscribing starts over: a fresh snapshot or resume.
        self.subscriptions.insert(property, Subscription::default());
        if let Some(m) = &self.membership {
            self.state.bus.subscribe(m.id, property);
        }
        self.sync(property, since, since.is_some(), ctx);
    }

    fn unsubscribe(&mut self, property: PropertyId, ctx: &mut ws::WebsocketContext<Self>) {
        if self.subscriptions.remove(&property).is_none() {
            let message = "this connection does not follow that listing".into();
            return self.error(ctx, "not_subscribed", message, Some(property));
        }
        if let Some(m) = &self.membership {
            self.state.bus.unsubscribe(m.id, property);
        }
        self.send(
            ctx,
            &Outgoing::Unsubscribed {
                property_id: property,
            },
        );
    }

    /// Brings the client up to date on `property`: the events after `since`
    /// from the log when it still has them all, else a snapshot.
    fn sync(
        &mut self,
        property: PropertyId,
        since: Option<i64>,
        resuming: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        self.generations += 1;
        let generation = self.generations;
        let Some(sub) = self.subscriptions.get_mut(&property) else {
            return;
        };
        sub.generation = generation;
        sub.syncing = true;
        let read = read_sync(self.state.clone(), property, since);
        ctx.spawn(
            read.into_actor(self).map(move |result, act, ctx| {
                act.synced(property, generation, resuming, result, ctx)
            }),
        );
    }

    fn synced(
        &mut self,
        property: PropertyId,
        generation: u64,
        resuming: bool,
        result: Result<Synced, ApiError>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match self.subscriptions.get(&property) {
            Some(sub) if sub.generation == generation => {}
            _ => return,
        }
        let synced = match result {
            Ok(synced) => synced,
            Err(e) => {
                self.subscriptions.remove(&property);
                if let Some(m) = &self.membership {
                    self.state.bus.unsubscribe(m.id, property);
                }
                let (code, message) = match e {
                    ApiError::NotFound(_) => ("not_found", "no such listing".to_owned()),
                    other => {
                        tracing::warn!(error = %other, %property, "websocket sync failed");
                        (
                            "unavailable",
                            "the listing's calendar could not be read; subscribe again".to_owned(),
                        )
                    }
                };
                return self.error(ctx, code, message, Some(property));
            }
        };
        let mut delivered = self.subscriptions.get(&property).and_then(|s| s.delivered);
        match synced {
            Synced::Snapshot(snapshot) => {
                self.send(ctx, &Outgoing::snapshot(property, &snapshot));
                delivered = Some(snapshot.seq);
            }
            Synced::Events { since, events } => {
                if resuming {
                    let seq = events.last().map_or(since, |e| e.seq);
                    self.send(
                        ctx,
                        &Outgoing::Resumed {
                            property_id: property,
                            since_seq: since,
                            seq,
                        },
                    );
                }
                let mut last = delivered.unwrap_or(since).max(since);
                for event in &events {
                    if event.seq > last {
                        self.send(ctx, &Outgoing::event(event));
                        last = event.seq;
                    }
                }
                delivered = Some(last);
            }
        }
        if let Some(seq) = delivered {
            self.state.bus.observe(property, seq);
        }
        let held = match self.subscriptions.get_mut(&property) {
            Some(sub) => {
                sub.delivered = delivered;
                sub.syncing = false;
                std::mem::take(&mut sub.held)
            }
            None => return,
        };
        for event in held {
            self.on_calendar(event, ctx);
        }
    }

    fn on_calendar(&mut self, event: Arc<CalendarEvent>, ctx: &mut ws::WebsocketContext<Self>) {
        let property = event.property_id;
        let Some(sub) = self.subscriptions.get_mut(&property) else {
            return;
        };
        if sub.syncing {
            if sub.held.len() >= MAX_HELD {
                return self.control.end(Ending::SlowConsumer);
            }
            return sub.held.push(event);
        }
        let Some(delivered) = sub.delivered else {
            return;
        };
        if event.seq <= delivered {
            return;
        }
        if event.seq == delivered + 1 {
            sub.delivered = Some(event.seq);
            return self.send(ctx, &Outgoing::event(&event));
        }
        // Ahead of one this client has not had: read the gap from the log.
        sub.held.push(event);
        self.sync(property, Some(delivered), false, ctx);
    }

    fn on_personal(&mut self, event: Arc<CalendarEvent>, ctx: &mut ws::WebsocketContext<Self>) {
        let role = if event.guest_id.is_some() && event.guest_id == self.user {
            "guest"
        } else {
            "host"
        };
        self.send(
            ctx,
            &Outgoing::Booking {
                kind: event.kind,
                booking_id: event.entry_id,
                property_id: event.property_id,
                status: event.kind.status(),
                check_in: event.check_in,
                check_out: event.check_out,
                role,
                at: event.at,
            },
        );
    }
}

impl Actor for Session {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let limits = self.state.settings.websocket.clone();
        ctx.set_mailbox_capacity(limits.queue_capacity);
        self.control.heard();
        let joined = self.state.bus.join(
            ctx.address().recipient(),
            self.control.clone(),
            self.user,
            self.ip,
        );
        match joined {
            Ok(membership) => self.membership = Some(membership),
            Err(_) => {
                let message = format!(
                    "this address already has {} open connections",
                    limits.max_connections_per_ip
                );
                self.error(ctx, "too_many_connections", message, None);
                ctx.close(Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some("too_many_connections".into()),
                }));
                return ctx.stop();
            }
        }
        self.send(
            ctx,
            &Outgoing::Hello {
                user_id: self.user,
                heartbeat_secs: limits.heartbeat.as_secs(),
                max_subscriptions: limits.max_subscriptions,
                max_frame_bytes: limits.max_frame_bytes,
            },
        );
        ctx.run_interval(limits.heartbeat, |_, ctx| ctx.ping(b"roost"));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Session {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.control.heard();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Binary(_)) | Ok(ws::Message::Continuation(_)) => self.error(
                ctx,
                "bad_frame",
                "frames must be JSON text, not binary".into(),
                None,
            ),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                let limit = self.state.settings.websocket.max_frame_bytes;
                let message = format!("frames may be at most {limit} bytes");
                self.error(ctx, "frame_too_large", message, None);
                ctx.close(Some(CloseReason {
                    code: CloseCode::Size,
                    description: Some("frame_too_large".into()),
                }));
                ctx.stop();
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                ctx.close(Some(CloseReason {
                    code: CloseCode::Protocol,
                    description: Some("protocol_error".into()),
                }));
                ctx.stop();
            }
        }
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        match msg {
            Deliver::Calendar(event) => self.on_calendar(event, ctx),
            Deliver::Personal(event) => self.on_personal(event, ctx),
            Deliver::Notice(notice) => match serde_json::to_string(&notice.frame) {
                Ok(text) => ctx.text(text),
                Err(e) => tracing::error!(error = %e, "a notice did not serialize"),
            },
        }
    }
}

/// What a sync read found (the GraphQL subscriptions' too).
pub enum Synced {
    Snapshot(Snapshot),
    /// Every event after `since` (possibly none).
    Events {
        since: i64,
        events: Vec<CalendarEvent>,
    },
}

pub async fn read_sync(
    state: web::Data<AppState>,
    property: PropertyId,
    since: Option<i64>,
) -> Result<Synced, ApiError> {
    if let Some(since) = since {
        let found = state
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(events::after(&mut conn, property, since, MAX_REPLAY + 1).await?)
            })
            .await?;
        let (position, events) = found.ok_or(ApiError::NotFound("property"))?;
        if position.deleted && events.is_empty() {
            return Err(ApiError::NotFound("property"));
        }
        // The log still holds the next event the client needs (or it needs none).
        let continuous = match events.first() {
            Some(first) => first.seq == since + 1,
            None => since == position.seq,
        };
        if continuous && events.len() as i64 <= MAX_REPLAY {
            return Ok(Synced::Events { since, events });
        }
    }
    let snapshot = state.properties.send(property, GetSnapshot).await?;
    Ok(Synced::Snapshot(snapshot))
}

fn property_id(value: &Value) -> Result<PropertyId, String> {
    match value.get("property_id").and_then(Value::as_i64) {
        Some(id) if id > 0 => Ok(PropertyId(id)),
        _ => Err("\"property_id\" must be a positive integer".into()),
    }
}

fn parse_subscribe(value: &Value) -> Result<(PropertyId, Option<i64>), String> {
    let property = property_id(value)?;
    let since = match value.get("since_seq") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(seq) if seq >= 0 => Some(seq),
            _ => return Err("\"since_seq\" must be a whole number, 0 or more".into()),
        },
    };
    Ok((property, since))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Frames the server sends. Property channel frames never name a guest.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Outgoing<'a> {
    Hello {
        user_id: Option<UserId>,
        heartbeat_secs: u64,
        max_subscriptions: usize,
        max_frame_bytes: usize,
    },
    Snapshot {
        property_id: PropertyId,
        seq: i64,
        unavailable: Vec<ClaimView>,
    },
    Resumed {
        property_id: PropertyId,
        since_seq: i64,
        seq: i64,
    },
    Event {
        property_id: PropertyId,
        seq: i64,
        kind: EventKind,
        entry_id: Option<i64>,
        check_in: Option<NaiveDate>,
        check_out: Option<NaiveDate>,
        status: Option<&'static str>,
        /// How the nights are taken now (`null`: this freed them).
        busy: Option<Busy>,
        hold_expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    Booking {
        kind: EventKind,
        booking_id: Option<i64>,
        property_id: PropertyId,
        status: Option<&'static str>,
        check_in: Option<NaiveDate>,
        check_out: Option<NaiveDate>,
        role: &'static str,
        at: DateTime<Utc>,
    },
    Unsubscribed {
        property_id: PropertyId,
    },
    Pong,
    Error {
        code: &'a str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        property_id: Option<PropertyId>,
    },
}

#[derive(Serialize)]
struct ClaimView {
    entry_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    busy: Busy,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_expires_at: Option<DateTime<Utc>>,
}

impl Outgoing<'_> {
    fn snapshot(property: PropertyId, snapshot: &Snapshot) -> Self {
        Outgoing::Snapshot {
            property_id: property,
            seq: snapshot.seq,
            unavailable: snapshot
                .claims
                .iter()
                .map(|c| ClaimView {
                    entry_id: c.id,
                    check_in: c.dates.check_in(),
                    check_out: c.dates.check_out(),
                    busy: c.busy,
                    hold_expires_at: c.held_until,
                })
                .collect(),
        }
    }

    fn event(e: &CalendarEvent) -> Self {
        Outgoing::Event {
            property_id: e.property_id,
            seq: e.seq,
            kind: e.kind,
            entry_id: e.entry_id,
            check_in: e.check_in,
            check_out: e.check_out,
            status: e.kind.status(),
            busy: match e.effect() {
                Some(Effect::Claim(claim)) => Some(claim.busy),
                _ => None,
            },
            hold_expires_at: e.hold_expires_at,
            at: e.at,
        }
    }
}
