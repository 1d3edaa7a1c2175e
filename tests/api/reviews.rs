//! Reviews after a stay: double-blind, published at once, within the
//! window, totals exact under racing publications, searchable by rating.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Api, Backend, TestApp, assert_error};
use crate::payments::frame_of;

both_backends!(
    both_sides_review_blind_and_are_published_at_once,
    the_window_closes_on_time_and_a_lone_review_is_published_then,
    every_refusal_is_clear_and_stores_nothing,
    edits_replies_and_removals_move_the_totals_exactly,
    racing_publications_keep_the_totals_equal_to_a_recount,
    search_filters_and_sorts_by_rating_and_walks_every_page_once,
    the_seed_writes_reviews_and_totals_that_equal_a_recount,
);

#[actix_web::test]
async fn two_nodes_publish_each_lone_review_once_as_windows_close() {
    if !crate::helpers::postgres_ready("two_nodes_publish_each_lone_review_once").await {
        return;
    }
    let nodes = crate::payments::TwoNodes::start(vec![("ROOST_HOLD_SWEEP_SECS", "1".into())]).await;
    let api = &nodes.apis[0];
    let (_, host) = api.signed_in("host").await;
    let (guest_id, guest) = api.signed_in("guest").await;
    let listing = api.create_listing(&host, json!({})).await;
    let mut stays = Vec::new();
    for i in 0..40 {
        stays.push(completed_stay(&nodes.db, listing, guest_id, 3 + 3 * i, in_a_week()).await);
    }
    for (i, &stay) in stays.iter().enumerate() {
        let review = guest_review(1 + i as i64 % 5, "Alone");
        written(&nodes.apis[i % 2], &guest, stay, &review).await;
    }
    // Every window closes at once; both nodes' jobs race to publish.
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use roost::db::schema::calendar_entries as e;
        let past = (Utc::now() - chrono::Duration::seconds(1)).naive_utc();
        let mut conn = nodes.db.get().await.unwrap();
        roost::with_conn!(&mut conn, |c| {
            diesel::update(e::table.filter(e::property_id.eq(listing)))
                .set(e::reviews_close_at.eq(Some(past)))
                .execute(c)
                .await
        })
        .unwrap();
    }
    let published = "SELECT COUNT(*) AS n FROM reviews WHERE published_at IS NOT NULL";
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.count(published).await < 40 {
        assert!(
            Instant::now() < deadline,
            "the lone reviews were not published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audited = "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'review.published'";
    assert_eq!(nodes.count(audited).await, 40, "each published once");
    let (stored, recount) = totals_and_recount(&nodes.db, listing, guest_id).await;
    assert_eq!(stored, recount);
    assert_eq!(stored[0], 40);
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A stay of `listing` by `guest` leaving `days_ago` days ago, written
/// straight to the database as `confirmed` (the API books no past nights).
async fn past_stay(
    db: &roost::db::Db,
    listing: i64,
    guest: i64,
    days_ago: i64,
    nights: i64,
) -> i64 {
    use roost::db::calendar::{self, KIND_BOOKING, NewEntry};
    let check_out = today() - chrono::Duration::days(days_ago);
    let check_in = check_out - chrono::Duration::days(nights);
    let at = Utc::now().naive_utc();
    let new = NewEntry {
        property_id: listing,
        kind: KIND_BOOKING,
        status: "confirmed",
        check_in,
        check_out,
        created_by: guest,
        guest_id: Some(guest),
        guests: Some(1),
        nights: Some(nights),
        price_per_night: Some(12_500),
        cleaning_fee: Some(0),
        total: Some(12_500 * nights),
        currency: Some("EUR"),
        created_at: at,
        updated_at: at,
        ..Default::default()
    };
    let mut conn = db.get().await.unwrap();
    calendar::insert(&mut conn, &new).await.unwrap().id
}

/// A completed stay whose review window closes at `closes` (as the
/// completer leaves it; see the first test for the completer itself).
async fn completed_stay(
    db: &roost::db::Db,
    listing: i64,
    guest: i64,
    days_ago: i64,
    closes: NaiveDateTime,
) -> i64 {
    let id = past_stay(db, listing, guest, days_ago, 2).await;
    let mut conn = db.get().await.unwrap();
    let done = roost::db::calendar::complete(&mut conn, id, closes, Utc::now().naive_utc())
        .await
        .unwrap();
    assert!(done.is_some());
    id
}

fn in_a_week() -> NaiveDateTime {
    (Utc::now() + chrono::Duration::days(7)).naive_utc()
}

async fn set_closes(db: &roost::db::Db, booking: i64, closes: NaiveDateTime) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use roost::db::schema::calendar_entries as e;
    let mut conn = db.get().await.unwrap();
    roost::with_conn!(&mut conn, |c| {
        diesel::update(e::table.find(booking))
            .set(e::reviews_close_at.eq(Some(closes)))
            .execute(c)
            .await
    })
    .unwrap();
}

fn guest_review(rating: i64, comment: &str) -> Value {
    json!({"rating": rating, "cleanliness": 5, "accuracy": 4, "communication": 5,
           "location": 3, "check_in": 5, "value": 4, "comment": comment})
}

fn host_review(rating: i64) -> Value {
    json!({"rating": rating, "comment": "Left the place spotless."})
}

async fn write(api: &Api, token: &str, booking: i64, body: &Value) -> reqwest::Response {
    api.post(&format!("/api/v1/bookings/{booking}/reviews"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn written(api: &Api, token: &str, booking: i64, body: &Value) -> Value {
    let res = write(api, token, booking, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn get(api: &Api, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = api.get(path);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

async fn listing_reviews(api: &Api, listing: i64) -> Value {
    let res = get(api, &format!("/api/v1/properties/{listing}/reviews"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The listing's stored totals beside a recount of its published reviews,
/// and the same for a guest.
async fn totals_and_recount(db: &roost::db::Db, listing: i64, guest: i64) -> (Vec<i64>, Vec<i64>) {
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        a: i64,
        #[diesel(sql_type = BigInt)]
        b: i64,
        #[diesel(sql_type = BigInt)]
        c: i64,
        #[diesel(sql_type = BigInt)]
        d: i64,
        #[diesel(sql_type = BigInt)]
        e: i64,
    }
    let read = |sql: String| async move {
        let mut conn = db.get().await.unwrap();
        let q = diesel::sql_query(sql);
        let r: Row = roost::with_conn!(&mut conn, |c| q.get_result(c).await).unwrap();
        vec![r.a, r.b, r.c, r.d, r.e]
    };
    let stored = read(format!(
        "SELECT p.review_count AS a, p.rating_sum AS b, p.cleanliness_sum AS c, \
         p.value_sum AS d, u.guest_rating_sum + 1000 * u.guest_review_count AS e \
         FROM properties p, users u WHERE p.id = {listing} AND u.id = {guest}"
    ))
    .await;
    let counted = "published_at IS NOT NULL AND removed_at IS NULL";
    let recount = read(format!(
        "SELECT COUNT(*) AS a, CAST(COALESCE(SUM(rating), 0) AS BIGINT) AS b, \
         CAST(COALESCE(SUM(cleanliness), 0) AS BIGINT) AS c, \
         CAST(COALESCE(SUM(value), 0) AS BIGINT) AS d, \
         (SELECT CAST(COALESCE(SUM(rating), 0) + 1000 * COUNT(*) AS BIGINT) FROM reviews \
          WHERE side = 'host' AND subject_id = {guest} AND {counted}) AS e \
         FROM reviews WHERE side = 'guest' AND property_id = {listing} AND {counted}"
    ))
    .await;
    (stored, recount)
}

async fn both_sides_review_blind_and_are_published_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.hold_sweep_interval = Some(Duration::from_secs(1));
    })
    .await;
    let (host_id, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let zone = "Asia/Tokyo";
    let listing = app.create_listing(&host, json!({"time_zone": zone})).await;

    // The completer completes the stay and opens its window: 14 days after
    // check-out, ending at local midnight.
    let booking = past_stay(&app.db, listing, guest_id, 2, 3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stay = loop {
        let b = app
            .get_ok(&format!("/api/v1/bookings/{booking}"), &guest)
            .await;
        if b["status"] == "completed" {
            break b;
        }
        assert!(Instant::now() < deadline, "the stay never completed: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let check_out: NaiveDate = stay["check_out"].as_str().unwrap().parse().unwrap();
    let tz = roost::domain::stay::TimeZone::parse(zone).unwrap();
    let closes = roost::domain::review::window_closes_at(check_out, tz, 14);
    let stated: chrono::DateTime<Utc> = stay["reviews_close_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(stated, closes);

    let mut listing_ws = app.ws(None).await;
    assert_eq!(
        listing_ws.subscribe(listing, None).await["type"],
        "snapshot"
    );
    let mut host_ws = app.ws(Some(&host)).await;
    let mut guest_ws = app.ws(Some(&guest)).await;

    // The guest writes: only they can see it.
    let mine = written(
        &app,
        &guest,
        booking,
        &guest_review(4, "Quiet & <b>bright</b>"),
    )
    .await;
    assert_eq!(mine["status"], "waiting");
    assert_eq!(mine["comment"], "Quiet & <b>bright</b>", "kept as text");
    assert_eq!(mine["categories"]["location"], 3);
    let id = mine["id"].as_i64().unwrap();
    let path = format!("/api/v1/reviews/{id}");
    assert_eq!(
        get(&app, &path, Some(&guest)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &path, Some(&host)).await.status(),
        StatusCode::NOT_FOUND
    );
    let seen_by_host = app
        .get_ok(&format!("/api/v1/bookings/{booking}/reviews"), &host)
        .await;
    assert_eq!(seen_by_host["items"], json!([]));
    let page = listing_reviews(&app, listing).await;
    assert_eq!(page["summary"]["review_count"], 0);
    assert_eq!(page["items"], json!([]));

    // The host writes: both are published in the same transaction.
    let theirs = written(&app, &host, booking, &host_review(5)).await;
    assert_eq!(theirs["status"], "published");
    let both = app
        .get_ok(&format!("/api/v1/bookings/{booking}/reviews"), &host)
        .await;
    let items = both["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|r| r["status"] == "published"));
    assert_eq!(items[0]["published_at"], items[1]["published_at"]);

    // Totals moved exactly.
    let page = listing_reviews(&app, listing).await;
    assert_eq!(page["summary"]["review_count"], 1);
    assert_eq!(page["summary"]["rating_avg"], 4.0);
    assert_eq!(page["summary"]["categories"]["location"], 3.0);
    assert_eq!(page["items"][0]["id"], id);
    let property = app
        .get_ok(&format!("/api/v1/properties/{listing}"), &guest)
        .await;
    assert_eq!(
        (
            property["review_count"].clone(),
            property["rating_avg"].clone()
        ),
        (json!(1), json!(4.0))
    );
    let me = app.get_ok("/api/v1/users/me", &guest).await;
    assert_eq!(
        (
            me["guest_review_count"].clone(),
            me["guest_rating_avg"].clone()
        ),
        (json!(1), json!(5.0))
    );
    let of_guest = app
        .get_ok(&format!("/api/v1/users/{guest_id}/reviews"), &host)
        .await;
    assert_eq!(of_guest["summary"]["review_count"], 1);
    assert_eq!(of_guest["items"][0]["subject_id"], guest_id);

    // Live: the listing's subscribers get the rating and counts, nobody's
    // identity; each reviewed party a frame on their own channel.
    let frame = frame_of(&mut listing_ws, "review_published").await;
    assert_eq!(
        frame,
        json!({"type": "review_published", "property_id": listing, "rating": 4,
               "review_count": 1, "rating_avg": 4.0})
    );
    let to_host = frame_of(&mut host_ws, "review").await;
    assert_eq!(
        (to_host["review_id"].as_i64(), to_host["side"].as_str()),
        (Some(id), Some("guest"))
    );
    assert_eq!(to_host["rating"], 4);
    let to_guest = frame_of(&mut guest_ws, "review").await;
    assert_eq!(to_guest["side"], "host");
    assert_eq!(to_guest["review_id"], theirs["id"]);
    assert!(host_id > 0);

    assert_eq!(app.audit_rows("review.written").await.len(), 2);
    assert_eq!(app.audit_rows("review.published").await.len(), 2);
    let (stored, recount) = totals_and_recount(&app.db, listing, guest_id).await;
    assert_eq!(stored, recount);
}

async fn the_window_closes_on_time_and_a_lone_review_is_published_then(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.hold_sweep_interval = Some(Duration::from_secs(1));
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    let minute = chrono::Duration::minutes(1);
    let now = Utc::now().naive_utc();
    let open = completed_stay(&app.db, listing, guest_id, 20, now + minute).await;
    let shut = completed_stay(&app.db, listing, guest_id, 10, now - minute).await;

    let lone = written(&app, &guest, open, &guest_review(5, "A minute to spare")).await;
    let res = write(&app, &guest, shut, &guest_review(5, "A minute late")).await;
    assert_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "review_window_closed",
    )
    .await;
    assert_eq!(app.count("reviews").await, 1);

    // The window closes with the host's review unwritten: the job
    // publishes the guest's alone, and the totals move with it.
    set_closes(
        &app.db,
        open,
        Utc::now().naive_utc() - chrono::Duration::seconds(1),
    )
    .await;
    let path = format!("/api/v1/reviews/{}", lone["id"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&app, &path, Some(&host)).await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the lone review was never published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = listing_reviews(&app, listing).await;
    assert_eq!(page["summary"]["review_count"], 1);
    assert_eq!(page["summary"]["rating_avg"], 5.0);
    let published = app.audit_rows("review.published").await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].actor_id, None, "the system published it");
    // Too late for the host now.
    let res = write(&app, &host, open, &host_review(4)).await;
    assert_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "review_window_closed",
    )
    .await;
    let (stored, recount) = totals_and_recount(&app.db, listing, guest_id).await;
    assert_eq!(stored, recount);
}

async fn every_refusal_is_clear_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let (_, admin) = app.signed_in_admin().await;
    let listing = app.create_listing(&host, json!({})).await;
    let stay = completed_stay(&app.db, listing, guest_id, 3, in_a_week()).await;
    let upcoming = app
        .booked(
            &guest,
            listing,
            &crate::helpers::day(30),
            &crate::helpers::day(32),
        )
        .await;
    let good = guest_review(4, "Fine");

    // Not your stay: someone else's booking does not exist for you; an
    // admin sees it but has no side to review from.
    let res = write(&app, &stranger, stay, &good).await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = write(&app, &admin, stay, &good).await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    // Not completed yet.
    let res = write(&app, &guest, upcoming, &good).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "stay_not_completed").await;
    // Out of range, wrong types, empty, oversized, a host giving categories.
    for (token, body, field, code) in [
        (&guest, guest_review(6, "x"), "rating", "out_of_range"),
        (&guest, guest_review(0, "x"), "rating", "out_of_range"),
        (
            &guest,
            json!({"rating": 4.5, "comment": "x"}),
            "rating",
            "wrong_type",
        ),
        (&guest, guest_review(4, "   "), "comment", "required"),
        (
            &guest,
            guest_review(4, &"x".repeat(2001)),
            "comment",
            "too_long",
        ),
        (
            &guest,
            guest_review(4, "bell \u{7}"),
            "comment",
            "invalid_characters",
        ),
        (
            &guest,
            json!({"rating": 4, "comment": "x"}),
            "cleanliness",
            "required",
        ),
        (
            &guest,
            json!({"rating": 4, "comment": "x", "stars": 2}),
            "stars",
            "unknown_field",
        ),
        (
            &host,
            json!({"rating": 4, "comment": "x", "value": 5}),
            "value",
            "not_for_hosts",
        ),
        (&host, json!({"comment": "x"}), "rating", "required"),
    ] {
        let res = write(&app, token, stay, &body).await;
        let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
        let fields = body["error"]["details"].as_array().unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f["field"] == field && f["code"] == code),
            "{field} {code}: {body}"
        );
    }
    assert_eq!(app.count("reviews").await, 0);

    // The first is taken; twice is refused.
    let first = written(
        &app,
        &guest,
        stay,
        &guest_review(4, "<script>alert(1)</script>"),
    )
    .await;
    assert_eq!(first["comment"], "<script>alert(1)</script>");
    let res = write(&app, &guest, stay, &good).await;
    assert_error(res, StatusCode::CONFLICT, "already_reviewed").await;

    // Someone else's review: not theirs to edit, reply to or remove.
    let path = format!("/api/v1/reviews/{}", first["id"]);
    let res = app
        .patch(&path)
        .bearer_auth(&host)
        .json(&json!({"rating": 1}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .post(&format!("{path}/reply"))
        .bearer_auth(&host)
        .json(&json!({"comment": "Thanks"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .delete(&path)
        .bearer_auth(&guest)
        .json(&json!({"reason": "mine"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.delete(&path).bearer_auth(&admin).send().await.unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let res = app
        .patch(&path)
        .bearer_auth(&guest)
        .json(&json!({"rating": 9}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let res = get(&app, &format!("/api/v1/users/{guest_id}/reviews"), None).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = get(
        &app,
        &format!("/api/v1/bookings/{stay}/reviews"),
        Some(&stranger),
    )
    .await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = get(
        &app,
        &format!("/api/v1/users/{guest_id}/reviews?limit=0"),
        Some(&host),
    )
    .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let res = get(&app, "/api/v1/properties/999999/reviews", None).await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = get(
        &app,
        &format!("/api/v1/properties/{listing}/reviews?cursor=bogus"),
        None,
    )
    .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let mine = app.get_ok(&path, &guest).await;
    assert_eq!(mine["rating"], 4, "nothing changed");

    // A removed listing's stays can no longer be reviewed.
    app.cancel(&guest, upcoming).await;
    let res = app
        .delete(&format!("/api/v1/properties/{listing}"))
        .bearer_auth(&host)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = write(&app, &host, stay, &host_review(5)).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "listing_removed").await;
    assert_eq!(app.count("reviews").await, 1);
}

async fn edits_replies_and_removals_move_the_totals_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host_id, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let (_, admin) = app.signed_in_admin().await;
    let listing = app.create_listing(&host, json!({})).await;
    let mut ids = Vec::new();
    for (days_ago, rating) in [(30, 5), (20, 4)] {
        let stay = completed_stay(&app.db, listing, guest_id, days_ago, in_a_week()).await;
        let r = written(&app, &guest, stay, &guest_review(rating, "Nice")).await;
        written(&app, &host, stay, &host_review(3)).await;
        ids.push(r["id"].as_i64().unwrap());
    }
    let summary = listing_reviews(&app, listing).await["summary"].clone();
    assert_eq!(
        (
            summary["review_count"].clone(),
            summary["rating_avg"].clone()
        ),
        (json!(2), json!(4.5))
    );

    // The author edits within 48 hours: the average follows.
    let path = format!("/api/v1/reviews/{}", ids[0]);
    let res = app
        .patch(&path)
        .bearer_auth(&guest)
        .json(&json!({"rating": 3, "cleanliness": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(
        (
            edited["rating"].clone(),
            edited["categories"]["cleanliness"].clone(),
            edited["comment"].clone()
        ),
        (json!(3), json!(1), json!("Nice"))
    );
    let summary = listing_reviews(&app, listing).await["summary"].clone();
    assert_eq!(summary["rating_avg"], 3.5);
    assert_eq!(summary["categories"]["cleanliness"], 3.0);
    let (stored, recount) = totals_and_recount(&app.db, listing, guest_id).await;
    assert_eq!(stored, recount);

    // The host replies once, and may rewrite it for 48 hours.
    let reply = |text: &str| {
        app.post(&format!("{path}/reply"))
            .bearer_auth(&host)
            .json(&json!({"comment": text}))
            .send()
    };
    let res = reply("Thank you!").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = reply("Thank you, come back!").await.unwrap();
    let replied: Value = res.json().await.unwrap();
    assert_eq!(replied["reply"]["comment"], "Thank you, come back!");
    let res = app
        .post(&format!("{path}/reply"))
        .bearer_auth(&guest)
        .json(&json!({"comment": "me too"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let long_ago = "2020-01-01 00:00:00";
    app.execute(&format!(
        "UPDATE reviews SET replied_at = '{long_ago}', published_at = '{long_ago}' WHERE id = {}",
        ids[0]
    ))
    .await;
    let res = reply("Edited too late").await.unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "edit_window_closed").await;
    let res = app
        .patch(&path)
        .bearer_auth(&guest)
        .json(&json!({"rating": 1}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "edit_window_closed").await;

    // An admin removes it, with a reason: gone from the page and the totals.
    let res = app
        .delete(&path)
        .bearer_auth(&admin)
        .json(&json!({"reason": "Names a neighbour"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let removed: Value = res.json().await.unwrap();
    assert_eq!(
        (removed["status"].clone(), removed["removal_reason"].clone()),
        (json!("removed"), json!("Names a neighbour"))
    );
    let page = listing_reviews(&app, listing).await;
    assert_eq!(
        (
            page["summary"]["review_count"].clone(),
            page["summary"]["rating_avg"].clone()
        ),
        (json!(1), json!(4.0))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&app, &path, Some(&guest)).await.status(),
        StatusCode::NOT_FOUND
    );
    let res = app
        .delete(&path)
        .bearer_auth(&admin)
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let audit = app.audit_rows("review.removed").await;
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0].details.contains("Names a neighbour"),
        "{}",
        audit[0].details
    );
    let (stored, recount) = totals_and_recount(&app.db, listing, guest_id).await;
    assert_eq!(stored, recount);
    assert!(host_id > 0);
}

async fn racing_publications_keep_the_totals_equal_to_a_recount(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    let mut stays = Vec::new();
    for i in 0..50 {
        stays.push(completed_stay(&app.db, listing, guest_id, 3 + 3 * i, in_a_week()).await);
    }
    // The guest's 50 reviews wait; then the host's 50 race, each
    // publishing a pair; and the guest edits the first ten meanwhile.
    let writes = stays.iter().enumerate().map(|(i, &stay)| {
        let body = guest_review(1 + (i as i64 * 7) % 5, "Raced");
        let (api, guest) = (&app.api, &guest);
        async move {
            written(api, guest, stay, &body).await["id"]
                .as_i64()
                .unwrap()
        }
    });
    let ids = futures_util::future::join_all(writes).await;
    let hosts = stays.iter().enumerate().map(|(i, &stay)| {
        let (api, host) = (&app.api, &host);
        async move { written(api, host, stay, &host_review(1 + (i as i64 * 3) % 5)).await }
    });
    let edits = ids.iter().take(10).map(|id| {
        let (api, guest) = (&app.api, &guest);
        async move {
            let res = api
                .patch(&format!("/api/v1/reviews/{id}"))
                .bearer_auth(guest)
                .json(&json!({"rating": 5}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
    });
    let (published, _) = futures_util::future::join(
        futures_util::future::join_all(hosts),
        futures_util::future::join_all(edits),
    )
    .await;
    assert!(published.iter().all(|r| r["status"] == "published"));
    let (stored, recount) = totals_and_recount(&app.db, listing, guest_id).await;
    assert_eq!(stored, recount);
    assert_eq!(stored[0], 50);
    assert_eq!(app.audit_rows("review.published").await.len(), 100);
}

async fn search_filters_and_sorts_by_rating_and_walks_every_page_once(backend: Backend) {
    // Ratings written in SQL, behind the server's back: search sees them
    // after a scan.
    let app = TestApp::spawn_with(backend, |s| {
        s.event_poll_interval = std::time::Duration::from_millis(50)
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    // Ratings in hundredths with ties; 0: no reviews.
    let ratings = [450, 500, 0, 450, 367, 450, 100, 0, 499, 450, 275];
    let mut listings = Vec::new();
    for x100 in ratings {
        let id = app.create_listing(&host, json!({})).await;
        // Totals as 100 publications would leave them (a sum of x100 over
        // 100 reviews averages x100 hundredths), written directly.
        let count = if x100 > 0 { 100 } else { 0 };
        app.execute(&format!(
            "UPDATE properties SET rating_avg_x100 = {x100}, review_count = {count}, \
             rating_sum = {x100} WHERE id = {id}"
        ))
        .await;
        listings.push((x100, id));
    }
    app.search_caught_up().await;
    let walk = |query: &'static str| {
        let api = &app.api;
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("/api/v1/properties?{query}&limit=3");
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let res = get(api, &url, None).await;
                assert_eq!(res.status(), StatusCode::OK);
                let page: Value = res.json().await.unwrap();
                for item in page["items"].as_array().unwrap() {
                    seen.push(item["id"].as_i64().unwrap());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => return seen,
                }
            }
        }
    };
    let mut expected = listings.clone();
    expected.sort_by(|a, b| b.cmp(a));
    let order: Vec<i64> = expected.iter().map(|&(_, id)| id).collect();
    assert_eq!(walk("sort=rating_desc").await, order);
    let at_least: Vec<i64> = expected
        .iter()
        .filter(|(r, _)| *r >= 450)
        .map(|&(_, id)| id)
        .collect();
    assert_eq!(walk("sort=rating_desc&min_rating=4.5").await, at_least);
    let mut by_price: Vec<i64> = expected
        .iter()
        .filter(|(r, _)| *r >= 100)
        .map(|&(_, id)| id)
        .collect();
    by_price.sort();
    assert_eq!(walk("min_rating=1").await, by_price, "same price: by id");
    let rated = get(&app, "/api/v1/properties?sort=rating_desc&limit=1", None).await;
    let first: Value = rated.json().await.unwrap();
    assert_eq!(first["items"][0]["rating_avg"], 5.0);
    assert_eq!(first["items"][0]["review_count"], 100);
    for bad in ["0.5", "5.5", "4.567", "four"] {
        let res = get(&app, &format!("/api/v1/properties?min_rating={bad}"), None).await;
        let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(body["error"]["details"][0]["field"], "min_rating");
    }
    // A cursor from another sort is refused.
    let page: Value = get(&app, "/api/v1/properties?sort=price_asc&limit=2", None)
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = get(
        &app,
        &format!("/api/v1/properties?sort=rating_desc&cursor={cursor}"),
        None,
    )
    .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
}

async fn the_seed_writes_reviews_and_totals_that_equal_a_recount(backend: Backend) {
    // Seeded behind the server's back: search sees it after a scan.
    let app = TestApp::spawn_with(backend, |s| {
        s.event_poll_interval = std::time::Duration::from_millis(50)
    })
    .await;
    roost::seed::run(
        &app.db,
        roost::seed::SeedOptions {
            seed: 5,
            properties: 200,
            bookings: 2_000,
            hosts: 20,
            guests: 40,
            today: today(),
        },
    )
    .await
    .unwrap();
    let counted = "r.published_at IS NOT NULL AND r.removed_at IS NULL";
    assert!(app.count(&format!("reviews r WHERE {counted}")).await > 500);
    assert!(
        app.count("reviews WHERE published_at IS NULL").await > 0,
        "recent ones wait"
    );
    assert_eq!(
        app.count("calendar_entries WHERE status = 'completed' AND reviews_close_at IS NULL")
            .await,
        0
    );
    let of_listing =
        format!("reviews r WHERE r.property_id = p.id AND r.side = 'guest' AND {counted}");
    let drifted = format!(
        "properties p WHERE p.review_count <> (SELECT COUNT(*) FROM {of_listing}) \
         OR p.rating_sum <> (SELECT COALESCE(SUM(r.rating), 0) FROM {of_listing}) \
         OR p.check_in_sum <> (SELECT COALESCE(SUM(r.check_in), 0) FROM {of_listing})"
    );
    assert_eq!(app.count(&drifted).await, 0);
    let of_guest = format!("reviews r WHERE r.subject_id = u.id AND r.side = 'host' AND {counted}");
    let drifted = format!(
        "users u WHERE u.guest_review_count <> (SELECT COUNT(*) FROM {of_guest}) \
         OR u.guest_rating_sum <> (SELECT COALESCE(SUM(r.rating), 0) FROM {of_guest})"
    );
    assert_eq!(app.count(&drifted).await, 0);
    assert!(app.count("users WHERE guest_review_count > 0").await > 0);
    app.search_caught_up().await;
    let page: Value = get(
        &app,
        "/api/v1/properties?sort=rating_desc&min_rating=4&limit=5",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let ratings: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rating_avg"].as_f64().unwrap())
        .collect();
    assert_eq!(ratings.len(), 5, "{page}");
    assert!(
        ratings.windows(2).all(|w| w[0] >= w[1]) && ratings[4] >= 4.0,
        "{ratings:?}"
    );
}
