//! SQLite's group commit (`roost::db::group`): the writes waiting at once
//! (the listing actors', and the request paths' outside them) share one
//! transaction and one sync, each still all-or-nothing to its caller, and a
//! 2xx still means on disk.

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use roost::db::{Conn, Db};
use roost::error::ApiError;
use roost::with_conn;

use crate::binary::{start, unlimited};
use crate::helpers::{Backend, TestApp, TestDatabase, day};

/// Write `n` inserts row `n`; an odd one then inserts it again, a unique
/// violation, so its own first insert must be undone with it.
async fn probe(c: &mut Conn<'_>, n: i64) -> Result<i64, ApiError> {
    let insert = "INSERT INTO group_probe (n) VALUES ($1)";
    with_conn!(c, |c| diesel::sql_query(insert)
        .bind::<BigInt, _>(n)
        .execute(c)
        .await)?;
    if n % 2 == 1 {
        with_conn!(c, |c| diesel::sql_query(insert)
            .bind::<BigInt, _>(n)
            .execute(c)
            .await)?;
    }
    Ok(n)
}

#[actix_web::test]
async fn each_write_in_a_group_is_all_or_nothing() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    let db = Db::connect(&database.url, Some(2)).unwrap();
    db.write(|c| {
        async move {
            with_conn!(c, |c| diesel::sql_query(
                "CREATE TABLE group_probe (n BIGINT NOT NULL PRIMARY KEY)"
            )
            .execute(c)
            .await)?;
            Ok::<_, ApiError>(())
        }
        .boxed()
    })
    .await
    .unwrap();
    let before = db.group_commit().unwrap().commits.get();

    let outcomes = join_all((0..64_i64).map(|n| {
        let db = db.clone();
        async move { db.write(move |c| probe(c, n).boxed()).await }
    }))
    .await;

    for (n, outcome) in (0_i64..).zip(&outcomes) {
        match outcome {
            Ok(got) => assert!(n % 2 == 0 && *got == n, "write {n} answered Ok({got})"),
            Err(e) => assert!(n % 2 == 1, "write {n} failed: {e:?}"),
        }
    }
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = db.get().await.unwrap();
    let rows: Vec<Row> = with_conn!(&mut conn, |c| diesel::sql_query(
        "SELECT n FROM group_probe ORDER BY n"
    )
    .load(c)
    .await)
    .unwrap();
    let stored: Vec<i64> = rows.into_iter().map(|r| r.n).collect();
    assert_eq!(stored, (0..64).step_by(2).collect::<Vec<_>>());
    // They were grouped: fewer commits than writes (64 writes queued at once).
    let counters = db.group_commit().unwrap();
    let commits = counters.commits.get() - before;
    assert!(commits < 64, "{commits} commits for 64 writes");
}

/// Invariant 3 under group commit: bookings answered 201 while others
/// were committing in the same groups all survive `kill -9` at once after.
#[actix_web::test]
async fn acknowledged_bookings_survive_kill_9_under_group_commit() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let node = || {
        let mut cmd = unlimited(dir.path(), &database.env_url());
        cmd.env("ROOST_WORKERS", "2");
        start(cmd)
    };
    let mut running = node();
    let api = running.api();
    let (_, host) = api.signed_in("host").await;
    let (_, guest) = api.signed_in("guest").await;
    let listings =
        join_all((0..24).map(|_| api.create_listing(&host, json!({"max_guests": 4})))).await;

    // Two stays on each listing, all at once, then the process is killed.
    let booked = join_all(listings.iter().flat_map(|&id| {
        [(10, 13), (13, 16)].map(|(from, to)| {
            let (api, guest) = (&api, &guest);
            async move {
                let res = api.book(guest, id, &day(from), &day(to)).await;
                assert_eq!(res.status(), StatusCode::CREATED);
                res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
            }
        })
    }))
    .await;
    let commits = api.metric("roost_db_group_commits_total").await;
    let writes = api.metric("roost_db_group_commit_writes_total").await;
    assert!(writes >= 48.0, "{writes} writes through the committer");
    assert!(commits < writes, "{commits} commits for {writes} writes");
    running.kill();

    let running = node();
    let api = running.api();
    for id in booked {
        let res = api
            .get(&format!("/api/v1/bookings/{id}"))
            .bearer_auth(&guest)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "booking {id} was lost");
    }
}

