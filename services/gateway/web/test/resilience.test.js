// The chat page in headless Chromium through what goes wrong: refused and
// expired sign-ins, outages, a Redis that lost everything, a draining
// gateway, a slow consumer's 4008, two tabs, DMs while reconnecting.
// Real gateways, Redis and haproxy; `npm test` runs it (after `cargo build -p gateway`).

import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  browserTest, eventually, mintToken, startGateway, startHaproxy, startRedis, twoGatewaysBehindHaproxy,
} from "./harness.js";
import { joinOnPage, libraryClient, say, shownTexts, signIn, waitForText, writer } from "./page.js";

/** The count of handshakes a gateway refused as unauthorized. */
async function refusedUnauthorized(gateway) {
  const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  const line = metrics.split("\n").find((l) => l.startsWith("chat_connections_refused_total") && l.includes('"unauthorized"'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** The texts of `room`'s stored history that are among `texts`. */
async function stored(room, texts) {
  return (await room.history({ limit: 100 })).map((m) => m.text).filter((t) => texts.includes(t));
}

describe("a gateway in jwt mode", () => {
  const secret = "resilience-secret";
  let gw;
  before(async () => {
    gw = await startGateway({ nodeId: "jwt", env: { CHAT_AUTH__MODE: "jwt", CHAT_AUTH__HS256_SECRET: secret } });
  });
  after(() => gw?.stop());

  browserTest("after a refused token, a good sign-in stays signed in (a minute on the page's clock)", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`, { before: (p) => p.clock.install() });
    await page.locator("#token").fill(mintToken("some-other-secret", "mallory"));
    await page.locator("#sign-in-form button[type=submit]").click();
    await eventually("the page to give up", async () => {
      await page.clock.runFor(2000);
      return (await page.locator("#sign-in-error").textContent()).includes("Could not connect");
    }, 20000);
    const refusedBefore = await refusedUnauthorized(gw);

    await page.locator("#token").fill(mintToken(secret, "erin", "Erin"));
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#status[data-state=open]").waitFor();
    for (let second = 0; second < 60; second++) {
      await page.clock.runFor(1000);
      await sleep(20); // the page's socket work runs in real time
    }
    assert.equal(await page.locator("#status").getAttribute("data-state"), "open");
    assert.equal(await page.locator("#sign-in").isVisible(), false, "still signed in");
    assert.equal(await page.locator("#me").textContent(), "Erin (erin)");
    assert.equal(await refusedUnauthorized(gw), refusedBefore, "the refused client made no attempt after giving up");
  });

  browserTest("a token that expires mid-session: the page asks to sign in again when it must reconnect", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await page.locator("#token").fill(mintToken(secret, "fay", "Fay", undefined, 3));
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#status[data-state=open]").waitFor();
    await sleep(3500);
    // Connected, the session outlives its token.
    assert.equal(await page.locator("#status").getAttribute("data-state"), "open");
    await gw.kill();
    gw = await gw.restart();
    await page.locator("#sign-in-error", { hasText: "Your session expired: sign in again." }).waitFor({ timeout: 15000 });
    assert.ok(await page.locator("#sign-in-form").isVisible());
    await page.locator("#token").fill(mintToken(secret, "fay", "Fay"));
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#status[data-state=open]").waitFor();
  });
});

describe("a gateway with one connection per user", () => {
  let gw;
  before(async () => {
    gw = await startGateway({ nodeId: "one-each", env: { CHAT_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_USER: "1" } });
  });
  after(() => gw?.stop());

  browserTest("a page over the connection limit says so, waits, and connects once a place is free", async ({ open }) => {
    const other = libraryClient(gw.wsUrl, { name: "lim", user: "lim" });
    await other.connect();
    const page = await open(`${gw.httpUrl}/`);
    // The page's anonymous user is the one it had before in this browser.
    await page.evaluate(() => {
      localStorage.setItem("chat.name", "lim");
      localStorage.setItem("chat.user", "lim");
    });
    await page.locator("#name").fill("lim");
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#status[data-refusal=too_many_connections]", { hasText: "Too many connections open" }).waitFor();
    // Past the three attempts after which a first sign-in gives up for other reasons.
    await page.locator("#status[data-refusal=too_many_connections]").waitFor();
    await sleep(4000);
    assert.ok(await page.locator("#chat").isVisible(), "still signed in, waiting");
    await page.locator("#status[data-refusal=too_many_connections]").waitFor();
    other.close();
    await page.locator("#status[data-state=open]").waitFor({ timeout: 40000 });
  });
});

describe("two gateways on one Redis, behind haproxy", () => {
  const cluster = twoGatewaysBehindHaproxy();

  /** The page's gateway, and the other one. */
  async function gateways(page) {
    const node = await page.locator("#status").getAttribute("data-node");
    return node === "gw-1" ? [cluster.gw1, cluster.gw2] : [cluster.gw2, cluster.gw1];
  }

  /** Brings a killed or drained gateway back, in place. */
  async function revive(gateway) {
    Object.assign(gateway, await gateway.restart());
  }

  browserTest("sends typed during an outage longer than the request timeout are stored once and shown once", async ({ open }) => {
    const page = await open(`${cluster.gw1.httpUrl}/`);
    await signIn(page, "olga");
    await joinOnPage(page, "outage");
    const { room: watcher } = await writer(cluster.gw2, "watcher", "outage");
    const typed = ["typed offline 1", "typed offline 2", "typed offline 3"];

    await cluster.gw1.kill();
    await page.locator("#status[data-state=reconnecting]").waitFor();
    for (const text of typed) await say(page, text);
    await eventually("three queued bubbles", async () => (await page.locator("#messages .pending[data-status=queued]").count()) === 3);
    assert.equal(await page.locator("#text").inputValue(), "", "the text left the input for its bubble");
    await sleep(11000); // past the 10 s request timeout
    assert.equal(await page.locator("#messages .pending[data-status=queued]").count(), 3, "still waiting, none failed");

    await revive(cluster.gw1);
    // What a browser fires when the network is back: no waiting out the backoff.
    await page.evaluate(() => window.dispatchEvent(new Event("online")));
    await page.locator("#status[data-state=open]").waitFor({ timeout: 15000 });
    for (const text of typed) await waitForText(page, text);
    await page.locator("#messages .pending").first().waitFor({ state: "detached" });
    assert.deepEqual(await shownTexts(page), typed, "each shown once, in order");
    assert.deepEqual(await stored(watcher, typed), typed, "each stored once");
  });

  browserTest("a draining gateway (1001): the page moves to the other one and loses nothing", async ({ open }) => {
    const page = await open(`${cluster.lb.httpUrl}/`);
    await signIn(page, "dora");
    await joinOnPage(page, "drain");
    const [draining, survivor] = await gateways(page);
    const { room: other } = await writer(survivor, "otto", "drain");
    await other.send("before the drain");
    await waitForText(page, "before the drain");

    draining.signal("SIGTERM");
    await other.send("during the drain");
    await page.locator(`#status[data-state=open][data-node=${survivor.nodeId}]`).waitFor({ timeout: 15000 });
    await say(page, "after the move");
    await other.send("after the drain");
    await waitForText(page, "after the drain");
    await waitForText(page, "after the move");
    assert.deepEqual(await shownTexts(page), ["before the drain", "during the drain", "after the move", "after the drain"]);
    assert.equal(await page.locator("#view-notice").textContent(), "", "nothing was lost");
    await revive(draining);
  });

  browserTest("two tabs of one user show each message once, their own sends included", async ({ open }) => {
    const first = await open(`${cluster.gw1.httpUrl}/`);
    await signIn(first, "tess");
    const second = await open(`${cluster.gw1.httpUrl}/`, { context: first.context() });
    await signIn(second, "tess");
    const tess = await first.locator("#members li.me").getAttribute("data-user");
    assert.equal(await second.locator("#members li.me").getAttribute("data-user"), tess, "the same user");

    await say(first, "from the first tab");
    await waitForText(second, "from the first tab");
    await say(second, "from the second tab");
    await waitForText(first, "from the second tab");
    for (const page of [first, second]) {
      await waitForText(page, "from the second tab");
      assert.deepEqual(await shownTexts(page), ["from the first tab", "from the second tab"]);
    }

    // A DM reaches both tabs; a reply from one shows in the other.
    const uma = libraryClient(cluster.gw1.wsUrl, { name: "Uma", user: "uma" });
    await uma.connect();
    await uma.dm(tess, "hello tess");
    for (const page of [first, second]) {
      await page.locator("#dms li", { hasText: "Uma" }).locator(".unread", { hasText: "1 unread" }).waitFor();
    }
    await second.locator("#dms li", { hasText: "Uma" }).click();
    await say(second, "hi uma");
    await first.locator("#dms li", { hasText: "Uma" }).click();
    await waitForText(first, "hi uma");
    assert.deepEqual(await shownTexts(first), ["hello tess", "hi uma"]);
  });
});

describe("one gateway on a Redis that restarts without persistence", () => {
  let redis, gw;
  before(async () => {
    redis = await startRedis();
    gw = await startGateway({ redisUrl: redis.url, nodeId: "gw-r" });
  });
  after(async () => {
    await gw?.stop();
    await redis?.stop();
  });

  browserTest("a new epoch: the room shows the new history, and older pages of it", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, "rex");
    await joinOnPage(page, "epochs");
    const { room: sam } = await writer(gw, "sam", "epochs");
    for (const text of ["old 1", "old 2", "old 3"]) await sam.send(text);
    await waitForText(page, "old 3");

    await redis.kill();
    redis = await redis.restart();
    // The gateway reconnects to the empty Redis; sends go through again.
    await eventually("a send into the new history", () => sam.send("new 1", { clientId: "new-1" }), 20000);
    await waitForText(page, "new 1", 20000);
    await eventually("the old history to be gone from the page", async () =>
      JSON.stringify(await shownTexts(page)) === JSON.stringify(["new 1"]));
    for (let i = 2; i <= 60; i++) await sam.send(`new ${i}`);
    await waitForText(page, "new 60");
    assert.equal((await shownTexts(page)).length, 60);
    // The new history pages back like any other.
    await page.reload();
    await signIn(page, "rex");
    await page.locator("#rooms li", { hasText: "epochs" }).click();
    await waitForText(page, "new 60");
    assert.equal((await shownTexts(page))[0], "new 11", "the newest 50");
    // Scrolling to the top loads the older page.
    await page.locator("#scroller").evaluate((scroller) => (scroller.scrollTop = 0));
    await waitForText(page, "new 1");
    assert.equal((await shownTexts(page)).length, 60);
  });
});

