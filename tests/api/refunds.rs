//! Cancelling a paid stay: the listing's policy, measured against its local
//! check-in time, decides what comes back, line by line and exact to the
//! minor unit; the refund goes through the gateway and its outcome comes
//! back by webhook; a payment's refunds never exceed it.

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error, postgres_ready};
use crate::payments::{
    GOOD, TwoNodes, booking, count_where, frame_of, pay, post_card, spawn, until_booking,
};

both_backends!(
    every_policy_changes_at_its_deadlines_far_from_utc,
    refunds_are_exact_to_the_minor_unit_in_yen_and_dinars,
    the_grace_day_refunds_all_and_a_host_cancellation_refunds_all,
    only_those_who_may_see_a_booking_see_its_cancellation_terms,
);

/// The wall clock, to the minute below.
fn this_minute() -> DateTime<Utc> {
    let now = Utc::now();
    now - Duration::seconds(i64::from(now.second()))
        - Duration::nanoseconds(i64::from(now.nanosecond()))
}

/// A listing whose local check-in falls at instant `check_in` (to the
/// minute) in `zone`, with `policy` and `fields`; and a booking of its
/// `nights` from that date by `guest`, made `booked_ago` ago. Returns
/// (listing, booking).
#[allow(clippy::too_many_arguments)]
async fn booked_at(
    app: &TestApp,
    host: &str,
    guest: &str,
    policy: &str,
    zone: &str,
    check_in: DateTime<Utc>,
    nights: i64,
    booked_ago: Duration,
    fields: Value,
) -> (i64, i64) {
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let local = check_in.with_timezone(&tz);
    let mut body = json!({
        "cancellation_policy": policy,
        "time_zone": zone,
        "check_in_time": local.format("%H:%M").to_string(),
    });
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    let listing = app.create_listing(host, body).await;
    let date = local.date_naive();
    let out = date + Duration::days(nights);
    let id = app
        .booked(guest, listing, &date.to_string(), &out.to_string())
        .await;
    if booked_ago > Duration::zero() {
        let at: NaiveDateTime = (Utc::now() - booked_ago).naive_utc();
        app.execute(&format!(
            "UPDATE calendar_entries SET created_at = '{}' WHERE id = {id}",
            at.format("%Y-%m-%d %H:%M:%S")
        ))
        .await;
    }
    (listing, id)
}

async fn terms(app: &TestApp, token: &str, booking: i64) -> Value {
    app.get_ok(&format!("/api/v1/bookings/{booking}/cancellation"), token)
        .await
}

