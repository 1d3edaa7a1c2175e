-- The calendar event log: every change to a listing's calendar, numbered per
-- listing (seq 1, 2, 3… with no gaps), written in the same transaction as the
-- change. Live clients resume from it; nodes catch up from it.

-- The listing's last event number. Every calendar write locks the listing's
-- row first, so two writers of one calendar take turns, on any node.
ALTER TABLE properties ADD COLUMN calendar_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE calendar_events (
    property_id     BIGINT    NOT NULL REFERENCES properties (id),
    seq             BIGINT    NOT NULL CHECK (seq >= 1),
    kind            TEXT      NOT NULL CHECK (kind IN ('booking_held', 'booking_confirmed',
                        'booking_cancelled', 'booking_expired', 'block_added', 'block_removed',
                        'listing_removed')),
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

-- Pruning by age.
CREATE INDEX calendar_events_created ON calendar_events (created_at);

-- One row: this deployment's identity. Nodes sharing a database share its
-- Redis channel, and no other deployment's events can reach them.
CREATE TABLE deployment (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    event_channel TEXT   NOT NULL
);
INSERT INTO deployment (id, event_channel)
VALUES (1, 'roost:events:' || md5(random()::text || clock_timestamp()::text));
