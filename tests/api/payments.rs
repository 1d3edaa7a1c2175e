//! Paying for a booking: the sandbox processor reached over HTTP, cards
//! posted to its `confirm_url`, outcomes back as signed webhooks settled
//! once through the listing's actor, confirmations pushed live.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use roost::config::Secret;
use roost::payments::signature;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Api, Backend, TestApp, TestDatabase, WsClient, assert_error, day, postgres_ready,
};

both_backends!(
    a_guest_pays_and_sees_the_confirmation_arrive_live,
    a_declined_card_then_a_good_one_on_the_same_hold,
    each_sandbox_card_does_what_it_says,
    a_processing_payment_keeps_its_hold_past_its_expiry,
    bad_webhooks_are_refused_recorded_and_change_nothing,
    a_redelivered_event_changes_nothing,
    events_twice_and_out_of_order_end_in_the_right_state,
    a_payment_after_the_hold_lapsed_confirms_if_the_nights_are_free,
    a_payment_after_the_hold_lapsed_is_refunded_if_the_nights_were_taken,
    only_the_guest_pays_only_a_pending_booking,
    a_redelivery_after_kill_9_confirms_exactly_once,
    cancelling_a_paid_booking_refunds_it_in_full,
    a_refund_the_gateway_reports_reaches_the_guest_once,
);

pub const GOOD: &str = "4242 4242 4242 4242";
pub const SECRET: &str = "whsec_test_secret";

/// A server whose sandbox signs with a secret the tests know.
pub async fn spawn(
    backend: Backend,
    configure: impl FnOnce(&mut roost::config::Settings),
) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.payments.sandbox_webhook_secrets = vec![Secret(SECRET.into())];
        configure(s);
    })
    .await
}

/// (host token, guest id, guest token, listing id)
pub async fn cast(app: &TestApp) -> (String, i64, String, i64) {
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    (host, guest_id, guest, id)
}

