//! Lapsed holds cost a booking nothing and are swept in batches: per-listing
//! expiry reads only its listing's rows (by its plan, with statistics fresh
//! and stale), the sweeper keeps every listing's events contiguous with
//! several nodes sweeping at once, a hold is never both expired and
//! cancelled, and housekeeping deletes in bounded batches.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use reqwest::StatusCode;
use roost::db::calendar::{self, KIND_BOOKING, NewEntry};
use roost::db::schema::{
    auth_tokens, calendar_entries, calendar_events, calendar_heads, properties, users,
};
use roost::db::{AsConn, Conn, Db, events};
use roost::domain::{CalendarEvent, EventKind, PropertyId};
use roost::services::housekeeping;
use roost::with_conn;
use serde_json::{Value, json};

use crate::binary::{Running, roost, start};
use crate::both_backends;
use crate::helpers::{Api, Backend, TestApp, TestDatabase, assert_error, day};

both_backends!(
    a_booking_expires_the_lapsed_holds_on_its_nights_and_reads_no_other_listing,
    two_nodes_sweep_2000_lapsed_holds_over_500_listings_with_contiguous_events,
    a_hold_cancelled_while_the_sweeper_runs_is_never_also_expired,
    housekeeping_deletes_old_events_and_dead_tokens_in_bounded_batches,
);

/// `EXPLAIN` (PostgreSQL) or `EXPLAIN QUERY PLAN` (SQLite) of a query, with
/// its parameters bound as the server binds them.
struct Explain<Q, ST> {
    prefix: &'static str,
    query: Q,
    _row: std::marker::PhantomData<ST>,
}

impl<Q, ST> QueryId for Explain<Q, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, ST> Query for Explain<Q, ST> {
    type SqlType = ST;
}

impl<DB: diesel::backend::Backend, Q: QueryFragment<DB>, ST> QueryFragment<DB> for Explain<Q, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql(self.prefix);
        self.query.walk_ast(out.reborrow())
    }
}

/// What SQLite's `EXPLAIN QUERY PLAN` says of a step (its other columns
/// number the steps).
#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The plan the database picks for `query` now, one line per row.
async fn plan<Q>(db: &Db, query: Q) -> Vec<String>
where
    Q: QueryFragment<Pg> + QueryFragment<Sqlite> + Send + 'static,
{
    if matches!(db.backend(), roost::db::Backend::Postgres) {
        return plan_pg(db, query).await;
    }
    let mut conn = db.get().await.unwrap();
    match conn.as_conn() {
        Conn::Postgres(_) => unreachable!("planned above"),
        Conn::Sqlite(c) => Explain::<_, Untyped> {
            prefix: "EXPLAIN QUERY PLAN ",
            query,
            _row: Default::default(),
        }
        .load::<PlanRow>(c)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.detail)
        .collect(),
    }
}

/// [`plan`] of a statement only PostgreSQL runs.
async fn plan_pg<Q: QueryFragment<Pg> + Send + 'static>(db: &Db, query: Q) -> Vec<String> {
    let mut conn = db.get().await.unwrap();
    let Conn::Postgres(c) = conn.as_conn() else {
        panic!("plan_pg on SQLite");
    };
    Explain::<_, Text> {
        prefix: "EXPLAIN ",
        query,
        _row: Default::default(),
    }
    .load::<String>(c)
    .await
    .unwrap()
}

/// Statistics as of now (taken again: "fresh"; taken before holds exist
/// and not again: "stale", as in the benchmark).
async fn analyze(db: &Db) {
    let mut conn = db.get().await.unwrap();
    with_conn!(&mut conn, |c| c.batch_execute("ANALYZE").await).unwrap();
}

/// Any plan for the listing's expiry must find rows through an index whose
/// condition fixes the listing: never a scan of other listings' rows.
fn assert_bounded_by_listing(lines: &[String], backend: Backend, when: &str) {
    let text = lines.join("\n");
    match backend {
        Backend::Postgres => {
            let conds: Vec<&String> = lines.iter().filter(|l| l.contains("Index Cond:")).collect();
            assert!(
                !text.contains("Seq Scan") && !conds.is_empty(),
                "{when}: {text}"
            );
            for cond in conds {
                assert!(cond.contains("property_id = "), "{when}: {text}");
            }
            assert!(!text.contains("lapse_queue"), "{when}: {text}");
        }
        Backend::Sqlite => {
            let scans: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains("calendar_entries"))
                .collect();
            assert!(!scans.is_empty(), "{when}: {text}");
            for scan in scans {
                assert!(
                    scan.starts_with("SEARCH calendar_entries USING")
                        && scan.contains("(property_id=?"),
                    "{when}: {text}"
                );
            }
        }
    }
}

