DROP INDEX calendar_entries_live;
CREATE INDEX calendar_entries_live ON calendar_entries (property_id, check_in, check_out)
    WHERE status IN ('pending', 'confirmed', 'completed', 'blocked');
DROP INDEX auth_tokens_revoked;
DROP INDEX calendar_entries_lapse_queue;
DROP INDEX calendar_entries_pending_by_property;
CREATE INDEX calendar_entries_holds ON calendar_entries (hold_expires_at) WHERE status = 'pending';
