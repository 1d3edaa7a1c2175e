-- The raw ceiling for search.js's shape "dates only": the SQL Roost
-- sends for it, parameters drawn as search.js draws them. Written by
-- gen_search.py; run by run.sh with pgbench.
\set check_in random(1, 90)
\set nights random(2, 7)
\set check_out :check_in + :nights
\set guests random(1, 4)
SELECT "properties"."id", "properties"."host_id", "properties"."title", "properties"."description", "properties"."address", "properties"."city", "properties"."city_key", "properties"."country", "properties"."latitude", "properties"."longitude", "properties"."price_per_night", "properties"."currency", "properties"."cleaning_fee", "properties"."max_guests", "properties"."min_nights", "properties"."max_nights", "properties"."amenities", "properties"."created_at", "properties"."updated_at", "properties"."deleted_at", "properties"."calendar_seq" FROM "properties" WHERE "properties"."deleted_at" IS NULL AND ("properties"."max_guests" >= :guests) AND ("properties"."min_nights" <= :nights) AND ("properties"."max_nights" >= :nights) AND coalesce((SELECT false FROM "calendar_entries" WHERE (((("calendar_entries"."property_id" = "properties"."id") AND (("calendar_entries"."status" = ANY('{pending,confirmed,completed,blocked}'::text[])) AND (("calendar_entries"."status" != 'pending') OR ("calendar_entries"."hold_expires_at" > LOCALTIMESTAMP)))) AND ("calendar_entries"."check_in" < CURRENT_DATE + :check_out::int)) AND ("calendar_entries"."check_out" > CURRENT_DATE + :check_in::int)) LIMIT 1), true) ORDER BY "properties"."price_per_night" ASC, "properties"."id" ASC LIMIT 20;
