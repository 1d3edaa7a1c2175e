//! Invariants 1 and 2 under real concurrency: racing requests on one node,
//! and on two `roost` processes sharing one database.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{start, unlimited};
use crate::both_backends;
use crate::helpers::{
    Api, Backend, TestApp, TestDatabase, day, eventually, listing, postgres_ready, redis_url,
};

both_backends!(
    fifty_racing_requests_for_the_same_dates_make_one_booking,
    two_hundred_racing_overlapping_requests_never_double_book,
    a_refusal_reloads_the_calendar_only_when_the_database_moved,
    an_actor_started_from_a_search_index_behind_the_database_refuses_truly,
    a_lapsed_hold_a_node_never_heard_of_does_not_keep_its_nights,
);

async fn fifty_racing_requests_for_the_same_dates_make_one_booking(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.workers = Some(2)).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let (check_in, check_out) = (day(30), day(33));
    let statuses: Vec<StatusCode> = join_all(
        (0..50).map(|_| async { app.book(&guest, id, &check_in, &check_out).await.status() }),
    )
    .await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 49), "{statuses:?}");
    assert_eq!(app.count("calendar_entries").await, 1);
}

/// A small deterministic generator, so a failure can be replayed.
fn ranges(n: usize) -> Vec<(i64, i64)> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let start = 10 + (state % 60) as i64;
            let nights = 1 + ((state >> 20) % 6) as i64;
            (start, start + nights)
        })
        .collect()
}

async fn two_hundred_racing_overlapping_requests_never_double_book(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.workers = Some(2)).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({"max_nights": 30})).await;
    let wanted = ranges(200);
    let results: Vec<((i64, i64), StatusCode)> = join_all(wanted.iter().map(|&(a, b)| {
        let (app, guest) = (&app, &guest);
        async move { ((a, b), app.book(guest, id, &day(a), &day(b)).await.status()) }
    }))
    .await;

    let accepted: Vec<(i64, i64)> = results
        .iter()
        .filter(|(_, s)| *s == StatusCode::CREATED)
        .map(|(r, _)| *r)
        .collect();
    assert!(
        results
            .iter()
            .all(|(_, s)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{results:?}"
    );
    assert!(!accepted.is_empty());

    // In the database: as many live claims as 201s, and no two share a night.
    let mut stored = app.live_claims(id).await;
    assert_eq!(stored.len(), accepted.len());
    stored.sort();
    for pair in stored.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap in the database: {pair:?}");
    }
    // Every 409 was true: nothing is ever cancelled here, so the nights it
    // wanted are still held by some accepted booking.
    for ((a, b), status) in &results {
        if *status == StatusCode::CONFLICT {
            assert!(
                accepted.iter().any(|(x, y)| x < b && a < y),
                "refused {a}..{b} but no accepted booking overlaps it"
            );
        }
    }
}

