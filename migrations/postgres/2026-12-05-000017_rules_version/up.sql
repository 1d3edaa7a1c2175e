-- The version of what a claim on the listing is judged by: its row (price,
-- stay rules, time zone, deletion) and its seasons. Every change of those
-- moves it on in the same transaction (`properties::rules_changed`). A
-- listing's actor keeps the rules it read with their version, and claims
-- nights in one statement that moves the head only while the version is
-- still the one it read (`events::claim_guarded`); it sits on the head's
-- row, so the check is made under the row lock the claim takes anyway.
ALTER TABLE calendar_heads ADD COLUMN rules BIGINT NOT NULL DEFAULT 0;
