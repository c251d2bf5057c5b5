// The chat page in headless Chromium against real gateways, Redis and
// haproxy. Run with `npm test` (after `cargo build -p gateway`); `make test`
// runs it.

import assert from "node:assert/strict";
import { after, before, describe } from "node:test";

import {
  browserTest, eventually, mintToken, startGateway, twoGatewaysBehindHaproxy,
} from "./harness.js";
import {
  assertAccessible, joinOnPage, libraryClient, say, shownTexts, signIn, tabTo, waitForText, writer,
} from "./page.js";

describe("two gateways on one Redis", () => {
  const cluster = twoGatewaysBehindHaproxy();

  browserTest("pages on two gateways chat, see presence and typing, and exchange a DM", async ({ open }) => {
    const alice = await open(`${cluster.gw1.httpUrl}/`);
    await signIn(alice, "alice");
    const bob = await open(`${cluster.gw2.httpUrl}/`);
    await signIn(bob, "bob");
    assert.equal(await alice.locator("#status").getAttribute("data-node"), "gw-1");
    assert.equal(await bob.locator("#status").getAttribute("data-node"), "gw-2");

    // Presence: each sees the other online in the lobby.
    await alice.locator("#members li", { hasText: "bob" }).waitFor();
    await bob.locator("#members li", { hasText: "alice" }).waitFor();

    // Typing shows on the other page, and ends with the message.
    await bob.locator("#text").pressSequentially("hi alice", { delay: 20 });
    await alice.locator("#typing", { hasText: "bob is typing…" }).waitFor();
    await bob.locator("#text").press("Enter");
    await waitForText(alice, "hi alice");
    await alice.locator("#typing", { hasText: /^$/ }).waitFor();
    await alice.locator("#text").fill("hello bob");
    await alice.locator("#composer button").click();
    await waitForText(bob, "hello bob");
    assert.deepEqual(await shownTexts(alice), ["hi alice", "hello bob"]);
    assert.deepEqual(await shownTexts(bob), ["hi alice", "hello bob"]);

    // A DM: alice picks bob in the roster; bob sees an unread conversation.
    await alice.locator("#members li", { hasText: "bob" }).click();
    await alice.locator("#title", { hasText: "@ bob" }).waitFor();
    await alice.locator("#text").fill("just between us");
    await alice.locator("#text").press("Enter");
    const conversation = bob.locator("#dms li", { hasText: "alice" });
    await conversation.locator(".unread", { hasText: "1" }).waitFor();
    await conversation.click();
    await waitForText(bob, "just between us");
    assert.deepEqual(await shownTexts(bob), ["just between us"]);
    await bob.locator("#text").fill("agreed");
    await bob.locator("#text").press("Enter");
    await waitForText(alice, "agreed");
    assert.deepEqual(await shownTexts(alice), ["just between us", "agreed"]);

    // Bob leaves the lobby: alice sees him go offline there.
    await bob.locator("#rooms li", { hasText: "lobby" }).click();
    await bob.locator("#leave").click();
    await alice.locator("#rooms li", { hasText: "lobby" }).click();
    await alice.locator("#members li", { hasText: "bob" }).waitFor({ state: "detached" });
    const aliceId = await alice.locator("#members li.me").getAttribute("data-user");
    assert.deepEqual(await alice.locator("#members li").evaluateAll((items) => items.map((li) => li.dataset.user)), [aliceId]);
  });

  browserTest("two pages on two gateways set up a video call over signal frames", async ({ open }) => {
    const alice = await open(`${cluster.gw1.httpUrl}/`);
    await signIn(alice, "alice");
    const bob = await open(`${cluster.gw2.httpUrl}/`);
    await signIn(bob, "bob");
    assert.equal(await alice.locator("#call").isVisible(), false, "no call button in a room");
    await alice.locator("#members li", { hasText: "bob" }).click();
    await alice.locator("#title", { hasText: "@ bob" }).waitFor();
    await alice.locator("#call").click();
    await alice.locator("#call-panel[data-state=calling]", { hasText: "Calling bob" }).waitFor();

    await bob.locator("#call-panel[data-state=ringing]", { hasText: "alice is calling" }).waitFor();
    await bob.locator("#call-accept").click();
    for (const page of [alice, bob]) {
      await page.locator("#call-panel[data-state=connected]").waitFor({ timeout: 15000 });
      // The other side's fake camera plays here.
      await eventually("the remote video to play", () =>
        page.locator("#remote-video").evaluate((video) => video.videoWidth > 0 && !video.paused));
    }
    assert.match(await alice.locator("#call-state").textContent(), /In a call with bob/);

    await bob.locator("#call-hangup").click();
    await alice.locator("#call-panel").waitFor({ state: "hidden" });
    await alice.locator("#error", { hasText: "bob ended the call." }).waitFor();
    assert.equal(await bob.locator("#call-panel").isVisible(), false);
  });

  browserTest("a page whose gateway is killed reconnects through the load balancer and shows what it missed", async ({ open }) => {
    const page = await open(`${cluster.lb.httpUrl}/`);
    await signIn(page, "carol");
    await joinOnPage(page, "incident");
    const node = await page.locator("#status").getAttribute("data-node");
    const [victim, survivor] = node === "gw-1" ? [cluster.gw1, cluster.gw2] : [cluster.gw2, cluster.gw1];

    const { room: dave } = await writer(survivor, "dave", "incident");
    const seenByDave = [];
    dave.on("event", (m) => seenByDave.push(m.text));
    await dave.send("before the crash");
    await waitForText(page, "before the crash");

    await victim.kill();
    await page.locator("#status[data-state=reconnecting]").waitFor();
    // Carol writes while disconnected: the page queues it.
    await page.locator("#text").fill("written while offline");
    await page.locator("#text").press("Enter");
    // The page shows it as waiting for the connection, not failed.
    await page.locator("#messages .pending[data-status=queued]", { hasText: "written while offline" }).waitFor();
    for (let i = 1; i <= 5; i++) await dave.send(`missed ${i}`);

    await page.locator(`#status[data-state=open][data-node=${survivor.nodeId}]`).waitFor({ timeout: 15000 });
    await waitForText(page, "missed 5");
    await waitForText(page, "written while offline");
    await dave.send("after the reconnect");
    await waitForText(page, "after the reconnect");

    const texts = await shownTexts(page);
    const missed = ["before the crash", "missed 1", "missed 2", "missed 3", "missed 4", "missed 5"];
    assert.deepEqual(texts.filter((t) => missed.includes(t)), missed, "every missed message, once, in order");
    assert.equal(texts.filter((t) => t === "written while offline").length, 1);
    assert.equal(texts.at(-1), "after the reconnect");
    assert.equal(texts.length, 8);
    await eventually("dave to get carol's queued message", () => seenByDave.includes("written while offline"));
    assert.equal(seenByDave.filter((t) => t === "written while offline").length, 1);
    assert.equal(await page.locator("#messages .pending").count(), 0);
    // Still the same user after the reconnect: one carol in the roster.
    assert.deepEqual((await page.locator("#members li").evaluateAll((l) => l.map((li) => li.dataset.user))).sort(), [
      await page.locator("#members li.me").getAttribute("data-user"),
      "dave",
    ].sort());
    Object.assign(victim, await victim.restart());
  });
});

