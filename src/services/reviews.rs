//! Reviews after a stay (rules in `domain::review`): writing them, their
//! double-blind publication, edits, replies, removal, and the totals that
//! move with each.
//!
//! Every write to a stay's reviews takes its listing's lock first (the
//! calendar's: `SELECT … FOR UPDATE` on PostgreSQL, the write lock on
//! SQLite), then any guest's row it counts on. So the second side's review
//! always sees the first, a publication happens once however many nodes
//! race to it, and totals move exactly once per change.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use crate::actors::bus::{EventBus, Notice};
use crate::auth::AuthUser;
use crate::commit::Commit;
use crate::db::properties::{self, Property};
use crate::db::reviews::{self, NewReview, Position, RatingFields, Review, ReviewsOf};
use crate::db::users::User;
use crate::db::{Conn, Db, audit, calendar, now};
use crate::domain::audit::{Action, AuditActor, AuditRecord, ObjectType};
use crate::domain::review::{self, Ratings, ReviewInput, Side, Totals};
use crate::domain::{BookingId, FieldErrors, PropertyId, Role, UserId};
use crate::error::ApiError;
use crate::services::audit as trail;
use crate::services::{accounts, bookings};

/// A review change's outcome: the review as its caller now sees it, and
/// the reviews this change published (to tell their audiences).
pub struct Outcome {
    pub review: Review,
    pub published: Vec<Publication>,
}

/// A review just published, with its subject's totals after it.
#[derive(Clone, Debug)]
pub struct Publication {
    pub review: Review,
    pub totals: Totals,
}

fn not_completed() -> ApiError {
    ApiError::Unprocessable {
        code: "stay_not_completed",
        message: "a stay can be reviewed once it is completed (from its check-out day)".into(),
    }
}

fn window_closed() -> ApiError {
    ApiError::Unprocessable {
        code: "review_window_closed",
        message: "this stay's review window has closed".into(),
    }
}

fn already_reviewed() -> ApiError {
    ApiError::Conflict {
        code: "already_reviewed",
        message: "you have already reviewed this stay; edit your review instead",
    }
}

fn listing_removed() -> ApiError {
    ApiError::Unprocessable {
        code: "listing_removed",
        message: "the listing has been removed; its stays can no longer be reviewed".into(),
    }
}

