//! Upgrading a SQLite database that holds bookings, payments and events
//! across the migrations that rebuild tables (SQLite cannot alter a CHECK):
//! every row, id and reference survives, and foreign keys still hold.

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};

/// The SQLite migrations written before the pricing issue's table rebuilds.
const BEFORE_REBUILDS: usize = 7;

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

#[actix_web::test]
async fn a_sqlite_database_with_bookings_and_payments_upgrades_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = path.to_string_lossy().to_string();
    {
        let mut conn = SqliteConnection::establish(&url).unwrap();
        conn.batch_execute(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE __diesel_schema_migrations (
                 version VARCHAR(50) PRIMARY KEY NOT NULL,
                 run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);",
        )
        .unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut dirs: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for migration in &dirs[..BEFORE_REBUILDS] {
            conn.batch_execute(&std::fs::read_to_string(migration.join("up.sql")).unwrap())
                .unwrap();
            let name = migration.file_name().unwrap().to_string_lossy().to_string();
            let version = name.split('_').next().unwrap().replace('-', "");
            conn.batch_execute(&format!(
                "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}')"
            ))
            .unwrap();
        }
        let t = "2026-11-20 10:00:00";
        conn.batch_execute(&format!(
            "INSERT INTO users (id, email, name, password_hash, role, active, created_at, updated_at)
                 VALUES (1, 'h@example.com', 'H', 'x', 'host', 1, '{t}', '{t}'),
                        (2, 'g@example.com', 'G', 'x', 'guest', 1, '{t}', '{t}');
             INSERT INTO properties (id, host_id, title, description, address, city, city_key,
                     country, latitude, longitude, price_per_night, currency, cleaning_fee,
                     max_guests, min_nights, max_nights, amenities, created_at, updated_at,
                     calendar_seq)
                 VALUES (1, 1, 'Loft', '', 'A street 1', 'Amsterdam', 'amsterdam', 'NL', 52.3,
                     4.9, 10000, 'EUR', 2500, 2, 1, 30, 0, '{t}', '{t}', 2);
             INSERT INTO calendar_entries (id, property_id, kind, status, check_in, check_out,
                     created_by, guest_id, guests, nights, price_per_night, cleaning_fee, total,
                     currency, created_at, updated_at)
                 VALUES (41, 1, 'booking', 'confirmed', '2027-01-10', '2027-01-12', 2, 2, 1, 2,
                     10000, 2500, 22500, 'EUR', '{t}', '{t}'),
                        (39, 1, 'booking', 'cancelled', '2027-03-10', '2027-03-12', 2, 2, 1, 2,
                     10000, 2500, 22500, 'EUR', '{t}', '{t}'),
                        (40, 1, 'booking', 'cancelled', '2027-04-10', '2027-04-12', 2, 2, 1, 2,
                     10000, 2500, 22500, 'EUR', '{t}', '{t}');
             INSERT INTO calendar_events (property_id, seq, kind, entry_id, check_in, check_out,
                     guest_id, host_id, created_at)
                 VALUES (1, 1, 'booking_held', 41, '2027-01-10', '2027-01-12', 2, 1, '{t}'),
                        (1, 2, 'booking_confirmed', 41, '2027-01-10', '2027-01-12', 2, 1, '{t}');
             INSERT INTO payments (booking_id, guest_id, gateway, gateway_payment_id, status,
                     amount, currency, created_at, updated_at)
                 VALUES (41, 2, 'sandbox', 'pi_1', 'succeeded', 22500, 'EUR', '{t}', '{t}');
             INSERT INTO payments (booking_id, guest_id, gateway, gateway_payment_id, status,
                     amount, currency, failure_reason, created_at, updated_at)
                 VALUES (39, 2, 'sandbox', 'pi_2', 'refund_pending', 22500, 'EUR',
                         'booking_cancelled', '{t}', '{t}'),
                        (40, 2, 'sandbox', 'pi_3', 'refunded', 22500, 'EUR',
                         'booking_cancelled', '{t}', '{t}');"
        ))
        .unwrap();
    }

    let applied = roost::db::migrations::run(&roost::config::DatabaseUrl::Sqlite(path.clone()))
        .await
        .unwrap();
    assert!(applied.len() >= 2, "{applied:?}");

    let mut conn = SqliteConnection::establish(&url).unwrap();
    conn.batch_execute("PRAGMA foreign_keys = ON").unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM pragma_foreign_key_check"
        ),
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM calendar_entries WHERE id = 41 AND total = 22500 AND status = 'confirmed'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM payments WHERE booking_id = 41"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM calendar_events WHERE entry_id = 41"
        ),
        2
    );
    // The log's head moved to a row of its own, where it stood.
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM calendar_heads WHERE property_id = 1 AND seq = 2"
        ),
        1
    );
    // Refunds owed or made before refunds were rows: one row each, counted
    // against the payment (an owed one still to send: no gateway id).
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM refunds r JOIN payments p ON p.id = r.payment_id
             WHERE r.amount = 22500 AND r.reason = 'booking_cancelled' AND p.amount_refunded = 22500
               AND ((p.booking_id = 39 AND r.status = 'pending' AND p.status = 'succeeded'
                     AND r.gateway_refund_id IS NULL)
                 OR (p.booking_id = 40 AND r.status = 'succeeded' AND p.status = 'refunded'))"
        ),
        2
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM payments WHERE amount_refunded = 0"
        ),
        1
    );
    // Ids go on from where they were; the rebuilt tables keep their indexes.
    conn.batch_execute(
        "INSERT INTO calendar_entries (property_id, kind, status, check_in, check_out, created_by,
                 guest_id, guests, nights, price_per_night, cleaning_fee, total, currency,
                 created_at, updated_at, price_detail)
             VALUES (1, 'booking', 'confirmed', '2027-02-01', '2027-02-03', 2, 2, 1, 2, 10000,
                 2500, 23999, 'EUR', '2026-11-21', '2026-11-21', '{}')",
    )
    .unwrap();
    assert_eq!(
        count(&mut conn, "SELECT MAX(id) AS n FROM calendar_entries"),
        42
    );
    for index in [
        "calendar_entries_live",
        "calendar_entries_lapse_queue",
        "calendar_entries_pending_by_property",
        "calendar_entries_to_complete",
        "calendar_events_created",
    ] {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' AND name = '{index}'"
        );
        assert_eq!(count(&mut conn, &sql), 1, "{index}");
    }
    // A completed stay is an event the rebuilt log takes.
    conn.batch_execute(
        "INSERT INTO calendar_events (property_id, seq, kind, entry_id, host_id, created_at)
             VALUES (1, 3, 'booking_completed', 41, 1, '2026-11-21')",
    )
    .unwrap();
}
