//! Settings: everything Roost reads from the environment, parsed once at startup.
//!
//! A bad value stops startup with one line that names the variable. Secrets
//! (database and Redis passwords) never appear in `Debug` output or logs.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The embedded default: a SQLite file.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .unwrap_or(raw);
        if path.is_empty() {
            return Err("a sqlite URL needs a file path, e.g. sqlite://roost.db".into());
        }
        if path.contains("://") {
            return Err("unsupported scheme: use a SQLite file path or postgres://…".into());
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// The URL with any password replaced, safe to log.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_url(url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host…` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

/// A secret from the environment: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which payment gateway takes the money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    /// The built-in card processor stand-in (test cards, signed webhooks).
    Sandbox,
    /// Stripe's API (PaymentIntents, Refunds, signed webhooks).
    Stripe,
}

impl GatewayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Sandbox => "sandbox",
            GatewayKind::Stripe => "stripe",
        }
    }
}

/// Payments: the gateway, and how its webhooks are checked.
#[derive(Clone, Debug)]
pub struct PaymentSettings {
    /// `None`: not chosen, on PostgreSQL (serving then refuses to start).
    pub gateway: Option<GatewayKind>,
    /// Webhooks signed longer ago than this (or ahead) are refused.
    pub webhook_tolerance: Duration,
    /// How long a processing payment holds its nights past the hold.
    pub processing_hold: Duration,
    /// A payment or refund whose outcome has not arrived by webhook this
    /// long after it was last heard of is asked about at the gateway.
    pub reconcile_after: Duration,
    /// The sandbox's delayed card succeeds after this.
    pub sandbox_delay: Duration,
    /// Webhook secrets to accept (several during a rotation; the first is
    /// the sandbox's signing secret). Empty: the one stored at first start.
    pub sandbox_webhook_secrets: Vec<Secret>,
    /// Where the sandbox delivers its webhooks (default: this node's own
    /// `/webhooks/payments/sandbox`).
    pub sandbox_webhook_url: Option<String>,
    /// The sandbox's address as clients reach it, for `confirm_url`
    /// (default: this node's own address).
    pub sandbox_public_url: Option<String>,
    /// With `ROOST_PAYMENTS=stripe`: its keys and where its API is.
    pub stripe: Option<StripeSettings>,
}

/// How Roost reaches Stripe.
#[derive(Clone, Debug)]
pub struct StripeSettings {
    /// `STRIPE_SECRET_KEY` (`sk_live_…` or `sk_test_…`).
    pub secret_key: Secret,
    /// `STRIPE_WEBHOOK_SECRET`: the endpoint's signing secrets
    /// (comma-separated during a rotation).
    pub webhook_secrets: Vec<Secret>,
    /// `STRIPE_API_BASE`, default `https://api.stripe.com`.
    pub api_base: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the server needs to start, from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    /// Connections in the pool; `None` picks a default per backend.
    pub database_pool_size: Option<usize>,
    pub redis_url: Option<RedisUrl>,
    pub bind: SocketAddr,
    pub workers: Option<usize>,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub token_ttl: Duration,
    /// How long a live token's check is remembered (`crate::auth::cache`);
    /// zero: every request asks the database.
    pub token_cache_max_age: Duration,
    /// Register and login, per client IP, per minute; 0 = off.
    pub auth_rate_limit_per_minute: u32,
    /// Whole API, per client IP, per second; 0 = off.
    pub api_rate_limit_per_second: u32,
    pub trusted_proxies: Vec<IpNet>,
    /// Browser origins allowed to call the API from other sites (CORS).
    pub cors_origins: CorsOrigins,
    pub shutdown_timeout: Duration,
    /// How long a pending booking holds its dates unpaid.
    pub hold_ttl: Duration,
    /// The platform's service fee on every stay, in basis points.
    pub service_fee_bp: i64,
    /// How often this node sweeps lapsed holds (marks them expired);
    /// `None`: it does not (another node must).
    pub hold_sweep_interval: Option<Duration>,
    /// Lapsed holds one sweep batch (one transaction) takes.
    pub hold_sweep_batch: i64,
    /// Days after check-out a completed stay may be reviewed (its window
    /// closes at the listing's local midnight ending the last of them).
    pub review_window_days: i64,
    /// How long an Idempotency-Key's first response is kept for replays.
    pub idempotency_ttl: Duration,
    pub payments: PaymentSettings,
    /// A listing's actor stops after this long without a message.
    pub property_idle_timeout: Duration,
    /// Calendar events older than this are pruned from the log (resuming
    /// from before it gets a fresh snapshot instead).
    pub event_retention: Duration,
    /// How often a node reads the event log for changes it may not have
    /// heard of through Redis (always when Redis is down or not configured).
    pub event_poll_interval: Duration,
    /// Answer availability searches from the in-memory index (`memory`,
    /// the default) or always from the SQL (`database`).
    pub search_from_memory: bool,
    /// On SQLite, commit the listing actors' writes in groups (`group`, the
    /// default: one transaction and one sync for the writes waiting at
    /// once) or each on its own (`each`). See `crate::db::group`.
    pub sqlite_group_commit: bool,
    pub websocket: WebsocketLimits,
}

