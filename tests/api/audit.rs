//! The audit trail: a row for every action, written with its change (and
//! absent when the change rolled back), who did it from where in which
//! request, append-only, never a secret; read by admins at
//! `/api/v1/audit` and by operators with `roost audit`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use roost::db::audit::AuditRow;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error, day, listing};

both_backends!(
    every_action_is_recorded_with_who_did_it,
    a_refused_or_rolled_back_change_records_nothing,
    the_trail_is_append_only,
    no_row_holds_a_password_or_a_token,
    admins_read_the_trail_filtered_and_paged_and_no_one_else_does,
    roost_audit_prints_the_trail_as_json_lines,
);

/// The one row of `action` about `object_id`.
async fn row(app: &TestApp, action: &str, object_id: Option<i64>) -> AuditRow {
    let rows: Vec<AuditRow> = app
        .audit_rows(action)
        .await
        .into_iter()
        .filter(|r| r.object_id == object_id)
        .collect();
    assert_eq!(rows.len(), 1, "{action} on {object_id:?}: {rows:?}");
    rows.into_iter().next().unwrap()
}

fn details(row: &AuditRow) -> Value {
    serde_json::from_str(&row.details).unwrap()
}

async fn every_action_is_recorded_with_who_did_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.hold_ttl = Duration::from_secs(1);
        s.hold_sweep_interval = Some(Duration::from_secs(1));
    })
    .await;
    let (admin, admin_token) = app.signed_in_admin().await;
    let (host, host_token) = app.signed_in("host").await;
    let (guest, guest_token) = app.signed_in("guest").await;

    // Registration, by no one signed in, from this client, in that request.
    let registered = row(&app, "user.registered", Some(guest)).await;
    assert_eq!(registered.actor_id, None);
    assert_eq!(registered.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(details(&registered)["role"], "guest");
    assert!(registered.request_id.is_some());
    let by_cli = row(&app, "user.registered", Some(admin)).await;
    assert_eq!(by_cli.request_id.as_deref(), Some("cli"));

    // Sign-ins: each success by its user; failures with why, and no user.
    let ok = app.audit_rows("user.login_succeeded").await;
    assert_eq!(
        ok.iter().map(|r| r.actor_id).collect::<Vec<_>>(),
        vec![Some(admin), Some(host), Some(guest)]
    );
    let email = app
        .get_me(&guest_token)
        .await
        .json::<Value>()
        .await
        .unwrap()["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.login(&email, "not-the-password").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = app.login("nobody@example.com", "password123").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let failed = app.audit_rows("user.login_failed").await;
    let failures: Vec<(Option<i64>, Option<i64>, Value)> = failed
        .iter()
        .map(|r| (r.actor_id, r.object_id, details(r)["reason"].clone()))
        .collect();
    assert_eq!(
        failures,
        vec![
            (None, Some(guest), json!("wrong_password")),
            (None, None, json!("unknown_email")),
        ]
    );

    // The request id is the one the response carried.
    let res = app
        .patch_me(&guest_token, json!({"name": "Ada", "role": "host"}))
        .await;
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(res.status(), StatusCode::OK);
    let renamed = row(&app, "user.name_changed", Some(guest)).await;
    assert_eq!(renamed.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(renamed.actor_id, Some(guest));
    let role = row(&app, "user.role_changed", Some(guest)).await;
    assert_eq!(details(&role), json!({"from": "guest", "to": "host"}));
    let res = app
        .patch_me(
            &guest_token,
            json!({"password": "new-password-1", "current_password": "password123"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        row(&app, "user.password_changed", Some(guest))
            .await
            .actor_id,
        Some(guest)
    );

    // Listings and blocks, by their host.
    let id = app.create_listing(&host_token, json!({})).await;
    assert_eq!(
        row(&app, "property.created", Some(id)).await.actor_id,
        Some(host)
    );
    let res = app
        .patch(&format!("/api/v1/properties/{id}"))
        .bearer_auth(&host_token)
        .json(&json!({"price_per_night": 9_000, "title": "Loft"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let updated = row(&app, "property.updated", Some(id)).await;
    assert_eq!(
        details(&updated)["fields"],
        json!(["title", "price_per_night"])
    );
    let block = app.block(&host_token, id, &day(40), &day(42)).await;
    assert_eq!(
        row(&app, "block.added", Some(block)).await.actor_id,
        Some(host)
    );
    app.unblock(&host_token, id, block).await;
    assert_eq!(
        row(&app, "block.removed", Some(block)).await.actor_id,
        Some(host)
    );

    // Bookings: held and cancelled by the guest; a lapsed one expired by Roost.
    let booking = app.booked(&guest_token, id, &day(10), &day(13)).await;
    let held = row(&app, "booking.held", Some(booking)).await;
    assert_eq!(held.actor_id, Some(guest));
    assert_eq!(
        details(&held),
        json!({"property_id": id, "check_in": day(10), "check_out": day(13),
               "guests": 2, "total": 3 * 9_000 + 3_000, "currency": "EUR"})
    );
    app.cancel(&guest_token, booking).await;
    let cancelled = row(&app, "booking.cancelled", Some(booking)).await;
    assert_eq!(
        (cancelled.actor_id, details(&cancelled)["was"].clone()),
        (Some(guest), json!("pending"))
    );
    let lapsing = app.booked(&guest_token, id, &day(20), &day(22)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.audit_rows("booking.expired").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sweeper never expired the hold"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expired = row(&app, "booking.expired", Some(lapsing)).await;
    assert_eq!(
        (expired.actor_id, expired.ip),
        (None, None),
        "Roost's doing"
    );

    // Delisting, deactivation and activation, and sign-out.
    app.delist(&host_token, id).await;
    assert_eq!(
        row(&app, "property.deleted", Some(id)).await.actor_id,
        Some(host)
    );
    for action in ["deactivate", "activate"] {
        let res = app
            .post(&format!("/api/v1/users/{host}/{action}"))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let done = row(&app, &format!("user.{action}d"), Some(host)).await;
        assert_eq!(done.actor_id, Some(admin));
    }
    let res = app.logout(&admin_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        row(&app, "user.logout", Some(admin)).await.actor_id,
        Some(admin)
    );
}

async fn a_refused_or_rolled_back_change_records_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({"max_guests": 2})).await;
    let booking = app.booked(&guest, id, &day(10), &day(13)).await;

    // Taken nights (the database refused), too many guests (a rule), a bad
    // listing, a second account with the same email: none is in the trail.
    let res = app.book(&guest, id, &day(11), &day(12)).await;
    assert_error(res, StatusCode::CONFLICT, "dates_unavailable").await;
    let res = app
        .post("/api/v1/bookings")
        .bearer_auth(&guest)
        .json(&json!({"property_id": id, "check_in": day(20), "check_out": day(22), "guests": 3}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "too_many_guests").await;
    let res = app
        .post("/api/v1/properties")
        .bearer_auth(&host)
        .json(&listing(json!({"price_per_night": -1})))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(
        app.register(&email, "password123", "guest").await.status(),
        StatusCode::CREATED
    );
    let res = app.register(&email, "password123", "guest").await;
    assert_error(res, StatusCode::CONFLICT, "email_taken").await;

    let held: Vec<Option<i64>> = app
        .audit_rows("booking.held")
        .await
        .iter()
        .map(|r| r.object_id)
        .collect();
    assert_eq!(held, vec![Some(booking)]);
    assert_eq!(app.audit_rows("property.created").await.len(), 1);
    assert_eq!(app.audit_rows("user.registered").await.len(), 3);
    // A cancel the state machine refuses (already cancelled) records nothing.
    app.cancel(&guest, booking).await;
    let res = app
        .post(&format!("/api/v1/bookings/{booking}/cancel"))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition").await;
    assert_eq!(app.audit_rows("booking.cancelled").await.len(), 1);
}

async fn the_trail_is_append_only(backend: Backend) {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn(backend).await;
    app.signed_in("guest").await;
    let before = app.count("audit_log").await;
    assert!(before >= 2, "registered and signed in");
    let mut conn = app.db.get().await.unwrap();
    for sql in [
        "UPDATE audit_log SET action = 'user.nothing'",
        "DELETE FROM audit_log",
    ] {
        let refused = roost::with_conn!(&mut conn, |c| c.batch_execute(sql).await);
        let e = refused.expect_err("the database refuses to change the trail");
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    assert_eq!(app.count("audit_log").await, before);
}

async fn no_row_holds_a_password_or_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "correct horse battery staple";
    assert_eq!(
        app.register(&email, password, "host").await.status(),
        StatusCode::CREATED
    );
    let res = app.login(&email, "a wrong password, typed in full").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let token = app
        .login(&email, password)
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_password = "another long passphrase";
    let res = app
        .patch_me(
            &token,
            json!({"password": new_password, "current_password": password}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let id = app.create_listing(&token, json!({})).await;
    app.block(&token, id, &day(5), &day(6)).await;
    let res = app.logout(&token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let rows = app.audit_rows_all().await;
    assert!(rows.len() >= 7, "{rows:?}");
    let text = format!("{rows:?}");
    for secret in [
        password,
        "a wrong password, typed in full",
        new_password,
        &token,
    ] {
        assert!(!text.contains(secret), "the trail holds {secret:?}");
    }
}

async fn admins_read_the_trail_filtered_and_paged_and_no_one_else_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.signed_in_admin().await;
    let (host_id, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let mut listings = Vec::new();
    for _ in 0..5 {
        listings.push(app.create_listing(&host, json!({})).await);
    }

    // Guests and hosts are refused, and the refusal is itself recorded.
    for token in [&guest, &host] {
        let res = app
            .get("/api/v1/audit")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = app.get("/api/v1/audit").send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let denials = app.denials().await;
    assert_eq!(
        denials,
        vec![
            (Some(guest_id), "endpoint".into(), None, "audit.read".into()),
            (Some(host_id), "endpoint".into(), None, "audit.read".into()),
        ]
    );

    let read = |query: String| {
        let req = app
            .get(&format!("/api/v1/audit?{query}"))
            .bearer_auth(&admin);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };
    // By action, newest first, two at a time, each row once.
    let mut seen = Vec::new();
    let mut query = "action=property.created&limit=2".to_owned();
    loop {
        let page = read(query.clone()).await;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["action"], "property.created");
            assert_eq!(item["actor_id"].as_i64(), Some(host_id));
            assert!(item["details"].is_object(), "{item}");
            seen.push(item["object_id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("action=property.created&limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut newest_first = listings.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    // By actor, by object, since a time.
    let page = read(format!("actor_id={guest_id}")).await;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["access.denied", "user.login_succeeded"]);
    let page = read(format!("object_type=property&object_id={}", listings[2])).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let tomorrow = day(1);
    let page = read(format!("since={tomorrow}")).await;
    assert_eq!(page["items"], json!([]));
    let page = read(format!("since={}&action=user.registered", day(0))).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);

    // Bad input: every bad field named, and unknown parameters refused.
    let res = app
        .get("/api/v1/audit?action=user.hacked&object_type=planet&since=soon&limit=0")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let mut fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["action", "limit", "object_type", "since"]);
    let res = app
        .get("/api/v1/audit?who=me")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_query").await;
}

async fn roost_audit_prints_the_trail_as_json_lines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let id = app.create_listing(&host, json!({})).await;
    let res = app.login("nobody@example.com", "password123").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::binary::roost(dir.path())
            .env("DATABASE_URL", app.database.env_url())
            .arg("audit")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            stderr,
        )
    };
    let today = day(0);
    let (ok, out, err) = run(&["--since", &today]);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.login_failed",
            "property.created",
            "user.login_succeeded",
            "user.registered"
        ]
    );
    assert_eq!(lines[1]["object_id"].as_i64(), Some(id));
    assert_eq!(lines[0]["details"]["reason"], "unknown_email");
    // The same rows the admin endpoint shows, filtered the same way.
    let (ok, out, _) = run(&["--since", &today, "--action", "property.created"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1);
    let (ok, out, _) = run(&["--since", &day(1)]);
    assert!(ok && out.is_empty(), "{out}");
    let (ok, _, err) = run(&["--since", "soon"]);
    assert!(!ok && err.contains("--since"), "{err}");
    let (ok, _, err) = run(&["--since", &today, "--action", "user.hacked"]);
    assert!(!ok && err.contains("--action"), "{err}");
}

/// On PostgreSQL an audit insert is a prepared statement the connection
/// keeps, whatever its number of rows, not one parsed and planned on every
/// write (Diesel caches no multi-row `VALUES` insert).
#[actix_web::test]
async fn a_single_audit_row_is_a_prepared_statement() {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    use roost::db::{AsConn, Conn, Db};
    use roost::domain::UserId;
    use roost::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    if !crate::helpers::postgres_ready("a_single_audit_row_is_a_prepared_statement").await {
        return;
    }
    let database = crate::helpers::TestDatabase::new(Backend::Postgres).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    // One connection, so every statement below runs on the same session.
    let db = Db::connect(&database.url, Some(1)).unwrap();
    let mut conn = db.get().await.unwrap();
    let actor = AuditActor {
        user: Some(UserId(7)),
        ip: Some("127.0.0.1".into()),
        request_id: Some("r".into()),
    };
    for i in 0..5 {
        let record = AuditRecord::new(Action::BookingHeld, ObjectType::Booking, Some(i));
        let now = chrono::Utc::now().naive_utc();
        roost::db::audit::record(&mut conn, &actor, &[record], now)
            .await
            .unwrap();
    }
    let three: Vec<AuditRecord> = (5..8)
        .map(|i| AuditRecord::new(Action::BookingExpired, ObjectType::Booking, Some(i)))
        .collect();
    let now = chrono::Utc::now().naive_utc();
    roost::db::audit::record(&mut conn, &AuditActor::system(), &three, now)
        .await
        .unwrap();
    let Conn::Postgres(c) = conn.as_conn() else {
        unreachable!("a PostgreSQL database")
    };
    let prepared: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements \
         WHERE statement LIKE 'INSERT INTO audit_log%'",
    )
    .load(c)
    .await
    .unwrap();
    assert_eq!(prepared[0].n, 1, "one prepared insert, used six times");
    let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM audit_log")
        .load(c)
        .await
        .unwrap();
    assert_eq!(rows[0].n, 8);
}
