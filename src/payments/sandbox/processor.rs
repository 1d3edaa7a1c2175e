//! The sandbox processor's side, served under `/sandbox/v1` while the
//! sandbox is the configured gateway:
//!
//! - `POST /sandbox/v1/payment_intents` (Bearer: the processor's API key)
//!   `{amount, currency, reference}` → a payment awaiting a card, with a
//!   `next_action.confirm_url`;
//! - `GET /sandbox/v1/payment_intents/{id}` (Bearer);
//! - `POST /sandbox/v1/payment_intents/{id}/confirm?client_secret=…`
//!   `{card_number, exp_month, exp_year, cvc}`: where the payer's client
//!   posts the card, as a browser posts to a real processor (open to any
//!   origin, CORS preflight included);
//! - `POST /sandbox/v1/refunds` (Bearer) `{payment_intent, amount?,
//!   reference?}`, and `GET /sandbox/v1/refunds/{id}`.
//!
//! Its creating calls honour an `Idempotency-Key` as a real processor's
//! do: a retry with the key is answered with the first answer, and the key
//! reused for another request is refused.
//!
//! Its answers and errors are a processor's (`{"error": {type, code,
//! message}}`), not Roost's. What happened reaches Roost only as signed
//! webhooks, delivered by [`run`] from the durable outbox with retries.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use super::cards::{self, Outcome};
use super::{WireData, WireEvent};
use crate::db::sandbox::{self, Intent, SandboxRefund};
use crate::db::{Db, now};
use crate::error::ApiError;
use crate::payments::signature;
use crate::payments::{
    Card, EventKind, GatewayPayment, GatewayRefund, GatewayStatus, NextAction, RefundStatus,
};
use crate::write_tx;

/// How often the worker looks for due work when nothing wakes it.
const POLL: Duration = Duration::from_millis(200);
/// A taken delivery is not retried by another worker before this.
const DELIVERY_LEASE: Duration = Duration::from_secs(30);
const MAX_BACKOFF_SECS: i64 = 60;

/// The processor: its store, its keys, where it delivers, how it is reached.
pub struct Sandbox {
    pub db: Db,
    pub api_key: String,
    /// Every delivery is signed with each (several during a rotation).
    pub signing_secrets: Vec<String>,
    /// The processor's address as payers reach it (for `confirm_url`).
    pub public_base: String,
    /// Where webhooks go.
    pub webhook_url: String,
    /// The delayed card succeeds after this.
    pub delay: Duration,
    wake: Notify,
    http: reqwest::Client,
}

