//! One error shape for every failure, and bad input changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error};

both_backends!(
    malformed_and_mistyped_bodies,
    bad_path_and_query,
    unknown_route_and_wrong_method,
    oversized_input_is_refused_and_nothing_stored,
    sql_looking_input_is_data_not_code,
);

async fn malformed_and_mistyped_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let send = |body: &'static str, content_type: &'static str| {
        app.post("/api/v1/auth/register")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        send("{\"email\": ", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    assert_error(
        send("", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    assert_error(
        send(
            "{\"email\": 5, \"password\": [], \"name\": null}",
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    assert_error(
        send("[1, 2, 3]", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    assert_error(
        send("email=a@b.c", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = app
        .post("/api/v1/auth/login")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(app.count("users").await, 0);
}

async fn bad_path_and_query(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.signed_in_admin().await;
    let res = app
        .get("/api/v1/users/not-a-number")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    let res = app
        .get("/api/v1/users/99999999999999999999999")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    let res = app
        .get("/api/v1/users?limit=lots")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_query").await;
}

async fn unknown_route_and_wrong_method(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/api/v1/no-such-thing").send().await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/nope").send().await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app.get("/api/v1/auth/login").send().await.unwrap();
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

async fn oversized_input_is_refused_and_nothing_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A 1 MB body.
    let huge = json!({
        "email": "big@example.com",
        "password": "password123",
        "name": "x".repeat(1024 * 1024),
    });
    let res = app
        .post("/api/v1/auth/register")
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A 10,000-character name fits the body limit but not the field.
    let res = app
        .post("/api/v1/auth/register")
        .json(&json!({
            "email": "long@example.com",
            "password": "password123",
            "name": "n".repeat(10_000),
        }))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "name");
    assert_eq!(body["error"]["details"][0]["code"], "too_long");

    // A 10,000-character email.
    let res = app
        .register(
            &format!("{}@example.com", "e".repeat(10_000)),
            "password123",
            "guest",
        )
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(app.count("users").await, 0);
}

async fn sql_looking_input_is_data_not_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .register(
            "x'; DROP TABLE users;--@example.com",
            "password123",
            "guest",
        )
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;

    let name = "Robert'); DROP TABLE users;--";
    let res = app
        .post("/api/v1/auth/register")
        .json(&json!({"email": "bobby@example.com", "password": "' OR '1'='1", "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], name);
    assert_eq!(app.count("users").await, 1, "the table is still there");

    let res = app.login("bobby@example.com", "' OR '1'='2").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = app.login("bobby@example.com", "' OR '1'='1").await;
    assert_eq!(res.status(), StatusCode::OK);
}
