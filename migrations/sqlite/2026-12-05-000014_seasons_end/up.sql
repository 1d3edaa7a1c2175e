-- The day a listing's last season ends (NULL: it has none); see the
-- PostgreSQL migration of the same name.
ALTER TABLE properties ADD COLUMN seasons_end DATE;
UPDATE properties
   SET seasons_end = (SELECT max(end_date) FROM rate_overrides r WHERE r.property_id = properties.id);
