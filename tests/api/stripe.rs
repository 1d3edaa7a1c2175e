//! The `stripe` gateway against a local stand-in for Stripe's API (Stripe
//! cannot be reached from here). The stand-in answers in Stripe's
//! documented shapes: form-encoded requests with a Bearer secret key,
//! PaymentIntents and Refunds as JSON, `Idempotency-Key` replays, client
//! confirmation with a `client_secret` and a test payment method (what
//! Stripe.js sends), and events signed with `Stripe-Signature` as Stripe
//! documents (HMAC-SHA256 over `"{t}.{body}"`, computed here independently
//! of Roost's own code).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_backends;
use crate::helpers::{Api, Backend, TestApp, assert_error, day};
use crate::payments::{booking, frame_of, until_booking};

both_backends!(
    a_refund_stripe_could_not_take_is_sent_again_under_its_key,
    a_guest_pays_through_stripe_and_a_cancellation_is_refunded,
    declines_forgeries_and_duplicates_change_nothing,
    a_retried_call_is_the_same_payment_intent,
);

const SECRET_KEY: &str = "sk_test_roost_standin";
const WEBHOOK_SECRET: &str = "whsec_standin_secret";

/// What the stand-in holds and has seen.
#[derive(Default)]
struct Stripe {
    intents: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    /// Idempotency-Key → (the request it answered, the answer).
    keys: HashMap<String, (String, Value)>,
    /// Every creating call: (path, its Idempotency-Key, its form).
    calls: Vec<(String, Option<String>, HashMap<String, String>)>,
    /// Where events go (Roost's webhook endpoint).
    webhook_url: Option<String>,
    /// Events sent, to send one again.
    sent: Vec<Vec<u8>>,
    /// Answer the next creating call with a cut-off body (the call is
    /// made; its answer is lost on the way).
    lose_next_answer: bool,
    /// Answer the next creating call 503 without making it (an outage).
    down_once: bool,
}

type Shared = web::Data<Mutex<Stripe>>;

struct StandIn {
    url: String,
    state: Arc<Mutex<Stripe>>,
    _server: actix_web::dev::ServerHandle,
}

impl StandIn {
    async fn start() -> Self {
        let state = web::Data::new(Mutex::new(Stripe::default()));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/v1/payment_intents", web::post().to(create_intent))
                .route("/v1/payment_intents/{id}", web::get().to(get_intent))
                .route(
                    "/v1/payment_intents/{id}/confirm",
                    web::post().to(confirm_intent),
                )
                .route("/v1/refunds", web::post().to(create_refund))
                .route("/v1/refunds/{id}", web::get().to(get_refund))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state: state.into_inner(),
            _server: handle,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Stripe) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn error(status: u16, kind: &str, code: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"error": {"type": kind, "code": code, "message": code}}))
}

fn authorized(req: &HttpRequest) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {SECRET_KEY}"))
}

/// Signs and posts an event to Roost, as Stripe does.
async fn send_event(state: &Shared, kind: &str, object: Value) {
    let body = serde_json::to_vec(&json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "api_version": "2024-06-20",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "type": kind,
        "data": {"object": object},
    }))
    .unwrap();
    let url = {
        let mut s = state.lock().unwrap();
        s.sent.push(body.clone());
        s.webhook_url.clone().unwrap()
    };
    post_event(&url, &body, chrono::Utc::now().timestamp(), WEBHOOK_SECRET).await;
}

/// `Stripe-Signature: t=…,v1=…` over `"{t}.{body}"`.
fn stripe_signature(t: i64, body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let v1: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={v1}")
}

