-- Every calendar write bumps its listing's calendar_seq. With room left on
-- each page, PostgreSQL makes that a HOT update (calendar_seq is in no
-- index), instead of a new entry in each of the listing's seven indexes.
-- Pages written from now on keep 20% free; existing ones gain room as
-- VACUUM frees space.
ALTER TABLE properties SET (fillfactor = 80);
