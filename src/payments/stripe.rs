//! The `stripe` gateway: Stripe's documented REST API, as Roost needs it.
//!
//! - `POST /v1/payment_intents` (form: `amount`, `currency`,
//!   `metadata[booking_id]`, `automatic_payment_methods[enabled]`), and
//!   `GET /v1/payment_intents/{id}`;
//! - `POST /v1/refunds` (form: `payment_intent`, `amount`,
//!   `metadata[refund_id]`), and `GET /v1/refunds/{id}`.
//!
//! Every call is authenticated with the secret key and every creating call
//! carries an `Idempotency-Key` derived from Roost's own ids, so a retried
//! call can never charge or refund twice. Webhooks carry `Stripe-Signature`
//! (the scheme in [`super::signature`]); their events map onto the
//! sandbox's: `payment_intent.succeeded`, `.payment_failed` and
//! `.processing`; `refund.created`, `refund.updated` and `refund.failed` (by
//! the refund's status); `charge.refunded` with its refunds expanded (the
//! newest). Every other event is acknowledged and ignored.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::signature;
use super::{
    EventKind, GatewayError, GatewayEvent, GatewayPayment, GatewayRefund, GatewayStatus,
    NewPayment, NextAction, PaymentGateway, RefundStatus, Subject, WebhookError,
};
use crate::config::{GatewayKind, StripeSettings};

/// How long Roost waits for Stripe.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Roost's client of Stripe's API.
pub struct StripeGateway {
    http: reqwest::Client,
    base: String,
    secret_key: String,
    webhook_secrets: Vec<String>,
    tolerance: i64,
}

impl StripeGateway {
    pub fn new(settings: &StripeSettings, tolerance: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            base: format!("{}/v1", settings.api_base),
            secret_key: settings.secret_key.0.clone(),
            webhook_secrets: settings
                .webhook_secrets
                .iter()
                .map(|s| s.0.clone())
                .collect(),
            tolerance: i64::try_from(tolerance.as_secs()).unwrap_or(300),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, GatewayError> {
        let res = request
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|e| GatewayError::Unreachable(e.to_string()))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| GatewayError::Unreachable(format!("an unreadable answer: {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"]
            .as_str()
            .or(body["error"]["code"].as_str())
            .unwrap_or("")
            .to_owned();
        if status.is_server_error() || status.as_u16() == 429 {
            // Stripe's advice: retry these (with the same Idempotency-Key).
            return Err(GatewayError::Unreachable(format!("{status} {message}")));
        }
        Err(GatewayError::Refused {
            status: status.as_u16(),
            message,
        })
    }
}

/// A PaymentIntent as Roost reads it.
#[derive(Deserialize)]
struct Intent {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    last_payment_error: Option<Value>,
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unreachable(format!("an unreadable {what}: {e}"))
}

/// A PaymentIntent in Roost's terms.
fn payment_of(object: Value) -> Result<GatewayPayment, serde_json::Error> {
    let intent: Intent = serde_json::from_value(object)?;
    let status = match intent.status.as_str() {
        "processing" => GatewayStatus::Processing,
        "succeeded" => GatewayStatus::Succeeded,
        "canceled" => GatewayStatus::Canceled,
        // requires_payment_method, requires_confirmation, requires_action,
        // requires_capture (Roost captures automatically): not paid yet.
        _ => GatewayStatus::RequiresPaymentMethod,
    };
    let failure = intent.last_payment_error.as_ref().and_then(|e| {
        e["decline_code"]
            .as_str()
            .or(e["code"].as_str())
            .map(str::to_owned)
    });
    let next_action = (status == GatewayStatus::RequiresPaymentMethod)
        .then(|| intent.client_secret.clone())
        .flatten()
        .map(|secret| NextAction {
            kind: "stripe_sdk".into(),
            confirm_url: None,
            client_secret: Some(secret),
        });
    Ok(GatewayPayment {
        id: intent.id,
        status,
        amount: intent.amount,
        currency: intent.currency.to_uppercase(),
        reference: intent.metadata["booking_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        failure,
        card: None,
        amount_refunded: 0,
        next_action,
    })
}

/// A Refund in Roost's terms.
fn refund_of(object: &Value) -> Result<GatewayRefund, String> {
    let id = object["id"].as_str().ok_or("a refund without an id")?;
    let payment = object["payment_intent"]
        .as_str()
        .ok_or("a refund without its payment_intent")?;
    let status = match object["status"].as_str() {
        Some("succeeded") => RefundStatus::Succeeded,
        Some("failed" | "canceled") => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    };
    Ok(GatewayRefund {
        id: id.to_owned(),
        payment: payment.to_owned(),
        amount: object["amount"]
            .as_i64()
            .ok_or("a refund without an amount")?,
        status,
        reference: object["metadata"]["refund_id"].as_str().map(str::to_owned),
        failure: object["failure_reason"].as_str().map(str::to_owned),
    })
}

impl PaymentGateway for StripeGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Stripe
    }

