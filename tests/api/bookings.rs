//! Bookings and blocks: holds, refusals, cancelling, expiry, and who sees what.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error, day};

both_backends!(
    a_booking_holds_the_dates_with_an_exact_quote,
    bookings_against_the_rules_are_refused_with_clear_codes,
    back_to_back_stays_both_succeed,
    cancelling_frees_the_dates_at_once_and_only_once,
    a_lapsed_hold_frees_its_dates_and_is_swept_to_expired,
    a_block_refuses_bookings_and_a_booking_refuses_a_block,
    each_side_sees_only_its_own_bookings,
);

async fn a_booking_holds_the_dates_with_an_exact_quote(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let id = app
        .create_listing(
            &host,
            json!({"price_per_night": 12_345, "cleaning_fee": 2_500, "currency": "JPY"}),
        )
        .await;
    let before = chrono::Utc::now();
    let res = app.book(&guest, id, &day(10), &day(14)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let b: Value = res.json().await.unwrap();
    assert_eq!(b["status"], "pending");
    assert_eq!(b["property_id"], id);
    assert_eq!(b["guest_id"], guest_id);
    assert_eq!(b["nights"], 4);
    assert_eq!(b["total"], 4 * 12_345 + 2_500);
    assert_eq!(b["currency"], "JPY");
    let expires: chrono::DateTime<chrono::Utc> =
        b["hold_expires_at"].as_str().unwrap().parse().unwrap();
    let hold = expires - before;
    assert!(
        hold > chrono::Duration::minutes(14)
            && hold <= chrono::Duration::minutes(15) + chrono::Duration::seconds(5),
        "default hold is 15 minutes, got {hold}"
    );
    assert_eq!(app.live_claims(id).await.len(), 1);

    // A later price change does not touch the price it was sold at.
    app.patch(&format!("/api/v1/properties/{id}"))
        .bearer_auth(&host)
        .json(&json!({"price_per_night": 1}))
        .send()
        .await
        .unwrap();
    let again: Value = app
        .get(&format!("/api/v1/bookings/{}", b["id"]))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["total"], 4 * 12_345 + 2_500);
}

async fn bookings_against_the_rules_are_refused_with_clear_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app
        .create_listing(
            &host,
            json!({"min_nights": 2, "max_nights": 5, "max_guests": 2}),
        )
        .await;
    let booking = |body: Value| {
        app.post("/api/v1/bookings")
            .bearer_auth(&guest)
            .json(&body)
            .send()
    };
    let base = |check_in: String, check_out: String| json!({"property_id": id, "check_in": check_in, "check_out": check_out, "guests": 2});

    let res = booking(base(day(-2), day(1))).await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "dates_in_past").await;
    let res = booking(base(day(10), day(10))).await.unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"][0]["code"],
        "check_out_not_after_check_in"
    );
    let res = booking(base(day(10), day(8))).await.unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let res = booking(base(day(10), day(11))).await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "stay_too_short").await;
    let res = booking(base(day(10), day(16))).await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "stay_too_long").await;
    let mut crowd = base(day(10), day(12));
    crowd["guests"] = json!(3);
    let res = booking(crowd).await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "too_many_guests").await;
    let res = app.book(&host, id, &day(10), &day(12)).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "own_listing").await;
    let res = app.book(&guest, 987_654, &day(10), &day(12)).await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = booking(json!({"property_id": "one", "check_in": "soon", "guests": 0, "pets": 1}))
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in ["pets", "property_id", "check_in", "check_out", "guests"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let res = app
        .post("/api/v1/bookings")
        .json(&base(day(10), day(12)))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.count("calendar_entries").await, 0, "nothing was stored");
}

async fn back_to_back_stays_both_succeed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    assert_eq!(
        app.book(&guest, id, &day(10), &day(13)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.book(&other, id, &day(13), &day(15)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.book(&other, id, &day(7), &day(10)).await.status(),
        StatusCode::CREATED
    );
    let res = app.book(&other, id, &day(12), &day(14)).await;
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
    assert_eq!(app.live_claims(id).await.len(), 3);
}

async fn cancelling_frees_the_dates_at_once_and_only_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host_id, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;

    let first: Value = app
        .book(&guest, id, &day(10), &day(13))
        .await
        .json()
        .await
        .unwrap();
    let cancel = |token: String, booking: &Value| {
        app.post(&format!("/api/v1/bookings/{}/cancel", booking["id"]))
            .bearer_auth(token)
            .send()
    };
    let res = cancel(stranger.clone(), &first).await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = cancel(guest.clone(), &first).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["cancelled_by"], guest_id);
    let res = cancel(guest.clone(), &first).await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition").await;

    // The same nights, at once, for someone else; then the host cancels that one.
    let second: Value = app
        .book(&stranger, id, &day(10), &day(13))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["status"], "pending");
    let res = cancel(host.clone(), &second).await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["cancelled_by"], host_id);
    assert!(app.live_claims(id).await.is_empty());
}