/// The sweeper's page must come in order off the lapse queue's index: no
/// sort, so no read of every lapsed hold to find the first ones.
fn assert_reads_queue_in_order(lines: &[String], backend: Backend, when: &str) {
    let text = lines.join("\n");
    match backend {
        Backend::Postgres => assert!(
            lines[0].starts_with("Limit")
                && text.contains("Index Scan using calendar_entries_lapse_queue")
                && !text.contains("Sort"),
            "{when}: {text}"
        ),
        Backend::Sqlite => assert!(
            text.contains("SEARCH calendar_entries USING INDEX calendar_entries_lapse_queue")
                && !text.contains("TEMP B-TREE"),
            "{when}: {text}"
        ),
    }
}

/// The sweeper's writes to its page's holds and listings must find each
/// row by its key, not walk an index of every lapsed hold or scan a table.
fn assert_by_key(lines: &[String], backend: Backend, (table, key): (&str, &str), when: &str) {
    let text = lines.join("\n");
    let by_key = match backend {
        Backend::Postgres => {
            text.contains(&format!("Index Cond: ({key} = ANY"))
                && !text.contains("Seq Scan")
                && !text.contains("lapse_queue")
        }
        Backend::Sqlite => {
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|l| l == &format!("SEARCH {table} USING INTEGER PRIMARY KEY (rowid=?)"))
        }
    };
    assert!(by_key, "{when}, {table}: {text}");
}

/// Reads of live claims must go through an index of live claims only,
/// which holds no expired or cancelled row, by listing.
fn assert_live_index(lines: &[String], backend: Backend, when: &str) {
    let text = lines.join("\n");
    let live = match backend {
        // Either index of live claims only: the B-tree, or the exclusion
        // constraint's GiST index (partial on the same statuses).
        Backend::Postgres => {
            (text.contains("using calendar_entries_live")
                || text.contains("using calendar_entries_no_overlap")
                || text.contains("on calendar_entries_live")
                || text.contains("on calendar_entries_no_overlap"))
                && text.contains("(property_id = ")
                && !text.contains("Seq Scan")
        }
        Backend::Sqlite => {
            text.contains("SEARCH calendar_entries USING INDEX calendar_entries_live (property_id=? AND check_out>?)")
        }
    };
    assert!(live, "{when}: {text}");
}

/// The plans of the sweeper's and the bookings' statements, as they would
/// run now (see the assertions above). `page` is a page of lapsed holds.
async fn assert_plans(db: &Db, backend: Backend, listing: i64, page: Vec<(i64, i64)>, when: &str) {
    let now = roost::db::now().naive_utc();
    let (check_in, check_out) = (now.date(), now.date() + chrono::Duration::days(500));
    let expiry = calendar::expire_lapsed_holds_of(listing, check_in, check_out, now);
    assert_bounded_by_listing(&plan(db, expiry).await, backend, when);
    let claims = calendar_entries::table
        .filter(calendar::claims_on(listing, check_in, check_out, now))
        .select(calendar_entries::id);
    assert_live_index(&plan(db, claims).await, backend, when);
    let queue = calendar::lapse_queue_page_of(now, 500);
    assert_reads_queue_in_order(&plan(db, queue).await, backend, when);
    let (holds, mut listings): (Vec<i64>, Vec<i64>) = page.into_iter().unzip();
    listings.dedup();
    let (expire, bump) = match backend {
        // PostgreSQL expires a page in one statement, and bumps its
        // listings in the one that appends their events.
        Backend::Postgres => (
            plan(db, calendar::expire_holds_of(holds, now)).await,
            plan_pg(
                db,
                events::append_statement(
                    &listings.iter().map(|&l| (l, 1)).collect::<Vec<_>>(),
                    &[],
                ),
            )
            .await,
        ),
        // SQLite runs one statement per row.
        Backend::Sqlite => (
            plan(db, calendar::expire_hold_of(holds[0], now)).await,
            plan(db, events::bump_seqs_of(vec![listings[0]], 1)).await,
        ),
    };
    assert_by_key(&expire, backend, ("calendar_entries", "id"), when);
    assert_by_key(&bump, backend, ("calendar_heads", "property_id"), when);
}

