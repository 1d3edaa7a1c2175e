ALTER TABLE properties ADD COLUMN calendar_seq BIGINT NOT NULL DEFAULT 0;
UPDATE properties SET calendar_seq = h.seq FROM calendar_heads h WHERE h.property_id = properties.id;
DROP TABLE calendar_heads;