impl Sandbox {
    pub fn new(
        db: Db,
        api_key: String,
        signing_secrets: Vec<String>,
        public_base: String,
        webhook_url: String,
        delay: Duration,
    ) -> Self {
        Self {
            db,
            api_key,
            signing_secrets,
            public_base,
            webhook_url,
            delay,
            wake: Notify::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    fn view(&self, intent: &Intent) -> GatewayPayment {
        let status = match intent.status.as_str() {
            "processing" => GatewayStatus::Processing,
            "succeeded" => GatewayStatus::Succeeded,
            "canceled" => GatewayStatus::Canceled,
            _ => GatewayStatus::RequiresPaymentMethod,
        };
        let next_action = (status == GatewayStatus::RequiresPaymentMethod).then(|| NextAction {
            kind: "confirm_card".into(),
            confirm_url: Some(format!(
                "{}/sandbox/v1/payment_intents/{}/confirm?client_secret={}",
                self.public_base, intent.id, intent.client_secret
            )),
            client_secret: None,
        });
        GatewayPayment {
            id: intent.id.clone(),
            status,
            amount: intent.amount,
            currency: intent.currency.clone(),
            reference: intent.reference.clone(),
            failure: intent.last_error.clone(),
            card: match (&intent.card_brand, &intent.card_last4) {
                (Some(brand), Some(last4)) => Some(Card {
                    brand: brand.clone(),
                    last4: last4.clone(),
                }),
                _ => None,
            },
            amount_refunded: intent.amount_refunded,
            next_action,
        }
    }

    /// An event about `intent` as of now, with a fresh id.
    fn event(&self, kind: EventKind, intent: &Intent) -> (String, String) {
        let mut object = self.view(intent);
        object.next_action = None;
        wire(kind, serde_json::to_value(object).unwrap_or_default())
    }
}

/// An event about `object`, with a fresh id: (its id, its body).
fn wire(kind: EventKind, object: serde_json::Value) -> (String, String) {
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let event = WireEvent {
        id: id.clone(),
        kind: kind.as_str().to_owned(),
        created: chrono::Utc::now().timestamp(),
        data: WireData { object },
    };
    (id, serde_json::to_string(&event).unwrap_or_default())
}

/// A refund as the processor reports it.
fn refund_view(refund: &SandboxRefund) -> GatewayRefund {
    GatewayRefund {
        id: refund.id.clone(),
        payment: refund.payment_intent.clone(),
        amount: refund.amount,
        status: RefundStatus::Succeeded,
        reference: refund.reference.clone(),
        failure: None,
    }
}

/// The request's `Idempotency-Key`, if it sent one.
fn idempotency_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .map(str::to_owned)
}

/// What a keyed call answers: made now, or the key's first answer.
enum Keyed<T> {
    Fresh(T),
    Again(StatusCode, String),
    /// The key was used for another request.
    Reused,
}

/// Inside the call's transaction: the first answer to `key`, if it had one.
async fn recall<T>(
    c: &mut crate::db::Conn<'_>,
    key: Option<&str>,
    request: &str,
) -> Result<Option<Keyed<T>>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    Ok(sandbox::find_key(c, key)
        .await?
        .map(|(first, status, body)| {
            if first != request {
                return Keyed::Reused;
            }
            let status = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            Keyed::Again(status, body)
        }))
}

fn answer_keyed<T: serde::Serialize>(result: Result<Keyed<T>, ApiError>) -> HttpResponse {
    match result {
        Err(e) => unavailable(e),
        Ok(Keyed::Fresh(body)) => HttpResponse::Ok().json(body),
        Ok(Keyed::Again(status, body)) => HttpResponse::build(status)
            .content_type("application/json")
            .insert_header(("idempotent-replayed", "true"))
            .body(body),
        Ok(Keyed::Reused) => error(
            StatusCode::BAD_REQUEST,
            "idempotency_error",
            "idempotency_key_reused",
            "this Idempotency-Key was used with another request",
        ),
    }
}

/// A processor's error answer.
fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({"error": {"type": kind, "code": code, "message": message}}))
}

/// The processor's routes (registered only while the sandbox is the gateway).
pub fn routes(sandbox: Arc<Sandbox>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            web::scope("/sandbox/v1")
                .app_data(web::Data::from(sandbox))
                .route("/payment_intents", web::post().to(create_intent))
                .route("/payment_intents/{id}", web::get().to(get_intent))
                .service(
                    // Posted to by the payer's browser from the merchant's
                    // page, another origin: open to any, as a processor's
                    // card endpoint is (the client secret is the authority).
                    web::resource("/payment_intents/{id}/confirm")
                        .wrap(
                            DefaultHeaders::new()
                                .add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                                .add((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
                                .add((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
                                .add((header::ACCESS_CONTROL_MAX_AGE, "600")),
                        )
                        .route(web::post().to(confirm_intent))
                        .route(web::method(Method::OPTIONS).to(HttpResponse::NoContent)),
                )
                .route("/refunds", web::post().to(create_refund))
                .route("/refunds/{id}", web::get().to(get_refund)),
        );
    }
}

fn authorized(req: &HttpRequest, sandbox: &Sandbox) -> Result<(), Box<HttpResponse>> {
    let given = crate::auth::extractor::bearer(req).unwrap_or_default();
    let expected = sandbox.api_key.as_bytes();
    // Constant-time, as a processor compares its keys.
    let same = given.len() == expected.len()
        && given
            .as_bytes()
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "no valid API key was given",
        )))
    }
}