/// Starts a payment for the booking: 201 and its body.
pub async fn pay(api: &Api, token: &str, booking: i64) -> Value {
    let res = api
        .post(&format!("/api/v1/bookings/{booking}/payments"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// Posts a card to the processor's `confirm_url`, as the payer's browser does.
pub async fn post_card(api: &Api, payment: &Value, number: &str) -> (StatusCode, Value) {
    let url = payment["next_action"]["confirm_url"].as_str().unwrap();
    let res = api
        .client
        .post(url)
        .json(&json!({"card_number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn booking(api: &Api, token: &str, id: i64) -> Value {
    api.get_ok(&format!("/api/v1/bookings/{id}"), token).await
}

/// Polls the booking (at most 30 s) until `done` says so.
pub async fn until_booking(
    api: &Api,
    token: &str,
    id: i64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = booking(api, token, id).await;
        if done(&b) {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "booking {id} never got there: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next frame of `type`, skipping others (at most 15 s).
pub async fn frame_of(ws: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = ws.recv().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// How many rows `table` has where `condition` holds.
pub async fn count_where(app: &TestApp, table: &str, condition: &str) -> i64 {
    app.count(&format!("{table} WHERE {condition}")).await
}

async fn a_guest_pays_and_sees_the_confirmation_arrive_live(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (host, guest_id, guest, id) = cast(&app).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let mut host_ws = app.ws(Some(&host)).await;
    let mut listing_ws = app.ws(None).await;
    assert_eq!(listing_ws.subscribe(id, None).await["type"], "snapshot");

    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let held = listing_ws.events(1).await.remove(0);
    assert_eq!(
        (held["kind"].as_str(), held["seq"].as_i64()),
        (Some("booking_held"), Some(1))
    );

    let payment = pay(&app, &guest, booking_id).await;
    let total = 3 * 12_500 + 3_000;
    assert_eq!(
        (
            payment["status"].as_str(),
            payment["amount"].as_i64(),
            payment["currency"].as_str(),
            payment["gateway"].as_str()
        ),
        (
            Some("requires_payment_method"),
            Some(total),
            Some("EUR"),
            Some("sandbox")
        )
    );
    let url = payment["next_action"]["confirm_url"].as_str().unwrap();
    assert!(url.contains("/sandbox/v1/payment_intents/"), "{url}");
    assert!(!url.contains("/api/v1/"), "cards never go to Roost's API");

    let (status, confirmed) = post_card(&app, &payment, GOOD).await;
    assert_eq!(
        (status, confirmed["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );

    // The guest hears of the money; the listing's followers of the booking.
    let paid = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        paid,
        json!({"type": "payment", "kind": "payment_succeeded", "booking_id": booking_id,
               "payment_id": payment["id"], "amount": total, "currency": "EUR"})
    );
    let confirmed = listing_ws.events(1).await.remove(0);
    assert_eq!(
        (
            confirmed["kind"].as_str(),
            confirmed["seq"].as_i64(),
            confirmed["busy"].as_str()
        ),
        (Some("booking_confirmed"), Some(2), Some("booked"))
    );
    loop {
        let frame = frame_of(&mut host_ws, "booking").await;
        if frame["kind"] == "booking_confirmed" {
            assert_eq!(frame["role"], "host");
            break;
        }
    }
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(read["status"], "confirmed");
    assert_eq!(
        (
            read["payment"]["status"].as_str(),
            read["payment"]["card_brand"].as_str(),
            read["payment"]["card_last4"].as_str()
        ),
        (Some("succeeded"), Some("visa"), Some("4242"))
    );
    assert!(
        !read.to_string().contains("4242424242424242"),
        "no card number anywhere"
    );
    // The trail: created by the guest, settled by the gateway's webhook.
    assert_eq!(
        app.audit_rows("payment.created").await[0].actor_id,
        Some(guest_id)
    );
    assert_eq!(app.audit_rows("payment.succeeded").await.len(), 1);
    assert_eq!(app.audit_rows("booking.confirmed").await.len(), 1);
}

async fn a_declined_card_then_a_good_one_on_the_same_hold(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, _, guest, id) = cast(&app).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;

    let (status, body) = post_card(&app, &payment, "4000 0000 0000 0002").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["code"], "card_declined");
    let failed = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (failed["kind"].as_str(), failed["reason"].as_str()),
        (Some("payment_failed"), Some("card_declined"))
    );
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(read["status"], "pending", "the hold stays");
    assert_eq!(read["payment"]["failure_reason"], "card_declined");

    let (status, _) = post_card(&app, &payment, GOOD).await;
    assert_eq!(status, StatusCode::OK);
    let paid = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(paid["kind"], "payment_succeeded");
    let read = until_booking(&app, &guest, booking_id, |b| b["status"] == "confirmed").await;
    assert_eq!(read["payment"]["status"], "succeeded");
    assert!(read["payment"].get("failure_reason").is_none(), "{read}");
}

async fn each_sandbox_card_does_what_it_says(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, _, guest, id) = cast(&app).await;
    let cases = [
        (
            "4000 0000 0000 9995",
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
        ),
        (
            "4000 0000 0000 0002",
            StatusCode::PAYMENT_REQUIRED,
            "card_declined",
        ),
        (
            "5555 5555 5555 4444",
            StatusCode::PAYMENT_REQUIRED,
            "card_declined",
        ),
        ("1234", StatusCode::BAD_REQUEST, "invalid_card"),
    ];
    for (i, (card, status, code)) in cases.into_iter().enumerate() {
        let from = 10 + 5 * i as i64;
        let booking_id = app.booked(&guest, id, &day(from), &day(from + 2)).await;
        let payment = pay(&app, &guest, booking_id).await;
        let (got, body) = post_card(&app, &payment, card).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{card}"
        );
        if status == StatusCode::PAYMENT_REQUIRED {
            let read = until_booking(&app, &guest, booking_id, |b| {
                b["payment"]["failure_reason"] == code
            })
            .await;
            assert_eq!(read["status"], "pending");
        }
    }
    // A confirm URL is the processor's secret: a wrong one is 404.
    let booking_id = app.booked(&guest, id, &day(40), &day(42)).await;
    let mut payment = pay(&app, &guest, booking_id).await;
    let url = payment["next_action"]["confirm_url"]
        .as_str()
        .unwrap()
        .to_owned();
    payment["next_action"]["confirm_url"] = json!(format!("{url}x"));
    let (status, _) = post_card(&app, &payment, GOOD).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(booking(&app, &guest, booking_id).await["status"], "pending");
}

async fn a_processing_payment_keeps_its_hold_past_its_expiry(backend: Backend) {
    // The hold lapses after 2 s; the delayed card succeeds after 3 s.
    let app = spawn(backend, |s| {
        s.hold_ttl = Duration::from_secs(2);
        s.hold_sweep_interval = Some(Duration::from_secs(1));
        s.payments.sandbox_delay = Duration::from_secs(3);
    })
    .await;
    let (_, _, guest, id) = cast(&app).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    let (status, body) = post_card(&app, &payment, "4000 0000 0000 0077").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("processing"))
    );

    let processing = until_booking(&app, &guest, booking_id, |b| {
        b["payment"]["status"] == "processing"
    })
    .await;
    assert_eq!(processing["status"], "pending");
    let read = until_booking(&app, &guest, booking_id, |b| b["status"] == "confirmed").await;
    assert_eq!(read["payment"]["status"], "succeeded");
    // Confirmed on time: the hold had been extended, not lapsed and revived.
    let extended = app.audit_rows("payment.processing").await;
    let details: Value = serde_json::from_str(&extended[0].details).unwrap();
    assert!(details["hold_extended_to"].is_string(), "{details}");
    let confirmed = app.audit_rows("booking.confirmed").await;
    let details: Value = serde_json::from_str(&confirmed[0].details).unwrap();
    assert_eq!(details["late"], false);
    assert_eq!(app.audit_rows("booking.expired").await.len(), 0);
}

/// A webhook for `payment` (the gateway's view), signed now with `secret`.
pub fn event(kind: &str, event_id: &str, payment: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id,
        "type": kind,
        "created": chrono::Utc::now().timestamp(),
        "data": {"object": payment},
    }))
    .unwrap()
}

/// The gateway's view of a started payment, as it says when it succeeds.
pub async fn succeeded_object(app: &TestApp, payment: &Value) -> Value {
    let gateway_id: String = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use roost::db::schema::payments as p;
        let mut conn = app.db.get().await.unwrap();
        let id = payment["id"].as_i64().unwrap();
        roost::with_conn!(&mut conn, |c| {
            p::table
                .find(id)
                .select(p::gateway_payment_id)
                .first(c)
                .await
        })
        .unwrap()
    };
    json!({
        "id": gateway_id, "status": "succeeded", "amount": payment["amount"],
        "currency": payment["currency"], "reference": payment["booking_id"].to_string(),
        "card": {"brand": "visa", "last4": "4242"},
    })
}

