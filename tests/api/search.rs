//! Availability search from memory: its pages and cursors equal the SQL's
//! over seeded, randomized data (holds past and before their expiry,
//! blocks, listings and bookings changed through the API), and a change on
//! one node is in every node's search by the time its event is.

use std::time::Duration;

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use roost::db::Db;
use roost::db::calendar::{self, NewEntry};
use roost::search::Availability;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDatabase, assert_error, day, eventually, redis_url};

const CITIES: [(&str, &str, f64, f64); 6] = [
    ("Paris", "FR", 48.8566, 2.3522),
    ("Lyon", "FR", 45.7640, 4.8357),
    ("Berlin", "DE", 52.52, 13.405),
    ("Lisbon", "PT", 38.7223, -9.1393),
    ("Tokyo", "JP", 35.6762, 139.6503),
    ("Amsterdam", "NL", 52.3676, 4.9041),
];
const AMENITIES: [&str; 6] = ["wifi", "kitchen", "washer", "pool", "tv", "heating"];

/// A database seeded with `properties` listings and `bookings` bookings,
/// plus, in March 2031 (past the seeder's dates), on every third listing a
/// hold that lapsed an hour ago, one that lapses in a day, and a block.
async fn seeded(backend: Backend, properties: usize, bookings: usize) -> TestDatabase {
    let database = TestDatabase::new(backend).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    let db = Db::connect(&database.url, Some(4)).unwrap();
    roost::seed::run(
        &db,
        roost::seed::SeedOptions {
            seed: 18,
            properties,
            bookings,
            hosts: 20,
            guests: 60,
            today: chrono::Utc::now().date_naive(),
        },
    )
    .await
    .unwrap();
    let now = chrono::Utc::now().naive_utc();
    let march = |d: u32| NaiveDate::from_ymd_opt(2031, 3, d).unwrap();
    let mut rows = Vec::new();
    for property_id in (1..=properties as i64).step_by(3) {
        let shift = (property_id % 7) as u32;
        let hold = |check_in: NaiveDate, check_out: NaiveDate, expires| NewEntry {
            property_id,
            kind: calendar::KIND_BOOKING,
            status: "pending",
            check_in,
            check_out,
            hold_expires_at: Some(expires),
            created_by: 1,
            guest_id: Some(1),
            guests: Some(1),
            nights: Some((check_out - check_in).num_days()),
            price_per_night: Some(10_000),
            cleaning_fee: Some(0),
            total: Some(10_000 * (check_out - check_in).num_days()),
            currency: Some("EUR"),
            created_at: now,
            updated_at: now,
            ..Default::default()
        };
        rows.push(hold(
            march(1 + shift),
            march(5 + shift),
            now - chrono::Duration::hours(1),
        ));
        rows.push(hold(
            march(10 + shift),
            march(13 + shift),
            now + chrono::Duration::days(1),
        ));
        rows.push(NewEntry {
            property_id,
            kind: calendar::KIND_BLOCK,
            status: calendar::STATUS_BLOCKED,
            check_in: march(18 + shift),
            check_out: march(22 + shift),
            created_by: 1,
            created_at: now,
            updated_at: now,
            ..Default::default()
        });
    }
    let mut conn = db.get().await.unwrap();
    calendar::insert_many(&mut conn, rows).await.unwrap();
    database
}