async fn a_lapsed_hold_frees_its_dates_and_is_swept_to_expired(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.hold_ttl = Duration::from_secs(1);
        s.hold_sweep_interval = Some(Duration::from_secs(1));
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let hold: Value = app
        .book(&guest, id, &day(10), &day(13))
        .await
        .json()
        .await
        .unwrap();
    let res = app.book(&other, id, &day(11), &day(12)).await;
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;

    // The sweeper marks it expired in the database within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = app.db.get().await.unwrap();
        let stored = roost::db::calendar::find(&mut conn, hold["id"].as_i64().unwrap())
            .await
            .unwrap()
            .unwrap();
        if stored.status == "expired" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hold never swept: {}",
            stored.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let read: Value = app
        .get(&format!("/api/v1/bookings/{}", hold["id"]))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "expired");
    assert!(read.get("hold_expires_at").is_none());
    let res = app.book(&other, id, &day(11), &day(12)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

async fn a_block_refuses_bookings_and_a_booking_refuses_a_block(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let block = |start: String, end: String| {
        app.post(&format!("/api/v1/properties/{id}/blocks"))
            .bearer_auth(&host)
            .json(&json!({"start": start, "end": end, "reason": "owner's week"}))
            .send()
    };
    let res = block(day(20), day(27)).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let b: Value = res.json().await.unwrap();
    assert_eq!(
        (b["start"].as_str(), b["reason"].as_str()),
        (Some(day(20).as_str()), Some("owner's week"))
    );

    let res = app.book(&guest, id, &day(26), &day(29)).await;
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
    assert_eq!(
        app.book(&guest, id, &day(27), &day(29)).await.status(),
        StatusCode::CREATED
    );
    let res = block(day(28), day(30)).await.unwrap();
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
    let res = block(day(-3), day(-1)).await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "dates_in_past").await;
    let res = app
        .post(&format!("/api/v1/properties/{id}/blocks"))
        .bearer_auth(&host)
        .json(&json!({"start": "next week"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 2);

    let res = app
        .delete(&format!("/api/v1/properties/{id}/blocks/{}", b["id"]))
        .bearer_auth(&host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.book(&guest, id, &day(22), &day(24)).await.status(),
        StatusCode::CREATED
    );
}

async fn each_side_sees_only_its_own_bookings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, other_host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let (_, admin) = app.signed_in_admin().await;
    let id = app.create_listing(&host, json!({})).await;
    let mut ids = Vec::new();
    for start in [10, 20, 30] {
        let b: Value = app
            .book(&guest, id, &day(start), &day(start + 2))
            .await
            .json()
            .await
            .unwrap();
        ids.push(b["id"].as_i64().unwrap());
    }
    let app = &app;
    let list = |token: String, query: &'static str| async move {
        let res = app
            .get(&format!("/api/v1/bookings{query}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(list(guest.clone(), "").await, newest_first);
    assert_eq!(list(host.clone(), "?role=host").await, newest_first);
    assert_eq!(
        list(host.clone(), "").await,
        Vec::<i64>::new(),
        "the host took no trips"
    );
    assert_eq!(
        list(other_host.clone(), "?role=host").await,
        Vec::<i64>::new()
    );
    assert_eq!(list(stranger.clone(), "").await, Vec::<i64>::new());

    // Page by page.
    let body: Value = app
        .get("/api/v1/bookings?limit=2")
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = body["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/api/v1/bookings?limit=2&cursor={cursor}"))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["id"], ids[0]);
    assert!(rest["next_cursor"].is_null());

    let path = format!("/api/v1/bookings/{}", ids[0]);
    for token in [&guest, &host, &admin] {
        assert_eq!(
            app.get(&path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    for token in [&stranger, &other_host] {
        let res = app.get(&path).bearer_auth(token).send().await.unwrap();
        assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = app
            .post(&format!("{path}/cancel"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(app.live_claims(id).await.len(), 3, "nothing was cancelled");
    // Each refusal is in the audit trail, though the answer was "not found".
    let mut expected = Vec::new();
    for token in [&stranger, &other_host] {
        let who = app.get_me(token).await.json::<Value>().await.unwrap()["id"].as_i64();
        for attempted in ["booking.read", "booking.cancel"] {
            expected.push((
                who,
                "booking".to_owned(),
                Some(ids[0]),
                attempted.to_owned(),
            ));
        }
    }
    assert_eq!(app.denials().await, expected);
    let res = app.get(&path).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .get("/api/v1/bookings?role=owner")
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
}

/// On PostgreSQL a hold on nights the listing's memory knows are free,
/// judged on the rules its actor keeps, is one statement: the hold's row,
/// its event and its audit row, written only while the rules version is
/// the one the actor read (no BEGIN, lock or COMMIT). A season added moves
/// the version: the next hold fails its guard and is made under the lock
/// on the rules as they stand (its price the season's), the one after
/// reads the rules again, and holds are one statement again. (Other work
/// of the server's may add to a count, never take from it: some try shows
/// the booking's own.) Each hold still has its event and its audit row,
/// about it.
#[actix_web::test]
async fn a_hold_on_postgres_is_one_statement_while_the_rules_hold() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let name = "a_hold_on_postgres_is_one_statement_while_the_rules_hold";
    if !crate::helpers::postgres_ready(name).await {
        return;
    }
    const STATEMENTS: &str = "roost_db_statements_total";
    let app = TestApp::spawn(Backend::Postgres).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    // The listing's actor started and read the rules, the guest's token known.
    app.booked(&guest, id, &day(10), &day(12)).await;
    let week = AtomicI64::new(0);
    let hold_costs = async |statements: f64, from: i64| {
        let what = format!("a hold from day {from} on costs {statements} statements");
        crate::helpers::eventually(&what, || async {
            let start = from + 7 * week.fetch_add(1, Ordering::Relaxed);
            let before = app.metric(STATEMENTS).await;
            app.booked(&guest, id, &day(start), &day(start + 3)).await;
            app.metric(STATEMENTS).await - before == statements
        })
        .await;
    };
    hold_costs(1.0, 20).await;
    let season = json!({"start": day(100), "end": day(400), "price": 20_000});
    let res = app
        .post(&format!("/api/v1/properties/{id}/rates"))
        .bearer_auth(&host)
        .json(&season)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.book(&guest, id, &day(120), &day(122)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let in_season: Value = res.json().await.unwrap();
    assert_eq!(
        in_season["price_per_night"], 12_500,
        "the base, kept as sold"
    );
    let nights: Vec<i64> = in_season["night_prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(nights, [20_000, 20_000], "the season's price");
    hold_costs(1.0, 150).await;
    hold_costs(1.0, 450).await;
    // With an Idempotency-Key: the key claimed (one statement, on its own),
    // the hold and the key's answer in one transaction (BEGIN, the claim,
    // the answer, COMMIT), and nothing after: the request knows its answer
    // is kept.
    let n = AtomicI64::new(0);
    crate::helpers::eventually("a keyed hold costs 5 statements", || async {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let start = 700 + 7 * i;
        let before = app.metric(STATEMENTS).await;
        let res = app
            .post("/api/v1/bookings")
            .bearer_auth(&guest)
            .header("Idempotency-Key", format!("keyed-hold-{i}"))
            .json(&json!({"property_id": id, "check_in": day(start),
                          "check_out": day(start + 3), "guests": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        app.metric(STATEMENTS).await - before == 5.0
    })
    .await;
    let held = app.audit_rows("booking.held").await;
    assert!(held.len() >= 4, "every hold has its audit row: {held:?}");
    let events: i64 = app.count("calendar_events").await;
    assert_eq!(events as usize, held.len(), "and its event");
    let mut conn = app.db.get().await.unwrap();
    let from = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let claims = roost::db::calendar::live_for_property(&mut conn, id, from).await;
    let mut booked: Vec<i64> = claims.unwrap().iter().map(|e| e.id).collect();
    let mut about: Vec<i64> = held.iter().map(|r| r.object_id.unwrap()).collect();
    booked.sort_unstable();
    about.sort_unstable();
    assert_eq!(about, booked, "each audit row is about its own hold");
}
