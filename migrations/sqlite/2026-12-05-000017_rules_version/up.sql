-- The version of what a claim on the listing is judged by (see the
-- PostgreSQL migration). SQLite's writes take the database's write lock
-- and read the rules under it, so nothing here checks it; it moves all the
-- same, to keep the two schemas one.
ALTER TABLE calendar_heads ADD COLUMN rules BIGINT NOT NULL DEFAULT 0;
