//! Prometheus metrics: request counts and latencies by route and status;
//! websocket sessions and calendar events; the hold sweeper and listing actors.
//! One registry per server, rendered at `GET /metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Open websocket sessions.
    pub ws_sessions: IntGauge,
    /// Sessions the server ended, by reason (slow_consumer, silent, …).
    pub ws_disconnects: IntCounterVec,
    /// Calendar events handed to local subscribers, by where they came from
    /// (local, redis, log).
    pub events: IntCounterVec,
    /// Events that could not be published to Redis (other nodes read them
    /// from the log instead).
    pub redis_publish_failures: IntCounterVec,
    /// Lapsed holds this node's sweeper marked expired.
    pub holds_swept: IntCounter,
    /// Listing actors running on this node (set when rendered).
    pub property_actors: IntGauge,
    /// Statements sent to the database (BEGIN and COMMIT included).
    pub db_statements: IntCounter,
    /// Listing calendars read whole from the database (an actor starting,
    /// or finding its memory behind the database).
    pub calendar_loads: IntCounter,
    /// Listing actors started from the search index's copy of the calendar.
    pub calendar_starts: IntCounter,
    /// Refusals' reads of the listing, by whether the refusal made its own
    /// (`read`) or used one started after it was asked (`shared`).
    pub refusal_checks: IntCounterVec,
    /// Searches, by what answered them (memory, database).
    pub searches: IntCounterVec,
    /// Listings and claims in the search index, and listings it may be
    /// behind on (set as it changes).
    pub search_index_listings: IntGauge,
    pub search_index_claims: IntGauge,
    pub search_index_stale: IntGauge,
    /// Scans of every listing row for changes memory missed.
    pub search_scans: IntCounter,
    /// Bearer token checks, by what answered them (memory, database).
    pub token_checks: IntCounterVec,
    /// Live sign-ins remembered (`crate::auth::cache`).
    pub token_cache_entries: IntGauge,
    /// Listing page reads, by what answered them (memory, database).
    pub listing_reads: IntCounterVec,
    /// Listings remembered (`crate::services::listing_cache`).
    pub listing_cache_entries: IntGauge,
    /// A calendar page's taken nights, by what answered them (the search
    /// index's `memory`, or the listing's `actor`).
    pub calendar_reads: IntCounterVec,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("roost".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route", "status"],
        )?;
        let ws_sessions = IntGauge::new("ws_sessions", "Open websocket sessions")?;
        let ws_disconnects = IntCounterVec::new(
            Opts::new(
                "ws_disconnects_total",
                "Websocket sessions the server ended",
            ),
            &["reason"],
        )?;
        let events = IntCounterVec::new(
            Opts::new("calendar_events_total", "Calendar events dispatched"),
            &["source"],
        )?;
        let redis_publish_failures = IntCounterVec::new(
            Opts::new(
                "redis_publish_failures_total",
                "Calendar events not published to Redis",
            ),
            &["reason"],
        )?;
        let holds_swept = IntCounter::new(
            "holds_swept_total",
            "Lapsed holds this node's sweeper marked expired",
        )?;
        let property_actors = IntGauge::new(
            "property_actors",
            "Listing calendar actors running on this node",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(ws_sessions.clone()))?;
        registry.register(Box::new(ws_disconnects.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(redis_publish_failures.clone()))?;
        registry.register(Box::new(holds_swept.clone()))?;
        registry.register(Box::new(property_actors.clone()))?;
        let db_statements = IntCounter::new(
            "db_statements_total",
            "Statements sent to the database (BEGIN and COMMIT included)",
        )?;
        registry.register(Box::new(db_statements.clone()))?;
        let calendar_loads = IntCounter::new(
            "calendar_loads_total",
            "Listing calendars read whole from the database",
        )?;
        registry.register(Box::new(calendar_loads.clone()))?;
        let calendar_starts = IntCounter::new(
            "calendar_index_starts_total",
            "Listing actors started from the search index's copy of the calendar",
        )?;
        registry.register(Box::new(calendar_starts.clone()))?;
        let refusal_checks = IntCounterVec::new(
            Opts::new(
                "refusal_checks_total",
                "Refusals' reads of the listing, by whether the refusal made its own",
            ),
            &["by"],
        )?;
        registry.register(Box::new(refusal_checks.clone()))?;
        let searches = IntCounterVec::new(
            Opts::new("searches_total", "Listing searches, by what answered them"),
            &["by"],
        )?;
        registry.register(Box::new(searches.clone()))?;
        let search_index_listings =
            IntGauge::new("search_index_listings", "Listings in the search index")?;
        registry.register(Box::new(search_index_listings.clone()))?;
        let search_index_claims =
            IntGauge::new("search_index_claims", "Claims in the search index")?;
        registry.register(Box::new(search_index_claims.clone()))?;
        let search_index_stale = IntGauge::new(
            "search_index_stale",
            "Listings the search index may be behind on",
        )?;
        registry.register(Box::new(search_index_stale.clone()))?;
        let search_scans = IntCounter::new(
            "search_scans_total",
            "Scans of every listing row for changes the search index missed",
        )?;
        registry.register(Box::new(search_scans.clone()))?;
        let token_checks = IntCounterVec::new(
            Opts::new(
                "token_checks_total",
                "Bearer token checks, by what answered them",
            ),
            &["by"],
        )?;
        registry.register(Box::new(token_checks.clone()))?;
        let token_cache_entries = IntGauge::new("token_cache_entries", "Live sign-ins remembered")?;
        registry.register(Box::new(token_cache_entries.clone()))?;
        let listing_reads = IntCounterVec::new(
            Opts::new(
                "listing_reads_total",
                "Listing page and calendar reads, by what answered them",
            ),
            &["by"],
        )?;
        registry.register(Box::new(listing_reads.clone()))?;
        let listing_cache_entries = IntGauge::new("listing_cache_entries", "Listings remembered")?;
        registry.register(Box::new(listing_cache_entries.clone()))?;
        let calendar_reads = IntCounterVec::new(
            Opts::new(
                "calendar_reads_total",
                "Calendar pages' taken nights, by what answered them",
            ),
            &["by"],
        )?;
        registry.register(Box::new(calendar_reads.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            ws_sessions,
            ws_disconnects,
            events,
            redis_publish_failures,
            holds_swept,
            property_actors,
            db_statements,
            calendar_loads,
            calendar_starts,
            refusal_checks,
            searches,
            search_index_listings,
            search_index_claims,
            search_index_stale,
            search_scans,
            token_checks,
            token_cache_entries,
            listing_reads,
            listing_cache_entries,
            calendar_reads,
        })
    }

    /// Adds a counter kept elsewhere (the SQLite group committer's).
    pub fn register(&self, counter: IntCounter) -> anyhow::Result<()> {
        self.registry.register(Box::new(counter))?;
        Ok(())
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8(out)?)
    }
}
