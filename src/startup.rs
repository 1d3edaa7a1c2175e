//! Builds the application once (migrations, pool, shared state), binds, and
//! runs until SIGTERM/SIGINT, when it stops accepting and lets in-flight
//! requests finish (up to `ROOST_SHUTDOWN_TIMEOUT_SECS`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::actors::session::{Ending, sign_in_watch, watchdog};
use crate::actors::{EventBus, PropertyRegistry, relay};
use crate::config::GatewayKind;
use crate::config::Settings;
use crate::db::{Db, events, migrations, sandbox as db_sandbox};
use crate::error::ApiError;
use crate::http::metrics::Metrics;
use crate::http::observe::observe;
use crate::http::rate_limit::{Limiter, RateLimits};
use crate::payments::PaymentGateway;
use crate::payments::sandbox::SandboxGateway;
use crate::payments::sandbox::processor::{self, Sandbox};
use crate::payments::stripe::StripeGateway;
use crate::services::housekeeping;
use crate::state::AppState;
use crate::{api, auth, error};

pub use crate::http::JSON_LIMIT;
/// How often housekeeping runs (dead tokens, idle rate-limit buckets).
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Migrates the database, builds the shared state and binds `settings.bind`
    /// (port 0 picks a free port). Nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let applied = migrations::run(&settings.database_url)
            .await
            .with_context(|| format!("database {}", settings.database_url.redacted()))?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        let metrics = Metrics::new()?;
        let statements = Some(metrics.db_statements.clone());
        let db = Db::connect_counted(
            &settings.database_url,
            settings.database_pool_size,
            statements,
        )
        .context("DATABASE_URL")?;
        let db = if settings.sqlite_group_commit {
            db
        } else {
            db.without_group_commit()
        };
        if let Some(group) = db.group_commit() {
            metrics.register(group.commits.clone())?;
            metrics.register(group.writes.clone())?;
        }
        match db.warm().await {
            Ok(opened) => tracing::debug!(opened, "database pool open"),
            Err(e) => tracing::warn!(error = %e, "database pool not warmed; it opens as asked"),
        }
        let redis = settings
            .redis_url
            .as_ref()
            .map(|url| redis::Client::open(url.0.as_str()))
            .transpose()
            .context("REDIS_URL")?;
        let event_channel = db
            .run(|mut conn| async move { Ok::<_, ApiError>(events::channel(&mut conn).await?) })
            .await
            .context("reading the deployment's event channel")?;
        let bus = Arc::new(EventBus::new(
            settings.websocket.max_connections_per_ip,
            metrics.clone(),
        ));
        let search = Arc::new(crate::search::Availability::new(
            settings.search_from_memory,
            metrics.clone(),
        ));
        let listings = Arc::new(crate::services::listing_cache::ListingCache::new(
            settings.event_poll_interval,
            metrics.clone(),
        ));
        let mut followers: Vec<Arc<dyn crate::actors::bus::Follower>> = vec![listings.clone()];
        if settings.search_from_memory {
            followers.push(search.clone());
        }
        bus.set_followers(followers);
        let sign_ins = Arc::new(crate::auth::cache::SignIns::new(
            settings.token_cache_max_age,
            metrics.clone(),
        ));
        let properties = PropertyRegistry::new(
            db.clone(),
            bus.clone(),
            settings.hold_ttl,
            settings.property_idle_timeout,
            settings.search_from_memory.then(|| search.clone()),
        );
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("ROOST_BIND: cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let (payments, sandbox) = payment_gateway(&settings, &db, port).await?;
        let state = web::Data::new(AppState {
            properties,
            bus,
            sign_ins,
            search,
            listings,
            event_channel,
            db,
            rate_limits: RateLimits {
                api: Limiter::per_second(settings.api_rate_limit_per_second),
                auth: Limiter::per_minute(settings.auth_rate_limit_per_minute),
            },
            metrics,
            redis,
            decoy_hash: Arc::from(auth::password::decoy_hash().await?),
            payments,
            sandbox,
            settings,
        });

        let app_state = state.clone();
        let graphql = web::Data::new(crate::api::graphql::serving(state.clone()));
        let mut server = HttpServer::new(move || {
            let sandbox = app_state.sandbox.clone();
            let cors = app_state.settings.cors_origins.clone();
            App::new()
                .app_data(app_state.clone())
                .app_data(graphql.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(JSON_LIMIT)
                        .error_handler(error::json_error),
                )
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                .wrap(ErrorHandlers::new().default_handler(error::envelope_bare_errors))
                .wrap(from_fn(observe))
                .configure(|cfg| api::routes(cfg, &cors))
                .configure(|cfg| {
                    if let Some(sandbox) = sandbox {
                        processor::routes(sandbox)(cfg);
                    }
                })
        })
        .on_connect(api::ws::remember_socket)
        // Signals are handled in `run_until_stopped`: websocket sessions are
        // told to go first, or they would hold the graceful stop open.
        .disable_signals()
        .listen(listener)?
        .shutdown_timeout(state.settings.shutdown_timeout.as_secs());
        if let Some(workers) = state.settings.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (what a signal does).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.state.clone()));
        let sweeper = self
            .state
            .settings
            .hold_sweep_interval
            .map(|every| tokio::spawn(sweep_holds(self.state.clone(), every)));
        let reconciler = tokio::spawn(reconcile(self.state.clone()));
        let watchdog = tokio::spawn(watchdog(self.state.clone()));
        let signed_in_sessions = tokio::spawn(sign_in_watch(self.state.clone()));
        let relay = relay::spawn(self.state.clone());
        let search = tokio::spawn(self.state.search.clone().keep(
            self.state.db.clone(),
            self.state.settings.event_poll_interval,
        ));
        let sign_ins = tokio::spawn(self.state.sign_ins.clone().watch(self.state.db.clone()));
        // Listened for before the server says it is listening: a SIGTERM
        // sent the moment it does must stop it gracefully too.
        let stop_signals = StopSignals::listen()?;
        let signals = tokio::spawn(stop_on_signal(
            self.state.clone(),
            self.server.handle(),
            stop_signals,
        ));
        let sandbox = self
            .state
            .sandbox
            .clone()
            .map(|s| tokio::spawn(processor::run(s)));
        tracing::info!(
            address = %format!("{}:{}", self.state.settings.bind.ip(), self.port),
            database = %self.state.settings.database_url.redacted(),
            payments = self.state.payments.kind().as_str(),
            "roost listening"
        );
        let result = self.server.await;
        housekeeping.abort();
        sweeper.iter().for_each(|task| task.abort());
        watchdog.abort();
        signed_in_sessions.abort();
        reconciler.abort();
        signals.abort();
        sandbox.iter().for_each(|task| task.abort());
        relay.iter().for_each(|task| task.abort());
        search.abort();
        sign_ins.abort();
        self.state.properties.stop();
        tracing::info!("roost stopped");
        result
    }
}

