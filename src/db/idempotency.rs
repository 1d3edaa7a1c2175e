//! The `idempotency_keys` table: one row per (scope, key), claimed by the
//! first request in a transaction of its own (so every node sees it at
//! once), completed with the response in the transaction of the change it
//! guards, and pruned once expired.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::AsConn;
use super::schema::idempotency_keys;
use crate::with_conn;

/// What a request finds when it presents its key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it under this claim.
    Won(String),
    /// The first request finished: its response, sealed.
    Done { status: u16, sealed: Vec<u8> },
    /// The key was first used with another method, path or body.
    Reused,
    /// The first request is still running (on some node).
    Running,
}

#[derive(Insertable)]
#[diesel(table_name = idempotency_keys, treat_none_as_default_value = false)]
struct NewKey<'a> {
    scope: &'a str,
    key_hash: &'a str,
    fingerprint: &'a str,
    claim: Option<&'a str>,
    lease_until: Option<NaiveDateTime>,
    status: Option<i64>,
    response: Option<Vec<u8>>,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

/// A request claiming a key: the key (`scope`, `key_hash`), the request
/// it is bound to (`fingerprint`), the claim's own id, and its times: now,
/// the lease's end and the key's expiry.
#[derive(Clone, Debug)]
pub struct Claiming {
    pub scope: String,
    pub key_hash: String,
    pub fingerprint: String,
    pub claim: String,
    pub now: NaiveDateTime,
    pub lease_until: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// [`claim`]'s usual case in one statement, which may run on its own (its
/// own transaction): a key never seen is claimed. False when the key has a
/// row (used before, running, or expired and not yet pruned): then
/// [`claim`] decides, in a transaction.
///
/// On PostgreSQL the claim's transaction commits without waiting for its
/// WAL to reach the disk (`synchronous_commit` off for that transaction
/// alone): it is visible to every node at once all the same, and it needs
/// no flush of its own. Whatever the request then commits durably (its
/// change, with the answer stored under the key, or a refusal's answer)
/// flushes the WAL up to its own commit, and so the claim's before it. A
/// crash before that flush loses the claim and nothing acknowledged: the
/// request had no answer yet, and its retry runs afresh, as after a claim
/// given back.
pub async fn claim_fresh(conn: &mut impl AsConn, claiming: &Claiming) -> QueryResult<bool> {
    let new = NewKey {
        scope: &claiming.scope,
        key_hash: &claiming.key_hash,
        fingerprint: &claiming.fingerprint,
        claim: Some(&claiming.claim),
        lease_until: Some(claiming.lease_until),
        status: None,
        response: None,
        created_at: claiming.now,
        expires_at: claiming.expires_at,
    };
    let inserted = match conn.as_conn() {
        super::Conn::Sqlite(c) => {
            diesel::insert_into(idempotency_keys::table)
                .values(&new)
                .on_conflict_do_nothing()
                .execute(c)
                .await?
        }
        super::Conn::Postgres(c) => {
            use diesel::sql_types::{Text, Timestamp};
            diesel::sql_query(LAZY_CLAIM)
                .bind::<Text, _>(&claiming.scope)
                .bind::<Text, _>(&claiming.key_hash)
                .bind::<Text, _>(&claiming.fingerprint)
                .bind::<Text, _>(&claiming.claim)
                .bind::<Timestamp, _>(claiming.lease_until)
                .bind::<Timestamp, _>(claiming.now)
                .bind::<Timestamp, _>(claiming.expires_at)
                .execute(c)
                .await?
        }
    };
    Ok(inserted == 1)
}

/// [`claim_fresh`]'s insert on PostgreSQL, its transaction committed
/// without a flush (`set_config(…, true)` lasts until the statement's
/// transaction ends, and so covers its commit).
const LAZY_CLAIM: &str = "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)) \
    INSERT INTO idempotency_keys \
    (scope, key_hash, fingerprint, claim, lease_until, created_at, expires_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7 FROM lazy \
    ON CONFLICT DO NOTHING";

/// Claims `(scope, key_hash)` for a request with `fingerprint`. Call inside
/// a write transaction of its own. A key past its expiry is new again; a
/// claim whose lease ran out (its node died) is taken over.
pub async fn claim(conn: &mut impl AsConn, claiming: &Claiming) -> QueryResult<Claim> {
    use idempotency_keys::dsl as k;
    let Claiming {
        scope,
        key_hash,
        fingerprint,
        claim,
        now,
        lease_until,
        ..
    } = claiming;
    let (now, lease_until) = (*now, *lease_until);
    let this = k::idempotency_keys
        .filter(k::scope.eq(scope))
        .filter(k::key_hash.eq(key_hash));
    with_conn!(conn, |c| {
        diesel::delete(this.filter(k::expires_at.le(now)))
            .execute(c)
            .await
    })?;
    // Gone if expired: a key never seen, or new again, is claimed.
    if claim_fresh(conn, claiming).await? {
        return Ok(Claim::Won(claim.to_owned()));
    }
    type Row = (
        String,
        Option<String>,
        Option<NaiveDateTime>,
        Option<i64>,
        Option<Vec<u8>>,
    );
    let (stored_fingerprint, held_by, lease, status, response): Row = with_conn!(conn, |c| {
        this.select((
            k::fingerprint,
            k::claim,
            k::lease_until,
            k::status,
            k::response,
        ))
        .first(c)
        .await
    })?;
    if stored_fingerprint != *fingerprint {
        return Ok(Claim::Reused);
    }
    let leased = lease.is_some_and(|l| l > now);
    if let Some(status) = status {
        if held_by.is_some() && leased {
            // Its change committed with a provisional answer (see `mark`),
            // and the request is still writing its final one.
            return Ok(Claim::Running);
        }
        let status = u16::try_from(status).unwrap_or(500);
        return Ok(Claim::Done {
            status,
            sealed: response.unwrap_or_default(),
        });
    }
    if leased {
        return Ok(Claim::Running);
    }
    // The first claimant's lease ran out: it died, and whatever it did
    // rolled back (a committed change completes its claim in its own
    // transaction). Take the key over, unless another request just did.
    let taken = with_conn!(conn, |c| {
        diesel::update(this.filter(k::claim.eq(held_by)))
            .set((k::claim.eq(claim), k::lease_until.eq(lease_until)))
            .execute(c)
            .await
    })?;
    Ok(if taken == 1 {
        Claim::Won(claim.to_owned())
    } else {
        Claim::Running
    })
}

/// The key's row while `claim` holds it.
#[diesel::dsl::auto_type]
fn held_by<'a>(scope: &'a str, key_hash: &'a str, claim: &'a str) -> _ {
    idempotency_keys::table
        .filter(idempotency_keys::scope.eq(scope))
        .filter(idempotency_keys::key_hash.eq(key_hash))
        .filter(idempotency_keys::claim.eq(claim))
}