/// `ROOST_SQLITE_COMMIT=each` turns the committer off: writes commit on
/// their own, as before it, and nothing is counted.
#[actix_web::test]
async fn each_commit_mode_writes_alone() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = unlimited(dir.path(), &database.env_url());
    cmd.env("ROOST_SQLITE_COMMIT", "each");
    let running = start(cmd);
    let api = running.api();
    let (_, host) = api.signed_in("host").await;
    let (_, guest) = api.signed_in("guest").await;
    let id = api.create_listing(&host, json!({})).await;
    api.booked(&guest, id, &day(10), &day(12)).await;
    let res = api.book(&guest, id, &day(11), &day(13)).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let metrics = api.metrics_text().await;
    assert!(
        !metrics.contains("roost_db_group_commits_total"),
        "{metrics}"
    );
}

/// The request paths' writes outside the listing actors go through the
/// committer too: registering, signing in and out, a listing created and
/// edited, a season added and removed, a review's reply, an
/// Idempotency-Key's claim. Each adds its writes to the committer's count
/// (other work may add to a count, never take from it: some try shows the
/// request's own). Written straight to their own transactions, they would
/// add none.
#[actix_web::test]
async fn writes_outside_the_actors_are_grouped_too() {
    const WRITES: &str = "roost_db_group_commit_writes_total";
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, host) = app.signed_in("host").await;
    let id = app.create_listing(&host, json!({})).await;
    let costs = async |what: &str, writes: f64, request: &dyn Fn() -> reqwest::RequestBuilder| {
        crate::helpers::eventually(&format!("{what} is {writes} grouped writes"), || async {
            let before = app.metric(WRITES).await;
            let res = request().send().await.unwrap();
            assert!(res.status().is_success(), "{what}: {}", res.status());
            app.metric(WRITES).await - before == writes
        })
        .await;
    };
    let email = || format!("{}@example.com", uuid::Uuid::new_v4().simple());
    costs("registering", 1.0, &|| {
        let body = json!({"email": email(), "password": "password123", "name": "N"});
        app.post("/api/v1/auth/register").json(&body)
    })
    .await;
    let guest = email();
    let res = app.register(&guest, "password123", "guest").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    costs("signing in", 1.0, &|| {
        let body = json!({"email": guest, "password": "password123"});
        app.post("/api/v1/auth/login").json(&body)
    })
    .await;
    costs("a listing created", 1.0, &|| {
        let body = crate::helpers::listing(json!({}));
        app.post("/api/v1/properties")
            .bearer_auth(&host)
            .json(&body)
    })
    .await;
    costs("a listing edited", 1.0, &|| {
        let path = format!("/api/v1/properties/{id}");
        app.patch(&path)
            .bearer_auth(&host)
            .json(&json!({"title": "Attic"}))
    })
    .await;
    let start = std::sync::atomic::AtomicI64::new(100);
    costs("a season added", 1.0, &|| {
        let from = start.fetch_add(10, std::sync::atomic::Ordering::Relaxed);
        let body = json!({"start": day(from), "end": day(from + 5), "price": 20_000});
        app.post(&format!("/api/v1/properties/{id}/rates"))
            .bearer_auth(&host)
            .json(&body)
    })
    .await;
    costs("a keyed edit: the key's claim and the edit", 2.0, &|| {
        let path = format!("/api/v1/properties/{id}");
        app.patch(&path)
            .bearer_auth(&host)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"title": "Barn"}))
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(app.signed_in("guest").await.1);
    }
    let tokens = std::sync::Mutex::new(tokens);
    costs("signing out", 1.0, &|| {
        let token = tokens
            .lock()
            .unwrap()
            .pop()
            .expect("a token left to sign out");
        app.post("/api/v1/auth/logout").bearer_auth(token)
    })
    .await;
}
