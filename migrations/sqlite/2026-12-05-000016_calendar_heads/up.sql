-- Where each listing's event log stands, in a narrow row of its own (as on
-- PostgreSQL, where moving it on the listing's wide row was the cost; here
-- it keeps the two schemas one). Every listing has one, written with it.
CREATE TABLE calendar_heads (
    property_id INTEGER PRIMARY KEY REFERENCES properties (id),
    seq         BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO calendar_heads (property_id, seq) SELECT id, calendar_seq FROM properties;
ALTER TABLE properties DROP COLUMN calendar_seq;