/// `roost seed` into the server's database: listings, hosts, guests and
/// past and near-future bookings. Returns the listing ids and a guest's.
async fn seed(db: &Db, listings: usize, bookings: usize) -> (Vec<i64>, i64) {
    roost::seed::run(
        db,
        roost::seed::SeedOptions {
            seed: 7,
            properties: listings,
            bookings,
            hosts: 20,
            guests: 20,
            today: chrono::Utc::now().date_naive(),
        },
    )
    .await
    .expect("seed");
    let mut conn = db.get().await.unwrap();
    let ids: Vec<i64> = with_conn!(&mut conn, |c| {
        properties::table
            .select(properties::id)
            .order(properties::id)
            .load(c)
            .await
    })
    .unwrap();
    let guest: i64 = with_conn!(&mut conn, |c| {
        users::table
            .filter(users::role.eq("guest"))
            .select(users::id)
            .first(c)
            .await
    })
    .unwrap();
    (ids, guest)
}

/// Writes `per_listing` holds on each listing that lapsed a minute ago, on
/// far-future weeks no seeded booking touches, straight into the database
/// (as abandoned checkouts leave them). Returns their ids by listing.
async fn lapsed_holds(
    db: &Db,
    listings: &[i64],
    per_listing: usize,
    guest: i64,
) -> BTreeMap<i64, Vec<i64>> {
    let now = roost::db::now().naive_utc();
    let lapsed = now - chrono::Duration::minutes(1);
    let first = chrono::Utc::now().date_naive() + chrono::Duration::days(400);
    let rows: Vec<NewEntry<'static>> = listings
        .iter()
        .flat_map(|&property_id| {
            (0..per_listing).map(move |k| {
                let check_in = first + chrono::Duration::days(3 * k as i64);
                NewEntry {
                    property_id,
                    kind: KIND_BOOKING,
                    status: "pending",
                    check_in,
                    check_out: check_in + chrono::Duration::days(2),
                    hold_expires_at: Some(lapsed),
                    created_by: guest,
                    guest_id: Some(guest),
                    guests: Some(1),
                    nights: Some(2),
                    price_per_night: Some(10_000),
                    cleaning_fee: Some(0),
                    total: Some(20_000),
                    currency: Some("EUR"),
                    reason: None,
                    created_at: lapsed,
                    updated_at: lapsed,
                    price_detail: None,
                    reviews_close_at: None,
                }
            })
        })
        .collect();
    let mut conn = db.get().await.unwrap();
    roost::write_tx!(&mut conn, |c| {
        for chunk in rows.chunks(2_000) {
            calendar::insert_many(c, chunk.to_vec()).await?;
        }
        QueryResult::Ok(())
    })
    .unwrap();
    let holds: Vec<(i64, i64)> = with_conn!(&mut conn, |c| {
        calendar_entries::table
            .filter(calendar_entries::property_id.eq_any(listings))
            .filter(calendar_entries::hold_expires_at.eq(lapsed))
            .select((calendar_entries::property_id, calendar_entries::id))
            .order(calendar_entries::id)
            .load(c)
            .await
    })
    .unwrap();
    let mut by_listing: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (listing, id) in holds {
        by_listing.entry(listing).or_default().push(id);
    }
    assert_eq!(
        by_listing.values().map(Vec::len).sum::<usize>(),
        listings.len() * per_listing
    );
    by_listing
}

/// Entries of these ids by status.
async fn statuses(db: &Db, ids: &[i64]) -> BTreeMap<i64, String> {
    let mut conn = db.get().await.unwrap();
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(1_000) {
        let rows: Vec<(i64, String)> = with_conn!(&mut conn, |c| {
            calendar_entries::table
                .filter(calendar_entries::id.eq_any(chunk))
                .select((calendar_entries::id, calendar_entries::status))
                .load(c)
                .await
        })
        .unwrap();
        out.extend(rows);
    }
    out
}

/// Every event in the log, by listing, in seq order.
async fn all_events(db: &Db) -> BTreeMap<i64, Vec<CalendarEvent>> {
    let mut conn = db.get().await.unwrap();
    let listings: Vec<i64> = with_conn!(&mut conn, |c| {
        calendar_events::table
            .select(calendar_events::property_id)
            .distinct()
            .load(c)
            .await
    })
    .unwrap();
    let mut out = BTreeMap::new();
    for id in listings {
        let (_, log) = events::after(&mut conn, PropertyId(id), 0, 100_000)
            .await
            .unwrap()
            .unwrap();
        out.insert(id, log);
    }
    out
}

