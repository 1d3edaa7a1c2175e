ALTER TABLE calendar_entries DROP CONSTRAINT calendar_entries_fields;
ALTER TABLE calendar_entries ADD CONSTRAINT calendar_entries_check1 CHECK (
    (kind = 'booking' AND status <> 'blocked' AND guest_id IS NOT NULL AND guests >= 1
        AND nights = check_out - check_in AND price_per_night > 0 AND cleaning_fee >= 0
        AND total = nights * price_per_night + cleaning_fee AND currency IS NOT NULL
        AND (status <> 'pending' OR hold_expires_at IS NOT NULL))
    OR (kind = 'block' AND status = 'blocked' AND guest_id IS NULL)
) NOT VALID;
ALTER TABLE calendar_entries DROP COLUMN price_detail;
DROP TABLE rate_overrides;
ALTER TABLE properties
    DROP COLUMN weekend_price,
    DROP COLUMN extra_guest_fee,
    DROP COLUMN extra_guest_after,
    DROP COLUMN weekly_discount_pct,
    DROP COLUMN monthly_discount_pct,
    DROP COLUMN tax_rate_bp;