/// The configured payment gateway, and the sandbox processor if it is the
/// sandbox: reached over HTTP at this node's own address (`port`), its
/// webhooks delivered back to this node unless configured otherwise.
async fn payment_gateway(
    settings: &Settings,
    db: &Db,
    port: u16,
) -> anyhow::Result<(Arc<dyn PaymentGateway>, Option<Arc<Sandbox>>)> {
    let p = &settings.payments;
    match settings.require_gateway()? {
        GatewayKind::Stripe => {
            let stripe = p.stripe.as_ref().context(
                "ROOST_PAYMENTS=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET",
            )?;
            Ok((
                Arc::new(StripeGateway::new(stripe, p.webhook_tolerance)),
                None,
            ))
        }
        GatewayKind::Sandbox => {
            let (api_key, stored_secret) =
                db.run(|mut conn| async move {
                    Ok::<_, ApiError>(db_sandbox::settings(&mut conn).await?)
                })
                .await
                .context("reading the sandbox's keys")?;
            let secrets: Vec<String> = if p.sandbox_webhook_secrets.is_empty() {
                vec![stored_secret]
            } else {
                p.sandbox_webhook_secrets
                    .iter()
                    .map(|s| s.0.clone())
                    .collect()
            };
            let host = match settings.bind.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let own = format!("http://{host}:{port}");
            let sandbox = Sandbox::new(
                db.clone(),
                api_key.clone(),
                secrets.clone(),
                p.sandbox_public_url.clone().unwrap_or_else(|| own.clone()),
                p.sandbox_webhook_url
                    .clone()
                    .unwrap_or_else(|| format!("{own}/webhooks/payments/sandbox")),
                p.sandbox_delay,
            );
            let gateway = SandboxGateway::new(
                format!("{own}/sandbox/v1"),
                api_key,
                secrets,
                p.webhook_tolerance,
            );
            Ok((Arc::new(gateway), Some(Arc::new(sandbox))))
        }
    }
}

