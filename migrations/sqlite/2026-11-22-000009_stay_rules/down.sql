CREATE TABLE calendar_events_new (
    property_id     BIGINT    NOT NULL REFERENCES properties (id),
    seq             BIGINT    NOT NULL CHECK (seq >= 1),
    kind            TEXT      NOT NULL CHECK (kind IN ('booking_held', 'booking_confirmed', 'booking_cancelled', 'booking_expired',
                        'block_added', 'block_removed', 'listing_removed')),
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
DROP INDEX calendar_entries_to_complete;
ALTER TABLE properties DROP COLUMN advance_notice_days;
ALTER TABLE properties DROP COLUMN booking_window_days;
ALTER TABLE properties DROP COLUMN check_in_days;
ALTER TABLE properties DROP COLUMN check_out_days;
ALTER TABLE properties DROP COLUMN time_zone;
