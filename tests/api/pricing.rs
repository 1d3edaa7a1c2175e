//! Prices hosts set, and itemized quotes: weekends, seasons, extra guests,
//! discounts at their thresholds, the service fee and taxes, in currencies
//! with 0, 2 and 3 decimals; bookings keep the lines they were sold at.

use chrono::{Datelike, NaiveDate, Weekday};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error};

both_backends!(
    a_quote_itemizes_weekends_seasons_guests_fees_and_taxes,
    discounts_begin_at_7_and_28_nights,
    yen_and_dinars_round_to_their_own_minor_unit,
    a_booking_keeps_the_lines_it_was_sold_at,
    a_moved_price_refuses_the_booking_with_the_new_quote,
    pricing_and_seasons_are_the_hosts_and_validated,
    a_seasons_minimum_stay_is_a_rule,
    availability_prices_each_free_night,
    the_seed_prices_and_rules_its_listings_variously,
    a_hold_meets_every_season_added_or_removed,
    a_hold_is_judged_on_the_rules_as_they_stand_after_each_change,
);

/// The first `weekday` at least `after` days from today.
fn next(weekday: Weekday, after: i64) -> NaiveDate {
    let mut d = chrono::Utc::now().date_naive() + chrono::Duration::days(after);
    while d.weekday() != weekday {
        d += chrono::Duration::days(1);
    }
    d
}

fn plus(d: NaiveDate, days: i64) -> NaiveDate {
    d + chrono::Duration::days(days)
}

