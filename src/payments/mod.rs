//! Payments go through a gateway: a card processor Roost reaches over HTTP
//! and hears from only through signed webhooks. Roost never sees a card:
//! it keeps the gateway's payment id, status, amount, currency, failure
//! reason, and the card's brand and last four digits when sent.
//!
//! [`PaymentGateway`] is what Roost needs of one; [`sandbox`] is the
//! built-in processor stand-in (test cards, a durable webhook outbox).

pub mod sandbox;
pub mod signature;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::GatewayKind;
pub use crate::domain::payment::{
    Card, EventKind, GatewayEvent, GatewayPayment, GatewayStatus, NextAction,
};
use signature::SignatureError;

/// A refund the gateway made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRefund {
    pub id: String,
    pub amount: i64,
}

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

/// What Roost needs of a payment gateway.
pub trait PaymentGateway: Send + Sync {
    fn kind(&self) -> GatewayKind;

    /// A payment of `amount` minor units of `currency` for booking `reference`.
    fn create_payment<'a>(
        &'a self,
        amount: i64,
        currency: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>>;

    /// A payment as the gateway has it now.
    fn payment<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>>;

    /// Refunds `amount` (all of what is left: `None`) of a payment.
    fn refund<'a>(
        &'a self,
        id: &'a str,
        amount: Option<i64>,
    ) -> BoxFuture<'a, Result<GatewayRefund, GatewayError>>;

    /// Checks a webhook's signature (`now` in unix seconds) and reads it.
    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<GatewayEvent, WebhookError>;
}
