-- Stay rules a host sets, and the listing's time zone: its "today" (for
-- the past, notice, window and completion) is the local date there.
-- Days are a bit per weekday, Monday first (127: any day); a booking
-- window of 0 days is no limit.
ALTER TABLE properties
    ADD COLUMN advance_notice_days BIGINT NOT NULL DEFAULT 0 CHECK (advance_notice_days BETWEEN 0 AND 365),
    ADD COLUMN booking_window_days BIGINT NOT NULL DEFAULT 0 CHECK (booking_window_days BETWEEN 0 AND 730),
    ADD COLUMN check_in_days       BIGINT NOT NULL DEFAULT 127 CHECK (check_in_days BETWEEN 1 AND 127),
    ADD COLUMN check_out_days      BIGINT NOT NULL DEFAULT 127 CHECK (check_out_days BETWEEN 1 AND 127),
    ADD COLUMN time_zone           TEXT   NOT NULL DEFAULT 'UTC';

-- Stays to complete: confirmed bookings by check-out day.
CREATE INDEX calendar_entries_to_complete ON calendar_entries (check_out) WHERE status = 'confirmed';

-- A completed stay, and a hold moved to other nights, are events of their own.
ALTER TABLE calendar_events DROP CONSTRAINT calendar_events_kind_check;
ALTER TABLE calendar_events ADD CONSTRAINT calendar_events_kind_check CHECK (kind IN (
    'booking_held', 'booking_confirmed', 'booking_cancelled', 'booking_expired',
    'booking_completed', 'booking_changed', 'block_added', 'block_removed', 'listing_removed'));
