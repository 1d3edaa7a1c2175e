//! Bookings and blocks: every change to a calendar goes to its listing's actor.

use crate::actors::PropertyRegistry;
use crate::actors::property::{
    AddBlock, CancelBooking, Cancelled, ChangeBooking, Changed, GetAvailability, PlaceHold,
    RemoveBlock,
};
use crate::actors::refunds::{self, CancellationTerms};
use crate::auth::AuthUser;
use crate::commit::Commit;
use crate::config::Settings;
use crate::db::Db;
use crate::db::calendar::{self, BookingsOf, Entry, KIND_BOOKING};
use crate::db::properties::Property;
use crate::domain::audit::{AuditActor, ObjectType};
use crate::domain::calendar::Busy;
use crate::domain::cancellation::CancelledBy;
use crate::domain::{BlockId, BookingId, PropertyId, Role, StayDates};
use crate::error::ApiError;
use crate::services::audit as trail;
use crate::services::properties;

/// What a guest asks to book.
pub struct BookingRequest {
    pub property: PropertyId,
    pub dates: StayDates,
    pub guests: i64,
    /// The total they were quoted, if they want it held to.
    pub expected_total: Option<i64>,
}

/// Holds the nights for the signed-in guest: a pending booking, priced now.
pub async fn create(
    registry: &PropertyRegistry,
    settings: &Settings,
    commit: &Commit<Entry>,
    auth: &AuthUser,
    request: BookingRequest,
) -> Result<Entry, ApiError> {
    let hold = PlaceHold {
        guest: auth.id,
        dates: request.dates,
        guests: request.guests,
        service_fee_bp: settings.service_fee_bp,
        expected_total: request.expected_total,
        commit: commit.clone(),
        asked: std::time::Instant::now(),
    };
    registry.send(request.property, hold).await
}

/// What a guest asks to change of a pending booking (`None`: as it is).
pub struct BookingChange {
    pub check_in: Option<chrono::NaiveDate>,
    pub check_out: Option<chrono::NaiveDate>,
    pub guests: Option<i64>,
}

/// Moves the guest's pending booking to other nights or guests, re-priced:
/// all of it, or nothing. Only its guest may; its host and admins may read
/// it but not change it (403).
pub async fn change(
    db: &Db,
    registry: &PropertyRegistry,
    settings: &Settings,
    commit: &Commit<Changed>,
    auth: &AuthUser,
    id: BookingId,
    change: BookingChange,
) -> Result<Changed, ApiError> {
    let actor = &commit.actor;
    let (entry, _) = get(db, actor, auth, id, "booking.change").await?;
    if entry.guest_id != Some(auth.id.0) {
        let refusal = ApiError::Forbidden("only the booking's guest can change it");
        let kind = ObjectType::Booking;
        return Err(trail::denied(db, actor, kind, Some(id.0), "booking.change", refusal).await);
    }
    let check_in = change.check_in.unwrap_or(entry.check_in);
    let check_out = change.check_out.unwrap_or(entry.check_out);
    let dates = StayDates::new(check_in, check_out).map_err(ApiError::validation)?;
    let message = ChangeBooking {
        booking: id,
        guest: auth.id,
        dates,
        guests: change.guests.or(entry.guests).unwrap_or(1),
        service_fee_bp: settings.service_fee_bp,
        commit: commit.clone(),
    };
    registry.send(PropertyId(entry.property_id), message).await
}

/// A booking its guest, its listing's host or an admin may see; anyone else
/// is told it does not exist (and the attempt at `attempted` is recorded).
pub async fn get(
    db: &Db,
    actor: &AuditActor,
    auth: &AuthUser,
    id: BookingId,
    attempted: &str,
) -> Result<(Entry, i64), ApiError> {
    let (entry, host_id) = db
        .run(move |mut conn| async move {
            let Some(entry) = calendar::find(&mut conn, id.0)
                .await?
                .filter(|e| e.kind == KIND_BOOKING)
            else {
                return Ok(None);
            };
            let host_id = crate::db::properties::find(&mut conn, entry.property_id)
                .await?
                .map(|p| p.host_id);
            Ok::<_, ApiError>(host_id.map(|h| (entry, h)))
        })
        .await?
        .ok_or(ApiError::NotFound("booking"))?;
    let allowed =
        entry.guest_id == Some(auth.id.0) || host_id == auth.id.0 || auth.role == Role::Admin;
    if !allowed {
        let refusal = ApiError::NotFound("booking");
        let kind = ObjectType::Booking;
        return Err(trail::denied(db, actor, kind, Some(id.0), attempted, refusal).await);
    }
    Ok((entry, host_id))
}

