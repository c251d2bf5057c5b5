// The soak test's steady mix (loadtest/soak.sh runs it for DURATION_S):
//   rooms      ROOMS rooms of ROOM_SIZE members; the first member of each room
//              sends RATE events a second (messages with a client_id, edits of
//              its last message, reaction toggles), every member moves its read
//              cursor now and then;
//   dms        PAIRS pairs of users answering each other's DMs;
//   churn      CHURNERS users joining and leaving rooms every CYCLE_MS;
//   reconnect  RECONNECTORS users that connect, join a room with a replay of
//              20 events, stay 1-3 s and close, over and over.
// User ids come from fixed pools, so a steady state exists: what the cluster
// keeps per user (last seen, cursors) stops growing once every id was seen.
// Roles (which member sends, which users pair) come from the index of the VU's
// one iteration in its scenario: k6 numbers VUs (__VU) across all scenarios,
// in an order that changes from run to run.
// Any error frame or unexpected close fails the run.
import { WebSocket } from 'k6/experimental/websockets';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { connectUrl, int } from './lib.js';

const errors = new Counter('error_frames');
const closes = new Counter('unexpected_closes');
const deliveries = new Counter('deliveries');
const dmRoundTrips = new Counter('dm_round_trips');
const reconnects = new Counter('reconnects');
const e2e = new Trend('e2e_latency_ms', true);
const joinTime = new Trend('join_ms', true);

const DURATION_S = int('DURATION_S', 120);
const ROOMS = int('ROOMS', 5);
const ROOM_SIZE = int('ROOM_SIZE', 20);
const RATE = int('RATE', 10);
const PAIRS = int('PAIRS', 10);
const CHURNERS = int('CHURNERS', 20);
const CYCLE_MS = int('CYCLE_MS', 1000);
const RECONNECTORS = int('RECONNECTORS', 10);
const EMOJI = ['👍', '❤️', '😂', '🎉'];
const LONG = `${DURATION_S + 30}s`;

export const options = {
  scenarios: {
    rooms: { executor: 'per-vu-iterations', vus: ROOMS * ROOM_SIZE, iterations: 1, exec: 'member', maxDuration: LONG },
    dms: { executor: 'per-vu-iterations', vus: PAIRS * 2, iterations: 1, exec: 'dm', maxDuration: LONG },
    churn: { executor: 'per-vu-iterations', vus: CHURNERS, iterations: 1, exec: 'churn', maxDuration: LONG },
    reconnect: { executor: 'constant-vus', vus: RECONNECTORS, duration: `${DURATION_S}s`, exec: 'reconnect' },
  },
  thresholds: {
    error_frames: ['count<1'],
    unexpected_closes: ['count<1'],
    deliveries: ['count>0'],
    dm_round_trips: ['count>0'],
    reconnects: ['count>0'],
    checks: ['rate>0.999'],
  },
};

/** Counts error frames by code and closes the client did not ask for. */
function watch(ws, state) {
  ws.addEventListener('close', () => {
    if (!state.closing) closes.add(1);
  });
  return (frame) => {
    if (frame.type === 'error') errors.add(1, { code: frame.code, re: String(frame.re) });
  };
}