describe("one gateway on the embedded engine, as `make run`", () => {
  let gw;
  before(async () => {
    gw = await startGateway({ nodeId: "solo", env: { CHAT_GATEWAY__LIMITS__MESSAGES_PER_SECOND: "1000" } });
  });
  after(() => gw?.stop());

  browserTest("user text shows as text, never as markup", async ({ open }) => {
    const payloads = [
      `<img src=x onerror="window.__xss=1">`,
      `<script>window.__xss=1</script>`,
      `<b>not bold</b> & "quotes" 'too'`,
    ];
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, `<img src=y onerror="window.__xss=2">`);
    const { room: mallory } = await writer(gw, `<i>mallory</i>`, "lobby");
    for (const text of payloads) await mallory.send(text);
    await waitForText(page, payloads[2]);
    assert.deepEqual(await shownTexts(page), payloads);
    await page.locator("#members li", { hasText: "<i>mallory</i>" }).waitFor();
    assert.equal(await page.locator("#messages .from").first().textContent(), "<i>mallory</i>");
    assert.match(await page.locator("#me").textContent(), /^<img src=y onerror="window.__xss=2">/);
    assert.equal(await page.locator("#messages img, #messages script, #messages b, #members i, #top img").count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  browserTest("the page passes axe-core, and works by keyboard alone", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await page.locator("#name").waitFor();
    await assertAccessible(page, "the sign-in form");
    await tabTo(page, "#name");
    await page.keyboard.type("Kay");
    await page.keyboard.press("Enter");
    await page.locator("#status[data-state=open]").waitFor();
    await page.locator("#rooms li", { hasText: "lobby" }).waitFor();
    const { client: lee, room: leeLobby } = await writer(gw, "lee", "lobby");
    await page.locator("#members li[data-user=lee]").waitFor();

    // Join a room: the focus lands in its message box.
    await tabTo(page, "#join-room");
    await page.keyboard.type("keys");
    await page.keyboard.press("Enter");
    await page.locator("#title", { hasText: "# keys" }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), "text");
    await page.keyboard.type("typed, not clicked");
    await page.keyboard.press("Enter");
    await waitForText(page, "typed, not clicked");

    // A message in the lobby meanwhile: its button says how many are unread.
    await leeLobby.send("psst");
    const lobby = page.locator('#rooms button[data-key="room:lobby"]');
    await lobby.locator(".unread", { hasText: "1 unread" }).waitFor();
    assert.equal(await lobby.textContent(), "lobby1 unread");
    await tabTo(page, '#rooms button[data-key="room:lobby"]');
    await page.keyboard.press("Enter");
    await page.locator("#title", { hasText: "# lobby" }).waitFor();
    await waitForText(page, "psst");
    assert.equal(await lobby.getAttribute("aria-current"), "true");

    // A DM from the roster, by keyboard.
    const dms = [];
    lee.on("dm", (dm) => dms.push(dm.text));
    await tabTo(page, "#members li[data-user=lee] button");
    await page.keyboard.press("Enter");
    await page.locator("#title", { hasText: "@ lee" }).waitFor();
    await tabTo(page, "#text");
    await page.keyboard.type("hi lee");
    await page.keyboard.press("Enter");
    await eventually("lee to get the DM", () => dms.includes("hi lee"));

    // A send that fails stays, with Retry and Discard reachable by keyboard.
    await page.locator("#text").fill("x".repeat(5000));
    await page.keyboard.press("Enter");
    const failed = page.locator("#messages .pending[data-status=failed]");
    await failed.waitFor();
    assert.match(await failed.locator(".state").textContent(), /Not sent: the message is too long/);
    await assertAccessible(page, "the chat: rooms, an unread badge, a DM, a failed send");
    await tabTo(page, "#messages .pending .discard");
    await page.keyboard.press("Enter");
    await failed.waitFor({ state: "detached" });
    await tabTo(page, "#leave");
    await page.keyboard.press("Enter");
    await page.locator("#dms li").waitFor({ state: "detached" });
  });

  browserTest("scrolling back pages in older messages from history", async ({ open }) => {
    const { room: archivist } = await writer(gw, "archivist", "archive");
    for (let i = 1; i <= 120; i++) await archivist.send(`note ${i}`);
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, "reader");
    await page.locator("#join-room").fill("archive");
    await page.locator("#join-form button").click();
    await page.locator("#title", { hasText: "# archive" }).waitFor();
    const notes = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `note ${from + i}`);
    assert.deepEqual(await shownTexts(page), notes(71, 120), "the newest 50 on join");
    // Scrolling to the top loads one older page, and keeps the place.
    const scrollToTop = () => page.locator("#scroller").evaluate((scroller) => (scroller.scrollTop = 0));
    await scrollToTop();
    await waitForText(page, "note 21");
    assert.deepEqual(await shownTexts(page), notes(21, 120));
    assert.ok(await page.locator("#scroller").evaluate((scroller) => scroller.scrollTop > 0));
    await scrollToTop();
    await waitForText(page, "note 1");
    assert.deepEqual(await shownTexts(page), notes(1, 120));
    await page.locator("#older").waitFor({ state: "hidden" });
  });
});

describe("a gateway in jwt mode", () => {
  const secret = "browser-test-secret";
  let gw;
  before(async () => {
    gw = await startGateway({ nodeId: "jwt", env: { CHAT_AUTH__MODE: "jwt", CHAT_AUTH__HS256_SECRET: secret } });
  });
  after(() => gw?.stop());

  browserTest("the page asks for a token and signs in with it", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await page.locator("#token").waitFor();
    assert.equal(await page.locator("#name").isVisible(), false);
    await page.locator("#token").fill(mintToken(secret, "erin", "Erin"));
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#status[data-state=open]").waitFor();
    await page.locator("#me", { hasText: "Erin (erin)" }).waitFor();
    await page.locator("#members li[data-user=erin]", { hasText: "Erin" }).waitFor();
  });

  browserTest("a token the gateway refuses sends the page back to sign-in with a reason", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await page.locator("#token").fill(mintToken("some-other-secret", "mallory"));
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#sign-in-error", { hasText: "Could not connect" }).waitFor({ timeout: 15000 });
    assert.ok(await page.locator("#sign-in-form").isVisible());
    assert.equal(await page.locator("#status").getAttribute("data-state"), "idle");
  });
});