fn unavailable(e: ApiError) -> HttpResponse {
    tracing::warn!(error = %e, "sandbox: store unavailable");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        "unavailable",
        "the processor is unavailable; retry",
    )
}

#[derive(Deserialize)]
pub struct CreateIntent {
    amount: Option<i64>,
    currency: Option<String>,
    reference: Option<String>,
}

pub async fn create_intent(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Json<CreateIntent>,
) -> HttpResponse {
    let sandbox = sandbox.into_inner();
    if let Err(res) = authorized(&req, &sandbox) {
        return *res;
    }
    let bad = |code, message| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    };
    let Some(amount) = body.amount.filter(|a| *a > 0) else {
        return bad(
            "invalid_amount",
            "amount must be a positive integer (minor units)",
        );
    };
    let Some(currency) = body
        .currency
        .clone()
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()))
    else {
        return bad("invalid_currency", "currency must be an ISO 4217 code");
    };
    let Some(reference) = body.reference.clone().filter(|r| !r.is_empty()) else {
        return bad("missing_reference", "reference is required");
    };
    let at = now().naive_utc();
    let id = format!("pi_{}", uuid::Uuid::new_v4().simple());
    let intent = Intent {
        client_secret: format!("{id}_secret_{}", uuid::Uuid::new_v4().simple()),
        id,
        amount,
        currency: currency.to_uppercase(),
        reference,
        status: "requires_payment_method".into(),
        last_error: None,
        card_brand: None,
        card_last4: None,
        succeed_at: None,
        amount_refunded: 0,
        created_at: at,
        updated_at: at,
    };
    let key = idempotency_key(&req);
    let request = serde_json::to_string(&json!([
        "create_intent",
        amount,
        currency,
        intent.reference
    ]))
    .unwrap_or_default();
    let view = sandbox.view(&intent);
    let body = serde_json::to_string(&view).unwrap_or_default();
    let result = sandbox
        .db
        .run(move |mut conn| async move {
            let at = now().naive_utc();
            write_tx!(&mut conn, |c| {
                if let Some(first) = recall(c, key.as_deref(), &request).await? {
                    return Ok::<_, ApiError>(first);
                }
                sandbox::insert_intent(c, &intent).await?;
                if let Some(key) = &key {
                    sandbox::save_key(c, key, &request, 200, &body, at).await?;
                }
                Ok(Keyed::Fresh(view))
            })
        })
        .await;
    answer_keyed(result)
}

pub async fn get_intent(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let sandbox = sandbox.into_inner();
    if let Err(res) = authorized(&req, &sandbox) {
        return *res;
    }
    let id = path.into_inner();
    let found = sandbox
        .db
        .run(move |mut conn| async move {
            Ok::<_, ApiError>(sandbox::find_intent(&mut conn, &id).await?)
        })
        .await;
    answer_found(
        found.map(|f| f.map(|i| sandbox.view(&i))),
        "no such payment",
    )
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    client_secret: Option<String>,
}

#[derive(Deserialize)]
pub struct CardBody {
    card_number: Option<String>,
    exp_month: Option<i64>,
    exp_year: Option<i64>,
    cvc: Option<String>,
}

/// What a confirmation did.
enum Confirmed {
    Missing,
    NotAwaitingCard(String),
    Done(Box<Intent>),
}

