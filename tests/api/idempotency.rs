//! `Idempotency-Key`: a retry gets the first response byte for byte and
//! changes nothing again, on one node or two, across a kill -9; a key is
//! per user, bound to its first request, kept for its retention; refusals
//! before running are not kept; nothing secret is stored.

use std::collections::BTreeSet;

use reqwest::{RequestBuilder, StatusCode};
use roost::domain::idempotency::IdempotencyKey;
use serde_json::{Value, json};

use crate::binary::{start, unlimited};
use crate::both_backends;
use crate::helpers::{Api, Backend, TestApp, TestDatabase, assert_error, day, postgres_ready};

both_backends!(
    a_retried_booking_is_replayed_byte_for_byte_and_books_once,
    a_key_is_bound_to_its_first_request_and_to_its_user,
    an_executed_refusal_is_replayed_even_after_the_nights_free_up,
    refusals_before_running_keep_nothing,
    a_wrong_route_or_a_missing_token_never_reaches_the_key,
    keys_are_1_to_255_printable_ascii_characters,
    a_key_past_its_retention_is_new,
    sign_up_and_sign_in_are_replayed_and_nothing_secret_is_stored,
    concurrent_identical_requests_run_once,
    a_running_key_is_in_progress_until_its_lease_ends,
    every_state_changing_endpoint_replays,
    a_retry_after_kill_9_is_replayed,
    expired_keys_are_pruned,
);

fn booking_body(property: i64, from: i64, to: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "property_id": property,
        "check_in": day(from),
        "check_out": day(to),
        "guests": 2,
    }))
    .unwrap()
}

/// A keyed POST of exact bytes.
fn keyed(req: RequestBuilder, key: &str, body: &[u8]) -> RequestBuilder {
    req.header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body.to_vec())
}

/// Status, body bytes and whether it was a replay.
async fn answer(req: RequestBuilder) -> (StatusCode, Vec<u8>, bool) {
    let res = req.send().await.unwrap();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap() == "true")
        .unwrap_or(false);
    (res.status(), res.bytes().await.unwrap().to_vec(), replayed)
}

/// A booking with a key: its answer.
async fn book(api: &Api, token: &str, key: &str, body: &[u8]) -> (StatusCode, Vec<u8>, bool) {
    answer(keyed(
        api.post("/api/v1/bookings").bearer_auth(token),
        key,
        body,
    ))
    .await
}

async fn bookings_of(app: &TestApp, property: i64) -> usize {
    app.live_claims(property).await.len()
}

async fn a_retried_booking_is_replayed_byte_for_byte_and_books_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let body = booking_body(id, 10, 13);
    let post = || {
        keyed(
            app.post("/api/v1/bookings").bearer_auth(&guest),
            "order-1",
            &body,
        )
    };

    let first = answer(post()).await;
    assert_eq!((first.0, first.2), (StatusCode::CREATED, false));
    for _ in 0..3 {
        let retry = answer(post()).await;
        assert_eq!(retry, (StatusCode::CREATED, first.1.clone(), true));
    }
    assert_eq!(bookings_of(&app, id).await, 1);
    assert_eq!(app.count("calendar_events").await, 1, "one event, not four");
    assert_eq!(app.audit_rows("booking.held").await.len(), 1);
    // Without a key, the same request is a new one (and here a conflict).
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&guest)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
}

async fn a_key_is_bound_to_its_first_request_and_to_its_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let first = book(&app, &guest, "k", &booking_body(id, 10, 13)).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let booking: Value = serde_json::from_slice(&first.1).unwrap();

    // Another body, or another route, with the key: 422, and nothing done.
    let res = keyed(
        app.post("/api/v1/bookings").bearer_auth(&guest),
        "k",
        &booking_body(id, 20, 23),
    )
    .send()
    .await
    .unwrap();
    assert_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    let cancel = app.post(&format!("/api/v1/bookings/{}/cancel", booking["id"]));
    let res = keyed(cancel.bearer_auth(&guest), "k", b"")
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(bookings_of(&app, id).await, 1);

    // The same key is another user's own: not a replay of this one's.
    let theirs = book(&app, &other, "k", &booking_body(id, 20, 23)).await;
    assert_eq!((theirs.0, theirs.2), (StatusCode::CREATED, false));
    assert_eq!(bookings_of(&app, id).await, 2);
}

