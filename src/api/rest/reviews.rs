//! Reviews: a stay's (`/bookings/{id}/reviews`), a listing's and a guest's
//! published ones, and one review's edit, reply and removal (`/reviews/{id}`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::form::Form;
use super::pagination::{DEFAULT_LIMIT, MAX_LIMIT, Page, bad_cursor, decode_opaque, encode_opaque};
use crate::auth::AuthUser;
use crate::commit::Reply;
use crate::db::reviews::{Position, Review};
use crate::domain::review::{CATEGORIES, MAX_REASON, ReviewInput, Side, Totals};
use crate::domain::{BookingId, FieldError, FieldErrors, PropertyId, Role, UserId};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::reviews;
use crate::state::AppState;

/// A review as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewResponse {
    pub id: i64,
    pub booking_id: i64,
    pub property_id: i64,
    /// `guest`: the stay's guest reviewing the listing; `host`: its host
    /// reviewing the guest.
    pub side: Side,
    pub author_id: i64,
    /// Whom it is about: the listing's host, or the guest.
    pub subject_id: i64,
    pub rating: i64,
    /// The guest's six category ratings (a guest's review only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Map<String, Value>>,
    /// Plain text: show it as text, never as markup.
    pub comment: String,
    /// `waiting` (seen by its author alone until the other side writes or
    /// the window closes), `published` or `removed`.
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub reply: Option<ReplyView>,
    /// Shown to admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal_reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplyView {
    pub comment: String,
    pub replied_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReviewResponse {
    fn of(r: Review, admin: bool) -> Self {
        let categories = r.ratings().categories.map(|values| {
            CATEGORIES
                .iter()
                .zip(values)
                .map(|(name, v)| ((*name).to_owned(), Value::from(v)))
                .collect()
        });
        let status = match (r.removed_at, r.published_at) {
            (Some(_), _) => "removed",
            (None, Some(_)) => "published",
            (None, None) => "waiting",
        };
        let reply = match (r.reply, r.replied_at) {
            (Some(comment), Some(at)) => Some(ReplyView {
                comment,
                replied_at: at.and_utc(),
                updated_at: r.reply_updated_at.unwrap_or(at).and_utc(),
            }),
            _ => None,
        };
        Self {
            id: r.id,
            booking_id: r.booking_id,
            property_id: r.property_id,
            side: Side::parse(&r.side).unwrap_or(Side::Guest),
            author_id: r.author_id,
            subject_id: r.subject_id,
            rating: r.rating,
            categories,
            comment: r.comment,
            status,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
            published_at: r.published_at.map(|t| t.and_utc()),
            reply,
            removal_reason: r.removal_reason.filter(|_| admin),
        }
    }
}

fn is_admin(auth: &AuthUser) -> bool {
    auth.role == Role::Admin
}

/// Totals as averages: the overall one and, for a listing, each category's.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RatingSummary {
    pub review_count: i64,
    /// To two decimals, rounded half up; `null` with no reviews.
    pub rating_avg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Map<String, Value>>,
}

impl RatingSummary {
    pub fn of_listing(t: &Totals) -> Self {
        let categories = CATEGORIES
            .iter()
            .zip(t.category_avgs())
            .map(|(name, avg)| ((*name).to_owned(), serde_json::json!(avg)))
            .collect();
        Self {
            review_count: t.count,
            rating_avg: t.rating_avg(),
            categories: Some(categories),
        }
    }

    pub fn of_guest(t: &Totals) -> Self {
        Self {
            review_count: t.count,
            rating_avg: t.rating_avg(),
            categories: None,
        }
    }
}

crate::raw_body! {
    /// A review: the guest's of the listing gives all eight fields; the
    /// host's of the guest `rating` and `comment` only. Ratings 1 to 5.
    #[schema(example = json!({
        "rating": 5, "cleanliness": 5, "accuracy": 4, "communication": 5, "location": 5,
        "check_in": 5, "value": 4, "comment": "Lovely light, and the tram is close."
    }))]
    ReviewBody {
        #[schema(minimum = 1, maximum = 5)]
        rating: i64,
        #[schema(minimum = 1, maximum = 5)]
        cleanliness: i64,
        #[schema(minimum = 1, maximum = 5)]
        accuracy: i64,
        #[schema(minimum = 1, maximum = 5)]
        communication: i64,
        #[schema(minimum = 1, maximum = 5)]
        location: i64,
        #[schema(minimum = 1, maximum = 5)]
        check_in: i64,
        #[schema(minimum = 1, maximum = 5)]
        value: i64,
        /// Plain text, 1 to 2,000 characters; never rendered as markup.
        #[schema(min_length = 1, max_length = 2000)]
        comment: String,
    }
}

