ALTER TABLE properties
    DROP COLUMN advance_notice_days,
    DROP COLUMN booking_window_days,
    DROP COLUMN check_in_days,
    DROP COLUMN check_out_days,
    DROP COLUMN time_zone;
