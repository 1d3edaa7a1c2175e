// k6: hundreds of guests racing for the same listing and the same dates.
// In each round every VU asks for one listing's week at the same instant;
// exactly one may win (201), every other must be told 409 — never a 500,
// never two winners. After the rounds, teardown reads each raced listing's
// availability and checks the week is taken exactly once.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/contention.js
//
// VUS (default 500) and ROUNDS (default 5) tune it; needs listings and the
// rate limits off, as booking.js does.
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { API, NIGHTS, authHeaders, dayFromToday, farStartDay, guestTokens, openListingIds } from './lib.js';

const VUS = Number(__ENV.VUS || 500);
const ROUNDS = Number(__ENV.ROUNDS || 5);
// Each round starts on a wall-clock beat, so the VUs fire together.
const BEAT_MS = Number(__ENV.BEAT_MS || 2000);

const wins = new Counter('contention_wins');
const losses = new Counter('contention_losses');
const wrong = new Counter('contention_wrong_answers');
const doubleBooked = new Counter('contention_double_booked');

export const options = {
  scenarios: {
    race: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: ROUNDS,
      maxDuration: '2m',
    },
  },
  thresholds: {
    // One winner per round: no more, no fewer.
    contention_wins: [`count==${ROUNDS}`],
    contention_losses: [`count==${VUS * ROUNDS - ROUNDS}`],
    contention_wrong_answers: ['count==0'],
    contention_double_booked: ['count==0'],
    'http_req_duration{name:race}': ['p(99)<50'],
  },
  setupTimeout: '120s',
};

export function setup() {
  // Skip the newest listings, which booking.js may have used in this run.
  const listings = openListingIds(10000 + ROUNDS).slice(-ROUNDS);
  return {
    tokens: guestTokens(Number(__ENV.GUESTS || 20)),
    listings,
    startDay: farStartDay(),
    // The first beat: after every VU has started.
    firstBeat: Date.now() + 3000,
  };
}

export default function (data) {
  const round = exec.vu.iterationInScenario;
  const beat = data.firstBeat + round * BEAT_MS;
  const wait = beat - Date.now();
  if (wait > 0) sleep(wait / 1000);
  const token = data.tokens[exec.vu.idInTest % data.tokens.length];
  const res = http.post(
    `${API}/bookings`,
    JSON.stringify({
      property_id: data.listings[round],
      check_in: dayFromToday(data.startDay),
      check_out: dayFromToday(data.startDay + NIGHTS),
      guests: 1,
    }),
    {
      headers: authHeaders(token),
      tags: { name: 'race' },
      responseCallback: http.expectedStatuses(201, 409),
    },
  );
  if (res.status === 201) {
    wins.add(1);
  } else if (res.status === 409 && res.json('error.code') === 'dates_unavailable') {
    losses.add(1);
  } else {
    wrong.add(1);
    console.warn(`race: ${res.status} ${res.body}`);
  }
}

// The database's view, through the API: each raced week is taken once.
export function teardown(data) {
  for (const listing of data.listings) {
    const res = http.get(
      `${API}/properties/${listing}/availability?from=${dayFromToday(data.startDay)}&to=${dayFromToday(data.startDay + NIGHTS)}`,
      { tags: { name: 'verify' } },
    );
    const taken = res.status === 200 ? res.json('unavailable') : null;
    const once = check(res, {
      'raced week is taken exactly once': () =>
        taken !== null && taken.length === 1 && taken[0].kind === 'held',
    });
    if (!once) {
      doubleBooked.add(1);
      console.error(`listing ${listing}: ${res.status} ${res.body}`);
    }
  }
}
