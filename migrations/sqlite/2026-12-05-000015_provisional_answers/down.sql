CREATE TABLE idempotency_keys_old (
    scope       TEXT      NOT NULL,
    key_hash    TEXT      NOT NULL,
    fingerprint TEXT      NOT NULL,
    claim       TEXT,
    lease_until TIMESTAMP,
    status      BIGINT,
    response    BLOB,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key_hash),
    CHECK ((claim IS NULL) = (status IS NOT NULL))
);
INSERT INTO idempotency_keys_old SELECT scope, key_hash, fingerprint, claim, lease_until,
    status, response, created_at, expires_at FROM idempotency_keys
    WHERE (claim IS NULL) = (status IS NOT NULL);
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_old RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