describe("a gateway with a small outbox, beside one on the same Redis", () => {
  let redis, writerGateway, small;
  before(async () => {
    redis = await startRedis();
    const fast = { CHAT_GATEWAY__LIMITS__MESSAGES_PER_SECOND: "100000" };
    writerGateway = await startGateway({ redisUrl: redis.url, nodeId: "gw-w", env: fast });
    small = await startGateway({
      redisUrl: redis.url,
      nodeId: "gw-small",
      env: { ...fast, CHAT_GATEWAY__LIMITS__MAX_OUTBOX_BYTES: "65536" },
    });
  });
  after(async () => {
    await small?.stop();
    await writerGateway?.stop();
    await redis?.stop();
  });

  /** The gateway's count of 4008 closes. */
  async function slowConsumerCloses(gateway) {
    const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    const line = metrics.split("\n").find((l) => l.startsWith("chat_slow_consumer_closes_total "));
    return Number(line?.split(" ")[1] ?? 0);
  }

  browserTest("a page that stops reading is closed with 4008, comes back and shows the room once", async ({ open }) => {
    const page = await open(`${small.httpUrl}/`);
    await signIn(page, "snail");
    await joinOnPage(page, "flood");
    await page.evaluate(() => {
      window.__states = [];
      const status = document.getElementById("status");
      new MutationObserver(() => window.__states.push(status.dataset.state)).observe(status, { attributes: true });
    });
    const { room: flood } = await writer(writerGateway, "flood", "flood");
    // The page's script stops (a frozen tab): Chromium stops reading its
    // socket, and the gateway's outbox for it fills.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Debugger.enable");
    await cdp.send("Debugger.pause");
    const body = "x".repeat(1000);
    let sent = 0;
    try {
      while ((await slowConsumerCloses(small)) === 0) {
        assert.ok(sent < 20000, "no 4008 after 20000 messages");
        await Promise.all(Array.from({ length: 100 }, () => flood.send(`${++sent} ${body}`)));
      }
    } finally {
      await cdp.send("Debugger.resume");
    }
    await flood.send("the last one");
    await waitForText(page, "the last one", 30000);
    const states = await page.evaluate(() => window.__states);
    assert.ok(states.includes("reconnecting"), `the page reconnected: ${states}`);
    assert.equal(await page.locator("#status").getAttribute("data-state"), "open");
    const texts = await shownTexts(page);
    assert.equal(new Set(texts).size, texts.length, "nothing shown twice");
    const seqs = await page.locator("#messages .message").evaluateAll((items) => items.map((i) => Number(i.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in order");
    assert.ok(seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1), "no gap in what is shown");
  });
});

describe("a gateway with a short heartbeat behind haproxy, and one beside it", () => {
  let redis, gw, beside, lb;
  before(async () => {
    redis = await startRedis();
    const heartbeat = { CHAT_GATEWAY__HEARTBEAT__INTERVAL_MS: "2000" };
    gw = await startGateway({ redisUrl: redis.url, nodeId: "gw-hb", env: heartbeat });
    beside = await startGateway({ redisUrl: redis.url, nodeId: "gw-beside" });
    lb = await startHaproxy([gw]);
  });
  after(async () => {
    await lb?.stop();
    await gw?.stop();
    await beside?.stop();
    await redis?.stop();
  });

  browserTest("DMs sent while the recipient's only tab was reconnecting arrive in order, once", async ({ open }) => {
    const page = await open(`${lb.httpUrl}/`);
    await signIn(page, "vic");
    const vic = await page.locator("#members li.me").getAttribute("data-user");
    const walt = libraryClient(beside.wsUrl, { name: "Walt", user: "walt" });
    await walt.connect();
    await walt.dm(vic, "before");
    await page.locator("#dms li", { hasText: "Walt" }).waitFor();

    // The tab's network freezes (haproxy stopped): its session lives on at
    // the gateway until the heartbeat times it out, so DMs sent now count as
    // delivered and are not queued for a next session. Only catching up
    // brings them.
    lb.pause();
    try {
      for (const text of ["while away 1", "while away 2", "while away 3"]) {
        assert.equal((await walt.dm(vic, text)).delivered, true);
      }
      await page.locator("#status[data-state=reconnecting]").waitFor({ timeout: 15000 });
    } finally {
      lb.resume();
    }
    await page.evaluate(() => window.dispatchEvent(new Event("online")));
    await page.locator("#status[data-state=open]").waitFor({ timeout: 20000 });
    await page.locator("#dms li", { hasText: "Walt" }).click();
    await waitForText(page, "while away 3");
    await walt.dm(vic, "after");
    await waitForText(page, "after");
    assert.deepEqual(await shownTexts(page), ["before", "while away 1", "while away 2", "while away 3", "after"]);
  });
});
