// The connection's state machine on a fake clock and a fake WebSocket: no
// real time passes and no socket opens; each test plays the server.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { TRANSITIONS, backoffDelay } from "../chat.js";
import { DIAGNOSE_TIMEOUT_MS } from "../chat/connection.js";
import { FakeClock, ME, settle, setup, track, welcome } from "./fakes.js";

describe("the connection's state machine", () => {
  test("the table of moves: closed is final, nothing leaves it", () => {
    assert.deepEqual(TRANSITIONS.closed, []);
    for (const [from, to] of Object.entries(TRANSITIONS)) {
      if (from !== "closed") assert.ok(to.includes("closed"), `${from} can close`);
      assert.ok(!to.includes("idle"), "nothing goes back to idle");
    }
  });

  test("a client closed from its own state handler while reconnecting never connects again", async () => {
    const { client, clock, Socket, states, accept } = setup();
    // What the page did on a failed sign-in: close the client from the
    // `state` event that reports the failure.
    client.on("state", ({ state }) => state === "reconnecting" && client.close());
    const connecting = track(client.connect());
    await settle();
    Socket.last.drop(1006);
    await settle();
    assert.equal(client.state, "closed");
    assert.equal(connecting.error?.code, "closed");
    assert.equal(clock.armed, 0, "no timer armed after close()");
    await clock.advance(120_000);
    assert.equal(Socket.all.length, 1, "no socket after close()");
    assert.equal(clock.armed, 0, "no timer left behind");
    assert.deepEqual(states.map((s) => s.state), ["connecting", "reconnecting", "closed"]);
    // Nothing brings it back, and requests fail at once.
    await assert.rejects(client.connect(), (err) => err.code === "closed");
    await assert.rejects(client.ping(), (err) => err.code === "closed");
    void accept;
  });

  test("close() while connecting or waiting to reconnect leaves no socket and no timer", async () => {
    const { client, clock, Socket } = setup();
    track(client.connect());
    await settle();
    client.close();
    assert.ok(Socket.last.closed, "the socket closed");
    Socket.last.drop(1006); // its late close event
    await clock.advance(60_000);
    assert.equal(Socket.all.length, 1);
    assert.equal(client.state, "closed");
  });

  test("a 1008 close is final; a 1001 reconnects at once-ish and resumes", async () => {
    const { client, clock, Socket, accept, states } = setup({ reconnectInitialMs: 500 });
    track(client.connect());
    let socket = await accept();
    socket.drop(1001, "draining");
    await clock.advance(500);
    assert.equal(Socket.all.length, 2, "reconnected within the first backoff");
    socket = await accept();
    socket.drop(1008, "disconnected by an operator");
    await clock.advance(600_000);
    assert.equal(Socket.all.length, 2);
    assert.equal(client.state, "closed");
    assert.equal(states.at(-1).code, 1008);
  });

  test("a 4008 keeps the backoff growing however long the connection lasted", async () => {
    const { client, clock, accept, states } = setup({ reconnectInitialMs: 1000, reconnectMaxMs: 60_000 });
    track(client.connect());
    for (let i = 0; i < 4; i++) {
      const socket = await accept();
      await clock.advance(10_000); // stable by the 5 s rule
      socket.drop(4008, "slow consumer");
      await settle();
      const { delayMs } = states.at(-1);
      await clock.advance(delayMs);
    }
    const delays = states.filter((s) => s.state === "reconnecting").map((s) => s.delayMs);
    delays.forEach((delay, attempt) => {
      const base = 1000 * 2 ** attempt;
      assert.ok(delay >= base / 2 && delay <= base, `attempt ${attempt}: ${delay} ms not in [${base / 2}, ${base}]`);
    });
    // A stable connection ended by a plain network loss starts over.
    const socket = await accept();
    await clock.advance(10_000);
    socket.drop(1006);
    await settle();
    assert.ok(states.at(-1).delayMs <= 1000);
  });

  test("`online` and a page becoming visible cut the wait short", async () => {
    const { client, clock, Socket, win, doc, states } = setup({ reconnectInitialMs: 1000, reconnectMaxMs: 30_000 });
    track(client.connect());
    for (let i = 0; i < 6; i++) {
      await settle();
      Socket.last.drop(1006);
      await clock.advance(states.at(-1).delayMs);
    }
    await settle();
    Socket.last.drop(1006);
    await settle();
    assert.ok(states.at(-1).delayMs >= 15_000, "a long wait by now");
    const before = Socket.all.length;
    win.fire("online");
    await settle();
    assert.equal(Socket.all.length, before + 1, "tried at once");
    Socket.last.drop(1006);
    await settle();
    assert.ok(states.at(-1).delayMs <= 1000, "and the backoff started over");
    doc.visibilityState = "visible";
    doc.fire("visibilitychange");
    await settle();
    assert.equal(Socket.all.length, before + 2);
  });

  test("a silent socket is found dead by a ping within two heartbeats, sooner when the page wakes", async () => {
    const { client, clock, Socket, accept, doc } = setup();
    track(client.connect());
    const socket = await accept(welcome({ user: ME, heartbeatMs: 10_000 }));
    await clock.advance(10_000);
    assert.equal(socket.sentOf("ping").length, 1, "probed after a quiet heartbeat");
    socket.deliver({ type: "pong", ts: 1 });
    await clock.advance(10_000);
    assert.equal(client.state, "open", "a reply keeps it open");
    // Asleep: the network died silently. Waking probes at once.
    doc.fire("visibilitychange");
    const pings = socket.sentOf("ping").length;
    assert.equal(pings, 2);
    await clock.advance(10_000);
    assert.equal(client.state, "reconnecting");
    assert.ok(socket.closed);
    assert.equal(Socket.all.length, 1);
  });
});