/// Pending holds that have lapsed, not yet marked expired.
async fn unswept(db: &Db) -> i64 {
    let mut conn = db.get().await.unwrap();
    let now = roost::db::now().naive_utc();
    with_conn!(&mut conn, |c| {
        calendar_entries::table
            .filter(calendar_entries::status.eq("pending"))
            .filter(calendar_entries::hold_expires_at.le(now))
            .count()
            .get_result(c)
            .await
    })
    .unwrap()
}

/// Waits (polling the database, at most a minute) until no lapsed hold is left.
async fn until_swept(db: &Db) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = unswept(db).await;
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{left} lapsed holds never swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each listing's log is 1, 2, 3… with no gap and no repeat.
fn assert_contiguous(log: &BTreeMap<i64, Vec<CalendarEvent>>) {
    for (listing, events) in log {
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let expected: Vec<i64> = (1..=events.len() as i64).collect();
        assert_eq!(seqs, expected, "listing {listing}'s events");
    }
}

async fn a_booking_expires_the_lapsed_holds_on_its_nights_and_reads_no_other_listing(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |s| s.hold_sweep_interval = None).await;
    let (seeded, seeded_guest) = seed(&app.db, 2_000, 2_000).await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;

    // Statistics from before any hold existed, as after a bulk load.
    analyze(&app.db).await;
    let others = lapsed_holds(&app.db, &seeded, 5, seeded_guest).await;
    let own = lapsed_holds(&app.db, &[listing], 3, guest_id).await[&listing].clone();
    let page: Vec<(i64, i64)> = others
        .iter()
        .flat_map(|(&listing, holds)| holds.iter().map(move |&hold| (hold, listing)))
        .take(500)
        .collect();
    assert_plans(&app.db, backend, listing, page.clone(), "stale statistics").await;

    // The booking expires exactly the two of its listing's lapsed holds
    // that share its nights, in its transaction, their events before its
    // own; the third, and every other listing's, are left to the sweeper.
    let booking = app.booked(&guest, listing, &day(401), &day(404)).await;
    let own_now = statuses(&app.db, &own).await;
    assert_eq!(
        own.iter()
            .map(|id| own_now[id].as_str())
            .collect::<Vec<_>>(),
        ["expired", "expired", "pending"]
    );
    let other_ids: Vec<i64> = others.values().flatten().copied().collect();
    assert_eq!(other_ids.len(), 10_000);
    let others_now = statuses(&app.db, &other_ids).await;
    assert!(
        others_now.values().all(|s| s == "pending"),
        "another listing's hold was touched"
    );
    let log = all_events(&app.db).await;
    let kinds: Vec<(i64, EventKind, Option<i64>)> = log[&listing]
        .iter()
        .map(|e| (e.seq, e.kind, e.entry_id))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, EventKind::BookingExpired, Some(own[0])),
            (2, EventKind::BookingExpired, Some(own[1])),
            (3, EventKind::BookingHeld, Some(booking)),
        ]
    );
    assert_eq!(log.len(), 1, "events only for the booked listing");

    // And the same plans once the statistics know about the holds.
    analyze(&app.db).await;
    assert_plans(&app.db, backend, seeded[0], page, "fresh statistics").await;
}

/// `roost serve` on `database`, sweeping every second, small batches.
fn sweeping_node(dir: &std::path::Path, database: &str) -> Running {
    let mut cmd = roost(dir);
    cmd.env("DATABASE_URL", database)
        .env("ROOST_HOLD_SWEEP_SECS", "1")
        .env("ROOST_HOLD_SWEEP_BATCH", "25")
        .env("ROOST_API_RATE_LIMIT", "0");
    start(cmd)
}

