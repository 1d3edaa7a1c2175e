//! The OpenAPI description as served, against the running server: every
//! documented operation is routed with exactly its documented methods, asks
//! for a token exactly when it says so, and the docs page and the spec are
//! served. Routing does not depend on the database, so this runs on SQLite.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, TestApp};

/// A documented path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{gateway}" => "sandbox",
            s if s.starts_with('{') => "1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[actix_web::test]
async fn every_documented_operation_is_routed_as_described() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.api_rate_limit_per_second = 10_000;
        s.auth_rate_limit_per_minute = 10_000;
    })
    .await;
    let res = app.get("/api/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let spec: Value = res.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let url = app.url(&concrete(path));
        let documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        // A method the spec does not give this path: 405, and `Allow`
        // names exactly the documented ones.
        let other = ["GET", "POST", "PUT", "PATCH", "DELETE"]
            .into_iter()
            .find(|m| !documented.iter().any(|d| d == m))
            .unwrap();
        let res = app
            .client
            .request(Method::from_bytes(other.as_bytes()).unwrap(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{other} {path}"
        );
        let mut allowed: Vec<String> = res.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        let mut want = documented.clone();
        allowed.sort();
        want.sort();
        assert_eq!(allowed, want, "Allow on {path}");

        // Each documented method is served, and asks for a token exactly
        // when the spec says it does.
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app.client.request(method.clone(), &url);
            if op.get("requestBody").is_some() {
                request = request.json(&serde_json::json!({}));
            }
            let res = request.send().await.unwrap();
            let status = res.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let secured = op.get("security").is_some();
            assert_eq!(
                status == StatusCode::UNAUTHORIZED,
                secured,
                "{method} {path} answered {status} without a token"
            );
            let documented_status = op["responses"]
                .as_object()
                .unwrap()
                .contains_key(status.as_str());
            assert!(
                documented_status,
                "{method} {path}: {status} is not documented"
            );
        }
    }
    assert_eq!(operations, 43);

    // The routes the spec leaves out are served too, and none is REST.
    for (method, path) in roost::api::UNDOCUMENTED {
        assert!(!path.starts_with("/api/v1"));
        let path = path.replace("{file}", "index.html");
        let request = match *method {
            "POST" => app
                .post(&path)
                .json(&serde_json::json!({"query": "{ __typename }"})),
            _ => app.get(&path),
        };
        let res = request.send().await.unwrap();
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_ne!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.get("/api/docs").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/api/docs/");
    let page = app
        .get("/api/docs/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("swagger-ui-bundle.js"));
    // Every script and stylesheet the page names is ours, relative, and served.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(page.contains(&format!("./{asset}")), "{asset}");
        let res = app.get(&format!("/api/docs/{asset}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
    let init = app
        .get("/api/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"url\": \"/api/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
}
