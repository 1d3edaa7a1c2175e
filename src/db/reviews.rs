//! The `reviews` table, and the review totals kept on `properties` (a
//! listing's, over its guests' published reviews) and `users` (a guest's,
//! over hosts' published reviews of them). Totals move in the transaction
//! that publishes, edits or removes a published review, under the lock of
//! the row they live on, so they always equal a recount.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{calendar_entries, properties, reviews, users};
use super::{AsConn, Conn};
use crate::domain::review::{Ratings, Side, Totals};
use crate::with_conn;

/// How many columns `reviews` has (a test checks it against the schema):
/// what bounds a multi-row insert's rows per statement.
pub const COLUMNS: usize = 23;

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = reviews)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Review {
    pub id: i64,
    pub booking_id: i64,
    pub property_id: i64,
    /// `guest` (of the listing) or `host` (of the guest).
    pub side: String,
    pub author_id: i64,
    pub subject_id: i64,
    pub rating: i64,
    pub cleanliness: Option<i64>,
    pub accuracy: Option<i64>,
    pub communication: Option<i64>,
    pub location: Option<i64>,
    pub check_in: Option<i64>,
    pub value: Option<i64>,
    pub comment: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub published_at: Option<NaiveDateTime>,
    pub reply: Option<String>,
    pub replied_at: Option<NaiveDateTime>,
    pub reply_updated_at: Option<NaiveDateTime>,
    pub removed_at: Option<NaiveDateTime>,
    pub removed_by: Option<i64>,
    pub removal_reason: Option<String>,
}

impl Review {
    pub fn side(&self) -> Side {
        Side::parse(&self.side).unwrap_or(Side::Guest)
    }

    pub fn ratings(&self) -> Ratings {
        let categories = [
            self.cleanliness,
            self.accuracy,
            self.communication,
            self.location,
            self.check_in,
            self.value,
        ];
        let all: Option<Vec<i64>> = categories.into_iter().collect();
        Ratings {
            rating: self.rating,
            categories: all.and_then(|v| <[i64; 6]>::try_from(v).ok()),
        }
    }

    /// Counted in its subject's totals: published and not removed.
    pub fn counted(&self) -> bool {
        self.published_at.is_some() && self.removed_at.is_none()
    }
}

/// The rating columns of a review as written or edited.
#[derive(AsChangeset, Insertable, Clone, Copy)]
#[diesel(table_name = reviews, treat_none_as_default_value = false)]
pub struct RatingFields {
    pub rating: i64,
    pub cleanliness: Option<i64>,
    pub accuracy: Option<i64>,
    pub communication: Option<i64>,
    pub location: Option<i64>,
    pub check_in: Option<i64>,
    pub value: Option<i64>,
}

impl From<&Ratings> for RatingFields {
    fn from(r: &Ratings) -> Self {
        let c = r.categories.map(|c| c.map(Some)).unwrap_or([None; 6]);
        Self {
            rating: r.rating,
            cleanliness: c[0],
            accuracy: c[1],
            communication: c[2],
            location: c[3],
            check_in: c[4],
            value: c[5],
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = reviews, treat_none_as_default_value = false)]
pub struct NewReview<'a> {
    pub booking_id: i64,
    pub property_id: i64,
    pub side: &'a str,
    pub author_id: i64,
    pub subject_id: i64,
    #[diesel(embed)]
    pub ratings: RatingFields,
    pub comment: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Written published only by the seeder; the API publishes later.
    pub published_at: Option<NaiveDateTime>,
}

/// Writes a review; a second of the same side for the booking is a
/// unique violation (`reviews_one_per_side`).
pub async fn insert(conn: &mut impl AsConn, new: &NewReview<'_>) -> QueryResult<Review> {
    with_conn!(conn, |c| {
        diesel::insert_into(reviews::table)
            .values(new)
            .returning(Review::as_returning())
            .get_result(c)
            .await
    })
}

/// Many at once (the seeder): one multi-row INSERT on PostgreSQL, a
/// prepared statement a row inside the caller's transaction on SQLite.
pub async fn insert_many(conn: &mut impl AsConn, rows: &[NewReview<'_>]) -> QueryResult<usize> {
    match conn.as_conn() {
        Conn::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(reviews::table)
                    .values(row)
                    .execute(c)
                    .await?;
            }
            Ok(rows.len())
        }
        Conn::Postgres(c) => {
            let mut written = 0;
            for chunk in rows.chunks(super::pg_rows_per_insert(COLUMNS)) {
                let insert = diesel::insert_into(reviews::table).values(chunk);
                written += insert.execute(c).await?;
            }
            Ok(written)
        }
    }
}

