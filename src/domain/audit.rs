//! The audit trail's vocabulary: who did something (an [`AuditActor`]), and what
//! ([`Action`] on an object, with details). Rows are written in the same
//! transaction as the change they record, and never changed afterwards.

use std::fmt;

use serde_json::Value;

use super::{FieldError, UserId};

/// What happened, named `object.verb`. The names are stable: clients and
/// operators filter on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    UserRegistered,
    UserLoginSucceeded,
    UserLoginFailed,
    UserLogout,
    UserPasswordChanged,
    UserRoleChanged,
    UserNameChanged,
    UserDeactivated,
    UserActivated,
    PropertyCreated,
    PropertyUpdated,
    PropertyDeleted,
    BlockAdded,
    BlockRemoved,
    PricingUpdated,
    RateAdded,
    RateRemoved,
    BookingHeld,
    BookingChanged,
    /// A paid booking's move to a dearer stay, awaiting the difference.
    BookingChangeRequested,
    /// Its difference paid, but the new nights were taken meanwhile.
    BookingChangeFailed,
    BookingCancelled,
    BookingExpired,
    BookingConfirmed,
    BookingCompleted,
    PaymentCreated,
    PaymentProcessing,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
    /// A refund decided (a cancellation, a cheaper change, a late payment
    /// with no stay): asked of the gateway next.
    PaymentRefundRequested,
    PaymentRefundFailed,
    /// What the gateway said when asked about an outcome whose webhook had
    /// not arrived.
    PaymentReconciled,
    /// A review written (not yet seen by anyone but its author).
    ReviewWritten,
    /// A review published: both sides wrote, or the window closed.
    ReviewPublished,
    ReviewEdited,
    ReviewReplied,
    /// An admin's removal, with the reason.
    ReviewRemoved,
    /// A webhook refused (bad signature, stale, unreadable).
    WebhookRejected,
    /// An object-level authorization refused: who tried what.
    AccessDenied,
}

