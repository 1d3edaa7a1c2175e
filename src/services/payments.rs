//! Paying for a booking: a payment started at the gateway for the booking's
//! total, then settled by the gateway's signed webhooks through the
//! listing's actor (confirmation, failures, holds kept while processing),
//! refunds when a paid booking has no stay left to sell, and the guest told
//! on their user channel.

use serde_json::json;

use crate::actors::PropertyRegistry;
use crate::actors::bus::{EventBus, Notice};
use crate::actors::property::{SettlePayment, Settled, effective_status};
use crate::actors::refunds::RefundSettled;
use crate::auth::AuthUser;
use crate::commit::Commit;
use crate::db::changes::{self, Change as BookingChange};
use crate::db::payments::{self, NewPayment, Payment};
use crate::db::refunds::{self, Refund};
use crate::db::{Db, audit, now};
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::payment::{EventKind, GatewayEvent, NextAction, PaymentStatus, Subject};
use crate::domain::{BookingId, BookingStatus, PropertyId, UserId};
use crate::error::ApiError;
use crate::payments::{GatewayError, NewPayment as NewGatewayPayment, PaymentGateway};
use crate::services::{audit as trail, bookings};

/// A payment just started: what the payer's client does next.
#[derive(Clone, Debug)]
pub struct Started {
    pub payment: Payment,
    pub next_action: Option<NextAction>,
}

fn gateway_down(e: GatewayError) -> ApiError {
    tracing::warn!(error = %e, "payment gateway");
    ApiError::Unavailable(crate::db::Unavailable::new(e.to_string()))
}

/// Starts a payment at the gateway (its guest only): of a pending
/// booking's total, or of the difference of a confirmed booking's change
/// awaiting payment; none while one for the same is processing or paid.
pub async fn start(
    db: &Db,
    gateway: &dyn PaymentGateway,
    commit: &Commit<Started>,
    auth: &AuthUser,
    booking: BookingId,
) -> Result<Started, ApiError> {
    let actor = &commit.actor;
    let (entry, _) = bookings::get(db, actor, auth, booking, "payment.create").await?;
    if entry.guest_id != Some(auth.id.0) {
        let refusal = ApiError::Forbidden("only the booking's guest pays for it");
        let kind = ObjectType::Booking;
        return Err(
            trail::denied(db, actor, kind, Some(booking.0), "payment.create", refusal).await,
        );
    }
    let (earlier, awaiting) = db
        .run(move |mut conn| async move {
            let earlier = payments::for_booking(&mut conn, booking.0).await?;
            let awaiting = changes::awaiting(&mut conn, booking.0).await?;
            Ok::<_, ApiError>((earlier, awaiting))
        })
        .await?;
    // What is paid for: the booking's total while it is a hold, or the
    // difference of a dearer change of a confirmed stay.
    let change = match (effective_status(&entry, now())?, awaiting) {
        (BookingStatus::Pending, _) => None,
        (BookingStatus::Confirmed, Some(change)) => Some(change),
        _ => {
            return Err(ApiError::Unprocessable {
                code: "invalid_transition",
                message: "only a pending booking (a hold that has not lapsed), or a confirmed one with a change awaiting payment, can be paid".into(),
            });
        }
    };
    let change_id = change.as_ref().map(|c| c.id);
    for p in earlier.iter().filter(|p| p.change_id == change_id) {
        match PaymentStatus::parse(&p.status) {
            Some(PaymentStatus::Processing) => {
                return Err(ApiError::Conflict {
                    code: "payment_in_progress",
                    message: "a payment for this booking is processing; wait for its outcome",
                });
            }
            Some(s) if s.is_paid() => {
                return Err(ApiError::Conflict {
                    code: "already_paid",
                    message: "this booking is paid",
                });
            }
            _ => {}
        }
    }
    let (total, currency) = match (&change, entry.total, entry.currency.clone()) {
        (Some(change), _, Some(currency)) => (change.difference, currency),
        (None, Some(total), Some(currency)) => (total, currency),
        _ => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "booking {} has no total",
                entry.id
            )));
        }
    };
    // Keyed by the booking and how many payments it had: a retry of this
    // call (a timeout, a crash before the row below) is the same payment.
    let key = format!("roost-booking-{}-payment-{}", entry.id, earlier.len() + 1);
    let reported = gateway
        .create_payment(NewGatewayPayment {
            amount: total,
            currency: &currency,
            booking: entry.id,
            key: &key,
        })
        .await
        .map_err(gateway_down)?;
    let gateway_name = gateway.kind().as_str();
    let commit = commit.clone();
    let guest = auth.id.0;
    db.write(move |c| {
        Box::pin(async move {
            let at = now().naive_utc();
            let payment = payments::insert(
                c,
                &NewPayment {
                    booking_id: entry.id,
                    guest_id: guest,
                    gateway: gateway_name,
                    gateway_payment_id: &reported.id,
                    status: PaymentStatus::RequiresPaymentMethod.as_str(),
                    amount: total,
                    currency: &currency,
                    failure_reason: None,
                    card_brand: None,
                    card_last4: None,
                    created_at: at,
                    updated_at: at,
                    change_id,
                },
            )
            .await?;
            let record = AuditRecord::new(
                Action::PaymentCreated,
                ObjectType::Payment,
                Some(payment.id),
            )
            .with(
                json!({"booking_id": entry.id, "amount": total, "currency": currency,
                             "gateway": gateway_name, "gateway_payment_id": reported.id,
                             "change_id": change_id}),
            );
            audit::record(c, &commit.actor, &[record], at).await?;
            let started = Started {
                payment,
                next_action: reported.next_action.clone(),
            };
            commit.seal(c, &started).await?;
            Ok::<_, ApiError>(started)
        })
    })
    .await
}

