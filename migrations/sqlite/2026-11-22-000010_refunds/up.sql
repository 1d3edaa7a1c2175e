-- Cancellation policies: what a guest's cancellation refunds, measured
-- against the listing's local check-in time (minutes after midnight).
ALTER TABLE properties ADD COLUMN cancellation_policy TEXT NOT NULL DEFAULT 'moderate'
    CHECK (cancellation_policy IN ('flexible', 'moderate', 'limited', 'firm', 'strict'));
ALTER TABLE properties ADD COLUMN check_in_minute BIGINT NOT NULL DEFAULT 900
    CHECK (check_in_minute BETWEEN 0 AND 1439);

-- What has been refunded of a payment, or is being: raised in the
-- transaction that creates a refund, lowered when one fails. The check is
-- what makes "the refunds of a payment never exceed it" a database fact:
-- of two racing refunds that would together exceed it, one fails.
-- (`refund_pending` stays allowed in the status check for rows written
-- before this migration; nothing writes it now.)
ALTER TABLE payments ADD COLUMN amount_refunded BIGINT NOT NULL DEFAULT 0
    CONSTRAINT payments_refunds_within CHECK (amount_refunded BETWEEN 0 AND amount);
-- When the reconciler last asked the gateway about it.
ALTER TABLE payments ADD COLUMN checked_at TIMESTAMP;

-- Each refund of a payment: asked for by Roost (`pending` until the
-- gateway's word; no `gateway_refund_id` until the gateway has it) or made
-- at the gateway and learnt from its webhook.
CREATE TABLE refunds (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id        BIGINT    NOT NULL REFERENCES payments (id),
    booking_id        BIGINT    NOT NULL REFERENCES calendar_entries (id),
    gateway_refund_id TEXT      UNIQUE,
    amount            BIGINT    NOT NULL CHECK (amount > 0),
    currency          TEXT      NOT NULL CHECK (length(currency) = 3),
    status            TEXT      NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason            TEXT      NOT NULL,
    -- The refund line by line (JSON), as quoted when it was decided.
    lines             TEXT      NOT NULL,
    failure_reason    TEXT,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    checked_at        TIMESTAMP
);
CREATE INDEX refunds_payment ON refunds (payment_id, id);
CREATE INDEX refunds_booking ON refunds (booking_id, id);
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE status = 'pending';

-- Refunds owed or made before this table: one row each, and the payment's
-- refunded amount says so.
INSERT INTO refunds (payment_id, booking_id, amount, currency, status, reason, lines, created_at, updated_at)
SELECT id, booking_id, amount, currency,
       CASE status WHEN 'refunded' THEN 'succeeded' ELSE 'pending' END,
       COALESCE(failure_reason, 'refunded_at_gateway'),
       '[{"kind":"nights","amount":' || amount || '}]', updated_at, updated_at
FROM payments WHERE status IN ('refund_pending', 'refunded');
UPDATE payments SET amount_refunded = amount,
                    status = CASE status WHEN 'refund_pending' THEN 'succeeded' ELSE status END
WHERE status IN ('refund_pending', 'refunded');

-- Payments the reconciler asks about: not settled yet, by age.
CREATE INDEX payments_unsettled ON payments (updated_at) WHERE status IN ('requires_payment_method', 'processing');

-- The sandbox processor's refunds, and its memory of Idempotency-Keys (a
-- retried call gets the first answer, as from a real processor).
CREATE TABLE sandbox_refunds (
    id             TEXT      PRIMARY KEY,
    payment_intent TEXT      NOT NULL,
    amount         BIGINT    NOT NULL,
    status         TEXT      NOT NULL,
    reference      TEXT,
    created_at     TIMESTAMP NOT NULL
);
CREATE TABLE sandbox_idempotency_keys (
    key        TEXT      PRIMARY KEY,
    request    TEXT      NOT NULL,
    status     BIGINT    NOT NULL,
    response   TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL
);
