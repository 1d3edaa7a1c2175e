//! The `rate_overrides` table: a listing's seasons (nights at a price of
//! their own, perhaps with a minimum stay).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::rate_overrides;
use super::{AsConn, Conn};
use crate::domain::pricing::RateOverride;
use crate::with_conn;

/// How many columns `rate_overrides` has (a test checks it against the
/// schema): what bounds a multi-row insert's rows per statement.
pub const COLUMNS: usize = 7;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = rate_overrides)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Rate {
    pub id: i64,
    pub property_id: i64,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub price: i64,
    pub min_nights: Option<i64>,
    pub created_at: NaiveDateTime,
}

impl Rate {
    pub fn as_override(&self) -> RateOverride {
        RateOverride {
            id: self.id,
            start: self.start_date,
            end: self.end_date,
            price: self.price,
            min_nights: self.min_nights,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = rate_overrides)]
pub struct NewRate {
    pub property_id: i64,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub price: i64,
    pub min_nights: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// The listing's seasons that share a night with `[from, to)`, by start.
pub async fn touching(
    conn: &mut impl AsConn,
    property_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<Rate>> {
    use rate_overrides::dsl as r;
    with_conn!(conn, |c| {
        r::rate_overrides
            .filter(r::property_id.eq(property_id))
            .filter(r::end_date.gt(from))
            .filter(r::start_date.lt(to))
            .order(r::start_date.asc())
            .select(Rate::as_select())
            .load(c)
            .await
    })
}

/// Every season of the listing that has not ended before `from`, by start.
pub async fn from(
    conn: &mut impl AsConn,
    property_id: i64,
    from: NaiveDate,
) -> QueryResult<Vec<Rate>> {
    let end_of_time = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    touching(conn, property_id, from, end_of_time).await
}

/// [`from`] for many listings in one query, by listing then start.
pub async fn from_many(
    conn: &mut impl AsConn,
    property_ids: &[i64],
    from: NaiveDate,
) -> QueryResult<Vec<Rate>> {
    use rate_overrides::dsl as r;
    with_conn!(conn, |c| {
        r::rate_overrides
            .filter(r::property_id.eq_any(property_ids))
            .filter(r::end_date.gt(from))
            .order((r::property_id.asc(), r::start_date.asc()))
            .select(Rate::as_select())
            .load(c)
            .await
    })
}

/// The listing's seasons that share a night with `[from, to)`, for a write
/// that read `property` under the listing's lock (`lock_calendar`): none,
/// without a statement, when its `seasons_end` says no season reaches
/// `from`. Every season is added and removed under that lock, which also
/// moves `seasons_end`, so the row read under it is as current as the
/// seasons.
pub async fn touching_locked(
    conn: &mut impl AsConn,
    property: &super::properties::Property,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<Rate>> {
    match property.seasons_end {
        Some(end) if end > from => touching(conn, property.id, from, to).await,
        _ => Ok(Vec::new()),
    }
}

/// Adds a season, and moves the listing's `seasons_end` to cover it. Call
/// with the listing locked.
pub async fn insert(conn: &mut impl AsConn, new: &NewRate) -> QueryResult<Rate> {
    let rate = with_conn!(conn, |c| {
        diesel::insert_into(rate_overrides::table)
            .values(new)
            .returning(Rate::as_returning())
            .get_result(c)
            .await
    })?;
    set_seasons_end(conn, new.property_id).await?;
    Ok(rate)
}

/// Writes the end of the listing's last season (none if it has none) on its
/// row, as the seasons stand in this transaction, and moves the listing's
/// rules version (its seasons changed).
async fn set_seasons_end(conn: &mut impl AsConn, property_id: i64) -> QueryResult<()> {
    use super::schema::properties;
    use diesel::dsl::max;
    use rate_overrides::dsl as r;
    let end: Option<NaiveDate> = with_conn!(conn, |c| {
        r::rate_overrides
            .filter(r::property_id.eq(property_id))
            .select(max(r::end_date))
            .first(c)
            .await
    })?;
    with_conn!(conn, |c| {
        diesel::update(properties::table.find(property_id))
            .set(properties::seasons_end.eq(end))
            .execute(c)
            .await
    })?;
    super::properties::rules_changed(conn, property_id).await
}

/// Inserts many seasons (the seeder, which writes each listing's
/// `seasons_end` with its row): multi-row on PostgreSQL, a statement each
/// on SQLite. How many went in.
pub async fn insert_many(conn: &mut impl AsConn, rows: &[NewRate]) -> QueryResult<usize> {
    let mut written = 0;
    match conn.as_conn() {
        Conn::Sqlite(c) => {
            for row in rows {
                written += diesel::insert_into(rate_overrides::table)
                    .values(row)
                    .execute(c)
                    .await?;
            }
        }
        Conn::Postgres(c) => {
            for chunk in rows.chunks(super::pg_rows_per_insert(COLUMNS)) {
                let insert = diesel::insert_into(rate_overrides::table).values(chunk);
                written += insert.execute(c).await?;
            }
        }
    }
    Ok(written)
}

/// Deletes one of the listing's seasons, and moves its `seasons_end` back
/// to its last remaining season; the deleted row, if it was there. Call
/// with the listing locked.
pub async fn delete(
    conn: &mut impl AsConn,
    property_id: i64,
    id: i64,
) -> QueryResult<Option<Rate>> {
    use rate_overrides::dsl as r;
    let deleted = with_conn!(conn, |c| {
        diesel::delete(
            r::rate_overrides
                .filter(r::id.eq(id))
                .filter(r::property_id.eq(property_id)),
        )
        .returning(Rate::as_returning())
        .get_result(c)
        .await
        .optional()
    })?;
    if deleted.is_some() {
        set_seasons_end(conn, property_id).await?;
    }
    Ok(deleted)
}
