-- Prices a host sets beside the base nightly price and the cleaning fee
-- (each NULL: none). Amounts in the listing currency's minor units.
ALTER TABLE properties ADD COLUMN weekend_price BIGINT CHECK (weekend_price > 0);
ALTER TABLE properties ADD COLUMN extra_guest_fee BIGINT CHECK (extra_guest_fee > 0);
ALTER TABLE properties ADD COLUMN extra_guest_after BIGINT CHECK (extra_guest_after >= 1);
ALTER TABLE properties ADD COLUMN weekly_discount_pct BIGINT CHECK (weekly_discount_pct BETWEEN 1 AND 99);
ALTER TABLE properties ADD COLUMN monthly_discount_pct BIGINT CHECK (monthly_discount_pct BETWEEN 1 AND 99);
ALTER TABLE properties ADD COLUMN tax_rate_bp BIGINT CHECK (tax_rate_bp BETWEEN 1 AND 10000);

-- Seasons: nights in [start_date, end_date) cost `price`; a stay touching
-- them is at least `min_nights` long. A listing's seasons never overlap
-- (checked under the listing's write lock).
CREATE TABLE rate_overrides (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    property_id BIGINT    NOT NULL REFERENCES properties (id),
    start_date  DATE      NOT NULL,
    end_date    DATE      NOT NULL,
    price       BIGINT    NOT NULL CHECK (price > 0),
    min_nights  BIGINT    CHECK (min_nights >= 1),
    created_at  TIMESTAMP NOT NULL,
    CHECK (end_date > start_date)
);
CREATE INDEX rate_overrides_property ON rate_overrides (property_id, end_date);

-- What a booking was sold at, night by night and line by line (JSON). Its
-- total is the sum of those lines, no longer nights × price + cleaning fee.
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
    price_detail    TEXT,
    CHECK (
        (kind = 'booking' AND status <> 'blocked' AND guest_id IS NOT NULL AND guests >= 1
            AND nights = CAST(julianday(check_out) - julianday(check_in) AS INTEGER) AND price_per_night > 0 AND cleaning_fee >= 0
            AND total > 0 AND currency IS NOT NULL
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
