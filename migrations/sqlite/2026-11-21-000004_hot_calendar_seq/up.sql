-- PostgreSQL only (a fill factor for the listings table); kept so both
-- backends' migrations stay in step.
SELECT 1;
