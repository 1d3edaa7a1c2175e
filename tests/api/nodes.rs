//! Several `roost serve` processes on one PostgreSQL with one Redis: events
//! cross nodes, actors follow them, and a Redis outage loses nothing.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{Running, roost, start};
use crate::helpers::{
    Api, Backend, TestDatabase, day, eventually, postgres_ready, redis_url, services_required,
};

/// Starts `roost serve` on `database` with `redis`.
fn node(dir: &std::path::Path, database: &str, redis: &str, poll_ms: u64) -> Running {
    let mut cmd = roost(dir);
    cmd.env("DATABASE_URL", database)
        .env("REDIS_URL", redis)
        .env("ROOST_EVENT_POLL_MS", poll_ms.to_string())
        .env("ROOST_API_RATE_LIMIT", "0")
        .env("ROOST_AUTH_RATE_LIMIT", "0");
    start(cmd)
}

fn api(node: &Running) -> Api {
    Api::new(format!("http://127.0.0.1:{}", node.port))
}

/// Waits until the node's `/readyz` reports Redis as `want`.
async fn redis_becomes(api: &Api, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = api.get("/readyz").send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "Redis never makes a node unready"
        );
        let body: Value = res.json().await.unwrap();
        if body["redis"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis never became {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The listing's unavailable ranges as `node` answers (from its actor's memory).
async fn availability(api: &Api, id: i64) -> Value {
    let path = format!(
        "/api/v1/properties/{id}/availability?from={}&to={}",
        day(0),
        day(90)
    );
    let res = api.get(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["unavailable"].clone()
}

#[actix_web::test]
async fn a_booking_on_one_node_reaches_subscribers_and_actors_on_another() {
    if !postgres_ready("a_booking_on_one_node_reaches_subscribers_and_actors_on_another").await {
        return;
    }
    let database = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    // The log is read only every ten minutes: what arrives, came through Redis.
    let (url, redis) = (database.env_url(), redis_url());
    let (a, b) = {
        let (d1, u1, r1) = (dir.path().to_owned(), url.clone(), redis.clone());
        let a = std::thread::spawn(move || node(&d1, &u1, &r1, 600_000));
        let b = node(dir.path(), &url, &redis, 600_000);
        (a.join().unwrap(), b)
    };
    let (node_a, node_b) = (api(&a), api(&b));
    redis_becomes(&node_a, "ok").await;
    redis_becomes(&node_b, "ok").await;

    let (_, host) = node_a.signed_in("host").await;
    let (_, guest) = node_a.signed_in("guest").await;
    let id = node_a.create_listing(&host, json!({})).await;
    let mut on_b = node_b.ws(None).await;
    let snapshot = on_b.subscribe(id, None).await;
    assert_eq!(
        (snapshot["type"].as_str(), snapshot["seq"].as_i64()),
        (Some("snapshot"), Some(0))
    );
    assert_eq!(availability(&node_a, id).await, json!([]));

    // Booked on A: B's subscriber hears within a second; B's actor follows.
    let booking = node_a.booked(&guest, id, &day(10), &day(13)).await;
    let sent = Instant::now();
    let event = on_b
        .recv_within(Duration::from_secs(1))
        .await
        .unwrap_or_else(|| panic!("no event on node B within a second of the booking on node A"));
    eprintln!("node A → node B: {:?}", sent.elapsed());
    assert_eq!(
        (
            event["kind"].as_str(),
            event["seq"].as_i64(),
            event["entry_id"].as_i64()
        ),
        (Some("booking_held"), Some(1), Some(booking))
    );
    let taken = json!([{"start": day(10), "end": day(13), "kind": "held"}]);
    eventually("B's actor shows the hold", || async {
        availability(&node_b, id).await == taken
    })
    .await;

    // Cancelled on A: B hears it, and B's memory frees the nights.
    node_a.cancel(&guest, booking).await;
    let event = on_b
        .recv_within(Duration::from_secs(1))
        .await
        .expect("cancel on B within 1 s");
    assert_eq!(
        (event["kind"].as_str(), event["seq"].as_i64()),
        (Some("booking_cancelled"), Some(2))
    );
    eventually("B's actor frees the nights", || async {
        availability(&node_b, id).await == json!([])
    })
    .await;

    // Booked through B: no stale refusal; A's subscriber hears of it.
    let mut on_a = node_a.ws(None).await;
    assert_eq!(on_a.subscribe(id, None).await["seq"].as_i64(), Some(2));
    let again = node_b.booked(&guest, id, &day(10), &day(13)).await;
    for ws in [&mut on_a, &mut on_b] {
        let event = ws
            .recv_within(Duration::from_secs(1))
            .await
            .expect("event within 1 s");
        assert_eq!(
            (event["seq"].as_i64(), event["entry_id"].as_i64()),
            (Some(3), Some(again))
        );
    }
    // And A's actor, which last saw the nights free, refuses them now.
    let res = node_a.book(&guest, id, &day(11), &day(12)).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

/// A Redis of this test's own, on a free port, that it can stop and start.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// `None` (the test is skipped) when `redis-server` is not installed
    /// and services are not required.
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        if !redis.up() {
            assert!(
                !services_required(),
                "redis-server is not installed and services are required"
            );
            eprintln!("SKIPPED redis outage test: redis-server is not installed");
            return None;
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.down();
    }
}

#[actix_web::test]
async fn a_redis_outage_loses_no_event_and_fails_no_booking() {
    if !postgres_ready("a_redis_outage_loses_no_event_and_fails_no_booking").await {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let database = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let (a, b) = {
        let (d1, u1, r1) = (dir.path().to_owned(), url.clone(), redis.url());
        let a = std::thread::spawn(move || node(&d1, &u1, &r1, 5_000));
        let b = node(dir.path(), &url, &redis.url(), 5_000);
        (a.join().unwrap(), b)
    };
    let (node_a, node_b) = (api(&a), api(&b));
    redis_becomes(&node_a, "ok").await;
    redis_becomes(&node_b, "ok").await;

    let (_, host) = node_a.signed_in("host").await;
    let (_, guest) = node_a.signed_in("guest").await;
    let id = node_a.create_listing(&host, json!({})).await;
    let mut on_b = node_b.ws(None).await;
    assert_eq!(on_b.subscribe(id, None).await["seq"].as_i64(), Some(0));

    let mut seen: Vec<i64> = Vec::new();
    let mut client = Some(on_b);
    for i in 0..12_i64 {
        if i == 3 {
            redis.down();
            redis_becomes(&node_b, "degraded").await;
            redis_becomes(&node_a, "degraded").await;
        }
        if i == 6 {
            // The client drops off in the middle of the outage.
            client.take().unwrap().close().await;
        }
        if i == 9 {
            assert!(redis.up());
            redis_becomes(&node_a, "ok").await;
            redis_becomes(&node_b, "ok").await;
        }
        // Every booking succeeds, Redis or not.
        node_a
            .booked(&guest, id, &day(10 + 3 * i), &day(11 + 3 * i))
            .await;
        if let Some(ws) = client.as_mut() {
            // Live, through Redis or (while it is down) the log.
            let event = ws.recv().await;
            assert_eq!(event["type"], "event", "{event}");
            seen.push(event["seq"].as_i64().unwrap());
        }
    }
    // Back with since_seq: exactly what it missed, nothing twice.
    let mut ws = node_b.ws(None).await;
    let last = *seen.last().unwrap();
    let resumed = ws.subscribe(id, Some(last)).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    for event in ws.events((12 - last) as usize).await {
        seen.push(event["seq"].as_i64().unwrap());
    }
    assert_eq!(seen, (1..=12).collect::<Vec<_>>());
    // And live again through the restarted Redis.
    node_a.booked(&guest, id, &day(80), &day(81)).await;
    assert_eq!(ws.events(1).await[0]["seq"].as_i64(), Some(13));
    ws.quiet(Duration::from_millis(300)).await;
}
