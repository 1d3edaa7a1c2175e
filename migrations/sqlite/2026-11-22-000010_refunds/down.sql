DROP TABLE sandbox_idempotency_keys;
DROP TABLE sandbox_refunds;
DROP INDEX payments_unsettled;
UPDATE payments SET status = 'refund_pending'
WHERE status = 'succeeded' AND amount_refunded > 0;
DROP TABLE refunds;
ALTER TABLE payments DROP COLUMN checked_at;
ALTER TABLE payments DROP COLUMN amount_refunded;
ALTER TABLE properties DROP COLUMN check_in_minute;
ALTER TABLE properties DROP COLUMN cancellation_policy;
