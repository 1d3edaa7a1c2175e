DROP TABLE deployment;
DROP TABLE calendar_events;
ALTER TABLE properties DROP COLUMN calendar_seq;
