-- The day a listing's last season ends (NULL: it has none), kept with its
-- row so that a hold, which reads the row under its lock anyway, asks for
-- seasons only when one can touch its nights: a booking for nights after
-- seasons_end (or on a listing with none) is a statement shorter. Written
-- by every season added or removed, under the listing's lock.
ALTER TABLE properties ADD COLUMN seasons_end DATE;
UPDATE properties p SET seasons_end = r.last
  FROM (SELECT property_id, max(end_date) AS last FROM rate_overrides GROUP BY property_id) r
 WHERE p.id = r.property_id;