async fn put_pricing(app: &TestApp, token: &str, id: i64, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/properties/{id}/pricing")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn add_rate(app: &TestApp, token: &str, id: i64, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/properties/{id}/rates"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn quote(
    app: &TestApp,
    id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: i64,
) -> Value {
    let path = format!(
        "/api/v1/properties/{id}/quote?check_in={check_in}&check_out={check_out}&guests={guests}"
    );
    let res = app.get(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    let q: Value = res.json().await.unwrap();
    adds_up(&q);
    q
}

/// Every total is the sum of its lines; the nights line, of its nights.
fn adds_up(q: &Value) {
    let sum = |items: &Value| -> i64 {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(sum(&q["lines"]), q["total"].as_i64().unwrap(), "{q}");
    assert_eq!(sum(&q["nights"]), line(q, "nights"), "{q}");
}

fn line(q: &Value, kind: &str) -> i64 {
    q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == kind)
        .map(|l| l["amount"].as_i64().unwrap())
        .sum()
}

async fn a_quote_itemizes_weekends_seasons_guests_fees_and_taxes(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.service_fee_bp = 1_000).await;
    let (_, host) = app.signed_in("host").await;
    let id = app
        .create_listing(
            &host,
            json!({"price_per_night": 10_000, "cleaning_fee": 2_500}),
        )
        .await;
    let res = put_pricing(
        &app,
        &host,
        id,
        json!({"weekend_price": 14_000, "extra_guest_fee": 1_500, "extra_guest_after": 2,
               "weekly_discount_pct": 10, "tax_rate_bp": 725}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Thursday to Tuesday: Thu base, Fri + Sat weekend, Sun + Mon a season.
    let thursday = next(Weekday::Thu, 10);
    let res = add_rate(
        &app,
        &host,
        id,
        json!({"start": plus(thursday, 3), "end": plus(thursday, 5), "price": 20_000}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let q = quote(&app, id, thursday, plus(thursday, 5), 3).await;
    assert_eq!(
        (q["bookable"].as_bool(), q["currency"].as_str()),
        (Some(true), Some("EUR"))
    );
    assert_eq!(q["currency_exponent"], 2);
    let rates: Vec<&str> = q["nights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rate"].as_str().unwrap())
        .collect();
    assert_eq!(
        rates,
        ["base", "weekend", "weekend", "override", "override"]
    );
    let nights = 10_000 + 2 * 14_000 + 2 * 20_000; // 78,000
    let extra = 1_500 * 5; // one guest above two, five nights
    let stay = nights + extra + 2_500; // no discount under 7 nights
    let fee = (stay * 1_000 + 5_000) / 10_000; // 10 %, half up
    let tax = (stay * 725 + 5_000) / 10_000; // 7.25 % of 88,000 = 6,380
    assert_eq!(line(&q, "nights"), nights);
    assert_eq!(line(&q, "extra_guests"), extra);
    assert_eq!(line(&q, "cleaning_fee"), 2_500);
    assert_eq!(line(&q, "discount"), 0);
    assert_eq!(line(&q, "service_fee"), fee);
    assert_eq!(line(&q, "tax"), tax);
    assert_eq!(q["total"], stay + fee + tax);
    // Two guests pay no extra; the line is not there at all.
    let q = quote(&app, id, thursday, plus(thursday, 5), 2).await;
    assert!(!q.to_string().contains("extra_guests"), "{q}");
}

async fn discounts_begin_at_7_and_28_nights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let id = app
        .create_listing(
            &host,
            json!({"price_per_night": 10_001, "cleaning_fee": 0, "max_nights": 60}),
        )
        .await;
    let body = json!({"weekly_discount_pct": 10, "monthly_discount_pct": 25});
    assert_eq!(
        put_pricing(&app, &host, id, body).await.status(),
        StatusCode::OK
    );
    let start = next(Weekday::Mon, 10);
    let discount = |q: Value| line(&q, "discount");
    assert_eq!(discount(quote(&app, id, start, plus(start, 6), 1).await), 0);
    // 10 % of 70,007 = 7,000.7 → 7,001 (half up), as a negative line.
    assert_eq!(
        discount(quote(&app, id, start, plus(start, 7), 1).await),
        -7_001
    );
    // 10 % of 270,027 = 27,002.7 → 27,003.
    assert_eq!(
        discount(quote(&app, id, start, plus(start, 27), 1).await),
        -27_003
    );
    // 25 % of 280,028 = 70,007: the monthly one alone, never both.
    assert_eq!(
        discount(quote(&app, id, start, plus(start, 28), 1).await),
        -70_007
    );
}

async fn yen_and_dinars_round_to_their_own_minor_unit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.service_fee_bp = 1_250).await;
    let (_, host) = app.signed_in("host").await;
    let yen = app
        .create_listing(
            &host,
            json!({"price_per_night": 12_345, "currency": "JPY", "cleaning_fee": 3_000}),
        )
        .await;
    put_pricing(&app, &host, yen, json!({"tax_rate_bp": 1_000})).await;
    let start = next(Weekday::Mon, 10);
    let q = quote(&app, yen, start, plus(start, 3), 1).await;
    assert_eq!(q["currency_exponent"], 0);
    // Stay: 3 × ¥12,345 + ¥3,000 = ¥40,035. Fee 12.5 % = 5,004.375 → ¥5,004;
    // tax 10 % = 4,003.5 → ¥4,004 (half up).
    assert_eq!(line(&q, "service_fee"), 5_004);
    assert_eq!(line(&q, "tax"), 4_004);
    assert_eq!(q["total"], 40_035 + 5_004 + 4_004);

    let dinar = app
        .create_listing(
            &host,
            json!({"price_per_night": 45_125, "currency": "BHD", "cleaning_fee": 0}),
        )
        .await;
    put_pricing(&app, &host, dinar, json!({"tax_rate_bp": 500})).await;
    let q = quote(&app, dinar, start, plus(start, 2), 1).await;
    assert_eq!(q["currency_exponent"], 3);
    // 90.250 BHD: fee 11.28125 → 11.281; tax 5 % = 4.5125 → 4.513.
    assert_eq!(line(&q, "service_fee"), 11_281);
    assert_eq!(line(&q, "tax"), 4_513);
    assert_eq!(q["total"], 90_250 + 11_281 + 4_513);
}

async fn a_booking_keeps_the_lines_it_was_sold_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    put_pricing(
        &app,
        &host,
        id,
        json!({"weekend_price": 15_000, "tax_rate_bp": 900}),
    )
    .await;
    let friday = next(Weekday::Fri, 10);
    let q = quote(&app, id, friday, plus(friday, 3), 2).await;
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&guest)
        .json(
            &json!({"property_id": id, "check_in": friday, "check_out": plus(friday, 3),
                      "guests": 2, "expected_total": q["total"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let booked: Value = res.json().await.unwrap();
    assert_eq!(booked["total"], q["total"]);
    assert_eq!(booked["lines"], q["lines"]);
    assert_eq!(booked["night_prices"], q["nights"]);

    // The host raises every price: the booking, and what it charges, stay.
    put_pricing(
        &app,
        &host,
        id,
        json!({"weekend_price": 30_000, "tax_rate_bp": 2_000}),
    )
    .await;
    let patch = app
        .patch(&format!("/api/v1/properties/{id}"))
        .bearer_auth(&host)
        .json(&json!({"price_per_night": 50_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::OK);
    let booking = booked["id"].as_i64().unwrap();
    let read = app
        .get_ok(&format!("/api/v1/bookings/{booking}"), &guest)
        .await;
    assert_eq!((&read["lines"], &read["total"]), (&q["lines"], &q["total"]));
    let payment = crate::payments::pay(&app, &guest, booking).await;
    assert_eq!(payment["amount"], q["total"]);
}

async fn a_moved_price_refuses_the_booking_with_the_new_quote(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let monday = next(Weekday::Mon, 10);
    let before = quote(&app, id, monday, plus(monday, 2), 1).await;
    put_pricing(&app, &host, id, json!({"tax_rate_bp": 1_000})).await;
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&guest)
        .json(
            &json!({"property_id": id, "check_in": monday, "check_out": plus(monday, 2),
                      "expected_total": before["total"]}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::CONFLICT, "price_changed").await;
    let now = quote(&app, id, monday, plus(monday, 2), 1).await;
    assert_eq!(body["error"]["details"]["total"], now["total"]);
    assert_eq!(body["error"]["details"]["lines"], now["lines"]);
    assert_eq!(app.count("calendar_entries").await, 0, "nothing held");
    assert!(app.audit_rows("booking.held").await.is_empty());
    // A bad expected_total is a validation error like any field.
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&guest)
        .json(
            &json!({"property_id": id, "check_in": monday, "check_out": plus(monday, 2),
                      "expected_total": "lots"}),
        )
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
}

async fn pricing_and_seasons_are_the_hosts_and_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, other_host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let body = json!({"weekend_price": 15_000});
    for token in [&guest, &other_host] {
        let res = put_pricing(&app, token, id, body.clone()).await;
        assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = add_rate(
            &app,
            token,
            id,
            json!({"start": "2030-01-01", "end": "2030-01-05", "price": 1}),
        )
        .await;
        assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = app
        .client
        .put(app.url(&format!("/api/v1/properties/{id}/pricing")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Every bad field at once.
    let res = put_pricing(
        &app,
        &host,
        id,
        json!({"weekend_price": 0, "weekly_discount_pct": 150, "tax_rate_bp": -1,
               "extra_guest_fee": 500, "colour": "red"}),
    )
    .await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in [
        "weekend_price",
        "weekly_discount_pct",
        "tax_rate_bp",
        "extra_guest_after",
        "colour",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    // PUT replaces the whole: what is absent is none.
    put_pricing(
        &app,
        &host,
        id,
        json!({"weekend_price": 15_000, "tax_rate_bp": 500}),
    )
    .await;
    let res = put_pricing(&app, &host, id, json!({"tax_rate_bp": 700})).await;
    let read: Value = res.json().await.unwrap();
    assert_eq!(
        (&read["weekend_price"], &read["tax_rate_bp"]),
        (&Value::Null, &json!(700))
    );
    let public: Value = app
        .get(&format!("/api/v1/properties/{id}/pricing"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public["tax_rate_bp"], 700);

    // Seasons: validated, never overlapping, removable by the host only.
    let res = add_rate(
        &app,
        &host,
        id,
        json!({"start": "2030-01-05", "end": "2030-01-01", "price": 0}),
    )
    .await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    let res = add_rate(
        &app,
        &host,
        id,
        json!({"start": "2030-01-01", "end": "2030-01-10", "price": 20_000}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let rate = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let res = add_rate(
        &app,
        &host,
        id,
        json!({"start": "2030-01-09", "end": "2030-01-12", "price": 20_000}),
    )
    .await;
    assert_error(res, StatusCode::CONFLICT, "rates_overlap").await;
    let res = add_rate(
        &app,
        &host,
        id,
        json!({"start": "2030-01-10", "end": "2030-01-12", "price": 25_000}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "back to back is fine");
    let listed: Value = app
        .get(&format!("/api/v1/properties/{id}/rates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let path = format!("/api/v1/properties/{id}/rates/{rate}");
    let res = app
        .delete(&path)
        .bearer_auth(&other_host)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.delete(&path).bearer_auth(&host).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.delete(&path).bearer_auth(&host).send().await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;

    assert_eq!(app.audit_rows("pricing.updated").await.len(), 2);
    assert_eq!(app.audit_rows("rate.added").await.len(), 2);
    assert_eq!(app.audit_rows("rate.removed").await.len(), 1);
    let denied: Vec<String> = app.denials().await.into_iter().map(|d| d.3).collect();
    assert!(
        denied.iter().filter(|d| *d == "pricing.update").count() >= 2,
        "{denied:?}"
    );
    // Bad quote queries.
    let res = app
        .get(&format!(
            "/api/v1/properties/{id}/quote?check_in=2030-01-05&check_out=2030-01-01&guests=x"
        ))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    let res = app
        .get("/api/v1/properties/999999/quote?check_in=2030-01-01&check_out=2030-01-05")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn a_seasons_minimum_stay_is_a_rule(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({"max_guests": 2})).await;
    let start = next(Weekday::Mon, 20);
    let season = json!({"start": start, "end": plus(start, 7), "price": 30_000, "min_nights": 4});
    assert_eq!(
        add_rate(&app, &host, id, season).await.status(),
        StatusCode::CREATED
    );
    // Touching the season: at least 4 nights. Outside it: the listing's 1.
    let q = quote(&app, id, plus(start, 5), plus(start, 8), 1).await;
    assert_eq!(
        (q["bookable"].as_bool(), q["refusal"].as_str()),
        (Some(false), Some("stay_too_short"))
    );
    let res = app
        .book(
            &guest,
            id,
            &plus(start, 5).to_string(),
            &plus(start, 8).to_string(),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "stay_too_short").await;
    let q = quote(&app, id, plus(start, 4), plus(start, 8), 1).await;
    assert_eq!(q["bookable"], true);
    let q = quote(&app, id, plus(start, 7), plus(start, 8), 1).await;
    assert_eq!(q["bookable"], true);
    // Rules before the calendar: taken nights, too many guests → too_many_guests.
    app.booked(
        &guest,
        id,
        &plus(start, 10).to_string(),
        &plus(start, 12).to_string(),
    )
    .await;
    let q = quote(&app, id, plus(start, 10), plus(start, 12), 3).await;
    assert_eq!(q["refusal"], "too_many_guests");
    let q = quote(&app, id, plus(start, 10), plus(start, 12), 1).await;
    assert_eq!(q["refusal"], "dates_unavailable");
}

async fn availability_prices_each_free_night(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app
        .create_listing(&host, json!({"price_per_night": 10_000}))
        .await;
    put_pricing(&app, &host, id, json!({"weekend_price": 13_000})).await;
    let thursday = next(Weekday::Thu, 10);
    app.booked(
        &guest,
        id,
        &thursday.to_string(),
        &plus(thursday, 1).to_string(),
    )
    .await;
    let body: Value = app
        .get(&format!(
            "/api/v1/properties/{id}/availability?from={thursday}&to={}",
            plus(thursday, 4)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["currency"], "EUR");
    let prices: Vec<(String, i64, String)> = body["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["date"].as_str().unwrap().to_owned(),
                n["amount"].as_i64().unwrap(),
                n["rate"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let night = |d: NaiveDate, amount, rate: &str| (d.to_string(), amount, rate.to_owned());
    assert_eq!(
        prices,
        [
            night(plus(thursday, 1), 13_000, "weekend"),
            night(plus(thursday, 2), 13_000, "weekend"),
            night(plus(thursday, 3), 10_000, "base"),
        ],
        "the taken Thursday has no price"
    );
}

async fn the_seed_prices_and_rules_its_listings_variously(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    roost::seed::run(
        &app.db,
        roost::seed::SeedOptions {
            seed: 11,
            properties: 120,
            bookings: 240,
            hosts: 10,
            guests: 10,
            today: chrono::Utc::now().date_naive(),
        },
    )
    .await
    .unwrap();
    let app = &app;
    let some = |condition: &str| {
        let sql = format!("properties WHERE {condition}");
        async move { app.count(&sql).await }
    };
    assert!(some("weekend_price IS NOT NULL").await > 0);
    assert!(some("weekly_discount_pct IS NOT NULL").await > 0);
    assert!(some("tax_rate_bp IS NOT NULL").await > 0);
    assert!(some("extra_guest_fee IS NOT NULL AND extra_guest_after >= 1").await > 0);
    assert!(some("advance_notice_days > 0").await > 0);
    assert!(some("check_in_days <> 127").await > 0);
    assert!(some("time_zone = 'Asia/Tokyo'").await > 0);
    assert!(some("time_zone = 'America/Los_Angeles' OR time_zone = 'America/New_York'").await > 0);
    assert!(app.count("rate_overrides").await > 0);
    // Every seeded listing quotes, its lines adding up.
    let ids: Vec<i64> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use roost::db::schema::properties as p;
        let mut conn = app.db.get().await.unwrap();
        roost::with_conn!(&mut conn, |c| {
            p::table
                .select(p::id)
                .order(p::id.asc())
                .limit(10)
                .load(c)
                .await
        })
        .unwrap()
    };
    let start = next(Weekday::Mon, 40);
    for id in ids {
        quote(app, id, start, plus(start, 7), 1).await;
    }
}

/// A hold asks for seasons only when the listing's `seasons_end` (kept with
/// its row, under its lock) says one can reach its nights. Whatever seasons
/// come and go, a hold is priced as the quote, which always reads them: a
/// season added is met, a removed one is not, and removing the last season
/// leaves the earlier ones in force.
async fn a_hold_meets_every_season_added_or_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app
        .create_listing(&host, json!({"price_per_night": 10_000}))
        .await;
    let day = |n: i64| plus(chrono::Utc::now().date_naive(), n);
    // A hold of nights [n, n + 2), priced as quoted; its nights' prices.
    let hold = async |n: i64| -> Vec<i64> {
        let q = quote(&app, id, day(n), day(n + 2), 1).await;
        let res = app
            .post("/api/v1/bookings")
            .bearer_auth(&guest)
            .json(
                &json!({"property_id": id, "check_in": day(n), "check_out": day(n + 2),
                          "guests": 1}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let booked: Value = res.json().await.unwrap();
        assert_eq!(
            (&booked["total"], &booked["night_prices"]),
            (&q["total"], &q["nights"])
        );
        q["nights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["amount"].as_i64().unwrap())
            .collect()
    };
    let season = async |from: i64, to: i64, price: i64| -> i64 {
        let body = json!({"start": day(from), "end": day(to), "price": price});
        let res = add_rate(&app, &host, id, body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    };
    let remove = async |rate: i64| {
        let path = format!("/api/v1/properties/{id}/rates/{rate}");
        let res = app.delete(&path).bearer_auth(&host).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    };

    assert_eq!(hold(30).await, [10_000, 10_000], "no seasons");
    let early = season(40, 50, 20_000).await;
    let late = season(60, 70, 30_000).await;
    assert_eq!(hold(41).await, [20_000, 20_000]);
    assert_eq!(hold(49).await, [20_000, 10_000], "a season ending mid-stay");
    assert_eq!(hold(61).await, [30_000, 30_000]);
    assert_eq!(hold(71).await, [10_000, 10_000], "after the last season");
    remove(late).await;
    assert_eq!(hold(63).await, [10_000, 10_000], "a removed season");
    assert_eq!(hold(44).await, [20_000, 20_000], "the earlier season stays");
    remove(early).await;
    assert_eq!(hold(46).await, [10_000, 10_000], "no seasons left");
}

/// The listing's actor keeps the rules it read (PostgreSQL) and claims on
/// them in a statement guarded by their version: every change a host makes
/// outside the actor (pricing, the listing's rules) moves the version, so
/// a hold after it is sold and refused on the rules as they now stand, never
/// on the copy; tightened rules refuse what the copy allowed, loosened ones
/// allow what it refused.
async fn a_hold_is_judged_on_the_rules_as_they_stand_after_each_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let day = |n: i64| plus(chrono::Utc::now().date_naive(), n);
    let ask = async |n: i64, nights: i64, expected: Option<&Value>| {
        let mut body = json!({"property_id": id, "check_in": day(n),
                              "check_out": day(n + nights), "guests": 1});
        if let Some(total) = expected {
            body["expected_total"] = total.clone();
        }
        app.post("/api/v1/bookings")
            .bearer_auth(&guest)
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let sold_as_quoted = async |n: i64, nights: i64| {
        let q = quote(&app, id, day(n), day(n + nights), 1).await;
        let res = ask(n, nights, None).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{n} + {nights} nights");
        let booked: Value = res.json().await.unwrap();
        assert_eq!(
            (&booked["total"], &booked["lines"]),
            (&q["total"], &q["lines"])
        );
        q["total"].as_i64().unwrap()
    };
    let patch = async |body: Value| {
        let res = app
            .patch(&format!("/api/v1/properties/{id}"))
            .bearer_auth(&host)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    };

    // The actor has read the rules, and holds on them.
    let first = sold_as_quoted(10, 2).await;
    assert_eq!(sold_as_quoted(20, 2).await, first);
    // Pricing moved: the quote before no longer sells; the new one does.
    let before = quote(&app, id, day(30), day(32), 1).await;
    let put = put_pricing(&app, &host, id, json!({"tax_rate_bp": 1_000})).await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_error(
        ask(30, 2, Some(&before["total"])).await,
        StatusCode::CONFLICT,
        "price_changed",
    )
    .await;
    assert!(sold_as_quoted(30, 2).await > first, "the tax is charged");
    // The nightly price moved.
    patch(json!({"price_per_night": 20_000})).await;
    let dearer = sold_as_quoted(40, 2).await;
    assert!(dearer > first * 3 / 2, "{dearer} at the new price");
    // Tightened: the copy would allow 3 nights, the listing no longer does.
    patch(json!({"min_nights": 5})).await;
    assert_error(
        ask(50, 3, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "stay_too_short",
    )
    .await;
    sold_as_quoted(60, 5).await;
    // Loosened: the copy (read at 5 nights) would refuse 2, the listing allows them.
    patch(json!({"min_nights": 1})).await;
    sold_as_quoted(70, 2).await;
    let held = app.audit_rows("booking.held").await;
    assert_eq!(held.len(), 6, "one row a hold, none for a refusal");
}
