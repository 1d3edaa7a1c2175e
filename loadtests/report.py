#!/usr/bin/env python3
"""Prints run.sh's results as one Markdown table.

    python3 loadtests/report.py target/loadtests/<run>

Reads the k6 summaries (<backend>-<scenario>.json), their exit codes (a
threshold missed makes k6 exit 99), the server's CPU time in each
(<backend>-<scenario>.cpu.json), pgbench's output (postgres-raw-*.txt),
the seed times, the websocket memory samples, and the lapsed-hold backlog's
runs (<backend>-booking-backlog.json, -search-backlog.json, -booking-sweep.json
and -sweep.json), each set beside the same run's figures without a backlog.
"""
import json
import re
import sys
from pathlib import Path


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def metric(summary, name):
    return (summary or {}).get("metrics", {}).get(name) or {}


def ms(trend, stat):
    value = trend.get(stat)
    return "–" if value is None else f"{value:.1f}"


def pgbench_tps(path):
    try:
        text = path.read_text()
    except OSError:
        return None
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    return float(found.group(1)) if found else None


def cpu_per_read(out, backend, name, summary):
    """The server's CPU time per counted read in a scenario, in µs."""
    cpu = load(out / f"{backend}-{name}.cpu.json")
    reads = metric(summary, "reads").get("count")
    if not cpu or not reads:
        return "–"
    return f"{1e6 * cpu['ticks'] / cpu['hz'] / reads:.0f}"


def verdict(out, backend, name):
    try:
        code = (out / f"{backend}-{name}.exit").read_text().strip()
    except OSError:
        return "not run"
    return "met" if code == "0" else "missed" if code == "99" else f"k6 exit {code}"


