// Presence churn: users join and leave rooms in storms while watchers count
// the presence events; join and leave latencies as Trends.
//   WATCHERS per room watch ROOMS rooms; CHURNERS VUs join/leave every CYCLE_MS.
import { WebSocket } from 'k6/experimental/websockets';
import { check } from 'k6';
import exec from 'k6/execution';
import { Trend, Counter } from 'k6/metrics';
import { connectUrl, int } from './lib.js';

const joinTime = new Trend('join_ms', true);
const leaveTime = new Trend('leave_ms', true);
const presenceEvents = new Counter('presence_events');
const errors = new Counter('error_frames');

const ROOMS = int('ROOMS', 5);
const CHURNERS = int('CHURNERS', 50);
const CYCLE_MS = int('CYCLE_MS', 500);
const DURATION_S = int('DURATION_S', 30);

export const options = {
  scenarios: {
    watchers: { executor: 'per-vu-iterations', vus: ROOMS, iterations: 1, exec: 'watch', maxDuration: `${DURATION_S + 30}s` },
    churners: {
      executor: 'per-vu-iterations',
      vus: CHURNERS,
      iterations: 1,
      exec: 'churn',
      startTime: '2s',
      maxDuration: `${DURATION_S + 30}s`,
    },
  },
  thresholds: {
    join_ms: ['p(95)<300', 'max>0'],
    leave_ms: ['p(95)<300'],
    presence_events: ['count>0'],
    error_frames: ['count<1'],
  },
};

export function watch() {
  // One watcher per room: the index of this VU's one iteration in the
  // scenario (__VU counts across scenarios, in no fixed order).
  const room = `churn-${exec.scenario.iterationInTest % ROOMS}`;
  const ws = new WebSocket(connectUrl(`watcher-${__VU}`));
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'join', room, limit: 0 })));
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'presence') presenceEvents.add(1, { state: frame.state });
    if (frame.type === 'error') errors.add(1, { code: frame.code });
  });
  setTimeout(() => ws.close(), (DURATION_S + 6) * 1000);
}

export function churn() {
  const ws = new WebSocket(connectUrl(`churner-${__VU}`));
  let sentAt = 0;
  let n = 0;
  let stop = false;
  const next = () => {
    if (stop) return ws.close();
    const room = `churn-${n % ROOMS}`;
    sentAt = Date.now();
    ws.send(JSON.stringify({ type: n % 2 === 0 ? 'join' : 'leave', id: n, room, limit: 0 }));
  };
  ws.addEventListener('open', next);
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'joined' || frame.type === 'left') {
      (frame.type === 'joined' ? joinTime : leaveTime).add(Date.now() - sentAt);
      check(frame, { 'answered in order': (f) => f.re === n });
      n += 1;
      setTimeout(next, frame.type === 'left' ? CYCLE_MS : CYCLE_MS / 2);
    } else if (frame.type === 'error') {
      errors.add(1, { code: frame.code });
    }
  });
  setTimeout(() => {
    stop = true;
  }, DURATION_S * 1000);
}