pub async fn confirm_intent(
    sandbox: web::Data<Sandbox>,
    path: web::Path<String>,
    query: web::Query<ConfirmQuery>,
    body: web::Json<CardBody>,
) -> HttpResponse {
    let sandbox = sandbox.into_inner();
    let today = chrono::Utc::now().date_naive();
    let card = cards::parse(
        body.card_number.as_deref().unwrap_or_default(),
        body.exp_month.unwrap_or_default(),
        body.exp_year.unwrap_or_default(),
        body.cvc.as_deref().unwrap_or_default(),
        today,
    );
    let card = match card {
        Ok(card) => card,
        Err((field, message)) => {
            let mut res = error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_card",
                message,
            );
            res.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("sandbox-field"),
                actix_web::http::header::HeaderValue::from_static(field),
            );
            return res;
        }
    };
    let outcome = cards::outcome(&card);
    let (id, secret) = (
        path.into_inner(),
        query.client_secret.clone().unwrap_or_default(),
    );
    let worker = sandbox.clone();
    let result = sandbox
        .db
        .run(move |mut conn| async move {
            let at = now().naive_utc();
            write_tx!(&mut conn, |c| {
                let Some(mut intent) = sandbox::find_intent(c, &id)
                    .await?
                    .filter(|i| i.client_secret == secret)
                else {
                    return Ok::<_, ApiError>(Confirmed::Missing);
                };
                if intent.status != "requires_payment_method" {
                    return Ok(Confirmed::NotAwaitingCard(intent.status));
                }
                intent.card_brand = Some(card.brand.to_owned());
                intent.card_last4 = Some(card.last4.clone());
                intent.updated_at = at;
                let mut deliveries: Vec<(EventKind, &str, i64)> = Vec::new();
                match outcome {
                    Outcome::Succeeds => {
                        intent.status = "succeeded".into();
                        intent.last_error = None;
                        deliveries.push((EventKind::PaymentSucceeded, "succeeded", 0));
                    }
                    Outcome::Declined(code) => {
                        intent.last_error = Some(code.to_owned());
                        deliveries.push((EventKind::PaymentFailed, "failed", 0));
                    }
                    Outcome::SucceedsUnheard => {
                        // Paid, but its webhook is lost on the way: only
                        // asking the processor tells.
                        intent.status = "succeeded".into();
                        intent.last_error = None;
                    }
                    Outcome::SucceedsLater => {
                        intent.status = "processing".into();
                        intent.last_error = None;
                        let delay = chrono::Duration::from_std(worker.delay)
                            .unwrap_or_else(|_| chrono::Duration::seconds(3));
                        intent.succeed_at = Some(at + delay);
                        deliveries.push((EventKind::PaymentProcessing, "processing", 0));
                    }
                    Outcome::SucceedsNoisily => {
                        intent.status = "succeeded".into();
                        intent.last_error = None;
                        deliveries.push((EventKind::PaymentSucceeded, "succeeded", 0));
                        deliveries.push((EventKind::PaymentProcessing, "processing", 150));
                        deliveries.push((EventKind::PaymentSucceeded, "again", 300));
                    }
                }
                sandbox::save_intent(c, &intent).await?;
                let mut succeeded: Option<(String, String)> = None;
                for (kind, label, after_ms) in deliveries {
                    let when = at + chrono::Duration::milliseconds(after_ms);
                    let (event_id, payload) = match (label, &succeeded) {
                        // The same event (same id) delivered a second time.
                        ("again", Some(first)) => first.clone(),
                        ("processing", _) if intent.status == "succeeded" => {
                            // As it stood before it succeeded, sent late.
                            let mut earlier = intent.clone();
                            earlier.status = "processing".into();
                            worker.event(kind, &earlier)
                        }
                        _ => worker.event(kind, &intent),
                    };
                    if label == "succeeded" {
                        succeeded = Some((event_id.clone(), payload.clone()));
                    }
                    sandbox::enqueue(c, &event_id, &payload, when, at).await?;
                }
                Ok(Confirmed::Done(Box::new(intent)))
            })
        })
        .await;
    sandbox.wake.notify_one();
    match result {
        Err(e) => unavailable(e),
        Ok(Confirmed::Missing) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            "no such payment, or a wrong client secret",
        ),
        Ok(Confirmed::NotAwaitingCard(status)) => error(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            &format!("this payment is {status}, not awaiting a card"),
        ),
        Ok(Confirmed::Done(intent)) => {
            let view = sandbox.view(&intent);
            match &intent.last_error {
                Some(code) => HttpResponse::PaymentRequired().json(json!({
                    "error": {"type": "card_error", "code": code, "message": "the card was declined"},
                    "payment_intent": view,
                })),
                None => HttpResponse::Ok().json(view),
            }
        }
    }
}