def main(out):
    rows = []

    def row(scenario, backend, rate, trend, errors, raw=None, note=""):
        ratio = f"{rate / raw:.2f}" if rate and raw else "–"
        rows.append([
            scenario, backend,
            "–" if rate is None else f"{rate:,.0f}",
            ms(trend, "med"), ms(trend, "p(95)"), ms(trend, "p(99)"),
            errors,
            "–" if raw is None else f"{raw:,.0f}",
            ratio, note,
        ])

    def error_rate(failed):
        return "–" if "value" not in failed else f"{100 * failed['value']:.2f}%"

    for backend in ("postgres", "sqlite"):
        raw_book = pgbench_tps(out / f"{backend}-raw-booking.txt")
        raw_search = pgbench_tps(out / f"{backend}-raw-search.txt")
        raw_hold = pgbench_tps(out / f"{backend}-raw-hold.txt")

        s = load(out / f"{backend}-booking.json")
        if s:
            conflicts = metric(s, "booking_conflicts").get("value", 0)
            rate = metric(s, "bookings_created").get("rate")
            own = (f"; Roost's own hold SQL raw {raw_hold:,.0f}/s, Roost {rate / raw_hold:.2f} × it"
                   if raw_hold and rate else "")
            row("booking (distinct listings)", backend, rate,
                metric(s, "http_req_duration{name:book}"),
                error_rate(metric(s, "http_req_failed{name:book}")),
                raw_book,
                f"{100 * conflicts:.2f}% conflicts{own}; thresholds {verdict(out, backend, 'booking')}")

        s = load(out / f"{backend}-contention.json")
        if s:
            wins = metric(s, "contention_wins").get("count", 0)
            losses = metric(s, "contention_losses").get("count", 0)
            wrong = metric(s, "contention_wrong_answers").get("count", 0)
            doubled = metric(s, "contention_double_booked").get("count", 0)
            row("contention (500 VUs, one week)", backend, None,
                metric(s, "http_req_duration{name:race}"),
                f"{wrong:.0f} wrong",
                note=f"{wins:.0f} winners / {wins + losses + wrong:.0f} requests, "
                     f"{doubled:.0f} double-booked; thresholds {verdict(out, backend, 'contention')}")

        r = load(out / f"{backend}-race-rust.json")
        if r:
            rounds = r["rounds"]
            row("contention (500 racers, one week), Rust client", backend, None,
                {"med": r["p50_ms"], "p(95)": r["p95_ms"], "p(99)": r["p99_ms"]},
                f"{sum(x['wrong'] for x in rounds)} wrong",
                note=f"{sum(x['wins'] for x in rounds)} winners / {r['requests']} requests; "
                     f"target one winner a round and p99 ≤ 50 ms: "
                     f"{'met' if r['one_winner_each_round'] and r['p99_ms'] <= 50 else 'missed'}")

        s = load(out / f"{backend}-search.json")
        if s:
            row("search", backend,
                metric(s, "searches").get("rate"),
                metric(s, "http_req_duration{name:search}"),
                error_rate(metric(s, "http_req_failed{name:search}")),
                raw_search,
                f"thresholds {verdict(out, backend, 'search')}")

        s = load(out / f"{backend}-search-database.json")
        if s:
            memory = metric(load(out / f"{backend}-search.json"), "searches").get("rate")
            rate = metric(s, "searches").get("rate")
            row("search, ROOST_SEARCH_FROM=database", backend, rate,
                metric(s, "http_req_duration{name:search}"),
                error_rate(metric(s, "http_req_failed{name:search}")),
                raw_search,
                f"from memory: {memory / rate:.2f} × this" if memory and rate else "")

        idx = load(out / f"{backend}-search-index.json")
        if idx:
            extra = (idx["rss_with_kb"] - idx["rss_without_kb"]) / 1024
            row("search index in memory", backend, None, {}, "–",
                note=f"{idx['listings']} listings, {idx['claims']} claims: server RSS "
                     f"{idx['rss_without_kb'] / 1024:.0f} → {idx['rss_with_kb'] / 1024:.0f} MB "
                     f"(+{extra:.0f} MB)")

        s = load(out / f"{backend}-browse.json")
        if s:
            healthz = load(out / f"{backend}-healthz.json")
            row("listing detail + availability", backend,
                metric(s, "reads").get("rate"),
                metric(s, "http_req_duration{read:yes}"),
                error_rate(metric(s, "http_req_failed{read:yes}")),
                metric(healthz, "reads").get("rate"),
                note=f"raw: GET /healthz (its p99 {ms(metric(healthz, 'http_req_duration'), 'p(99)')} ms); "
                     f"detail p99 {ms(metric(s, 'http_req_duration{name:listing}'), 'p(99)')} ms, "
                     f"availability p99 {ms(metric(s, 'http_req_duration{name:availability}'), 'p(99)')} ms; "
                     f"server CPU per read {cpu_per_read(out, backend, 'browse', s)} µs, "
                     f"per /healthz {cpu_per_read(out, backend, 'healthz', healthz)} µs; "
                     f"thresholds {verdict(out, backend, 'browse')}")

        steps = load(out / f"{backend}-mixed-steps.json")
        if steps:
            held = next((s for s in steps["steps"] if s["rate"] == steps["highest"]), {})
            row("mixed traffic: highest arrival rate with p99 ≤ 50 ms", backend,
                steps["highest"] or None,
                {"p(95)": held.get("p95"), "p(99)": held.get("p99")},
                f"{100 * held['failed']:.2f}%" if held else "–",
                note="steps (actions/s: p99 ms) " + ", ".join(
                    f"{s['rate']}: {s['p99']:.0f}" for s in steps["steps"]))

        s = load(out / f"{backend}-live.json")
        if s:
            bad = sum(metric(s, m).get("count", 0)
                      for m in ("live_gaps", "live_missed", "live_socket_errors"))
            row("live: booking → event, 1,000 subscribers", backend,
                metric(s, "live_events").get("rate"),
                metric(s, "live_event_latency"),
                f"{bad:.0f} lost/gaps",
                note=f"rate = events delivered/s; {metric(s, 'live_bookings').get('count', 0):.0f} bookings; "
                     f"thresholds {verdict(out, backend, 'live')}")

        r = load(out / f"{backend}-live-rust.json")
        echo = load(out / f"{backend}-live-echo.json")
        if r:
            t = r["ms_from_201"]
            ceiling = ""
            if echo and echo["ms_from_request"]["p99"]:
                e = echo["ms_from_request"]["p99"]
                ceiling = (f"; the same client against a bare echo of the frames: p99 {e:.1f} ms, "
                           f"so Roost from the request ÷ echo = {r['ms_from_request']['p99'] / e:.2f} ×")
            row("live: booking → event, 1,000 subscribers, Rust client", backend,
                r["events"] / r["book_for_s"] if r.get("events") else None,
                {"med": t["p50"], "p(95)": t["p95"], "p(99)": t["p99"]},
                f"{r['lost'] + r['gaps'] + r['seqs_behind_at_end']} lost/gaps",
                note=f"rate = events delivered/s; {r['bookings']} bookings; from the request sent: "
                     f"p50 {r['ms_from_request']['p50']:.1f}, p99 {r['ms_from_request']['p99']:.1f} ms; "
                     f"target p99 ≤ 50 ms from the 201: {'met' if t['p99'] <= 50 else 'missed'}{ceiling}")

        base_book = metric(load(out / f"{backend}-booking.json"), "bookings_created").get("rate")
        base_search = metric(load(out / f"{backend}-search.json"), "searches").get("rate")

        def beside(rate, base):
            if not rate or not base:
                return "–"
            return f"{rate / base:.2f} × the rate without them ({base:,.0f}/s)"

        sweep = load(out / f"{backend}-sweep.json")
        backlog = (load(out / f"{backend}-backlog.json") or {}).get("holds")
        present = f"{backlog:,} lapsed holds present" if backlog else "lapsed holds present"
        holds = f"{sweep['holds']:,}" if sweep else "the"
        for label, scenario, counter, name, base in (
                ("booking", "booking-backlog", "bookings_created", "book", base_book),
                ("search", "search-backlog", "searches", "search", base_search)):
            s = load(out / f"{backend}-{scenario}.json")
            if s:
                rate = metric(s, counter).get("rate")
                row(f"{label}, {present} (sweeper off)", backend, rate,
                    metric(s, f"http_req_duration{{name:{name}}}"),
                    error_rate(metric(s, f"http_req_failed{{name:{name}}}")),
                    note=f"{beside(rate, base)}; thresholds {verdict(out, backend, scenario)}")
        if sweep:
            seconds = sweep["seconds"]
            during = sweep["bookings_meanwhile"] / seconds if seconds else None
            left = f"; {sweep['left']:,} LEFT" if sweep["left"] else ""
            row(f"sweeping {holds} lapsed holds, booking.js running", backend,
                sweep["holds"] / seconds if seconds else None, {}, "–",
                note=f"all swept in {seconds} s{left} ({sweep['by_sweeper']:,.0f} by the sweeper node, "
                     f"{max(0, sweep['holds'] - sweep['by_sweeper']):,.0f} by bookings on their "
                     f"listings); rate = holds/s; bookings meanwhile "
                     f"{during or 0:,.0f}/s = {beside(during, base_book)}")
        s = load(out / f"{backend}-booking-sweep.json")
        if s:
            rate = metric(s, "bookings_created").get("rate")
            row("booking while the sweeper runs (whole k6 run)", backend, rate,
                metric(s, "http_req_duration{name:book}"),
                error_rate(metric(s, "http_req_failed{name:book}")),
                note=f"{beside(rate, base_book)}; the sweep took {sweep['seconds'] if sweep else '?'} s of it; "
                     f"thresholds {verdict(out, backend, 'booking-sweep')}")

        mem = load(out / f"{backend}-sockets-rss.json")
        s = load(out / f"{backend}-sockets.json")
        if mem and s:
            opened = metric(s, "sockets_subscribed").get("count", 0)
            extra = (mem["rss_peak_kb"] - mem["rss_before_kb"]) / 1024
            row(f"{opened:,.0f} open websockets", backend, None, {}, "–",
                note=f"server memory +{extra:.0f} MB (RSS {mem['rss_before_kb'] / 1024:.0f} → "
                     f"{mem['rss_peak_kb'] / 1024:.0f} MB); thresholds {verdict(out, backend, 'sockets')}")

        seed = load(out / f"{backend}-seed.json")
        if seed:
            try:
                summary = (out / f"{backend}-seed.txt").read_text().strip().splitlines()[-1]
            except (OSError, IndexError):
                summary = ""
            row("roost seed", backend, None, {}, "–", note=f"{seed['seconds']} s: {summary}")

    header = ["scenario", "backend", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
              "raw ceiling /s", "Roost ÷ raw", "notes"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