/// Two server processes on one database, 100 racing requests for the same
/// nights split between them: exactly one booking.
async fn two_processes_one_database_one_booking(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let node = || {
        let mut cmd = unlimited(dir.path(), &url);
        cmd.env("ROOST_WORKERS", "2");
        std::thread::spawn(move || start(cmd))
    };
    let (a, b) = (node(), node());
    let nodes = [a.join().unwrap(), b.join().unwrap()];
    let base = |i: usize| format!("http://127.0.0.1:{}/api/v1", nodes[i % 2].port);
    let client = reqwest::Client::new();

    let mut tokens = Vec::new();
    for (i, role) in ["host", "guest"].iter().enumerate() {
        let email = format!("{role}@example.com");
        let res = client
            .post(format!("{}/auth/register", base(i)))
            .json(&json!({"email": email, "password": "password123", "name": role, "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = client
            .post(format!("{}/auth/login", base(i)))
            .json(&json!({"email": email, "password": "password123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    let res = client
        .post(format!("{}/properties", base(0)))
        .bearer_auth(&tokens[0])
        .json(&listing(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // Both nodes' actors have the calendar in memory before the race.
    for i in 0..2 {
        let res = client
            .get(format!(
                "{}/properties/{id}/availability?from={}&to={}",
                base(i),
                day(0),
                day(60)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    let (check_in, check_out) = (day(40), day(44));
    let statuses: Vec<StatusCode> = join_all((0..100).map(|i| {
        let (client, token, url) = (&client, &tokens[1], format!("{}/bookings", base(i)));
        let body =
            json!({"property_id": id, "check_in": check_in, "check_out": check_out, "guests": 1});
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    }))
    .await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 99), "{statuses:?}");

    let db = roost::db::Db::connect(&database.url, Some(1)).unwrap();
    let mut conn = db.get().await.unwrap();
    let live = roost::db::calendar::live_for_property(
        &mut conn,
        id,
        chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(live.len(), 1);

    // Each node, asked again, knows the nights are taken (the 409 is checked
    // against the database, not only a node's memory).
    for i in 0..2 {
        let res = client
            .post(format!("{}/bookings", base(i)))
            .bearer_auth(&tokens[1])
            .json(&json!({"property_id": id, "check_in": day(43), "check_out": day(45)}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
    }
}

#[actix_web::test]
async fn two_processes_one_sqlite_file_one_booking() {
    two_processes_one_database_one_booking(Backend::Sqlite).await;
}

#[actix_web::test]
async fn two_processes_one_postgres_database_one_booking() {
    if postgres_ready("two_processes_one_postgres_database_one_booking").await {
        two_processes_one_database_one_booking(Backend::Postgres).await;
    }
}

/// Memory says taken: the actor compares its seq with the listing's
/// `calendar_seq` and reads the calendar again only when they differ. Two
/// nodes with no Redis and a log read every ten minutes, so A hears nothing
/// of what B does: racing losers on A cost no calendar load, and share the
/// reads that refuse them (a refusal may use a read that started after it
/// was asked); once B has freed the nights, A's stale memory, and the
/// reads A made before, do not refuse them.
async fn a_refusal_reloads_the_calendar_only_when_the_database_moved(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let node = || {
        let mut cmd = unlimited(dir.path(), &url);
        cmd.env("ROOST_EVENT_POLL_MS", "600000");
        std::thread::spawn(move || start(cmd))
    };
    let (a, b) = (node(), node());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let (node_a, node_b) = (
        Api::new(format!("http://127.0.0.1:{}", a.port)),
        Api::new(format!("http://127.0.0.1:{}", b.port)),
    );
    let (_, host) = node_a.signed_in("host").await;
    let (_, guest) = node_a.signed_in("guest").await;
    let id = node_a.create_listing(&host, json!({})).await;
    let booking = node_a.booked(&guest, id, &day(10), &day(13)).await;

    let loads = node_a.metric("roost_calendar_loads_total").await;
    for _ in 0..3 {
        let statuses: Vec<StatusCode> = join_all(
            (0..20).map(|_| async { node_a.book(&guest, id, &day(11), &day(12)).await.status() }),
        )
        .await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CONFLICT),
            "{statuses:?}"
        );
    }
    assert_eq!(
        node_a.metric("roost_calendar_loads_total").await,
        loads,
        "a refusal with memory current read the calendar again"
    );
    let checks = |by: &'static str| {
        let node_a = &node_a;
        async move {
            let sample = format!("roost_refusal_checks_total{{by=\"{by}\"}}");
            node_a.metric(&sample).await
        }
    };
    let (read, shared) = (checks("read").await, checks("shared").await);
    assert_eq!(read + shared, 60.0);
    assert!(
        shared > 0.0,
        "60 racing refusals made {read} reads, none shared"
    );

    // Freed on B, unknown to A's memory: A reads the calendar again and books.
    node_b.cancel(&guest, booking).await;
    let again = node_a.book(&guest, id, &day(10), &day(13)).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        node_a.metric("roost_calendar_loads_total").await,
        loads + 1.0
    );
}

/// A listing's actor starts from the search index's copy of its calendar
/// when that is current, with no load; a copy behind the database (node B
/// booked, and node A, with no Redis and its log and scans ten minutes
/// apart, never heard) still refuses only what the database holds: the
/// database refuses the write and the actor reloads. (A has Redis, so it
/// reads the log only every ten minutes; B has none, so sends no word.)
async fn an_actor_started_from_a_search_index_behind_the_database_refuses_truly(backend: Backend) {
    let deaf = |s: &mut roost::config::Settings| {
        s.event_poll_interval = std::time::Duration::from_secs(600);
        s.hold_sweep_interval = None;
        s.property_idle_timeout = std::time::Duration::from_secs(1);
    };
    let a = TestApp::spawn_with(backend, |s| {
        deaf(s);
        s.redis_url = Some(roost::config::RedisUrl(redis_url()));
    })
    .await;
    let b = TestApp::spawn_on(TestDatabase::shared(a.database.url.clone()), deaf).await;
    a.ready_with("redis", "ok").await;
    let (_, host) = a.signed_in("host").await;
    let (_, guest) = a.signed_in("guest").await;
    let id = a.create_listing(&host, json!({})).await;
    a.ready_with("search", "memory").await;
    let settled = || async { a.metric("roost_search_index_stale").await == 0.0 };
    eventually("node A's index has the listing", settled).await;

    let (starts, loads) = (
        a.metric("roost_calendar_index_starts_total").await,
        a.metric("roost_calendar_loads_total").await,
    );
    a.booked(&guest, id, &day(10), &day(12)).await;
    assert_eq!(
        a.metric("roost_calendar_index_starts_total").await,
        starts + 1.0
    );
    assert_eq!(a.metric("roost_calendar_loads_total").await, loads);

    // B books nights A's index does not know of; A's actor goes idle and stops.
    b.booked(&guest, id, &day(20), &day(22)).await;
    eventually("node A's actor stops", || async {
        a.metric("roost_property_actors").await == 0.0
    })
    .await;
    let res = a.book(&guest, id, &day(20), &day(22)).await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "the database holds them"
    );
    assert_eq!(
        a.metric("roost_calendar_index_starts_total").await,
        starts + 2.0
    );
    assert_eq!(a.metric("roost_calendar_loads_total").await, loads + 1.0);
    // Reloaded, A's memory now knows B's nights, and books beside them.
    a.booked(&guest, id, &day(22), &day(24)).await;
    assert_eq!(a.count("calendar_entries").await, 3);
}

/// Node A books without expiring lapsed holds unless its memory knows of a
/// claim on the nights (on PostgreSQL; SQLite always expires). Node B, which
/// A never hears from, holds nights that lapse at once: A's guest still
/// gets them (201, not 409), and B's hold is marked expired.
async fn a_lapsed_hold_a_node_never_heard_of_does_not_keep_its_nights(backend: Backend) {
    let deaf = |s: &mut roost::config::Settings| {
        s.event_poll_interval = std::time::Duration::from_secs(600);
        s.hold_sweep_interval = None;
    };
    let a = TestApp::spawn_with(backend, deaf).await;
    let b = TestApp::spawn_on(TestDatabase::shared(a.database.url.clone()), |s| {
        deaf(s);
        s.hold_ttl = std::time::Duration::from_millis(1);
    })
    .await;
    let (_, host) = a.signed_in("host").await;
    let (_, guest) = a.signed_in("guest").await;
    let id = a.create_listing(&host, json!({})).await;
    // A's actor is up, its memory read before B's hold.
    a.booked(&guest, id, &day(10), &day(12)).await;
    let held = b.booked(&guest, id, &day(20), &day(23)).await;
    // A hold past its expiry reads `expired` (as of now) before any
    // sweeper marks it: this is the server's clock passing the expiry.
    let status =
        || async { a.get_ok(&format!("/api/v1/bookings/{held}"), &guest).await["status"].clone() };
    eventually("B's hold lapses", || async { status().await == "expired" }).await;
    let marked = "calendar_entries WHERE status = 'expired'";
    assert_eq!(a.count(marked).await, 0, "lapsed, not yet marked");

    let res = a.book(&guest, id, &day(21), &day(24)).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    assert_eq!(
        a.count(marked).await,
        1,
        "A's booking marked B's hold expired"
    );
}

/// Invariant 3's numbering across nodes: the calendar's lock reads the
/// listing's head as the writer it waited for left it, though that writer
/// changed only the head, not the listing's row. (A head read but not
/// locked would come from the snapshot taken before the wait, and the next
/// event would repeat a number.)
#[actix_web::test]
async fn the_head_read_under_the_calendar_lock_is_the_last_writers() {
    use diesel_async::RunQueryDsl;
    use futures_util::FutureExt;
    use roost::db::{events, properties};
    use roost::error::ApiError;
    use roost::with_conn;

    if !postgres_ready("the_head_read_under_the_calendar_lock_is_the_last_writers").await {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let (_, host) = app.signed_in("host").await;
    let id = app.create_listing(&host, json!({})).await;
    // Connections of its own: two writers and a watcher.
    let db = roost::db::Db::connect(&app.database.url, Some(3)).unwrap();
    let (locked, was_locked) = tokio::sync::oneshot::channel::<i64>();
    let (go, went) = tokio::sync::oneshot::channel::<()>();
    // The first writer locks the calendar, moves the head on, and holds
    // the lock until told to commit.
    let first = db.write(move |c| {
        async move {
            let head = properties::lock_calendar(c, id).await?.unwrap();
            with_conn!(c, |c| events::bump_seqs_of(vec![id], 1).execute(c).await)?;
            locked.send(head.seq).unwrap();
            went.await.unwrap();
            Ok::<_, ApiError>(head.seq)
        }
        .boxed()
    });
    let second = async {
        let before = was_locked.await.unwrap();
        let waiting = db.write(move |c| {
            async move {
                let head = properties::lock_calendar(c, id).await?.unwrap();
                Ok::<_, ApiError>(head.seq)
            }
            .boxed()
        });
        let release = async {
            one_waits_for_a_lock(&db, "the second writer waits for the lock").await;
            go.send(()).unwrap();
        };
        let (seq, ()) = tokio::join!(waiting, release);
        (before, seq.unwrap())
    };
    let (first, (before, second)) = tokio::join!(first, second);
    assert_eq!(first.unwrap(), before);
    assert_eq!(second, before + 1, "the head as the first writer left it");
}

/// A guarded claim (a hold judged on rules the actor kept) checks the
/// rules version under the head's row lock: a change of the rules
/// committed while the claim waited for that lock is seen, and the claim
/// writes nothing. (Were the version read from the statement's snapshot,
/// the claim would pass on rules no longer the listing's.) On the version
/// as it now stands, the claim is written, numbered after the head.
#[actix_web::test]
async fn a_guarded_claim_sees_the_rules_moved_while_it_waited() {
    use futures_util::FutureExt;
    use roost::db::calendar::NewEntry;
    use roost::db::{audit, events, properties};
    use roost::domain::EventKind;
    use roost::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
    use roost::error::ApiError;

    if !postgres_ready("a_guarded_claim_sees_the_rules_moved_while_it_waited").await {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let (host_id, host) = app.signed_in("host").await;
    let (guest_id, _) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let db = roost::db::Db::connect(&app.database.url, Some(3)).unwrap();
    let now = chrono::Utc::now().naive_utc();
    let check_in = chrono::Utc::now().date_naive() + chrono::Duration::days(30);
    let claim = move |rules: i64| {
        let db = db.clone();
        async move {
            db.run(move |mut conn| async move {
                let new = NewEntry {
                    property_id: id,
                    kind: "booking",
                    status: "pending",
                    check_in,
                    check_out: check_in + chrono::Duration::days(2),
                    hold_expires_at: Some(now + chrono::Duration::minutes(15)),
                    created_by: guest_id,
                    guest_id: Some(guest_id),
                    guests: Some(1),
                    nights: Some(2),
                    total: Some(25_000),
                    currency: Some("EUR"),
                    created_at: now,
                    updated_at: now,
                    ..NewEntry::default()
                };
                let record = AuditRecord::new(Action::BookingHeld, ObjectType::Booking, None);
                let rows = audit::rows(&AuditActor::system(), &[record], now);
                let guard = (id, host_id, rules);
                let kind = EventKind::BookingHeld;
                let claimed =
                    events::claim_guarded(&mut conn, guard, &new, kind, rows, now).await?;
                Ok::<_, ApiError>(claimed.map(|(entry, events)| (entry.id, events[0].seq)))
            })
            .await
            .unwrap()
        }
    };
    let db = roost::db::Db::connect(&app.database.url, Some(3)).unwrap();
    let (locked, was_locked) = tokio::sync::oneshot::channel::<(i64, i64)>();
    let (go, went) = tokio::sync::oneshot::channel::<()>();
    // A host's change: the listing locked, its rules version moved, held
    // uncommitted until told.
    let change = db.write(move |c| {
        async move {
            let head = properties::lock_calendar(c, id).await?.unwrap();
            properties::rules_changed(c, id).await?;
            locked.send((head.rules, head.seq)).unwrap();
            went.await.unwrap();
            Ok::<_, ApiError>(())
        }
        .boxed()
    });
    let claimed = async {
        let (rules, seq) = was_locked.await.unwrap();
        let waiting = claim(rules);
        let release = async {
            one_waits_for_a_lock(&db, "the claim waits for the head's lock").await;
            go.send(()).unwrap();
        };
        let (claimed, ()) = tokio::join!(waiting, release);
        (rules, seq, claimed)
    };
    let (changed, (rules, seq, claimed)) = tokio::join!(change, claimed);
    changed.unwrap();
    assert_eq!(claimed, None, "the rules moved while it waited");
    assert_eq!(app.count("calendar_entries").await, 0, "no row");
    assert_eq!(app.count("calendar_events").await, 0, "no event");
    assert!(
        app.audit_rows("booking.held").await.is_empty(),
        "no audit row"
    );
    let (entry, numbered) = claim(rules + 1)
        .await
        .expect("claimed on the rules as they stand");
    assert_eq!(numbered, seq + 1, "numbered after the head");
    let held = app.audit_rows("booking.held").await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].object_id, Some(entry), "about the new row");
}

/// Returns once one session of the test's database waits for a lock (seen
/// in `pg_stat_activity`).
async fn one_waits_for_a_lock(db: &roost::db::Db, what: &str) {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    eventually(what, || async {
        let mut conn = db.get().await.unwrap();
        let rows: Vec<Waiting> = roost::with_conn!(&mut conn, |c| diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        .load(c)
        .await)
        .unwrap();
        rows[0].n == 1
    })
    .await;
}