/// Prunes dead tokens, expired idempotency keys and old calendar events (in
/// bounded batches), and
/// forgets idle rate-limit buckets, every `HOUSEKEEPING_EVERY`.
async fn housekeeping(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tick.tick().await;
        let cutoff = (crate::db::now() - chrono::Duration::days(1)).naive_utc();
        match housekeeping::prune_tokens(&state.db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "dead tokens deleted"),
            Err(e) => tracing::warn!(error = %e, "pruning dead tokens failed"),
        }
        match housekeeping::prune_idempotency_keys(&state.db, crate::db::now().naive_utc()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(error = %e, "pruning idempotency keys failed"),
        }
        let before = (crate::db::now() - state.settings.event_retention).naive_utc();
        match housekeeping::prune_events(&state.db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "old calendar events deleted"),
            Err(e) => tracing::warn!(error = %e, "pruning calendar events failed"),
        }
        state.rate_limits.api.forget_idle();
        state.rate_limits.auth.forget_idle();
    }
}

/// Sends refunds the gateway could not take when they were owed, and asks
/// the gateway about payments and refunds whose webhook is late, every
/// `ROOST_RECONCILE_AFTER_SECS` (at most a minute apart).
async fn reconcile(state: web::Data<AppState>) {
    let after = state.settings.payments.reconcile_after;
    let mut tick = tokio::time::interval(after.min(Duration::from_secs(60)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let settlement = state.settlement();
        match settlement.retry_refunds(after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sent = n, "owed refunds sent to the gateway"),
            Err(e) => tracing::warn!(error = %e, "owed refunds could not be sent yet"),
        }
        match settlement.reconcile(after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(applied = n, "reconciled with the payment gateway"),
            Err(e) => tracing::warn!(error = %e, "reconciling with the payment gateway failed"),
        }
    }
}

/// Marks lapsed holds expired, completes stays whose check-out day has
/// come and publishes reviews whose window has closed, every `ROOST_HOLD_SWEEP_SECS` (in batches until none is left; see
/// `services::housekeeping`).
async fn sweep_holds(state: web::Data<AppState>, every: Duration) {
    let sweeper = housekeeping::Sweeper {
        db: &state.db,
        bus: &state.bus,
        properties: &state.properties,
        batch: state.settings.hold_sweep_batch,
        swept: &state.metrics.holds_swept,
    };
    let completer = housekeeping::Completer {
        db: &state.db,
        bus: &state.bus,
        properties: &state.properties,
        batch: state.settings.hold_sweep_batch,
        review_window_days: state.settings.review_window_days,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweeper.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "lapsed holds marked expired"),
            Err(e) => tracing::warn!(error = %e, "sweeping lapsed holds failed"),
        }
        match completer.complete().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(completed = n, "stays completed"),
            Err(e) => tracing::warn!(error = ?e, "completing stays failed"),
        }
        let batch = state.settings.hold_sweep_batch;
        match crate::services::reviews::publish_due(&state.db, &state.bus, batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(published = n, "reviews published as their window closed"),
            Err(e) => tracing::warn!(error = ?e, "publishing reviews failed"),
        }
    }
}

/// The signals that stop the server, listened for from the moment this is
/// called: until then SIGTERM's default action would end the process on
/// the spot, with no graceful stop.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

/// SIGTERM or SIGINT: websocket clients are told to go (close 1001, resume
/// elsewhere with `since_seq`), then the server stops gracefully.
async fn stop_on_signal(
    state: web::Data<AppState>,
    server: ServerHandle,
    mut signals: StopSignals,
) {
    tokio::select! {
        _ = signals.term.recv() => {}
        _ = signals.interrupt.recv() => {}
    }
    tracing::info!(sessions = state.bus.session_count(), "stopping");
    for control in state.bus.controls() {
        control.end(Ending::ShuttingDown);
    }
    server.stop(true).await;
}
