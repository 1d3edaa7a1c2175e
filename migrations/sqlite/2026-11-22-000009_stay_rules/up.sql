-- Stay rules a host sets, and the listing's time zone: its "today" (for
-- the past, notice, window and completion) is the local date there.
-- Days are a bit per weekday, Monday first (127: any day).
ALTER TABLE properties ADD COLUMN advance_notice_days BIGINT NOT NULL DEFAULT 0 CHECK (advance_notice_days BETWEEN 0 AND 365);
ALTER TABLE properties ADD COLUMN booking_window_days BIGINT NOT NULL DEFAULT 730 CHECK (booking_window_days BETWEEN 1 AND 730);
ALTER TABLE properties ADD COLUMN check_in_days BIGINT NOT NULL DEFAULT 127 CHECK (check_in_days BETWEEN 1 AND 127);
ALTER TABLE properties ADD COLUMN check_out_days BIGINT NOT NULL DEFAULT 127 CHECK (check_out_days BETWEEN 1 AND 127);
ALTER TABLE properties ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