pub async fn deliver(api: &Api, body: &[u8], header: Option<String>) -> reqwest::Response {
    let mut req = api
        .post("/webhooks/payments/sandbox")
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(h) = header {
        req = req.header("roost-signature", h);
    }
    req.send().await.unwrap()
}

pub fn signed(secret: &str, t: i64, body: &[u8]) -> Option<String> {
    Some(signature::sign(&[secret], t, body))
}

async fn bad_webhooks_are_refused_recorded_and_change_nothing(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, _, guest, id) = cast(&app).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    let body = event(
        "payment.succeeded",
        "evt_forged",
        succeeded_object(&app, &payment).await,
    );
    let now = chrono::Utc::now().timestamp();
    let changed = {
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["data"]["object"]["amount"] = json!(1);
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("signature_missing", body.clone(), None),
        (
            "signature_malformed",
            body.clone(),
            Some("v1=nothex".into()),
        ),
        (
            "signature_mismatch",
            body.clone(),
            Some(format!("t={now},v1={}", "ab".repeat(32))),
        ),
        (
            "signature_mismatch",
            body.clone(),
            signed("whsec_someone_else", now, &body),
        ),
        (
            "signature_stale",
            body.clone(),
            signed(SECRET, now - 301, &body),
        ),
        // A minute past the 300 s tolerance: a loaded machine's seconds
        // between signing and checking cannot bring it back inside.
        (
            "signature_stale",
            body.clone(),
            signed(SECRET, now + 360, &body),
        ),
        // Signed, then changed on the way.
        ("signature_mismatch", changed, signed(SECRET, now, &body)),
        (
            "webhook_unparsable",
            b"{not json".to_vec(),
            signed(SECRET, now, b"{not json"),
        ),
    ];
    let events_before = app.count("calendar_events").await;
    for (code, body, header) in &cases {
        let res = deliver(&app, body, header.clone()).await;
        assert_error(res, StatusCode::BAD_REQUEST, code).await;
    }
    let rejected = app.audit_rows("webhook.rejected").await;
    let reasons: Vec<String> = rejected
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.details).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(reasons, expected);
    assert_eq!(booking(&app, &guest, booking_id).await["status"], "pending");
    assert_eq!(app.count("webhook_events").await, 0);
    assert_eq!(app.count("calendar_events").await, events_before);

    // Signed right, it is taken.
    let res = deliver(&app, &body, signed(SECRET, now, &body)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        booking(&app, &guest, booking_id).await["status"],
        "confirmed"
    );
}

