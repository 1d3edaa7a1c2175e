-- The SQLite form of lapsed_holds_postgres.sql (run by run.sh through
-- Python's sqlite3, with :holds and :first_day replaced): :holds pending
-- holds that lapsed a minute ago, one per live listing round after round,
-- from :first_day days out.
-- Timestamps as Diesel writes them (UTC, 'YYYY-MM-DD HH:MM:SS.fff').
WITH RECURSIVE
seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < :holds),
listing AS (
    SELECT id, price_per_night, cleaning_fee, currency,
           row_number() OVER (ORDER BY id) - 1 AS k
    FROM properties WHERE deleted_at IS NULL
),
total AS (SELECT count(*) AS n FROM listing),
guest AS (SELECT min(id) AS id FROM users WHERE role = 'guest'),
clock AS (
    SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 minute') AS lapsed,
           strftime('%Y-%m-%d %H:%M:%f', 'now', '-16 minutes') AS created
)
INSERT INTO calendar_entries (property_id, kind, status, check_in, check_out,
    hold_expires_at, created_by, guest_id, guests, nights, price_per_night,
    cleaning_fee, total, currency, created_at, updated_at)
SELECT l.id, 'booking', 'pending',
       date('now', '+' || (:first_day + 3 * (i / t.n)) || ' days'),
       date('now', '+' || (:first_day + 2 + 3 * (i / t.n)) || ' days'),
       c.lapsed, g.id, g.id, 1, 2, l.price_per_night, l.cleaning_fee,
       2 * l.price_per_night + l.cleaning_fee, l.currency, c.created, c.created
FROM seq
CROSS JOIN total t CROSS JOIN guest g CROSS JOIN clock c
JOIN listing l ON l.k = seq.i % t.n;
