// k6: many websocket subscribers on a set of listings while bookings happen.
// Each VU opens CONNS sockets (default 100; 10 VUs → 1,000 subscribers),
// each following all LISTINGS listings (default 20), then books a week on
// one of them every BOOK_EVERY_MS. Every booking reaches every subscriber.
//
// Measured: for each booking a VU makes, the time from its 201 to the event
// arriving on each of that VU's sockets (live_event_latency). k6 runs a VU's
// JavaScript one callback at a time, so an event that beats the 201 is timed
// when the 201 has been read (≈0 ms), never negative.
// Checked: every socket sees every listing's events in seq order with no gap
// (live_gaps), and at the end has the seq a fresh snapshot reports
// (live_missed): nothing lost, nothing out of order.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/live.js
//
// The server needs ROOST_WS_MAX_CONNECTIONS_PER_IP above CONNS × VUS, and the
// rate limits off.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { setInterval, clearInterval, setTimeout } from 'k6/timers';
import { WebSocket } from 'k6/experimental/websockets';
import { API, NIGHTS, WS_URL, authHeaders, dayFromToday, farStartDay, guestTokens, openListingIds } from './lib.js';

const VUS = Number(__ENV.VUS || 10);
const CONNS = Number(__ENV.CONNS || 100);
const LISTINGS = Number(__ENV.LISTINGS || 20);
const BOOK_EVERY_MS = Number(__ENV.BOOK_EVERY_MS || 500);
const BOOK_FOR_MS = Number(__ENV.BOOK_FOR_MS || 30000);
// Time allowed for every socket to open and get its snapshots.
const CONNECT_MS = Number(__ENV.CONNECT_MS || 15000);
const GRACE_MS = 3000;

const latency = new Trend('live_event_latency', true);
const delivered = new Counter('live_events');
const gaps = new Counter('live_gaps');
const missed = new Counter('live_missed');
const socketErrors = new Counter('live_socket_errors');
const bookings = new Counter('live_bookings');
// k6 reports a frame arriving after its own close as an error: not ours.
let closing = false;

export const options = {
  scenarios: {
    live: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1,
      maxDuration: `${Math.ceil((CONNECT_MS + BOOK_FOR_MS + 4 * GRACE_MS) / 1000) + 30}s`,
    },
  },
  thresholds: {
    live_event_latency: ['p(95)<25', 'p(99)<50'],
    live_gaps: ['count==0'],
    live_missed: ['count==0'],
    live_socket_errors: ['count==0'],
    live_bookings: ['count>0'],
    'http_req_failed{name:live_book}': ['rate<0.001'],
  },
  setupTimeout: '120s',
};

export function setup() {
  // Listings the booking and contention scenarios leave alone.
  const listings = openListingIds(10005 + LISTINGS).slice(-LISTINGS);
  const now = Date.now();
  return {
    tokens: guestTokens(VUS),
    listings,
    startDay: farStartDay(),
    bookFrom: now + CONNECT_MS,
    bookUntil: now + CONNECT_MS + BOOK_FOR_MS,
  };
}

// A socket that follows `listings`, checks each listing's seqs, and reports
// events to `onEvent`. `ready()` is called once all snapshots are in.
function follow(listings, onEvent, ready) {
  const seqs = new Map();
  const ws = new WebSocket(WS_URL);
  ws.addEventListener('open', () => {
    for (const id of listings) ws.send(JSON.stringify({ type: 'subscribe', property_id: id }));
  });
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'snapshot') {
      seqs.set(frame.property_id, frame.seq);
      if (seqs.size === listings.length) ready();
    } else if (frame.type === 'event') {
      const last = seqs.get(frame.property_id);
      if (frame.seq !== last + 1) {
        gaps.add(1);
        console.warn(`listing ${frame.property_id}: seq ${frame.seq} after ${last}`);
      }
      seqs.set(frame.property_id, frame.seq);
      delivered.add(1);
      onEvent(frame);
    } else if (frame.type === 'error') {
      socketErrors.add(1);
      console.warn(`error frame: ${e.data}`);
    }
  });
  ws.addEventListener('error', (e) => {
    if (closing) return;
    socketErrors.add(1);
    console.warn(`socket error: ${e.error}`);
  });
  return { ws, seqs };
}

export default function (data) {
  const vu = exec.vu.idInTest - 1;
  const token = data.tokens[vu];
  const sent = new Map(); // entry id → when its 201 was read
  let readyCount = 0;
  const onEvent = (frame) => {
    const at = sent.get(frame.entry_id);
    if (at !== undefined && frame.kind === 'booking_held') latency.add(Date.now() - at);
  };
  const sockets = [];
  for (let i = 0; i < CONNS; i++) {
    sockets.push(follow(data.listings, onEvent, () => readyCount++));
  }

  let n = 0;
  let ticker = null;
  const book = () => {
    if (Date.now() >= data.bookUntil) {
      clearInterval(ticker);
      return;
    }
    // Unique across VUs and iterations: a listing and week no one else books.
    const k = n++ * VUS + vu;
    const listing = data.listings[k % data.listings.length];
    const start = data.startDay + Math.floor(k / data.listings.length) * NIGHTS;
    const res = http.post(
      `${API}/bookings`,
      JSON.stringify({
        property_id: listing,
        check_in: dayFromToday(start),
        check_out: dayFromToday(start + NIGHTS),
        guests: 1,
      }),
      { headers: authHeaders(token), tags: { name: 'live_book' } },
    );
    if (check(res, { 'booked (201)': (r) => r.status === 201 })) {
      sent.set(res.json('id'), Date.now());
      bookings.add(1);
    } else {
      console.warn(`booking: ${res.status} ${res.body}`);
    }
  };
  setTimeout(() => {
    check(readyCount, { 'every socket has its snapshots': (c) => c === CONNS });
    ticker = setInterval(book, BOOK_EVERY_MS);
  }, Math.max(0, data.bookFrom - Date.now()));

  // After every VU has stopped booking and the events have settled: each
  // socket must be at the seq a fresh snapshot reports.
  setTimeout(() => {
    const truth = follow(data.listings, () => {}, () => {
      closing = true;
      for (const s of sockets) {
        for (const id of data.listings) {
          const have = s.seqs.get(id);
          if (have === undefined) missed.add(1);
          else if (have !== truth.seqs.get(id)) missed.add(Math.abs(truth.seqs.get(id) - have));
        }
        s.ws.close();
      }
      truth.ws.close();
    });
  }, Math.max(0, data.bookUntil + 2 * GRACE_MS - Date.now()));
}