/// Why a refund was refused.
#[derive(Clone, Copy)]
enum RefundRefused {
    Missing,
    NotSucceeded,
    TooLarge,
}

impl RefundRefused {
    fn answer(self) -> HttpResponse {
        let (status, code) = match self {
            RefundRefused::Missing => (StatusCode::NOT_FOUND, "resource_missing"),
            RefundRefused::NotSucceeded => (StatusCode::BAD_REQUEST, "payment_not_succeeded"),
            RefundRefused::TooLarge => (StatusCode::BAD_REQUEST, "amount_too_large"),
        };
        error(status, "invalid_request_error", code, code)
    }
}

#[derive(Deserialize)]
pub struct RefundBody {
    payment_intent: Option<String>,
    amount: Option<i64>,
    /// The merchant's own id for the refund (Stripe's `metadata`), sent
    /// back with it.
    reference: Option<String>,
}

pub async fn create_refund(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Json<RefundBody>,
) -> HttpResponse {
    let sandbox = sandbox.into_inner();
    if let Err(res) = authorized(&req, &sandbox) {
        return *res;
    }
    let id = body.payment_intent.clone().unwrap_or_default();
    let (wanted, reference) = (body.amount, body.reference.clone());
    let key = idempotency_key(&req);
    let request =
        serde_json::to_string(&json!(["create_refund", id, wanted, reference])).unwrap_or_default();
    let result = sandbox
        .db
        .run(move |mut conn| async move {
            let at = now().naive_utc();
            write_tx!(&mut conn, |c| {
                if let Some(first) = recall(c, key.as_deref(), &request).await? {
                    return Ok::<_, ApiError>(Ok(first));
                }
                let found = sandbox::find_intent(c, &id).await?;
                let refused = match &found {
                    None => Some(RefundRefused::Missing),
                    Some(i) if i.status != "succeeded" => Some(RefundRefused::NotSucceeded),
                    Some(i) => {
                        let left = i.amount - i.amount_refunded;
                        let amount = wanted.unwrap_or(left);
                        (amount <= 0 || amount > left).then_some(RefundRefused::TooLarge)
                    }
                };
                let (Some(mut intent), None) = (found, refused) else {
                    return Ok(Err(refused.unwrap_or(RefundRefused::Missing)));
                };
                let amount = wanted.unwrap_or(intent.amount - intent.amount_refunded);
                intent.amount_refunded += amount;
                intent.updated_at = at;
                sandbox::save_intent(c, &intent).await?;
                let refund = SandboxRefund {
                    id: format!("re_{}", uuid::Uuid::new_v4().simple()),
                    payment_intent: intent.id.clone(),
                    amount,
                    status: "succeeded".into(),
                    reference,
                    created_at: at,
                };
                sandbox::insert_refund(c, &refund).await?;
                let view = refund_view(&refund);
                let object = serde_json::to_value(&view).unwrap_or_default();
                let (event_id, payload) = wire(EventKind::RefundSucceeded, object);
                sandbox::enqueue(c, &event_id, &payload, at, at).await?;
                if let Some(key) = &key {
                    let body = serde_json::to_string(&view).unwrap_or_default();
                    sandbox::save_key(c, key, &request, 200, &body, at).await?;
                }
                Ok(Ok(Keyed::Fresh(view)))
            })
        })
        .await;
    sandbox.wake.notify_one();
    match result {
        Ok(Err(refused)) => refused.answer(),
        Ok(Ok(keyed)) => answer_keyed(Ok(keyed)),
        Err(e) => unavailable(e),
    }
}