async fn a_redelivered_event_changes_nothing(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, _, guest, id) = cast(&app).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    let body = event(
        "payment.succeeded",
        "evt_once",
        succeeded_object(&app, &payment).await,
    );
    let mut counts = Vec::new();
    for _ in 0..3 {
        let now = chrono::Utc::now().timestamp();
        let res = deliver(&app, &body, signed(SECRET, now, &body)).await;
        assert_eq!(res.status(), StatusCode::OK);
        counts.push((
            app.count("calendar_events").await,
            app.count("audit_log").await,
            app.count("webhook_events").await,
        ));
    }
    assert_eq!(counts[0], counts[1]);
    assert_eq!(counts[1], counts[2]);
    assert_eq!(app.audit_rows("booking.confirmed").await.len(), 1);
    // A stale redelivery of it is refused like any stale one.
    let old = chrono::Utc::now().timestamp() - 1_000;
    let res = deliver(&app, &body, signed(SECRET, old, &body)).await;
    assert_error(res, StatusCode::BAD_REQUEST, "signature_stale").await;
}

/// Until every queued webhook has been delivered (at most 30 s).
async fn until_delivered(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_where(app, "sandbox_webhook_outbox", "delivered_at IS NULL").await > 0 {
        assert!(Instant::now() < deadline, "webhooks never all delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_twice_and_out_of_order_end_in_the_right_state(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, _, guest, id) = cast(&app).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    let (status, _) = post_card(&app, &payment, "4000 0000 0000 0259").await;
    assert_eq!(status, StatusCode::OK);
    until_delivered(&app).await;
    // Three deliveries: succeeded, a late processing, succeeded again.
    assert_eq!(app.count("sandbox_webhook_outbox").await, 3);
    assert_eq!(app.count("webhook_events").await, 2, "two distinct events");
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("confirmed"), Some("succeeded"))
    );
    assert_eq!(app.audit_rows("booking.confirmed").await.len(), 1);
    assert_eq!(
        app.audit_rows("payment.processing").await.len(),
        0,
        "too late to move it back"
    );
    assert_eq!(
        count_where(&app, "calendar_events", "kind = 'booking_confirmed'").await,
        1
    );
}

