-- A key may hold a provisional answer while its request still holds its
-- claim (see the PostgreSQL migration of the same name). SQLite cannot
-- change a CHECK in place: the table is rebuilt.
CREATE TABLE idempotency_keys_new (
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
    CHECK (claim IS NOT NULL OR status IS NOT NULL)
);
INSERT INTO idempotency_keys_new SELECT scope, key_hash, fingerprint, claim, lease_until,
    status, response, created_at, expires_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
