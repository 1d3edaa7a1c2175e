-- Stay rules a host sets, and the listing's time zone: its "today" (for
-- the past, notice, window and completion) is the local date there.
-- Days are a bit per weekday, Monday first (127: any day); a booking
-- window of 0 days is no limit.
ALTER TABLE properties ADD COLUMN advance_notice_days BIGINT NOT NULL DEFAULT 0 CHECK (advance_notice_days BETWEEN 0 AND 365);
ALTER TABLE properties ADD COLUMN booking_window_days BIGINT NOT NULL DEFAULT 0 CHECK (booking_window_days BETWEEN 0 AND 730);
ALTER TABLE properties ADD COLUMN check_in_days BIGINT NOT NULL DEFAULT 127 CHECK (check_in_days BETWEEN 1 AND 127);
ALTER TABLE properties ADD COLUMN check_out_days BIGINT NOT NULL DEFAULT 127 CHECK (check_out_days BETWEEN 1 AND 127);
ALTER TABLE properties ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- Stays to complete: confirmed bookings by check-out day.
CREATE INDEX calendar_entries_to_complete ON calendar_entries (check_out) WHERE status = 'confirmed';

-- A completed stay, and a hold moved to other nights, are events of their own. SQLite cannot alter a CHECK: the
-- log is rebuilt by the documented procedure (foreign keys are off while
-- migrating and checked before commit; see src/db/migrations.rs).
CREATE TABLE calendar_events_new (
    property_id     BIGINT    NOT NULL REFERENCES properties (id),
    seq             BIGINT    NOT NULL CHECK (seq >= 1),
    kind            TEXT      NOT NULL CHECK (kind IN ('booking_held', 'booking_confirmed', 'booking_cancelled', 'booking_expired',
                        'booking_completed', 'booking_changed', 'block_added', 'block_removed', 'listing_removed')),
    -- The booking or block (no foreign key: a removed block's row is gone).
    entry_id        BIGINT,
    check_in        DATE,
    check_out       DATE,
    hold_expires_at TIMESTAMP,
    -- Routing to user channels only; never sent to a listing's subscribers.
    guest_id        BIGINT,
    host_id         BIGINT    NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (property_id, seq)
);
INSERT INTO calendar_events_new
    SELECT property_id, seq, kind, entry_id, check_in, check_out, hold_expires_at, guest_id, host_id, created_at
    FROM calendar_events;
DROP TABLE calendar_events;
ALTER TABLE calendar_events_new RENAME TO calendar_events;
CREATE INDEX calendar_events_created ON calendar_events (created_at);