impl Action {
    pub const ALL: [Action; 40] = [
        Action::UserRegistered,
        Action::UserLoginSucceeded,
        Action::UserLoginFailed,
        Action::UserLogout,
        Action::UserPasswordChanged,
        Action::UserRoleChanged,
        Action::UserNameChanged,
        Action::UserDeactivated,
        Action::UserActivated,
        Action::PropertyCreated,
        Action::PropertyUpdated,
        Action::PropertyDeleted,
        Action::BlockAdded,
        Action::BlockRemoved,
        Action::PricingUpdated,
        Action::RateAdded,
        Action::RateRemoved,
        Action::BookingHeld,
        Action::BookingChanged,
        Action::BookingChangeRequested,
        Action::BookingChangeFailed,
        Action::BookingCancelled,
        Action::BookingExpired,
        Action::BookingConfirmed,
        Action::BookingCompleted,
        Action::PaymentCreated,
        Action::PaymentProcessing,
        Action::PaymentSucceeded,
        Action::PaymentFailed,
        Action::PaymentRefunded,
        Action::PaymentRefundRequested,
        Action::PaymentRefundFailed,
        Action::PaymentReconciled,
        Action::ReviewWritten,
        Action::ReviewPublished,
        Action::ReviewEdited,
        Action::ReviewReplied,
        Action::ReviewRemoved,
        Action::WebhookRejected,
        Action::AccessDenied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserRegistered => "user.registered",
            Action::UserLoginSucceeded => "user.login_succeeded",
            Action::UserLoginFailed => "user.login_failed",
            Action::UserLogout => "user.logout",
            Action::UserPasswordChanged => "user.password_changed",
            Action::UserRoleChanged => "user.role_changed",
            Action::UserNameChanged => "user.name_changed",
            Action::UserDeactivated => "user.deactivated",
            Action::UserActivated => "user.activated",
            Action::PropertyCreated => "property.created",
            Action::PropertyUpdated => "property.updated",
            Action::PropertyDeleted => "property.deleted",
            Action::BlockAdded => "block.added",
            Action::BlockRemoved => "block.removed",
            Action::PricingUpdated => "pricing.updated",
            Action::RateAdded => "rate.added",
            Action::RateRemoved => "rate.removed",
            Action::BookingHeld => "booking.held",
            Action::BookingChanged => "booking.changed",
            Action::BookingChangeRequested => "booking.change_requested",
            Action::BookingChangeFailed => "booking.change_failed",
            Action::BookingCancelled => "booking.cancelled",
            Action::BookingExpired => "booking.expired",
            Action::BookingConfirmed => "booking.confirmed",
            Action::BookingCompleted => "booking.completed",
            Action::PaymentCreated => "payment.created",
            Action::PaymentProcessing => "payment.processing",
            Action::PaymentSucceeded => "payment.succeeded",
            Action::PaymentFailed => "payment.failed",
            Action::PaymentRefunded => "payment.refunded",
            Action::PaymentRefundRequested => "payment.refund_requested",
            Action::PaymentRefundFailed => "payment.refund_failed",
            Action::PaymentReconciled => "payment.reconciled",
            Action::ReviewWritten => "review.written",
            Action::ReviewPublished => "review.published",
            Action::ReviewEdited => "review.edited",
            Action::ReviewReplied => "review.replied",
            Action::ReviewRemoved => "review.removed",
            Action::WebhookRejected => "webhook.rejected",
            Action::AccessDenied => "access.denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of object an action is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    User,
    Property,
    Block,
    Rate,
    Booking,
    Payment,
    Review,
    Webhook,
    /// An admin-only resource as a whole (the user list, the audit trail).
    Endpoint,
}

impl ObjectType {
    pub const ALL: [ObjectType; 9] = [
        ObjectType::User,
        ObjectType::Property,
        ObjectType::Block,
        ObjectType::Rate,
        ObjectType::Booking,
        ObjectType::Payment,
        ObjectType::Review,
        ObjectType::Webhook,
        ObjectType::Endpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::User => "user",
            ObjectType::Property => "property",
            ObjectType::Block => "block",
            ObjectType::Rate => "rate",
            ObjectType::Booking => "booking",
            ObjectType::Payment => "payment",
            ObjectType::Review => "review",
            ObjectType::Webhook => "webhook",
            ObjectType::Endpoint => "endpoint",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Who asked for a change: the signed-in user (none: signed out, or the
/// system itself, as the hold sweeper), from which address, in which request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditActor {
    pub user: Option<UserId>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditActor {
    /// Roost itself (the hold sweeper, housekeeping).
    pub fn system() -> Self {
        Self::default()
    }

    /// An operator at the command line (`roost user create`).
    pub fn cli() -> Self {
        Self {
            request_id: Some("cli".into()),
            ..Self::default()
        }
    }

    /// The same request, as another (or no) user.
    pub fn as_user(&self, user: Option<UserId>) -> Self {
        Self {
            user,
            ..self.clone()
        }
    }
}

/// One row of the trail, before it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub action: Action,
    pub object_type: ObjectType,
    pub object_id: Option<i64>,
    /// Never a password, a token or card data.
    pub details: Value,
}

impl AuditRecord {
    pub fn new(action: Action, object_type: ObjectType, object_id: Option<i64>) -> Self {
        Self {
            action,
            object_type,
            object_id,
            details: Value::Object(Default::default()),
        }
    }

    pub fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// An authorization refused: `attempted` is what was tried
    /// (`booking.read`, `property.update`…).
    pub fn denied(object_type: ObjectType, object_id: Option<i64>, attempted: &str) -> Self {
        Self::new(Action::AccessDenied, object_type, object_id)
            .with(serde_json::json!({ "attempted": attempted }))
    }
}

/// A point in time to read the trail from: RFC 3339 (`2026-11-22T10:00:00Z`)
/// or a day (`2026-11-22`, from its start, UTC).
pub fn parse_since(raw: &str) -> Result<chrono::NaiveDateTime, FieldError> {
    let raw = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.naive_utc());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN));
    }
    Err(FieldError::new(
        "since",
        "invalid_time",
        "since must be a time like 2026-11-22T10:00:00Z or a day like 2026-11-22",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_name_round_trips_and_is_object_dot_verb() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            let (object, verb) = action.as_str().split_once('.').unwrap();
            assert!(!object.is_empty() && !verb.is_empty());
        }
        assert_eq!(Action::parse("user.hacked"), None);
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn since_takes_a_time_or_a_day() {
        let t = parse_since("2026-11-22T10:00:00+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-22 09:00:00");
        assert_eq!(
            parse_since("2026-11-22").unwrap().to_string(),
            "2026-11-22 00:00:00"
        );
        assert!(parse_since("yesterday").is_err());
    }
}
