-- The raw ceiling of Roost's own hold on PostgreSQL: the four statements
-- POST /bookings sends for nights no season reaches (booking.js's), as it
-- sends them (lock the listing's row and its calendar head and read them;
-- the hold row with its exclusion constraint, the head moved on, the audit
-- row and the event, in one statement; a durable commit), with no HTTP, actor
-- or client work around them; a stay a season can reach adds one read of
-- the seasons. Next to booking_insert.sql (the one insert alone), it says
-- how much of a booking's cost is Roost's SQL and how much the server.
-- Listing and week are random over millennia ahead, so two runs almost
-- never meet. run.sh passes guest_lo/guest_hi and prop_lo/prop_hi with -D.
\set guest random(:guest_lo, :guest_hi)
\set listing random(:prop_lo, :prop_hi)
\set week random(0, 1000000)
BEGIN;
SELECT id AS locked, host_id, title, description, address, city, city_key, country,
       latitude, longitude, price_per_night, currency, cleaning_fee, max_guests,
       min_nights, max_nights, amenities, created_at, updated_at, deleted_at,
       h.seq AS seq, weekend_price, extra_guest_fee, extra_guest_after,
       weekly_discount_pct, monthly_discount_pct, tax_rate_bp, advance_notice_days,
       booking_window_days, check_in_days, check_out_days, time_zone,
       cancellation_policy, check_in_minute, review_count, rating_sum,
       cleanliness_sum, accuracy_sum, communication_sum, location_sum,
       check_in_sum, value_sum, rating_avg_x100
  FROM properties JOIN calendar_heads h ON h.property_id = properties.id
 WHERE id = :listing LIMIT 1 FOR UPDATE \gset
WITH e AS (INSERT INTO calendar_entries
    (property_id, kind, status, check_in, check_out, hold_expires_at, created_by,
     guest_id, guests, nights, price_per_night, cleaning_fee, total, currency, reason,
     created_at, updated_at, price_detail, reviews_close_at)
VALUES
    (:listing, 'booking', 'pending', DATE '2040-01-01' + 7 * :week,
     DATE '2040-01-01' + 7 * :week + 7, now() + interval '15 minutes', :guest,
     :guest, 1, 7, 10000, 2500, 72500, 'EUR', NULL, now(), now(),
     '{"nights":[{"date":"2040-01-02","amount":10000,"rate":"base"},{"date":"2040-01-03","amount":10000,"rate":"base"},{"date":"2040-01-04","amount":10000,"rate":"base"},{"date":"2040-01-05","amount":12000,"rate":"weekend"},{"date":"2040-01-06","amount":12000,"rate":"weekend"},{"date":"2040-01-07","amount":10000,"rate":"base"},{"date":"2040-01-08","amount":10000,"rate":"base"}],"lines":[{"kind":"nights","amount":74000},{"kind":"cleaning_fee","amount":2500},{"kind":"tax","amount":3825}],"total":80325}',
     NULL)
RETURNING id, property_id, kind, status, check_in, check_out, hold_expires_at,
          created_by, guest_id, guests, nights, price_per_night, cleaning_fee, total,
          currency, reason, cancelled_by, created_at, updated_at, price_detail,
          reviews_close_at),
bumped AS (
    UPDATE calendar_heads SET seq = seq + 1 WHERE property_id = :listing RETURNING property_id),
audited AS (
    INSERT INTO audit_log (actor_id, ip, request_id, action, object_type, object_id, details, created_at)
    SELECT a.actor_id, a.ip, a.request_id, a.action, a.object_type, e.id, a.details, a.created_at
      FROM e, unnest(ARRAY[:guest]::bigint[], ARRAY['127.0.0.1']::text[],
        ARRAY[gen_random_uuid()::text], ARRAY['booking.held']::text[], ARRAY['booking']::text[],
        ARRAY[NULL]::bigint[],
        ARRAY['{"check_in":"2040-01-02","check_out":"2040-01-09","currency":"EUR","guests":1,"property_id":1,"total":80325}']::text[],
        ARRAY[now()::timestamp])
        AS a(actor_id, ip, request_id, action, object_type, object_id, details, created_at)),
logged AS (
    INSERT INTO calendar_events (property_id, seq, kind, entry_id, check_in, check_out,
                                 hold_expires_at, guest_id, host_id, created_at)
    SELECT :listing, :seq + 1, 'booking_held', e.id, e.check_in, e.check_out,
           e.hold_expires_at, e.guest_id, :host_id, now()::timestamp
      FROM e WHERE EXISTS (SELECT 1 FROM bumped) RETURNING 1)
SELECT e.*, (SELECT count(*) FROM logged) FROM e;
COMMIT;