/// A random search: some filters, maybe dates (often in the seeded
/// bookings' months, sometimes across March 2031's holds and blocks), a
/// sort and a small page.
fn random_search(rng: &mut StdRng) -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| q.push((k.to_owned(), v));
    let (city, country, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
    match rng.random_range(0..10) {
        0..=2 => put("city", city.to_lowercase()),
        3 => put("country", country.into()),
        4 => {
            for (k, v) in map_box(rng, city, lat, lon) {
                put(&k, v);
            }
        }
        _ => {}
    }
    if rng.random_bool(0.3) {
        put("min_price", (rng.random_range(0..200) * 100).to_string());
    }
    if rng.random_bool(0.3) {
        put("max_price", (rng.random_range(200..600) * 100).to_string());
    }
    if rng.random_bool(0.3) {
        put("guests", rng.random_range(1..=8).to_string());
    }
    if rng.random_bool(0.2) {
        let n = rng.random_range(1..=2);
        let names: Vec<&str> = (0..n)
            .map(|_| AMENITIES[rng.random_range(0..AMENITIES.len())])
            .collect();
        put("amenities", names.join(","));
    }
    if rng.random_bool(0.2) {
        put(
            "min_rating",
            ["3", "3.5", "4", "4.25", "4.5"][rng.random_range(0..5)].into(),
        );
    }
    if rng.random_bool(0.25) {
        // Flexible dates: a few nights anywhere in a window.
        let from = if rng.random_bool(0.4) {
            NaiveDate::from_ymd_opt(2031, 2, 25).unwrap()
        } else {
            chrono::Utc::now().date_naive() + chrono::Duration::days(rng.random_range(0..60))
        };
        let nights = rng.random_range(1..=7);
        let days = rng.random_range(nights..=40);
        put("nights", nights.to_string());
        put("within_from", from.to_string());
        put(
            "within_to",
            (from + chrono::Duration::days(days)).to_string(),
        );
    } else if rng.random_bool(0.75) {
        let start = if rng.random_bool(0.4) {
            NaiveDate::from_ymd_opt(2031, 2, 25).unwrap()
                + chrono::Duration::days(rng.random_range(0..30))
        } else {
            chrono::Utc::now().date_naive() + chrono::Duration::days(rng.random_range(0..120))
        };
        let nights = rng.random_range(1..=9);
        put("check_in", start.to_string());
        put(
            "check_out",
            (start + chrono::Duration::days(nights)).to_string(),
        );
    }
    put(
        "sort",
        ["price_asc", "price_desc", "newest", "rating_desc"][rng.random_range(0..4)].into(),
    );
    put("limit", rng.random_range(1..=12).to_string());
    q
}

/// A map's box of any size near the city, sometimes with the city too:
/// memory walks the cells the box touches, or everything when it touches
/// too many.
fn map_box(rng: &mut StdRng, city: &str, lat: f64, lon: f64) -> Vec<(String, String)> {
    let half = [0.01, 0.03, 0.05, 0.12, 0.4][rng.random_range(0..5)];
    let (lat, lon) = (
        lat + rng.random_range(-0.05..0.05),
        lon + rng.random_range(-0.05..0.05),
    );
    let mut q = vec![
        ("min_lat".to_owned(), format!("{:.4}", lat - half)),
        ("max_lat".to_owned(), format!("{:.4}", lat + half)),
        ("min_lon".to_owned(), format!("{:.4}", lon - half)),
        ("max_lon".to_owned(), format!("{:.4}", lon + half)),
    ];
    if rng.random_bool(0.2) {
        q.push(("city".to_owned(), city.to_lowercase()));
    }
    q
}

