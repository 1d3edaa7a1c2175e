-- Listings, and each listing's calendar: guest bookings and holds, and host blocks.

CREATE TABLE properties (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id         BIGINT    NOT NULL REFERENCES users (id),
    title           TEXT      NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
    description     TEXT      NOT NULL CHECK (length(description) <= 5000),
    address         TEXT      NOT NULL CHECK (length(address) BETWEEN 1 AND 200),
    city            TEXT      NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    -- `city` folded to lower case: what the search's city filter matches.
    city_key        TEXT      NOT NULL,
    country         TEXT      NOT NULL CHECK (length(country) = 2),
    latitude        REAL NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude       REAL NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    price_per_night BIGINT    NOT NULL CHECK (price_per_night > 0),
    currency        TEXT      NOT NULL CHECK (length(currency) = 3),
    cleaning_fee    BIGINT    NOT NULL CHECK (cleaning_fee >= 0),
    max_guests      BIGINT    NOT NULL CHECK (max_guests BETWEEN 1 AND 50),
    min_nights      BIGINT    NOT NULL CHECK (min_nights >= 1),
    max_nights      BIGINT    NOT NULL CHECK (max_nights >= min_nights AND max_nights <= 365),
    -- One bit per amenity (see src/domain/amenity.rs); "has all of these" is one AND.
    amenities       BIGINT    NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    deleted_at      TIMESTAMP
);

-- Search: every sort order has an index that yields rows already in order,
-- over live listings only, with the common equality filters in front.
CREATE INDEX properties_price ON properties (price_per_night, id) WHERE deleted_at IS NULL;
CREATE INDEX properties_city_price ON properties (city_key, price_per_night, id) WHERE deleted_at IS NULL;
CREATE INDEX properties_country_price ON properties (country, price_per_night, id) WHERE deleted_at IS NULL;
CREATE INDEX properties_live_id ON properties (id) WHERE deleted_at IS NULL;
CREATE INDEX properties_lat_lon ON properties (latitude, longitude) WHERE deleted_at IS NULL;
CREATE INDEX properties_host ON properties (host_id, id);

-- One row per claim on a listing's nights: a guest's booking (a hold while
-- pending) or a host's block. The nights are [check_in, check_out).
CREATE TABLE calendar_entries (
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

CREATE INDEX calendar_entries_property ON calendar_entries (property_id, check_out);
CREATE INDEX calendar_entries_live ON calendar_entries (property_id, check_in, check_out)
    WHERE status IN ('pending', 'confirmed', 'completed', 'blocked');
CREATE INDEX calendar_entries_guest ON calendar_entries (guest_id, id) WHERE kind = 'booking';
CREATE INDEX calendar_entries_holds ON calendar_entries (hold_expires_at) WHERE status = 'pending';
