-- Payments: Roost's record of each payment a guest starts for a booking.
-- Roost never sees a card: it keeps the gateway's payment id, the status,
-- the amount, the failure reason, and the card's brand and last four
-- digits when the gateway sends them.
CREATE TABLE payments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id         BIGINT    NOT NULL REFERENCES calendar_entries (id),
    guest_id           BIGINT    NOT NULL REFERENCES users (id),
    gateway            TEXT      NOT NULL,
    gateway_payment_id TEXT      NOT NULL,
    status             TEXT      NOT NULL CHECK (status IN ('requires_payment_method',
                           'processing', 'succeeded', 'refund_pending', 'refunded')),
    amount             BIGINT    NOT NULL CHECK (amount > 0),
    currency           TEXT      NOT NULL CHECK (length(currency) = 3),
    failure_reason     TEXT,
    card_brand         TEXT,
    card_last4         TEXT,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    UNIQUE (gateway, gateway_payment_id)
);
CREATE INDEX payments_booking ON payments (booking_id, id);
-- Refunds owed (a payment that succeeded after its nights went to another
-- booking): retried until the gateway has made them.
CREATE INDEX payments_refund_pending ON payments (updated_at) WHERE status = 'refund_pending';

-- Every gateway event processed, once: a redelivery finds its row.
CREATE TABLE webhook_events (
    gateway     TEXT      NOT NULL,
    event_id    TEXT      NOT NULL,
    kind        TEXT      NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (gateway, event_id)
);

-- The sandbox card processor's own tables. It stands in for an outside
-- service: Roost's code reaches it only over HTTP, at /sandbox/v1, and hears
-- from it only through signed webhooks.
CREATE TABLE sandbox_settings (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    api_key        TEXT   NOT NULL,
    webhook_secret TEXT   NOT NULL
);
INSERT INTO sandbox_settings (id, api_key, webhook_secret)
VALUES (1, 'sk_sandbox_' || lower(hex(randomblob(16))), 'whsec_' || lower(hex(randomblob(32))));

CREATE TABLE sandbox_payment_intents (
    id              TEXT      PRIMARY KEY,
    client_secret   TEXT      NOT NULL,
    amount          BIGINT    NOT NULL,
    currency        TEXT      NOT NULL,
    reference       TEXT      NOT NULL,
    status          TEXT      NOT NULL,
    last_error      TEXT,
    card_brand      TEXT,
    card_last4      TEXT,
    -- A processing payment succeeds at this time.
    succeed_at      TIMESTAMP,
    amount_refunded BIGINT    NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX sandbox_intents_due ON sandbox_payment_intents (succeed_at) WHERE status = 'processing';

-- Webhooks waiting to be delivered, retried with backoff until Roost
-- answers 2xx; a restart loses none.
CREATE TABLE sandbox_webhook_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT      NOT NULL,
    payload         TEXT      NOT NULL,
    attempts        BIGINT    NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX sandbox_outbox_due ON sandbox_webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