/// Stores the response of the request holding `claim`, ending the claim.
/// False if the claim is no longer held (completed already, or taken over).
pub async fn complete(
    conn: &mut impl AsConn,
    scope: &str,
    key_hash: &str,
    claim: &str,
    status: u16,
    sealed: Vec<u8>,
) -> QueryResult<bool> {
    use idempotency_keys::dsl as k;
    let none: Option<&str> = None;
    let no_lease: Option<NaiveDateTime> = None;
    with_conn!(conn, |c| {
        diesel::update(held_by(scope, key_hash, claim))
            .set((
                k::claim.eq(none),
                k::lease_until.eq(no_lease),
                k::status.eq(Some(i64::from(status))),
                k::response.eq(Some(sealed.clone())),
            ))
            .execute(c)
            .await
    })
    .map(|n| n == 1)
}

/// Stores a provisional response for the request holding `claim`, which
/// keeps the claim: for a change whose final answer is written only after
/// its transaction commits (GraphQL renders it then). A retry meanwhile is
/// told the key is in progress; once the lease runs out (the request died
/// before writing its answer) it gets this one. False if the claim is no
/// longer held.
pub async fn mark(
    conn: &mut impl AsConn,
    scope: &str,
    key_hash: &str,
    claim: &str,
    status: u16,
    sealed: Vec<u8>,
) -> QueryResult<bool> {
    use idempotency_keys::dsl as k;
    with_conn!(conn, |c| {
        diesel::update(held_by(scope, key_hash, claim))
            .set((
                k::status.eq(Some(i64::from(status))),
                k::response.eq(Some(sealed.clone())),
            ))
            .execute(c)
            .await
    })
    .map(|n| n == 1)
}

/// Gives the key back (the request was refused before it ran): a retry
/// runs afresh. Only while `claim` holds it, and never once a response is
/// stored under it (a provisional one marks a committed change). False if
/// nothing was given back.
pub async fn release(
    conn: &mut impl AsConn,
    scope: &str,
    key_hash: &str,
    claim: &str,
) -> QueryResult<bool> {
    use idempotency_keys::dsl as k;
    with_conn!(conn, |c| {
        diesel::delete(held_by(scope, key_hash, claim).filter(k::status.is_null()))
            .execute(c)
            .await
    })
    .map(|n| n == 1)
}

/// Deletes up to about `limit` expired keys, the longest expired first
/// (those sharing the last one's expiry go too; see `events::prune`).
pub async fn prune(conn: &mut impl AsConn, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    use idempotency_keys::dsl as k;
    let nth: Option<NaiveDateTime> = with_conn!(conn, |c| {
        k::idempotency_keys
            .filter(k::expires_at.le(now))
            .order(k::expires_at.asc())
            .select(k::expires_at)
            .offset(limit - 1)
            .first(c)
            .await
            .optional()
    })?;
    let upto = nth.unwrap_or(now);
    with_conn!(conn, |c| {
        diesel::delete(k::idempotency_keys.filter(k::expires_at.le(upto)))
            .execute(c)
            .await
    })
}