pub async fn get_refund(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let sandbox = sandbox.into_inner();
    if let Err(res) = authorized(&req, &sandbox) {
        return *res;
    }
    let id = path.into_inner();
    let found = sandbox
        .db
        .run(move |mut conn| async move {
            Ok::<_, ApiError>(sandbox::find_refund(&mut conn, &id).await?)
        })
        .await;
    answer_found(found.map(|f| f.as_ref().map(refund_view)), "no such refund")
}

/// A read's answer: the object, the processor's 404, or 503.
fn answer_found<T: serde::Serialize>(
    found: Result<Option<T>, ApiError>,
    missing: &str,
) -> HttpResponse {
    match found {
        Ok(Some(object)) => HttpResponse::Ok().json(object),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            missing,
        ),
        Err(e) => unavailable(e),
    }
}

/// The processor's background work, until the process ends: delayed
/// payments succeed when their time comes, and due webhooks are delivered.
pub async fn run(sandbox: Arc<Sandbox>) {
    loop {
        tokio::select! {
            _ = sandbox.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        if let Err(e) = succeed_due(&sandbox).await {
            tracing::warn!(error = %e, "sandbox: delayed payments could not be settled");
        }
        if let Err(e) = deliver_due(&sandbox).await {
            tracing::warn!(error = %e, "sandbox: webhooks could not be taken for delivery");
        }
    }
}

async fn succeed_due(sandbox: &Arc<Sandbox>) -> Result<(), ApiError> {
    let worker = sandbox.clone();
    sandbox
        .db
        .run(move |mut conn| async move {
            let at = now().naive_utc();
            write_tx!(&mut conn, |c| {
                for intent in sandbox::succeed_due(c, at, 100).await? {
                    let (event_id, payload) = worker.event(EventKind::PaymentSucceeded, &intent);
                    sandbox::enqueue(c, &event_id, &payload, at, at).await?;
                }
                Ok::<_, ApiError>(())
            })
        })
        .await
}

async fn deliver_due(sandbox: &Arc<Sandbox>) -> Result<(), ApiError> {
    let lease = chrono::Duration::from_std(DELIVERY_LEASE)
        .unwrap_or_else(|_| chrono::Duration::seconds(30));
    let taken = sandbox
        .db
        .run(move |mut conn| async move {
            let at = now().naive_utc();
            write_tx!(&mut conn, |c| {
                Ok::<_, ApiError>(sandbox::take_due(c, at, at + lease, 20).await?)
            })
        })
        .await?;
    for delivery in taken {
        let outcome = deliver(sandbox, &delivery.payload).await;
        let (id, attempts) = (delivery.id, delivery.attempts);
        sandbox
            .db
            .run(move |mut conn| async move {
                let at = now().naive_utc();
                match outcome {
                    Ok(()) => sandbox::delivered(&mut conn, id, at).await?,
                    Err(reason) => {
                        let retry_at = at + backoff(attempts);
                        sandbox::failed(&mut conn, id, retry_at, &reason).await?;
                    }
                }
                Ok::<_, ApiError>(())
            })
            .await?;
    }
    Ok(())
}

/// 1 s, 2 s, 4 s… up to a minute between attempts.
fn backoff(attempts: i64) -> chrono::Duration {
    chrono::Duration::seconds(
        1_i64
            .checked_shl(attempts.clamp(0, 6) as u32)
            .unwrap_or(MAX_BACKOFF_SECS)
            .min(MAX_BACKOFF_SECS),
    )
}

/// One delivery: signed now, posted, done when the receiver answers 2xx.
async fn deliver(sandbox: &Sandbox, payload: &str) -> Result<(), String> {
    let secrets: Vec<&str> = sandbox.signing_secrets.iter().map(String::as_str).collect();
    let header = signature::sign(&secrets, chrono::Utc::now().timestamp(), payload.as_bytes());
    let res = sandbox
        .http
        .post(&sandbox.webhook_url)
        .header("content-type", "application/json")
        .header("roost-signature", header)
        .body(payload.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", res.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute() {
        let secs: Vec<i64> = (0..9).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