/// The stay's guest writes their review of the listing, or its host their
/// review of the guest (the caller's side decides which). If the other
/// side's is already written, both are published in this transaction.
pub async fn write(
    db: &Db,
    bus: &Arc<EventBus>,
    commit: &Commit<Review>,
    auth: &AuthUser,
    booking: BookingId,
    input: ReviewInput,
) -> Result<Review, ApiError> {
    let actor = &commit.actor;
    let (entry, host_id) = bookings::get(db, actor, auth, booking, "review.write").await?;
    let side = if entry.guest_id == Some(auth.id.0) {
        Side::Guest
    } else if host_id == auth.id.0 {
        Side::Host
    } else {
        let refusal = ApiError::Forbidden("only the stay's guest or its host may review it");
        let kind = ObjectType::Booking;
        return Err(trail::denied(db, actor, kind, Some(booking.0), "review.write", refusal).await);
    };
    let mut errors = FieldErrors::new();
    let parsed = input.parse_new(side, &mut errors);
    let Some((ratings, comment)) = parsed.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors.into_vec()));
    };
    let subject = match side {
        Side::Guest => host_id,
        Side::Host => entry.guest_id.ok_or(ApiError::NotFound("booking"))?,
    };
    let (commit, author) = (commit.clone(), auth.id.0);
    let outcome = db
        .write(move |c| {
            Box::pin(async move {
                let at = now();
                let listing = properties::lock_calendar(c, entry.property_id)
                    .await?
                    .ok_or(ApiError::NotFound("booking"))?;
                if listing.deleted_at.is_some() {
                    return Err(listing_removed());
                }
                let stay = calendar::find(c, booking.0)
                    .await?
                    .ok_or(ApiError::NotFound("booking"))?;
                if stay.status != "completed" {
                    return Err(not_completed());
                }
                let closes = stay.reviews_close_at.ok_or_else(not_completed)?;
                if at.naive_utc() >= closes {
                    return Err(window_closed());
                }
                let new = NewReview {
                    booking_id: booking.0,
                    property_id: listing.id,
                    side: side.as_str(),
                    author_id: author,
                    subject_id: subject,
                    ratings: RatingFields::from(&ratings),
                    comment: &comment,
                    created_at: at.naive_utc(),
                    updated_at: at.naive_utc(),
                    published_at: None,
                };
                let written = match reviews::insert(c, &new).await {
                    Ok(review) => review,
                    Err(e) if crate::db::is_unique_violation(&e) => {
                        return Err(already_reviewed());
                    }
                    Err(e) => return Err(e.into()),
                };
                let mut records = vec![
                    AuditRecord::new(Action::ReviewWritten, ObjectType::Review, Some(written.id))
                        .with(json!({"booking_id": booking.0, "side": side.as_str(),
                                     "rating": ratings.rating})),
                ];
                let both = reviews::for_booking(c, booking.0)
                    .await?
                    .iter()
                    .filter(|r| r.removed_at.is_none())
                    .count()
                    == 2;
                let published = if both {
                    publish(c, &listing, booking.0, at, &mut records).await?
                } else {
                    Vec::new()
                };
                audit::record(c, &commit.actor, &records, at.naive_utc()).await?;
                let review = published
                    .iter()
                    .map(|p| &p.review)
                    .find(|r| r.id == written.id)
                    .cloned()
                    .unwrap_or(written);
                commit.seal(c, &review).await?;
                Ok::<_, ApiError>(Outcome { review, published })
            })
        })
        .await?;
    tell(bus, &outcome.published);
    Ok(outcome.review)
}

/// Inside a transaction holding `listing`'s lock: publishes the booking's
/// waiting reviews and moves their subjects' totals; the audit rows go to
/// `records`. Returns what it published (nothing if another got there first).
async fn publish(
    c: &mut Conn<'_>,
    listing: &Property,
    booking: i64,
    at: chrono::DateTime<chrono::Utc>,
    records: &mut Vec<AuditRecord>,
) -> Result<Vec<Publication>, ApiError> {
    let published = reviews::publish_booking(c, booking, at.naive_utc()).await?;
    let mut out = Vec::with_capacity(published.len());
    for review in published {
        let totals = recount(c, listing, &review, None, Some(&review.ratings())).await?;
        records.push(
            AuditRecord::new(Action::ReviewPublished, ObjectType::Review, Some(review.id))
                .with(json!({"booking_id": booking, "side": review.side})),
        );
        out.push(Publication { review, totals });
    }
    Ok(out)
}

/// Moves the totals `review` counts in: `old` out, `new` in. A guest's
/// review counts on its listing (whose row the caller holds locked and
/// has read as `listing`: read again here, as an earlier move in this
/// transaction may have changed it); a host's on the guest's row, locked
/// here. Returns the totals after.
async fn recount(
    c: &mut Conn<'_>,
    listing: &Property,
    review: &Review,
    old: Option<&Ratings>,
    new: Option<&Ratings>,
) -> Result<Totals, ApiError> {
    let (mut totals, of_listing) = match review.side() {
        Side::Guest => {
            let now = properties::find(c, listing.id)
                .await?
                .ok_or(ApiError::NotFound("property"))?;
            (now.review_totals(), true)
        }
        Side::Host => (
            reviews::lock_guest_totals(c, review.subject_id).await?,
            false,
        ),
    };
    if let Some(old) = old {
        totals.apply(old, -1);
    }
    if let Some(new) = new {
        totals.apply(new, 1);
    }
    if of_listing {
        reviews::set_listing_totals(c, listing.id, &totals).await?;
    } else {
        reviews::set_guest_totals(c, review.subject_id, &totals).await?;
    }
    Ok(totals)
}

