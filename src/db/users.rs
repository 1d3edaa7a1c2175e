//! The `users` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::users;
use super::{AsConn, Conn};
use crate::with_conn;

/// How many columns `users` has (a test checks it against the schema):
/// what bounds a multi-row insert's rows per statement.
pub const COLUMNS: usize = 10;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Totals over hosts' published reviews of them as a guest.
    pub guest_review_count: i64,
    pub guest_rating_sum: i64,
}

impl User {
    /// Their totals as a guest (a rating only: no categories).
    pub fn guest_totals(&self) -> crate::domain::review::Totals {
        crate::domain::review::Totals {
            count: self.guest_review_count,
            rating: self.guest_rating_sum,
            categories: [0; 6],
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The columns a user's own profile update may change; `None` leaves one alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
pub struct UserChangeset<'a> {
    pub name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub role: Option<&'a str>,
    pub active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

pub async fn insert(conn: &mut impl AsConn, new: &NewUser<'_>) -> QueryResult<User> {
    with_conn!(conn, |c| {
        diesel::insert_into(users::table)
            .values(new)
            .returning(User::as_returning())
            .get_result(c)
            .await
    })
}

/// Many at once (the seeder), as [`super::properties::insert_many`] does.
pub async fn insert_many(conn: &mut impl AsConn, rows: &[NewUser<'_>]) -> QueryResult<Vec<i64>> {
    match conn.as_conn() {
        Conn::Sqlite(c) => {
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                let id = diesel::insert_into(users::table)
                    .values(row)
                    .returning(users::id)
                    .get_result(c)
                    .await?;
                ids.push(id);
            }
            Ok(ids)
        }
        Conn::Postgres(c) => {
            let mut ids = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(super::pg_rows_per_insert(COLUMNS)) {
                let insert = diesel::insert_into(users::table).values(chunk);
                ids.extend(insert.returning(users::id).get_results::<i64>(c).await?);
            }
            Ok(ids)
        }
    }
}

pub async fn find(conn: &mut impl AsConn, id: i64) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        users::table
            .find(id)
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The users of `ids` that exist, in no particular order.
pub async fn find_many(conn: &mut impl AsConn, ids: &[i64]) -> QueryResult<Vec<User>> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::id.eq_any(ids))
            .select(User::as_select())
            .load(c)
            .await
    })
}

pub async fn find_by_email(conn: &mut impl AsConn, email: &str) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

pub async fn update(
    conn: &mut impl AsConn,
    id: i64,
    changes: &UserChangeset<'_>,
) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set(changes)
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// [`update`], only while the account's password hash is still `expected`
/// (the one a current password was just checked against): `None` if it
/// changed meanwhile, or the account is gone.
pub async fn update_if_password(
    conn: &mut impl AsConn,
    id: i64,
    expected: &str,
    changes: &UserChangeset<'_>,
) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        diesel::update(
            users::table
                .find(id)
                .filter(users::password_hash.eq(expected)),
        )
        .set(changes)
        .returning(User::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// One page of users in id order, starting after `after_id`.
pub async fn list(conn: &mut impl AsConn, after_id: i64, limit: i64) -> QueryResult<Vec<User>> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::id.gt(after_id))
            .order(users::id.asc())
            .limit(limit)
            .select(User::as_select())
            .load(c)
            .await
    })
}
