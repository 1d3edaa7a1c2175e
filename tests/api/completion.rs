//! Stays complete on their check-out day where the listing is: with two
//! `roost` processes running the job on one database, in Pacific/Kiritimati
//! (UTC+14) and Pacific/Pago_Pago (UTC−11), each due stay exactly once.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::json;

use crate::binary::{start, unlimited};
use crate::both_backends;
use crate::helpers::{Api, Backend, TestDatabase};

both_backends!(stays_complete_once_on_the_listings_local_date_with_two_nodes);

fn local_today(zone: &str) -> NaiveDate {
    roost::domain::stay::TimeZone::parse(zone)
        .unwrap()
        .today(chrono::Utc::now())
}

async fn count(db: &roost::db::Db, sql: String) -> i64 {
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = db.get().await.unwrap();
    let q = diesel::sql_query(sql);
    roost::with_conn!(&mut conn, |c| q.get_result::<N>(c).await)
        .unwrap()
        .n
}

async fn stays_complete_once_on_the_listings_local_date_with_two_nodes(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let node = || {
        let mut cmd = unlimited(dir.path(), &database.env_url());
        cmd.env("ROOST_HOLD_SWEEP_SECS", "1");
        start(cmd)
    };
    let (first, second) = (node(), node());
    let api = Api::new(format!("http://127.0.0.1:{}", first.port));
    let (_, host) = api.signed_in("host").await;
    let (guest, _) = api.signed_in("guest").await;

    // In each zone: a stay whose check-out is the listing's today (due), and
    // one leaving tomorrow there (not yet).
    let mut due = Vec::new();
    let mut rows = Vec::new();
    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
        let listing = api.create_listing(&host, json!({"time_zone": zone})).await;
        let today = local_today(zone);
        let day = chrono::Duration::days(1);
        rows.push((listing, today - day - day, today, true));
        rows.push((listing, today, today + day, false));
    }
    let db = roost::db::Db::connect(&database.url, Some(1)).unwrap();
    {
        use roost::db::calendar::{self, KIND_BOOKING, NewEntry};
        let at = chrono::Utc::now().naive_utc();
        let new: Vec<NewEntry<'static>> = rows
            .iter()
            .map(|&(listing, check_in, check_out, _)| NewEntry {
                property_id: listing,
                kind: KIND_BOOKING,
                status: "confirmed",
                check_in,
                check_out,
                created_by: guest,
                guest_id: Some(guest),
                guests: Some(1),
                nights: Some((check_out - check_in).num_days()),
                price_per_night: Some(12_500),
                cleaning_fee: Some(0),
                total: Some(12_500 * (check_out - check_in).num_days()),
                currency: Some("EUR"),
                created_at: at,
                updated_at: at,
                ..Default::default()
            })
            .collect();
        let mut conn = db.get().await.unwrap();
        assert_eq!(
            calendar::insert_many(&mut conn, new).await.unwrap().len(),
            4
        );
        let ids: Vec<i64> = {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use roost::db::schema::calendar_entries as e;
            roost::with_conn!(&mut conn, |c| {
                e::table.select(e::id).order(e::id.asc()).load(c).await
            })
            .unwrap()
        };
        for (id, row) in ids.iter().zip(&rows) {
            if row.3 {
                due.push(*id);
            }
        }
    }
    let completed = || {
        count(
            &db,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'booking.completed'".into(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while completed().await < 2 {
        assert!(Instant::now() < deadline, "stays were not completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both nodes keep running the job (every second): nothing completes twice.
    let quiet = Instant::now() + Duration::from_millis(2_500);
    while Instant::now() < quiet {
        assert_eq!(completed().await, 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let status_count = |status: &str, of: String| {
        count(
            &db,
            format!(
                "SELECT COUNT(*) AS n FROM calendar_entries WHERE status = '{status}' AND id IN ({of})"
            ),
        )
    };
    assert_eq!(status_count("completed", ids(&due)).await, 2);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM calendar_entries WHERE status = 'confirmed'".into()
        )
        .await,
        2,
        "the stays leaving tomorrow where they are stay confirmed"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM calendar_events WHERE kind = 'booking_completed'".into()
        )
        .await,
        2
    );
    drop((first, second));
}
