//! The `sandbox` gateway: a card processor stand-in that behaves like a
//! real one and is reached like one. Its processor side (`processor`) is
//! served under `/sandbox/v1` while it is the configured gateway, keeps its
//! own tables, and tells Roost what happened only through webhooks it
//! signs as Stripe does and delivers from a durable outbox. Roost's side
//! ([`SandboxGateway`]) talks to it over HTTP, as to any processor.

pub mod cards;
pub mod processor;

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::signature;
use super::{
    EventKind, GatewayError, GatewayEvent, GatewayPayment, GatewayRefund, NewPayment,
    PaymentGateway, Subject, WebhookError,
};
use crate::config::GatewayKind;

/// How long Roost waits for the processor.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An event as the processor sends it (Stripe's shape): its object is a
/// payment for `payment.*` events, a refund for `refund.*` ones.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: WireData,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireData {
    pub object: serde_json::Value,
}

/// Roost's client of the sandbox processor.
pub struct SandboxGateway {
    http: reqwest::Client,
    /// Where the processor's API is, e.g. `http://127.0.0.1:8080/sandbox/v1`.
    base: String,
    api_key: String,
    /// Webhook secrets accepted (several during a rotation).
    secrets: Vec<String>,
    tolerance: i64,
}

impl SandboxGateway {
    pub fn new(base: String, api_key: String, secrets: Vec<String>, tolerance: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            base,
            api_key,
            secrets,
            tolerance: i64::try_from(tolerance.as_secs()).unwrap_or(300),
        }
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, GatewayError> {
        let res = request
            .bearer_auth(&self.api_key)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| GatewayError::Unreachable(e.to_string()))?;
        let status = res.status();
        if !status.is_success() {
            let message = res.text().await.unwrap_or_default();
            return Err(GatewayError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        res.json()
            .await
            .map_err(|e| GatewayError::Unreachable(format!("an unreadable answer: {e}")))
    }
}

impl PaymentGateway for SandboxGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Sandbox
    }

    fn signature_header(&self) -> &'static str {
        "roost-signature"
    }

    fn create_payment<'a>(
        &'a self,
        new: NewPayment<'a>,
    ) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>> {
        let body = json!({"amount": new.amount, "currency": new.currency,
                          "reference": new.booking.to_string()});
        let url = format!("{}/payment_intents", self.base);
        let request = self.http.post(url).header("idempotency-key", new.key);
        self.call(request.json(&body)).boxed()
    }

    fn payment<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>> {
        let url = format!("{}/payment_intents/{id}", self.base);
        self.call(self.http.get(url)).boxed()
    }

    fn refund<'a>(
        &'a self,
        payment: &'a str,
        amount: i64,
        reference: i64,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>> {
        let body = json!({"payment_intent": payment, "amount": amount,
                          "reference": reference.to_string()});
        let url = format!("{}/refunds", self.base);
        let request = self
            .http
            .post(url)
            .header("idempotency-key", super::refund_key(reference));
        self.call(request.json(&body)).boxed()
    }

    fn refund_status<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>> {
        let url = format!("{}/refunds/{id}", self.base);
        self.call(self.http.get(url)).boxed()
    }

    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Option<GatewayEvent>, WebhookError> {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        signature::verify(signature_header, body, &secrets, now, self.tolerance)
            .map_err(WebhookError::Signature)?;
        let unparsable = |e: serde_json::Error| WebhookError::Unparsable(e.to_string());
        let event: WireEvent = serde_json::from_slice(body).map_err(unparsable)?;
        let Some(kind) = EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == event.kind)
        else {
            return Ok(None);
        };
        let object = event.data.object;
        let subject = if kind.is_refund() {
            Subject::Refund(serde_json::from_value::<GatewayRefund>(object).map_err(unparsable)?)
        } else {
            Subject::Payment(serde_json::from_value::<GatewayPayment>(object).map_err(unparsable)?)
        };
        Ok(Some(GatewayEvent {
            id: event.id,
            kind,
            subject,
        }))
    }
}
