// k6: the HTTP stack's own ceiling on this machine with this load
// generator: GET /healthz (no database, no actor) at the same VUs as
// browse.js, so a listing read's rate can be given as a ratio to it.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/healthz.js
//
// VUS and DURATION tune it; the rate limits must be off.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL } from './lib.js';

const reads = new Counter('reads');

export const options = {
  scenarios: {
    healthz: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 16),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    'http_req_failed': ['rate<0.001'],
  },
};

export default function () {
  const res = http.get(`${BASE_URL}/healthz`, { tags: { name: 'healthz' } });
  if (check(res, { healthy: (r) => r.status === 200 })) reads.add(1);
}
