-- The raw ceiling of Roost's own hold on PostgreSQL: the one statement
-- POST /bookings sends when the listing's actor keeps the listing's rules
-- (events::claim_guarded), as it sends it, on its own (no BEGIN or COMMIT:
-- the statement is its own transaction): the head moved on while the rules
-- version is the one read (0 for a seeded listing), the hold row with its
-- exclusion constraint, the audit row and the event, then a durable commit.
-- No HTTP, actor or client work around it. Next to booking_insert.sql (the
-- one insert alone), it says how much of a booking's cost is Roost's SQL
-- and how much the server. The event's host is a guest here (Roost knows the
-- host from memory; the foreign key's check costs the same). Listing and
-- week are random over millennia ahead, so two runs almost never meet.
-- run.sh passes guest_lo/guest_hi and prop_lo/prop_hi with -D.
\set guest random(:guest_lo, :guest_hi)
\set listing random(:prop_lo, :prop_hi)
\set week random(0, 1000000)
WITH bumped AS (
    UPDATE calendar_heads SET seq = seq + 1 WHERE property_id = :listing AND rules = 0
    RETURNING seq),
e AS (INSERT INTO calendar_entries
    (property_id, kind, status, check_in, check_out, hold_expires_at, created_by,
     guest_id, guests, nights, price_per_night, cleaning_fee, total, currency, reason,
     created_at, updated_at, price_detail, reviews_close_at)
SELECT
    :listing, 'booking', 'pending', DATE '2040-01-01' + 7 * :week,
     DATE '2040-01-01' + 7 * :week + 7, now() + interval '15 minutes', :guest,
     :guest, 1, 7, 10000, 2500, 72500, 'EUR', NULL, now(), now(),
     '{"nights":[{"date":"2040-01-02","amount":10000,"rate":"base"},{"date":"2040-01-03","amount":10000,"rate":"base"},{"date":"2040-01-04","amount":10000,"rate":"base"},{"date":"2040-01-05","amount":12000,"rate":"weekend"},{"date":"2040-01-06","amount":12000,"rate":"weekend"},{"date":"2040-01-07","amount":10000,"rate":"base"},{"date":"2040-01-08","amount":10000,"rate":"base"}],"lines":[{"kind":"nights","amount":74000},{"kind":"cleaning_fee","amount":2500},{"kind":"tax","amount":3825}],"total":80325}',
     NULL
  FROM bumped
RETURNING *),
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
    SELECT :listing, bumped.seq, 'booking_held', e.id, e.check_in, e.check_out,
           e.hold_expires_at, e.guest_id, :guest, now()::timestamp
      FROM e, bumped RETURNING 1)
SELECT e.*, bumped.seq FROM e, bumped;
