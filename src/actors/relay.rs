//! The relay carries calendar events between nodes. It publishes this
//! node's to Redis, hands other nodes' to local sessions and actors, and
//! reads the event log for whatever Redis did not bring: right after
//! (re)connecting, every poll while Redis is down or not configured, and
//! every `ROOST_EVENT_POLL_MS` in any case. Redis is a fast path, the log
//! the guarantee: no event is missed while Redis is away, only later.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::bus::{Notice, Outbound, RedisLink, Source};
use crate::db::events;
use crate::domain::{CalendarEvent, PropertyId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// Events waiting to be published to Redis; beyond this they are left to
/// the other nodes' log reads.
const OUTBOX: usize = 10_000;
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How many events one log read brings per listing.
const LOG_BATCH: i64 = 1000;

/// One message on the Redis channel, with the node that sent it: a
/// calendar event it committed, or a notice for a user.
#[derive(Serialize, Deserialize)]
struct Envelope {
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<CalendarEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice: Option<Notice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listing_changed: Option<PropertyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_changed: Option<UserId>,
}

/// Starts the relay's tasks: the Redis publisher and listener (with
/// `REDIS_URL`) and the log poller.
pub fn spawn(state: web::Data<AppState>) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(poll_log(state.clone()))];
    if let Some(client) = state.redis.clone() {
        let (tx, rx) = mpsc::channel(OUTBOX);
        state.bus.set_outbox(tx);
        state.bus.set_redis_link(RedisLink::Down);
        tasks.push(tokio::spawn(publish(state.clone(), client.clone(), rx)));
        tasks.push(tokio::spawn(listen(state, client)));
    }
    tasks
}

async fn publish(
    state: web::Data<AppState>,
    client: redis::Client,
    mut outbox: mpsc::Receiver<Outbound>,
) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut retry_at = Instant::now();
    let fail = |reason: &str| {
        state
            .metrics
            .redis_publish_failures
            .with_label_values(&[reason])
            .inc()
    };
    while let Some(outbound) = outbox.recv().await {
        if conn.is_none() && Instant::now() >= retry_at {
            match tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection())
                .await
            {
                Ok(Ok(c)) => conn = Some(c),
                _ => retry_at = Instant::now() + Duration::from_secs(1),
            }
        }
        let Some(c) = conn.as_mut() else {
            fail("redis_down");
            continue;
        };
        let mut envelope = Envelope {
            node: state.bus.node().to_owned(),
            event: None,
            notice: None,
            listing_changed: None,
            user_changed: None,
        };
        match outbound {
            Outbound::Event(e) => envelope.event = Some((*e).clone()),
            Outbound::Notice(n) => envelope.notice = Some((*n).clone()),
            Outbound::ListingChanged(p) => envelope.listing_changed = Some(p),
            Outbound::UserChanged(u) => envelope.user_changed = Some(u),
        }
        let Ok(payload) = serde_json::to_string(&envelope) else {
            fail("encode");
            continue;
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&state.event_channel).arg(payload);
        let sent = tokio::time::timeout(REDIS_TIMEOUT, publish.query_async::<i64>(c)).await;
        if !matches!(sent, Ok(Ok(_))) {
            fail("redis_down");
            conn = None;
            retry_at = Instant::now() + Duration::from_secs(1);
        }
    }
}

async fn listen(state: web::Data<AppState>, client: redis::Client) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = tokio::time::timeout(REDIS_TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&state.event_channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                state.bus.set_redis_link(RedisLink::Up);
                tracing::info!("redis: relaying calendar events");
                // Whatever was committed while the link was down.
                catch_up(&state).await;
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    on_message(&state, message.get_payload_bytes());
                }
                tracing::warn!("redis: connection lost; reading the event log until it is back");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "redis: cannot subscribe"),
            Err(_) => tracing::debug!("redis: subscribing timed out"),
        }
        state.bus.set_redis_link(RedisLink::Down);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn on_message(state: &AppState, payload: &[u8]) {
    match serde_json::from_slice::<Envelope>(payload) {
        Ok(envelope) if envelope.node == state.bus.node() => {}
        Ok(envelope) => {
            if let Some(event) = envelope.event {
                relay(state, Arc::new(event), Source::Redis);
            }
            if let Some(notice) = envelope.notice {
                state.bus.deliver_notice(&Arc::new(notice));
            }
            if let Some(listing) = envelope.listing_changed {
                state.bus.listing_changed_elsewhere(listing);
            }
            if let Some(user) = envelope.user_changed {
                state.sign_ins.forget(user);
            }
        }
        Err(e) => tracing::warn!(error = %e, "redis: undecodable calendar event"),
    }
}

/// An event committed elsewhere: to local sessions, and to the listing's
/// actor here so its memory follows.
fn relay(state: &AppState, event: Arc<CalendarEvent>, source: Source) {
    if state.bus.dispatch(&event, source) {
        state.properties.relay(event);
    }
}

/// Reads the log often while Redis cannot be trusted, and now and then
/// when it can.
async fn poll_log(state: web::Data<AppState>) {
    let every = state.settings.event_poll_interval;
    let mut tick = tokio::time::interval(every.min(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        tick.tick().await;
        if state.bus.redis_link() == RedisLink::Up && last.elapsed() < every {
            continue;
        }
        catch_up(&state).await;
        last = Instant::now();
    }
}

/// For each listing followed or held here, dispatches the events committed
/// after the last one dispatched here.
pub async fn catch_up(state: &AppState) {
    let mut interest: HashSet<PropertyId> = state.bus.followed().into_iter().collect();
    interest.extend(state.properties.running_ids());
    state.bus.forget_except(&interest);
    let ids: Vec<PropertyId> = interest.into_iter().collect();
    for chunk in ids.chunks(500) {
        if let Err(e) = catch_up_on(state, chunk.to_vec()).await {
            tracing::warn!(error = %e, "reading the event log failed");
            return;
        }
    }
}

async fn catch_up_on(state: &AppState, ids: Vec<PropertyId>) -> Result<(), ApiError> {
    let positions =
        state
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(events::positions(&mut conn, &ids).await?)
            })
            .await?;
    for (property, seq) in positions {
        let Some(known) = state.bus.dispatched(property) else {
            state.bus.observe(property, seq);
            continue;
        };
        if seq <= known {
            continue;
        }
        let found = state
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(events::after(&mut conn, property, known, LOG_BATCH).await?)
            })
            .await?;
        for event in found.map(|(_, events)| events).unwrap_or_default() {
            relay(state, Arc::new(event), Source::Log);
        }
    }
    Ok(())
}