async fn a_payment_after_the_hold_lapsed_confirms_if_the_nights_are_free(backend: Backend) {
    let app = spawn(backend, |s| {
        s.hold_ttl = Duration::from_secs(1);
        s.hold_sweep_interval = Some(Duration::from_secs(1));
    })
    .await;
    let (_, _, guest, id) = cast(&app).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    until_booking(&app, &guest, booking_id, |b| b["status"] == "expired").await;
    // Swept too, to be sure the late path starts from a marked expiry.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.audit_rows("booking.expired").await.is_empty() {
        assert!(Instant::now() < deadline, "never swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, _) = post_card(&app, &payment, GOOD).await;
    assert_eq!(status, StatusCode::OK);
    let paid = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(paid["kind"], "payment_succeeded");
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(read["status"], "confirmed");
    let confirmed = app.audit_rows("booking.confirmed").await;
    let details: Value = serde_json::from_str(&confirmed[0].details).unwrap();
    assert_eq!(details["late"], true);
    assert_eq!(app.live_claims(id).await.len(), 1);
}

async fn a_payment_after_the_hold_lapsed_is_refunded_if_the_nights_were_taken(backend: Backend) {
    let app = spawn(backend, |s| {
        s.hold_ttl = Duration::from_secs(1);
        s.hold_sweep_interval = None;
    })
    .await;
    let (_, _, guest, id) = cast(&app).await;
    let (_, other) = app.signed_in("guest").await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    until_booking(&app, &guest, booking_id, |b| b["status"] == "expired").await;
    // Someone else takes the nights meanwhile.
    let theirs = app.booked(&other, id, &day(11), &day(12)).await;

    let (status, _) = post_card(&app, &payment, GOOD).await;
    assert_eq!(status, StatusCode::OK);
    let refunded = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (refunded["kind"].as_str(), refunded["reason"].as_str()),
        (Some("payment_refunded"), Some("hold_lapsed"))
    );
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("expired"), Some("refunded"))
    );
    // The processor gave it all back; the other booking stands alone.
    assert_eq!(
        count_where(&app, "sandbox_payment_intents", "amount_refunded = amount").await,
        1
    );
    let claims = app.live_claims(id).await;
    assert_eq!(claims.len(), 1, "never a double booking");
    assert_eq!(booking(&app, &other, theirs).await["status"], "pending");
    assert_eq!(app.audit_rows("payment.refunded").await.len(), 1);
}

async fn cancelling_a_paid_booking_refunds_it_in_full(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (host, _, guest, id) = cast(&app).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    // Cancelled by the guest, and by the host: each paid stay is given back whole.
    for (who, nights) in [(&guest, (10, 13)), (&host, (20, 22))] {
        let booking_id = app.booked(&guest, id, &day(nights.0), &day(nights.1)).await;
        let payment = pay(&app, &guest, booking_id).await;
        post_card(&app, &payment, GOOD).await;
        let paid = frame_of(&mut guest_ws, "payment").await;
        assert_eq!(paid["kind"], "payment_succeeded");
        app.cancel(who, booking_id).await;
        let refunded = frame_of(&mut guest_ws, "payment").await;
        assert_eq!(
            (refunded["kind"].as_str(), refunded["reason"].as_str()),
            (Some("payment_refunded"), Some("booking_cancelled"))
        );
        assert_eq!(refunded["amount"], payment["amount"]);
        let read = booking(&app, &guest, booking_id).await;
        assert_eq!(
            (read["status"].as_str(), read["payment"]["status"].as_str()),
            (Some("cancelled"), Some("refunded"))
        );
    }
    assert_eq!(
        count_where(&app, "sandbox_payment_intents", "amount_refunded = amount").await,
        2
    );
    let cancelled = app.audit_rows("booking.cancelled").await;
    assert!(
        cancelled.iter().all(|r| r.details.contains("refund_owed")),
        "{cancelled:?}"
    );
    assert_eq!(app.audit_rows("payment.refunded").await.len(), 2);
    // An unpaid hold cancelled: nothing to give back.
    let unpaid = app.booked(&guest, id, &day(30), &day(31)).await;
    app.cancel(&guest, unpaid).await;
    assert_eq!(app.audit_rows("payment.refunded").await.len(), 2);
}

