//! Paying for a booking: a payment started at the gateway for the booking's
//! total, then settled by the gateway's signed webhooks through the
//! listing's actor (confirmation, failures, holds kept while processing),
//! refunds when a paid booking has no stay left to sell, and the guest told
//! on their user channel.

use serde_json::json;

use crate::actors::PropertyRegistry;
use crate::actors::bus::{EventBus, Notice};
use crate::actors::property::{SettlePayment, Settled, effective_status};
use crate::auth::AuthUser;
use crate::commit::Commit;
use crate::db::payments::{self, NewPayment, Payment};
use crate::db::{Db, audit, now};
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::payment::{GatewayEvent, NextAction, PaymentStatus};
use crate::domain::{BookingId, BookingStatus, PropertyId, UserId};
use crate::error::ApiError;
use crate::payments::{GatewayError, PaymentGateway};
use crate::services::{audit as trail, bookings};
use crate::write_tx;

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

/// Starts a payment of the booking's total at the gateway (its guest only;
/// a pending booking with no payment already processing or paid).
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
    if effective_status(&entry, now())? != BookingStatus::Pending {
        return Err(ApiError::Unprocessable {
            code: "invalid_transition",
            message: "only a pending booking (a hold that has not lapsed) can be paid".into(),
        });
    }
    let earlier = db
        .run(move |mut conn| async move {
            Ok::<_, ApiError>(payments::for_booking(&mut conn, booking.0).await?)
        })
        .await?;
    for p in &earlier {
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
    let (total, currency) = match (entry.total, entry.currency.clone()) {
        (Some(total), Some(currency)) => (total, currency),
        _ => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "booking {} has no total",
                entry.id
            )));
        }
    };
    let reported = gateway
        .create_payment(total, &currency, &entry.id.to_string())
        .await
        .map_err(gateway_down)?;
    let gateway_name = gateway.kind().as_str();
    let commit = commit.clone();
    let guest = auth.id.0;
    db.run(move |mut conn| async move {
        let at = now().naive_utc();
        write_tx!(&mut conn, |c| {
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
                             "gateway": gateway_name, "gateway_payment_id": reported.id}),
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
    /// the guest is told, and money with no stay to buy goes back.
    pub async fn settle(&self, actor: &AuditActor, event: GatewayEvent) -> Result<(), ApiError> {
        let gateway = self.gateway.kind().as_str();
        let id = event.payment.id.clone();
        let found = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(payments::find_with_listing(&mut conn, gateway, &id).await?)
            })
            .await?;
        let Some((payment, listing)) = found else {
            // Not one of ours (or not yet): noted, so a redelivery is quiet.
            tracing::warn!(event = %event.id, payment = %event.payment.id, "webhook for an unknown payment");
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
            Settled::RefundOwed(payment, reason) => self.refund(actor, payment, reason).await?,
            // The gateway's word of a refund can overtake our own record of
            // making it: whichever marks it refunded tells the guest.
            Settled::Refunded(payment) => {
                let reason = refund_reason(payment.failure_reason.as_deref());
                self.tell(&payment, "payment_refunded", Some(reason));
            }
            Settled::Duplicate | Settled::Unchanged(_) | Settled::Processing(_) => {}
        }
        Ok(())
    }

    /// Gives a paid booking's money back at the gateway, then records it
    /// and tells the guest. If the gateway cannot be reached, the payment
    /// stays owed a refund, and housekeeping tries again.
    pub async fn refund(
        &self,
        actor: &AuditActor,
        payment: Payment,
        reason: &'static str,
    ) -> Result<(), ApiError> {
        self.gateway
            .refund(&payment.gateway_payment_id, None)
            .await
            .map_err(gateway_down)?;
        let actor = actor.clone();
        let id = payment.id;
        let refunded = self
            .db
            .run(move |mut conn| async move {
                let at = now().naive_utc();
                write_tx!(&mut conn, |c| {
                    let Some(mut p) = payments::find(c, id).await? else {
                        return Ok::<_, ApiError>(None);
                    };
                    if p.status != PaymentStatus::RefundPending.as_str() {
                        return Ok(None);
                    }
                    p.status = PaymentStatus::Refunded.as_str().into();
                    p.updated_at = at;
                    let p = payments::save(c, &p).await?;
                    let record =
                        AuditRecord::new(Action::PaymentRefunded, ObjectType::Payment, Some(p.id))
                            .with(json!({"booking_id": p.booking_id, "amount": p.amount,
                                     "currency": p.currency, "reason": reason}));
                    audit::record(c, &actor, &[record], at).await?;
                    Ok(Some(p))
                })
            })
            .await?;
        if let Some(p) = refunded {
            self.tell(&p, "payment_refunded", Some(reason));
        }
        Ok(())
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
        self.bus.notify(Notice {
            user: UserId(payment.guest_id),
            frame,
        });
    }

    /// Makes the refunds a booking is owed now (after a cancellation of a
    /// paid stay). One the gateway cannot take now stays owed, and
    /// housekeeping makes it later: the caller's change stands either way.
    pub async fn refund_owed(&self, actor: &AuditActor, booking: BookingId) {
        let owed = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(payments::for_booking(&mut conn, booking.0).await?)
            })
            .await;
        let owed = match owed {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, booking = booking.0, "reading refunds owed; housekeeping will make them");
                return;
            }
        };
        for payment in owed {
            if payment.status != PaymentStatus::RefundPending.as_str() {
                continue;
            }
            let reason = refund_reason(payment.failure_reason.as_deref());
            if let Err(e) = self.refund(actor, payment, reason).await {
                tracing::warn!(error = %e, booking = booking.0, "refund not made yet; housekeeping will retry");
            }
        }
    }

    /// Refunds still owed (the gateway was unreachable when they were
    /// due), oldest first; returns how many were made.
    pub async fn retry_refunds(&self) -> Result<usize, ApiError> {
        let before = (now() - chrono::Duration::seconds(10)).naive_utc();
        let owed = self
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(payments::refunds_owed(&mut conn, before, 100).await?)
            })
            .await?;
        let mut made = 0;
        for payment in owed {
            let reason = refund_reason(payment.failure_reason.as_deref());
            self.refund(&AuditActor::system(), payment, reason).await?;
            made += 1;
        }
        Ok(made)
    }
}

/// Why a payment owed a refund is owed it, as stored with it; none stored:
/// the refund was made at the gateway, not asked for by Roost.
fn refund_reason(stored: Option<&str>) -> &'static str {
    match stored {
        Some("hold_lapsed") => "hold_lapsed",
        Some("booking_cancelled") => "booking_cancelled",
        Some("already_paid") => "already_paid",
        _ => "refunded_at_gateway",
    }
}
