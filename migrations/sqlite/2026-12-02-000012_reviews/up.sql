-- Reviews, after the stay: the guest's of the listing, the host's of the
-- guest, one each per booking. Each stays with its author until both are
-- written or the stay's review window closes; then both are published at
-- once. Published, not removed reviews are what the aggregates count.
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id    BIGINT    NOT NULL REFERENCES calendar_entries (id),
    property_id   BIGINT    NOT NULL REFERENCES properties (id),
    -- 'guest': the guest's review of the listing; 'host': the host's of the guest.
    side          TEXT      NOT NULL CHECK (side IN ('guest', 'host')),
    author_id     BIGINT    NOT NULL REFERENCES users (id),
    -- Whom it is about: the listing's host, or the guest.
    subject_id    BIGINT    NOT NULL REFERENCES users (id),
    rating        BIGINT    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    -- The guest's category ratings (NULL on a host's review).
    cleanliness   BIGINT CHECK (cleanliness BETWEEN 1 AND 5),
    accuracy      BIGINT CHECK (accuracy BETWEEN 1 AND 5),
    communication BIGINT CHECK (communication BETWEEN 1 AND 5),
    location      BIGINT CHECK (location BETWEEN 1 AND 5),
    check_in      BIGINT CHECK (check_in BETWEEN 1 AND 5),
    value         BIGINT CHECK (value BETWEEN 1 AND 5),
    comment       TEXT      NOT NULL CHECK (length(comment) BETWEEN 1 AND 2000),
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    published_at  TIMESTAMP,
    -- The reviewed party's one public reply.
    reply         TEXT CHECK (length(reply) BETWEEN 1 AND 2000),
    replied_at    TIMESTAMP,
    reply_updated_at TIMESTAMP,
    -- An admin's removal: no longer shown or counted.
    removed_at    TIMESTAMP,
    removed_by    BIGINT REFERENCES users (id),
    removal_reason TEXT,
    CHECK ((side = 'guest') = (cleanliness IS NOT NULL AND accuracy IS NOT NULL
        AND communication IS NOT NULL AND location IS NOT NULL
        AND check_in IS NOT NULL AND value IS NOT NULL)),
    CHECK ((reply IS NULL) = (replied_at IS NULL))
);
-- One review per side per booking.
CREATE UNIQUE INDEX reviews_one_per_side ON reviews (booking_id, side);
-- A listing's published reviews, newest first; a guest's, the same.
CREATE INDEX reviews_listing_published ON reviews (property_id, published_at, id)
    WHERE published_at IS NOT NULL AND removed_at IS NULL AND side = 'guest';
CREATE INDEX reviews_subject_published ON reviews (subject_id, published_at, id)
    WHERE published_at IS NOT NULL AND removed_at IS NULL AND side = 'host';
-- What the window-close job reads: few rows (written, not yet matched).
CREATE INDEX reviews_unpublished ON reviews (booking_id)
    WHERE published_at IS NULL AND removed_at IS NULL;

-- When a completed stay's review window closes (set when it completes).
-- Stays completed before this migration get the default window of 14 days
-- after check-out, counted in UTC.
ALTER TABLE calendar_entries ADD COLUMN reviews_close_at TIMESTAMP;
UPDATE calendar_entries SET reviews_close_at = datetime(check_out, '+15 days')
    WHERE kind = 'booking' AND status = 'completed';

-- Each listing's totals over its published guest reviews: sums, so every
-- average is exact; rating_avg_x100 is the overall average in hundredths,
-- rounded half up (0 with no reviews), the key search sorts on.
ALTER TABLE properties ADD COLUMN review_count BIGINT NOT NULL DEFAULT 0 CHECK (review_count >= 0);
ALTER TABLE properties ADD COLUMN rating_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN cleanliness_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN accuracy_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN communication_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN location_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN check_in_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN value_sum BIGINT NOT NULL DEFAULT 0;
ALTER TABLE properties ADD COLUMN rating_avg_x100 BIGINT NOT NULL DEFAULT 0;
CREATE INDEX properties_rating ON properties (rating_avg_x100, id) WHERE deleted_at IS NULL;

-- Each guest's totals over hosts' published reviews of them.
ALTER TABLE users ADD COLUMN guest_review_count BIGINT NOT NULL DEFAULT 0 CHECK (guest_review_count >= 0);
ALTER TABLE users ADD COLUMN guest_rating_sum BIGINT NOT NULL DEFAULT 0;