/// Cancels; 200 and the answer.
async fn cancelled(app: &TestApp, token: &str, booking: i64) -> Value {
    let res = app
        .post(&format!("/api/v1/bookings/{booking}/cancel"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Pays the booking with the good card and waits for its confirmation.
async fn paid(app: &TestApp, guest: &str, booking_id: i64) -> Value {
    let payment = pay(app, guest, booking_id).await;
    let (status, _) = post_card(app, &payment, GOOD).await;
    assert_eq!(status, StatusCode::OK);
    until_booking(app, guest, booking_id, |b| b["status"] == "confirmed").await;
    payment
}

async fn every_policy_changes_at_its_deadlines_far_from_utc(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let days = Duration::days;
    // (policy, deadline before check-in, booked how long ago, rule just
    // before the deadline, rule just after)
    let cases = [
        (
            "flexible",
            Duration::hours(24),
            days(3),
            "full",
            "first_night_kept",
        ),
        (
            "moderate",
            days(5),
            days(3),
            "full",
            "first_night_and_half_kept",
        ),
        ("limited", days(14), days(3), "full", "half"),
        ("limited", days(7), days(3), "half", "none"),
        ("firm", days(30), days(3), "full", "half"),
        ("firm", days(7), days(3), "half", "none"),
        ("strict", days(14), Duration::hours(30), "full", "half"),
        ("strict", days(7), days(3), "half", "none"),
    ];
    // UTC+14 and UTC−11: the local check-in date is often not UTC's.
    let zones = ["Pacific/Kiritimati", "Pacific/Pago_Pago"];
    for (i, (policy, deadline, ago, before, after)) in cases.into_iter().enumerate() {
        let zone = zones[i % 2];
        // The deadline a minute or two ahead, then a minute or two past.
        for (check_in, rule) in [
            (this_minute() + deadline + Duration::minutes(2), before),
            (this_minute() + deadline - Duration::minutes(1), after),
        ] {
            let (_, id) = booked_at(
                &app,
                &host,
                &guest,
                policy,
                zone,
                check_in,
                2,
                ago,
                json!({}),
            )
            .await;
            let t = terms(&app, &guest, id).await;
            assert_eq!(t["rule"], rule, "{policy} {deadline} in {zone}: {t}");
            assert_eq!(t["cancelled_by"], "guest");
            assert_eq!(t["policy"], policy);
            let at: DateTime<Utc> = t["check_in_at"].as_str().unwrap().parse().unwrap();
            assert_eq!(at, check_in, "check-in is the listing's local time");
            // Its host (or an admin) gives all back, whatever the policy.
            let by_host = terms(&app, &host, id).await;
            assert_eq!(
                (by_host["rule"].as_str(), by_host["cancelled_by"].as_str()),
                (Some("host_cancelled"), Some("host"))
            );
        }
    }
}

async fn refunds_are_exact_to_the_minor_unit_in_yen_and_dinars(backend: Backend) {
    let app = spawn(backend, |s| s.service_fee_bp = 1_400).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let pricing = |tax: i64| json!({"tax_rate_bp": tax});

    // Dinars (three decimals), moderate, check-in in 4 days: the first night
    // kept, half the rest back. 3 × 10.005 + 2.001 cleaning; 14 % service
    // fee 4.482; 10 % tax 3.202: total 39.700.
    let check_in = this_minute() + Duration::days(4);
    let fields = json!({"currency": "BHD", "price_per_night": 10_005, "cleaning_fee": 2_001});
    let (listing, bhd) = booked_at(
        &app,
        &host,
        &guest,
        "moderate",
        "Asia/Bahrain",
        check_in,
        3,
        Duration::days(3),
        fields,
    )
    .await;
    let res = app
        .client
        .put(app.url(&format!("/api/v1/properties/{listing}/pricing")))
        .bearer_auth(&host)
        .json(&pricing(1_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The booking keeps the price it was sold at (no tax then): rebook.
    app.cancel(&guest, bhd).await;
    let date = check_in
        .with_timezone(&chrono_tz::Asia::Bahrain)
        .date_naive();
    let bhd = app
        .booked(
            &guest,
            listing,
            &date.to_string(),
            &(date + Duration::days(3)).to_string(),
        )
        .await;
    app.execute(&format!(
        "UPDATE calendar_entries SET created_at = '{}' WHERE id = {bhd}",
        (Utc::now() - Duration::days(3))
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
    ))
    .await;
    let payment = paid(&app, &guest, bhd).await;
    assert_eq!(payment["amount"], 39_700);
    frame_of(&mut guest_ws, "payment").await;
    let t = terms(&app, &guest, bhd).await;
    assert_eq!(t["rule"], "first_night_and_half_kept");
    assert_eq!(
        (t["currency"].as_str(), t["currency_exponent"].as_i64()),
        (Some("BHD"), Some(3))
    );
    // Nights 30.015 × 20.010 / 60.030 = 10.005; cleaning 2.001 (before
    // check-in); fees in proportion of 12.006 / 32.016: 4.482 → 1.68075 →
    // 1.681, 3.202 → 1.20075 → 1.201.
    let lines = json!([
        {"kind": "nights", "amount": 10_005},
        {"kind": "cleaning_fee", "amount": 2_001},
        {"kind": "service_fee", "amount": 1_681},
        {"kind": "tax", "amount": 1_201},
    ]);
    assert_eq!(t["lines"], lines);
    assert_eq!(
        (t["paid"].as_i64(), t["refund"].as_i64(), t["kept"].as_i64()),
        (Some(39_700), Some(14_888), Some(24_812))
    );
    let answer = cancelled(&app, &guest, bhd).await;
    assert_eq!(answer["status"], "cancelled");
    assert_eq!(answer["refund"]["total"], 14_888);
    assert_eq!(answer["refund"]["lines"], lines);
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (
            told["kind"].as_str(),
            told["amount"].as_i64(),
            told["reason"].as_str()
        ),
        (
            Some("payment_refunded"),
            Some(14_888),
            Some("booking_cancelled")
        )
    );
    let read = booking(&app, &guest, bhd).await;
    assert_eq!(read["payment"]["status"], "succeeded", "partly refunded");
    assert_eq!(read["payment"]["amount_refunded"], 14_888);
    assert_eq!(read["refunds"][0]["status"], "succeeded");
    assert_eq!(read["refunds"][0]["lines"], lines);
    assert_eq!(
        count_where(&app, "sandbox_payment_intents", "amount_refunded = 14888").await,
        1
    );
    // The nights were free the moment it was cancelled.
    assert!(app.live_claims(listing).await.is_empty());

    // Yen (no decimals), flexible, check-in in 20 hours: the first night
    // kept. 2 × 12,345 + 3,000 cleaning; service fee 3,877; 8 % tax 2,215.
    let check_in = this_minute() + Duration::hours(20);
    let fields = json!({"currency": "JPY", "price_per_night": 12_345, "cleaning_fee": 3_000});
    let tz = chrono_tz::Asia::Tokyo;
    let local = check_in.with_timezone(&tz);
    let listing = app
        .create_listing(
            &host,
            json!({"cancellation_policy": "flexible", "time_zone": "Asia/Tokyo",
                   "check_in_time": local.format("%H:%M").to_string(),
                   "currency": fields["currency"], "price_per_night": fields["price_per_night"],
                   "cleaning_fee": fields["cleaning_fee"]}),
        )
        .await;
    let res = app
        .client
        .put(app.url(&format!("/api/v1/properties/{listing}/pricing")))
        .bearer_auth(&host)
        .json(&pricing(800))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let date = local.date_naive();
    let yen = app
        .booked(
            &guest,
            listing,
            &date.to_string(),
            &(date + Duration::days(2)).to_string(),
        )
        .await;
    let payment = paid(&app, &guest, yen).await;
    assert_eq!(payment["amount"], 33_782);
    frame_of(&mut guest_ws, "payment").await;
    let t = terms(&app, &guest, yen).await;
    // Within 24 h of booking, but check-in is less than 7 days away: no grace.
    assert_eq!(t["rule"], "first_night_kept");
    // Nights 12,345; cleaning 3,000; fees × 15,345 / 27,690: 3,877 →
    // 2,148.52 → 2,149, 2,215 → 1,227.49 → 1,227.
    assert_eq!(
        t["lines"],
        json!([
            {"kind": "nights", "amount": 12_345},
            {"kind": "cleaning_fee", "amount": 3_000},
            {"kind": "service_fee", "amount": 2_149},
            {"kind": "tax", "amount": 1_227},
        ])
    );
    assert_eq!(t["refund"], 18_721);
    let answer = cancelled(&app, &guest, yen).await;
    assert_eq!(answer["refund"]["total"], 18_721);
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(told["amount"], 18_721);
    assert_eq!(app.audit_rows("payment.refund_requested").await.len(), 2);
    assert_eq!(app.audit_rows("payment.refunded").await.len(), 2);

    // The database itself refuses refunds beyond the payment.
    let over = {
        use diesel_async::RunQueryDsl;
        let mut conn = app.db.get().await.unwrap();
        let q = diesel::sql_query("UPDATE payments SET amount_refunded = amount + 1");
        roost::with_conn!(&mut conn, |c| q.execute(c).await)
    };
    assert!(over.is_err(), "a refund beyond the payment must be refused");
    assert_eq!(
        count_where(&app, "payments", "amount_refunded > amount").await,
        0
    );
}

async fn the_grace_day_refunds_all_and_a_host_cancellation_refunds_all(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let m = Duration::minutes;
    // Booked just now under firm: everything back while check-in is 7 days
    // or more away; a minute less, firm's "none".
    let zone = "America/Los_Angeles";
    let ahead = this_minute() + Duration::days(7) + m(2);
    let (_, grace) = booked_at(
        &app,
        &host,
        &guest,
        "firm",
        zone,
        ahead,
        2,
        Duration::zero(),
        json!({}),
    )
    .await;
    let near = this_minute() + Duration::days(7) - m(1);
    let (_, none) = booked_at(
        &app,
        &host,
        &guest,
        "firm",
        zone,
        near,
        2,
        Duration::zero(),
        json!({}),
    )
    .await;
    // Booked a day and a minute ago: past the grace day.
    let later = this_minute() + Duration::days(10);
    let (_, past) = booked_at(
        &app,
        &host,
        &guest,
        "firm",
        zone,
        later,
        2,
        Duration::hours(24) + m(1),
        json!({}),
    )
    .await;
    let payment = paid(&app, &guest, grace).await;
    frame_of(&mut guest_ws, "payment").await;
    let t = terms(&app, &guest, grace).await;
    assert_eq!(
        (t["rule"].as_str(), &t["refund"]),
        (Some("grace"), &payment["amount"])
    );
    assert_eq!(terms(&app, &guest, none).await["rule"], "none");
    assert_eq!(terms(&app, &guest, past).await["rule"], "half");

    // A strict stay 3 days out, booked long ago: the guest would get only
    // the cleaning fee back (not yet spent: no fees were charged on it
    // here); its host cancels, and it all goes back.
    let soon = this_minute() + Duration::days(3);
    let (_, strict) = booked_at(
        &app,
        &host,
        &guest,
        "strict",
        zone,
        soon,
        3,
        Duration::days(20),
        json!({}),
    )
    .await;
    let payment = paid(&app, &guest, strict).await;
    frame_of(&mut guest_ws, "payment").await;
    let t = terms(&app, &guest, strict).await;
    assert_eq!(
        (t["rule"].as_str(), t["refund"].as_i64()),
        (Some("none"), Some(3_000))
    );
    assert_eq!(
        t["lines"],
        json!([{"kind": "cleaning_fee", "amount": 3_000}])
    );
    let answer = cancelled(&app, &host, strict).await;
    assert_eq!(answer["refund"]["rule"], "host_cancelled");
    assert_eq!(answer["refund"]["total"], payment["amount"]);
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), &told["amount"]),
        (Some("payment_refunded"), &payment["amount"])
    );
    let read = booking(&app, &guest, strict).await;
    assert_eq!(read["payment"]["status"], "refunded");
    let cancelled_rows = app.audit_rows("booking.cancelled").await;
    assert!(
        cancelled_rows
            .iter()
            .any(|r| r.details.contains("host_cancelled")),
        "{cancelled_rows:?}"
    );
}

async fn only_those_who_may_see_a_booking_see_its_cancellation_terms(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let (_, admin) = app.signed_in_admin().await;
    let check_in = this_minute() + Duration::days(10);
    let (_, id) = booked_at(
        &app,
        &host,
        &guest,
        "moderate",
        "UTC",
        check_in,
        2,
        Duration::zero(),
        json!({}),
    )
    .await;
    let path = format!("/api/v1/bookings/{id}/cancellation");
    let res = app.get(&path).bearer_auth(&stranger).send().await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get(&path).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .get("/api/v1/bookings/nope/cancellation")
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(terms(&app, &admin, id).await["cancelled_by"], "admin");
    // Unpaid: nothing to give back, whatever the rule.
    let t = terms(&app, &guest, id).await;
    assert_eq!(
        (
            t["cancellable"].as_bool(),
            t["paid"].as_i64(),
            t["refund"].as_i64()
        ),
        (Some(true), Some(0), Some(0))
    );
    app.cancel(&guest, id).await;
    assert_eq!(terms(&app, &guest, id).await["cancellable"], false);
    // A host's policy and check-in time are checked like any field.
    let res = app
        .post("/api/v1/properties")
        .bearer_auth(&host)
        .json(&crate::helpers::listing(
            json!({"cancellation_policy": "lenient", "check_in_time": "3pm"}),
        ))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["cancellation_policy", "check_in_time"]);
    let read = app
        .get_ok(
            &format!(
                "/api/v1/properties/{}",
                app.create_listing(&host, json!({})).await
            ),
            &host,
        )
        .await;
    assert_eq!(
        (
            read["cancellation_policy"].as_str(),
            read["check_in_time"].as_str()
        ),
        (Some("moderate"), Some("15:00"))
    );
}