/// A random search of a map's box: [`random_search`]'s other filters,
/// dates and sort, with a box instead of its place.
fn map_search(rng: &mut StdRng) -> Vec<(String, String)> {
    let place = [
        "city", "country", "min_lat", "max_lat", "min_lon", "max_lon",
    ];
    let mut q = random_search(rng);
    q.retain(|(k, _)| !place.contains(&k.as_str()));
    let (city, _, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
    q.extend(map_box(rng, city, lat, lon));
    q
}

/// Runs `count` searches made by `make` over HTTP, up to three pages
/// each, and compares every page and cursor with the SQL's over the same
/// data. Returns how many pages it asked for.
async fn compare(
    app: &TestApp,
    rng: &mut StdRng,
    count: usize,
    make: fn(&mut StdRng) -> Vec<(String, String)>,
) -> usize {
    // The SQL's answer, with flexible dates found the way it finds them.
    let sql_only = Availability::new(false, roost::http::metrics::Metrics::new().unwrap());
    let remembers_nothing = roost::services::listing_cache::ListingCache::new(
        std::time::Duration::ZERO,
        roost::http::metrics::Metrics::new().unwrap(),
    );
    let mut pages = 0;
    for _ in 0..count {
        let query = make(rng);
        let mut cursor: Option<String> = None;
        for _ in 0..3 {
            let mut params = query.clone();
            if let Some(c) = &cursor {
                params.push(("cursor".into(), c.clone()));
            }
            let res = app
                .get("/api/v1/properties")
                .query(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{params:?}");
            let page: Value = res.json().await.unwrap();
            pages += 1;
            let got: Vec<(i64, Value)> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["id"].as_i64().unwrap(), p["stay"].clone()))
                .collect();
            let filter = roost::api::rest::properties::parse_search(params.clone()).unwrap();
            let (sort, limit) = (filter.sort, filter.limit);
            let found =
                roost::services::properties::search(&app.db, &sql_only, &remembers_nothing, filter)
                    .await
                    .unwrap();
            let want: Vec<(i64, Value)> = found
                .iter()
                .map(|f| {
                    let stay = f.stay.map_or(
                        Value::Null,
                        |d| json!({"check_in": d.check_in(), "check_out": d.check_out()}),
                    );
                    (f.property().id, stay)
                })
                .collect();
            let rows: Vec<&roost::db::properties::Property> =
                found.iter().map(|f| f.property()).collect();
            assert_eq!(got, want, "memory and SQL differ for {params:?}");
            let want_cursor = (rows.len() as i64 == limit)
                .then(|| rows.last())
                .flatten()
                .map(|p| roost::api::rest::properties::encode_search_cursor(sort, p));
            assert_eq!(
                page["next_cursor"].as_str().map(str::to_owned),
                want_cursor,
                "{params:?}"
            );
            match want_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    pages
}

/// Polls until the node answers searches from memory with nothing stale.
async fn settled(app: &TestApp) {
    app.ready_with("search", "memory").await;
    for _ in 0..500 {
        if app.metric("roost_search_index_stale").await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the search index never settled");
}

async fn by_memory(app: &TestApp) -> f64 {
    app.metric("roost_searches_total{by=\"memory\"}").await
}

/// A search page's items as (id, stay: `null` but for flexible dates).
async fn items(app: &TestApp, query: &[(&str, &str)]) -> Vec<(i64, Value)> {
    let page: Value = app
        .get("/api/v1/properties")
        .query(query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p["stay"].clone()))
        .collect()
}

/// The ids of the first page of listings free for `[check_in, check_out)`
/// in `city`, cheapest first.
async fn free_in(app: &TestApp, city: &str, check_in: &str, check_out: &str) -> Vec<i64> {
    let query = [
        ("city", city),
        ("check_in", check_in),
        ("check_out", check_out),
        ("limit", "100"),
    ];
    items(app, &query)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn memory_answers_what_the_sql_answers(backend: Backend) {
    let database = seeded(backend, 300, 2_500).await;
    // No sweeper: its first round (expiring holds, completing stays,
    // publishing reviews) would change rows between the two answers.
    let app = TestApp::spawn_on(database, |s| s.hold_sweep_interval = None).await;
    settled(&app).await;
    assert_eq!(app.metric("roost_search_index_listings").await, 300.0);
    let mut rng = StdRng::seed_from_u64(1818);
    let before = by_memory(&app).await;
    let pages = compare(&app, &mut rng, 60, random_search).await
        + compare(&app, &mut rng, 40, map_search).await;
    assert_eq!(
        by_memory(&app).await - before,
        pages as f64,
        "every search was answered from memory"
    );

    // Changes through the API: each is in the next search, from memory.
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (check_in, check_out) = (day(40), day(43));
    let mut mine = Vec::new();
    for price in [4_000, 9_000, 9_000, 15_000, 30_000] {
        mine.push(
            app.create_listing(
                &host,
                json!({"city": "Paris", "country": "FR", "currency": "EUR",
                       "latitude": 48.85, "longitude": 2.35, "price_per_night": price}),
            )
            .await,
        );
    }
    settled(&app).await;
    let free = free_in(&app, "paris", &check_in, &check_out).await;
    assert!(
        mine.iter().all(|id| free.contains(id)),
        "{mine:?} in {free:?}"
    );
    let booking = app.booked(&guest, mine[0], &check_in, &check_out).await;
    let before = by_memory(&app).await;
    let free = free_in(&app, "paris", &check_in, &check_out).await;
    assert!(
        !free.contains(&mine[0]),
        "a hold is out of the very next search"
    );
    assert_eq!(by_memory(&app).await - before, 1.0);
    app.cancel(&guest, booking).await;
    assert!(
        free_in(&app, "paris", &check_in, &check_out)
            .await
            .contains(&mine[0]),
        "a cancelled hold frees its nights at once"
    );
    let block = app.block(&host, mine[1], &check_in, &check_out).await;
    assert!(
        !free_in(&app, "paris", &check_in, &check_out)
            .await
            .contains(&mine[1])
    );
    app.unblock(&host, mine[1], block).await;
    assert!(
        free_in(&app, "paris", &check_in, &check_out)
            .await
            .contains(&mine[1]),
        "a block removed frees its nights at once"
    );
    app.block(&host, mine[1], &check_in, &check_out).await;
    let res = app
        .patch(&format!("/api/v1/properties/{}", mine[2]))
        .bearer_auth(&host)
        .json(&json!({"price_per_night": 1_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .delete(&format!("/api/v1/properties/{}", mine[3]))
        .bearer_auth(&host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Bookings on seeded listings, some refused (the seeder's stays).
    for property in (2..300).step_by(17) {
        let res = app.book(&guest, property, &day(30), &day(33)).await;
        assert!(
            [
                StatusCode::CREATED,
                StatusCode::CONFLICT,
                StatusCode::UNPROCESSABLE_ENTITY
            ]
            .contains(&res.status()),
            "{}",
            res.status()
        );
    }
    settled(&app).await;
    let page: Value = app
        .get("/api/v1/properties")
        .query(&[("city", "paris"), ("sort", "price_asc"), ("limit", "1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"][0]["id"], mine[2],
        "the new price sorts it first"
    );
    let before = by_memory(&app).await;
    let pages = compare(&app, &mut rng, 40, random_search).await;
    assert_eq!(by_memory(&app).await - before, pages as f64);
}

/// Two nodes on one database and Redis, their log reads too rare to
/// matter: by the time node B's websocket shows a booking made on node A,
/// B's search (from memory) has it; a listing A edits is in B's next
/// search once B has heard of it.
async fn a_booking_on_one_node_is_in_the_others_search_with_its_event(backend: Backend) {
    let database = seeded(backend, 60, 200).await;
    let slow_log = |s: &mut roost::config::Settings| {
        s.redis_url = Some(roost::config::RedisUrl(redis_url()));
        s.event_poll_interval = Duration::from_secs(600);
        s.hold_sweep_interval = None;
    };
    let url = database.url.clone();
    let a = TestApp::spawn_on(database, slow_log).await;
    let b = TestApp::spawn_on(TestDatabase::shared(url), slow_log).await;
    settled(&a).await;
    settled(&b).await;
    for app in [&a, &b] {
        app.ready_with("redis", "ok").await;
    }
    let (_, host) = a.signed_in("host").await;
    let (_, guest) = a.signed_in("guest").await;
    let listing = a.create_listing(&host, json!({"city": "Utrecht"})).await;
    let (check_in, check_out) = (day(20), day(24));
    // B hears of the new listing through Redis, then reads it.
    eventually("node B lists the new listing", || async {
        b.metric("roost_search_index_stale").await == 0.0
            && free_in(&b, "utrecht", &check_in, &check_out)
                .await
                .contains(&listing)
    })
    .await;
    let mut ws = b.ws(None).await;
    ws.subscribe(listing, None).await;
    for round in 0..5 {
        let booking = a.booked(&guest, listing, &check_in, &check_out).await;
        let event = ws.recv().await;
        assert_eq!(event["kind"], "booking_held", "{event}");
        let before = by_memory(&b).await;
        assert!(
            !free_in(&b, "utrecht", &check_in, &check_out)
                .await
                .contains(&listing),
            "round {round}: B's websocket had the hold before B's search did"
        );
        assert_eq!(by_memory(&b).await - before, 1.0, "B answered from memory");
        a.cancel(&guest, booking).await;
        let event = ws.recv().await;
        assert_eq!(event["kind"], "booking_cancelled", "{event}");
        assert!(
            free_in(&b, "utrecht", &check_in, &check_out)
                .await
                .contains(&listing),
            "round {round}: B's websocket had the cancellation before B's search did"
        );
    }
}

/// Without Redis, node B finds what node A did by its scan of the listing
/// rows (every `ROOST_EVENT_POLL_MS`): the log is the guarantee.
async fn without_redis_a_nodes_scan_finds_what_another_did(backend: Backend) {
    let database = seeded(backend, 30, 100).await;
    let url = database.url.clone();
    let fast_scan = |s: &mut roost::config::Settings| {
        s.event_poll_interval = Duration::from_millis(100);
        s.hold_sweep_interval = None;
    };
    let a = TestApp::spawn_on(database, fast_scan).await;
    let b = TestApp::spawn_on(TestDatabase::shared(url), fast_scan).await;
    settled(&b).await;
    let (_, host) = a.signed_in("host").await;
    let (_, guest) = a.signed_in("guest").await;
    let listing = a.create_listing(&host, json!({"city": "Haarlem"})).await;
    let (check_in, check_out) = (day(20), day(24));
    eventually("node B's scan finds the new listing", || async {
        free_in(&b, "haarlem", &check_in, &check_out)
            .await
            .contains(&listing)
    })
    .await;
    a.booked(&guest, listing, &check_in, &check_out).await;
    eventually("node B's scan finds the booking", || async {
        !free_in(&b, "haarlem", &check_in, &check_out)
            .await
            .contains(&listing)
    })
    .await;
    settled(&b).await;
    let before = by_memory(&b).await;
    assert!(
        !free_in(&b, "haarlem", &check_in, &check_out)
            .await
            .contains(&listing)
    );
    assert_eq!(by_memory(&b).await - before, 1.0);
}

/// A row changed behind the server's back (SQL by hand), with no scan due
/// and the listing not yet remembered: the first page that shows it reads
/// it, checks it against the index, finds it differs, and is answered by
/// the SQL; the listing is read again, and memory answers, rightly, from
/// then on.
async fn a_page_that_disagrees_with_memory_is_answered_by_the_sql(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.event_poll_interval = Duration::from_secs(600);
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let mut ids = Vec::new();
    for price in [10_000, 20_000, 30_000] {
        ids.push(
            app.create_listing(&host, json!({"price_per_night": price}))
                .await,
        );
    }
    settled(&app).await;
    app.execute(&format!(
        "UPDATE properties SET price_per_night = 40000 WHERE id = {}",
        ids[0]
    ))
    .await;
    let cheapest = || async {
        let found = items(&app, &[("sort", "price_asc"), ("limit", "2")]).await;
        found.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    let database = "roost_searches_total{by=\"database\"}";
    let before = app.metric(database).await;
    assert_eq!(cheapest().await, vec![ids[1], ids[2]]);
    assert_eq!(app.metric(database).await - before, 1.0);
    settled(&app).await;
    let before = by_memory(&app).await;
    assert_eq!(cheapest().await, vec![ids[1], ids[2]]);
    assert_eq!(by_memory(&app).await - before, 1.0);
}

/// Flexible dates: the earliest free stay of each listing, from memory;
/// bad combinations refused with their codes.
async fn flexible_dates_find_the_earliest_free_stay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let city = json!({"city": "Ghent", "country": "BE"});
    let (a, b) = (
        app.create_listing(&host, city.clone()).await,
        app.create_listing(&host, city).await,
    );
    // a: taken on days 10–13 and 15–20; b: free.
    app.booked(&guest, a, &day(10), &day(13)).await;
    app.block(&host, a, &day(15), &day(20)).await;
    settled(&app).await;
    let (from, to) = (day(10), day(30));
    let search = |nights: &'static str| {
        let query = [
            ("city", "ghent"),
            ("nights", nights),
            ("within_from", from.as_str()),
            ("within_to", to.as_str()),
        ];
        let app = &app;
        async move { items(app, &query).await }
    };
    let stay = |from: i64, to: i64| json!({"check_in": day(from), "check_out": day(to)});
    let before = by_memory(&app).await;
    assert_eq!(
        search("2").await,
        vec![(a, stay(13, 15)), (b, stay(10, 12))],
        "the gap between the booking and the block holds two nights"
    );
    assert_eq!(
        search("3").await,
        vec![(a, stay(20, 23)), (b, stay(10, 13))]
    );
    assert_eq!(by_memory(&app).await - before, 2.0);

    // GraphQL asks the same and gets the same, each stay on its edge.
    let graphql = |filter: &str| {
        let query = format!(
            "{{ search(filter: {{city: \"ghent\", {filter}}}) {{ edges {{ node {{ id }} stay {{ checkIn checkOut }} }} }} }}"
        );
        let app = &app;
        async move { crate::graphql::gql(app, None, &query, json!({})).await }
    };
    let window = format!("withinFrom: \"{from}\", withinTo: \"{to}\"");
    let answer = graphql(&format!("nights: 3, {window}")).await;
    let found: Vec<(i64, Value)> = answer["data"]["search"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| {
            let id = e["node"]["id"].as_str().unwrap().parse().unwrap();
            let stay = &e["stay"];
            (
                id,
                json!({"check_in": stay["checkIn"], "check_out": stay["checkOut"]}),
            )
        })
        .collect();
    assert_eq!(found, vec![(a, stay(20, 23)), (b, stay(10, 13))]);
    let fixed = format!("checkIn: \"{}\", checkOut: \"{}\"", day(40), day(42));
    let answer = graphql(&fixed).await;
    let edges = answer["data"]["search"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 2, "{answer}");
    assert!(edges.iter().all(|e| e["stay"].is_null()), "{answer}");
    let answer = graphql("nights: 2, withinFrom: \"2027-01-01\"").await;
    let error = &answer["errors"][0]["extensions"];
    assert_eq!(error["code"], "validation_failed", "{answer}");
    assert_eq!(error["details"][0]["code"], "incomplete_flexible_dates");

    for (query, code) in [
        (
            vec![("nights", "2"), ("within_from", "2027-01-01")],
            "incomplete_flexible_dates",
        ),
        (
            vec![
                ("nights", "2"),
                ("within_from", "2027-01-01"),
                ("within_to", "2027-06-01"),
            ],
            "window_too_long",
        ),
        (
            vec![
                ("nights", "5"),
                ("within_from", "2027-01-01"),
                ("within_to", "2027-01-04"),
            ],
            "window_too_short",
        ),
        (
            vec![
                ("nights", "2"),
                ("within_from", "2027-01-01"),
                ("within_to", "2027-01-20"),
                ("check_in", "2027-01-02"),
                ("check_out", "2027-01-04"),
            ],
            "conflicting_dates",
        ),
        (
            vec![
                ("nights", "0"),
                ("within_from", "2027-01-01"),
                ("within_to", "2027-01-20"),
            ],
            "out_of_range",
        ),
    ] {
        let res = app
            .get("/api/v1/properties")
            .query(&query)
            .send()
            .await
            .unwrap();
        let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
        let codes: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{query:?}: {body}");
    }
}

/// `ROOST_SEARCH_FROM=database` keeps no index: every search is the SQL's.
async fn search_from_the_database_when_configured(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.search_from_memory = false).await;
    assert_eq!(app.readyz().await["search"], "database");
    let (_, host) = app.signed_in("host").await;
    let listing = app.create_listing(&host, json!({})).await;
    assert!(
        free_in(&app, "amsterdam", &day(3), &day(5))
            .await
            .contains(&listing)
    );
    assert_eq!(by_memory(&app).await, 0.0);
    assert_eq!(
        app.metric("roost_searches_total{by=\"database\"}").await,
        1.0
    );
}

both_backends!(
    memory_answers_what_the_sql_answers,
    a_booking_on_one_node_is_in_the_others_search_with_its_event,
    without_redis_a_nodes_scan_finds_what_another_did,
    a_page_that_disagrees_with_memory_is_answered_by_the_sql,
    flexible_dates_find_the_earliest_free_stay,
    search_from_the_database_when_configured,
);
