// k6: availability searches over the seeded data set, mixing the filters a
// guest combines: city, price range, guests, dates and a bounding box. The
// five shapes below are the same five that `loadtests/sql/search_*.sql` runs
// straight against PostgreSQL, so run.sh can compare Roost with the raw SQL.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/search.js
//
// VUS and DURATION tune it; the rate limits must be off.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { API, dayFromToday } from './lib.js';

// The seeded cities (src/seed.rs) with their centres, shared with
// sql/gen_search.py: [name, latitude, longitude].
const CITIES = JSON.parse(open('./cities.json')).map((c) => [c.name, c.lat, c.lon]);

const searches = new Counter('searches');

export const options = {
  scenarios: {
    search: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 16),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    'http_req_duration{name:search}': ['p(95)<20', 'p(99)<50'],
    'http_req_failed{name:search}': ['rate<0.001'],
    searches: [`rate>=${__ENV.MIN_RATE || 2000}`],
    // Per shape, for the report (no target of their own).
    ...Object.fromEntries(
      ['city_dates', 'city_price_dates', 'bbox_dates', 'city_price', 'dates'].map((s) => [
        `http_req_duration{shape:${s}}`, ['max>=0'],
      ]),
    ),
  },
};

const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const int = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

// A stay starting within the next 90 days (where the seeded bookings are).
function stay() {
  const start = int(1, 90);
  return `check_in=${dayFromToday(start)}&check_out=${dayFromToday(start + int(2, 7))}`;
}

function bbox(lat, lon) {
  const d = 0.02 + Math.random() * 0.04;
  return `min_lat=${(lat - d).toFixed(4)}&max_lat=${(lat + d).toFixed(4)}` +
    `&min_lon=${(lon - d).toFixed(4)}&max_lon=${(lon + d).toFixed(4)}`;
}

function priceRange() {
  const min = int(40, 250) * 100;
  return `min_price=${min}&max_price=${min + int(50, 150) * 100}`;
}

// Weighted like a real search page: most searches name a place and dates.
const SHAPES = [
  // city + dates + guests
  [4, 'city_dates', (c) => `city=${encodeURIComponent(c[0])}&${stay()}&guests=${int(1, 4)}`],
  // city + price range + dates
  [2, 'city_price_dates', (c) => `city=${encodeURIComponent(c[0])}&${priceRange()}&${stay()}`],
  // map: bounding box + dates + guests
  [2, 'bbox_dates', (c) => `${bbox(c[1], c[2])}&${stay()}&guests=${int(1, 4)}`],
  // city + price range, no dates yet
  [1, 'city_price', (c) => `city=${encodeURIComponent(c[0])}&${priceRange()}`],
  // anywhere, these dates
  [1, 'dates', () => `${stay()}&guests=${int(1, 4)}`],
];
const TOTAL = SHAPES.reduce((sum, [w]) => sum + w, 0);

// A shape, drawn by weight: [its name, its query string].
export function query() {
  let r = Math.random() * TOTAL;
  const [, shape, make] = SHAPES.find(([w]) => (r -= w) < 0) || SHAPES[0];
  return [shape, make(pick(CITIES))];
}

export default function () {
  const [shape, q] = query();
  const res = http.get(`${API}/properties?${q}`, { tags: { name: 'search', shape } });
  if (check(res, { 'search answered': (r) => r.status === 200 })) searches.add(1);
}
