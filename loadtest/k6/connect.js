// Connection ramp: how long connect + welcome takes as connections pile up.
//   k6 run loadtest/k6/connect.js            (VUS, HOLD_S, RAMP_S to size it)
import { WebSocket } from 'k6/experimental/websockets';
import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import { connectUrl, userId, int } from './lib.js';

const welcomeTime = new Trend('welcome_ms', true);
const failures = new Counter('connect_failures');
const welcomes = new Counter('welcomes');

const VUS = int('VUS', 200);
const RAMP_S = int('RAMP_S', 30);
const HOLD_S = int('HOLD_S', 20);

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: `${RAMP_S}s`, target: VUS },
        { duration: `${HOLD_S}s`, target: VUS },
        { duration: '5s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
  },
  thresholds: {
    welcome_ms: ['p(95)<500', 'p(99)<1000'],
    checks: ['rate>0.99'],
    connect_failures: ['count<1'],
    welcomes: ['count>0'],
  },
};

export default function () {
  const started = Date.now();
  const ws = new WebSocket(connectUrl(userId('conn')));
  let welcomed = false;
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'welcome' && !welcomed) {
      welcomed = true;
      welcomeTime.add(Date.now() - started);
      welcomes.add(1);
      check(frame, { 'welcome has a session': (f) => typeof f.session === 'string' });
      // Hold the connection idle for a while, as a real client would.
      setTimeout(() => ws.close(), HOLD_S * 1000);
    }
  });
  ws.addEventListener('error', (e) => {
    failures.add(1, { why: 'error' });
    console.warn(`connect error after ${Date.now() - started} ms: ${e.error || e.type}`);
  });
  const timer = setTimeout(() => {
    if (!welcomed) {
      failures.add(1, { why: 'no_welcome' });
      console.warn(`no welcome within 10 s (ready state ${ws.readyState})`);
      ws.close();
    }
  }, 10000);
  // The timer is moot once welcomed: clear it, so the iteration ends with the hold.
  ws.addEventListener('close', () => clearTimeout(timer));
}