/// Tells each publication's audiences: the listing's subscribers get the
/// rating and the listing's counts (a guest's review), and the reviewed
/// party a frame on their own channel.
pub fn tell(bus: &Arc<EventBus>, published: &[Publication]) {
    for p in published {
        let r = &p.review;
        if r.side() == Side::Guest {
            // Its rating and count moved: search orders and filters by them.
            bus.listing_changed(PropertyId(r.property_id));
            bus.notify(Notice::to_listing(
                PropertyId(r.property_id),
                json!({
                    "type": "review_published",
                    "property_id": r.property_id,
                    "rating": r.rating,
                    "review_count": p.totals.count,
                    "rating_avg": p.totals.rating_avg(),
                }),
            ));
        }
        bus.notify(Notice::to_user(
            UserId(r.subject_id),
            json!({
                "type": "review",
                "kind": "review_published",
                "review_id": r.id,
                "booking_id": r.booking_id,
                "property_id": r.property_id,
                "side": r.side,
                "rating": r.rating,
            }),
        ));
    }
}

/// Publishes the reviews whose stay's window has closed unmatched, in
/// batches; several nodes may run it at once (each booking's reviews are
/// published once, under its listing's lock). Returns how many this node
/// published.
pub async fn publish_due(db: &Db, bus: &Arc<EventBus>, batch: i64) -> Result<usize, ApiError> {
    let mut total = 0;
    loop {
        let due = db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(reviews::due(&mut conn, now().naive_utc(), batch).await?)
            })
            .await?;
        let full = due.len() as i64 >= batch;
        let mut seen = HashSet::new();
        let mut done = 0;
        for (booking, listing) in due {
            if !seen.insert(booking) {
                continue;
            }
            let published = db
                .write(move |c| {
                    Box::pin(async move {
                        let at = now();
                        let Some(property) = properties::lock_calendar(c, listing).await? else {
                            return Ok::<_, ApiError>(Vec::new());
                        };
                        let mut records = Vec::new();
                        let published = publish(c, &property, booking, at, &mut records).await?;
                        audit::record(c, &AuditActor::system(), &records, at.naive_utc()).await?;
                        Ok(published)
                    })
                })
                .await?;
            done += published.len();
            tell(bus, &published);
        }
        total += done;
        // A full page that published nothing was all taken by other nodes.
        if !full || done == 0 {
            return Ok(total);
        }
    }
}

/// A review as `auth` may see it: published and not removed, or their own
/// (not removed), or any to an admin; otherwise it does not exist.
pub async fn get(db: &Db, auth: Option<&AuthUser>, id: i64) -> Result<Review, ApiError> {
    let review = db
        .run(move |mut conn| async move { Ok::<_, ApiError>(reviews::find(&mut conn, id).await?) })
        .await?
        .ok_or(ApiError::NotFound("review"))?;
    if visible(&review, auth) {
        Ok(review)
    } else {
        Err(ApiError::NotFound("review"))
    }
}

fn visible(review: &Review, auth: Option<&AuthUser>) -> bool {
    let admin = auth.is_some_and(|a| a.role == Role::Admin);
    let author = auth.is_some_and(|a| a.id.0 == review.author_id);
    admin || review.counted() || (author && review.removed_at.is_none())
}

/// A stay's reviews as its guest or host (or an admin) may see them now:
/// their own, and the other's once published. With the stay, for its
/// window.
pub async fn of_booking(
    db: &Db,
    actor: &AuditActor,
    auth: &AuthUser,
    booking: BookingId,
) -> Result<(crate::db::calendar::Entry, Vec<Review>), ApiError> {
    let (entry, _) = bookings::get(db, actor, auth, booking, "review.read").await?;
    let all = db
        .run(move |mut conn| async move {
            Ok::<_, ApiError>(reviews::for_booking(&mut conn, booking.0).await?)
        })
        .await?;
    let mine = all.into_iter().filter(|r| visible(r, Some(auth))).collect();
    Ok((entry, mine))
}

