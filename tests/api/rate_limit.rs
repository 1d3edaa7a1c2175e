//! Per-IP rate limits on register/login and on the whole API.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error};

both_backends!(
    login_and_register_share_a_per_minute_limit,
    api_limit_applies_to_every_endpoint,
    forwarded_for_counts_only_behind_a_trusted_proxy,
);

async fn login_and_register_share_a_per_minute_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.auth_rate_limit_per_minute = 3).await;
    assert_eq!(
        app.register("ada@example.com", "password123", "guest")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.login("ada@example.com", "password123").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("ada@example.com", "wrong-pass").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let res = app.login("ada@example.com", "password123").await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "one token every 20 s: {retry_after}"
    );
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let res = app
        .register("bob@example.com", "password123", "guest")
        .await;
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        app.count("users").await,
        1,
        "a limited request changes nothing"
    );

    // Other endpoints are not under the auth limit.
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/users/me").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn api_limit_applies_to_every_endpoint(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.api_rate_limit_per_second = 5).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(app.get("/api/v1/users/me").send().await.unwrap().status());
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // A burst of 5 passes; most of the rest (sent within a second or two) do not.
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(limited >= 3, "{statuses:?}");
    // Operations endpoints stay outside the API limit.
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
}

async fn forwarded_for_counts_only_behind_a_trusted_proxy(backend: Backend) {
    // Untrusted: X-Forwarded-For is ignored, so changing it does not escape the limit.
    let app = TestApp::spawn_with(backend, |s| s.auth_rate_limit_per_minute = 1).await;
    let send = |ip: &'static str| login_via(&app, ip);
    assert_eq!(send("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(send("198.51.100.2").await, StatusCode::TOO_MANY_REQUESTS);

    // Trusted proxy (the test client on loopback): each forwarded client has its own bucket.
    let app = TestApp::spawn_with(backend, |s| {
        s.auth_rate_limit_per_minute = 1;
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let send = |ip: &'static str| login_via(&app, ip);
    assert_eq!(send("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(send("198.51.100.2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(send("198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
}

/// A login attempt that claims, through `X-Forwarded-For`, to come from `ip`; its status.
async fn login_via(app: &TestApp, ip: &str) -> StatusCode {
    app.post("/api/v1/auth/login")
        .header("x-forwarded-for", ip)
        .json(&serde_json::json!({"email": "a@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap()
        .status()
}