async fn an_executed_refusal_is_replayed_even_after_the_nights_free_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, first_guest) = app.signed_in("guest").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let taken = app.booked(&first_guest, id, &day(10), &day(13)).await;
    let body = booking_body(id, 11, 12);
    let post = || {
        keyed(
            app.post("/api/v1/bookings").bearer_auth(&guest),
            "try-1",
            &body,
        )
    };

    let refused = answer(post()).await;
    assert_eq!(refused.0, StatusCode::CONFLICT);
    let error: Value = serde_json::from_slice(&refused.1).unwrap();
    assert_eq!(error["error"]["code"], "dates_unavailable");
    app.cancel(&first_guest, taken).await;
    let retry = answer(post()).await;
    assert_eq!(retry, (StatusCode::CONFLICT, refused.1, true));
    assert_eq!(bookings_of(&app, id).await, 0, "the retry booked nothing");
}

async fn a_wrong_route_or_a_missing_token_never_reaches_the_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A signed-out sign-up takes the key for this client address.
    let signup = serde_json::to_vec(&json!({
        "email": "kim@example.com", "password": "password123", "name": "Kim"
    }))
    .unwrap();
    let res = keyed(app.post("/api/v1/auth/register"), "k1", &signup)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // The same key on a method the path does not take: 405, not 422.
    let res = keyed(app.patch("/api/v1/auth/register"), "k1", &signup)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    // The same key, signed out, on a route that needs a token: 401, not 422.
    let res = keyed(app.post("/api/v1/bookings"), "k1", b"{}")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Nor a malformed key: the missing token comes first.
    let res = keyed(app.post("/api/v1/bookings"), " ", b"{}")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Signed out on a route that needs no token, the key still binds.
    let res = keyed(app.post("/api/v1/auth/login"), "k1", b"{}")
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.count("idempotency_keys").await, 1);
}

async fn refusals_before_running_keep_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let body = booking_body(id, 10, 13);

    // 401 (a bad token), then the right token with the same key: it runs.
    let res = keyed(
        app.post("/api/v1/bookings").bearer_auth("not-a-token"),
        "k1",
        &body,
    )
    .send()
    .await
    .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // 400 (malformed JSON), then the body fixed with the same key: it runs.
    let res = keyed(
        app.post("/api/v1/bookings").bearer_auth(&guest),
        "k1",
        b"{oops",
    )
    .send()
    .await
    .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_json").await;
    let res = keyed(
        app.post("/api/v1/bookings").bearer_auth(&guest),
        "k1",
        br#"{"property_id": "one"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let ran = book(&app, &guest, "k1", &body).await;
    assert_eq!((ran.0, ran.2), (StatusCode::CREATED, false));
    assert_eq!(app.count("idempotency_keys").await, 1);
}

async fn keys_are_1_to_255_printable_ascii_characters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let long = "k".repeat(256);
    for bad in [&b""[..], long.as_bytes(), b"caf\xc3\xa9", b"tab\there"] {
        let value = reqwest::header::HeaderValue::from_bytes(bad).unwrap();
        let res = app
            .post("/api/v1/bookings")
            .bearer_auth(&guest)
            .header("idempotency-key", value)
            .json(&json!({"property_id": id, "check_in": day(10), "check_out": day(11)}))
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    }
    assert_eq!(bookings_of(&app, id).await, 0);
    let longest = "k".repeat(255);
    let ok = book(&app, &guest, &longest, &booking_body(id, 10, 11)).await;
    assert_eq!(ok.0, StatusCode::CREATED);
}

async fn a_key_past_its_retention_is_new(backend: Backend) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use roost::db::schema::idempotency_keys;
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let first = book(&app, &guest, "k", &booking_body(id, 10, 13)).await;
    assert_eq!(first.0, StatusCode::CREATED);
    // The retention passes (ROOST_IDEMPOTENCY_TTL_SECS; moved, not waited for).
    let mut conn = app.db.get().await.unwrap();
    let past = roost::db::now().naive_utc() - chrono::Duration::seconds(1);
    roost::with_conn!(&mut conn, |c| {
        diesel::update(idempotency_keys::table)
            .set(idempotency_keys::expires_at.eq(past))
            .execute(c)
            .await
    })
    .unwrap();
    // Now the key is new: another body is not "reused", it runs.
    let again = book(&app, &guest, "k", &booking_body(id, 20, 23)).await;
    assert_eq!((again.0, again.2), (StatusCode::CREATED, false));
    assert_eq!(bookings_of(&app, id).await, 2);
}