/// One page of a listing's published reviews, with the listing (for its
/// totals). A removed listing's are gone with it.
pub async fn of_listing(
    db: &Db,
    id: PropertyId,
    before: Option<Position>,
    limit: i64,
) -> Result<(Property, Vec<Review>), ApiError> {
    let listing = crate::services::properties::get(db, id).await?;
    let page = db
        .run(move |mut conn| async move {
            let of = ReviewsOf::Listing(id.0);
            Ok::<_, ApiError>(reviews::published(&mut conn, of, before, limit).await?)
        })
        .await?;
    Ok((listing, page))
}

/// One page of hosts' published reviews of a guest, with the guest.
pub async fn of_guest(
    db: &Db,
    id: UserId,
    before: Option<Position>,
    limit: i64,
) -> Result<(User, Vec<Review>), ApiError> {
    let user = accounts::get(db, id).await?;
    let page = db
        .run(move |mut conn| async move {
            let of = ReviewsOf::Guest(id.0);
            Ok::<_, ApiError>(reviews::published(&mut conn, of, before, limit).await?)
        })
        .await?;
    Ok((user, page))
}

/// The author edits their review: while it waits, until the window
/// closes; once published, for 48 hours (its totals moved with it).
pub async fn edit(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<Review>,
    auth: &AuthUser,
    id: i64,
    input: ReviewInput,
) -> Result<Review, ApiError> {
    let review = get(db, Some(auth), id).await?;
    if review.author_id != auth.id.0 {
        let refusal = ApiError::Forbidden("only its author may edit a review");
        let kind = ObjectType::Review;
        return Err(trail::denied(db, &commit.actor, kind, Some(id), "review.edit", refusal).await);
    }
    let commit = commit.clone();
    let listing_id = PropertyId(review.property_id);
    let edited = db
        .write(move |c| {
            Box::pin(async move {
                let at = now();
                let listing = properties::lock_calendar(c, review.property_id)
                    .await?
                    .ok_or(ApiError::NotFound("review"))?;
                let current = reviews::find(c, id)
                    .await?
                    .filter(|r| r.removed_at.is_none())
                    .ok_or(ApiError::NotFound("review"))?;
                let closes = calendar::find(c, current.booking_id)
                    .await?
                    .and_then(|e| e.reviews_close_at);
                let (published, closes) = (
                    current.published_at.map(|t| t.and_utc()),
                    closes.map(|t| t.and_utc()),
                );
                if !review::editable(published, closes, at) {
                    return Err(ApiError::Unprocessable {
                        code: "edit_window_closed",
                        message: "a review can be edited until its stay's window closes, \
                              and for 48 hours after it is published"
                            .into(),
                    });
                }
                let mut errors = FieldErrors::new();
                let old = current.ratings();
                let edited = input.parse_edit(&old, &current.comment, &mut errors);
                let Some((ratings, comment)) = edited.filter(|_| errors.is_empty()) else {
                    return Err(ApiError::Validation(errors.into_vec()));
                };
                let review = reviews::edit(c, id, &ratings, &comment, at.naive_utc()).await?;
                if review.counted() {
                    recount(c, &listing, &review, Some(&old), Some(&ratings)).await?;
                }
                let record = AuditRecord::new(Action::ReviewEdited, ObjectType::Review, Some(id))
                    .with(json!({"rating": [old.rating, ratings.rating]}));
                audit::record(c, &commit.actor, &[record], at.naive_utc()).await?;
                commit.seal(c, &review).await?;
                Ok::<_, ApiError>(review)
            })
        })
        .await?;
    if edited.side() == Side::Guest {
        bus.listing_changed(listing_id);
    }
    Ok(edited)
}

