// The JS client library in Node against real gateway processes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ChatClient, ChatError, SeenSeqs, backoffDelay } from "../chat.js";
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
    const messages = record(ann, "message");
    const welcome = await ann.connect();
    assert.deepEqual(welcome.user, { id: "ann", name: "Ann" });
    assert.equal(ann.state, "open");

    const joined = await ann.join("r1");
    assert.equal(joined.seq, 0);
    assert.deepEqual(ann.roster("r1"), [{ id: "ann", name: "Ann" }]);
    const ack = await ann.send("r1", "first");
    assert.equal(ack.seq, 1);
    await eventually("the message", () => messages.length === 1);
    assert.equal(messages[0].text, "first");
    assert.equal((await ann.history("r1")).map((m) => m.text).join(), "first");
    assert.deepEqual(await ann.members("r1"), [{ id: "ann", name: "Ann" }]);
    assert.equal(typeof (await ann.ping()), "number");

    await rejects(ann.send("elsewhere", "x"), "not_joined");
    await rejects(ann.join("no spaces allowed"), "bad_request");
    await rejects(ann.send("r1", "x".repeat(5000)), "too_large");
    // The client still works after errors.
    assert.equal((await ann.send("r1", "second")).seq, 2);
  });

  test("frames sent before welcome wait for it and go out in order", async () => {
    const ben = client({ name: "ben" });
    const joining = ben.join("early");
    const sending = ben.send("early", "queued");
    assert.equal(ben.state, "idle");
    await ben.connect();
    assert.equal((await joining).room, "early");
    assert.equal((await sending).seq, 1);
  });

  test("a send retried with its client_id is stored once", async () => {
    const cid = client({ name: "cid" });
    await cid.connect();
    await cid.join("idem");
    const first = await cid.send("idem", "once", { clientId: "k-1" });
    const again = await cid.send("idem", "once", { clientId: "k-1" });
    assert.equal(again.seq, first.seq);
    assert.equal((await cid.history("idem")).length, 1);
  });

  test("a request without a reply times out, and the client recovers", async () => {
    const cal = client({ name: "cal" });
    await cal.connect();
    await gw.pause();
    try {
      await rejects(cal.request({ type: "ping" }, { timeoutMs: 400 }), "timeout");
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
    await fast.join("burst");
    const started = Date.now();
    const acks = await Promise.all(Array.from({ length: 45 }, (_, i) => fast.send("burst", `b${i}`)));
    assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 45 }, (_, i) => i + 1));
    // 18 go at once (a tenth under the burst of 20), the rest at 18 a second.
    assert.ok(Date.now() - started >= 1000, "paced");
  });

  test("a frame over max_frame_bytes is refused locally and the connection stays", async () => {
    const big = client({ name: "big" });
    const states = record(big, "state");
    await big.connect();
    await big.join("big");
    const error = await big.send("big", "x".repeat(70000)).catch((err) => err);
    assert.equal(error.code, "too_large");
    assert.ok(error.clientId, "the key to retry with");
    assert.equal((await big.send("big", "small")).seq, 1);
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
    assert.equal(slow.socket, null);
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
    const got = record(fay, "message");
    const states = record(fay, "state");
    const rejoined = record(fay, "rejoined");
    await fay.connect();
    await fay.join("ops");
    const gus = new ChatClient(gw2.wsUrl, { name: "gus" });
    const gusGot = record(gus, "message");
    await gus.connect();
    await gus.join("ops");
    await gus.send("ops", "m1");
    await eventually("m1", () => got.length === 1);

    await gw1.kill();
    await eventually("the client to notice", () => fay.state === "reconnecting");
    // A send while disconnected waits for the next connection.
    const queued = fay.send("ops", "from fay while away");
    for (const text of ["m2", "m3", "m4"]) await gus.send("ops", text);
    // Let several attempts fail, to see the backoff grow.
    await eventually("four failed attempts", () => states.filter((s) => s.delayMs !== undefined).length >= 5);
    gw1 = await gw1.restart();
    await eventually("the client to reconnect", () => fay.state === "open", 15000);
    assert.equal((await queued).seq, 5);
    await eventually("every missed message", () => got.length === 5);
    assert.deepEqual(got.map((m) => m.text), ["m1", "m2", "m3", "m4", "from fay while away"]);
    assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5]);
    assert.deepEqual(rejoined.map((r) => [r.room, r.recovered]), [["ops", true]]);
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
    const failed = record(kim, "rejoin_failed");
    await kim.connect();
    await kim.join("team-red");
    await rejects(kim.join("blue"), "forbidden");
    await gw.kill();
    gw = await gw.restart();
    await eventually("the room to be given up", () => failed.length === 1, 15000);
    assert.equal(failed[0].room, "team-red");
    assert.equal(failed[0].error.code, "forbidden");
    assert.equal(kim.state, "open");
    assert.ok(asked >= 2);
    assert.deepEqual([...kim.rooms.keys()], []);
    kim.close();
  });
});

test("a client with nowhere to connect keeps retrying and can be closed", async () => {
  const port = await freePort();
  const lost = new ChatClient(`ws://127.0.0.1:${port}/ws`, { name: "x", reconnectInitialMs: 20, reconnectMaxMs: 40 });
  const connecting = lost.connect();
  await eventually("a few attempts", () => lost.attempt >= 3);
  lost.close();
  await rejects(connecting, "closed");
  assert.equal(lost.state, "closed");
});

test("backoff doubles up to the cap, with jitter in its upper half", () => {
  assert.equal(backoffDelay(0, 500, 30000, () => 0), 250);
  assert.equal(backoffDelay(0, 500, 30000, () => 1), 500);
  assert.equal(backoffDelay(3, 500, 30000, () => 1), 4000);
  assert.equal(backoffDelay(20, 500, 30000, () => 0), 15000);
  assert.equal(backoffDelay(20, 500, 30000, () => 1), 30000);
});

test("seen DM seqs drop repeats and stay bounded", () => {
  const seen = new SeenSeqs(3);
  assert.deepEqual([1, 2, 2, 3, 1].map((s) => seen.add(s)), [true, true, false, true, false]);
  assert.equal(seen.add(4), true);
  assert.equal(seen.seqs.size, 3);
  assert.deepEqual([...seen.seqs].sort(), [2, 3, 4]);
});
