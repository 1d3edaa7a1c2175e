//! CORS: an allowed origin's preflight and request get their headers; any
//! other origin gets none (and the request is served, for the browser to
//! withhold); credentials are never allowed.

use reqwest::{Method, StatusCode};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use roost::config::CorsOrigins;

both_backends!(
    an_allowed_origin_is_answered_and_others_get_no_cors_headers,
    any_origin_is_a_wildcard_without_credentials,
);

const ALLOWED: &str = "https://app.example.com";

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.api
        .client
        .request(Method::OPTIONS, app.url("/api/v1/bookings"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

async fn an_allowed_origin_is_answered_and_others_get_no_cors_headers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.cors_origins = CorsOrigins::List(vec![ALLOWED.into(), "http://localhost:3000".into()]);
    })
    .await;

    let res = preflight(&app, ALLOWED).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    let methods = header(&res, "access-control-allow-methods").unwrap();
    for m in ["get", "post", "put", "patch", "delete"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = header(&res, "access-control-allow-headers").unwrap();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(h), "{headers}");
    }
    assert_eq!(header(&res, "access-control-allow-credentials"), None);
    assert!(header(&res, "access-control-max-age").is_some());

    // The request itself: answered with the origin, the headers a client
    // reads exposed.
    let (_, token) = app.signed_in("guest").await;
    let res = app
        .get("/api/v1/users/me")
        .bearer_auth(&token)
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    let exposed = header(&res, "access-control-expose-headers").unwrap();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("idempotent-replayed"),
        "{exposed}"
    );
    assert!(header(&res, "vary").is_some_and(|v| v.contains("origin")));
    // An error answer carries them too, so the page can read the code.
    let res = app
        .get("/api/v1/users/me")
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );

    // Another origin: no CORS headers on the preflight or the request.
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.example",
    ] {
        let res = preflight(&app, origin).await;
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            None,
            "{origin}"
        );
        assert_eq!(
            header(&res, "access-control-allow-methods"),
            None,
            "{origin}"
        );
        let res = app
            .get("/api/v1/properties")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
    // The sandbox processor keeps its own rules: any page may post a card.
    let res = app
        .api
        .client
        .request(
            Method::OPTIONS,
            app.url("/sandbox/v1/payment_intents/pi_x/confirm"),
        )
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    // Roost's own pages post to their own origin: served as ever.
    let own = app.address.clone();
    let res = app
        .post("/api/v1/auth/login")
        .header("Origin", own)
        .json(&serde_json::json!({"email": "nobody@example.com", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn any_origin_is_a_wildcard_without_credentials(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.cors_origins = CorsOrigins::Any).await;
    let res = preflight(&app, "https://anywhere.example").await;
    assert!(res.status().is_success());
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(header(&res, "access-control-allow-credentials"), None);
    let res = app
        .get("/api/v1/properties")
        .header("Origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some("*")
    );

    // By default (no origins): none.
    let plain = TestApp::spawn(backend).await;
    let res = preflight(&plain, ALLOWED).await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    let res = plain
        .get("/api/v1/properties")
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}