async fn sign_up_and_sign_in_are_replayed_and_nothing_secret_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "a long and secret passphrase";
    let signup =
        serde_json::to_vec(&json!({"email": email, "password": password, "name": "Ada"})).unwrap();
    let first = answer(keyed(app.post("/api/v1/auth/register"), "signup", &signup)).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let retry = answer(keyed(app.post("/api/v1/auth/register"), "signup", &signup)).await;
    assert_eq!(retry, (StatusCode::CREATED, first.1, true));

    let login = serde_json::to_vec(&json!({"email": email, "password": password})).unwrap();
    let first = answer(keyed(app.post("/api/v1/auth/login"), "signin", &login)).await;
    assert_eq!(first.0, StatusCode::OK);
    let token = serde_json::from_slice::<Value>(&first.1).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let retry = answer(keyed(app.post("/api/v1/auth/login"), "signin", &login)).await;
    assert_eq!(
        retry,
        (StatusCode::OK, first.1, true),
        "the same token again"
    );
    assert_eq!(app.count("auth_tokens").await, 1, "one sign-in, one token");
    assert_eq!(app.audit_rows("user.login_succeeded").await.len(), 1);

    // The key table holds neither the keys, nor the password, nor the token.
    let rows = key_rows(&app).await;
    assert_eq!(rows.len(), 2);
    let text = format!("{rows:?}");
    for secret in ["signup", "signin", password, &token] {
        assert!(
            !text.contains(secret),
            "idempotency_keys holds {secret:?}: {text}"
        );
    }
    let audit = format!("{:?}", app.audit_rows_all().await);
    for secret in [password, &token] {
        assert!(!audit.contains(secret), "the audit trail holds {secret:?}");
    }
}

/// A key row: scope, key hash, fingerprint, status, response.
type KeyRow<R> = (String, String, String, Option<i64>, R);

/// Every column of every key row, as text (responses as raw bytes).
async fn key_rows(app: &TestApp) -> Vec<KeyRow<String>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use roost::db::schema::idempotency_keys as k;
    let mut conn = app.db.get().await.unwrap();
    let rows: Vec<KeyRow<Option<Vec<u8>>>> = roost::with_conn!(&mut conn, |c| {
        k::table
            .select((
                k::scope,
                k::key_hash,
                k::fingerprint,
                k::status,
                k::response,
            ))
            .load(c)
            .await
    })
    .unwrap();
    rows.into_iter()
        .map(|(s, h, f, st, r)| {
            (
                s,
                h,
                f,
                st,
                String::from_utf8_lossy(&r.unwrap_or_default()).into(),
            )
        })
        .collect()
}

async fn concurrent_identical_requests_run_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    race(&[&app], &guest, "race", &booking_body(id, 10, 13)).await;
    assert_eq!(bookings_of(&app, id).await, 1);
}

/// Twenty identical bookings with one key at once, round-robin over
/// `nodes`: exactly one runs; every other answer is that same 201 replayed,
/// or 409 `idempotency_in_progress`; and a retry afterwards gets the 201.
async fn race(nodes: &[&Api], token: &str, key: &str, body: &[u8]) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let api = nodes[i % nodes.len()];
            let req = keyed(api.post("/api/v1/bookings").bearer_auth(token), key, body);
            tokio::spawn(answer(req))
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let originals: Vec<&Vec<u8>> = answers
        .iter()
        .filter(|a| a.0 == StatusCode::CREATED && !a.2)
        .map(|a| &a.1)
        .collect();
    assert_eq!(originals.len(), 1, "one request ran: {answers:?}");
    let original = originals[0].clone();
    for (status, body, replayed) in &answers {
        match *status {
            StatusCode::CREATED => assert_eq!(body, &original),
            StatusCode::CONFLICT => {
                assert!(!replayed);
                let e: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(e["error"]["code"], "idempotency_in_progress");
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(body)),
        }
    }
    let last = nodes[nodes.len() - 1];
    let retry = keyed(last.post("/api/v1/bookings").bearer_auth(token), key, body);
    assert_eq!(answer(retry).await, (StatusCode::CREATED, original, true));
}

