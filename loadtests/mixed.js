// k6: the traffic of a booking site at a fixed arrival rate, stepped up
// until it no longer holds. Each iteration is one guest action, drawn by
// weight: searches (the shapes of search.js), listing pages, calendars,
// bookings (each later cancelled by the same guest, as a share of guests
// do) and "my trips". Requests arrive at the step's rate whatever the
// server's speed (constant-arrival-rate), so a slow server shows as latency
// and dropped iterations, not as a politely lower rate.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/mixed.js
//
// RATES (actions per second, one step each, default 100,200,400,800,1600),
// STEP (each step's length, default 20s). A step holds when its p99 is at
// most 50 ms, under 1 % of its requests fail and at least 99 % of its
// actions were started and finished (none dropped for want of a free VU);
// the summary names the highest step that held. Needs
// listings (`roost seed`) and the rate limits off.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { API, NIGHTS, authHeaders, dayFromToday, farStartDay, guestTokens, listingIds, openListingIds } from './lib.js';
import { query } from './search.js';

const RATES = (__ENV.RATES || '100,200,400,800,1600').split(',').map(Number);
const STEP_SECONDS = Number((__ENV.STEP || '20s').replace(/s$/, ''));
const P99_MS = 50;

// Each step is its own scenario, started when the one before ends.
const scenarios = {};
const thresholds = {};
RATES.forEach((rate, i) => {
  scenarios[`rate_${rate}`] = {
    executor: 'constant-arrival-rate',
    rate,
    timeUnit: '1s',
    duration: `${STEP_SECONDS}s`,
    startTime: `${i * STEP_SECONDS}s`,
    preAllocatedVUs: Math.min(rate, 400),
    maxVUs: Math.min(rate * 2, 1000),
    gracefulStop: '2s',
    tags: { step: String(rate) },
  };
  // Thresholds per step make k6 keep each step's own figures for the summary.
  thresholds[`http_req_duration{step:${rate}}`] = [`p(99)<=${P99_MS}`];
  thresholds[`http_req_failed{step:${rate}}`] = ['rate<0.01'];
  thresholds[`iterations{step:${rate}}`] = ['count>=0'];
  thresholds[`dropped_iterations{step:${rate}}`] = ['count>=0'];
});

export const options = {
  scenarios,
  thresholds,
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '180s',
};

export function setup() {
  return {
    tokens: guestTokens(Number(__ENV.GUESTS || 50)),
    listings: listingIds(Number(__ENV.LISTINGS || 2000)),
    open: openListingIds(Number(__ENV.OPEN_LISTINGS || 2000)),
    startDay: farStartDay(),
    from: dayFromToday(0),
    to: dayFromToday(60),
  };
}

// What guests do, by weight (of 100).
const ACTIONS = [
  [35, 'search'],
  [25, 'listing'],
  [20, 'availability'],
  [10, 'trips'],
  [10, 'book'],
];

const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

function action() {
  let r = Math.random() * 100;
  return (ACTIONS.find(([w]) => (r -= w) < 0) || ACTIONS[0])[1];
}

export default function (data) {
  const token = pick(data.tokens);
  switch (action()) {
    case 'search': {
      const [shape, q] = query();
      const res = http.get(`${API}/properties?${q}`, { tags: { name: 'search', shape } });
      check(res, { 'search 200': (r) => r.status === 200 });
      break;
    }
    case 'listing': {
      const res = http.get(`${API}/properties/${pick(data.listings)}`, { tags: { name: 'listing' } });
      check(res, { 'listing 200': (r) => r.status === 200 });
      break;
    }
    case 'availability': {
      const url = `${API}/properties/${pick(data.listings)}/availability?from=${data.from}&to=${data.to}`;
      const res = http.get(url, { tags: { name: 'availability' } });
      check(res, { 'availability 200': (r) => r.status === 200 });
      break;
    }
    case 'trips': {
      const res = http.get(`${API}/bookings?limit=20`, { headers: authHeaders(token), tags: { name: 'trips' } });
      check(res, { 'trips 200': (r) => r.status === 200 });
      break;
    }
    default: {
      // A week no other iteration of the run books: a 409 would be a
      // collision with an earlier run, not contention.
      const n = exec.scenario.iterationInTest + RATES.indexOf(Number(exec.scenario.name.slice(5))) * 1e5;
      const listing = data.open[n % data.open.length];
      const start = data.startDay + Math.floor(n / data.open.length) * NIGHTS;
      const res = http.post(
        `${API}/bookings`,
        JSON.stringify({
          property_id: listing,
          check_in: dayFromToday(start),
          check_out: dayFromToday(start + NIGHTS),
          guests: 1,
        }),
        { headers: authHeaders(token), tags: { name: 'book' } },
      );
      if (check(res, { 'booked 201': (r) => r.status === 201 }) && Math.random() < 0.3) {
        const cancel = http.post(`${API}/bookings/${res.json('id')}/cancel`, null, {
          headers: authHeaders(token),
          tags: { name: 'cancel' },
        });
        check(cancel, { 'cancelled 200': (r) => r.status === 200 });
      }
    }
  }
}

// Each step's figures, and the highest rate that held.
export function handleSummary(data) {
  const m = data.metrics;
  const rows = RATES.map((rate) => {
    const d = m[`http_req_duration{step:${rate}}`];
    const failed = m[`http_req_failed{step:${rate}}`];
    const done = m[`iterations{step:${rate}}`];
    const dropped = m[`dropped_iterations{step:${rate}}`];
    const p99 = d ? d.values['p(99)'] : NaN;
    const iterations = done ? done.values.count : 0;
    const droppedCount = dropped ? dropped.values.count : 0;
    const failRate = failed ? failed.values.rate : 1;
    // Dropped iterations are counted by the scenario, not always tagged
    // with its step: the step's own count of finished actions says too.
    const held =
      p99 <= P99_MS &&
      failRate < 0.01 &&
      droppedCount < 0.01 * rate * STEP_SECONDS &&
      iterations >= 0.99 * rate * STEP_SECONDS;
    return {
      rate,
      achieved: iterations / STEP_SECONDS,
      p95: d ? d.values['p(95)'] : NaN,
      p99,
      failed: failRate,
      dropped: droppedCount,
      held,
    };
  });
  const held = rows.filter((r) => r.held).map((r) => r.rate);
  const best = held.length ? Math.max(...held) : 0;
  const lines = ['mixed traffic: rate (actions/s) | achieved | p95 ms | p99 ms | failed | dropped | held'];
  for (const r of rows) {
    lines.push(
      `  ${r.rate} | ${r.achieved.toFixed(0)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ` +
        `${(r.failed * 100).toFixed(2)} % | ${r.dropped} | ${r.held ? 'yes' : 'no'}`,
    );
  }
  lines.push(`highest rate that held (p99 <= ${P99_MS} ms): ${best}/s`);
  const text = lines.join('\n') + '\n';
  const out = { stdout: text };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify({ steps: rows, highest: best }, null, 2);
  return out;
}
