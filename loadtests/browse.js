// k6: what a guest reads while deciding: a listing's page (GET
// /properties/{id}) and its calendar (GET /properties/{id}/availability for
// the next 90 days), over a few thousand listings.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/browse.js
//
// VUS, DURATION and LISTINGS tune it; the rate limits must be off.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { API, dayFromToday, listingIds } from './lib.js';

const reads = new Counter('reads');

export const options = {
  scenarios: {
    browse: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 16),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    'http_req_duration{name:listing}': ['p(99)<5'],
    'http_req_duration{name:availability}': ['p(99)<5'],
    'http_req_duration{read:yes}': ['p(99)<5'],
    'http_req_failed{read:yes}': ['rate<0.001'],
    reads: [`rate>=${__ENV.MIN_RATE || 20000}`],
  },
  setupTimeout: '120s',
};

export function setup() {
  return {
    listings: listingIds(Number(__ENV.LISTINGS || 2000)),
    from: dayFromToday(0),
    to: dayFromToday(90),
  };
}

export default function (data) {
  const id = data.listings[Math.floor(Math.random() * data.listings.length)];
  const page = http.get(`${API}/properties/${id}`, { tags: { name: 'listing', read: 'yes' } });
  if (check(page, { 'listing read': (r) => r.status === 200 })) reads.add(1);
  const cal = http.get(`${API}/properties/${id}/availability?from=${data.from}&to=${data.to}`, {
    tags: { name: 'availability', read: 'yes' },
  });
  if (check(cal, { 'availability read': (r) => r.status === 200 })) reads.add(1);
}
