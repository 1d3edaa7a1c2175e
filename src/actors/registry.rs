//! `PropertyRegistry` finds each listing's actor, starting it on first use
//! on the actors' own arbiter: from the search index's copy of the
//! listing's calendar when that is current, else it loads itself from the
//! database. Idle actors stop themselves; the next message starts a fresh
//! one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use super::bus::EventBus;
use super::property::{PropertyActor, Relayed};
use crate::db::{Db, Unavailable};
use crate::domain::{CalendarEvent, PropertyId};
use crate::error::ApiError;
use crate::search::Availability;

/// The actors started here (some may have stopped since), and the size at
/// which the stopped ones are next swept out.
struct Actors {
    running: HashMap<PropertyId, Addr<PropertyActor>>,
    sweep_at: usize,
}

const MIN_SWEEP: usize = 1024;

pub struct PropertyRegistry {
    actors: Mutex<Actors>,
    arbiter: Arbiter,
    db: Db,
    bus: Arc<EventBus>,
    hold_ttl: Duration,
    idle_after: Duration,
    /// The search index, when it is kept: a starting actor's calendar.
    memory: Option<Arc<Availability>>,
}

impl PropertyRegistry {
    /// Must be called inside the actix system (the server's).
    pub fn new(
        db: Db,
        bus: Arc<EventBus>,
        hold_ttl: Duration,
        idle_after: Duration,
        memory: Option<Arc<Availability>>,
    ) -> Self {
        Self {
            actors: Mutex::new(Actors {
                running: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
            arbiter: Arbiter::new(),
            db,
            bus,
            hold_ttl,
            idle_after,
            memory,
        }
    }

    /// Sends `msg` to the listing's actor and waits for its answer. A message
    /// that reached an actor as it stopped (idle) was never handled; it is
    /// sent once more, to a fresh actor.
    pub async fn send<M, T>(&self, id: PropertyId, msg: M) -> Result<T, ApiError>
    where
        M: Message<Result = Result<T, ApiError>> + Clone + Send + 'static,
        T: Send + 'static,
        PropertyActor: Handler<M>,
        <PropertyActor as Actor>::Context: ToEnvelope<PropertyActor, M>,
    {
        for _ in 0..2 {
            let addr = self.addr(id)?;
            match addr.send(msg.clone()).await {
                Ok(result) => return result,
                Err(MailboxError::Closed) => self.forget(id, &addr),
                Err(MailboxError::Timeout) => break,
            }
        }
        Err(ApiError::Unavailable(Unavailable::new(format!(
            "property {id}'s actor is not answering"
        ))))
    }

    /// Hands an event committed elsewhere to the listing's actor, if one is
    /// running here (one that is not will load fresh when it starts).
    pub fn relay(&self, event: Arc<CalendarEvent>) {
        let addr = self.lock().running.get(&event.property_id).cloned();
        if let Some(addr) = addr.filter(|a| a.connected()) {
            addr.do_send(Relayed(event));
        }
    }

    /// The listings whose actors are running.
    pub fn running_ids(&self) -> Vec<PropertyId> {
        self.lock()
            .running
            .iter()
            .filter(|(_, a)| a.connected())
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many listing actors are running.
    pub fn running(&self) -> usize {
        self.lock()
            .running
            .values()
            .filter(|a| a.connected())
            .count()
    }

    fn addr(&self, id: PropertyId) -> Result<Addr<PropertyActor>, ApiError> {
        let mut actors = self.lock();
        if let Some(addr) = actors.running.get(&id).filter(|a| a.connected()) {
            return Ok(addr.clone());
        }
        // Forget stopped actors once the map has doubled since the last
        // sweep: a scan on every start made starting the n-th actor O(n)
        // (measured: the registry's top CPU cost at 10k listings).
        if actors.running.len() >= actors.sweep_at {
            actors.running.retain(|_, a| a.connected());
            actors.sweep_at = (2 * actors.running.len()).max(MIN_SWEEP);
        }
        let (db, bus) = (self.db.clone(), self.bus.clone());
        let (hold_ttl, idle_after) = (self.hold_ttl, self.idle_after);
        // Memory behind the database is safe for an actor (it asks before
        // refusing, and the database refuses what memory wrongly allows);
        // the index is only a start that saves the load.
        let known = self.memory.as_ref().and_then(|m| m.calendar(id));
        let addr = PropertyActor::start_in_arbiter(&self.arbiter.handle(), move |_| {
            PropertyActor::new(id, db, bus, hold_ttl, idle_after, known)
        });
        actors.running.insert(id, addr.clone());
        Ok(addr)
    }

    fn forget(&self, id: PropertyId, stopped: &Addr<PropertyActor>) {
        let mut actors = self.lock();
        if actors.running.get(&id) == Some(stopped) {
            actors.running.remove(&id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Actors> {
        // A panic while holding this lock cannot leave the map half-changed.
        self.actors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops every actor (at shutdown).
    pub fn stop(&self) {
        self.arbiter.stop();
    }
}

impl Drop for PropertyRegistry {
    fn drop(&mut self) {
        self.arbiter.stop();
    }
}

/// Shared by every worker.
pub type SharedRegistry = Arc<PropertyRegistry>;
