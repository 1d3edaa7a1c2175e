-- SQLite cannot alter a CHECK: the table is rebuilt by its documented
-- procedure (create the new one, copy, drop the old, rename the new), its
-- rows, ids and indexes kept. Foreign keys are off while migrating and
-- checked whole before commit (src/db/migrations.rs).
CREATE TABLE calendar_entries_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property_id     BIGINT    NOT NULL REFERENCES properties (id),
    kind            TEXT      NOT NULL CHECK (kind IN ('booking', 'block')),
    status          TEXT      NOT NULL CHECK (status IN ('pending', 'confirmed', 'completed', 'expired', 'cancelled', 'blocked')),
    check_in        DATE      NOT NULL,
    check_out       DATE      NOT NULL CHECK (check_out > check_in),
    hold_expires_at TIMESTAMP,
    created_by      BIGINT    NOT NULL REFERENCES users (id),
    -- Bookings only: who stays, and the price it was sold at.
    guest_id        BIGINT    REFERENCES users (id),
    guests          BIGINT,
    nights          BIGINT,
    price_per_night BIGINT,
    cleaning_fee    BIGINT,
    total           BIGINT,
    currency        TEXT,
    -- Blocks only.
    reason          TEXT,
    cancelled_by    BIGINT    REFERENCES users (id),
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    CHECK (
        (kind = 'booking' AND status <> 'blocked' AND guest_id IS NOT NULL AND guests >= 1
            AND nights = CAST(julianday(check_out) - julianday(check_in) AS INTEGER) AND price_per_night > 0 AND cleaning_fee >= 0
            AND total = nights * price_per_night + cleaning_fee AND currency IS NOT NULL
            AND (status <> 'pending' OR hold_expires_at IS NOT NULL))
        OR (kind = 'block' AND status = 'blocked' AND guest_id IS NULL)
    )
    -- No overlap constraint exists in SQLite: every calendar write checks for
    -- overlap and inserts inside one BEGIN IMMEDIATE transaction (src/db/calendar.rs).
);
INSERT INTO calendar_entries_new (id, property_id, kind, status, check_in, check_out, hold_expires_at, created_by, guest_id, guests, nights, price_per_night, cleaning_fee, total, currency, reason, cancelled_by, created_at, updated_at)
    SELECT id, property_id, kind, status, check_in, check_out, hold_expires_at, created_by, guest_id, guests, nights, price_per_night, cleaning_fee, total, currency, reason, cancelled_by, created_at, updated_at FROM calendar_entries;
DROP TABLE calendar_entries;
ALTER TABLE calendar_entries_new RENAME TO calendar_entries;
CREATE INDEX calendar_entries_property ON calendar_entries (property_id, check_out);
CREATE INDEX calendar_entries_guest ON calendar_entries (guest_id, id) WHERE kind = 'booking';
CREATE INDEX calendar_entries_pending_by_property
    ON calendar_entries (property_id, hold_expires_at)
    WHERE status = 'pending' AND property_id IS NOT NULL;
CREATE INDEX calendar_entries_lapse_queue
    ON calendar_entries (hold_expires_at) WHERE status = 'pending' AND kind = 'booking';
CREATE INDEX calendar_entries_live ON calendar_entries (property_id, check_out)
    WHERE status IN ('pending', 'confirmed', 'completed', 'blocked');
DROP TABLE rate_overrides;
ALTER TABLE properties DROP COLUMN weekend_price;
ALTER TABLE properties DROP COLUMN extra_guest_fee;
ALTER TABLE properties DROP COLUMN extra_guest_after;
ALTER TABLE properties DROP COLUMN weekly_discount_pct;
ALTER TABLE properties DROP COLUMN monthly_discount_pct;
ALTER TABLE properties DROP COLUMN tax_rate_bp;
