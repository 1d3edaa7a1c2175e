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

/// The token with this hash (its id and expiry) and its user, if the token
/// is live (not revoked, not expired at `now`) and the user is active.
pub async fn find_live(
    conn: &mut impl AsConn,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(i64, NaiveDateTime, User)>> {
    with_conn!(conn, |c| {
        auth_tokens::table
            .inner_join(users::table)
            .filter(auth_tokens::token_hash.eq(token_hash))
            .filter(auth_tokens::revoked_at.is_null())
            .filter(auth_tokens::expires_at.gt(now))
            .filter(users::active.eq(true))
            .select((auth_tokens::id, auth_tokens::expires_at, User::as_select()))
            .first(c)
            .await
            .optional()
    })
}

/// The users who had a token revoked, or whose row changed (role, active,
/// password), after `since`: each change once, with its time (every one,
/// not a user's latest: a change that commits late may carry an earlier
/// time than one already read); each table through its own index.
pub async fn users_changed_since(
    conn: &mut impl AsConn,
    since: NaiveDateTime,
) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    let revoked: Vec<(i64, Option<NaiveDateTime>)> = with_conn!(conn, |c| {
        auth_tokens::table
            .filter(auth_tokens::revoked_at.gt(since))
            .select((auth_tokens::user_id, auth_tokens::revoked_at))
            .distinct()
            .load(c)
            .await
    })?;
    let updated: Vec<(i64, NaiveDateTime)> = with_conn!(conn, |c| {
        users::table
            .filter(users::updated_at.gt(since))
            .select((users::id, users::updated_at))
            .load(c)
            .await
    })?;
    Ok(revoked
        .into_iter()
        .filter_map(|(user, at)| Some((user, at?)))
        .chain(updated)
        .collect())
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

/// Deletes up to `limit` tokens that expired before `cutoff` and up to
/// `limit` revoked before it, the oldest first, each through its own index;
/// returns how many, and whether either kind filled its batch (more may be
/// waiting).
pub async fn delete_dead(
    conn: &mut impl AsConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> QueryResult<(usize, bool)> {
    use auth_tokens::dsl as t;
    let (mut deleted, mut full) = (0, false);
    for by_revocation in [false, true] {
        let n = with_conn!(conn, |c| {
            let oldest = t::auth_tokens.select(t::id).limit(limit).into_boxed();
            let oldest = if by_revocation {
                oldest
                    .filter(t::revoked_at.lt(cutoff))
                    .order(t::revoked_at.asc())
            } else {
                oldest
                    .filter(t::expires_at.lt(cutoff))
                    .order(t::expires_at.asc())
            };
            diesel::delete(t::auth_tokens.filter(t::id.eq_any(oldest)))
                .execute(c)
                .await
        })?;
        deleted += n;
        full |= n as i64 >= limit;
    }
    Ok((deleted, full))
}
