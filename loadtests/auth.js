// k6: the account paths every session starts with, measured apart because
// their costs differ by orders of magnitude:
//   read_profile — authenticated reads (token check + one query), 20 VUs for 15 s;
//   sign_in      — register + login, bound by argon2id (deliberately ~tens of ms of CPU each).
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/auth.js
//
// Start Roost with ROOST_AUTH_RATE_LIMIT=0 ROOST_API_RATE_LIMIT=0, or the
// rate limits (doing their job) will answer most of these with 429.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const PASSWORD = 'k6-password-123';

export const options = {
  scenarios: {
    read_profile: {
      executor: 'constant-vus',
      exec: 'readProfile',
      vus: 20,
      duration: '15s',
    },
    sign_in: {
      executor: 'per-vu-iterations',
      exec: 'signIn',
      vus: 10,
      iterations: 5,
      startTime: '16s',
      maxDuration: '1m',
    },
  },
  thresholds: {
    'http_req_failed': ['rate<0.01'],
    'checks': ['rate>0.99'],
    'http_req_duration{name:me}': ['p(95)<25', 'p(99)<50'],
    // 10 concurrent argon2id hashes on 2 cores queue behind each other.
    'http_req_duration{name:login}': ['p(95)<1500'],
  },
};

function signUpAndIn(email) {
  const reg = http.post(
    `${BASE_URL}/api/v1/auth/register`,
    JSON.stringify({ email, password: PASSWORD, name: 'Load Tester' }),
    { headers: JSON_HEADERS, tags: { name: 'register' } },
  );
  check(reg, { 'registered': (r) => r.status === 201 });
  const login = http.post(
    `${BASE_URL}/api/v1/auth/login`,
    JSON.stringify({ email, password: PASSWORD }),
    { headers: JSON_HEADERS, tags: { name: 'login' } },
  );
  check(login, { 'signed in': (r) => r.status === 200 });
  return login.json('token');
}

// One signed-in user per reading VU, made before the clock starts.
export function setup() {
  const run = Date.now();
  const tokens = [];
  for (let i = 0; i < 20; i++) {
    tokens.push(signUpAndIn(`k6-reader-${run}-${i}@example.com`));
  }
  return { tokens };
}

export function readProfile(data) {
  const token = data.tokens[(exec.vu.idInTest - 1) % data.tokens.length];
  const me = http.get(`${BASE_URL}/api/v1/users/me`, {
    headers: { Authorization: `Bearer ${token}` },
    tags: { name: 'me' },
  });
  check(me, { 'profile read': (r) => r.status === 200 });
}

export function signIn() {
  signUpAndIn(`k6-${exec.vu.idInTest}-${exec.vu.iterationInScenario}-${Date.now()}@example.com`);
}