async fn a_running_key_is_in_progress_until_its_lease_ends(backend: Backend) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use roost::db::schema::idempotency_keys;
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let body = booking_body(id, 10, 13);

    // As a node leaves a key it claimed and died holding: running, leased.
    let key = IdempotencyKey::parse(b"crashed").unwrap();
    let scope = format!("user:{guest_id}");
    let fingerprint = key
        .secrets(&scope)
        .fingerprint("POST", "/api/v1/bookings", &body);
    let now = roost::db::now().naive_utc();
    let mut conn = app.db.get().await.unwrap();
    let claimed = roost::write_tx!(&mut conn, |c| {
        let claiming = roost::db::idempotency::Claiming {
            scope: scope.clone(),
            key_hash: key.hash(),
            fingerprint: fingerprint.clone(),
            claim: "a-dead-node".into(),
            now,
            lease_until: now + chrono::Duration::seconds(60),
            expires_at: now + chrono::Duration::days(1),
        };
        roost::db::idempotency::claim(c, &claiming).await
    })
    .unwrap();
    assert_eq!(
        claimed,
        roost::db::idempotency::Claim::Won("a-dead-node".into())
    );
    let post = || {
        keyed(
            app.post("/api/v1/bookings").bearer_auth(&guest),
            "crashed",
            &body,
        )
    };
    let res = post().send().await.unwrap();
    assert_error(res, StatusCode::CONFLICT, "idempotency_in_progress").await;
    assert_eq!(bookings_of(&app, id).await, 0);

    // Its lease ends: the next retry takes the key over and runs, once.
    let past = now - chrono::Duration::seconds(1);
    roost::with_conn!(&mut conn, |c| {
        diesel::update(idempotency_keys::table)
            .set(idempotency_keys::lease_until.eq(Some(past)))
            .execute(c)
            .await
    })
    .unwrap();
    let ran = answer(post()).await;
    assert_eq!((ran.0, ran.2), (StatusCode::CREATED, false));
    assert_eq!(answer(post()).await, (StatusCode::CREATED, ran.1, true));
    assert_eq!(bookings_of(&app, id).await, 1);
}

async fn every_state_changing_endpoint_replays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.signed_in_admin().await;
    let (host_id, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let booking = app.booked(&guest, id, &day(10), &day(13)).await;
    let block = app.block(&host, id, &day(30), &day(31)).await;
    let listing = serde_json::to_vec(&crate::helpers::listing(json!({}))).unwrap();
    // (method, path, token, body): each is run twice with one key.
    let calls: Vec<(&str, String, &str, Vec<u8>)> = vec![
        ("POST", "/api/v1/properties".into(), &host, listing),
        (
            "PATCH",
            format!("/api/v1/properties/{id}"),
            &host,
            br#"{"title":"Loft"}"#.to_vec(),
        ),
        (
            "POST",
            format!("/api/v1/properties/{id}/blocks"),
            &host,
            serde_json::to_vec(&json!({"start": day(40), "end": day(41)})).unwrap(),
        ),
        (
            "DELETE",
            format!("/api/v1/properties/{id}/blocks/{block}"),
            &host,
            Vec::new(),
        ),
        (
            "POST",
            format!("/api/v1/bookings/{booking}/cancel"),
            &guest,
            Vec::new(),
        ),
        (
            "PATCH",
            "/api/v1/users/me".into(),
            &guest,
            br#"{"name":"Bea"}"#.to_vec(),
        ),
        (
            "POST",
            format!("/api/v1/users/{host_id}/deactivate"),
            &admin,
            Vec::new(),
        ),
        (
            "POST",
            format!("/api/v1/users/{host_id}/activate"),
            &admin,
            Vec::new(),
        ),
        (
            "DELETE",
            format!("/api/v1/properties/{id}"),
            &admin,
            Vec::new(),
        ),
    ];
    let mut keys = BTreeSet::new();
    for (i, (method, path, token, body)) in calls.iter().enumerate() {
        let key = format!("call-{i}");
        keys.insert(key.clone());
        let send = || {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let req = app.client.request(method, app.url(path)).bearer_auth(token);
            keyed(req, &key, body)
        };
        let first = answer(send()).await;
        assert!(
            first.0.is_success() && !first.2,
            "{method} {path}: {first:?}"
        );
        let again = answer(send()).await;
        assert_eq!(again, (first.0, first.1, true), "{method} {path}");
    }
    // Signing out is the one exception: the first attempt revoked the
    // token the retry presents, so the retry is refused (401) before any
    // key is looked up. The client is signed out either way.
    let logout = || {
        keyed(
            app.post("/api/v1/auth/logout").bearer_auth(&guest),
            "bye",
            b"",
        )
    };
    assert_eq!(answer(logout()).await.0, StatusCode::NO_CONTENT);
    let res = logout().send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    keys.insert("bye".into());
    assert_eq!(app.count("idempotency_keys").await, keys.len() as i64);
    // Each change happened once: one listing created, one block added and
    // one removed, one cancellation.
    assert_eq!(app.audit_rows("property.created").await.len(), 2);
    assert_eq!(app.audit_rows("block.added").await.len(), 2);
    assert_eq!(app.audit_rows("block.removed").await.len(), 1);
    assert_eq!(app.audit_rows("booking.cancelled").await.len(), 1);
    assert_eq!(app.audit_rows("user.deactivated").await.len(), 1);
}