/// Sets many listings' or guests' totals at once (the seeder): one
/// `UPDATE … FROM (VALUES …)` per call, the values written as integer
/// literals (never text), the same SQL on both backends.
pub async fn set_totals_many(
    conn: &mut impl AsConn,
    of_listings: bool,
    totals: &[(i64, Totals)],
) -> QueryResult<usize> {
    if totals.is_empty() {
        return Ok(0);
    }
    let rows: Vec<String> = totals
        .iter()
        .map(|(id, t)| {
            let [a, b, c, d, e, f] = t.categories;
            format!(
                "({id}, {}, {}, {a}, {b}, {c}, {d}, {e}, {f}, {})",
                t.count,
                t.rating,
                t.rating_x100()
            )
        })
        .collect();
    let values = rows.join(", ");
    let sql = if of_listings {
        format!(
            "WITH v(id, n, r, s1, s2, s3, s4, s5, s6, x) AS (VALUES {values}) \
             UPDATE properties SET review_count = v.n, rating_sum = v.r, \
             cleanliness_sum = v.s1, accuracy_sum = v.s2, communication_sum = v.s3, \
             location_sum = v.s4, check_in_sum = v.s5, value_sum = v.s6, \
             rating_avg_x100 = v.x FROM v WHERE properties.id = v.id"
        )
    } else {
        format!(
            "WITH v(id, n, r, s1, s2, s3, s4, s5, s6, x) AS (VALUES {values}) \
             UPDATE users SET guest_review_count = v.n, guest_rating_sum = v.r \
             FROM v WHERE users.id = v.id"
        )
    };
    let query = diesel::sql_query(sql);
    with_conn!(conn, |c| query.execute(c).await)
}

pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<Review>> {
    with_conn!(conn, |c| {
        reviews::table
            .find(id)
            .select(Review::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// A booking's reviews (at most one per side), removed ones included.
pub async fn for_booking(conn: &mut impl AsConn, booking: i64) -> QueryResult<Vec<Review>> {
    with_conn!(conn, |c| {
        reviews::table
            .filter(reviews::booking_id.eq(booking))
            .order(reviews::id.asc())
            .select(Review::as_select())
            .load(c)
            .await
    })
}

/// Publishes the booking's written, unpublished, unremoved reviews;
/// returns those this call published (none if another did first: the
/// condition is rechecked under each row's lock).
pub async fn publish_booking(
    conn: &mut impl AsConn,
    booking: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<Review>> {
    use reviews::dsl as r;
    with_conn!(conn, |c| {
        diesel::update(
            r::reviews
                .filter(r::booking_id.eq(booking))
                .filter(r::published_at.is_null())
                .filter(r::removed_at.is_null()),
        )
        .set(r::published_at.eq(now))
        .returning(Review::as_returning())
        .get_results(c)
        .await
    })
}

/// Replaces a review's ratings and comment.
pub async fn edit(
    conn: &mut impl AsConn,
    id: i64,
    ratings: &Ratings,
    comment: &str,
    now: NaiveDateTime,
) -> QueryResult<Review> {
    use reviews::dsl as r;
    with_conn!(conn, |c| {
        diesel::update(r::reviews.find(id))
            .set((
                RatingFields::from(ratings),
                r::comment.eq(comment),
                r::updated_at.eq(now),
            ))
            .returning(Review::as_returning())
            .get_result(c)
            .await
    })
}

/// Sets the reply: `replied_at` is when it was first written.
pub async fn reply(
    conn: &mut impl AsConn,
    id: i64,
    text: &str,
    replied_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Review> {
    use reviews::dsl as r;
    with_conn!(conn, |c| {
        diesel::update(r::reviews.find(id))
            .set((
                r::reply.eq(text),
                r::replied_at.eq(replied_at),
                r::reply_updated_at.eq(now),
            ))
            .returning(Review::as_returning())
            .get_result(c)
            .await
    })
}

/// Marks a review removed; none if it already was.
pub async fn remove(
    conn: &mut impl AsConn,
    id: i64,
    by: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<Review>> {
    use reviews::dsl as r;
    with_conn!(conn, |c| {
        diesel::update(r::reviews.find(id).filter(r::removed_at.is_null()))
            .set((
                r::removed_at.eq(now),
                r::removed_by.eq(by),
                r::removal_reason.eq(reason),
            ))
            .returning(Review::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Where a page of published reviews ended: its last (published_at, id).
pub type Position = (NaiveDateTime, i64);

/// Whose published reviews: a listing's (by its guests), or a guest's (by hosts).
#[derive(Clone, Copy, Debug)]
pub enum ReviewsOf {
    Listing(i64),
    Guest(i64),
}

/// One page of published, unremoved reviews, newest first.
pub async fn published(
    conn: &mut impl AsConn,
    of: ReviewsOf,
    before: Option<Position>,
    limit: i64,
) -> QueryResult<Vec<Review>> {
    use reviews::dsl as r;
    with_conn!(conn, |c| {
        let mut q = r::reviews
            .filter(r::published_at.is_not_null())
            .filter(r::removed_at.is_null())
            .select(Review::as_select())
            .into_boxed();
        q = match of {
            ReviewsOf::Listing(id) => q
                .filter(r::side.eq(Side::Guest.as_str()))
                .filter(r::property_id.eq(id)),
            ReviewsOf::Guest(id) => q
                .filter(r::side.eq(Side::Host.as_str()))
                .filter(r::subject_id.eq(id)),
        };
        if let Some((at, id)) = before {
            q = q.filter(
                r::published_at
                    .lt(at)
                    .or(r::published_at.eq(at).and(r::id.lt(id))),
            );
        }
        q.order((r::published_at.desc(), r::id.desc()))
            .limit(limit)
            .load(c)
            .await
    })
}

/// Bookings with a review waiting whose window has closed by `now`: (booking,
/// listing), the earliest closed first.
pub async fn due(
    conn: &mut impl AsConn,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    use calendar_entries::dsl as e;
    use reviews::dsl as r;
    with_conn!(conn, |c| {
        r::reviews
            .inner_join(e::calendar_entries)
            .filter(r::published_at.is_null())
            .filter(r::removed_at.is_null())
            .filter(e::reviews_close_at.le(now))
            .order(e::reviews_close_at.asc())
            .select((r::booking_id, r::property_id))
            .limit(limit)
            .load(c)
            .await
    })
}

/// Sets a listing's totals (its row locked by the caller).
pub async fn set_listing_totals(conn: &mut impl AsConn, id: i64, t: &Totals) -> QueryResult<()> {
    use properties::dsl as p;
    let [
        cleanliness,
        accuracy,
        communication,
        location,
        check_in,
        value,
    ] = t.categories;
    with_conn!(conn, |c| {
        diesel::update(p::properties.find(id))
            .set((
                p::review_count.eq(t.count),
                p::rating_sum.eq(t.rating),
                p::cleanliness_sum.eq(cleanliness),
                p::accuracy_sum.eq(accuracy),
                p::communication_sum.eq(communication),
                p::location_sum.eq(location),
                p::check_in_sum.eq(check_in),
                p::value_sum.eq(value),
                p::rating_avg_x100.eq(t.rating_x100()),
            ))
            .execute(c)
            .await
            .map(|_| ())
    })
}

/// Locks a guest's row for the rest of the transaction and reads their
/// totals (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's write lock holds).
pub async fn lock_guest_totals(conn: &mut impl AsConn, id: i64) -> QueryResult<Totals> {
    use users::dsl as u;
    let (count, rating): (i64, i64) = match conn.as_conn() {
        Conn::Sqlite(c) => {
            u::users
                .find(id)
                .select((u::guest_review_count, u::guest_rating_sum))
                .first(c)
                .await?
        }
        Conn::Postgres(c) => {
            u::users
                .find(id)
                .select((u::guest_review_count, u::guest_rating_sum))
                .for_update()
                .first(c)
                .await?
        }
    };
    Ok(Totals {
        count,
        rating,
        categories: [0; 6],
    })
}

pub async fn set_guest_totals(conn: &mut impl AsConn, id: i64, t: &Totals) -> QueryResult<()> {
    use users::dsl as u;
    with_conn!(conn, |c| {
        diesel::update(u::users.find(id))
            .set((
                u::guest_review_count.eq(t.count),
                u::guest_rating_sum.eq(t.rating),
            ))
            .execute(c)
            .await
            .map(|_| ())
    })
}