crate::raw_body! {
    /// The reviewed party's public reply.
    #[schema(example = json!({"comment": "Thank you: come back soon."}))]
    ReplyBody {
        #[schema(required = true, min_length = 1, max_length = 2000)]
        comment: String,
    }
}

crate::raw_body! {
    /// Why an admin removes a review.
    #[schema(example = json!({"reason": "It names a private person."}))]
    RemovalBody {
        #[schema(required = true, min_length = 1, max_length = 500)]
        reason: String,
    }
}

/// A review body's fields, each type-checked, for `side` (none: either).
pub fn review_input(body: Map<String, Value>, side: Option<Side>) -> Result<ReviewInput, ApiError> {
    let known = side.map_or(Side::Guest.fields(), Side::fields);
    let mut form = Form::new(body, known);
    let mut input = ReviewInput {
        rating: form.int("rating"),
        comment: form.string("comment"),
        ..Default::default()
    };
    for (i, name) in CATEGORIES.iter().enumerate() {
        input.categories[i] = form.int(name);
    }
    form.finish()?;
    Ok(input)
}

/// `POST /bookings/{id}/reviews`: the stay's guest's review of the listing
/// (`{rating, cleanliness, accuracy, communication, location, check_in,
/// value, comment}`) or its host's of the guest (`{rating, comment}`) →
/// 201; published at once if the other side's is written.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/reviews",
    tag = "reviews",
    params(("id" = i64, Path, description = "The booking's id")),
    request_body = ReviewBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "My review, hidden until both sides wrote or the window closed", body = ReviewResponse),
        (status = 403, description = "Not your stay", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "Already reviewed: `already_reviewed`", body = crate::error::Envelope),
        (status = 422, description = "`stay_not_completed` or `review_window_closed`", body = crate::error::Envelope),
    )
)]
pub async fn create_review(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<ReviewBody>,
) -> Result<HttpResponse, ApiError> {
    // Which fields are allowed depends on the caller's side, decided by
    // the service; here every field either side may give is read.
    let input = review_input(body.into_inner().into_map(), None)?;
    let commit = meta.commit(Some(auth.id), |r: &Review| {
        Reply::json(201, &ReviewResponse::of(r.clone(), false))
    });
    let id = BookingId(path.into_inner());
    let review = reviews::write(&state.db, &state.bus, &commit, &auth, id, input).await?;
    Ok(commit.reply(&review)?.into())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BookingReviews {
    pub booking_id: i64,
    /// When the stay's review window closes (`null` until it is completed).
    pub reviews_close_at: Option<DateTime<Utc>>,
    /// Your own review, and the other side's once published.
    pub items: Vec<ReviewResponse>,
}

/// `GET /bookings/{id}/reviews`: its guest, its host or an admin.
#[utoipa::path(
    get,
    path = "/api/v1/bookings/{id}/reviews",
    tag = "reviews",
    params(("id" = i64, Path, description = "The booking's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stay's reviews I may see", body = BookingReviews),
        (status = 403, description = "Not your stay", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn list_booking_reviews(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<web::Json<BookingReviews>, ApiError> {
    let actor = meta.actor(Some(auth.id));
    let id = BookingId(path.into_inner());
    let (entry, found) = reviews::of_booking(&state.db, &actor, &auth, id).await?;
    let admin = is_admin(&auth);
    Ok(web::Json(BookingReviews {
        booking_id: entry.id,
        reviews_close_at: entry.reviews_close_at.map(|t| t.and_utc()),
        items: found
            .into_iter()
            .map(|r| ReviewResponse::of(r, admin))
            .collect(),
    }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewPageQuery {
    /// Reviews per page, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

impl ReviewPageQuery {
    pub fn new(limit: Option<i64>, cursor: Option<String>) -> Self {
        Self { limit, cursor }
    }

    pub fn parse(&self) -> Result<(Option<Position>, i64), ApiError> {
        let mut errors = FieldErrors::new();
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    "limit must be from 1 to 100",
                ));
                DEFAULT_LIMIT
            }
        };
        let before = self
            .cursor
            .as_deref()
            .and_then(|raw| errors.check("cursor", decode_review_cursor(raw)));
        if errors.is_empty() {
            Ok((before, limit))
        } else {
            Err(ApiError::Validation(errors.into_vec()))
        }
    }
}

pub fn encode_review_cursor(r: &Review) -> Option<String> {
    let at = r.published_at?.and_utc().timestamp_micros();
    Some(encode_opaque(&format!("review:{at}:{}", r.id)))
}

fn decode_review_cursor(raw: &str) -> Result<Position, FieldError> {
    let text = decode_opaque(raw)?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("review"), Some(at), Some(id), None) => {
            let at = at
                .parse::<i64>()
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .ok_or_else(bad_cursor)?;
            let id = id.parse::<i64>().map_err(|_| bad_cursor())?;
            Ok((at.naive_utc(), id))
        }
        _ => Err(bad_cursor()),
    }
}

fn review_page(rows: Vec<Review>, limit: i64) -> Page<ReviewResponse> {
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().and_then(encode_review_cursor))
        .flatten();
    Page {
        items: rows
            .into_iter()
            .map(|r| ReviewResponse::of(r, false))
            .collect(),
        next_cursor,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ListingReviews {
    pub property_id: i64,
    pub summary: RatingSummary,
    #[serde(flatten)]
    pub page: Page<ReviewResponse>,
}

/// `GET /properties/{id}/reviews`: anyone; published reviews, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/properties/{id}/reviews",
    tag = "reviews",
    params(("id" = i64, Path, description = "The listing's id"), ReviewPageQuery),
    responses(
        (status = 200, description = "Published reviews, newest first, with each category's average", body = ListingReviews),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn list_property_reviews(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<ReviewPageQuery>,
) -> Result<web::Json<ListingReviews>, ApiError> {
    let (before, limit) = query.parse()?;
    let id = PropertyId(path.into_inner());
    let (listing, rows) = reviews::of_listing(&state.db, id, before, limit).await?;
    Ok(web::Json(ListingReviews {
        property_id: listing.id,
        summary: RatingSummary::of_listing(&listing.review_totals()),
        page: review_page(rows, limit),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GuestReviews {
    pub user_id: i64,
    pub name: String,
    pub summary: RatingSummary,
    #[serde(flatten)]
    pub page: Page<ReviewResponse>,
}

/// `GET /users/{id}/reviews`: any signed-in user (a host weighing a
/// booking); hosts' published reviews of the guest, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/reviews",
    tag = "reviews",
    params(("id" = i64, Path, description = "The user's id"), ReviewPageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Hosts' published reviews of the guest, newest first", body = GuestReviews),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn list_user_reviews(
    state: web::Data<AppState>,
    _auth: AuthUser,
    path: web::Path<i64>,
    query: web::Query<ReviewPageQuery>,
) -> Result<web::Json<GuestReviews>, ApiError> {
    let (before, limit) = query.parse()?;
    let id = UserId(path.into_inner());
    let (user, rows) = reviews::of_guest(&state.db, id, before, limit).await?;
    Ok(web::Json(GuestReviews {
        user_id: user.id,
        summary: RatingSummary::of_guest(&user.guest_totals()),
        name: user.name,
        page: review_page(rows, limit),
    }))
}

/// `GET /reviews/{id}`: a published one to anyone signed in; a waiting one
/// to its author alone.
#[utoipa::path(
    get,
    path = "/api/v1/reviews/{id}",
    tag = "reviews",
    params(("id" = i64, Path, description = "The review's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The review", body = ReviewResponse),
        (status = 404, description = "`not_found` (an unpublished review is its author's alone)", body = crate::error::Envelope),
    )
)]
pub async fn get_review(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<web::Json<ReviewResponse>, ApiError> {
    let review = reviews::get(&state.db, Some(&auth), path.into_inner()).await?;
    Ok(web::Json(ReviewResponse::of(review, is_admin(&auth))))
}

/// `PATCH /reviews/{id}`: its author changes any of its fields.
#[utoipa::path(
    patch,
    path = "/api/v1/reviews/{id}",
    tag = "reviews",
    params(("id" = i64, Path, description = "The review's id")),
    request_body = ReviewBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited review", body = ReviewResponse),
        (status = 403, description = "Not your review", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 422, description = "`edit_window_closed`", body = crate::error::Envelope),
    )
)]
pub async fn update_review(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<ReviewBody>,
) -> Result<HttpResponse, ApiError> {
    let input = review_input(body.into_inner().into_map(), None)?;
    let commit = meta.commit(Some(auth.id), |r: &Review| {
        Reply::json(200, &ReviewResponse::of(r.clone(), false))
    });
    let id = path.into_inner();
    let review = reviews::edit(&state.db, &state.bus, &commit, &auth, id, input).await?;
    Ok(commit.reply(&review)?.into())
}

/// `POST /reviews/{id}/reply {comment}`: the reviewed party's public reply.
#[utoipa::path(
    post,
    path = "/api/v1/reviews/{id}/reply",
    tag = "reviews",
    params(("id" = i64, Path, description = "The review's id")),
    request_body = ReplyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The review with its reply", body = ReviewResponse),
        (status = 403, description = "Not a review of you", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 422, description = "Not published, or the reply window has closed", body = crate::error::Envelope),
    )
)]
pub async fn reply_to_review(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: web::Json<ReplyBody>,
) -> Result<HttpResponse, ApiError> {
    let mut form = Form::new(body.into_inner().into_map(), ReplyBody::FIELDS);
    let comment = form.string("comment");
    form.finish()?;
    let commit = meta.commit(Some(auth.id), |r: &Review| {
        Reply::json(200, &ReviewResponse::of(r.clone(), false))
    });
    let id = path.into_inner();
    let review = reviews::reply(&state.db, &commit, &auth, id, comment).await?;
    Ok(commit.reply(&review)?.into())
}

/// `DELETE /reviews/{id} {reason}`: an admin removes it, with a reason.
#[utoipa::path(
    delete,
    path = "/api/v1/reviews/{id}",
    tag = "reviews",
    params(("id" = i64, Path, description = "The review's id")),
    request_body(content = Option<RemovalBody>, description = "Optional"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The removed review", body = ReviewResponse),
        (status = 403, description = "Admins only", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn delete_review(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
    body: Option<web::Json<RemovalBody>>,
) -> Result<HttpResponse, ApiError> {
    let mut form = Form::new(
        body.map(|b| b.into_inner().into_map()).unwrap_or_default(),
        RemovalBody::FIELDS,
    );
    let reason = match form.string("reason") {
        Some(raw) => form.check(
            "reason",
            crate::domain::property::bounded_text(&raw, 1, MAX_REASON),
        ),
        None => {
            form.missing("reason");
            None
        }
    };
    form.finish()?;
    let reason = reason.ok_or(ApiError::Validation(Vec::new()))?;
    let commit = meta.commit(Some(auth.id), |r: &Review| {
        Reply::json(200, &ReviewResponse::of(r.clone(), true))
    });
    let id = path.into_inner();
    let review = reviews::remove(&state.db, &state.bus, &commit, &auth, id, reason).await?;
    Ok(commit.reply(&review)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_body_declares_what_each_side_may_give() {
        assert_eq!(ReviewBody::FIELDS, Side::Guest.fields());
        let host = Side::Host.fields();
        assert!(host.iter().all(|f| ReviewBody::FIELDS.contains(f)));
    }

    #[test]
    fn a_raw_body_keeps_unknown_names_and_drops_nulls() {
        let body: ReplyBody =
            serde_json::from_value(serde_json::json!({"comment": "thanks", "extra": 1, "x": null}))
                .unwrap();
        let map = body.into_map();
        assert_eq!(map.get("comment"), Some(&Value::from("thanks")));
        assert_eq!(map.get("extra"), Some(&Value::from(1)));
        let empty: ReplyBody =
            serde_json::from_value(serde_json::json!({"comment": null})).unwrap();
        assert!(empty.into_map().is_empty());
    }
}
