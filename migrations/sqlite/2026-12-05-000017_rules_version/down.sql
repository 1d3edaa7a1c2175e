ALTER TABLE calendar_heads DROP COLUMN rules;
