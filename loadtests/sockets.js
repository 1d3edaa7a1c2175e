// k6: many idle websockets, for what they cost the server. Each VU opens
// CONNS sockets (default 1,000; 10 VUs → 10,000), each following one of
// LISTINGS listings, holds them HOLD_MS, then closes them. run.sh reads the
// server's resident memory before and while they are open.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtests/sockets.js
//
// The server needs ROOST_WS_MAX_CONNECTIONS_PER_IP above VUS × CONNS, and
// both processes a file limit above it (ulimit -n).
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { setTimeout } from 'k6/timers';
import { WebSocket } from 'k6/experimental/websockets';
import { WS_URL, listingIds } from './lib.js';

const VUS = Number(__ENV.VUS || 10);
const CONNS = Number(__ENV.CONNS || 1000);
const HOLD_MS = Number(__ENV.HOLD_MS || 20000);

const open = new Counter('sockets_subscribed');
const errors = new Counter('socket_errors');

export const options = {
  scenarios: {
    hold: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '3m' },
  },
  thresholds: {
    sockets_subscribed: [`count==${VUS * CONNS}`],
    socket_errors: ['count==0'],
  },
};

export function setup() {
  return { listings: listingIds(Number(__ENV.LISTINGS || 100)) };
}

export default function (data) {
  const vu = exec.vu.idInTest - 1;
  const sockets = [];
  // k6 reports a frame arriving after its own close as an error: not ours.
  let closing = false;
  for (let i = 0; i < CONNS; i++) {
    const ws = new WebSocket(WS_URL);
    const listing = data.listings[(vu * CONNS + i) % data.listings.length];
    ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'subscribe', property_id: listing })));
    ws.addEventListener('message', (e) => {
      if (JSON.parse(e.data).type === 'snapshot') open.add(1);
    });
    ws.addEventListener('error', (e) => {
      if (closing) return;
      errors.add(1);
      console.warn(`socket error: ${e.error}`);
    });
    sockets.push(ws);
  }
  setTimeout(() => {
    check(sockets, { 'all still open': (s) => s.every((ws) => ws.readyState === 1) });
    closing = true;
    for (const ws of sockets) ws.close();
  }, HOLD_MS);
}
