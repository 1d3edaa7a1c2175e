-- :holds abandoned checkouts: pending holds that lapsed a minute ago, spread
-- over the live listings (one each, round after round), from :first_day
-- days out (run.sh uses 300 and 350: past the seeded bookings, before
-- booking.js's slots from day 400).
-- Statistics are left as they were, taken before these rows existed.
--   psql -v holds=100000 -v first_day=300 -f loadtests/sql/lapsed_holds_postgres.sql <db>
WITH listing AS (
    SELECT id, price_per_night, cleaning_fee, currency,
           row_number() OVER (ORDER BY id) - 1 AS k
    FROM properties WHERE deleted_at IS NULL
),
total AS (SELECT count(*) AS n FROM listing),
guest AS (SELECT min(id) AS id FROM users WHERE role = 'guest'),
clock AS (
    SELECT (now() AT TIME ZONE 'utc') - interval '1 minute' AS lapsed,
           (now() AT TIME ZONE 'utc')::date AS today
)
INSERT INTO calendar_entries (property_id, kind, status, check_in, check_out,
    hold_expires_at, created_by, guest_id, guests, nights, price_per_night,
    cleaning_fee, total, currency, created_at, updated_at)
SELECT l.id, 'booking', 'pending',
       c.today + :first_day + 3 * (i / t.n)::int, c.today + :first_day + 2 + 3 * (i / t.n)::int,
       c.lapsed, g.id, g.id, 1, 2, l.price_per_night, l.cleaning_fee,
       2 * l.price_per_night + l.cleaning_fee, l.currency,
       c.lapsed - interval '15 minutes', c.lapsed - interval '15 minutes'
FROM generate_series(0, :holds - 1) AS i
CROSS JOIN total t CROSS JOIN guest g CROSS JOIN clock c
JOIN listing l ON l.k = i % t.n;
