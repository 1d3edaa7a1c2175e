ALTER TABLE properties DROP COLUMN advance_notice_days;
ALTER TABLE properties DROP COLUMN booking_window_days;
ALTER TABLE properties DROP COLUMN check_in_days;
ALTER TABLE properties DROP COLUMN check_out_days;
ALTER TABLE properties DROP COLUMN time_zone;