export function member() {
  const vu = exec.scenario.iterationInTest;
  const room = `soak-${vu % ROOMS}`;
  const sender = vu < ROOMS;
  const ws = new WebSocket(connectUrl(`soak-member-${vu}`, vu));
  const state = { closing: false };
  const onFrame = watch(ws, state);
  let lastSeq = 0;
  let seen = 0;
  let n = 0;
  const held = new Set();
  const timers = [];
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'join', id: 'j', room, limit: 0 })));
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    onFrame(frame);
    if (frame.type === 'joined') {
      if (sender) {
        timers.push(
          setInterval(() => {
            const roll = Math.random() * 100;
            if (lastSeq && roll < 15) {
              ws.send(JSON.stringify({ type: 'edit', id: n++, room, target: lastSeq, text: `e:${Date.now()}` }));
            } else if (lastSeq && roll < 35) {
              const emoji = EMOJI[n % EMOJI.length];
              const op = held.has(emoji) ? 'remove' : 'add';
              if (op === 'add') held.add(emoji);
              else held.delete(emoji);
              ws.send(JSON.stringify({ type: 'react', id: n++, room, target: lastSeq, emoji, op }));
            } else {
              const id = `m${n++}`;
              ws.send(JSON.stringify({ type: 'send', id, client_id: `${vu}-${id}-${__ITER}`, room, text: `t:${Date.now()}` }));
            }
          }, 1000 / RATE),
        );
      }
      // Everyone reads: the cursor moves to the newest seq seen, every 5 s.
      timers.push(
        setInterval(() => {
          if (seen) ws.send(JSON.stringify({ type: 'read', room, seq: seen }));
        }, 5000),
      );
    } else if (frame.type === 'message') {
      seen = Math.max(seen, frame.seq);
      if (frame.text.startsWith('t:')) {
        e2e.add(Date.now() - parseInt(frame.text.slice(2), 10));
        deliveries.add(1);
      }
    } else if (frame.type === 'ack' && typeof frame.re === 'string' && frame.re.startsWith('m')) {
      lastSeq = frame.seq;
      held.clear();
    }
  });
  setTimeout(() => {
    timers.forEach(clearInterval);
    setTimeout(() => {
      state.closing = true;
      ws.close();
    }, 2000);
  }, DURATION_S * 1000);
}

export function dm() {
  const vu = exec.scenario.iterationInTest;
  const pair = Math.floor(vu / 2);
  const me = `soak-dm-${pair}-${vu % 2}`;
  const peer = `soak-dm-${pair}-${1 - (vu % 2)}`;
  const ws = new WebSocket(connectUrl(me, vu));
  const state = { closing: false };
  const onFrame = watch(ws, state);
  let interval;
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    onFrame(frame);
    if (frame.type === 'welcome' && vu % 2 === 0) {
      setTimeout(() => {
        interval = setInterval(() => ws.send(JSON.stringify({ type: 'dm', to: peer, text: `ping:${Date.now()}` })), 1000);
      }, 2000);
    } else if (frame.type === 'dm' && frame.from.id === peer) {
      if (frame.text.startsWith('ping:')) {
        ws.send(JSON.stringify({ type: 'dm', to: peer, text: `pong:${frame.text.slice(5)}` }));
      } else if (frame.text.startsWith('pong:')) {
        dmRoundTrips.add(1);
      }
    }
  });
  setTimeout(() => {
    if (interval) clearInterval(interval);
    setTimeout(() => {
      state.closing = true;
      ws.close();
    }, 2000);
  }, DURATION_S * 1000);
}

export function churn() {
  const ws = new WebSocket(connectUrl(`soak-churner-${__VU}`));
  const state = { closing: false };
  const onFrame = watch(ws, state);
  let n = 0;
  let stop = false;
  const next = () => {
    if (stop) {
      state.closing = true;
      ws.close();
      return;
    }
    ws.send(JSON.stringify({ type: n % 2 === 0 ? 'join' : 'leave', id: n, room: `soak-churn-${(n >> 1) % ROOMS}`, limit: 0 }));
  };
  ws.addEventListener('open', next);
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    onFrame(frame);
    if (frame.type === 'joined' || frame.type === 'left') {
      check(frame, { 'answered in order': (f) => f.re === n });
      n += 1;
      setTimeout(next, CYCLE_MS / 2);
    }
  });
  setTimeout(() => {
    stop = true;
  }, DURATION_S * 1000);
}

export function reconnect() {
  // A fixed pool of users: the same RECONNECTORS ids come back again and again.
  const ws = new WebSocket(connectUrl(`soak-reconnector-${__VU}`));
  const state = { closing: false };
  const onFrame = watch(ws, state);
  const room = `soak-${__ITER % ROOMS}`;
  let sentAt = 0;
  ws.addEventListener('open', () => {
    sentAt = Date.now();
    ws.send(JSON.stringify({ type: 'join', id: 'j', room, limit: 20 }));
  });
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data);
    onFrame(frame);
    if (frame.type === 'joined') {
      joinTime.add(Date.now() - sentAt);
      check(frame, { 'joined its room': (f) => f.room === room });
      reconnects.add(1);
      setTimeout(() => {
        state.closing = true;
        ws.close();
      }, 1000 + Math.random() * 2000);
    }
  });
  sleep(0);
}
