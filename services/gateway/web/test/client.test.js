// The JS client library in Node against real gateway processes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ChatClient, ChatError } from "../chat.js";
import { eventually, freePort, mintToken, startGateway, startRedis } from "./harness.js";

/** Collects a client's events of one type. */
function record(client, type) {
  const events = [];
  client.on(type, (event) => events.push(event));
  return events;
}

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ChatError, `a ChatError, not ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe("one gateway on the embedded engine", () => {
  let gw;
  const clients = [];
  const client = (options) => {
    const c = new ChatClient(gw.wsUrl, options);
    clients.push(c);
    return c;
  };
  before(async () => {
    gw = await startGateway({ nodeId: "solo", env: { CHAT_GATEWAY__ADMIN__API_KEY: "admin-key" } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await gw?.stop();
  });

  test("requests resolve with their replies and reject with the server's error code", async () => {
    const ann = client({ name: "Ann", user: "ann" });
    const welcome = await ann.connect();
    assert.deepEqual(welcome.user, { id: "ann", name: "Ann" });
    assert.equal(ann.state, "open");

    const r1 = ann.room("r1");
    assert.equal(ann.room("r1"), r1, "one object per room");
    const messages = record(r1, "event");
    const joined = await r1.join();
    assert.equal(joined.seq, 0);
    assert.equal(r1.state, "joined");
    assert.deepEqual(r1.roster, [{ id: "ann", name: "Ann" }]);
    const ack = await r1.send("first");
    assert.equal(ack.seq, 1);
    await eventually("the message", () => messages.length === 1);
    assert.equal(messages[0].text, "first");
    assert.equal((await r1.history()).map((m) => m.text).join(), "first");
    assert.deepEqual(await r1.fetchMembers(), [{ id: "ann", name: "Ann" }]);
    assert.equal(typeof (await ann.ping()), "number");

    await rejects(ann.room("elsewhere").send("x"), "not_joined");
    await rejects(ann.room("no spaces allowed").join(), "bad_request");
    await rejects(r1.send("x".repeat(5000)), "too_large");
    // The client still works after errors.
    assert.equal((await r1.send("second")).seq, 2);
  });

  test("frames sent before welcome wait for it and go out in order", async () => {
    const ben = client({ name: "ben" });
    const early = ben.room("early");
    const joining = early.join();
    const sending = early.send("queued");
    assert.equal(ben.state, "idle");
    await ben.connect();
    assert.equal((await joining).room, "early");
    assert.equal((await sending).seq, 1);
  });

  test("a send retried with its client_id is stored once", async () => {
    const cid = client({ name: "cid" });
    await cid.connect();
    const idem = cid.room("idem");
    await idem.join();
    const first = await idem.send("once", { clientId: "k-1" });
    const again = await idem.send("once", { clientId: "k-1" });
    assert.equal(again.seq, first.seq);
    assert.equal((await idem.history()).length, 1);
  });

  test("a request without a reply times out, and the client recovers", async () => {
    const cal = client({ name: "cal", requestTimeoutMs: 400 });
    await cal.connect();
    await gw.pause();
    try {
      await rejects(cal.ping(), "timeout");
    } finally {
      gw.resume();
    }
    assert.equal(typeof (await cal.ping()), "number");
  });

  test("an operator's disconnect (1008) is final: no reconnect", async () => {
    const dan = client({ name: "dan", user: "dan", reconnectInitialMs: 50 });
    const states = record(dan, "state");
    await dan.connect();
    const response = await fetch(`${gw.httpUrl}/v1/users/dan/sessions`, {
      method: "DELETE",
      headers: { authorization: "Bearer admin-key" },
    });
    assert.equal(response.status, 200);
    await eventually("the client to close", () => dan.state === "closed");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(dan.state, "closed");
    assert.equal(states.at(-1).code, 1008);
    await rejects(dan.ping(), "closed");
  });

  test("a burst over the rate limit is paced below it, not refused", async () => {
    const fast = client({ name: "fast" });
    await fast.connect();
    assert.equal(fast.welcome.limits.messages_per_second, 20);
    const burst = fast.room("burst");
    await burst.join();
    const started = Date.now();
    const acks = await Promise.all(Array.from({ length: 45 }, (_, i) => burst.send(`b${i}`)));
    assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 45 }, (_, i) => i + 1));
    // 18 go at once (a tenth under the burst of 20), the rest at 18 a second.
    assert.ok(Date.now() - started >= 1000, "paced");
  });

  test("a frame over max_frame_bytes is refused locally and the connection stays", async () => {
    const big = client({ name: "big" });
    const states = record(big, "state");
    await big.connect();
    const room = big.room("big");
    await room.join();
    const error = await room.send("x".repeat(70000)).catch((err) => err);
    assert.equal(error.code, "too_large");
    assert.ok(error.clientId, "the key to retry with");
    assert.equal((await room.send("small")).seq, 1);
    assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  });

  test("close() while a token is being fetched stays closed", async () => {
    let release;
    const slow = client({ getToken: () => new Promise((resolve) => (release = resolve)) });
    const connecting = slow.connect();
    await eventually("getToken to be called", () => release);
    slow.close();
    release("too-late");
    await rejects(connecting, "closed");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(slow.state, "closed");
    assert.equal(slow.connection.socket, null);
  });

  test("a full request queue refuses more", async () => {
    const eve = client({ name: "eve", maxPendingRequests: 2 });
    const first = eve.ping();
    const second = eve.ping();
    await rejects(eve.ping(), "queue_full");
    await eve.connect();
    await first;
    await second;
  });
});

describe("two gateways on one Redis", () => {
  let redis, gw1, gw2;
  before(async () => {
    redis = await startRedis();
    gw1 = await startGateway({ redisUrl: redis.url, nodeId: "gw-1" });
    gw2 = await startGateway({ redisUrl: redis.url, nodeId: "gw-2" });
  });
  after(async () => {
    await gw1?.stop();
    await gw2?.stop();
    await redis?.stop();
  });

  test("after its gateway dies the client backs off, rejoins with since and gets what it missed once", async () => {
    const fay = new ChatClient(gw1.wsUrl, { name: "fay", reconnectInitialMs: 100, reconnectMaxMs: 800 });
    const ops = fay.room("ops");
    const got = record(ops, "event");
    const resets = record(ops, "reset");
    const states = record(fay, "state");
    await fay.connect();
    await ops.join();
    const gus = new ChatClient(gw2.wsUrl, { name: "gus" });
    const gusOps = gus.room("ops");
    const gusGot = record(gusOps, "event");
    await gus.connect();
    await gusOps.join();
    await gusOps.send("m1");
    await eventually("m1", () => got.length === 1);

    await gw1.kill();
    await eventually("the client to notice", () => fay.state === "reconnecting");
    assert.equal(ops.state, "rejoining");
    // A send while disconnected waits for the next connection.
    const queued = ops.send("from fay while away");
    for (const text of ["m2", "m3", "m4"]) await gusOps.send(text);
    // Let several attempts fail, to see the backoff grow.
    await eventually("four failed attempts", () => states.filter((s) => s.delayMs !== undefined).length >= 5);
    gw1 = await gw1.restart();
    await eventually("the client to reconnect", () => fay.state === "open", 15000);
    assert.equal((await queued).seq, 5);
    await eventually("every missed message", () => got.length === 5);
    assert.deepEqual(got.map((m) => m.text), ["m1", "m2", "m3", "m4", "from fay while away"]);
    assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5]);
    assert.equal(resets.length, 1, "resumed, not started over");
    assert.equal(ops.state, "joined");
    await eventually("gus to see fay's message", () => gusGot.length === 5);
    assert.equal(gusGot.filter((m) => m.text === "from fay while away").length, 1);

    // Delays: each within [base/2, base] of an exponential base capped at 800 ms.
    const delays = states.filter((s) => s.delayMs !== undefined).map((s) => s.delayMs);
    delays.forEach((delay, attempt) => {
      const base = Math.min(800, 100 * 2 ** attempt);
      assert.ok(delay >= base / 2 && delay <= base, `attempt ${attempt}: ${delay} ms outside [${base / 2}, ${base}]`);
    });
    fay.close();
    gus.close();
  });

  test("a DM to an offline user arrives after their next welcome, once", async () => {
    const hal = new ChatClient(gw1.wsUrl, { name: "hal", user: "hal" });
    await hal.connect();
    const ack = await hal.dm("ivy", "while you were out");
    assert.equal(ack.delivered, false);
    const ivy = new ChatClient(gw2.wsUrl, { name: "ivy", user: "ivy" });
    const dms = record(ivy, "dm");
    await ivy.connect();
    await eventually("the queued DM", () => dms.length === 1);
    assert.equal(dms[0].text, "while you were out");
    assert.equal(dms[0].from.id, "hal");
    const live = await hal.dm("ivy", "now live");
    assert.equal(live.delivered, true);
    await eventually("the live DM", () => dms.length === 2);
    assert.deepEqual(dms.map((d) => d.seq), [1, 2]);
    hal.close();
    ivy.close();
  });
  test("DMs sent while the recipient's tab was reconnecting are caught up, in order, once", async () => {
    const jo = new ChatClient(gw1.wsUrl, { name: "jo", user: "jo" });
    const kai = new ChatClient(gw2.wsUrl, { name: "kai", user: "kai", reconnectInitialMs: 100, reconnectMaxMs: 400 });
    // kai's phone stays online on gw1: the DMs reach a session of kai, so
    // nothing is queued for kai's next one; only catch-up brings them.
    const phone = new ChatClient(gw1.wsUrl, { name: "kai", user: "kai" });
    const got = record(kai, "dm");
    await Promise.all([jo.connect(), kai.connect(), phone.connect()]);
    await jo.dm("kai", "before");
    await eventually("the first DM", () => got.length === 1);
    await gw2.kill();
    await eventually("kai's tab to notice", () => kai.state === "reconnecting");
    for (const text of ["while away 1", "while away 2", "while away 3"]) {
      assert.equal((await jo.dm("kai", text)).delivered, true, "the phone got it");
    }
    gw2 = await gw2.restart();
    await eventually("kai's tab to catch up", () => got.length === 4, 15000);
    await jo.dm("kai", "after");
    await eventually("the live one", () => got.length === 5);
    assert.deepEqual(got.map((d) => d.text), ["before", "while away 1", "while away 2", "while away 3", "after"]);
    assert.deepEqual(got.map((d) => d.seq), [1, 2, 3, 4, 5]);
    for (const c of [jo, kai, phone]) c.close();
  });
});

describe("a gateway in jwt mode", () => {
  const secret = "client-test-secret";
  let gw;
  before(async () => {
    gw = await startGateway({ nodeId: "jwt", env: { CHAT_AUTH__MODE: "jwt", CHAT_AUTH__HS256_SECRET: secret } });
  });
  after(() => gw?.stop());

  test("getToken is asked before every attempt; a room the new token forbids is dropped", async () => {
    const tokens = [
      mintToken(secret, "kim", "Kim", ["team-*"]),
      mintToken(secret, "kim", "Kim", ["other"]),
    ];
    let asked = 0;
    const kim = new ChatClient(gw.wsUrl, { getToken: () => tokens[Math.min(asked++, 1)], reconnectInitialMs: 50 });
    const red = kim.room("team-red");
    const redStates = record(red, "state");
    await kim.connect();
    await red.join();
    await rejects(kim.room("blue").join(), "forbidden");
    assert.equal(kim.room("blue").state, "failed");
    await gw.kill();
    gw = await gw.restart();
    await eventually("the room to be given up", () => red.state === "failed", 15000);
    assert.equal(redStates.at(-1).error.code, "forbidden");
    assert.equal(kim.state, "open");
    assert.ok(asked >= 2);
    kim.close();
  });
});

test("a client with nowhere to connect keeps retrying and can be closed", async () => {
  const port = await freePort();
  const lost = new ChatClient(`ws://127.0.0.1:${port}/ws`, { name: "x", reconnectInitialMs: 20, reconnectMaxMs: 40 });
  const connecting = lost.connect();
  await eventually("a few attempts", () => lost.connection.attempt >= 3);
  lost.close();
  await rejects(connecting, "closed");
  assert.equal(lost.state, "closed");
});