/// What a webhook's processing needs.
pub struct Settlement<'a> {
    pub db: &'a Db,
    pub registry: &'a PropertyRegistry,
    pub bus: &'a EventBus,
    pub gateway: &'a dyn PaymentGateway,
    pub processing_hold: std::time::Duration,
}

impl Settlement<'_> {
    /// Processes a verified event, once: through the listing's actor, then
    /// the guest is told, and refunds owed are sent.
    pub async fn settle(&self, actor: &AuditActor, event: GatewayEvent) -> Result<(), ApiError> {
        let gateway = self.gateway.kind().as_str();
        let id = event.payment_id().to_owned();
        let found = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(payments::find_with_listing(&mut conn, gateway, &id).await?)
            })
            .await?;
        let Some((payment, listing)) = found else {
            // Not one of ours (or not yet): noted, so a redelivery is quiet.
            tracing::warn!(event = %event.id, payment = %event.payment_id(), "webhook for an unknown payment");
            let (event_id, kind) = (event.id.clone(), event.kind.as_str());
            self.db
                .run(move |mut conn| async move {
                    let at = now().naive_utc();
                    Ok::<_, ApiError>(
                        payments::record_event(&mut conn, gateway, &event_id, kind, at).await?,
                    )
                })
                .await?;
            return Ok(());
        };
        let message = SettlePayment {
            gateway: gateway.to_owned(),
            event,
            payment: payment.id,
            processing_hold: self.processing_hold,
            actor: actor.clone(),
        };
        let settled = self.registry.send(PropertyId(listing), message).await?;
        match settled {
            Settled::Confirmed(payment, _) => self.tell(&payment, "payment_succeeded", None),
            Settled::Failed(payment) => {
                let reason = payment.failure_reason.clone();
                self.tell(&payment, "payment_failed", reason.as_deref());
            }
            Settled::RefundOwed(payment) => {
                self.send_refunds(BookingId(payment.booking_id)).await;
            }
            Settled::ChangeUnavailable(payment, change) => {
                self.tell_change(Some(payment.guest_id), &change, "change_unavailable");
                self.send_refunds(BookingId(payment.booking_id)).await;
            }
            Settled::Refund(refund) => match *refund {
                RefundSettled::Succeeded(payment, refund) => {
                    self.tell_refund(&payment, &refund, "payment_refunded");
                }
                RefundSettled::Failed(payment, refund) => {
                    self.tell_refund(&payment, &refund, "refund_failed");
                }
                RefundSettled::Unchanged => {}
            },
            Settled::Duplicate | Settled::Unchanged(_) | Settled::Processing(_) => {}
        }
        Ok(())
    }

    /// Asks the gateway for one refund Roost owes; notes the gateway's id.
    /// Its outcome arrives later, by webhook (or the reconciler).
    async fn send(&self, refund: &Refund) -> Result<(), ApiError> {
        let payment_id = refund.payment_id;
        let payment = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(payments::find(&mut conn, payment_id).await?)
            })
            .await?
            .ok_or(ApiError::NotFound("payment"))?;
        let made = self
            .gateway
            .refund(&payment.gateway_payment_id, refund.amount, refund.id)
            .await
            .map_err(gateway_down)?;
        let id = refund.id;
        self.db
            .run(move |mut conn| async move {
                let at = now().naive_utc();
                Ok::<_, ApiError>(refunds::set_gateway_id(&mut conn, id, &made.id, at).await?)
            })
            .await
    }

    /// Sends the refunds a booking owes and has not sent yet. One the
    /// gateway cannot take now stays owed, and housekeeping sends it later:
    /// the caller's change stands either way.
    pub async fn send_refunds(&self, booking: BookingId) {
        let owed = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(refunds::for_booking(&mut conn, booking.0).await?)
            })
            .await;
        let owed = match owed {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, booking = booking.0, "reading refunds owed; housekeeping will send them");
                return;
            }
        };
        for refund in owed {
            if refund.status != refunds::PENDING || refund.gateway_refund_id.is_some() {
                continue;
            }
            if let Err(e) = self.send(&refund).await {
                tracing::warn!(error = %e, refund = refund.id, "refund not sent yet; housekeeping will retry");
            }
        }
    }

    /// A `payment` frame on the guest's user channel.
    fn tell(&self, payment: &Payment, kind: &str, reason: Option<&str>) {
        let mut frame = json!({
            "type": "payment",
            "kind": kind,
            "booking_id": payment.booking_id,
            "payment_id": payment.id,
            "amount": payment.amount,
            "currency": payment.currency,
        });
        if let Some(reason) = reason {
            frame["reason"] = json!(reason);
        }
        self.bus
            .notify(Notice::to_user(UserId(payment.guest_id), frame));
    }

    /// A paid booking's change to a dearer stay, as a `payment` frame on
    /// the guest's channel: awaiting its payment, or found unavailable.
    pub fn tell_change(&self, guest: Option<i64>, change: &BookingChange, kind: &str) {
        let Some(guest) = guest else { return };
        self.bus.notify(Notice::to_user(
            UserId(guest),
            json!({
                "type": "payment",
                "kind": kind,
                "booking_id": change.booking_id,
                "change_id": change.id,
                "amount": change.difference,
                "check_in": change.check_in,
                "check_out": change.check_out,
            }),
        ));
    }

    /// A refund's outcome, as a `payment` frame on the guest's channel.
    fn tell_refund(&self, payment: &Payment, refund: &Refund, kind: &str) {
        let frame = json!({
            "type": "payment",
            "kind": kind,
            "booking_id": refund.booking_id,
            "payment_id": payment.id,
            "refund_id": refund.id,
            "amount": refund.amount,
            "currency": refund.currency,
            "reason": refund.reason,
            "lines": serde_json::from_str::<serde_json::Value>(&refund.lines).unwrap_or_default(),
        });
        self.bus
            .notify(Notice::to_user(UserId(payment.guest_id), frame));
    }

    /// Refunds decided but not sent `after` they were (the gateway was
    /// unreachable then), oldest first; returns how many were sent. Sent
    /// again under the same Idempotency-Key, a refund the gateway did make
    /// (its answer lost) is answered, not made twice.
    pub async fn retry_refunds(&self, after: std::time::Duration) -> Result<usize, ApiError> {
        let after = chrono::Duration::from_std(after).map_err(|e| ApiError::Internal(e.into()))?;
        let before = (now() - after).naive_utc();
        let owed = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(refunds::unsent(&mut conn, before, 100).await?)
            })
            .await?;
        let mut sent = 0;
        for refund in owed {
            match self.send(&refund).await {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!(error = %e, refund = refund.id, "refund not sent yet"),
            }
        }
        Ok(sent)
    }

    /// Asks the gateway about payments and refunds whose outcome has not
    /// arrived `after` their last change, and applies what it says through
    /// the webhook's own path (an event id derived from the object and its
    /// state, so it applies once, whichever node asks and however often).
    /// Each is claimed by one node per round. Returns how many it applied.
    pub async fn reconcile(&self, after: std::time::Duration) -> Result<usize, ApiError> {
        let after = chrono::Duration::from_std(after).map_err(|e| ApiError::Internal(e.into()))?;
        let at = now();
        let (before, since) = ((at - after).naive_utc(), (at - MAX_PAYMENT_AGE).naive_utc());
        let (waiting, refunds_waiting) = self
            .db
            .run(move |mut conn| async move {
                let p = payments::unsettled(&mut conn, since, before, 50).await?;
                let r = refunds::awaiting_outcome(&mut conn, before, 50).await?;
                Ok::<_, ApiError>((p, r))
            })
            .await?;
        let mut applied = 0;
        for payment in waiting {
            let id = payment.id;
            let claimed = self
                .db
                .run(move |mut conn| async move {
                    let at = now().naive_utc();
                    Ok::<_, ApiError>(payments::claim_check(&mut conn, id, before, at).await?)
                })
                .await?;
            if !claimed {
                continue;
            }
            let reported = match self.gateway.payment(&payment.gateway_payment_id).await {
                Ok(reported) => reported,
                Err(e) => {
                    tracing::warn!(error = %e, payment = id, "reconciling: the gateway did not answer");
                    continue;
                }
            };
            let Some(kind) = EventKind::of_payment(reported.status) else {
                continue;
            };
            let news = match PaymentStatus::parse(&payment.status) {
                Some(PaymentStatus::RequiresPaymentMethod) => true,
                Some(PaymentStatus::Processing) => kind == EventKind::PaymentSucceeded,
                _ => false,
            };
            if !news {
                continue;
            }
            let event = GatewayEvent {
                id: format!("reconciled:{}:{}", reported.id, kind.as_str()),
                kind,
                subject: Subject::Payment(reported),
            };
            // One that cannot be applied now is asked about next round; the
            // others go on.
            match self.apply_reconciled(&payment, event).await {
                Ok(()) => applied += 1,
                Err(e) => {
                    tracing::warn!(error = %e, payment = payment.id, "reconciling: not applied yet")
                }
            }
        }
        for refund in refunds_waiting {
            let (id, Some(gateway_id)) = (refund.id, refund.gateway_refund_id.clone()) else {
                continue;
            };
            let claimed = self
                .db
                .run(move |mut conn| async move {
                    let at = now().naive_utc();
                    Ok::<_, ApiError>(refunds::claim_check(&mut conn, id, before, at).await?)
                })
                .await?;
            if !claimed {
                continue;
            }
            let mut reported = match self.gateway.refund_status(&gateway_id).await {
                Ok(reported) => reported,
                Err(e) => {
                    tracing::warn!(error = %e, refund = id, "reconciling: the gateway did not answer");
                    continue;
                }
            };
            let Some(kind) = EventKind::of_refund(reported.status) else {
                continue;
            };
            reported.reference.get_or_insert_with(|| id.to_string());
            let payment_id = refund.payment_id;
            let Some(payment) = self
                .db
                .run(move |mut conn| async move {
                    Ok::<_, ApiError>(payments::find(&mut conn, payment_id).await?)
                })
                .await?
            else {
                continue;
            };
            let event = GatewayEvent {
                id: format!("reconciled:{}:{}", reported.id, kind.as_str()),
                kind,
                subject: Subject::Refund(reported),
            };
            // One that cannot be applied now is asked about next round; the
            // others go on.
            match self.apply_reconciled(&payment, event).await {
                Ok(()) => applied += 1,
                Err(e) => {
                    tracing::warn!(error = %e, payment = payment.id, "reconciling: not applied yet")
                }
            }
        }
        Ok(applied)
    }

    /// Records what the gateway said (`payment.reconciled`), then settles
    /// it as the webhook would have.
    async fn apply_reconciled(
        &self,
        payment: &Payment,
        event: GatewayEvent,
    ) -> Result<(), ApiError> {
        let actor = AuditActor::system();
        let record = AuditRecord::new(
            Action::PaymentReconciled,
            ObjectType::Payment,
            Some(payment.id),
        )
        .with(
            json!({"booking_id": payment.booking_id, "event_id": event.id,
                         "kind": event.kind.as_str()}),
        );
        tracing::info!(payment = payment.id, event = %event.id, "reconciled: the gateway's word had not arrived");
        trail::record_alone(self.db, &actor, vec![record]).await?;
        self.settle(&actor, event).await
    }
}

/// Payments older than this are not asked about: their hold, however
/// extended, is long over, and a success after it is refunded by webhook.
const MAX_PAYMENT_AGE: chrono::Duration = chrono::Duration::hours(48);