/// One page, newest first: my trips, or the bookings of my listings.
pub async fn list(
    db: &Db,
    of: BookingsOf,
    before_id: i64,
    limit: i64,
) -> Result<Vec<Entry>, ApiError> {
    db.run(move |mut conn| async move {
        Ok(calendar::list_bookings(&mut conn, of, before_id, limit).await?)
    })
    .await
}

/// Cancelling as whom: the guest of their own booking (under the
/// listing's policy), its listing's host, or an admin.
fn cancelling_as(entry: &Entry, host_id: i64, auth: &AuthUser) -> CancelledBy {
    if entry.guest_id == Some(auth.id.0) {
        CancelledBy::Guest
    } else if host_id == auth.id.0 {
        CancelledBy::Host
    } else {
        CancelledBy::Admin
    }
}

/// Its guest or its listing's host (or an admin) cancels; the nights are
/// free at once, and a paid stay's refund is owed in the same transaction.
pub async fn cancel(
    db: &Db,
    registry: &PropertyRegistry,
    commit: &Commit<Cancelled>,
    auth: &AuthUser,
    id: BookingId,
) -> Result<Cancelled, ApiError> {
    let (entry, host_id) = get(db, &commit.actor, auth, id, "booking.cancel").await?;
    let message = CancelBooking {
        booking: id,
        by: auth.id,
        as_: cancelling_as(&entry, host_id, auth),
        commit: commit.clone(),
    };
    registry.send(PropertyId(entry.property_id), message).await
}

/// What cancelling the booking now would refund to its caller's side
/// (its guest, host or an admin), and the listing's terms.
pub async fn cancellation_terms(
    db: &Db,
    actor: &AuditActor,
    auth: &AuthUser,
    id: BookingId,
) -> Result<(CancellationTerms, Property, Entry, CancelledBy), ApiError> {
    let (entry, host_id) = get(db, actor, auth, id, "booking.read").await?;
    let as_ = cancelling_as(&entry, host_id, auth);
    let (property, paid) = db
        .run(move |mut conn| async move {
            let property = crate::db::properties::find(&mut conn, entry.property_id)
                .await?
                .ok_or(ApiError::NotFound("booking"))?;
            let paid = crate::db::payments::for_booking(&mut conn, id.0).await?;
            Ok::<_, ApiError>((property, paid))
        })
        .await?;
    let terms = refunds::cancellation_terms(&property, &entry, &paid, as_, crate::db::now());
    Ok((terms, property, entry, as_))
}

/// Blocks nights (the caller has checked that `auth` owns the listing).
pub async fn add_block(
    db: &Db,
    registry: &PropertyRegistry,
    commit: &Commit<Entry>,
    auth: &AuthUser,
    property: PropertyId,
    dates: StayDates,
    reason: String,
) -> Result<Entry, ApiError> {
    properties::get_owned(db, &commit.actor, auth, property, "block.add").await?;
    let block = AddBlock {
        by: auth.id,
        dates,
        reason,
        commit: commit.clone(),
    };
    registry.send(property, block).await
}

pub async fn remove_block(
    db: &Db,
    registry: &PropertyRegistry,
    commit: &Commit<()>,
    auth: &AuthUser,
    property: PropertyId,
    block: BlockId,
) -> Result<(), ApiError> {
    properties::get_owned(db, &commit.actor, auth, property, "block.remove").await?;
    let commit = commit.clone();
    registry.send(property, RemoveBlock { block, commit }).await
}

/// The taken nights inside `window`, from the listing's actor.
pub async fn availability(
    registry: &PropertyRegistry,
    property: PropertyId,
    window: StayDates,
) -> Result<Vec<(StayDates, Busy)>, ApiError> {
    registry.send(property, GetAvailability { window }).await
}

/// The booking's latest payment, if it has one, and its refunds (the
/// caller may see the booking).
pub async fn money_of(
    db: &Db,
    id: BookingId,
) -> Result<
    (
        Option<crate::db::payments::Payment>,
        Vec<crate::db::refunds::Refund>,
    ),
    ApiError,
> {
    // One snapshot: a refund settles in the same commit as its payment's
    // status, and two reads either side of that commit would show the
    // refund succeeded and the payment not yet refunded.
    db.run(move |mut conn| async move {
        crate::snapshot_tx!(&mut conn, |c| {
            let payment = crate::db::payments::for_booking(c, id.0)
                .await?
                .into_iter()
                .next();
            let refunds = crate::db::refunds::for_booking(c, id.0).await?;
            Ok::<_, ApiError>((payment, refunds))
        })
    })
    .await
}
