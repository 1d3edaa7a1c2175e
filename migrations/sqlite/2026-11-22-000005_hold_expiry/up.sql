-- Lapsed holds cost a booking nothing and clear in batches.
--
-- Each index below is usable only by the query it is for, so no statistics
-- (stale ones included) can lead the planner to scan one through the other:
-- each predicate names a column only its own query constrains.
--
-- Per listing: every calendar write first expires its listing's lapsed holds,
-- through this index, which leads with the listing: the expiry reads the
-- listing's own pending holds and nothing else. `property_id IS NOT NULL` is
-- always true; it is there so that only a query that fixes the listing can
-- use the index. (Without it, with statistics taken before the holds
-- existed, PostgreSQL read the sweeper's page through this index, every
-- pending hold of every listing, and sorted them.)
CREATE INDEX calendar_entries_pending_by_property
    ON calendar_entries (property_id, hold_expires_at)
    WHERE status = 'pending' AND property_id IS NOT NULL;

-- The sweeper's queue: lapsed holds in the order they lapsed, so a page of
-- them is the first N entries. It replaces `calendar_entries_holds`, which a
-- per-listing expiry could be planned through (with statistics taken before
-- the holds existed, PostgreSQL did: 85,000 other listings' holds filtered
-- out on every booking). The predicate names `kind` as well: every pending
-- row is a booking, but a query that does not say so (the per-listing
-- expiry never does) cannot use this index, so it cannot scan other
-- listings' holds through it.
DROP INDEX calendar_entries_holds;
CREATE INDEX calendar_entries_lapse_queue
    ON calendar_entries (hold_expires_at) WHERE status = 'pending' AND kind = 'booking';

-- Live claims only, by listing and end: what availability reads (the
-- actor's load, the overlap check, search's probe per listing) use, so
-- expired holds and cancelled bookings, however many, are never read
-- again. The queries spell the statuses out as literals to match it.
DROP INDEX calendar_entries_live;
CREATE INDEX calendar_entries_live ON calendar_entries (property_id, check_out)
    WHERE status IN ('pending', 'confirmed', 'completed', 'blocked');

-- Housekeeping deletes revoked tokens in bounded batches, oldest first.
CREATE INDEX auth_tokens_revoked ON auth_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