/// Ten cancellations of one paid booking, by its guest and its host, on
/// two nodes at once: one wins, one refund is made, never more than paid.
#[actix_web::test]
async fn racing_cancellations_on_two_nodes_refund_once() {
    if !postgres_ready("racing_cancellations_on_two_nodes_refund_once").await {
        return;
    }
    let nodes = TwoNodes::start(Vec::new()).await;
    let apis = &nodes.apis;
    let (_, host) = apis[0].signed_in("host").await;
    let (_, guest) = apis[1].signed_in("guest").await;
    let id = apis[0].create_listing(&host, json!({})).await;
    let booking_id = apis[1]
        .booked(
            &guest,
            id,
            &crate::helpers::day(20),
            &crate::helpers::day(23),
        )
        .await;
    let payment = pay(&apis[0], &guest, booking_id).await;
    post_card(&apis[0], &payment, GOOD).await;
    until_booking(&apis[1], &guest, booking_id, |b| b["status"] == "confirmed").await;
    let attempts = (0..10).map(|i| {
        let api = &apis[i % 2];
        let token = if i % 3 == 0 { &host } else { &guest };
        api.post(&format!("/api/v1/bookings/{booking_id}/cancel"))
            .bearer_auth(token)
            .send()
    });
    let answers = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 409, 422].contains(s)),
        "{statuses:?}"
    );
    let read = until_booking(&apis[0], &guest, booking_id, |b| {
        b["payment"]["status"] == "refunded"
    })
    .await;
    assert_eq!(read["payment"]["amount_refunded"], payment["amount"]);
    assert_eq!(nodes.count("SELECT COUNT(*) AS n FROM refunds").await, 1);
    assert_eq!(
        nodes
            .count("SELECT COUNT(*) AS n FROM sandbox_refunds")
            .await,
        1,
        "the gateway was asked once"
    );
    assert_eq!(
        nodes
            .count(
                "SELECT COUNT(*) AS n FROM sandbox_payment_intents WHERE amount_refunded = amount"
            )
            .await,
        1
    );
}
