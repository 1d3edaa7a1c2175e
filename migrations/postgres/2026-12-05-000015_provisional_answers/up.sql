-- A key may hold a provisional answer while its request still holds its
-- claim: a GraphQL mutation's transaction stores one with its change, and
-- the request replaces it with the answer it renders after the commit. A
-- key is claimed, answered, or both; never neither.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_check;
ALTER TABLE idempotency_keys
    ADD CONSTRAINT idempotency_keys_held_or_answered
    CHECK (claim IS NOT NULL OR status IS NOT NULL);
