//! /healthz, /readyz, /metrics, request ids.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, dead_redis_url, postgres_ready, redis_url};

both_backends!(
    healthz_and_readyz,
    request_id_is_echoed_or_made,
    metrics_count_requests_by_route_and_status,
    readyz_reports_redis_without_failing_on_it,
);

async fn healthz_and_readyz(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["redis"], "disabled");
}

async fn request_id_is_echoed_or_made(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .get("/healthz")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");

    let res = app
        .get("/healthz")
        .header("x-request-id", "bad id with spaces <script>")
        .send()
        .await
        .unwrap();
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let other = app.get("/healthz").send().await.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(made, other);
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..3 {
        app.get("/healthz").send().await.unwrap();
    }
    app.get("/api/v1/users/12345").send().await.unwrap();
    app.get("/api/v1/users/67890").send().await.unwrap();
    // Paths no route takes share one series, inside a scope or outside.
    app.get("/api/v1/no/such/thing").send().await.unwrap();
    app.get("/nothing-here").send().await.unwrap();
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(r#"roost_http_requests_total{method="GET",route="/healthz",status="200"} 3"#),
        "{text}"
    );
    // Routes by pattern, not by path: ids do not make new series.
    assert!(
        text.contains(
            r#"roost_http_requests_total{method="GET",route="/api/v1/users/{id}",status="401"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"roost_http_requests_total{method="GET",route="unmatched",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains("roost_http_request_duration_seconds_bucket"));
}

async fn readyz_reports_redis_without_failing_on_it(backend: Backend) {
    let url = redis_url();
    let app = TestApp::spawn_with(backend, |s| {
        s.redis_url = Some(roost::config::RedisUrl(url))
    })
    .await;
    // The relay connects in the background: "ok" once it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body: Value = app
            .get("/readyz")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["redis"] == "ok" {
            break;
        }
        assert_eq!(body["redis"], "degraded", "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "is Redis running at ROOST_TEST_REDIS_URL? {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let app = TestApp::spawn_with(backend, |s| s.redis_url = Some(dead_redis_url())).await;
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "Redis down degrades, it does not stop"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["redis"], "degraded");
}

#[actix_web::test]
async fn readyz_is_503_when_postgres_is_gone() {
    if !postgres_ready("readyz_is_503_when_postgres_is_gone").await {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );
    app.database.drop_now().await;
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["database"], "unavailable");
    // And a request needing the database gets a clean 503, not a 500.
    let res = app.login("ada@example.com", "password123").await;
    crate::helpers::assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
}

/// The server opens its whole database pool as it starts, so the first
/// burst of requests does not wait for connections: before any request,
/// PostgreSQL already has every one of them.
#[actix_web::test]
async fn the_pool_is_open_before_the_first_request() {
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    if !crate::helpers::postgres_ready("the_pool_is_open_before_the_first_request").await {
        return;
    }
    const POOL: usize = 12;
    let app = TestApp::spawn_with(Backend::Postgres, |s| s.database_pool_size = Some(POOL)).await;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = app.db.get().await.unwrap();
    let q = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid()",
    );
    let row: Count = roost::with_conn!(&mut conn, |c| q.get_result(c).await).unwrap();
    assert!(
        row.n >= POOL as i64,
        "{} of the server's {POOL} connections open",
        row.n
    );
}
