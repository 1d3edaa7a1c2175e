//! Spawns the real server on port 0 against its own fresh database and talks
//! HTTP to it. Tests share nothing mutable, so they run in parallel.
//!
//! PostgreSQL variants use `ROOST_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) to create one database per
//! test. When PostgreSQL is unreachable they are skipped with a message, unless
//! `CI=true` or `ROOST_REQUIRE_SERVICES=1`, where a skip is a failure.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::{RequestBuilder, Response, StatusCode};
use roost::config::{DatabaseUrl, RedisUrl, Settings};
use roost::db::Db;
use roost::startup::Application;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each scenario `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    if $crate::helpers::postgres_ready(stringify!($name)).await {
                        super::$name($crate::helpers::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

pub fn admin_database_url() -> String {
    std::env::var("ROOST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn services_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("ROOST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Can the PostgreSQL variants run? Fails the test when services are required.
pub async fn postgres_ready(test: &str) -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = match READY.get() {
        Some(r) => r.clone(),
        None => {
            let r = AsyncPgConnection::establish(&admin_database_url())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            READY.get_or_init(|| r).clone()
        }
    };
    match ready {
        Ok(()) => true,
        Err(e) if services_required() => panic!(
            "{test}: PostgreSQL at ROOST_TEST_DATABASE_URL is unreachable ({e}) and services are required (CI): not skipping"
        ),
        Err(e) => {
            eprintln!("SKIPPED postgres::{test}: PostgreSQL unreachable ({e})");
            false
        }
    }
}

/// A Redis URL for tests that need one (`ROOST_TEST_REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("ROOST_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Settings for a test server: port 0, one worker, rate limits off.
pub fn test_settings() -> Settings {
    let mut s = Settings::from_lookup(|_| None).expect("default settings");
    s.bind = "127.0.0.1:0".parse().unwrap();
    s.workers = Some(1);
    s.auth_rate_limit_per_minute = 0;
    s.api_rate_limit_per_second = 0;
    s.shutdown_timeout = Duration::from_secs(1);
    s.database_pool_size = Some(4);
    s
}

/// A fresh, empty database of the given backend, deleted when dropped.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path: PathBuf = dir.path().join("roost.db");
                Self {
                    url: DatabaseUrl::Sqlite(path),
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("roost_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = AsyncPgConnection::establish(&admin_database_url())
                    .await
                    .expect("connect to test PostgreSQL");
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                Self {
                    url: DatabaseUrl::Postgres(with_database(&admin_database_url(), &name)),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// Another handle on a database some other handle made (and drops).
    pub fn shared(url: DatabaseUrl) -> Self {
        Self {
            url,
            _dir: None,
            pg_name: None,
        }
    }

    /// The database as `DATABASE_URL` names it, for the `roost` binary.
    pub fn env_url(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(p) => p.display().to_string(),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }

    /// Drops a PostgreSQL test database now, connections and all.
    pub async fn drop_now(&self) {
        if let Some(name) = &self.pg_name {
            drop_pg_database(name.clone()).await;
        }
    }
}

async fn drop_pg_database(name: String) {
    if let Ok(mut admin) = AsyncPgConnection::establish(&admin_database_url()).await {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop is not async: clean up on a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_pg_database(name));
                }
            })
            .join();
        }
    }
}

/// `postgres://u@h:p/old?x` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A Roost server's HTTP API, as a client sees it: an in-process test
/// server's or a `roost` process's.
pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
}