async fn post_event(url: &str, body: &[u8], t: i64, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", stripe_signature(t, body, secret))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// Runs a creating call once per Idempotency-Key, as Stripe does: a retry
/// gets the first answer; the key with other parameters is an error.
fn keyed(
    state: &Shared,
    req: &HttpRequest,
    path: &str,
    form: HashMap<String, String>,
    make: impl FnOnce(&mut Stripe) -> Result<Value, Box<HttpResponse>>,
) -> HttpResponse {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut s = state.lock().unwrap();
    s.calls.push((path.to_owned(), key.clone(), form.clone()));
    if std::mem::take(&mut s.down_once) {
        return error(503, "api_error", "service_unavailable");
    }
    let mut sorted: Vec<_> = form.into_iter().collect();
    sorted.sort();
    let fingerprint = format!("{path} {sorted:?}");
    if let Some(key) = &key
        && let Some((first, answer)) = s.keys.get(key)
    {
        if *first != fingerprint {
            return error(400, "idempotency_error", "idempotency_key_in_use");
        }
        return HttpResponse::Ok()
            .insert_header(("idempotent-replayed", "true"))
            .json(answer.clone());
    }
    let answer = match make(&mut s) {
        Ok(answer) => answer,
        Err(refused) => return *refused,
    };
    if let Some(key) = key {
        s.keys.insert(key, (fingerprint, answer.clone()));
    }
    if std::mem::take(&mut s.lose_next_answer) {
        let whole = answer.to_string();
        return HttpResponse::Ok()
            .content_type("application/json")
            .body(whole[..whole.len() / 2].to_owned());
    }
    HttpResponse::Ok().json(answer)
}

async fn create_intent(
    state: Shared,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !authorized(&req) {
        return error(401, "invalid_request_error", "api_key_invalid");
    }
    let form = form.into_inner();
    keyed(&state, &req, "/v1/payment_intents", form.clone(), |s| {
        let amount: i64 = form
            .get("amount")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Box::new(error(400, "invalid_request_error", "parameter_missing")))?;
        let id = format!("pi_{}", uuid::Uuid::new_v4().simple());
        let intent = json!({
            "id": id, "object": "payment_intent", "amount": amount,
            "currency": form.get("currency"), "status": "requires_payment_method",
            "client_secret": format!("{id}_secret_{}", uuid::Uuid::new_v4().simple()),
            "metadata": {"booking_id": form.get("metadata[booking_id]")},
            "last_payment_error": null, "livemode": false,
        });
        s.intents.insert(id, intent.clone());
        Ok(intent)
    })
}

async fn get_intent(state: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if !authorized(&req) {
        return error(401, "invalid_request_error", "api_key_invalid");
    }
    match state.lock().unwrap().intents.get(&path.into_inner()) {
        Some(intent) => HttpResponse::Ok().json(intent),
        None => error(404, "invalid_request_error", "resource_missing"),
    }
}

/// What Stripe.js's `confirmPayment` posts with the publishable key: the
/// `client_secret` and a payment method (Stripe's test ones).
async fn confirm_intent(
    state: Shared,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let id = path.into_inner();
    let (kind, intent) = {
        let mut s = state.lock().unwrap();
        let Some(intent) = s.intents.get_mut(&id) else {
            return error(404, "invalid_request_error", "resource_missing");
        };
        if form.get("client_secret").map(String::as_str) != intent["client_secret"].as_str() {
            return error(
                400,
                "invalid_request_error",
                "payment_intent_invalid_parameter",
            );
        }
        match form.get("payment_method").map(String::as_str) {
            Some("pm_card_visa") => {
                intent["status"] = json!("succeeded");
                intent["last_payment_error"] = Value::Null;
                ("payment_intent.succeeded", intent.clone())
            }
            _ => {
                intent["last_payment_error"] = json!({"type": "card_error",
                    "code": "card_declined", "decline_code": "generic_decline"});
                ("payment_intent.payment_failed", intent.clone())
            }
        }
    };
    send_event(&state, kind, intent.clone()).await;
    HttpResponse::Ok().json(intent)
}

async fn create_refund(
    state: Shared,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !authorized(&req) {
        return error(401, "invalid_request_error", "api_key_invalid");
    }
    let form = form.into_inner();
    let mut made = None;
    let answer = keyed(&state, &req, "/v1/refunds", form.clone(), |s| {
        let pi = form.get("payment_intent").cloned().unwrap_or_default();
        let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
        let Some(intent) = s.intents.get(&pi) else {
            return Err(Box::new(error(
                404,
                "invalid_request_error",
                "resource_missing",
            )));
        };
        if intent["status"] != "succeeded"
            || amount <= 0
            || amount > intent["amount"].as_i64().unwrap()
        {
            return Err(Box::new(error(
                400,
                "invalid_request_error",
                "amount_too_large",
            )));
        }
        let refund = json!({
            "id": format!("re_{}", uuid::Uuid::new_v4().simple()), "object": "refund",
            "amount": amount, "currency": intent["currency"], "payment_intent": pi,
            "status": "succeeded", "metadata": {"refund_id": form.get("metadata[refund_id]")},
        });
        s.refunds
            .insert(refund["id"].as_str().unwrap().to_owned(), refund.clone());
        made = Some(refund.clone());
        Ok(refund)
    });
    if let Some(refund) = made {
        send_event(&state, "refund.created", refund).await;
    }
    answer
}

async fn get_refund(state: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if !authorized(&req) {
        return error(401, "invalid_request_error", "api_key_invalid");
    }
    match state.lock().unwrap().refunds.get(&path.into_inner()) {
        Some(refund) => HttpResponse::Ok().json(refund),
        None => error(404, "invalid_request_error", "resource_missing"),
    }
}

