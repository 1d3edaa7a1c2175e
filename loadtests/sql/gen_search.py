#!/usr/bin/env python3
"""Writes search_*.sql: pgbench scripts for search.js's five shapes.

Each is the SQL Roost's search sends for that shape (captured from
PostgreSQL's log with log_min_duration_statement = 0), its parameters drawn
the way search.js draws them. Rerun after changing the search query:

    python3 loadtests/sql/gen_search.py
"""
import json
from pathlib import Path

HERE = Path(__file__).parent

PROPERTY_COLUMNS = (
    "id host_id title description address city city_key country latitude longitude "
    "price_per_night currency cleaning_fee max_guests min_nights max_nights "
    "amenities created_at updated_at deleted_at weekend_price extra_guest_fee "
    "extra_guest_after weekly_discount_pct monthly_discount_pct tax_rate_bp "
    "advance_notice_days booking_window_days check_in_days check_out_days "
    "time_zone cancellation_policy check_in_minute review_count rating_sum "
    "cleanliness_sum accuracy_sum communication_sum location_sum check_in_sum "
    "value_sum rating_avg_x100 seasons_end"
)
# The seeded cities (src/seed.rs), as search.js also reads them.
CITIES = [
    (c["name"], c["lat"], c["lon"])
    for c in json.loads((HERE.parent / "cities.json").read_text())
]


def columns(table, names):
    return ", ".join(f'"{table}"."{c}"' for c in names.split())


def array(values, cast=""):
    return "(ARRAY[" + ", ".join(values) + "]" + cast + ")[:city]"


CITY_KEY = array([f"'{name.lower()}'" for name, _, _ in CITIES])
LAT = array([str(lat) for _, lat, _ in CITIES], "::float8[]")
LON = array([str(lon) for _, _, lon in CITIES], "::float8[]")

SET_CITY = "\\set city random(1, 32)\n"
SET_DATES = (
    "\\set check_in random(1, 90)\n\\set nights random(2, 7)\n"
    "\\set check_out :check_in + :nights\n"
)
SET_GUESTS = "\\set guests random(1, 4)\n"
SET_PRICE = "\\set min_price random(40, 250) * 100\n\\set max_price :min_price + random(50, 150) * 100\n"
SET_BOX = "\\set d (2 + random(0, 4)) / 100.0\n"

CITY = f'("properties"."city_key" = {CITY_KEY})'
GUESTS = '("properties"."max_guests" >= :guests)'
PRICE = '("properties"."price_per_night" >= :min_price) AND ("properties"."price_per_night" <= :max_price)'
BOX = (
    f'("properties"."latitude" BETWEEN {LAT} - :d AND {LAT} + :d) AND '
    f'("properties"."longitude" BETWEEN {LON} - :d AND {LON} + :d)'
)
NIGHTS = '("properties"."min_nights" <= :nights) AND ("properties"."max_nights" >= :nights)'
FREE = (
    "coalesce((SELECT false"
    ' FROM "calendar_entries" WHERE (((("calendar_entries"."property_id" = "properties"."id")'
    ' AND (("calendar_entries"."status" = ANY(\'{pending,confirmed,completed,blocked}\'::text[]))'
    ' AND (("calendar_entries"."status" != \'pending\') OR ("calendar_entries"."hold_expires_at" > LOCALTIMESTAMP))))'
    ' AND ("calendar_entries"."check_in" < CURRENT_DATE + :check_out::int))'
    ' AND ("calendar_entries"."check_out" > CURRENT_DATE + :check_in::int)) LIMIT 1), true)'
)

SHAPES = {
    "search_city_dates": ("city + dates + guests", SET_CITY + SET_DATES + SET_GUESTS, [CITY, GUESTS, NIGHTS, FREE]),
    "search_city_price_dates": ("city + price range + dates", SET_CITY + SET_PRICE + SET_DATES, [CITY, PRICE, NIGHTS, FREE]),
    "search_bbox_dates": ("bounding box + dates + guests", SET_CITY + SET_BOX + SET_DATES + SET_GUESTS, [GUESTS, BOX, NIGHTS, FREE]),
    "search_city_price": ("city + price range, no dates", SET_CITY + SET_PRICE, [CITY, PRICE]),
    "search_dates": ("dates only", SET_DATES + SET_GUESTS, [GUESTS, NIGHTS, FREE]),
}

for name, (what, sets, conditions) in SHAPES.items():
    sql = (
        "SELECT " + columns("properties", PROPERTY_COLUMNS) +
        ' FROM "properties" WHERE "properties"."deleted_at" IS NULL AND ' +
        " AND ".join(conditions) +
        ' ORDER BY "properties"."price_per_night" ASC, "properties"."id" ASC LIMIT 20;'
    )
    (HERE / f"{name}.sql").write_text(
        f"-- The raw ceiling for search.js's shape \"{what}\": the SQL Roost\n"
        "-- sends for it, parameters drawn as search.js draws them. Written by\n"
        "-- gen_search.py; run by run.sh with pgbench.\n" + sets + sql + "\n"
    )
