//! Stay rules a host sets, each at its edge (the last allowed day and the
//! first refused one), in listings whose local date is far from UTC's:
//! Pacific/Kiritimati (UTC+14) and Pacific/Pago_Pago (UTC−11).

use chrono::{Datelike, NaiveDate};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error};

both_backends!(
    each_rule_at_its_edge_in_far_time_zones,
    rules_answer_before_the_calendar,
    rules_and_time_zones_are_validated_fields,
);

const ZONES: [&str; 2] = ["Pacific/Kiritimati", "Pacific/Pago_Pago"];

/// The listing's local date now.
fn local_today(zone: &str) -> NaiveDate {
    roost::domain::stay::TimeZone::parse(zone)
        .unwrap()
        .today(chrono::Utc::now())
}

fn plus(d: NaiveDate, days: i64) -> NaiveDate {
    d + chrono::Duration::days(days)
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(d: NaiveDate) -> &'static str {
    WEEKDAYS[d.weekday().num_days_from_monday() as usize]
}

/// The quote's refusal and the booking's answer agree: `None` = bookable and
/// booked (201), else both refuse with `code`.
async fn expect(
    app: &TestApp,
    guest: &str,
    id: i64,
    a: NaiveDate,
    b: NaiveDate,
    code: Option<&str>,
) {
    let quote: Value = app
        .get(&format!(
            "/api/v1/properties/{id}/quote?check_in={a}&check_out={b}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quote["refusal"].as_str(), code, "{a} → {b}: {quote}");
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(guest)
        .json(&json!({"property_id": id, "check_in": a, "check_out": b, "guests": 1}))
        .send()
        .await
        .unwrap();
    match code {
        None => assert_eq!(res.status(), StatusCode::CREATED, "{a} → {b}"),
        Some(code) => {
            assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
    }
}

async fn each_rule_at_its_edge_in_far_time_zones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    for zone in ZONES {
        let today = local_today(zone);
        let listing = |extra: Value| {
            let mut body = json!({"time_zone": zone, "max_nights": 60});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        // The listing's today is bookable, its yesterday is past, whatever
        // UTC's date is.
        let id = app.create_listing(&host, listing(json!({}))).await;
        expect(
            &app,
            &guest,
            id,
            plus(today, -1),
            today,
            Some("dates_in_past"),
        )
        .await;
        expect(&app, &guest, id, today, plus(today, 1), None).await;

        // Two days' notice: tomorrow is too soon, the day after is fine.
        let id = app
            .create_listing(&host, listing(json!({"advance_notice_days": 2})))
            .await;
        expect(
            &app,
            &guest,
            id,
            plus(today, 1),
            plus(today, 3),
            Some("too_soon"),
        )
        .await;
        expect(&app, &guest, id, plus(today, 2), plus(today, 4), None).await;

        // Thirty days ahead at most.
        let id = app
            .create_listing(&host, listing(json!({"booking_window_days": 30})))
            .await;
        expect(
            &app,
            &guest,
            id,
            plus(today, 31),
            plus(today, 33),
            Some("too_far_ahead"),
        )
        .await;
        expect(&app, &guest, id, plus(today, 30), plus(today, 32), None).await;

        // Arrive only on one weekday, leave only on another.
        let arrive = plus(today, 10);
        let leave = plus(arrive, 2);
        let id = app
            .create_listing(
                &host,
                listing(
                    json!({"check_in_days": [weekday(arrive)], "check_out_days": [weekday(leave)]}),
                ),
            )
            .await;
        expect(
            &app,
            &guest,
            id,
            plus(arrive, 1),
            plus(leave, 1),
            Some("check_in_day_not_allowed"),
        )
        .await;
        expect(
            &app,
            &guest,
            id,
            arrive,
            plus(leave, 1),
            Some("check_out_day_not_allowed"),
        )
        .await;
        expect(&app, &guest, id, arrive, leave, None).await;
    }
}

async fn rules_answer_before_the_calendar(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let id = app
        .create_listing(&host, json!({"max_guests": 2, "advance_notice_days": 3}))
        .await;
    let today = local_today("UTC");
    let (a, b) = (plus(today, 10), plus(today, 12));
    app.booked(&guest, id, &a.to_string(), &b.to_string()).await;
    // Taken nights, and a stay the rules forbid: the rule is the answer.
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&other)
        .json(&json!({"property_id": id, "check_in": a, "check_out": b, "guests": 3}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "too_many_guests").await;
    // Allowed by the rules: then the calendar says no.
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&other)
        .json(&json!({"property_id": id, "check_in": a, "check_out": b, "guests": 2}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
}

async fn rules_and_time_zones_are_validated_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let res = app
        .post("/api/v1/properties")
        .bearer_auth(&host)
        .json(&crate::helpers::listing(json!({
            "time_zone": "Mars/Olympus_Mons", "check_in_days": ["funday"], "check_out_days": [],
            "advance_notice_days": 400, "booking_window_days": 731,
        })))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let codes: Vec<(String, String)> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().into(),
                d["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (field, code) in [
        ("time_zone", "unknown_time_zone"),
        ("check_in_days", "unknown_day"),
        ("check_out_days", "required"),
        ("advance_notice_days", "out_of_range"),
        ("booking_window_days", "out_of_range"),
    ] {
        assert!(
            codes.contains(&(field.into(), code.into())),
            "{field} {code} in {codes:?}"
        );
    }
    // A window shorter than the notice can never be booked.
    let res = app
        .post("/api/v1/properties")
        .bearer_auth(&host)
        .json(&crate::helpers::listing(
            json!({"advance_notice_days": 10, "booking_window_days": 5}),
        ))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"][0]["code"],
        "less_than_advance_notice"
    );

    // Set and changed like any field; shown on the listing.
    let id = app.create_listing(&host, json!({})).await;
    let read = app.get_ok(&format!("/api/v1/properties/{id}"), &host).await;
    assert_eq!(read["time_zone"], "UTC");
    assert_eq!(read["check_in_days"].as_array().unwrap().len(), 7);
    let res = app
        .patch(&format!("/api/v1/properties/{id}"))
        .bearer_auth(&host)
        .json(&json!({"time_zone": "Pacific/Kiritimati", "check_in_days": ["sat", "fri"], "advance_notice_days": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["time_zone"], "Pacific/Kiritimati");
    assert_eq!(read["check_in_days"], json!(["fri", "sat"]));
    assert_eq!(read["advance_notice_days"], 1);
    assert_eq!(read["booking_window_days"], 0, "no limit unless set");
}
