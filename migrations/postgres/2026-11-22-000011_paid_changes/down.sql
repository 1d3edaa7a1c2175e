ALTER TABLE payments DROP COLUMN change_id;
DROP TABLE booking_changes;
