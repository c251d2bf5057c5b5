// DM round trips: PAIRS pairs of users on different connections (and, with
// several URLs, different gateways); each side answers the other's DM, and
// the time from sending to receiving the answer is a Trend.
import { WebSocket } from 'k6/experimental/websockets';
import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import { connectUrl, int } from './lib.js';

const rtt = new Trend('dm_rtt_ms', true);
const roundTrips = new Counter('dm_round_trips');
const errors = new Counter('error_frames');

const PAIRS = int('PAIRS', 20);
const DURATION_S = int('DURATION_S', 30);
const RATE = int('RATE', 2); // round trips per second per pair

export const options = {
  scenarios: {
    pairs: { executor: 'per-vu-iterations', vus: PAIRS * 2, iterations: 1, maxDuration: `${DURATION_S + 30}s` },
  },
  thresholds: {
    dm_rtt_ms: ['p(99)<250'],
    dm_round_trips: ['count>0'],
    error_frames: ['count<1'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const vu = __VU - 1;
  const pair = Math.floor(vu / 2);
  const me = `dm-${pair}-${vu % 2}`;
  const peer = `dm-${pair}-${1 - (vu % 2)}`;
  const initiator = vu % 2 === 0;
  const ws = new WebSocket(connectUrl(me, vu));
  let interval;
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'welcome' && initiator) {
      // Give the peer a moment to connect, then ping it RATE times a second.
      setTimeout(() => {
        interval = setInterval(() => {
          ws.send(JSON.stringify({ type: 'dm', to: peer, text: `ping:${Date.now()}` }));
        }, 1000 / RATE);
      }, 2000);
    } else if (frame.type === 'dm' && frame.from.id === peer) {
      if (frame.text.startsWith('ping:')) {
        ws.send(JSON.stringify({ type: 'dm', to: peer, text: `pong:${frame.text.slice(5)}` }));
      } else if (frame.text.startsWith('pong:')) {
        rtt.add(Date.now() - parseInt(frame.text.slice(5), 10));
        roundTrips.add(1);
      }
    } else if (frame.type === 'ack') {
      check(frame, { 'dm stored': (f) => f.seq > 0 });
    } else if (frame.type === 'error') {
      errors.add(1, { code: frame.code });
    }
  });
  setTimeout(() => {
    if (interval) clearInterval(interval);
    setTimeout(() => ws.close(), 2000);
  }, (DURATION_S + 2) * 1000);
}
