DROP INDEX calendar_entries_live;
DROP INDEX auth_tokens_revoked;
DROP INDEX calendar_entries_lapse_queue;
DROP INDEX calendar_entries_pending_by_property;
CREATE INDEX calendar_entries_holds ON calendar_entries (hold_expires_at) WHERE status = 'pending';
