//! Profiles and account administration, as the right and the wrong user.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error};

both_backends!(
    update_my_name,
    change_password_needs_the_current_one_and_signs_out_other_sessions,
    of_password_changes_at_once_from_one_password_only_one_goes_through,
    guest_upgrades_to_host_but_never_to_admin,
    read_a_user_as_self_other_and_admin,
    admin_lists_users_page_by_page,
    only_admins_list_or_deactivate,
    deactivated_user_is_signed_out_and_cannot_sign_in,
    admin_cannot_deactivate_self_and_unknown_user_is_404,
);

async fn me(app: &TestApp, token: &str) -> Value {
    app.get_me(token).await.json().await.unwrap()
}

async fn update_my_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in("guest").await;
    let res = app
        .patch_me(&token, json!({"name": "  Grace Hopper "}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "Grace Hopper");
    assert_eq!(me(&app, &token).await["name"], "Grace Hopper");

    let res = app
        .patch_me(&token, json!({"name": "x".repeat(10_000)}))
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(me(&app, &token).await["name"], "Grace Hopper");

    let res = app
        .patch("/api/v1/users/me")
        .json(&json!({"name": "Anonymous"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn change_password_needs_the_current_one_and_signs_out_other_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com", "password123", "guest")
        .await;
    let token_of = |v: Value| v["token"].as_str().unwrap().to_owned();
    let phone = token_of(
        app.login("ada@example.com", "password123")
            .await
            .json()
            .await
            .unwrap(),
    );
    let laptop = token_of(
        app.login("ada@example.com", "password123")
            .await
            .json()
            .await
            .unwrap(),
    );

    // No current password.
    let res = app
        .patch_me(&laptop, json!({"password": "brand-new-pass"}))
        .await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "current_password");

    // Wrong current password.
    let res = app
        .patch_me(
            &laptop,
            json!({"password": "brand-new-pass", "current_password": "guess1234"}),
        )
        .await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["code"], "incorrect");
    assert_eq!(
        app.login("ada@example.com", "password123").await.status(),
        StatusCode::OK
    );

    // Right one.
    let res = app
        .patch_me(
            &laptop,
            json!({"password": "brand-new-pass", "current_password": "password123"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.login("ada@example.com", "password123").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", "brand-new-pass")
            .await
            .status(),
        StatusCode::OK
    );
    // The session that changed it goes on; the others are signed out.
    assert_eq!(me(&app, &laptop).await["email"], "ada@example.com");
    let res = app.get_me(&phone).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn guest_upgrades_to_host_but_never_to_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in("guest").await;

    let res = app.patch_me(&token, json!({"role": "admin"})).await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(me(&app, &token).await["role"], "guest");
    let id = me(&app, &token).await["id"].as_i64();
    let denied = (id, "user".to_owned(), id, "user.grant_admin".to_owned());
    assert_eq!(app.denials().await, vec![denied]);

    let res = app.patch_me(&token, json!({"role": "host"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(me(&app, &token).await["role"], "host");

    let res = app.patch_me(&token, json!({"role": "guest"})).await;
    let body = assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["code"], "invalid_role_change");

    let res = app.patch_me(&token, json!({"role": "superuser"})).await;
    assert_error(res, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(me(&app, &token).await["role"], "host");
}

async fn read_a_user_as_self_other_and_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, ada_token) = app.signed_in("guest").await;
    let (_, bob_token) = app.signed_in("host").await;
    let (_, admin_token) = app.signed_in_admin().await;
    let path = format!("/api/v1/users/{ada}");

    let res = app.get(&path).bearer_auth(&ada_token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get(&path).bearer_auth(&bob_token).send().await.unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let bob = me(&app, &bob_token).await["id"].as_i64();
    let denied = (bob, "user".to_owned(), Some(ada), "user.read".to_owned());
    assert_eq!(app.denials().await, vec![denied]);
    let res = app
        .get(&path)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["id"], ada);
    let res = app.get(&path).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn admin_lists_users_page_by_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.signed_in_admin().await;
    for _ in 0..6 {
        app.signed_in("guest").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = app.get("/api/v1/users?limit=3").bearer_auth(&admin);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        pages += 1;
        for u in page["items"].as_array().unwrap() {
            assert!(u.get("password_hash").is_none());
            seen.push(u["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen.len(), 7, "every user exactly once: {seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

    for bad in ["limit=0", "limit=101", "cursor=garbage", "limit=abc"] {
        let res = app
            .get(&format!("/api/v1/users?{bad}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let code = if bad == "limit=abc" {
            "invalid_query"
        } else {
            "validation_failed"
        };
        assert_error(res, StatusCode::BAD_REQUEST, code).await;
    }
}

async fn only_admins_list_or_deactivate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (victim, victim_token) = app.signed_in("guest").await;
    let (_, host_token) = app.signed_in("host").await;

    let res = app
        .get("/api/v1/users")
        .bearer_auth(&host_token)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    for action in ["deactivate", "activate"] {
        let res = app
            .post(&format!("/api/v1/users/{victim}/{action}"))
            .bearer_auth(&host_token)
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(me(&app, &victim_token).await["active"], true);
    let host = me(&app, &host_token).await["id"].as_i64();
    let denied = |kind: &str, id: Option<i64>, attempted: &str| {
        (host, kind.to_owned(), id, attempted.to_owned())
    };
    assert_eq!(
        app.denials().await,
        vec![
            denied("endpoint", None, "user.list"),
            denied("user", Some(victim), "user.deactivate"),
            denied("user", Some(victim), "user.activate"),
        ]
    );
}

async fn deactivated_user_is_signed_out_and_cannot_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com", "password123", "guest")
        .await;
    let body: Value = app
        .login("ada@example.com", "password123")
        .await
        .json()
        .await
        .unwrap();
    let (ada, token) = (
        body["user"]["id"].as_i64().unwrap(),
        body["token"].as_str().unwrap().to_owned(),
    );
    let (_, admin) = app.signed_in_admin().await;

    let res = app
        .post(&format!("/api/v1/users/{ada}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["active"], false);

    let res = app.get_me(&token).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app.login("ada@example.com", "password123").await;
    assert_error(res, StatusCode::FORBIDDEN, "account_deactivated").await;
    // A wrong password still says only "invalid credentials".
    let res = app.login("ada@example.com", "wrong-password").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let res = app
        .post(&format!("/api/v1/users/{ada}/activate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.login("ada@example.com", "password123").await.status(),
        StatusCode::OK
    );
}

async fn admin_cannot_deactivate_self_and_unknown_user_is_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin_id, admin) = app.signed_in_admin().await;
    let res = app
        .post(&format!("/api/v1/users/{admin_id}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::CONFLICT, "cannot_deactivate_self").await;
    let res = app
        .post("/api/v1/users/999999/deactivate")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(me(&app, &admin).await["active"], true);
}

/// Four changes at once, each checked against the same current password:
/// one goes through, the others find that password gone when they write
/// (they were checked before it changed) and are refused as incorrect.
async fn of_password_changes_at_once_from_one_password_only_one_goes_through(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .register("lin@example.com", "password123", "guest")
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let signed_in: Value = app
        .login("lin@example.com", "password123")
        .await
        .json()
        .await
        .unwrap();
    let token = signed_in["token"].as_str().unwrap().to_owned();
    let changes = (0..4).map(|i| {
        app.patch_me(
            &token,
            json!({"password": format!("new-password-{i}"), "current_password": "password123"}),
        )
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(changes)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let changed: Vec<usize> = (0..4).filter(|&i| statuses[i] == StatusCode::OK).collect();
    assert_eq!(changed.len(), 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    for i in 0..4 {
        let want = if i == changed[0] {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        let res = app
            .login("lin@example.com", &format!("new-password-{i}"))
            .await;
        assert_eq!(res.status(), want, "new-password-{i}");
    }
}