/// Roost configured for Stripe at the stand-in, which sends it its events.
async fn spawn(backend: Backend) -> (TestApp, StandIn) {
    spawn_with(backend, |_| {}).await
}

async fn spawn_with(
    backend: Backend,
    configure: impl FnOnce(&mut roost::config::Settings),
) -> (TestApp, StandIn) {
    let stripe = StandIn::start().await;
    let app = TestApp::spawn_with(backend, |s| {
        configure(s);
        s.payments.gateway = Some(roost::config::GatewayKind::Stripe);
        s.payments.stripe = Some(roost::config::StripeSettings {
            secret_key: roost::config::Secret(SECRET_KEY.into()),
            webhook_secrets: vec![roost::config::Secret(WEBHOOK_SECRET.into())],
            api_base: stripe.url.clone(),
        });
    })
    .await;
    let url = app.url("/webhooks/payments/stripe");
    stripe.with(|s| s.webhook_url = Some(url));
    (app, stripe)
}

async fn start_payment(app: &Api, token: &str, booking: i64) -> reqwest::Response {
    app.post(&format!("/api/v1/bookings/{booking}/payments"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Confirms the PaymentIntent with a test payment method, as Stripe.js
/// does in the guest's browser with the `client_secret`.
async fn confirm(stripe: &StandIn, payment: &Value, method: &str) {
    let secret = payment["next_action"]["client_secret"].as_str().unwrap();
    let intent = secret.split("_secret_").next().unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v1/payment_intents/{intent}/confirm",
            stripe.url
        ))
        .form(&[("client_secret", secret), ("payment_method", method)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn a_guest_pays_through_stripe_and_a_cancellation_is_refunded(backend: Backend) {
    let (app, stripe) = spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(20), &day(23)).await;
    let res = start_payment(&app, &guest, booking_id).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let payment: Value = res.json().await.unwrap();
    assert_eq!(payment["gateway"], "stripe");
    assert_eq!(payment["next_action"]["type"], "stripe_sdk");
    assert!(
        payment["next_action"]["client_secret"]
            .as_str()
            .unwrap()
            .contains("_secret_")
    );
    // What Roost sent: form-encoded, keyed by the booking.
    let (path, key, form) = stripe.with(|s| s.calls[0].clone());
    assert_eq!(path, "/v1/payment_intents");
    assert_eq!(
        key.as_deref(),
        Some(format!("roost-booking-{booking_id}-payment-1").as_str())
    );
    assert_eq!(form["amount"], payment["amount"].to_string());
    assert_eq!(form["currency"], "eur");
    assert_eq!(form["metadata[booking_id]"], booking_id.to_string());

    confirm(&stripe, &payment, "pm_card_visa").await;
    assert_eq!(
        frame_of(&mut guest_ws, "payment").await["kind"],
        "payment_succeeded"
    );
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("confirmed"), Some("succeeded"))
    );

    // The host cancels: all of it back, through Stripe's Refunds.
    let res = app
        .post(&format!("/api/v1/bookings/{booking_id}/cancel"))
        .bearer_auth(&host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), &told["amount"]),
        (Some("payment_refunded"), &payment["amount"])
    );
    let (path, key, form) = stripe.with(|s| s.calls[1].clone());
    assert_eq!(path, "/v1/refunds");
    let refund_id = told["refund_id"].as_i64().unwrap();
    assert_eq!(
        key.as_deref(),
        Some(format!("roost-refund-{refund_id}").as_str())
    );
    assert_eq!(form["metadata[refund_id]"], refund_id.to_string());
    assert_eq!(form["amount"], payment["amount"].to_string());
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(read["payment"]["status"], "refunded");
    assert!(read["refunds"][0]["status"] == "succeeded");
}

