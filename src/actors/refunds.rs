//! Refunds as the listing's actor decides and settles them, inside the
//! transaction of the change that owes them: what a cancellation gives
//! back under the listing's policy, the refund rows that record it (each
//! counted against its payment, so the refunds never exceed it), and the
//! gateway's word of each refund's outcome.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use crate::db::calendar::Entry;
use crate::db::payments::{self, Payment};
use crate::db::properties::Property;
use crate::db::refunds::{self, FAILED, NewRefund, PENDING, Refund, SUCCEEDED};
use crate::db::{Conn, audit as audit_log};
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::cancellation::{Cancellation, CancelledBy, RefundQuote};
use crate::domain::payment::{EventKind, GatewayRefund, PaymentStatus};
use crate::error::ApiError;

/// What cancelling a booking now would refund, and when its check-in and
/// last full refund are.
#[derive(Clone, Debug)]
pub struct CancellationTerms {
    pub quote: RefundQuote,
    pub check_in_at: DateTime<Utc>,
    pub full_refund_until: Option<DateTime<Utc>>,
    /// Paid and not (being) refunded.
    pub refundable: i64,
}

/// What cancelling `entry` now (by `by`) would refund of `paid`, the
/// booking's payments.
pub fn cancellation_terms(
    property: &Property,
    entry: &Entry,
    paid: &[Payment],
    by: CancelledBy,
    now: DateTime<Utc>,
) -> CancellationTerms {
    let sold = entry.sold();
    let check_in_at = property
        .zone()
        .instant(entry.check_in, property.check_in_time().time());
    let refundable = paid.iter().map(Payment::refundable).sum();
    let cancellation = Cancellation {
        policy: property.policy(),
        by,
        booked_at: entry.created_at.and_utc(),
        check_in: check_in_at,
        now,
        sold: &sold,
        refundable,
    };
    CancellationTerms {
        quote: cancellation.refund(),
        check_in_at,
        full_refund_until: cancellation.full_refund_until(),
        refundable,
    }
}

/// What a guest's move of a paid stay to a cheaper one (`old` → `new`)
/// gives back now: what cancelling the old stay would refund, less what
/// cancelling the new one would, line by line (none below zero), and never
/// more than the difference of their totals. Within a full-refund period
/// that is the difference exactly; past it, only what the policy would
/// give back of the nights and fees dropped.
pub fn change_refund(
    property: &Property,
    old: &Entry,
    new: &Entry,
    paid: &[Payment],
    now: DateTime<Utc>,
) -> RefundQuote {
    use crate::domain::pricing::{Line, LineKind};
    let before = cancellation_terms(property, old, paid, CancelledBy::Guest, now).quote;
    let after = cancellation_terms(property, new, paid, CancelledBy::Guest, now).quote;
    let of = |q: &RefundQuote, kind: LineKind| -> i64 {
        q.lines
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.amount)
            .sum()
    };
    let kinds = [
        LineKind::Nights,
        LineKind::ExtraGuests,
        LineKind::CleaningFee,
        LineKind::ServiceFee,
        LineKind::Tax,
    ];
    let mut left = (old.total.unwrap_or(0) - new.total.unwrap_or(0)).max(0);
    let mut lines = Vec::new();
    for kind in kinds {
        let amount = (of(&before, kind) - of(&after, kind)).clamp(0, left);
        if amount > 0 {
            lines.push(Line { kind, amount });
            left -= amount;
        }
    }
    RefundQuote {
        rule: before.rule,
        total: lines.iter().map(|l| l.amount).sum(),
        lines,
    }
}

/// Records `quote` as refunds owed of the booking's payments (the newest
/// first, each no more than is left of it), audited; the caller sends them
/// to the gateway once this commits.
pub async fn owe(
    c: &mut Conn<'_>,
    actor: &AuditActor,
    booking: i64,
    paid: &[Payment],
    quote: &RefundQuote,
    reason: &str,
    at: NaiveDateTime,
) -> Result<Vec<Refund>, ApiError> {
    let mut left = quote.total;
    let mut shares = Vec::new();
    for payment in paid {
        let take = left.min(payment.refundable());
        if take > 0 {
            shares.push((payment, take));
            left -= take;
        }
    }
    let amounts: Vec<i64> = shares.iter().map(|(_, a)| *a).collect();
    let parts = quote.split(&amounts);
    let mut made = Vec::new();
    let mut records = Vec::new();
    for ((payment, amount), lines) in shares.into_iter().zip(parts) {
        let lines = serde_json::to_string(&lines).map_err(|e| ApiError::Internal(e.into()))?;
        let (refund, _) = refunds::create(
            c,
            &NewRefund {
                payment_id: payment.id,
                booking_id: booking,
                gateway_refund_id: None,
                amount,
                currency: &payment.currency,
                status: PENDING,
                reason,
                lines: &lines,
                failure_reason: None,
                created_at: at,
                updated_at: at,
            },
        )
        .await?;
        records.push(
            AuditRecord::new(
                Action::PaymentRefundRequested,
                ObjectType::Payment,
                Some(payment.id),
            )
            .with(
                json!({"booking_id": booking, "refund_id": refund.id, "amount": amount,
                         "currency": payment.currency, "reason": reason,
                         "rule": quote.rule}),
            ),
        );
        made.push(refund);
    }
    audit_log::record(c, actor, &records, at).await?;
    Ok(made)
}

