DROP TABLE sandbox_idempotency_keys;
DROP TABLE sandbox_refunds;
DROP INDEX payments_unsettled;
UPDATE payments SET status = 'refund_pending'
WHERE status = 'succeeded' AND amount_refunded > 0;
DROP TABLE refunds;
ALTER TABLE payments DROP CONSTRAINT payments_refunds_within;
ALTER TABLE payments DROP COLUMN amount_refunded, DROP COLUMN checked_at;
ALTER TABLE properties DROP COLUMN cancellation_policy, DROP COLUMN check_in_minute;
