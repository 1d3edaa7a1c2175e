//! What every handler shares, built once before the server starts.

use std::sync::Arc;
use std::time::Duration;

use crate::actors::{EventBus, PropertyRegistry};
use crate::config::Settings;
use crate::db::Db;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::RateLimits;
use crate::payments::PaymentGateway;
use crate::payments::sandbox::processor::Sandbox;

pub struct AppState {
    pub db: Db,
    /// Each listing's calendar actor.
    pub properties: PropertyRegistry,
    /// Committed calendar events, to the websocket sessions that follow them.
    pub bus: Arc<EventBus>,
    /// Live sign-ins remembered, so a request needs no token query.
    pub sign_ins: Arc<crate::auth::cache::SignIns>,
    /// Availability search from memory.
    pub search: Arc<crate::search::Availability>,
    /// Listings' rows and seasons remembered for their public pages.
    pub listings: Arc<crate::services::listing_cache::ListingCache>,
    /// The Redis channel this deployment's nodes share (from the database).
    pub event_channel: String,
    pub settings: Settings,
    pub metrics: Metrics,
    pub rate_limits: RateLimits,
    /// Set when `REDIS_URL` is: other nodes' events travel through it.
    pub redis: Option<redis::Client>,
    /// See [`crate::auth::password::decoy_hash`].
    pub decoy_hash: Arc<str>,
    /// Where payments go.
    pub payments: Arc<dyn PaymentGateway>,
    /// The sandbox processor, served at `/sandbox/v1`, when it is the gateway.
    pub sandbox: Option<Arc<Sandbox>>,
}

impl AppState {
    pub fn token_ttl(&self) -> Duration {
        self.settings.token_ttl
    }

    /// A user signed out, changed password or role, or was deactivated:
    /// this node forgets their sign-ins now, other nodes through Redis
    /// (and through their watch in any case). Called after the commit.
    pub fn user_changed(&self, user: crate::domain::UserId) {
        self.sign_ins.forget(user);
        self.bus.user_changed(user);
    }

    /// What settling and refunding payments needs, borrowed from here.
    pub fn settlement(&self) -> crate::services::payments::Settlement<'_> {
        crate::services::payments::Settlement {
            db: &self.db,
            registry: &self.properties,
            bus: &self.bus,
            gateway: self.payments.as_ref(),
            processing_hold: self.settings.payments.processing_hold,
        }
    }
}