/// A test server in this process, with its own fresh database.
pub struct TestApp {
    pub api: Api,
    /// The server's own database, for checking what was (not) stored.
    pub db: Db,
    handle: ServerHandle,
    pub database: TestDatabase,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings adjusted by `configure` (rate limits, TTLs, Redis…).
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(TestDatabase::new(backend).await, configure).await
    }

    /// Spawns on a database made (and maybe filled) beforehand.
    pub async fn spawn_on(database: TestDatabase, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings();
        settings.database_url = database.url.clone();
        configure(&mut settings);
        if std::env::var("TEST_LOG").is_ok() {
            roost::telemetry::init(&settings);
        }
        let app = Application::build(settings.clone())
            .await
            .expect("build application");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        let db = Db::connect(&settings.database_url, Some(2)).expect("test pool");
        Self {
            api: Api::new(address),
            db,
            handle,
            database,
        }
    }

    /// The listing's live claims straight from the database, as (check_in, check_out).
    pub async fn live_claims(&self, property: i64) -> Vec<(chrono::NaiveDate, chrono::NaiveDate)> {
        let mut conn = self.db.get().await.unwrap();
        let from = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        roost::db::calendar::live_for_property(&mut conn, property, from)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.check_in, e.check_out))
            .collect()
    }

    /// An admin, made the way operators make the first one (the CLI's path), signed in.
    pub async fn signed_in_admin(&self) -> (i64, String) {
        use roost::domain::{Email, Password, PersonName, Role};
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        let user = roost::services::accounts::create(
            &self.db,
            &roost::commit::Commit::unkeyed(roost::domain::audit::AuditActor::cli()),
            roost::services::accounts::NewAccount {
                email: Email::parse(&email).unwrap(),
                name: PersonName::parse("Admin").unwrap(),
                password: Password::parse("password123").unwrap(),
                role: Role::Admin,
            },
        )
        .await
        .unwrap();
        let body: Value = self
            .login(&email, "password123")
            .await
            .json()
            .await
            .unwrap();
        (user.id, body["token"].as_str().unwrap().to_owned())
    }

    /// The audit trail's rows of `action`, oldest first, straight from the database.
    pub async fn audit_rows(&self, action: &str) -> Vec<roost::db::audit::AuditRow> {
        let mut conn = self.db.get().await.unwrap();
        let filter = roost::db::audit::AuditFilter {
            action: Some(action.to_owned()),
            limit: 10_000,
            ..Default::default()
        };
        let mut rows = roost::db::audit::list(&mut conn, &filter).await.unwrap();
        rows.reverse();
        rows
    }

    /// Every row of the audit trail.
    pub async fn audit_rows_all(&self) -> Vec<roost::db::audit::AuditRow> {
        let mut conn = self.db.get().await.unwrap();
        let filter = roost::db::audit::AuditFilter {
            limit: 100_000,
            ..Default::default()
        };
        roost::db::audit::list(&mut conn, &filter).await.unwrap()
    }

    /// Every refused authorization recorded so far, oldest first:
    /// (who, object type, object id, what they tried).
    pub async fn denials(&self) -> Vec<(Option<i64>, String, Option<i64>, String)> {
        self.audit_rows("access.denied")
            .await
            .into_iter()
            .map(|r| {
                let details: Value = serde_json::from_str(&r.details).unwrap();
                let attempted = details["attempted"].as_str().unwrap().to_owned();
                (r.actor_id, r.object_type, r.object_id, attempted)
            })
            .collect()
    }

    /// Runs `sql` on the server's database (to set a scene the API
    /// cannot, such as a booking made days ago).
    pub async fn execute(&self, sql: &str) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.db.get().await.unwrap();
        let q = diesel::sql_query(sql);
        roost::with_conn!(&mut conn, |c| q.execute(c).await).unwrap();
    }

    /// How many rows `table` has, straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        use diesel::QueryableByName;
        use diesel::sql_types::BigInt;
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.db.get().await.unwrap();
        let q = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"));
        let row: Count = roost::with_conn!(&mut conn, |c| q.get_result(c).await).unwrap();
        row.n
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    pub fn new(address: String) -> Self {
        Self {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    /// `GET path` as `token`'s user: asserts 200, returns the body.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let res = self.get(path).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.unwrap()
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.client.patch(self.url(path))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// Lists a place as `token`'s host: a valid listing with `overrides` laid over it.
    pub async fn create_listing(&self, token: &str, overrides: Value) -> i64 {
        let res = self
            .post("/api/v1/properties")
            .bearer_auth(token)
            .json(&listing(overrides))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// Asks to book `property` for `[check_in, check_out)`, two guests.
    pub async fn book(
        &self,
        token: &str,
        property: i64,
        check_in: &str,
        check_out: &str,
    ) -> Response {
        self.post("/api/v1/bookings")
            .bearer_auth(token)
            .json(&json!({
                "property_id": property,
                "check_in": check_in,
                "check_out": check_out,
                "guests": 2,
            }))
            .send()
            .await
            .unwrap()
    }

    /// Books and expects 201: the booking's id.
    pub async fn booked(&self, token: &str, property: i64, check_in: &str, check_out: &str) -> i64 {
        let res = self.book(token, property, check_in, check_out).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    pub async fn cancel(&self, token: &str, booking: i64) {
        let res = self
            .post(&format!("/api/v1/bookings/{booking}/cancel"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// The host blocks `[start, end)`: the block's id.
    pub async fn block(&self, token: &str, property: i64, start: &str, end: &str) -> i64 {
        let res = self
            .post(&format!("/api/v1/properties/{property}/blocks"))
            .bearer_auth(token)
            .json(&json!({"start": start, "end": end, "reason": "maintenance"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// Its host (or an admin) delists `property`: 204.
    pub async fn delist(&self, token: &str, property: i64) {
        let res = self
            .delete(&format!("/api/v1/properties/{property}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    pub async fn unblock(&self, token: &str, property: i64, block: i64) {
        let res = self
            .delete(&format!("/api/v1/properties/{property}/blocks/{block}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    /// Waits until the search index has scanned the listing rows twice
    /// more and holds no stale listing: rows changed behind the server's
    /// back (SQL, the seeder) are in its searches from then on. For a
    /// server with a short `event_poll_interval`.
    pub async fn search_caught_up(&self) {
        let scans = self.metric("roost_search_scans_total").await;
        for _ in 0..1000 {
            if self.metric("roost_search_scans_total").await >= scans + 2.0
                && self.metric("roost_search_index_stale").await == 0.0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the search index never caught up with the database");
    }

    /// `/metrics` as Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `/readyz`'s body.
    pub async fn readyz(&self) -> Value {
        let res = self.get("/readyz").send().await.unwrap();
        res.json().await.unwrap()
    }

    /// Polls until `/readyz` reports `value` for `field`.
    pub async fn ready_with(&self, field: &str, value: &str) {
        for _ in 0..500 {
            if self.readyz().await[field] == value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("/readyz never said {field}: {value}");
    }

    /// A Prometheus sample's value from `/metrics` (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    pub async fn get_me(&self, token: &str) -> Response {
        self.get("/api/v1/users/me")
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_me(&self, token: &str, body: Value) -> Response {
        self.patch("/api/v1/users/me")
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str, role: &str) -> Response {
        self.post("/api/v1/auth/register")
            .json(
                &json!({ "email": email, "password": password, "name": "Test User", "role": role }),
            )
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/api/v1/auth/login")
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Signs `token` out.
    pub async fn logout(&self, token: &str) -> Response {
        self.post("/api/v1/auth/logout")
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Registers a user of `role` (guest/host) and signs in: (user id, token).
    pub async fn signed_in(&self, role: &str) -> (i64, String) {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let res = self.register(&email, "password123", role).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let body: Value = self
            .login(&email, "password123")
            .await
            .json()
            .await
            .unwrap();
        (id, body["token"].as_str().unwrap().to_owned())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent at once; its completion need not be awaited.
        // (Fields drop after this, so the database goes only once the server is told to stop.)
        drop(self.handle.stop(false));
    }
}

/// `YYYY-MM-DD`, `offset` days from today (UTC).
pub fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A valid listing body, with `overrides` laid over it.
pub fn listing(overrides: Value) -> Value {
    let mut body = json!({
        "title": "Canal-side loft",
        "description": "Bright, quiet, two minutes from the tram.",
        "address": "Prinsengracht 263",
        "city": "Amsterdam",
        "country": "NL",
        "latitude": 52.3752,
        "longitude": 4.8840,
        "price_per_night": 12_500,
        "currency": "EUR",
        "cleaning_fee": 3_000,
        "max_guests": 4,
        "min_nights": 1,
        "max_nights": 30,
        "amenities": ["wifi", "kitchen"],
    });
    if let (Some(body), Some(overrides)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in overrides {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Asserts the one error shape and the code; returns the body.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for expected code {code}");
    assert!(
        res.headers().contains_key("x-request-id"),
        "every response carries X-Request-Id"
    );
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

/// A Redis URL pointing at a port where nothing listens.
pub fn dead_redis_url() -> RedisUrl {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    RedisUrl(format!("redis://127.0.0.1:{port}"))
}

/// A websocket client of `/ws`, speaking the real protocol over a real socket.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// The server's `hello` frame.
    pub hello: Value,
    /// GraphQL messages read while waiting for another operation's.
    pub pending: Vec<Value>,
}

/// How long a test waits for a frame before failing.
pub const FRAME_WAIT: Duration = Duration::from_secs(15);

impl Api {
    pub fn ws_url(&self, query: &str) -> String {
        format!("{}/ws{query}", self.address.replacen("http://", "ws://", 1))
    }

    /// Connects to `/ws` (signed in when `token` is given) and reads `hello`.
    pub async fn ws(&self, token: Option<&str>) -> WsClient {
        let query = token
            .map(|t| format!("?access_token={t}"))
            .unwrap_or_default();
        let (stream, _) = tokio_tungstenite::connect_async(self.ws_url(&query))
            .await
            .expect("websocket connect");
        let mut client = WsClient {
            stream,
            hello: Value::Null,
            pending: Vec::new(),
        };
        client.hello = client.recv().await;
        assert_eq!(client.hello["type"], "hello", "{}", client.hello);
        client
    }
}

impl Api {
    pub fn graphql_ws_url(&self, query: &str) -> String {
        let base = self.address.replacen("http://", "ws://", 1);
        format!("{base}/graphql/ws{query}")
    }

    /// Connects to `/graphql/ws` offering `graphql-transport-ws`; the
    /// upgrade's answer is returned if it is refused.
    pub async fn graphql_ws_raw(
        &self,
        query: &str,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = self.graphql_ws_url(query).into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (stream, response) = tokio_tungstenite::connect_async(request).await?;
        let protocol = response.headers().get("sec-websocket-protocol");
        assert_eq!(protocol.unwrap(), "graphql-transport-ws");
        Ok(WsClient {
            stream,
            hello: Value::Null,
            pending: Vec::new(),
        })
    }

    /// A `/graphql/ws` connection, initialized (signed in when `token` is
    /// given, in `connection_init`'s payload): `hello` is the ack.
    pub async fn graphql_ws(&self, token: Option<&str>) -> WsClient {
        let mut client = self.graphql_ws_raw("").await.expect("websocket connect");
        let payload = match token {
            Some(token) => json!({"authorization": format!("Bearer {token}")}),
            None => json!({}),
        };
        client
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        client.hello = client.recv().await;
        assert_eq!(client.hello["type"], "connection_ack", "{}", client.hello);
        client
    }
}

impl WsClient {
    /// Starts a GraphQL operation `id` over `/graphql/ws`.
    pub async fn start(&mut self, id: &str, query: &str, variables: Value) {
        let payload = json!({"query": query, "variables": variables});
        self.send(json!({"type": "subscribe", "id": id, "payload": payload}))
            .await;
    }

    /// The next `next` message's payload for operation `id`; other
    /// operations' messages are kept for later.
    pub async fn next_of(&mut self, id: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|m| m["id"] == id) {
            let message = self.pending.remove(i);
            assert_eq!(message["type"], "next", "{message}");
            return message["payload"].clone();
        }
        loop {
            let message = self.recv().await;
            if message["id"] == id {
                assert_eq!(message["type"], "next", "{message}");
                return message["payload"].clone();
            }
            self.pending.push(message);
        }
    }

    pub async fn send(&mut self, frame: Value) {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(
                frame.to_string(),
            ))
            .await
            .expect("websocket send");
    }

    pub async fn send_raw(&mut self, message: tokio_tungstenite::tungstenite::Message) {
        use futures_util::SinkExt;
        self.stream.send(message).await.expect("websocket send");
    }

    /// The next message of any kind (pings are answered by the library).
    pub async fn next_message(
        &mut self,
        wait: Duration,
    ) -> Option<tokio_tungstenite::tungstenite::Message> {
        use futures_util::StreamExt;
        match tokio::time::timeout(wait, self.stream.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(e))) => {
                eprintln!("websocket error: {e}");
                None
            }
            Ok(None) => None,
            Err(_) => panic!("no websocket message within {wait:?}"),
        }
    }

    /// The next text frame as JSON, within `wait`; `None` if none came.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            match next {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => panic!("server closed: {frame:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => panic!("websocket error: {e}"),
                Ok(None) => panic!("websocket ended"),
            }
        }
    }

    /// The code of the close frame the server ends the connection with
    /// (frames before it skipped; fails the test after [`FRAME_WAIT`]).
    pub async fn close_code(&mut self) -> u16 {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.next_message(FRAME_WAIT).await {
                Some(Message::Close(Some(frame))) => return frame.code.into(),
                Some(Message::Close(None)) | None => panic!("closed without a code"),
                Some(_) => continue,
            }
        }
    }

    /// The next text frame as JSON (fails the test after [`FRAME_WAIT`]).
    pub async fn recv(&mut self) -> Value {
        self.recv_within(FRAME_WAIT)
            .await
            .expect("a websocket frame in time")
    }

    /// Asserts no text frame arrives for `wait`.
    pub async fn quiet(&mut self, wait: Duration) {
        if let Some(frame) = self.recv_within(wait).await {
            panic!("expected no more frames, got {frame}");
        }
    }

    pub async fn subscribe(&mut self, property: i64, since_seq: Option<i64>) -> Value {
        let mut frame = json!({"type": "subscribe", "property_id": property});
        if let Some(seq) = since_seq {
            frame["since_seq"] = json!(seq);
        }
        self.send(frame).await;
        self.recv().await
    }

    /// The next `n` calendar events (other frames are a failure).
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = self.recv().await;
            assert_eq!(frame["type"], "event", "{frame}");
            out.push(frame);
        }
        out
    }

    /// The connection's socket, to read the server's raw bytes.
    pub fn into_raw(self) -> tokio::net::TcpStream {
        match self.stream.into_inner() {
            tokio_tungstenite::MaybeTlsStream::Plain(s) => s,
            _ => panic!("tests use plain TCP"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Polls `check` until it holds, for up to ten seconds; fails with `what`.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
