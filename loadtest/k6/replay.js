// Join with replay: a room holds HISTORY messages (published in setup through
// the operator API); VUs join it again and again with `limit` = LIMIT and the
// time to `joined` (history read and delivered) is a Trend.
import http from 'k6/http';
import { WebSocket } from 'k6/experimental/websockets';
import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import { ADMIN_KEY, ADMIN_URL, connectUrl, int } from './lib.js';

const joinReplay = new Trend('join_replay_ms', true);
const errors = new Counter('error_frames');
const joins = new Counter('joins');

const HISTORY = int('HISTORY', 200);
const LIMIT = int('LIMIT', 100);
const VUS = int('VUS', 20);
const DURATION_S = int('DURATION_S', 30);
const ROOM = __ENV.ROOM || 'replay-room';

export const options = {
  scenarios: {
    joiners: { executor: 'constant-vus', vus: VUS, duration: `${DURATION_S}s` },
  },
  thresholds: {
    join_replay_ms: ['p(95)<300'],
    joins: ['count>0'],
    checks: ['rate>0.99'],
    error_frames: ['count<1'],
  },
};

export function setup() {
  const headers = { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' };
  const requests = [];
  for (let i = 0; i < HISTORY; i++) {
    requests.push(['POST', `${ADMIN_URL}/v1/rooms/${ROOM}/messages`, JSON.stringify({ text: `history ${i}` }), { headers }]);
  }
  for (let i = 0; i < requests.length; i += 50) {
    const replies = http.batch(requests.slice(i, i + 50));
    replies.forEach((r) => check(r, { 'published': (res) => res.status === 200 }));
  }
}

export default function () {
  const ws = new WebSocket(connectUrl(`joiner-${__VU}-${__ITER}`));
  let sentAt = 0;
  ws.addEventListener('open', () => {
    sentAt = Date.now();
    ws.send(JSON.stringify({ type: 'join', id: 1, room: ROOM, limit: LIMIT }));
  });
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'joined') {
      joinReplay.add(Date.now() - sentAt);
      joins.add(1);
      check(frame, { 'replayed the limit': (f) => f.history.length === Math.min(LIMIT, f.seq) });
      ws.close();
    } else if (frame.type === 'error') {
      errors.add(1, { code: frame.code });
      ws.close();
    }
  });
}
