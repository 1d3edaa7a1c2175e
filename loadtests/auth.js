// k6: sign-up, sign-in and profile reads, the path every session starts with.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/auth.js
//
// Start Roost with ROOST_AUTH_RATE_LIMIT=0 ROOST_API_RATE_LIMIT=0, or the
// rate limits (doing their job) will answer most of these with 429.
// Password hashing (argon2id) is deliberately expensive, so logins are far
// slower than authenticated reads; the thresholds say so.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const JSON_HEADERS = { 'Content-Type': 'application/json' };

export const options = {
  scenarios: {
    sign_in_then_read: {
      executor: 'per-vu-iterations',
      vus: 20,
      iterations: 5,
      maxDuration: '2m',
    },
  },
  thresholds: {
    'http_req_failed': ['rate<0.01'],
    'http_req_duration{name:login}': ['p(95)<500'],
    'http_req_duration{name:me}': ['p(95)<50'],
    'checks': ['rate>0.99'],
  },
};

export default function () {
  const email = `k6-${exec.vu.idInTest}-${exec.vu.iterationInScenario}-${Date.now()}@example.com`;
  const password = 'k6-password-123';

  const reg = http.post(
    `${BASE_URL}/api/v1/auth/register`,
    JSON.stringify({ email, password, name: 'Load Tester' }),
    { headers: JSON_HEADERS, tags: { name: 'register' } },
  );
  check(reg, { 'registered': (r) => r.status === 201 });

  const login = http.post(
    `${BASE_URL}/api/v1/auth/login`,
    JSON.stringify({ email, password }),
    { headers: JSON_HEADERS, tags: { name: 'login' } },
  );
  check(login, { 'signed in': (r) => r.status === 200 });
  const token = login.json('token');

  for (let i = 0; i < 20; i++) {
    const me = http.get(`${BASE_URL}/api/v1/users/me`, {
      headers: { Authorization: `Bearer ${token}` },
      tags: { name: 'me' },
    });
    check(me, { 'profile read': (r) => r.status === 200 });
  }
}
