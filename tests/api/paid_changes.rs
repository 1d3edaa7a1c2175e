//! Changing a paid, confirmed stay: re-quoted; cheaper moves at once and
//! refunds the difference under the listing's policy; dearer waits for the
//! difference to be paid, then moves in one transaction, or, the new
//! nights taken meanwhile, refunds it and stays as it was.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, day};
use crate::payments::{GOOD, booking, frame_of, pay, post_card, spawn, until_booking};

both_backends!(
    a_cheaper_change_refunds_the_difference_under_the_policy,
    a_dearer_change_waits_for_the_difference_then_moves,
    a_dearer_change_whose_nights_were_taken_refunds_the_difference,
);

async fn change(app: &TestApp, token: &str, booking: i64, body: Value) -> Value {
    let res = app
        .patch(&format!("/api/v1/bookings/{booking}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A confirmed, paid booking of `[a, b)` (days from today) at a 125.00 a
/// night listing with a 30.00 cleaning fee.
async fn paid_stay(app: &TestApp, guest: &str, listing: i64, a: i64, b: i64) -> (i64, Value) {
    let id = app.booked(guest, listing, &day(a), &day(b)).await;
    let payment = pay(app, guest, id).await;
    post_card(app, &payment, GOOD).await;
    until_booking(app, guest, id, |b| b["status"] == "confirmed").await;
    (id, payment)
}

async fn a_cheaper_change_refunds_the_difference_under_the_policy(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let listing = app.create_listing(&host, json!({})).await;
    // Booked just now, check-in 20 days away: the grace day, all of the
    // difference back.
    let (id, payment) = paid_stay(&app, &guest, listing, 20, 24).await;
    assert_eq!(
        frame_of(&mut guest_ws, "payment").await["kind"],
        "payment_succeeded"
    );
    let answer = change(&app, &guest, id, json!({"check_out": day(22)})).await;
    assert_eq!(
        (answer["status"].as_str(), answer["total"].as_i64()),
        (Some("confirmed"), Some(2 * 12_500 + 3_000))
    );
    assert_eq!(answer["refund"]["total"], 2 * 12_500);
    assert_eq!(answer["refund"]["rule"], "grace");
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (
            told["kind"].as_str(),
            told["amount"].as_i64(),
            told["reason"].as_str()
        ),
        (
            Some("payment_refunded"),
            Some(25_000),
            Some("booking_changed")
        )
    );
    let read = booking(&app, &guest, id).await;
    assert_eq!(read["payment"]["amount_refunded"], 25_000);
    assert_eq!(read["payment"]["amount"], payment["amount"]);
    assert_eq!(app.live_claims(listing).await.len(), 1);

    // Booked days ago, check-in in 3 days (moderate: the first night kept,
    // half the rest back): 3 nights cut to 2 gives back what cancelling
    // the dropped night would have, 125.00 / 2, not all of it.
    let (id, _) = paid_stay(&app, &guest, listing, 3, 6).await;
    frame_of(&mut guest_ws, "payment").await;
    app.execute(&format!(
        "UPDATE calendar_entries SET created_at = '{}' WHERE id = {id}",
        (chrono::Utc::now() - chrono::Duration::days(3))
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
    ))
    .await;
    let answer = change(&app, &guest, id, json!({"check_out": day(5)})).await;
    assert_eq!(answer["refund"]["rule"], "first_night_and_half_kept");
    assert_eq!(
        answer["refund"]["lines"],
        json!([{"kind": "nights", "amount": 6_250}])
    );
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(told["amount"], 6_250);
    let changed = app.audit_rows("booking.changed").await;
    assert_eq!(changed.len(), 2);
    assert!(changed.iter().all(|r| r.details.contains("refund")));
}

async fn a_dearer_change_waits_for_the_difference_then_moves(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let listing = app.create_listing(&host, json!({})).await;
    let (id, payment) = paid_stay(&app, &guest, listing, 20, 22).await;
    frame_of(&mut guest_ws, "payment").await;
    let answer = change(&app, &guest, id, json!({"check_out": day(24)})).await;
    // It keeps its nights until the difference is paid.
    assert_eq!(answer["check_out"], day(22));
    let pending = &answer["pending_change"];
    assert_eq!(
        (pending["status"].as_str(), pending["difference"].as_i64()),
        (Some("awaiting_payment"), Some(25_000))
    );
    assert_eq!(pending["check_out"], day(24));
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), told["amount"].as_i64()),
        (Some("change_awaiting_payment"), Some(25_000))
    );
    let claims = app.live_claims(listing).await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].1.to_string(), day(22));
    assert_eq!(app.audit_rows("booking.change_requested").await.len(), 1);

    let difference = pay(&app, &guest, id).await;
    assert_eq!(difference["amount"], 25_000);
    post_card(&app, &difference, GOOD).await;
    assert_eq!(
        frame_of(&mut guest_ws, "payment").await["kind"],
        "payment_succeeded"
    );
    let read = until_booking(&app, &guest, id, |b| b["check_out"] == day(24)).await;
    assert_eq!(read["status"], "confirmed");
    assert_eq!(read["total"], payment["amount"].as_i64().unwrap() + 25_000);
    assert_eq!(app.live_claims(listing).await[0].1.to_string(), day(24));
    assert_eq!(app.audit_rows("booking.changed").await.len(), 1);
    // Nothing more to pay.
    let res = app
        .post(&format!("/api/v1/bookings/{id}/payments"))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Cancelling it now (grace: all back) refunds both payments.
    app.cancel(&guest, id).await;
    let read = until_booking(&app, &guest, id, |b| {
        b["refunds"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["status"] == "succeeded"))
    })
    .await;
    let back: i64 = read["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(back, payment["amount"].as_i64().unwrap() + 25_000);
}

async fn a_dearer_change_whose_nights_were_taken_refunds_the_difference(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let listing = app.create_listing(&host, json!({})).await;
    let (id, _) = paid_stay(&app, &guest, listing, 20, 22).await;
    frame_of(&mut guest_ws, "payment").await;
    change(&app, &guest, id, json!({"check_out": day(24)})).await;
    frame_of(&mut guest_ws, "payment").await;
    // Someone else takes one of the new nights before the difference is paid.
    app.booked(&other, listing, &day(23), &day(25)).await;
    let difference = pay(&app, &guest, id).await;
    post_card(&app, &difference, GOOD).await;
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), told["amount"].as_i64()),
        (Some("change_unavailable"), Some(25_000))
    );
    let refunded = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (
            refunded["kind"].as_str(),
            refunded["amount"].as_i64(),
            refunded["reason"].as_str()
        ),
        (
            Some("payment_refunded"),
            Some(25_000),
            Some("change_unavailable")
        )
    );
    let read = booking(&app, &guest, id).await;
    assert_eq!(
        (read["status"].as_str(), read["check_out"].as_str()),
        (Some("confirmed"), Some(day(22).as_str()))
    );
    assert_eq!(app.audit_rows("booking.change_failed").await.len(), 1);
    assert_eq!(app.audit_rows("booking.changed").await.len(), 0);
    assert_eq!(
        app.live_claims(listing).await.len(),
        2,
        "never a double booking"
    );
}
