//! Changing a pending booking: moved and re-quoted in one transaction in the
//! listing's actor, or nothing changes; live calendars follow.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error, day};

both_backends!(
    a_hold_moves_to_free_nights_re_quoted_and_followed_live,
    a_move_into_taken_nights_changes_nothing,
    a_move_may_overlap_its_own_nights,
    only_the_guest_changes_only_a_pending_unpaid_booking,
    racing_changes_and_bookings_never_overlap,
);

async fn change(app: &TestApp, token: &str, booking: i64, body: Value) -> reqwest::Response {
    app.patch(&format!("/api/v1/bookings/{booking}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn quote_total(app: &TestApp, id: i64, a: &str, b: &str, guests: i64) -> Value {
    let q: Value = app
        .get(&format!(
            "/api/v1/properties/{id}/quote?check_in={a}&check_out={b}&guests={guests}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    q["total"].clone()
}

async fn a_hold_moves_to_free_nights_re_quoted_and_followed_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app
        .create_listing(&host, json!({"cleaning_fee": 1_000}))
        .await;
    let booking = app.booked(&guest, id, &day(10), &day(12)).await;
    let mut ws = app.ws(None).await;
    let snapshot = ws.subscribe(id, None).await;
    let seq = snapshot["seq"].as_i64().unwrap();

    let res = change(
        &app,
        &guest,
        booking,
        json!({"check_in": day(20), "check_out": day(23), "guests": 3}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let moved: Value = res.json().await.unwrap();
    assert_eq!(
        (moved["id"].as_i64(), moved["status"].as_str()),
        (Some(booking), Some("pending"))
    );
    assert_eq!(
        (moved["check_in"].as_str(), moved["nights"].as_i64()),
        (Some(day(20).as_str()), Some(3))
    );
    assert_eq!(moved["guests"], 3);
    assert_eq!(
        moved["total"],
        quote_total(&app, id, &day(20), &day(23), 3).await
    );
    assert_eq!(moved["night_prices"].as_array().unwrap().len(), 3);

    // Live calendars: the same entry now takes the new nights.
    let event = loop {
        let frame = ws.recv().await;
        if frame["type"] == "event" {
            break frame;
        }
    };
    assert_eq!(event["kind"], "booking_changed");
    assert_eq!(
        (event["seq"].as_i64(), event["entry_id"].as_i64()),
        (Some(seq + 1), Some(booking))
    );
    assert_eq!(
        (event["check_in"].as_str(), event["busy"].as_str()),
        (Some(day(20).as_str()), Some("held"))
    );
    assert_eq!(app.live_claims(id).await, [(day_date(20), day_date(23))]);
    // The old nights are bookable again.
    app.booked(&guest, id, &day(10), &day(12)).await;
    let audit = app.audit_rows("booking.changed").await;
    assert_eq!(audit.len(), 1);
    assert!(audit[0].details.contains(&day(10)) && audit[0].details.contains(&day(20)));
}

fn day_date(n: i64) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(&day(n), "%Y-%m-%d").unwrap()
}

async fn a_move_into_taken_nights_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let booking = app.booked(&guest, id, &day(10), &day(12)).await;
    app.booked(&other, id, &day(20), &day(22)).await;
    let before = app
        .get_ok(&format!("/api/v1/bookings/{booking}"), &guest)
        .await;
    let res = change(
        &app,
        &guest,
        booking,
        json!({"check_in": day(19), "check_out": day(21)}),
    )
    .await;
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
    let after = app
        .get_ok(&format!("/api/v1/bookings/{booking}"), &guest)
        .await;
    assert_eq!(before, after, "exactly as it was");
    assert!(app.audit_rows("booking.changed").await.is_empty());
    let mut claims = app.live_claims(id).await;
    claims.sort();
    assert_eq!(
        claims,
        [(day_date(10), day_date(12)), (day_date(20), day_date(22))]
    );
}

async fn a_move_may_overlap_its_own_nights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let booking = app.booked(&guest, id, &day(10), &day(13)).await;
    // One night later, and (only the end given) one night longer.
    let res = change(
        &app,
        &guest,
        booking,
        json!({"check_in": day(11), "check_out": day(14)}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = change(&app, &guest, booking, json!({"check_out": day(15)})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.live_claims(id).await, [(day_date(11), day_date(15))]);
}

async fn only_the_guest_changes_only_a_pending_unpaid_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({"max_guests": 2})).await;
    let booking = app.booked(&guest, id, &day(10), &day(12)).await;
    let body = json!({"check_in": day(11)});
    assert_error(
        change(&app, &host, booking, body.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        change(&app, &stranger, booking, body.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .patch(&format!("/api/v1/bookings/{booking}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Bad input: every field named.
    let res = change(
        &app,
        &guest,
        booking,
        json!({"check_in": "soon", "guests": 0, "pets": 2}),
    )
    .await;
    let bad = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        bad["error"]["details"].as_array().unwrap().len(),
        3,
        "{bad}"
    );
    let res = change(&app, &guest, booking, json!({"check_in": day(13)})).await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    // The listing's rules hold for the new stay, and answer before the
    // calendar: over someone else's nights, too many guests is the answer.
    let res = change(&app, &guest, booking, json!({"guests": 3})).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "too_many_guests").await;
    app.booked(&stranger, id, &day(30), &day(32)).await;
    let into_taken = json!({"check_in": day(30), "check_out": day(32), "guests": 3});
    let res = change(&app, &guest, booking, into_taken).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "too_many_guests").await;
    // A payment started: the price it is for may not move.
    crate::payments::pay(&app, &guest, booking).await;
    let res = change(&app, &guest, booking, json!({"check_out": day(13)})).await;
    assert_error(res, StatusCode::CONFLICT, "payment_started").await;
    // Cancelled: nothing to change.
    let other = app.booked(&guest, id, &day(20), &day(21)).await;
    app.cancel(&guest, other).await;
    let res = change(&app, &guest, other, json!({"check_out": day(22)})).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition").await;
    let denied: Vec<String> = app.denials().await.into_iter().map(|d| d.3).collect();
    assert!(
        denied.iter().filter(|d| *d == "booking.change").count() == 2,
        "{denied:?}"
    );
}

async fn racing_changes_and_bookings_never_overlap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let id = app.create_listing(&host, json!({"max_nights": 30})).await;
    let mut guests = Vec::new();
    for _ in 0..5 {
        guests.push(app.signed_in("guest").await.1);
    }
    // Five holds, then 25 changes of them and 25 new bookings, all at once,
    // over a crowded month.
    let mut holds = Vec::new();
    for (k, token) in guests.iter().enumerate() {
        let start = 10 + 6 * k as i64;
        holds.push((
            token.clone(),
            app.booked(token, id, &day(start), &day(start + 2)).await,
        ));
    }
    let mut requests = Vec::new();
    for n in 0..50i64 {
        let start = 8 + (n * 7) % 30;
        let (a, b) = (day(start), day(start + 2 + n % 3));
        let (token, booking) = holds[(n % 5) as usize].clone();
        let app = &app;
        requests.push(async move {
            if n % 2 == 0 {
                change(app, &token, booking, json!({"check_in": a, "check_out": b}))
                    .await
                    .status()
            } else {
                app.book(&token, id, &a, &b).await.status()
            }
        });
    }
    let statuses = futures_util::future::join_all(requests).await;
    for s in &statuses {
        assert!(
            [StatusCode::OK, StatusCode::CREATED, StatusCode::CONFLICT].contains(s),
            "{statuses:?}"
        );
    }
    let claims = app.live_claims(id).await;
    for (i, a) in claims.iter().enumerate() {
        for b in &claims[i + 1..] {
            assert!(
                a.1 <= b.0 || b.1 <= a.0,
                "{a:?} and {b:?} overlap: {claims:?}"
            );
        }
    }
}
