// Shared by the k6 scenarios: where Roost is, how a load tester signs in,
// which listings exist, and dates that no seeded booking touches.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
export const API = `${BASE_URL}/api/v1`;
export const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/ws';
export const JSON_HEADERS = { 'Content-Type': 'application/json' };

// `roost seed` makes guest0@demo.roost … with this password.
const SEED_PASSWORD = __ENV.SEED_PASSWORD || 'roost-demo-password';
const K6_PASSWORD = 'k6-password-123';

export function authHeaders(token) {
  return { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` };
}

function login(email, password) {
  const res = http.post(`${API}/auth/login`, JSON.stringify({ email, password }), {
    headers: JSON_HEADERS,
    tags: { name: 'login' },
  });
  return res.status === 200 ? res.json('token') : null;
}

// `count` guest tokens: the seeded guests where they exist, fresh k6 guests
// otherwise (so a script runs against any Roost). Signing in is argon2id,
// tens of ms of CPU each: call this from setup(), before the clock starts.
export function guestTokens(count) {
  const tokens = [];
  const run = Date.now();
  for (let i = 0; i < count; i++) {
    let token = login(`guest${i}@demo.roost`, SEED_PASSWORD);
    if (!token) {
      const email = `k6-guest-${run}-${i}@example.com`;
      const reg = http.post(
        `${API}/auth/register`,
        JSON.stringify({ email, password: K6_PASSWORD, name: 'k6 guest' }),
        { headers: JSON_HEADERS, tags: { name: 'register' } },
      );
      check(reg, { registered: (r) => r.status === 201 }) || fail(`register: ${reg.status} ${reg.body}`);
      token = login(email, K6_PASSWORD);
    }
    token || fail('could not sign a guest in (are the rate limits off?)');
    tokens.push(token);
  }
  return tokens;
}

// Up to `count` live listing ids, read through the public search, spread
// over the whole id range (newest first, then pages).
export function listingIds(count) {
  const ids = [];
  let cursor = null;
  while (ids.length < count) {
    const limit = Math.min(100, count - ids.length);
    const query = `sort=newest&limit=${limit}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    const res = http.get(`${API}/properties?${query}`, { tags: { name: 'setup_listings' } });
    if (res.status !== 200) fail(`listing ids: ${res.status} ${res.body}`);
    const page = res.json();
    for (const item of page.items) ids.push(item.id);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  if (ids.length === 0) fail('no listings: seed the server first (roost seed)');
  return ids;
}

// Listings whose stay rules take a week's stay on any day, however far
// ahead (no booking window, any arrival and departure day): the booking
// benchmarks book far-off weeks on them, so every refusal is a conflict.
export function openListingIds(count) {
  const ids = [];
  let cursor = null;
  while (ids.length < count) {
    const query = 'sort=newest&limit=100' + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    const res = http.get(`${API}/properties?${query}`, { tags: { name: 'setup_listings' } });
    if (res.status !== 200) fail(`listing ids: ${res.status} ${res.body}`);
    const page = res.json();
    for (const item of page.items) {
      const open = item.booking_window_days === 0 && item.check_in_days.length === 7
        && item.check_out_days.length === 7 && item.min_nights <= NIGHTS && NIGHTS <= item.max_nights;
      if (open && ids.length < count) ids.push(item.id);
    }
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  if (ids.length === 0) fail('no listings that take any stay: seed the server first (roost seed)');
  return ids;
}

// `days` after today, as YYYY-MM-DD (UTC, as Roost counts days).
export function dayFromToday(days) {
  const d = new Date(Date.now() + days * 86400000);
  return d.toISOString().slice(0, 10);
}

// A first day beyond the seeded bookings (which end within ~3 months),
// picked at random from 100 slots 200 days apart so that a rerun against the
// same database (whose holds last 15 minutes) most likely misses the last
// run's dates; or START_DAY if given.
export function farStartDay() {
  if (__ENV.START_DAY) return Number(__ENV.START_DAY);
  return 400 + Math.floor(Math.random() * 100) * 200;
}

// Seven nights: within every seeded listing's stay rules (min ≤ 7 ≤ max).
export const NIGHTS = 7;
