// A fake clock and a fake WebSocket, for unit tests of the library that run
// no real time and open no socket: the test plays the server.

import assert from "node:assert/strict";

import { ChatClient } from "../chat.js";

/** Time that moves only when the test says so. */
export class FakeClock {
  constructor() {
    this.time = 1_000_000;
    this.nextHandle = 1;
    /** @type {Map<number, {at: number, fn: () => void}>} */
    this.timers = new Map();
  }

  now() {
    return this.time;
  }

  setTimeout(fn, ms) {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.time + Math.max(0, ms), fn });
    return handle;
  }

  clearTimeout(handle) {
    this.timers.delete(handle);
  }

  /** Timers due within `ms`, run in time order, with promise jobs settled between them. */
  async advance(ms) {
    const end = this.time + ms;
    await settle();
    for (;;) {
      let next = null;
      for (const [handle, timer] of this.timers) {
        if (timer.at <= end && (!next || timer.at < next[1].at)) next = [handle, timer];
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = Math.max(this.time, next[1].at);
      next[1].fn();
      await settle();
    }
    this.time = end;
  }

  /** How many timers are armed. */
  get armed() {
    return this.timers.size;
  }
}

/** Lets pending promise jobs (and the jobs they queue) run. */
export async function settle() {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/**
 * A WebSocket class whose sockets the test drives. `FakeSocket.all` lists
 * every socket made; `last` is the newest.
 */
export function fakeWebSocket() {
  class FakeSocket {
    static all = [];
    static get last() {
      return FakeSocket.all.at(-1);
    }

    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = null;
      this.onmessage = this.onclose = this.onerror = null;
      FakeSocket.all.push(this);
    }

    send(data) {
      if (this.closed) throw new Error("closed");
      this.sent.push(JSON.parse(data));
    }

    close(code, reason) {
      this.closed ??= { code, reason };
    }

    /** The server sends `frame`. */
    deliver(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }

    /** The server (or the network) ends the socket. */
    drop(code = 1006, reason = "") {
      this.closed ??= { code, reason };
      this.onclose?.({ code, reason });
    }

    /** Frames sent of `type`. */
    sentOf(type) {
      return this.sent.filter((frame) => frame.type === type);
    }
  }
  return FakeSocket;
}

/** A `welcome` frame. */
export function welcome({ user = { id: "u1", name: "Ann" }, node = "gw-1", heartbeatMs = 25000, limits = {} } = {}) {
  return {
    type: "welcome",
    session: `s-${node}`,
    user,
    node,
    heartbeat_ms: heartbeatMs,
    limits: { messages_per_second: 1000, max_frame_bytes: 65536, ...limits },
  };
}

/** An EventTarget standing for the browser's `window` or `document`. */
export class FakeTarget extends EventTarget {
  constructor() {
    super();
    this.visibilityState = "visible";
  }

  fire(type) {
    this.dispatchEvent(new Event(type));
  }
}

// ---- a client on the fakes, and frames to play its server with ----

export const ME = { id: "u1", name: "Ann" };
export const BOB = { id: "bob", name: "Bob" };

/** A client on fakes, and the means to play its server. */
export function setup(options = {}) {
  const clock = options.clock ?? new FakeClock();
  const Socket = fakeWebSocket();
  const win = new FakeTarget();
  const doc = new FakeTarget();
  const client = new ChatClient("ws://chat.test/ws", {
    WebSocket: Socket,
    clock,
    window: win,
    document: doc,
    name: "Ann",
    fetch: null,
    ...options,
  });
  const states = [];
  client.on("state", (event) => states.push(event));
  /** Lets the client make its socket, and welcomes it. */
  const accept = async (frame = welcome({ user: ME })) => {
    await settle();
    // Waiting out a backoff, if the client is between attempts.
    for (let waited = 0; (!Socket.last || Socket.last.closed) && waited < 60_000; waited += 100) await clock.advance(100);
    const socket = Socket.last;
    assert.ok(socket && !socket.closed, "a socket to welcome");
    socket.deliver(frame);
    await settle();
    return socket;
  };
  return { client, clock, Socket, win, doc, states, accept };
}

/** Records a promise's outcome without an unhandled rejection. */
export function track(promise) {
  const outcome = { done: false, value: undefined, error: undefined };
  promise.then(
    (value) => Object.assign(outcome, { done: true, value }),
    (error) => Object.assign(outcome, { done: true, error }),
  );
  return outcome;
}

/** Replies to the newest request of `type` on `socket`. */
export function reply(socket, type, frame) {
  const request = socket.sentOf(type).at(-1);
  assert.ok(request, `a ${type} request`);
  socket.deliver({ ...frame, re: request.id });
  return request;
}

export function joined(room, { seq = 0, epoch = "e1", history = [], recovered = true, members = [ME] } = {}) {
  return { type: "joined", room, seq, epoch, history, recovered, members };
}

export function message(room, seq, text = `m${seq}`) {
  return { type: "message", room, seq, text, from: BOB, ts: seq, client_id: `c${seq}` };
}
