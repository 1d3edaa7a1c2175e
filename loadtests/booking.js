// k6: signed-in guests booking distinct listings and dates, as fast as the
// server takes them. Each request is a new hold (POST /bookings → 201), on a
// listing and week no other request in the run touches, so a 409 here means
// the run collided with an earlier one (or the server is wrong).
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/booking.js
//
// Needs listings (`roost seed`) and the rate limits off
// (ROOST_API_RATE_LIMIT=0 ROOST_AUTH_RATE_LIMIT=0). VUS and DURATION tune
// it; KEYED=1 sends an Idempotency-Key with each booking.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate } from 'k6/metrics';
import { API, NIGHTS, authHeaders, dayFromToday, farStartDay, guestTokens, openListingIds } from './lib.js';

const created = new Counter('bookings_created');
const conflicts = new Rate('booking_conflicts');

export const options = {
  scenarios: {
    book: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 32),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    'http_req_duration{name:book}': ['p(95)<15', 'p(99)<25'],
    'http_req_failed{name:book}': ['rate<0.001'],
    booking_conflicts: ['rate<0.001'],
    bookings_created: [`rate>=${__ENV.MIN_RATE || 4000}`],
  },
  setupTimeout: '120s',
};

export function setup() {
  return {
    tokens: guestTokens(Number(__ENV.GUESTS || 50)),
    // Many listings, so that a run's bookings are spread thin and each
    // listing gets a run of consecutive weeks.
    listings: openListingIds(Number(__ENV.LISTINGS || 10000)),
    startDay: farStartDay(),
  };
}

// KEYED=1: each request carries an Idempotency-Key of its own, as a client
// that retries safely sends (the key's claim is one more write).
const KEYED = __ENV.KEYED === '1';
const RUN = `${Date.now()}-${Math.random().toString(36).slice(2)}`;

function headers(token, n) {
  const h = authHeaders(token);
  if (KEYED) h['Idempotency-Key'] = `booking-${RUN}-${n}`;
  return h;
}

export default function (data) {
  // A number no other iteration in this run has: it picks the listing, and
  // the week on it.
  const n = exec.scenario.iterationInTest;
  const listing = data.listings[n % data.listings.length];
  const week = Math.floor(n / data.listings.length);
  const start = data.startDay + week * NIGHTS;
  const token = data.tokens[n % data.tokens.length];
  const res = http.post(
    `${API}/bookings`,
    JSON.stringify({
      property_id: listing,
      check_in: dayFromToday(start),
      check_out: dayFromToday(start + NIGHTS),
      guests: 1,
    }),
    { headers: headers(token, n), tags: { name: 'book' } },
  );
  conflicts.add(res.status === 409);
  if (check(res, { 'booked (201)': (r) => r.status === 201 })) {
    created.add(1);
  } else if (res.status !== 409) {
    console.warn(`booking: ${res.status} ${res.body}`);
  }
}
