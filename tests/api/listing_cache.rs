//! Listings remembered (`roost::services::listing_cache`): a listing's page
//! and its calendar's prices come from memory once read, every change is
//! on the node that made it at once and on another node as soon as Redis
//! brings word (or, with no word, within `ROOST_EVENT_POLL_MS`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDatabase, day, eventually, redis_url};

both_backends!(
    every_change_is_on_the_node_that_made_it_at_once,
    a_search_page_is_made_of_remembered_listings,
    another_node_hears_of_a_change_through_redis,
    without_redis_another_node_forgets_within_the_poll_interval,
);

const BY_MEMORY: &str = "roost_listing_reads_total{by=\"memory\"}";
const SEARCHED_BY_MEMORY: &str = "roost_searches_total{by=\"memory\"}";
const STATEMENTS: &str = "roost_db_statements_total";

/// The titles of the first page of a search for `city`.
async fn search_titles(app: &TestApp, city: &str) -> Vec<String> {
    let res = app
        .get("/api/v1/properties")
        .query(&[("city", city)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn page(app: &TestApp, id: i64) -> (StatusCode, Value) {
    let res = app
        .get(&format!("/api/v1/properties/{id}"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Each free night's price over the first `nights` from `day(30)`.
async fn prices(app: &TestApp, id: i64, nights: i64) -> Vec<i64> {
    let path = format!(
        "/api/v1/properties/{id}/availability?from={}&to={}",
        day(30),
        day(30 + nights)
    );
    let res = app.get(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    let body: Value = res.json().await.unwrap();
    body["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["amount"].as_i64().unwrap())
        .collect()
}

/// Reads the page until a read comes from memory (word of the listing's
/// creation may reach another node after its first read, and rightly
/// makes it forget).
async fn remembered_by(app: &TestApp, id: i64) {
    eventually("the page is answered from memory", || async {
        let before = app.metric(BY_MEMORY).await;
        assert_eq!(page(app, id).await.0, StatusCode::OK);
        app.metric(BY_MEMORY).await - before == 1.0
    })
    .await;
}

async fn patch_title(app: &TestApp, host: &str, id: i64, title: &str) {
    let res = app
        .patch(&format!("/api/v1/properties/{id}"))
        .bearer_auth(host)
        .json(&json!({"title": title}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Memory answers a page read twice; an edit, a pricing change, a season
/// added and removed, and a delisting are each in the very next read (the
/// poll interval, and so memory's age limit, is ten minutes here).
async fn every_change_is_on_the_node_that_made_it_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.event_poll_interval = Duration::from_secs(600);
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let id = app
        .create_listing(&host, json!({"price_per_night": 10_000}))
        .await;
    remembered_by(&app, id).await;
    assert_eq!(prices(&app, id, 7).await, vec![10_000; 7]);
    let before = app.metric(BY_MEMORY).await;
    assert_eq!(prices(&app, id, 7).await, vec![10_000; 7]);
    assert_eq!(app.metric(BY_MEMORY).await - before, 1.0);

    patch_title(&app, &host, id, "Renamed at once").await;
    assert_eq!(page(&app, id).await.1["title"], "Renamed at once");

    let res = app
        .client
        .put(app.url(&format!("/api/v1/properties/{id}/pricing")))
        .bearer_auth(&host)
        .json(&json!({"weekend_price": 15_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let weekend = prices(&app, id, 7).await;
    assert_eq!(weekend.iter().filter(|p| **p == 15_000).count(), 2);

    let res = app
        .post(&format!("/api/v1/properties/{id}/rates"))
        .bearer_auth(&host)
        .json(&json!({"start": day(30), "end": day(37), "price": 20_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let season: Value = res.json().await.unwrap();
    assert_eq!(prices(&app, id, 7).await, vec![20_000; 7]);
    let res = app
        .delete(&format!("/api/v1/properties/{id}/rates/{}", season["id"]))
        .bearer_auth(&host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(prices(&app, id, 7).await, weekend);

    remembered_by(&app, id).await;
    app.delist(&host, id).await;
    assert_eq!(page(&app, id).await.0, StatusCode::NOT_FOUND);
}

/// A search the index answers takes its page's listings from memory: once
/// they are remembered it costs no statement at all, and an edit is in the
/// very next search (the poll interval is ten minutes here).
async fn a_search_page_is_made_of_remembered_listings(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.event_poll_interval = Duration::from_secs(600);
        s.hold_sweep_interval = None;
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let city = "Remembrance Bay";
    let id = app.create_listing(&host, json!({"city": city})).await;
    let other = app.create_listing(&host, json!({"city": city})).await;
    eventually("a search answered by memory costs no statement", || async {
        let searched = app.metric(SEARCHED_BY_MEMORY).await;
        let statements = app.metric(STATEMENTS).await;
        let titles = search_titles(&app, city).await;
        titles.len() == 2
            && app.metric(SEARCHED_BY_MEMORY).await - searched == 1.0
            && app.metric(STATEMENTS).await - statements == 0.0
    })
    .await;
    patch_title(&app, &host, id, "Renamed at once").await;
    let titles = search_titles(&app, city).await;
    assert!(titles.contains(&"Renamed at once".to_owned()), "{titles:?}");
    app.delist(&host, other).await;
    assert_eq!(search_titles(&app, city).await, ["Renamed at once"]);
}

/// Two nodes on one database and Redis, their own forgetting ten minutes
/// away: node B, which remembers a listing, shows node A's edit once
/// Redis brings word of it.
async fn another_node_hears_of_a_change_through_redis(backend: Backend) {
    let slow_poll = |s: &mut roost::config::Settings| {
        s.redis_url = Some(roost::config::RedisUrl(redis_url()));
        s.event_poll_interval = Duration::from_secs(600);
        s.hold_sweep_interval = None;
    };
    let a = TestApp::spawn_with(backend, slow_poll).await;
    let b = TestApp::spawn_on(TestDatabase::shared(a.database.url.clone()), slow_poll).await;
    for app in [&a, &b] {
        app.ready_with("redis", "ok").await;
    }
    b_follows_an_edit_on_a(&a, &b).await;
}

/// Node B remembers a listing node A made, A renames it, and B comes to
/// show the new title on its page and in its search within `eventually`'s
/// wait.
async fn b_follows_an_edit_on_a(a: &TestApp, b: &TestApp) {
    let (_, host) = a.signed_in("host").await;
    let city = "Followed Harbour";
    let id = a.create_listing(&host, json!({"city": city})).await;
    remembered_by(b, id).await;
    patch_title(a, &host, id, "Renamed on A").await;
    eventually("node B shows node A's edit", || async {
        page(b, id).await.1["title"] == "Renamed on A"
            && search_titles(b, city).await == ["Renamed on A"]
    })
    .await;
}

/// Two nodes on one database, no Redis: node B forgets what it read by
/// the poll interval (300 ms here), so node A's edit is on B within it.
async fn without_redis_another_node_forgets_within_the_poll_interval(backend: Backend) {
    let fast_poll = |s: &mut roost::config::Settings| {
        s.event_poll_interval = Duration::from_millis(300);
        s.hold_sweep_interval = None;
    };
    let a = TestApp::spawn_with(backend, fast_poll).await;
    let b = TestApp::spawn_on(TestDatabase::shared(a.database.url.clone()), fast_poll).await;
    b_follows_an_edit_on_a(&a, &b).await;
}