async fn a_retry_after_kill_9_is_replayed(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let node = || start(unlimited(dir.path(), &database.env_url()));
    let mut running = node();
    let api = running.api();
    let (_, host) = api.signed_in("host").await;
    let (_, guest) = api.signed_in("guest").await;
    let id = api.create_listing(&host, json!({})).await;
    let body = booking_body(id, 10, 13);
    let first = book(&api, &guest, "kill", &body).await;
    assert_eq!(first.0, StatusCode::CREATED);
    running.kill();

    let running = node();
    let api = running.api();
    let retry = book(&api, &guest, "kill", &body).await;
    assert_eq!(retry, (StatusCode::CREATED, first.1, true));
    let db = roost::db::Db::connect(&database.url, Some(1)).unwrap();
    let mut conn = db.get().await.unwrap();
    let from = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let claims = roost::db::calendar::live_for_property(&mut conn, id, from)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "still one booking");
}

async fn expired_keys_are_pruned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    for (i, nights) in [(10, 11), (12, 13), (14, 15)].into_iter().enumerate() {
        let key = format!("k{i}");
        let body = booking_body(id, nights.0, nights.1);
        let res = book(&app, &guest, &key, &body).await;
        assert_eq!(res.0, StatusCode::CREATED);
    }
    let now = roost::db::now().naive_utc();
    let pruned = roost::services::housekeeping::prune_idempotency_keys(&app.db, now)
        .await
        .unwrap();
    assert_eq!(pruned, 0, "none has expired");
    let later = now + chrono::Duration::days(2);
    let pruned = roost::services::housekeeping::prune_idempotency_keys(&app.db, later)
        .await
        .unwrap();
    assert_eq!(pruned, 3);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

/// Twenty identical requests with one key, split between two `roost serve`
/// processes on one PostgreSQL database: one booking, every answer the
/// first 201 or 409 `idempotency_in_progress`.
#[actix_web::test]
async fn concurrent_identical_requests_on_two_nodes_run_once() {
    if !postgres_ready("concurrent_identical_requests_on_two_nodes_run_once").await {
        return;
    }
    let database = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let node = |dir: std::path::PathBuf, url: String| {
        std::thread::spawn(move || {
            let mut cmd = unlimited(&dir, &url);
            cmd.env("ROOST_WORKERS", "2");
            start(cmd)
        })
    };
    let (a, b) = (
        node(dir.path().to_owned(), url.clone()),
        node(dir.path().to_owned(), url.clone()),
    );
    let nodes = [a.join().unwrap(), b.join().unwrap()];
    let apis: Vec<Api> = nodes.iter().map(|n| n.api()).collect();
    let (_, host) = apis[0].signed_in("host").await;
    let (_, guest) = apis[1].signed_in("guest").await;
    let id = apis[0].create_listing(&host, json!({})).await;
    let nodes: Vec<&Api> = apis.iter().collect();
    race(&nodes, &guest, "two-nodes", &booking_body(id, 10, 13)).await;
    let db = roost::db::Db::connect(&database.url, Some(1)).unwrap();
    let mut conn = db.get().await.unwrap();
    let from = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let claims = roost::db::calendar::live_for_property(&mut conn, id, from)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "one booking");
}

/// On PostgreSQL a fresh key's claim commits without waiting for its WAL
/// flush (`synchronous_commit` off for its own transaction): the setting
/// must end with that transaction, or every later change on the pooled
/// connection would be acknowledged before it is on disk.
#[actix_web::test]
async fn a_claim_on_postgres_leaves_its_connection_committing_durably() {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        v: String,
    }
    let name = "a_claim_on_postgres_leaves_its_connection_committing_durably";
    if !postgres_ready(name).await {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let mut conn = app.db.get().await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    let later = now + chrono::Duration::hours(1);
    for (claim, won) in [("c1", true), ("c2", false)] {
        let claiming = roost::db::idempotency::Claiming {
            scope: "user:1".into(),
            key_hash: "hash".into(),
            fingerprint: "fp".into(),
            claim: claim.into(),
            now,
            lease_until: later,
            expires_at: later,
        };
        let fresh = roost::db::idempotency::claim_fresh(&mut conn, &claiming).await;
        assert_eq!(fresh.unwrap(), won, "claimed only the first time");
        let q = diesel::sql_query("SELECT current_setting('synchronous_commit') AS v");
        let setting: Setting = roost::with_conn!(&mut conn, |c| q.get_result(c).await).unwrap();
        assert_eq!(setting.v, "on", "the connection commits durably again");
    }
    drop(conn);
    let keys = key_rows(&app).await;
    let claimed = (
        "user:1".into(),
        "hash".into(),
        "fp".into(),
        None,
        String::new(),
    );
    assert_eq!(keys, [claimed]);
}