/// A refund made at the gateway (its dashboard, an operator), not asked
/// for by Roost: its `refund.succeeded` is recorded as a refund of the
/// payment and reaches the guest, once however often it is delivered.
async fn a_refund_the_gateway_reports_reaches_the_guest_once(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, _, guest, id) = cast(&app).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&app, &guest, booking_id).await;
    post_card(&app, &payment, GOOD).await;
    assert_eq!(
        frame_of(&mut guest_ws, "payment").await["kind"],
        "payment_succeeded"
    );
    let intent = succeeded_object(&app, &payment).await["id"].clone();
    let refund = json!({"id": "re_dashboard", "payment": intent, "amount": payment["amount"],
                        "status": "succeeded"});
    let body = event("refund.succeeded", "evt_refund", refund);
    for _ in 0..2 {
        let now = chrono::Utc::now().timestamp();
        let res = deliver(&app, &body, signed(SECRET, now, &body)).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), told["reason"].as_str()),
        (Some("payment_refunded"), Some("refunded_at_gateway"))
    );
    guest_ws.quiet(Duration::from_millis(300)).await;
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(read["payment"]["status"], "refunded");
    assert_eq!(read["payment"]["amount_refunded"], payment["amount"]);
    assert_eq!(read["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(app.audit_rows("payment.refunded").await.len(), 1);
}

async fn only_the_guest_pays_only_a_pending_booking(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (host, _, guest, id) = cast(&app).await;
    let (_, stranger) = app.signed_in("guest").await;
    let booking_id = app.booked(&guest, id, &day(10), &day(13)).await;
    let path = format!("/api/v1/bookings/{booking_id}/payments");
    let res = app.post(&path).bearer_auth(&stranger).send().await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.post(&path).bearer_auth(&host).send().await.unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.post(&path).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .post("/api/v1/bookings/999999/payments")
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.count("payments").await, 0);
    let denied: Vec<String> = app.denials().await.into_iter().map(|d| d.3).collect();
    assert_eq!(denied, ["payment.create", "payment.create"]);

    // Paid: a second payment is refused; cancelled: no payment at all.
    let payment = pay(&app, &guest, booking_id).await;
    post_card(&app, &payment, GOOD).await;
    until_booking(&app, &guest, booking_id, |b| b["status"] == "confirmed").await;
    let res = app.post(&path).bearer_auth(&guest).send().await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition").await;
    let other = app.booked(&guest, id, &day(20), &day(22)).await;
    app.cancel(&guest, other).await;
    let res = app
        .post(&format!("/api/v1/bookings/{other}/payments"))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition").await;
    // A payment honours Idempotency-Key like any change.
    let third = app.booked(&guest, id, &day(30), &day(32)).await;
    let keyed = || {
        app.post(&format!("/api/v1/bookings/{third}/payments"))
            .bearer_auth(&guest)
            .header("idempotency-key", "pay-1")
    };
    let first = keyed().send().await.unwrap().bytes().await.unwrap();
    let again = keyed().send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.unwrap(), first);
    assert_eq!(
        count_where(&app, "payments", &format!("booking_id = {third}")).await,
        1
    );
}

