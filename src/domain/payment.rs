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

/// What the payer's client does next, never through Roost's API: post the
/// card to `confirm_url`, the processor's own address (`confirm_card`, the
/// sandbox), or confirm with the processor's own SDK using `client_secret`
/// (`stripe_sdk`: Stripe.js `confirmPayment`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextAction {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
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

/// A refund's state at the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

/// A refund as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRefund {
    pub id: String,
    /// The gateway's id of the payment refunded.
    pub payment: String,
    pub amount: i64,
    pub status: RefundStatus,
    /// Roost's refund id, when Roost asked for it (none: made at the
    /// gateway, by its dashboard or an operator).
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub failure: Option<String>,
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
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    #[serde(rename = "refund.failed")]
    RefundFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::PaymentProcessing,
        EventKind::PaymentSucceeded,
        EventKind::PaymentFailed,
        EventKind::RefundSucceeded,
        EventKind::RefundFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PaymentProcessing => "payment.processing",
            EventKind::PaymentSucceeded => "payment.succeeded",
            EventKind::PaymentFailed => "payment.failed",
            EventKind::RefundSucceeded => "refund.succeeded",
            EventKind::RefundFailed => "refund.failed",
        }
    }

    /// Is it about a refund (its subject a [`GatewayRefund`])?
    pub fn is_refund(self) -> bool {
        matches!(self, EventKind::RefundSucceeded | EventKind::RefundFailed)
    }

    /// The event a payment's state is news of, if any.
    pub fn of_payment(status: GatewayStatus) -> Option<Self> {
        match status {
            GatewayStatus::Processing => Some(EventKind::PaymentProcessing),
            GatewayStatus::Succeeded => Some(EventKind::PaymentSucceeded),
            GatewayStatus::RequiresPaymentMethod | GatewayStatus::Canceled => None,
        }
    }

    /// The event a refund's state is news of, if any.
    pub fn of_refund(status: RefundStatus) -> Option<Self> {
        match status {
            RefundStatus::Succeeded => Some(EventKind::RefundSucceeded),
            RefundStatus::Failed => Some(EventKind::RefundFailed),
            RefundStatus::Pending => None,
        }
    }
}

/// What an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Payment(GatewayPayment),
    Refund(GatewayRefund),
}

/// A verified webhook (or what the reconciler learnt by asking): an event
/// id (processed once), what happened, and its subject as of then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayEvent {
    pub id: String,
    pub kind: EventKind,
    pub subject: Subject,
}

impl GatewayEvent {
    /// The gateway's id of the payment it concerns.
    pub fn payment_id(&self) -> &str {
        match &self.subject {
            Subject::Payment(p) => &p.id,
            Subject::Refund(r) => &r.payment,
        }
    }
}

/// A payment's status in Roost, in the only order it moves (a late or
/// repeated gateway event never moves it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PaymentStatus {
    /// Waiting for a card (after a declined one too).
    RequiresPaymentMethod,
    Processing,
    /// Paid; `amount_refunded` says how much has gone back (see `refunds`).
    Succeeded,
    /// All of it refunded.
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 4] = [
        PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::RequiresPaymentMethod => "requires_payment_method",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
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
        assert!(PaymentStatus::Refunded > PaymentStatus::Succeeded);
        // Written before refunds were rows; migrated away, never read.
        assert_eq!(PaymentStatus::parse("refund_pending"), None);
        assert!(!PaymentStatus::Processing.is_paid() && PaymentStatus::Succeeded.is_paid());
    }

    #[test]
    fn event_kinds_are_stripe_style_names() {
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
