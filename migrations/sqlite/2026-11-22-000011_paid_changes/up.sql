-- A confirmed booking's change to a dearer stay: it waits for a payment of
-- the difference, and only then moves (or, the new nights taken meanwhile,
-- that payment goes back). One awaits payment per booking at a time.
CREATE TABLE booking_changes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id   BIGINT    NOT NULL REFERENCES calendar_entries (id),
    check_in     DATE      NOT NULL,
    check_out    DATE      NOT NULL CHECK (check_out > check_in),
    guests       BIGINT    NOT NULL CHECK (guests >= 1),
    total        BIGINT    NOT NULL CHECK (total >= 0),
    -- What the new stay costs beyond what was paid: the payment it waits for.
    difference   BIGINT    NOT NULL CHECK (difference > 0),
    -- The new stay's quote (a PriceQuote as JSON).
    price_detail TEXT      NOT NULL,
    status       TEXT      NOT NULL CHECK (status IN ('awaiting_payment', 'applied', 'unavailable', 'superseded')),
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX booking_changes_booking ON booking_changes (booking_id, id);
CREATE UNIQUE INDEX booking_changes_one_awaiting ON booking_changes (booking_id) WHERE status = 'awaiting_payment';

-- A payment of a change's difference names it.
ALTER TABLE payments ADD COLUMN change_id BIGINT REFERENCES booking_changes (id);
