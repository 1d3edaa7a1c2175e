//! Register, login, logout, tokens.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDatabase, assert_error, eventually, listing};

both_backends!(
    register_returns_the_user_without_secrets,
    register_normalizes_email_and_refuses_duplicates,
    concurrent_registrations_of_one_email_make_one_account,
    register_reports_every_bad_field_and_stores_nothing,
    nobody_registers_as_admin,
    login_issues_a_token_that_works,
    wrong_password_and_unknown_email_look_the_same,
    logout_revokes_the_token,
    expired_token_is_refused,
    missing_or_malformed_token_is_refused,
    tokens_are_stored_only_as_hashes,
    a_sign_out_on_one_node_holds_on_another,
    a_password_change_on_one_node_signs_out_the_other_tokens_on_another,
    a_role_change_or_deactivation_on_one_node_holds_on_another,
);

async fn register_returns_the_user_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.register("ada@example.com", "password123", "host").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["role"], "host");
    assert_eq!(body["active"], true);
    assert!(body["id"].is_i64());
    let text = body.to_string();
    assert!(!text.contains("password"), "{text}");
    assert!(!text.contains("argon2"), "{text}");

    // The role defaults to guest.
    let res = app
        .post("/api/v1/auth/register")
        .json(&json!({"email": "bob@example.com", "password": "password123", "name": "Bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "guest");
}

async fn register_normalizes_email_and_refuses_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .register("  Ada@Example.COM ", "password123", "guest")
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["email"],
        "ada@example.com"
    );

    let res = app
        .register("ADA@example.com", "other-password", "host")
        .await;
    assert_error(res, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(app.count("users").await, 1);

    // And the normalized address signs in whatever its case.
    let res = app.login("ada@EXAMPLE.com", "password123").await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn concurrent_registrations_of_one_email_make_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..8).map(|_| app.register("race@example.com", "password123", "guest"));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 7), "{statuses:?}");
    assert_eq!(app.count("users").await, 1);
}

async fn register_reports_every_bad_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .post("/api/v1/auth/register")
        .json(
            &json!({"email": "not-an-email", "password": "short", "name": "   ", "role": "pilot"}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    let mut fields: Vec<(String, String)> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("email".into(), "invalid_email".into()),
            ("name".into(), "required".into()),
            ("password".into(), "password_too_short".into()),
            ("role".into(), "invalid_role".into()),
        ]
    );

    let res = app
        .post("/api/v1/auth/register")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 3);

    let res = app
        .register("long@example.com", &"p".repeat(129), "guest")
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(app.count("users").await, 0);
}

async fn nobody_registers_as_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .register("sneaky@example.com", "password123", "admin")
        .await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "role");
    assert_eq!(app.count("users").await, 0);
}

async fn login_issues_a_token_that_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com", "password123", "guest")
        .await;
    let res = app.login("ada@example.com", "password123").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 32 random bytes");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["email"], "ada@example.com");
    let expires: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::hours(23) && ttl <= chrono::Duration::hours(24));

    let me: Value = app.get_me(token).await.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
}

async fn wrong_password_and_unknown_email_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com", "password123", "guest")
        .await;

    let wrong = app.login("ada@example.com", "not-the-password").await;
    let wrong_headers = wrong.headers().clone();
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = app.login("nobody@example.com", "not-the-password").await;
    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong, unknown, "the two failures must be indistinguishable");
    assert_eq!(wrong_headers["www-authenticate"], "Bearer");

    // Similar time: an unknown email still pays for a password hash. Without
    // the decoy it would answer in a fraction of the time (no hashing at all).
    async fn timed(app: &TestApp, email: &str) -> Duration {
        let started = Instant::now();
        app.login(email, "not-the-password").await;
        started.elapsed()
    }
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        known.push(timed(&app, "ada@example.com").await);
        unknown.push(timed(&app, "nobody@example.com").await);
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[2], unknown[2]);
    assert!(
        u * 3 >= k,
        "unknown email answered much faster than a wrong password: {u:?} vs {k:?}"
    );
}