/** A JWT-shaped token with this `exp` (unsigned: the fake server does not check). */
function tokenExpiringAt(expSeconds) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  return `${part({ alg: "HS256" })}.${part({ sub: "u1", exp: expSeconds })}.sig`;
}

describe("asking the server why an attempt was refused", () => {
  /** A fetch that answers every URL with `status` and the gateway's JSON error `code`. */
  const answering = (status, code, asked = []) => async (url) => {
    asked.push(url);
    return new Response(JSON.stringify({ error: { code, message: `${code} here` } }), { status });
  };

  test("a refused token closes the client with the server's reason; no attempt follows", async () => {
    const asked = [];
    const { client, clock, Socket, states } = setup({ fetch: answering(401, "unauthorized", asked), token: "t0k" });
    const connecting = track(client.connect());
    await settle();
    Socket.last.drop(1006);
    await settle();
    assert.equal(client.state, "closed");
    assert.equal(states.at(-1).error?.code, "unauthorized");
    assert.equal(connecting.error?.code, "unauthorized");
    assert.deepEqual(asked, ["http://chat.test/ws?token=t0k&name=Ann"], "the same URL, over HTTP");
    await clock.advance(600_000);
    assert.equal(Socket.all.length, 1);
  });

  test("a connection limit or an outage keeps retrying, and the state says why", async () => {
    for (const [status, code] of [[429, "too_many_connections"], [503, "unavailable"]]) {
      const { client, Socket, states } = setup({ fetch: answering(status, code) });
      track(client.connect());
      await settle();
      Socket.last.drop(1006);
      await settle();
      assert.equal(client.state, "reconnecting");
      assert.equal(states.at(-1).refusal?.code, code);
      assert.equal(states.at(-1).refusal?.status, status);
      client.close();
    }
  });

  test("a server that does not answer the question holds the client at most DIAGNOSE_TIMEOUT_MS", async () => {
    const hanging = () => new Promise(() => {});
    const { client, clock, Socket, states } = setup({ fetch: hanging });
    track(client.connect());
    await settle();
    Socket.last.drop(1006);
    await settle();
    assert.equal(client.state, "connecting", "still asking");
    await clock.advance(DIAGNOSE_TIMEOUT_MS);
    assert.equal(client.state, "reconnecting");
    assert.equal(states.at(-1).refusal, undefined);
    client.close();
  });

  test("an attempt that got no welcome in time is not asked about", async () => {
    const asked = [];
    const { client, clock, Socket, states } = setup({ fetch: answering(503, "unavailable", asked), requestTimeoutMs: 1000 });
    track(client.connect());
    await settle();
    assert.ok(Socket.last && !Socket.last.closed);
    await clock.advance(1000); // the welcome timeout
    await settle();
    assert.equal(client.state, "reconnecting");
    assert.equal(states.at(-1).refusal, undefined);
    assert.deepEqual(asked, []);
    client.close();
  });

  test("426 (nothing would refuse it now) and an unreachable server retry as before", async () => {
    const unreachable = async () => {
      throw new TypeError("fetch failed");
    };
    for (const [fetch, refusal] of [[answering(426, "upgrade_required"), undefined], [unreachable, "unavailable"]]) {
      const { client, Socket, states } = setup({ fetch });
      track(client.connect());
      await settle();
      Socket.last.drop(1006);
      await settle();
      assert.equal(client.state, "reconnecting");
      assert.equal(states.at(-1).refusal?.code, refusal);
      client.close();
    }
  });
});

describe("an expiring token", () => {
  test("after a failed attempt with a token past its exp, the client closes with token_expired", async () => {
    const clock = new FakeClock();
    const { client, Socket, accept, states } = setup({ clock, token: tokenExpiringAt(clock.now() / 1000 + 60) });
    track(client.connect());
    const socket = await accept(welcome({ user: ME, heartbeatMs: 600_000 }));
    await clock.advance(120_000); // the token expires mid-session: nothing happens while connected
    assert.equal(client.state, "open");
    socket.drop(1001, "draining");
    await settle();
    // The next attempt is refused (a browser sees 1006).
    await clock.advance(1000);
    Socket.last.drop(1006);
    await settle();
    assert.equal(client.state, "closed");
    assert.equal(states.at(-1).error?.code, "token_expired");
    await clock.advance(600_000);
    assert.equal(Socket.all.length, 2);
  });

  test("a token still valid keeps the client retrying", async () => {
    const clock = new FakeClock();
    const { client, Socket, states } = setup({ clock, token: tokenExpiringAt(clock.now() / 1000 + 3600) });
    track(client.connect());
    for (let i = 0; i < 3; i++) {
      await settle();
      Socket.last.drop(1006);
      await clock.advance(states.at(-1).delayMs);
    }
    assert.equal(client.state, "connecting");
  });
});

test("backoff doubles up to the cap, with jitter in its upper half", () => {
  assert.equal(backoffDelay(0, 500, 30000, () => 0), 250);
  assert.equal(backoffDelay(0, 500, 30000, () => 1), 500);
  assert.equal(backoffDelay(3, 500, 30000, () => 1), 4000);
  assert.equal(backoffDelay(20, 500, 30000, () => 0), 15000);
  assert.equal(backoffDelay(20, 500, 30000, () => 1), 30000);
});
