//! The `auth_tokens` table: bearer tokens, stored only as their SHA-256 hash.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::AsConn;
use super::schema::{auth_tokens, users};
use super::users::User;
use crate::with_conn;

#[derive(Insertable)]
#[diesel(table_name = auth_tokens)]
pub struct NewToken<'a> {
    pub user_id: i64,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub async fn insert(conn: &mut impl AsConn, new: &NewToken<'_>) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        diesel::insert_into(auth_tokens::table)
            .values(new)
            .returning(auth_tokens::id)
            .get_result(c)
            .await
    })
}

/// The token with this hash and its user, if the token is live (not revoked,
/// not expired at `now`) and the user is active.
pub async fn find_live(
    conn: &mut impl AsConn,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(i64, User)>> {
    with_conn!(conn, |c| {
        auth_tokens::table
            .inner_join(users::table)
            .filter(auth_tokens::token_hash.eq(token_hash))
            .filter(auth_tokens::revoked_at.is_null())
            .filter(auth_tokens::expires_at.gt(now))
            .filter(users::active.eq(true))
            .select((auth_tokens::id, User::as_select()))
            .first(c)
            .await
            .optional()
    })
}

pub async fn revoke(
    conn: &mut impl AsConn,
    token_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::update(
            auth_tokens::table
                .find(token_id)
                .filter(auth_tokens::revoked_at.is_null()),
        )
        .set(auth_tokens::revoked_at.eq(now))
        .execute(c)
        .await
    })
}

/// Revokes every live token of a user except `keep` (the one in use, if any).
pub async fn revoke_all_for_user(
    conn: &mut impl AsConn,
    user_id: i64,
    keep: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::update(
            auth_tokens::table
                .filter(auth_tokens::user_id.eq(user_id))
                .filter(auth_tokens::id.ne(keep.unwrap_or(-1)))
                .filter(auth_tokens::revoked_at.is_null()),
        )
        .set(auth_tokens::revoked_at.eq(now))
        .execute(c)
        .await
    })
}

/// Deletes tokens that expired or were revoked before `cutoff`.
pub async fn delete_dead(conn: &mut impl AsConn, cutoff: NaiveDateTime) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::delete(
            auth_tokens::table.filter(
                auth_tokens::expires_at
                    .lt(cutoff)
                    .or(auth_tokens::revoked_at.lt(cutoff)),
            ),
        )
        .execute(c)
        .await
    })
}
