-- The audit trail: who did what, when. A row is written in the same
-- transaction as the change it records (a failed sign-in in its own) and is
-- never changed: the triggers below refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The signed-in user who asked; none when signed out or for Roost itself.
    actor_id    BIGINT,
    ip          TEXT,
    request_id  TEXT,
    action      TEXT      NOT NULL,
    object_type TEXT      NOT NULL,
    object_id   BIGINT,
    -- JSON; never a password, a token or card data.
    details     TEXT      NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
-- Newest first, filtered by who, what, or which object.
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Idempotency-Key records, shared by every node. The key itself is never
-- stored, only its SHA-256; the stored response is encrypted under a key
-- derived from the Idempotency-Key (a sign-in's response holds a token).
CREATE TABLE idempotency_keys (
    -- Whose key: 'user:<id>', or 'ip:<address>' when signed out.
    scope       TEXT      NOT NULL,
    key_hash    TEXT      NOT NULL,
    -- The method, path and body it was first used with (an HMAC).
    fingerprint TEXT      NOT NULL,
    -- While the first request runs: its claim, and when another node may
    -- take the key over (the first one died). Done: NULL.
    claim       TEXT,
    lease_until TIMESTAMP,
    -- Once done: the response to replay.
    status      BIGINT,
    response    BLOB,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key_hash),
    CHECK ((claim IS NULL) = (status IS NOT NULL))
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