async fn two_nodes_sweep_2000_lapsed_holds_over_500_listings_with_contiguous_events(
    backend: Backend,
) {
    let database = TestDatabase::new(backend).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    let db = Db::connect(&database.url, Some(2)).unwrap();
    let (listings, guest) = seed(&db, 500, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let (a, b) = {
        let (d, u) = (dir.path().to_owned(), url.clone());
        let a = std::thread::spawn(move || sweeping_node(&d, &u));
        let b = sweeping_node(dir.path(), &url);
        (a.join().unwrap(), b)
    };

    // Abandoned all at once, with both nodes already sweeping.
    let holds = lapsed_holds(&db, &listings, 4, guest).await;
    until_swept(&db).await;

    let ids: Vec<i64> = holds.values().flatten().copied().collect();
    let now = statuses(&db, &ids).await;
    assert_eq!(now.len(), 2_000);
    assert!(now.values().all(|s| s == "expired"));
    let log = all_events(&db).await;
    assert_contiguous(&log);
    assert_eq!(log.len(), 500, "every listing has its events");
    for (listing, events) in &log {
        assert!(events.iter().all(|e| e.kind == EventKind::BookingExpired));
        let expired: Vec<i64> = events.iter().filter_map(|e| e.entry_id).collect();
        let mut sorted = expired.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, holds[listing], "one event per hold of {listing}");
    }
    let mut conn = db.get().await.unwrap();
    let seqs: Vec<i64> = with_conn!(&mut conn, |c| {
        calendar_heads::table
            .select(calendar_heads::seq)
            .load(c)
            .await
    })
    .unwrap();
    assert_eq!(seqs.len(), 500, "every listing has its head");
    assert!(seqs.iter().all(|&s| s == 4), "the head follows the log");

    // Each hold was counted once, by one node, and no actor was started
    // for a listing only to sweep it.
    let (node_a, node_b) = (
        Api::new(format!("http://127.0.0.1:{}", a.port)),
        Api::new(format!("http://127.0.0.1:{}", b.port)),
    );
    let swept_a = node_a.metric("roost_holds_swept_total").await;
    let swept_b = node_b.metric("roost_holds_swept_total").await;
    eprintln!("swept: node A {swept_a}, node B {swept_b}");
    assert_eq!(swept_a + swept_b, 2_000.0);
    assert_eq!(node_a.metric("roost_property_actors").await, 0.0);
    assert_eq!(node_b.metric("roost_property_actors").await, 0.0);
}

async fn a_hold_cancelled_while_the_sweeper_runs_is_never_also_expired(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.hold_ttl = Duration::from_secs(2);
        s.hold_sweep_interval = Some(Duration::from_secs(1));
        s.hold_sweep_batch = 3;
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let mut holds = Vec::new();
    for _ in 0..4 {
        let listing = app.create_listing(&host, json!({})).await;
        for week in 0..10 {
            let (start, end) = (10 + 7 * week, 12 + 7 * week);
            let res = app.book(&guest, listing, &day(start), &day(end)).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            let body: Value = res.json().await.unwrap();
            let expires =
                chrono::DateTime::parse_from_rfc3339(body["hold_expires_at"].as_str().unwrap())
                    .unwrap();
            holds.push((body["id"].as_i64().unwrap(), expires));
        }
    }

    // Cancels spread from before the first hold lapses to after the last,
    // while the sweeper expires whatever has lapsed.
    let first = holds.iter().map(|h| h.1).min().unwrap().to_utc();
    let last = holds.iter().map(|h| h.1).max().unwrap().to_utc();
    let window = last - first + chrono::Duration::seconds(1);
    let start = tokio::time::Instant::now()
        + (first - chrono::Utc::now() - chrono::Duration::milliseconds(500))
            .to_std()
            .unwrap_or_default();
    let step = window.to_std().unwrap() / holds.len() as u32;
    let tasks: Vec<_> = holds
        .iter()
        .enumerate()
        .map(|(i, &(id, _))| {
            let url = app.url(&format!("/api/v1/bookings/{id}/cancel"));
            let (client, token) = (app.client.clone(), guest.clone());
            let at = start + step * i as u32;
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let res = client.post(url).bearer_auth(token).send().await.unwrap();
                (id, res)
            })
        })
        .collect();
    let mut answers = BTreeMap::new();
    for task in tasks {
        let (id, res) = task.await.unwrap();
        let status = res.status();
        if status != StatusCode::OK {
            assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition").await;
        }
        answers.insert(id, status);
    }
    until_swept(&app.db).await;

    // Each hold ended once: cancelled (and the cancel said 200) or expired
    // (and the cancel said 422), and its events say the same.
    let ids: Vec<i64> = holds.iter().map(|h| h.0).collect();
    let now = statuses(&app.db, &ids).await;
    let log = all_events(&app.db).await;
    assert_contiguous(&log);
    let mut endings: BTreeMap<i64, Vec<EventKind>> = BTreeMap::new();
    for event in log.values().flatten() {
        if let Some(id) = event.entry_id
            && event.kind != EventKind::BookingHeld
        {
            endings.entry(id).or_default().push(event.kind);
        }
    }
    let (mut cancelled, mut expired) = (0, 0);
    for id in ids {
        let (status, ending) = (now[&id].as_str(), &endings[&id]);
        match answers[&id] {
            StatusCode::OK => {
                cancelled += 1;
                assert_eq!(
                    (status, &ending[..]),
                    ("cancelled", &[EventKind::BookingCancelled][..])
                );
            }
            _ => {
                expired += 1;
                assert_eq!(
                    (status, &ending[..]),
                    ("expired", &[EventKind::BookingExpired][..])
                );
            }
        }
    }
    eprintln!("{cancelled} cancelled, {expired} expired");
}