/// The reviewed party's one public reply to a published review (the
/// listing's host, or the guest a host reviewed); they may rewrite it for
/// 48 hours after first writing it.
pub async fn reply(
    db: &Db,
    commit: &Commit<Review>,
    auth: &AuthUser,
    id: i64,
    raw: Option<String>,
) -> Result<Review, ApiError> {
    let review = get(db, Some(auth), id).await?;
    if !review.counted() {
        return Err(ApiError::NotFound("review"));
    }
    if review.subject_id != auth.id.0 {
        let refusal = ApiError::Forbidden("only the reviewed host or guest may reply");
        let kind = ObjectType::Review;
        return Err(
            trail::denied(db, &commit.actor, kind, Some(id), "review.reply", refusal).await,
        );
    }
    let text = match raw {
        None => Err(crate::domain::FieldError::new(
            "comment",
            "required",
            "comment is required",
        )),
        Some(raw) => review::comment(&raw).map_err(|e| e.at("comment")),
    }
    .map_err(ApiError::validation)?;
    let commit = commit.clone();
    db.write(move |c| {
        Box::pin(async move {
            let at = now();
            properties::lock_calendar(c, review.property_id).await?;
            let current = reviews::find(c, id)
                .await?
                .filter(Review::counted)
                .ok_or(ApiError::NotFound("review"))?;
            let first = match current.replied_at {
                Some(first) if at >= first.and_utc() + review::EDIT_WINDOW => {
                    return Err(ApiError::Unprocessable {
                        code: "edit_window_closed",
                        message: "a reply can be rewritten for 48 hours after it is first written"
                            .into(),
                    });
                }
                Some(first) => first,
                None => at.naive_utc(),
            };
            let review = reviews::reply(c, id, &text, first, at.naive_utc()).await?;
            let record = AuditRecord::new(Action::ReviewReplied, ObjectType::Review, Some(id))
                .with(json!({"first": current.replied_at.is_none()}));
            audit::record(c, &commit.actor, &[record], at.naive_utc()).await?;
            commit.seal(c, &review).await?;
            Ok::<_, ApiError>(review)
        })
    })
    .await
}

/// An admin removes a review, with a reason: no longer shown or counted.
pub async fn remove(
    db: &Db,
    bus: &EventBus,
    commit: &Commit<Review>,
    auth: &AuthUser,
    id: i64,
    reason: String,
) -> Result<Review, ApiError> {
    trail::require_admin(db, auth, &commit.actor, "review.remove").await?;
    let found = get(db, Some(auth), id).await?;
    let (commit, by) = (commit.clone(), auth.id.0);
    let listing_id = PropertyId(found.property_id);
    let removed = db
        .write(move |c| {
            Box::pin(async move {
                let at = now();
                let listing = properties::lock_calendar(c, found.property_id)
                    .await?
                    .ok_or(ApiError::NotFound("review"))?;
                let before = reviews::find(c, id)
                    .await?
                    .ok_or(ApiError::NotFound("review"))?;
                let removed = reviews::remove(c, id, by, &reason, at.naive_utc())
                    .await?
                    .ok_or(ApiError::NotFound("review"))?;
                if before.counted() {
                    recount(c, &listing, &before, Some(&before.ratings()), None).await?;
                }
                let record = AuditRecord::new(Action::ReviewRemoved, ObjectType::Review, Some(id))
                    .with(json!({"reason": reason, "was_published": before.counted(),
                             "booking_id": before.booking_id}));
                audit::record(c, &commit.actor, &[record], at.naive_utc()).await?;
                commit.seal(c, &removed).await?;
                Ok::<_, ApiError>(removed)
            })
        })
        .await?;
    if removed.side() == Side::Guest {
        bus.listing_changed(listing_id);
    }
    Ok(removed)
}