/// What the gateway's word of a refund did.
#[derive(Clone, Debug)]
pub enum RefundSettled {
    Unchanged,
    Succeeded(Payment, Refund),
    Failed(Payment, Refund),
}

/// Applies the gateway's word of a refund of `payment`: Roost's own (found
/// by its reference or the gateway's id) succeeds or fails; one made at the
/// gateway is recorded, as far as the payment has money left to refund.
pub async fn settle(
    c: &mut Conn<'_>,
    actor: &AuditActor,
    payment: &Payment,
    kind: EventKind,
    reported: &GatewayRefund,
    event_id: &str,
    at: NaiveDateTime,
) -> Result<RefundSettled, ApiError> {
    let mut known = None;
    if let Some(id) = reported.reference.as_deref().and_then(|r| r.parse().ok()) {
        known = refunds::find(c, id)
            .await?
            .filter(|r| r.payment_id == payment.id);
    }
    if known.is_none() {
        known = refunds::find_by_gateway_id(c, &reported.id).await?;
    }
    let details = |refund: &Refund| {
        json!({"booking_id": refund.booking_id, "refund_id": refund.id, "amount": refund.amount,
               "currency": refund.currency, "reason": refund.reason, "event_id": event_id})
    };
    match (known, kind) {
        (Some(refund), EventKind::RefundSucceeded) => {
            let Some((refund, payment)) =
                refunds::settle(c, &refund, SUCCEEDED, Some(&reported.id), None, at).await?
            else {
                return Ok(RefundSettled::Unchanged);
            };
            let payment = mark_if_refunded(c, payment, at).await?;
            let record = AuditRecord::new(
                Action::PaymentRefunded,
                ObjectType::Payment,
                Some(payment.id),
            )
            .with(details(&refund));
            audit_log::record(c, actor, &[record], at).await?;
            Ok(RefundSettled::Succeeded(payment, refund))
        }
        (Some(refund), EventKind::RefundFailed) => {
            let failure = reported.failure.as_deref().unwrap_or("refund_failed");
            let Some((refund, payment)) =
                refunds::settle(c, &refund, FAILED, Some(&reported.id), Some(failure), at).await?
            else {
                return Ok(RefundSettled::Unchanged);
            };
            let mut d = details(&refund);
            d["failure"] = json!(failure);
            let record = AuditRecord::new(
                Action::PaymentRefundFailed,
                ObjectType::Payment,
                Some(payment.id),
            )
            .with(d);
            audit_log::record(c, actor, &[record], at).await?;
            Ok(RefundSettled::Failed(payment, refund))
        }
        (None, EventKind::RefundSucceeded) => {
            // Made at the gateway (its dashboard, an operator): recorded as
            // far as the payment has money left to give back.
            let amount = reported.amount.min(payment.refundable());
            if amount <= 0 {
                tracing::warn!(refund = %reported.id, payment = payment.id,
                    "the gateway reports a refund beyond what is left of the payment");
                return Ok(RefundSettled::Unchanged);
            }
            let lines = json!([{"kind": "nights", "amount": amount}]).to_string();
            let (refund, payment) = refunds::create(
                c,
                &NewRefund {
                    payment_id: payment.id,
                    booking_id: payment.booking_id,
                    gateway_refund_id: Some(&reported.id),
                    amount,
                    currency: &payment.currency,
                    status: SUCCEEDED,
                    reason: "refunded_at_gateway",
                    lines: &lines,
                    failure_reason: None,
                    created_at: at,
                    updated_at: at,
                },
            )
            .await?;
            let payment = mark_if_refunded(c, payment, at).await?;
            let record = AuditRecord::new(
                Action::PaymentRefunded,
                ObjectType::Payment,
                Some(payment.id),
            )
            .with(details(&refund));
            audit_log::record(c, actor, &[record], at).await?;
            Ok(RefundSettled::Succeeded(payment, refund))
        }
        _ => Ok(RefundSettled::Unchanged),
    }
}

/// A payment whose succeeded refunds add up to it is `refunded`.
async fn mark_if_refunded(
    c: &mut Conn<'_>,
    mut payment: Payment,
    at: NaiveDateTime,
) -> Result<Payment, ApiError> {
    if refunds::succeeded_total(c, payment.id).await? < payment.amount {
        return Ok(payment);
    }
    payment.status = PaymentStatus::Refunded.as_str().into();
    payment.updated_at = at;
    Ok(payments::save(c, &payment).await?)
}
