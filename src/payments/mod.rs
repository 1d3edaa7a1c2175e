//! Payments go through a gateway: a card processor Roost reaches over HTTP
//! and hears from only through signed webhooks. Roost never sees a card:
//! it keeps the gateway's payment id, status, amount, currency, failure
//! reason, and the card's brand and last four digits when sent.
//!
//! [`PaymentGateway`] is what Roost needs of one; [`sandbox`] is the
//! built-in processor stand-in (test cards, a durable webhook outbox).

pub mod sandbox;
pub mod signature;
pub mod stripe;

use futures_util::future::BoxFuture;

use crate::config::GatewayKind;
pub use crate::domain::payment::{
    Card, EventKind, GatewayEvent, GatewayPayment, GatewayRefund, GatewayStatus, NextAction,
    RefundStatus, Subject,
};
use signature::SignatureError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the payment gateway could not be reached: {0}")]
    Unreachable(String),
    #[error("the payment gateway refused: {status} {message}")]
    Refused { status: u16, message: String },
}

/// Why a webhook was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("{}", .0.as_str())]
    Signature(SignatureError),
    #[error("unparsable: {0}")]
    Unparsable(String),
}

impl WebhookError {
    /// The stable reason, for the audit trail and the 400's code.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(e) => e.as_str(),
            WebhookError::Unparsable(_) => "webhook_unparsable",
        }
    }
}

/// A payment to start at the gateway.
#[derive(Clone, Copy, Debug)]
pub struct NewPayment<'a> {
    pub amount: i64,
    pub currency: &'a str,
    /// Roost's booking id.
    pub booking: i64,
    /// The call's `Idempotency-Key`, from Roost's own ids.
    pub key: &'a str,
}

/// The `Idempotency-Key` of Roost's call to refund its refund `id`.
pub fn refund_key(id: i64) -> String {
    format!("roost-refund-{id}")
}

/// What Roost needs of a payment gateway.
pub trait PaymentGateway: Send + Sync {
    fn kind(&self) -> GatewayKind;

    /// The header its webhooks carry their signature in.
    fn signature_header(&self) -> &'static str;

    /// A payment of `amount` minor units of `currency` for a booking. The
    /// gateway is asked with `key` as its `Idempotency-Key`: the same key
    /// again is answered with the same payment, never a second one.
    fn create_payment<'a>(
        &'a self,
        new: NewPayment<'a>,
    ) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>>;

    /// A payment as the gateway has it now.
    fn payment<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>>;

    /// Refunds `amount` of a payment (the gateway's id), for Roost's refund
    /// `reference`, which also keys the call: asked again, the gateway
    /// answers with the same refund.
    fn refund<'a>(
        &'a self,
        payment: &'a str,
        amount: i64,
        reference: i64,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>>;

    /// A refund as the gateway has it now.
    fn refund_status<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>>;

    /// Checks a webhook's signature (`now` in unix seconds) and reads it:
    /// `None` for a verified event Roost does not act on.
    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Option<GatewayEvent>, WebhookError>;
}
