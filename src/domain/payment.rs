//! Payments as Roost and its gateways speak of them: a payment's state at
//! the gateway, the card it was paid with (brand and last four only), what
//! a gateway's event says happened, and Roost's own payment statuses.

use serde::{Deserialize, Serialize};

/// A payment's state at the gateway, Stripe's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayStatus {
    /// Waiting for a card (also after a declined one).
    RequiresPaymentMethod,
    Processing,
    Succeeded,
    Canceled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
}

/// What the payer's client does next: post the card to `confirm_url`, the
/// processor's own address (never Roost's API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub confirm_url: String,
}

/// A payment as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayPayment {
    pub id: String,
    pub status: GatewayStatus,
    pub amount: i64,
    pub currency: String,
    /// Roost's booking id.
    pub reference: String,
    /// Why the last card was declined (`card_declined`, `insufficient_funds`…).
    #[serde(default)]
    pub failure: Option<String>,
    #[serde(default)]
    pub card: Option<Card>,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub next_action: Option<NextAction>,
}

/// What a gateway's event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "payment.processing")]
    PaymentProcessing,
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PaymentProcessing => "payment.processing",
            EventKind::PaymentSucceeded => "payment.succeeded",
            EventKind::PaymentFailed => "payment.failed",
            EventKind::PaymentRefunded => "payment.refunded",
        }
    }
}

/// A verified webhook: an event id (processed once), what happened, and
/// the payment as of then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayEvent {
    pub id: String,
    pub kind: EventKind,
    pub payment: GatewayPayment,
}

/// A payment's status in Roost, in the only order it moves (a late or
/// repeated gateway event never moves it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PaymentStatus {
    /// Waiting for a card (after a declined one too).
    RequiresPaymentMethod,
    Processing,
    Succeeded,
    /// Succeeded, but there is no stay to sell (the nights went to another
    /// booking, the booking was cancelled): the money goes back.
    RefundPending,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::RequiresPaymentMethod => "requires_payment_method",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Has money moved (or is it moving back)?
    pub fn is_paid(self) -> bool {
        self >= PaymentStatus::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_move_forward() {
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert!(PaymentStatus::Processing > PaymentStatus::RequiresPaymentMethod);
        assert!(PaymentStatus::Succeeded > PaymentStatus::Processing);
        assert!(PaymentStatus::Refunded > PaymentStatus::RefundPending);
        assert!(!PaymentStatus::Processing.is_paid() && PaymentStatus::Succeeded.is_paid());
    }

    #[test]
    fn event_kinds_are_stripe_style_names() {
        for kind in [
            EventKind::PaymentProcessing,
            EventKind::PaymentSucceeded,
            EventKind::PaymentFailed,
            EventKind::PaymentRefunded,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
