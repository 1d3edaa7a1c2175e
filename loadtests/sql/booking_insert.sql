-- The raw ceiling for booking.js: one hold row, as Roost writes it, into
-- calendar_entries with its exclusion constraint checked, one durable commit
-- per booking. Listing and week are random over the whole table and years
-- ahead, so rows almost never meet; a rare overlap is skipped (ON CONFLICT
-- DO NOTHING works with exclusion constraints), never an error.
-- run.sh passes guest_lo/guest_hi and prop_lo/prop_hi with -D.
\set guest random(:guest_lo, :guest_hi)
\set listing random(:prop_lo, :prop_hi)
\set week random(0, 100000)
INSERT INTO calendar_entries
    (property_id, kind, status, check_in, check_out, hold_expires_at, created_by,
     guest_id, guests, nights, price_per_night, cleaning_fee, total, currency,
     created_at, updated_at)
VALUES
    (:listing, 'booking', 'pending', DATE '2040-01-01' + 7 * :week,
     DATE '2040-01-01' + 7 * :week + 7, now() + interval '15 minutes', :guest,
     :guest, 1, 7, 10000, 2500, 72500, 'EUR', now(), now())
ON CONFLICT DO NOTHING;
