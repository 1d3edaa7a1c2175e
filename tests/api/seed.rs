//! `roost seed` on PostgreSQL, where bookings and reviews go in several
//! batches at once and every multi-row insert must stay under the
//! protocol's 65,535 bound values: the same data for the same seed, at
//! sizes that split its statements.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use roost::db::{Db, bulk};

use crate::helpers::{Backend, TestDatabase, postgres_ready};

/// What a seeded database says, as digests that leave out the ids of
/// bookings and reviews (which follow the order concurrent batches
/// committed): listings with their totals, bookings by listing and
/// nights, reviews by their stay.
async fn contents(db: &Db) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Digest {
        #[diesel(sql_type = Text)]
        digest: String,
    }
    let queries = [
        "SELECT md5(string_agg(concat_ws(':', id, host_id, title, price_per_night, \
         review_count, rating_sum), ',' ORDER BY id)) AS digest FROM properties",
        "SELECT md5(string_agg(concat_ws(':', property_id, start_date, end_date, price), ',' \
         ORDER BY property_id)) AS digest FROM rate_overrides",
        "SELECT md5(string_agg(concat_ws(':', property_id, check_in, check_out, status, \
         guest_id, total), ',' ORDER BY property_id, check_in)) AS digest FROM calendar_entries",
        "SELECT md5(string_agg(concat_ws(':', r.property_id, b.check_in, r.side, r.rating, \
         r.comment, r.created_at, r.published_at), ',' ORDER BY r.property_id, b.check_in, \
         r.side)) AS digest FROM reviews r JOIN calendar_entries b ON b.id = r.booking_id",
    ];
    let mut conn = db.get().await.unwrap();
    let mut out = Vec::new();
    for sql in queries {
        let q = diesel::sql_query(sql);
        let row: Digest = roost::with_conn!(&mut conn, |c| q.get_result(c).await).unwrap();
        out.push(row.digest);
    }
    out
}

async fn seeded(seed: u64) -> (TestDatabase, Db, String) {
    let database = TestDatabase::new(Backend::Postgres).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    let db = Db::connect(&database.url, Some(8)).unwrap();
    let summary = roost::seed::run(
        &db,
        roost::seed::SeedOptions {
            seed,
            // Past one statement's rows for listings (1,524) and, with
            // about 7,000 completed stays, for a page's reviews (2,849).
            properties: 1_600,
            bookings: 16_000,
            hosts: 50,
            guests: 200,
            today: chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
        },
    )
    .await
    .unwrap();
    (database, db, summary)
}

#[actix_web::test]
async fn the_same_seed_gives_the_same_data_past_a_statements_limits() {
    if !postgres_ready("the_same_seed_gives_the_same_data_past_a_statements_limits").await {
        return;
    }
    let (_a, first, summary) = seeded(3).await;
    assert!(
        summary.contains("1600 listings, 16000 bookings"),
        "{summary}"
    );
    let reviews: i64 = {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = first.get().await.unwrap();
        let q = diesel::sql_query("SELECT COUNT(*) AS n FROM reviews");
        let row: Count = roost::with_conn!(&mut conn, |c| q.get_result(c).await).unwrap();
        row.n
    };
    assert!(reviews > 2 * 2_849, "{reviews} reviews");
    let (_b, second, _) = seeded(3).await;
    assert_eq!(contents(&first).await, contents(&second).await);
    let (_c, other, _) = seeded(4).await;
    assert_ne!(contents(&first).await[0], contents(&other).await[0]);
}

/// The seeder writes with the foreign keys' triggers off and checks every
/// foreign key afterwards: the check names a broken one and only it, and
/// the triggers are off only inside the transaction that asked.
#[actix_web::test]
async fn a_reference_written_without_its_trigger_is_caught_by_the_check() {
    if !postgres_ready("a_reference_written_without_its_trigger_is_caught_by_the_check").await {
        return;
    }
    let database = TestDatabase::new(Backend::Postgres).await;
    roost::db::migrations::run(&database.url).await.unwrap();
    let db = Db::connect(&database.url, Some(1)).unwrap();
    let mut conn = db.get().await.unwrap();
    assert!(bulk::may_skip_reference_triggers(&mut conn).await.unwrap());
    let keys = bulk::foreign_keys(&mut conn).await.unwrap();
    for name in [
        "auth_tokens_user_id_fkey",
        "calendar_entries_property_id_fkey",
        "reviews_booking_id_fkey",
    ] {
        assert!(keys.iter().any(|k| k.name == name), "{name} in {keys:?}");
    }
    for key in &keys {
        assert!(!bulk::is_broken(&mut conn, key).await.unwrap(), "{key:?}");
    }

    let token = |n: i64| {
        diesel::sql_query(format!(
            "INSERT INTO auth_tokens (user_id, token_hash, created_at, expires_at) \
             VALUES ({n}, 'hash{n}', now(), now())"
        ))
    };
    roost::write_tx!(&mut conn, |c| {
        bulk::skip_reference_triggers(c).await?;
        roost::with_conn!(c, |raw| token(404).execute(raw).await)
    })
    .unwrap();
    for key in &keys {
        assert_eq!(
            bulk::is_broken(&mut conn, key).await.unwrap(),
            key.name == "auth_tokens_user_id_fkey",
            "{key:?}"
        );
    }
    // The same pooled connection, in its next transaction: checked again.
    let refused = roost::write_tx!(&mut conn, |c| {
        roost::with_conn!(c, |raw| token(405).execute(raw).await)
    });
    assert!(
        matches!(
            refused,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        ),
        "{refused:?}"
    );
}