/// What one websocket connection may use.
#[derive(Clone, Debug)]
pub struct WebsocketLimits {
    /// Listings one connection may follow at once.
    pub max_subscriptions: usize,
    /// The largest frame a client may send, in bytes.
    pub max_frame_bytes: usize,
    /// Open connections per client IP.
    pub max_connections_per_ip: usize,
    /// Messages waiting for a session before it counts as too slow.
    pub queue_capacity: usize,
    /// The kernel send buffer of a websocket connection, in bytes (the
    /// kernel doubles it). Fixed rather than autotuned up to megabytes, so a
    /// client that stops reading is noticed and costs little.
    pub send_buffer_bytes: usize,
    /// How often the server pings.
    pub heartbeat: Duration,
    /// A client heard nothing from for this long is dropped.
    pub client_timeout: Duration,
}

/// A Redis URL whose password never reaches the logs.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(pub String);

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl Settings {
    /// The payment gateway to serve with. On PostgreSQL it must be chosen
    /// (`ROOST_PAYMENTS`), so nobody ships free bookings by accident.
    pub fn require_gateway(&self) -> Result<GatewayKind, ConfigError> {
        self.payments.gateway.ok_or(ConfigError {
            var: "ROOST_PAYMENTS",
            message: "is required with PostgreSQL (a production store): set it to sandbox, knowing that the sandbox takes no real money".into(),
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let err = |var: &'static str, message: String| ConfigError { var, message };

        let database_url = match get("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(&raw).map_err(|m| err("DATABASE_URL", m))?,
            None => DatabaseUrl::Sqlite(PathBuf::from("roost.db")),
        };
        let database_pool_size = get("ROOST_DB_POOL_SIZE")
            .map(|v| parse_in_range("ROOST_DB_POOL_SIZE", &v, 1, 512))
            .transpose()?;
        let redis_url = match get("REDIS_URL") {
            Some(raw) => {
                redis::Client::open(raw.as_str())
                    .map_err(|e| err("REDIS_URL", format!("not a valid Redis URL ({e})")))?;
                Some(RedisUrl(raw))
            }
            None => None,
        };
        let bind = match get("ROOST_BIND") {
            Some(raw) => raw.trim().parse().map_err(|_| {
                err(
                    "ROOST_BIND",
                    format!("'{raw}' is not an address like 127.0.0.1:8080"),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let workers = get("ROOST_WORKERS")
            .map(|v| parse_in_range("ROOST_WORKERS", &v, 1, 256))
            .transpose()?;
        let log_filter = get("ROOST_LOG").unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| err("ROOST_LOG", format!("not a valid log filter ({e})")))?;
        let log_format = match get("ROOST_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "ROOST_LOG_FORMAT",
                    format!("'{other}' is not one of text, json"),
                ));
            }
        };
        let token_ttl = Duration::from_secs(
            get("ROOST_TOKEN_TTL_SECS")
                .map(|v| parse_in_range("ROOST_TOKEN_TTL_SECS", &v, 60, 90 * 24 * 3600))
                .transpose()?
                .unwrap_or(24 * 3600),
        );
        let token_cache_max_age = Duration::from_secs(
            get("ROOST_TOKEN_CACHE_SECS")
                .map(|v| parse_in_range("ROOST_TOKEN_CACHE_SECS", &v, 0, 3600))
                .transpose()?
                .unwrap_or(60),
        );
        let auth_rate_limit_per_minute = get("ROOST_AUTH_RATE_LIMIT")
            .map(|v| parse_in_range("ROOST_AUTH_RATE_LIMIT", &v, 0, 1_000_000))
            .transpose()?
            .unwrap_or(10);
        let api_rate_limit_per_second = get("ROOST_API_RATE_LIMIT")
            .map(|v| parse_in_range("ROOST_API_RATE_LIMIT", &v, 0, 1_000_000))
            .transpose()?
            .unwrap_or(100);
        let trusted_proxies = match get("ROOST_TRUSTED_PROXIES") {
            Some(raw) => parse_proxies(&raw).map_err(|m| err("ROOST_TRUSTED_PROXIES", m))?,
            None => Vec::new(),
        };
        let cors_origins = match get("ROOST_CORS_ORIGINS") {
            Some(raw) => CorsOrigins::parse(&raw).map_err(|m| err("ROOST_CORS_ORIGINS", m))?,
            None => CorsOrigins::List(Vec::new()),
        };
        let shutdown_timeout = Duration::from_secs(
            get("ROOST_SHUTDOWN_TIMEOUT_SECS")
                .map(|v| parse_in_range("ROOST_SHUTDOWN_TIMEOUT_SECS", &v, 0, 3600))
                .transpose()?
                .unwrap_or(30),
        );
        let secs = |var: &'static str, min: u64, max: u64, default: u64| {
            get(var)
                .map(|v| parse_in_range(var, &v, min, max))
                .transpose()
                .map(|v| Duration::from_secs(v.unwrap_or(default)))
        };
        let hold_ttl = secs("ROOST_HOLD_TTL_SECS", 1, 7 * 24 * 3600, 15 * 60)?;
        let hold_sweep_interval =
            Some(secs("ROOST_HOLD_SWEEP_SECS", 0, 3600, 30)?).filter(|d| !d.is_zero());
        let hold_sweep_batch = get("ROOST_HOLD_SWEEP_BATCH")
            .map(|v| parse_in_range("ROOST_HOLD_SWEEP_BATCH", &v, 1, 5_000))
            .transpose()?
            .unwrap_or(500);
        let review_window_days = get("ROOST_REVIEW_WINDOW_DAYS")
            .map(|v| parse_in_range("ROOST_REVIEW_WINDOW_DAYS", &v, 0i64, 365))
            .transpose()?
            .unwrap_or(crate::domain::review::DEFAULT_WINDOW_DAYS);
        let service_fee_bp = get("ROOST_SERVICE_FEE_BP")
            .map(|v| parse_in_range("ROOST_SERVICE_FEE_BP", &v, 0i64, 5_000))
            .transpose()?
            .unwrap_or(0);
        let property_idle_timeout = secs("ROOST_PROPERTY_IDLE_SECS", 1, 24 * 3600, 300)?;
        let idempotency_ttl = secs("ROOST_IDEMPOTENCY_TTL_SECS", 1, 30 * 24 * 3600, 24 * 3600)?;
        // The embedded default takes the sandbox; PostgreSQL (production)
        // must name its gateway, checked when serving (`require_gateway`).
        let gateway = match (
            get("ROOST_PAYMENTS").as_deref().map(str::trim),
            &database_url,
        ) {
            (Some("sandbox"), _) | (None, DatabaseUrl::Sqlite(_)) => Some(GatewayKind::Sandbox),
            (Some("stripe"), _) => Some(GatewayKind::Stripe),
            (None, DatabaseUrl::Postgres(_)) => None,
            (Some(other), _) => {
                return Err(err(
                    "ROOST_PAYMENTS",
                    format!("'{other}' is not one of sandbox, stripe"),
                ));
            }
        };
        let secrets = |var: &'static str| -> Vec<Secret> {
            get(var)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Secret(s.to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let stripe = if gateway == Some(GatewayKind::Stripe) {
            let secret_key = get("STRIPE_SECRET_KEY")
                .map(|k| Secret(k.trim().to_owned()))
                .ok_or_else(|| {
                    err(
                        "STRIPE_SECRET_KEY",
                        "is required with ROOST_PAYMENTS=stripe".into(),
                    )
                })?;
            let webhook_secrets = secrets("STRIPE_WEBHOOK_SECRET");
            if webhook_secrets.is_empty() {
                return Err(err(
                    "STRIPE_WEBHOOK_SECRET",
                    "is required with ROOST_PAYMENTS=stripe (the endpoint's whsec_… signing secret)".into(),
                ));
            }
            let api_base = match get("STRIPE_API_BASE") {
                None => "https://api.stripe.com".to_owned(),
                Some(raw) if raw.starts_with("http://") || raw.starts_with("https://") => {
                    raw.trim().trim_end_matches('/').to_owned()
                }
                Some(_) => {
                    return Err(err(
                        "STRIPE_API_BASE",
                        "must be an http:// or https:// URL".into(),
                    ));
                }
            };
            Some(StripeSettings {
                secret_key,
                webhook_secrets,
                api_base,
            })
        } else {
            None
        };
        let url = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match get(var) {
                None => Ok(None),
                Some(raw) if raw.starts_with("http://") || raw.starts_with("https://") => {
                    Ok(Some(raw.trim().trim_end_matches('/').to_owned()))
                }
                Some(_) => Err(err(var, "must be an http:// or https:// URL".into())),
            }
        };
        let payments = PaymentSettings {
            gateway,
            webhook_tolerance: secs("ROOST_WEBHOOK_TOLERANCE_SECS", 1, 3600, 300)?,
            processing_hold: secs("ROOST_PAYMENT_PROCESSING_HOLD_SECS", 1, 24 * 3600, 900)?,
            reconcile_after: secs("ROOST_RECONCILE_AFTER_SECS", 1, 24 * 3600, 300)?,
            sandbox_delay: Duration::from_millis(
                get("ROOST_SANDBOX_DELAY_MS")
                    .map(|v| parse_in_range("ROOST_SANDBOX_DELAY_MS", &v, 0, 600_000))
                    .transpose()?
                    .unwrap_or(3_000),
            ),
            sandbox_webhook_secrets: secrets("ROOST_SANDBOX_WEBHOOK_SECRET"),
            sandbox_webhook_url: url("ROOST_SANDBOX_WEBHOOK_URL")?,
            sandbox_public_url: url("ROOST_SANDBOX_PUBLIC_URL")?,
            stripe,
        };
        let event_retention = secs(
            "ROOST_EVENT_RETENTION_SECS",
            60,
            365 * 24 * 3600,
            7 * 24 * 3600,
        )?;
        let event_poll_interval = Duration::from_millis(
            get("ROOST_EVENT_POLL_MS")
                .map(|v| parse_in_range("ROOST_EVENT_POLL_MS", &v, 50, 600_000))
                .transpose()?
                .unwrap_or(5_000),
        );
        let search_from_memory = match get("ROOST_SEARCH_FROM").as_deref().map(str::trim) {
            None | Some("memory") => true,
            Some("database") => false,
            Some(other) => {
                return Err(err(
                    "ROOST_SEARCH_FROM",
                    format!("'{other}' is not one of memory, database"),
                ));
            }
        };
        let sqlite_group_commit = match get("ROOST_SQLITE_COMMIT").as_deref().map(str::trim) {
            None | Some("group") => true,
            Some("each") => false,
            Some(other) => {
                return Err(err(
                    "ROOST_SQLITE_COMMIT",
                    format!("'{other}' is not one of group, each"),
                ));
            }
        };
        let count = |var: &'static str, min: usize, max: usize, default: usize| {
            get(var)
                .map(|v| parse_in_range(var, &v, min, max))
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        let websocket = WebsocketLimits {
            max_subscriptions: count("ROOST_WS_MAX_SUBSCRIPTIONS", 1, 10_000, 100)?,
            max_frame_bytes: count("ROOST_WS_MAX_FRAME_BYTES", 256, 1 << 20, 4096)?,
            max_connections_per_ip: count("ROOST_WS_MAX_CONNECTIONS_PER_IP", 1, 100_000, 64)?,
            queue_capacity: count("ROOST_WS_QUEUE", 4, 100_000, 256)?,
            send_buffer_bytes: count("ROOST_WS_SEND_BUFFER_BYTES", 4096, 16 << 20, 128 << 10)?,
            heartbeat: secs("ROOST_WS_HEARTBEAT_SECS", 1, 300, 15)?,
            client_timeout: secs("ROOST_WS_CLIENT_TIMEOUT_SECS", 2, 3600, 45)?,
        };
        if websocket.client_timeout <= websocket.heartbeat {
            return Err(err(
                "ROOST_WS_CLIENT_TIMEOUT_SECS",
                "must be longer than ROOST_WS_HEARTBEAT_SECS".into(),
            ));
        }

        Ok(Self {
            database_url,
            database_pool_size,
            redis_url,
            bind,
            workers,
            log_filter,
            log_format,
            token_ttl,
            token_cache_max_age,
            auth_rate_limit_per_minute,
            api_rate_limit_per_second,
            trusted_proxies,
            cors_origins,
            shutdown_timeout,
            hold_ttl,
            service_fee_bp,
            hold_sweep_interval,
            hold_sweep_batch,
            review_window_days,
            idempotency_ttl,
            payments,
            property_idle_timeout,
            event_retention,
            event_poll_interval,
            search_from_memory,
            sqlite_group_commit,
            websocket,
        })
    }
}

/// Which other sites' pages may call the API from a browser: none (the
/// default), a list of exact origins, or any (`*`; never with credentials,
/// which Roost does not use: its tokens travel in `Authorization`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or comma-separated origins as browsers send them:
    /// `scheme://host[:port]`, http or https, no path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items == ["*"] {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let rest = item
                .strip_prefix("https://")
                .or_else(|| item.strip_prefix("http://"));
            let valid = rest.is_some_and(|host| {
                !host.is_empty()
                    && !host.contains(['/', '?', '#', '@', '*', ' '])
                    && item.parse::<actix_web::http::Uri>().is_ok()
            });
            if !valid {
                return Err(format!(
                    "{item:?} is not an origin: give `*` alone, or origins such as https://app.example.com or http://localhost:3000 (no path)"
                ));
            }
            origins.push(item.to_ascii_lowercase());
        }
        Ok(CorsOrigins::List(origins))
    }
}

