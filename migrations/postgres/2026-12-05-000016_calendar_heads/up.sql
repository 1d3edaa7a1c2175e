-- Where each listing's event log stands, in a narrow row of its own. Every
-- calendar write moves it on; on the listing's own row each move wrote a new
-- version of the whole wide row and re-checked every CHECK constraint of
-- `properties` (12 % of PostgreSQL's CPU in a booking's profile). The
-- listing's row is still the calendar's lock: `properties::lock_calendar`
-- locks both rows, and nothing moves a head without that lock.
CREATE TABLE calendar_heads (
    property_id BIGINT PRIMARY KEY REFERENCES properties (id),
    seq         BIGINT NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
INSERT INTO calendar_heads (property_id, seq) SELECT id, calendar_seq FROM properties;
ALTER TABLE properties DROP COLUMN calendar_seq;