    fn signature_header(&self) -> &'static str {
        "stripe-signature"
    }

    fn create_payment<'a>(
        &'a self,
        new: NewPayment<'a>,
    ) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>> {
        async move {
            let form = [
                ("amount", new.amount.to_string()),
                ("currency", new.currency.to_lowercase()),
                ("metadata[booking_id]", new.booking.to_string()),
                ("automatic_payment_methods[enabled]", "true".to_owned()),
            ];
            let request = self
                .http
                .post(format!("{}/payment_intents", self.base))
                .header("idempotency-key", new.key)
                .form(&form);
            let object = self.call(request).await?;
            payment_of(object).map_err(|e| unreadable("PaymentIntent", e))
        }
        .boxed()
    }

    fn payment<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>> {
        async move {
            let object = self
                .call(self.http.get(format!("{}/payment_intents/{id}", self.base)))
                .await?;
            payment_of(object).map_err(|e| unreadable("PaymentIntent", e))
        }
        .boxed()
    }

    fn refund<'a>(
        &'a self,
        payment: &'a str,
        amount: i64,
        reference: i64,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>> {
        async move {
            let form = [
                ("payment_intent", payment.to_owned()),
                ("amount", amount.to_string()),
                ("metadata[refund_id]", reference.to_string()),
            ];
            let request = self
                .http
                .post(format!("{}/refunds", self.base))
                .header("idempotency-key", super::refund_key(reference))
                .form(&form);
            let object = self.call(request).await?;
            refund_of(&object).map_err(|e| unreadable("Refund", e))
        }
        .boxed()
    }

    fn refund_status<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>> {
        async move {
            let object = self
                .call(self.http.get(format!("{}/refunds/{id}", self.base)))
                .await?;
            refund_of(&object).map_err(|e| unreadable("Refund", e))
        }
        .boxed()
    }

    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Option<GatewayEvent>, WebhookError> {
        let secrets: Vec<&str> = self.webhook_secrets.iter().map(String::as_str).collect();
        signature::verify(signature_header, body, &secrets, now, self.tolerance)
            .map_err(WebhookError::Signature)?;
        let event: Value =
            serde_json::from_slice(body).map_err(|e| WebhookError::Unparsable(e.to_string()))?;
        let id = event["id"]
            .as_str()
            .ok_or_else(|| WebhookError::Unparsable("an event without an id".into()))?
            .to_owned();
        let object = &event["data"]["object"];
        let unparsable = |e: String| WebhookError::Unparsable(e);
        let payment = |kind: EventKind| -> Result<Option<GatewayEvent>, WebhookError> {
            let payment = payment_of(object.clone()).map_err(|e| unparsable(e.to_string()))?;
            Ok(Some(GatewayEvent {
                id: id.clone(),
                kind,
                subject: Subject::Payment(payment),
            }))
        };
        let refund = |object: &Value| -> Result<Option<GatewayEvent>, WebhookError> {
            let refund = refund_of(object).map_err(unparsable)?;
            Ok(
                EventKind::of_refund(refund.status).map(|kind| GatewayEvent {
                    id: id.clone(),
                    kind,
                    subject: Subject::Refund(refund),
                }),
            )
        };
        match event["type"].as_str().unwrap_or_default() {
            "payment_intent.succeeded" => payment(EventKind::PaymentSucceeded),
            "payment_intent.payment_failed" => payment(EventKind::PaymentFailed),
            "payment_intent.processing" => payment(EventKind::PaymentProcessing),
            "refund.created" | "refund.updated" | "refund.failed" => refund(object),
            // The charge's refunds, when expanded (newest first); else the
            // refund's own events or the reconciler carry its outcome.
            "charge.refunded" => match object["refunds"]["data"].get(0) {
                Some(newest) => refund(newest),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payment_intents_read_in_roost_terms() {
        let p = payment_of(json!({
            "id": "pi_1", "object": "payment_intent", "status": "requires_payment_method",
            "amount": 40500, "currency": "eur", "client_secret": "pi_1_secret_x",
            "metadata": {"booking_id": "88"},
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}
        }))
        .unwrap();
        assert_eq!(p.status, GatewayStatus::RequiresPaymentMethod);
        assert_eq!((p.currency.as_str(), p.reference.as_str()), ("EUR", "88"));
        assert_eq!(p.failure.as_deref(), Some("insufficient_funds"));
        let next = p.next_action.unwrap();
        assert_eq!(
            (next.kind.as_str(), next.client_secret.as_deref()),
            ("stripe_sdk", Some("pi_1_secret_x"))
        );
        for (status, ours) in [
            ("requires_action", GatewayStatus::RequiresPaymentMethod),
            ("processing", GatewayStatus::Processing),
            ("succeeded", GatewayStatus::Succeeded),
            ("canceled", GatewayStatus::Canceled),
        ] {
            let p =
                payment_of(json!({"id": "pi", "status": status, "amount": 1, "currency": "jpy"}));
            assert_eq!(p.unwrap().status, ours);
        }
    }

    #[test]
    fn refunds_read_in_roost_terms() {
        let r = refund_of(&json!({"id": "re_1", "object": "refund", "amount": 500,
            "payment_intent": "pi_1", "status": "failed", "failure_reason": "expired_or_canceled_card",
            "metadata": {"refund_id": "7"}}))
        .unwrap();
        assert_eq!(r.status, RefundStatus::Failed);
        assert_eq!(r.reference.as_deref(), Some("7"));
        assert_eq!(r.failure.as_deref(), Some("expired_or_canceled_card"));
        assert!(refund_of(&json!({"id": "re_2", "amount": 1})).is_err());
    }

    fn gateway() -> StripeGateway {
        let settings = StripeSettings {
            secret_key: crate::config::Secret("sk_test".into()),
            webhook_secrets: vec![crate::config::Secret("whsec_a".into())],
            api_base: "http://127.0.0.1:1".into(),
        };
        StripeGateway::new(&settings, Duration::from_secs(300))
    }

    fn parse(kind: &str, object: Value) -> Option<GatewayEvent> {
        let body =
            serde_json::to_vec(&json!({"id": "evt_1", "type": kind, "data": {"object": object}}))
                .unwrap();
        let header = signature::sign(&["whsec_a"], 1_000, &body);
        gateway()
            .parse_webhook(Some(&header), &body, 1_100)
            .unwrap()
    }

    #[test]
    fn events_map_onto_roosts_kinds() {
        let intent = json!({"id": "pi_1", "status": "succeeded", "amount": 100, "currency": "eur"});
        assert_eq!(
            parse("payment_intent.succeeded", intent.clone())
                .unwrap()
                .kind,
            EventKind::PaymentSucceeded
        );
        assert_eq!(
            parse("payment_intent.processing", intent.clone())
                .unwrap()
                .kind,
            EventKind::PaymentProcessing
        );
        assert_eq!(
            parse("payment_intent.payment_failed", intent).unwrap().kind,
            EventKind::PaymentFailed
        );
        let refund = |status: &str| json!({"id": "re_1", "payment_intent": "pi_1", "amount": 50, "status": status});
        assert_eq!(
            parse("refund.updated", refund("succeeded")).unwrap().kind,
            EventKind::RefundSucceeded
        );
        assert_eq!(
            parse("refund.failed", refund("failed")).unwrap().kind,
            EventKind::RefundFailed
        );
        assert!(
            parse("refund.created", refund("pending")).is_none(),
            "pending is no news"
        );
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "refunds": {"data": [refund("succeeded")]}});
        let event = parse("charge.refunded", charge).unwrap();
        assert_eq!(
            (event.kind, event.payment_id()),
            (EventKind::RefundSucceeded, "pi_1")
        );
        assert!(
            parse(
                "charge.refunded",
                json!({"id": "ch_1", "payment_intent": "pi_1"})
            )
            .is_none()
        );
        assert!(parse("customer.created", json!({"id": "cus_1"})).is_none());
        let body = b"{}";
        let stale = signature::sign(&["whsec_a"], 1_000, body);
        assert!(gateway().parse_webhook(Some(&stale), body, 1_301).is_err());
    }
}