async fn declines_forgeries_and_duplicates_change_nothing(backend: Backend) {
    let (app, stripe) = spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let booking_id = app.booked(&guest, id, &day(20), &day(23)).await;
    let payment: Value = start_payment(&app, &guest, booking_id)
        .await
        .json()
        .await
        .unwrap();
    confirm(&stripe, &payment, "pm_card_chargeDeclined").await;
    let read = until_booking(&app, &guest, booking_id, |b| {
        b["payment"]["failure_reason"] == "generic_decline"
    })
    .await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("pending"), Some("requires_payment_method"))
    );

    let url = app.url("/webhooks/payments/stripe");
    let sent = stripe.with(|s| s.sent[0].clone());
    let now = chrono::Utc::now().timestamp();
    // A forged signature, a stale one, none: 400 with the reason.
    let res = post_event(&url, &sent, now, "whsec_wrong").await;
    assert_error(res, StatusCode::BAD_REQUEST, "signature_mismatch").await;
    let res = post_event(&url, &sent, now - 301, WEBHOOK_SECRET).await;
    assert_error(res, StatusCode::BAD_REQUEST, "signature_stale").await;
    let res = reqwest::Client::new()
        .post(&url)
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "signature_missing").await;
    assert_eq!(app.audit_rows("webhook.rejected").await.len(), 3);
    // Any one matching v1 of several will do (a rotation).
    let header = format!(
        "{},v1={}",
        stripe_signature(now, &sent, WEBHOOK_SECRET),
        "00".repeat(32)
    );
    let res = reqwest::Client::new()
        .post(&url)
        .header("stripe-signature", header)
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // That was a duplicate of the decline: nothing new.
    assert_eq!(app.audit_rows("payment.failed").await.len(), 1);
    // An event Roost does not act on is acknowledged.
    let other = serde_json::to_vec(&json!({"id": "evt_other", "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}}}))
    .unwrap();
    assert_eq!(
        post_event(&url, &other, now, WEBHOOK_SECRET).await.status(),
        StatusCode::OK
    );

    // Then a good card: confirmed, once, however often its event comes.
    confirm(&stripe, &payment, "pm_card_visa").await;
    until_booking(&app, &guest, booking_id, |b| b["status"] == "confirmed").await;
    let success = stripe.with(|s| s.sent.last().unwrap().clone());
    for _ in 0..2 {
        let res = post_event(
            &url,
            &success,
            chrono::Utc::now().timestamp(),
            WEBHOOK_SECRET,
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(app.audit_rows("booking.confirmed").await.len(), 1);
    assert_eq!(app.audit_rows("payment.succeeded").await.len(), 1);
}

/// The answer to Roost's first create is lost on the way; the guest tries
/// again, and Roost's retry carries the same Idempotency-Key: Stripe
/// replays the first PaymentIntent, and no second one exists.
async fn a_retried_call_is_the_same_payment_intent(backend: Backend) {
    let (app, stripe) = spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let booking_id = app.booked(&guest, id, &day(20), &day(23)).await;
    stripe.with(|s| s.lose_next_answer = true);
    let res = start_payment(&app, &guest, booking_id).await;
    assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert_eq!(app.count("payments").await, 0);
    let res = start_payment(&app, &guest, booking_id).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let payment: Value = res.json().await.unwrap();
    let (calls, intents) = stripe.with(|s| (s.calls.clone(), s.intents.len()));
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].1, calls[1].1,
        "the retry carries the same Idempotency-Key"
    );
    assert_eq!(intents, 1, "one PaymentIntent, not two");
    let intent = stripe.with(|s| s.intents.keys().next().unwrap().clone());
    assert!(
        payment["next_action"]["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&intent)
    );
    assert_eq!(app.count("payments").await, 1);
}

/// Stripe is down when the refund is due: the cancellation stands, the
/// refund stays owed, and the next round sends it under the same key.
async fn a_refund_stripe_could_not_take_is_sent_again_under_its_key(backend: Backend) {
    let (app, stripe) = spawn_with(backend, |s| {
        s.payments.reconcile_after = std::time::Duration::from_secs(1);
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let booking_id = app.booked(&guest, id, &day(20), &day(23)).await;
    let payment: Value = start_payment(&app, &guest, booking_id)
        .await
        .json()
        .await
        .unwrap();
    confirm(&stripe, &payment, "pm_card_visa").await;
    assert_eq!(
        frame_of(&mut guest_ws, "payment").await["kind"],
        "payment_succeeded"
    );
    stripe.with(|s| s.down_once = true);
    app.cancel(&host, booking_id).await;
    let told = frame_of(&mut guest_ws, "payment").await;
    assert_eq!(
        (told["kind"].as_str(), &told["amount"]),
        (Some("payment_refunded"), &payment["amount"])
    );
    let refunds: Vec<_> = stripe.with(|s| {
        s.calls
            .iter()
            .filter(|c| c.0 == "/v1/refunds")
            .cloned()
            .collect()
    });
    assert_eq!(refunds.len(), 2, "refused once, then sent again");
    assert_eq!(refunds[0].1, refunds[1].1, "under the same Idempotency-Key");
    assert_eq!(stripe.with(|s| s.refunds.len()), 1);
    let read = booking(&app, &guest, booking_id).await;
    assert_eq!(read["payment"]["status"], "refunded");
}