async fn logout_revokes_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in("guest").await;
    let res = app.logout(&token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get_me(&token).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app.logout(&token).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn expired_token_is_refused(backend: Backend) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use roost::db::schema::auth_tokens;

    // The expiry is moved in the database behind the server's back, which
    // no real token's ever is: memory would keep the expiry it read (its
    // own unit tests show it honours that one), so it is off here.
    let app = TestApp::spawn_with(backend, |s| s.token_cache_max_age = Duration::ZERO).await;
    let (_, token) = app.signed_in("guest").await;
    let res = app.get_me(&token).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Move the token's expiry one second into the past.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).naive_utc();
    let mut conn = app.db.get().await.unwrap();
    let hash = roost::auth::token::hash(&token);
    let q = diesel::update(auth_tokens::table.filter(auth_tokens::token_hash.eq(hash)))
        .set(auth_tokens::expires_at.eq(past));
    let updated = roost::with_conn!(&mut conn, |c| q.execute(c).await).unwrap();
    assert_eq!(updated, 1);

    let res = app.get_me(&token).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn missing_or_malformed_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in("guest").await;
    let cases: Vec<Option<String>> = vec![
        None,
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Basic {token}")),
        Some("Bearer not-a-token".into()),
        Some(format!("Bearer {}x", &token[..42])),
        Some(format!("Bearer {token}'; DROP TABLE users;--")),
    ];
    for header in cases {
        let mut req = app.get("/api/v1/users/me");
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let res = req.send().await.unwrap();
        assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // The scheme is case-insensitive; the genuine token still works.
    let res = app
        .get("/api/v1/users/me")
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn tokens_are_stored_only_as_hashes(backend: Backend) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use roost::db::schema::auth_tokens;

    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in("guest").await;
    let mut conn = app.db.get().await.unwrap();
    let q = auth_tokens::table.select(auth_tokens::token_hash);
    let stored: Vec<String> = roost::with_conn!(&mut conn, |c| q.load(c).await).unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    assert_eq!(stored[0], roost::auth::token::hash(&token));
}

/// Two servers on one database, no Redis: what one revokes, the other
/// learns from its watch (`crate::auth::cache`), Redis being only the
/// faster word. Each remembers sign-ins for a minute, longer than
/// `eventually` waits, so only the watch can make these pass.
async fn two_nodes(backend: Backend) -> (TestApp, TestApp) {
    let a = TestApp::spawn(backend).await;
    let b = TestApp::spawn_on(TestDatabase::shared(a.database.url.clone()), |_| {}).await;
    (a, b)
}

/// Node B answers `token` from memory (asked twice: the first remembers).
async fn remembered_by(node: &TestApp, token: &str) {
    let before = node.metric("roost_token_checks_total{by=\"memory\"}").await;
    for _ in 0..2 {
        assert_eq!(node.get_me(token).await.status(), StatusCode::OK);
    }
    let after = node.metric("roost_token_checks_total{by=\"memory\"}").await;
    assert!(after > before, "node B never answered from memory");
}

/// Node B comes to refuse `token` (401) within `eventually`'s wait.
async fn refused_by(node: &TestApp, token: &str, what: &str) {
    eventually(what, || async {
        node.get_me(token).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
}

async fn a_sign_out_on_one_node_holds_on_another(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
    let (_, token) = a.signed_in("guest").await;
    remembered_by(&b, &token).await;
    let res = a.logout(&token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Node A, which signed it out, refuses it at once.
    assert_eq!(a.get_me(&token).await.status(), StatusCode::UNAUTHORIZED);
    refused_by(&b, &token, "node B refuses the signed-out token").await;
}

async fn a_password_change_on_one_node_signs_out_the_other_tokens_on_another(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(
        a.register(&email, "password123", "guest").await.status(),
        StatusCode::CREATED
    );
    let token = |res: reqwest::Response| async move {
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    };
    let (phone, laptop) = (
        token(a.login(&email, "password123").await).await,
        token(a.login(&email, "password123").await).await,
    );
    remembered_by(&b, &phone).await;
    remembered_by(&b, &laptop).await;
    let res = a
        .patch("/api/v1/users/me")
        .bearer_auth(&laptop)
        .json(&json!({"password": "a new password", "current_password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    refused_by(&b, &phone, "node B refuses the phone's token").await;
    // The token that changed the password stays signed in.
    assert_eq!(b.get_me(&laptop).await.status(), StatusCode::OK);
}

async fn a_role_change_or_deactivation_on_one_node_holds_on_another(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
    let (guest_id, token) = a.signed_in("guest").await;
    let create = || async {
        b.post("/api/v1/properties")
            .bearer_auth(&token)
            .json(&listing(json!({})))
            .send()
            .await
            .unwrap()
            .status()
    };
    remembered_by(&b, &token).await;
    assert_eq!(
        create().await,
        StatusCode::FORBIDDEN,
        "a guest lists nothing"
    );
    let res = a
        .patch("/api/v1/users/me")
        .bearer_auth(&token)
        .json(&json!({"role": "host"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    eventually("node B lets the new host list", || async {
        create().await == StatusCode::CREATED
    })
    .await;

    remembered_by(&b, &token).await;
    let (_, admin) = a.signed_in_admin().await;
    let res = a
        .post(&format!("/api/v1/users/{guest_id}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    refused_by(&b, &token, "node B refuses the deactivated user").await;
}