async fn a_redelivery_after_kill_9_confirms_exactly_once(backend: Backend) {
    use crate::binary::{roost, start};
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let dead = crate::helpers::dead_redis_url()
        .0
        .replace("redis://", "http://");
    let node = |webhooks: Option<&str>| {
        let mut cmd = roost(dir.path());
        cmd.env("DATABASE_URL", database.env_url())
            .env("ROOST_API_RATE_LIMIT", "0")
            .env("ROOST_AUTH_RATE_LIMIT", "0");
        if let Some(url) = webhooks {
            cmd.env(
                "ROOST_SANDBOX_WEBHOOK_URL",
                format!("{url}/webhooks/payments/sandbox"),
            );
        }
        start(cmd)
    };
    // The first node's processor cannot reach Roost's webhook endpoint.
    let mut first = node(Some(&dead));
    let api = Api::new(format!("http://127.0.0.1:{}", first.port));
    let (_, host) = api.signed_in("host").await;
    let (_, guest) = api.signed_in("guest").await;
    let id = api.create_listing(&host, json!({})).await;
    let booking_id = api.booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&api, &guest, booking_id).await;
    let (status, _) = post_card(&api, &payment, GOOD).await;
    assert_eq!(status, StatusCode::OK);
    // The processor recorded the success and tried to tell Roost, in vain.
    let db = roost::db::Db::connect(&database.url, Some(1)).unwrap();
    let attempts = || async {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use roost::db::schema::sandbox_webhook_outbox as o;
        let mut conn = db.get().await.unwrap();
        roost::with_conn!(&mut conn, |c| {
            o::table.select(o::attempts).load::<i64>(c).await
        })
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !attempts().await.iter().any(|a| *a >= 1) {
        assert!(Instant::now() < deadline, "no delivery was attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(booking(&api, &guest, booking_id).await["status"], "pending");
    first.kill();

    // Restarted (its webhooks to itself): the outbox delivers, once.
    let second = node(None);
    let api = Api::new(format!("http://127.0.0.1:{}", second.port));
    let read = until_booking(&api, &guest, booking_id, |b| b["status"] == "confirmed").await;
    assert_eq!(read["payment"]["status"], "succeeded");
    let confirmations = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use roost::db::schema::calendar_events as e;
        let mut conn = db.get().await.unwrap();
        roost::with_conn!(&mut conn, |c| {
            e::table
                .filter(e::kind.eq("booking_confirmed"))
                .count()
                .get_result::<i64>(c)
                .await
        })
        .unwrap()
    };
    assert_eq!(confirmations, 1);
}

/// Two `roost` processes on one PostgreSQL database (with `env`), and
/// counts over it.
pub struct TwoNodes {
    pub apis: Vec<Api>,
    pub db: roost::db::Db,
    _nodes: Vec<crate::binary::Running>,
    _dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl TwoNodes {
    pub async fn start(env: Vec<(&'static str, String)>) -> Self {
        use crate::binary::{roost, start};
        let database = TestDatabase::new(Backend::Postgres).await;
        let dir = tempfile::tempdir().unwrap();
        let starting: Vec<_> = (0..2)
            .map(|_| {
                let mut cmd = roost(dir.path());
                cmd.env("DATABASE_URL", database.env_url())
                    .env("ROOST_API_RATE_LIMIT", "0")
                    .env("ROOST_AUTH_RATE_LIMIT", "0")
                    .env("ROOST_SANDBOX_WEBHOOK_SECRET", SECRET)
                    .env("ROOST_WORKERS", "2")
                    .envs(env.clone());
                std::thread::spawn(move || start(cmd))
            })
            .collect();
        let nodes: Vec<_> = starting.into_iter().map(|t| t.join().unwrap()).collect();
        Self {
            apis: nodes
                .iter()
                .map(|n| Api::new(format!("http://127.0.0.1:{}", n.port)))
                .collect(),
            db: roost::db::Db::connect(&database.url, Some(1)).unwrap(),
            _nodes: nodes,
            _dir: dir,
            _database: database,
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use diesel::QueryableByName;
        use diesel::sql_types::BigInt;
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.db.get().await.unwrap();
        let q = diesel::sql_query(sql);
        roost::with_conn!(&mut conn, |c| q.get_result::<N>(c).await)
            .unwrap()
            .n
    }

    async fn gateway_payment_id(&self) -> String {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use roost::db::schema::payments as p;
        let mut conn = self.db.get().await.unwrap();
        roost::with_conn!(&mut conn, |c| {
            p::table.select(p::gateway_payment_id).first(c).await
        })
        .unwrap()
    }
}

/// The same signed event posted to two `roost` processes at once (as a
/// gateway retrying through a load balancer might): settled once.
#[actix_web::test]
async fn the_same_event_on_two_nodes_at_once_is_settled_once() {
    if !postgres_ready("the_same_event_on_two_nodes_at_once_is_settled_once").await {
        return;
    }
    let nodes = TwoNodes::start(Vec::new()).await;
    let apis = &nodes.apis;
    let (_, host) = apis[0].signed_in("host").await;
    let (_, guest) = apis[1].signed_in("guest").await;
    let id = apis[0].create_listing(&host, json!({})).await;
    let booking_id = apis[0].booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&apis[1], &guest, booking_id).await;
    let object = json!({"id": nodes.gateway_payment_id().await, "status": "succeeded",
                        "amount": payment["amount"], "currency": "EUR",
                        "reference": booking_id.to_string()});
    let body = event("payment.succeeded", "evt_both", object);
    for round in 0..3 {
        let now = chrono::Utc::now().timestamp();
        let sends: Vec<_> = apis
            .iter()
            .map(|api| deliver(api, &body, signed(SECRET, now, &body)))
            .collect();
        for res in futures_util::future::join_all(sends).await {
            assert_eq!(res.status(), StatusCode::OK, "round {round}");
        }
    }
    let read = booking(&apis[0], &guest, booking_id).await;
    assert_eq!(read["status"], "confirmed");
    assert_eq!(
        nodes
            .count("SELECT COUNT(*) AS n FROM webhook_events")
            .await,
        1
    );
    assert_eq!(
        nodes
            .count("SELECT COUNT(*) AS n FROM calendar_events WHERE kind = 'booking_confirmed'")
            .await,
        1
    );
    assert_eq!(
        nodes
            .count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment.succeeded'")
            .await,
        1
    );
}

/// A round-robin load balancer in front of the nodes, as a deployment puts
/// one between its payment processor and Roost.
#[derive(Default)]
struct Balancer {
    backends: std::sync::OnceLock<Vec<String>>,
    next: AtomicUsize,
    hits: [AtomicUsize; 2],
    http: reqwest::Client,
}

impl Balancer {
    /// Serves on a port of its own; returns its address.
    fn serve(self: &Arc<Self>) -> String {
        use actix_web::{App, HttpServer, web};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let balancer = web::Data::from(self.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(balancer.clone())
                .default_service(web::to(forward))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        address
    }
}

async fn forward(
    lb: actix_web::web::Data<Balancer>,
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
) -> actix_web::HttpResponse {
    let n = lb.next.fetch_add(1, Ordering::SeqCst) % 2;
    let target = format!("{}{}", lb.backends.get().unwrap()[n], req.uri());
    let mut out = lb.http.post(target).body(body.to_vec());
    for name in ["content-type", "roost-signature"] {
        if let Some(value) = req.headers().get(name) {
            out = out.header(name, value.as_bytes());
        }
    }
    let Ok(res) = out.send().await else {
        return actix_web::HttpResponse::BadGateway().finish();
    };
    lb.hits[n].fetch_add(1, Ordering::SeqCst);
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16()).unwrap();
    actix_web::HttpResponse::build(status).body(res.bytes().await.unwrap_or_default())
}

/// The `0259` card's three deliveries (succeeded, a late processing,
/// succeeded again) spread over two nodes by a balancer: settled once, in
/// the right final state.
#[actix_web::test]
async fn the_0259_card_over_two_nodes_ends_in_the_right_state_once() {
    if !postgres_ready("the_0259_card_over_two_nodes_ends_in_the_right_state_once").await {
        return;
    }
    let balancer = Arc::new(Balancer::default());
    let address = balancer.serve();
    let webhooks = format!("{address}/webhooks/payments/sandbox");
    let nodes = TwoNodes::start(vec![("ROOST_SANDBOX_WEBHOOK_URL", webhooks)]).await;
    let apis = &nodes.apis;
    balancer
        .backends
        .set(apis.iter().map(|a| a.address.clone()).collect())
        .unwrap();
    let (_, host) = apis[0].signed_in("host").await;
    let (_, guest) = apis[1].signed_in("guest").await;
    let id = apis[0].create_listing(&host, json!({})).await;
    let booking_id = apis[1].booked(&guest, id, &day(10), &day(13)).await;
    let payment = pay(&apis[0], &guest, booking_id).await;
    let (status, _) = post_card(&apis[1], &payment, "4000 0000 0000 0259").await;
    assert_eq!(status, StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes
        .count("SELECT COUNT(*) AS n FROM sandbox_webhook_outbox WHERE delivered_at IS NULL")
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "webhooks never all delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = balancer.hits.each_ref().map(|h| h.load(Ordering::SeqCst));
    assert_eq!(hits, [2, 1], "three deliveries, both nodes reached");
    let read = booking(&apis[0], &guest, booking_id).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("confirmed"), Some("succeeded"))
    );
    let count = |sql| nodes.count(sql);
    assert_eq!(count("SELECT COUNT(*) AS n FROM webhook_events").await, 2);
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM calendar_events WHERE kind = 'booking_confirmed'").await,
        1
    );
    for (action, n) in [
        ("payment.succeeded", 1),
        ("booking.confirmed", 1),
        ("payment.processing", 0),
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM audit_log WHERE action = '{action}'");
        assert_eq!(nodes.count(&sql).await, n, "{action}");
    }
}
