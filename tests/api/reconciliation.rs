//! Reconciliation: a payment or refund whose webhook never comes is asked
//! about at the gateway, and what it says is applied through the webhook's
//! own path, once, whichever node asks.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, day, postgres_ready};
use crate::payments::{GOOD, TwoNodes, frame_of, pay, post_card, spawn, until_booking};

both_backends!(lost_webhooks_are_made_good_by_asking_the_gateway);

/// Every webhook the sandbox sends is lost (it delivers to a closed port):
/// the reconciler alone confirms the payment and records the refund.
async fn lost_webhooks_are_made_good_by_asking_the_gateway(backend: Backend) {
    let app = spawn(backend, |s| {
        s.payments.sandbox_webhook_url =
            Some("http://127.0.0.1:1/webhooks/payments/sandbox".into());
        s.payments.reconcile_after = Duration::from_secs(1);
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(20), &day(23)).await;
    let payment = pay(&app, &guest, booking_id).await;
    post_card(&app, &payment, GOOD).await;
    until_booking(&app, &guest, booking_id, |b| b["status"] == "confirmed").await;
    assert_eq!(
        frame_of(&mut guest_ws, "payment").await["kind"],
        "payment_succeeded"
    );
    assert_eq!(app.audit_rows("payment.reconciled").await.len(), 1);
    assert_eq!(app.audit_rows("booking.confirmed").await.len(), 1);

    app.cancel(&guest, booking_id).await;
    let read = until_booking(&app, &guest, booking_id, |b| {
        b["refunds"][0]["status"] == "succeeded"
    })
    .await;
    assert_eq!(read["payment"]["status"], "refunded");
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), &told["amount"]),
        (Some("payment_refunded"), &payment["amount"])
    );
    assert_eq!(app.audit_rows("payment.reconciled").await.len(), 2);
    assert_eq!(app.audit_rows("payment.refunded").await.len(), 1);
    // No webhook ever arrived; each reconciled outcome is one event.
    assert_eq!(app.count("webhook_events").await, 2);
}

/// The sandbox's `0044` card succeeds and its webhook is lost; two nodes
/// reconcile, and the booking is confirmed exactly once.
#[actix_web::test]
async fn a_lost_success_is_confirmed_once_by_two_reconciling_nodes() {
    if !postgres_ready("a_lost_success_is_confirmed_once_by_two_reconciling_nodes").await {
        return;
    }
    let nodes = TwoNodes::start(vec![("ROOST_RECONCILE_AFTER_SECS", "1".into())]).await;
    let apis = &nodes.apis;
    let (_, host) = apis[0].signed_in("host").await;
    let (_, guest) = apis[1].signed_in("guest").await;
    let id = apis[0].create_listing(&host, json!({})).await;
    let booking_id = apis[1].booked(&guest, id, &day(20), &day(23)).await;
    let payment = pay(&apis[0], &guest, booking_id).await;
    post_card(&apis[0], &payment, "4000 0000 0000 0044").await;
    until_booking(&apis[1], &guest, booking_id, |b| b["status"] == "confirmed").await;
    // Give the other node's next round time to (not) act again.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let count =
        |action: &str| format!("SELECT COUNT(*) AS n FROM audit_log WHERE action = '{action}'");
    assert_eq!(nodes.count(&count("booking.confirmed")).await, 1);
    assert_eq!(nodes.count(&count("payment.reconciled")).await, 1);
    assert_eq!(nodes.count(&count("payment.succeeded")).await, 1);
    assert_eq!(
        nodes
            .count("SELECT COUNT(*) AS n FROM webhook_events")
            .await,
        1
    );
    assert_eq!(
        nodes
            .count("SELECT COUNT(*) AS n FROM sandbox_webhook_outbox")
            .await,
        0
    );
}
