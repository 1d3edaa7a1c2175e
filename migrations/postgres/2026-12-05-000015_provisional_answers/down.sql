DELETE FROM idempotency_keys WHERE claim IS NOT NULL AND status IS NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_held_or_answered;
ALTER TABLE idempotency_keys
    ADD CONSTRAINT idempotency_keys_check
    CHECK ((claim IS NULL) = (status IS NOT NULL));
