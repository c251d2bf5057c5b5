// Room fan-out: senders publish into rooms, every member receives; the
// end-to-end latency is the sender's timestamp (in the text) to each receipt.
//   ROOMS rooms of ROOM_SIZE members each; RATE events per second per room.
//   EDIT_PCT and REACT_PCT: the share of those events that are edits of the
//   sender's last message and reactions to it (toggling one of a few emoji),
//   the rest are messages; edits carry the timestamp too.
import { WebSocket } from 'k6/experimental/websockets';
import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import { connectUrl, int } from './lib.js';

const e2e = new Trend('e2e_latency_ms', true);
const delivered = new Counter('deliveries');
const acked = new Counter('acks');
const errors = new Counter('error_frames');
const edits = new Counter('edit_deliveries');
const reactions = new Counter('reaction_deliveries');
const editE2e = new Trend('edit_e2e_latency_ms', true);

const ROOMS = int('ROOMS', 5);
const ROOM_SIZE = int('ROOM_SIZE', 20);
const RATE = int('RATE', 5);
const DURATION_S = int('DURATION_S', 30);
const EDIT_PCT = int('EDIT_PCT', 0);
const REACT_PCT = int('REACT_PCT', 0);
const EMOJI = ['👍', '❤️', '😂', '🎉'];

export const options = {
  scenarios: {
    members: {
      executor: 'per-vu-iterations',
      vus: ROOMS * ROOM_SIZE,
      iterations: 1,
      maxDuration: `${DURATION_S + 30}s`,
    },
  },
  thresholds: {
    e2e_latency_ms: ['p(99)<250'],
    deliveries: ['count>0'],
    error_frames: ['count<1'],
    checks: ['rate>0.99'],
    ...(EDIT_PCT > 0 ? { edit_deliveries: ['count>0'], edit_e2e_latency_ms: ['p(99)<250'] } : {}),
    ...(REACT_PCT > 0 ? { reaction_deliveries: ['count>0'] } : {}),
  },
};

export default function () {
  const vu = __VU - 1;
  const room = `fanout-${vu % ROOMS}`;
  // The first member of each room also sends.
  const sender = vu < ROOMS;
  const ws = new WebSocket(connectUrl(`fan-${vu}`));
  let interval;
  let lastSeq = 0;
  const held = new Set();
  ws.addEventListener('open', () => {
    ws.send(JSON.stringify({ type: 'join', id: 'j', room, limit: 0 }));
  });
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'joined') {
      check(frame, { joined: (f) => f.room === room });
      // Start sending once everyone had a moment to join.
      if (sender) {
        setTimeout(() => {
          let n = 0;
          interval = setInterval(() => {
            const roll = Math.random() * 100;
            if (lastSeq && roll < EDIT_PCT) {
              ws.send(JSON.stringify({ type: 'edit', id: n++, room, target: lastSeq, text: `t:${Date.now()}` }));
            } else if (lastSeq && roll < EDIT_PCT + REACT_PCT) {
              const emoji = EMOJI[n % EMOJI.length];
              const op = held.has(emoji) ? 'remove' : 'add';
              if (op === 'add') held.add(emoji);
              else held.delete(emoji);
              ws.send(JSON.stringify({ type: 'react', id: n++, room, target: lastSeq, emoji, op }));
            } else {
              ws.send(JSON.stringify({ type: 'send', id: `m${n++}`, room, text: `t:${Date.now()}` }));
            }
          }, 1000 / RATE);
        }, 3000);
      }
      setTimeout(() => {
        if (interval) clearInterval(interval);
        // Let the last messages arrive, then leave.
        setTimeout(() => ws.close(), 2000);
      }, (DURATION_S + 3) * 1000);
    } else if (frame.type === 'message' && frame.text.startsWith('t:')) {
      e2e.add(Date.now() - parseInt(frame.text.slice(2), 10));
      delivered.add(1);
    } else if (frame.type === 'edit' && frame.text && frame.text.startsWith('t:')) {
      editE2e.add(Date.now() - parseInt(frame.text.slice(2), 10));
      edits.add(1);
    } else if (frame.type === 'reaction') {
      reactions.add(1);
    } else if (frame.type === 'ack') {
      acked.add(1);
      // A message's ack (its id starts with m): the target of later edits and reactions.
      if (typeof frame.re === 'string' && frame.re.startsWith('m')) {
        lastSeq = frame.seq;
        held.clear();
      }
    } else if (frame.type === 'error') {
      errors.add(1, { code: frame.code });
    }
  });
}