fn parse_in_range<T>(var: &'static str, raw: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let out_of_range = || ConfigError {
        var,
        message: format!("'{raw}' is not a whole number from {min} to {max}"),
    };
    let value: T = raw.trim().parse().map_err(|_| out_of_range())?;
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(value)
}

fn parse_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("'{item}' is not an IP address or CIDR range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_environment() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, DatabaseUrl::Sqlite("roost.db".into()));
        assert_eq!(s.bind, "127.0.0.1:8080".parse().unwrap());
        assert!(s.redis_url.is_none());
        assert_eq!(s.auth_rate_limit_per_minute, 10);
        assert_eq!(s.token_ttl, Duration::from_secs(86400));
        assert_eq!(s.token_cache_max_age, Duration::from_secs(60));
        assert!(s.sqlite_group_commit);
        assert!(
            !settings(&[("ROOST_SQLITE_COMMIT", "each")])
                .unwrap()
                .sqlite_group_commit
        );
        assert!(settings(&[("ROOST_SQLITE_COMMIT", "later")]).is_err());
    }

    #[test]
    fn cors_origins_are_exact_origins_or_any_and_none_by_default() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.cors_origins, CorsOrigins::List(Vec::new()));
        assert_eq!(
            CorsOrigins::parse(" https://App.example.com, http://localhost:3000 "),
            Ok(CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ]))
        );
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://files.example.com",
            "app.example.com",
            "*, https://app.example.com",
            "https://*.example.com",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_hold_sweeper_runs_every_30_s_in_batches_of_500_unless_told() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.hold_sweep_interval, s.hold_sweep_batch),
            (Some(Duration::from_secs(30)), 500)
        );
        let s = settings(&[
            ("ROOST_HOLD_SWEEP_SECS", "0"),
            ("ROOST_HOLD_SWEEP_BATCH", "50"),
        ])
        .unwrap();
        assert_eq!((s.hold_sweep_interval, s.hold_sweep_batch), (None, 50));
    }

    #[test]
    fn payments_default_to_the_sandbox_on_sqlite_and_must_be_chosen_on_postgres() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.require_gateway().unwrap(), GatewayKind::Sandbox);
        let s = settings(&[("DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!(s.require_gateway().unwrap_err().var, "ROOST_PAYMENTS");
        let s = settings(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("ROOST_PAYMENTS", "sandbox"),
            ("ROOST_SANDBOX_WEBHOOK_SECRET", "whsec_new, whsec_old"),
        ])
        .unwrap();
        assert_eq!(s.payments.sandbox_webhook_secrets.len(), 2);
        assert!(
            !format!("{s:?}").contains("whsec_new"),
            "secrets are never printed"
        );
        assert_eq!(
            settings(&[("ROOST_PAYMENTS", "paypal")]).unwrap_err().var,
            "ROOST_PAYMENTS"
        );
    }

    #[test]
    fn database_url_forms() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/r.db").unwrap(),
            DatabaseUrl::Sqlite("data/r.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/r.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/r.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("r.db").unwrap(),
            DatabaseUrl::Sqlite("r.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("mysql://u@h/db").is_err());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("ROOST_BIND", "localhost"),
            ("ROOST_AUTH_RATE_LIMIT", "-1"),
            ("ROOST_API_RATE_LIMIT", "lots"),
            ("ROOST_TOKEN_TTL_SECS", "5"),
            ("ROOST_TOKEN_CACHE_SECS", "3601"),
            ("ROOST_TRUSTED_PROXIES", "10.0.0.1,not-an-ip"),
            ("ROOST_LOG_FORMAT", "xml"),
            ("REDIS_URL", "http://nope"),
            ("DATABASE_URL", "mysql://x"),
            ("ROOST_DB_POOL_SIZE", "0"),
            ("ROOST_HOLD_SWEEP_SECS", "-1"),
            ("ROOST_HOLD_SWEEP_BATCH", "0"),
            ("ROOST_HOLD_SWEEP_BATCH", "5001"),
            ("ROOST_IDEMPOTENCY_TTL_SECS", "0"),
        ] {
            let e = settings(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(e.to_string().starts_with(var), "{e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://roost:hunter2@db:5432/roost"),
            ("REDIS_URL", "redis://:sekrit@cache:6379/0"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(shown.contains("postgres://roost:***@db:5432/roost"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let s = settings(&[("ROOST_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1 ,::1")]).unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(s.trusted_proxies[0].contains(&"10.1.2.3".parse::<IpAddr>().unwrap()));
    }
}