async fn housekeeping_deletes_old_events_and_dead_tokens_in_bounded_batches(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    let db = Db::connect(&database.url, Some(2)).unwrap();
    let (listings, guest) = seed(&db, 3, 0).await;
    let now = roost::db::now().naive_utc();
    let days_ago = |d: i64| now - chrono::Duration::days(d);

    // 2,500 events a month old, one a microsecond apart, and 10 from today.
    let mut conn = db.get().await.unwrap();
    let old: Vec<(i64, i64, NaiveDateTime)> = (0..2_500)
        .map(|i| {
            (
                listings[0],
                i + 1,
                days_ago(30) + chrono::Duration::microseconds(i),
            )
        })
        .chain((0..10).map(|i| (listings[1], i + 1, now)))
        .collect();
    roost::write_tx!(&mut conn, |c| {
        for &(p, seq, at) in &old {
            with_conn!(c, |c| {
                diesel::insert_into(calendar_events::table)
                    .values((
                        calendar_events::property_id.eq(p),
                        calendar_events::seq.eq(seq),
                        calendar_events::kind.eq("block_added"),
                        calendar_events::host_id.eq(guest),
                        calendar_events::created_at.eq(at),
                    ))
                    .execute(c)
                    .await
            })?;
        }
        QueryResult::Ok(())
    })
    .unwrap();
    // One batch deletes the 1,000 oldest, and only those.
    let week_ago = days_ago(7);
    assert_eq!(
        events::prune(&mut conn, week_ago, 1_000).await.unwrap(),
        1_000
    );
    let (_, left) = events::after(&mut conn, PropertyId(listings[0]), 0, 10_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((left.len(), left[0].seq), (1_500, 1_001));
    // Draining takes the rest, batch by batch, and nothing newer.
    assert_eq!(
        housekeeping::prune_events(&db, week_ago).await.unwrap(),
        1_500
    );
    assert_eq!(
        housekeeping::prune_events(&db, week_ago).await.unwrap(),
        0,
        "nothing left to prune"
    );
    let (_, recent) = events::after(&mut conn, PropertyId(listings[1]), 0, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recent.len(), 10);

    // Tokens: 1,500 expired long ago, 1,200 revoked long ago, 5 live and 5
    // revoked a minute ago (still inside the day's grace).
    let token = |i: usize, expires: NaiveDateTime, revoked: Option<NaiveDateTime>| {
        (
            auth_tokens::user_id.eq(guest),
            auth_tokens::token_hash.eq(format!("hash-{i}")),
            auth_tokens::created_at.eq(days_ago(60)),
            auth_tokens::expires_at.eq(expires),
            auth_tokens::revoked_at.eq(revoked),
        )
    };
    let future = now + chrono::Duration::days(1);
    let rows: Vec<_> = (0..1_500)
        .map(|i| token(i, days_ago(3), None))
        .chain((1_500..2_700).map(|i| token(i, future, Some(days_ago(3)))))
        .chain((2_700..2_705).map(|i| token(i, future, None)))
        .chain((2_705..2_710).map(|i| token(i, future, Some(now - chrono::Duration::minutes(1)))))
        .collect();
    roost::write_tx!(&mut conn, |c| {
        for row in &rows {
            with_conn!(c, |c| {
                diesel::insert_into(auth_tokens::table)
                    .values(row.clone())
                    .execute(c)
                    .await
            })?;
        }
        QueryResult::Ok(())
    })
    .unwrap();
    let day_ago = days_ago(1);
    let (first, full) = roost::db::tokens::delete_dead(&mut conn, day_ago, 1_000)
        .await
        .unwrap();
    assert_eq!((first, full), (2_000, true), "1,000 of each kind at most");
    assert_eq!(housekeeping::prune_tokens(&db, day_ago).await.unwrap(), 700);
    let left: i64 = with_conn!(&mut conn, |c| {
        auth_tokens::table.count().get_result(c).await
    })
    .unwrap();
    assert_eq!(left, 10);
}
