ALTER TABLE calendar_events DROP CONSTRAINT calendar_events_kind_check;
ALTER TABLE calendar_events ADD CONSTRAINT calendar_events_kind_check CHECK (kind IN (
    'booking_held', 'booking_confirmed', 'booking_cancelled', 'booking_expired',
    'block_added', 'block_removed', 'listing_removed')) NOT VALID;
DROP INDEX calendar_entries_to_complete;
ALTER TABLE properties
    DROP COLUMN advance_notice_days,
    DROP COLUMN booking_window_days,
    DROP COLUMN check_in_days,
    DROP COLUMN check_out_days,
    DROP COLUMN time_zone;
