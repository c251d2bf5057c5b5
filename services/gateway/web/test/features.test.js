// The page's protocol 1.1 features in headless Chromium against a gateway:
// replies, edits, deletes, reactions, unread counts that follow a user
// across two browsers, "Seen by", and presence status. Run with `npm test`
// (after `cargo build -p gateway`); CHAT_WEB_FROM_DISK=1 serves the page
// from the working tree instead of the binary's built-in copy.

import assert from "node:assert/strict";
import { after, before, describe } from "node:test";

import { browserTest, eventually, startGateway } from "./harness.js";
import { assertAccessible, joinOnPage, libraryClient, say, shownTexts, signIn, tabTo, waitForText, writer } from "./page.js";

/** The confirmed message on `page` whose text is exactly `text`. */
function messageWith(page, text) {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  return page.locator("#messages .message:not(.pending)").filter({ has: page.locator(".text", { hasText: exact }) });
}

/** The seq of the message `text` as the page shows it. */
async function seqOf(page, text) {
  return Number(await messageWith(page, text).getAttribute("data-seq"));
}

/** This user's id on `page`, from the roster. */
const myId = (page) => page.locator("#members li.me").getAttribute("data-user");

describe("protocol 1.1 on the page: one gateway on the embedded engine", () => {
  let gw;
  before(async () => {
    gw = await startGateway({ nodeId: "solo", env: { CHAT_GATEWAY__LIMITS__MESSAGES_PER_SECOND: "1000" } });
  });
  after(() => gw?.stop());

  browserTest("reply, edit, react and delete, as another user sees them", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, "alice");
    await joinOnPage(page, "talk");
    const { room: bob } = await writer(gw, "bob", "talk");
    await bob.send("the question");
    await waitForText(page, "the question");
    const question = await seqOf(page, "the question");

    // Reply: the bar above the box says to whom; the message quotes it.
    await messageWith(page, "the question").locator(".reply").click();
    await page.locator("#composing-text", { hasText: "Replying to bob: “the question”" }).waitFor();
    await say(page, "the answer");
    await waitForText(page, "the answer");
    const answer = messageWith(page, "the answer");
    assert.equal(await answer.locator(".quote .quote-text").textContent(), "the question");
    assert.equal(await page.locator("#composing").isHidden(), true);
    const answerSeq = await seqOf(page, "the answer");
    await eventually("bob to see the reply", () => bob.message(answerSeq)?.replyTo?.seq === question);

    // The quoted message is edited by its author: the quote follows.
    await bob.edit(question, "the better question");
    await answer.locator(".quote-text", { hasText: "the better question" }).waitFor();
    await messageWith(page, "the better question").locator(".edited", { hasText: "(edited)" }).waitFor();

    // Edit one's own: the box takes its text; Enter saves.
    assert.equal(await messageWith(page, "the better question").locator(".edit").count(), 0, "only one's own");
    await answer.locator(".edit").click();
    await page.locator("#composing-text", { hasText: "Editing your message" }).waitFor();
    assert.equal(await page.locator("#text").inputValue(), "the answer");
    assert.equal(await page.locator("#send").textContent(), "Save");
    await page.locator("#text").fill("the best answer");
    await page.locator("#text").press("Enter");
    await waitForText(page, "the best answer");
    await messageWith(page, "the best answer").locator(".edited").waitFor();
    await eventually("bob to see the edit", () => bob.message(answerSeq)?.text === "the best answer");

    // React: the picker's emoji, another user's, a chip toggled, any emoji typed.
    const asked = messageWith(page, "the better question");
    await asked.locator(".react").click();
    await asked.locator(".picker .pick", { hasText: "👍" }).click();
    const thumbs = asked.locator('.reaction[data-emoji="👍"]');
    await thumbs.locator(".count", { hasText: "1" }).waitFor();
    assert.equal(await thumbs.getAttribute("aria-pressed"), "true");
    await bob.react(question, "👍");
    await thumbs.locator(".count", { hasText: "2" }).waitFor();
    assert.equal(await thumbs.getAttribute("aria-label"), "👍 2: you, bob");
    await thumbs.click();
    await thumbs.locator(".count", { hasText: "1" }).waitFor();
    assert.equal(await thumbs.getAttribute("aria-pressed"), "false");
    await asked.locator(".react").click();
    await asked.locator(".emoji-input").fill("🦄");
    await asked.locator(".emoji-input").press("Enter");
    await asked.locator('.reaction[data-emoji="🦄"]', { hasText: "1" }).waitFor();
    await eventually("bob to see the reactions", () =>
      JSON.stringify(bob.message(question)?.reactions.map((r) => [r.emoji, r.count])) === JSON.stringify([["👍", 1], ["🦄", 1]]));

    // Delete one's own: a placeholder stays; the other user sees it deleted.
    await messageWith(page, "the best answer").locator(".delete").click();
    const placeholder = page.locator(`#messages .message[data-seq="${answerSeq}"] .placeholder`);
    await placeholder.waitFor();
    assert.equal(await placeholder.textContent(), "message deleted");
    await eventually("bob to see the delete", () => bob.message(answerSeq)?.deleted === true);
    assert.deepEqual(await shownTexts(page), ["the better question"]);

    // Another user's delete shows too, and the page after a reload holds it all.
    await bob.delete(question);
    await page.locator(`#messages .message[data-seq="${question}"] .placeholder`).waitFor();
    await page.reload();
    await signIn(page, "alice");
    await page.locator("#rooms li", { hasText: "talk" }).click();
    await page.locator("#title", { hasText: "# talk" }).waitFor();
    assert.equal(await page.locator("#messages .message .placeholder").count(), 2, "both deleted, from the history");
  });

  browserTest("events whose message is older than the first page apply when older history loads", async ({ open }) => {
    const { room: archivist } = await writer(gw, "archivist", "old");
    const first = await archivist.send("note 1");
    for (let i = 2; i <= 60; i++) await archivist.send(`note ${i}`);
    await archivist.react(first.seq, "🎉");
    await archivist.edit(first.seq, "note 1, revised");
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, "reader");
    await joinOnPage(page, "old");
    await waitForText(page, "note 60");
    assert.equal(await page.locator(`#messages .message[data-seq="${first.seq}"]`).count(), 0);
    await page.locator("#scroller").evaluate((scroller) => (scroller.scrollTop = 0));
    const revised = messageWith(page, "note 1, revised");
    await revised.waitFor();
    await revised.locator('.reaction[data-emoji="🎉"]', { hasText: "1" }).waitFor();
    assert.equal(await revised.locator(".edited").count(), 1);
  });

  browserTest("unread counts come from the server and follow the user across two browsers", async ({ open }) => {
    const a = await open(`${gw.httpUrl}/`);
    await signIn(a, "uma");
    const uma = await myId(a);
    await joinOnPage(a, "news");
    await a.locator('#rooms button[data-key="room:lobby"]').click();
    const { client: vic, room: news } = await writer(gw, "vic", "news");
    await news.send("breaking");
    const newsOn = (page) => page.locator('#rooms button[data-key="room:news"]');
    await newsOn(a).locator(".unread", { hasText: "1 unread" }).waitFor();

    // Another browser, the same user (the id kept as the page keeps it).
    const b = await open(`${gw.httpUrl}/`, {
      before: (p) => p.addInitScript(([id]) => {
        localStorage.setItem("chat.name", "uma");
        localStorage.setItem("chat.user", id);
        localStorage.setItem(`chat.rooms.${id}`, JSON.stringify(["lobby", "news"]));
      }, [uma]),
    });
    await signIn(b, "uma");
    assert.equal(await myId(b), uma, "the same user");
    await b.locator("#title", { hasText: "# lobby" }).waitFor();
    // Never seen live here: the count is the server's, from joined.
    await newsOn(b).locator(".unread", { hasText: "1 unread" }).waitFor();

    // Read in the first browser: the second's badge goes.
    await newsOn(a).click();
    await waitForText(a, "breaking");
    await newsOn(a).locator(".unread").waitFor({ state: "detached" });
    await newsOn(b).locator(".unread").waitFor({ state: "detached" });

    // The same with a DM.
    await vic.dm(uma, "psst");
    const dmOn = (page) => page.locator("#dms li", { hasText: "vic" }).locator("button");
    for (const page of [a, b]) await dmOn(page).locator(".unread", { hasText: "1 unread" }).waitFor();
    await dmOn(b).click();
    await waitForText(b, "psst");
    await dmOn(a).locator(".unread").waitFor({ state: "detached" });

    // What a third device of the user is told: nothing unread (the inbox may lag 2 s).
    const third = libraryClient(gw.wsUrl, { name: "uma", user: uma });
    await third.connect();
    await eventually("the inbox to say all is read", async () => {
      const inbox = await third.inbox();
      return inbox.rooms.find((r) => r.room === "news")?.unread === 0 && inbox.dms.find((d) => d.dm === "vic")?.unread === 0;
    });
  });

  browserTest("Seen by: a DM the other user read, and a small room's last message", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, "sam");
    const sam = await myId(page);
    await joinOnPage(page, "tiny");
    const { client: tia, room: tiny } = await writer(gw, "tia", "tiny");
    await page.locator("#members li[data-user=tia]").waitFor();

    await say(page, "anyone here?");
    await waitForText(page, "anyone here?");
    await eventually("tia to get it", () => tiny.messages.some((m) => m.text === "anyone here?"));
    await tiny.markRead();
    await messageWith(page, "anyone here?").locator(".seen", { hasText: "Seen by tia" }).waitFor();

    await page.locator("#members li[data-user=tia] button").click();
    await page.locator("#title", { hasText: "@ tia" }).waitFor();
    await say(page, "private hello");
    await waitForText(page, "private hello");
    assert.equal(await page.locator("#messages .seen").count(), 0, "not read yet");
    const conversation = tia.conversation(sam);
    await eventually("tia to get the DM", () => conversation.latest > 0);
    await conversation.markRead();
    await messageWith(page, "private hello").locator(".seen", { hasText: "Seen" }).waitFor();
  });

  browserTest("status: set on the page, shown to others, others' shown in the roster; accessible by keyboard", async ({ open }) => {
    const page = await open(`${gw.httpUrl}/`);
    await signIn(page, "zoe");
    const zoe = await myId(page);
    const { client: yan, room: lobby } = await writer(gw, "yan", "lobby");
    await page.locator("#members li[data-user=yan]").waitFor();

    await page.locator("#presence-state").selectOption("away");
    await page.locator("#presence-text").fill("at lunch");
    await page.locator("#presence-form button[type=submit]").click();
    await page.locator("#presence-saved", { hasText: "Status: away, at lunch" }).waitFor();
    await page.locator(`#members li.me[data-status=away]`, { hasText: "away: at lunch" }).waitFor();
    await eventually("yan to see zoe's status", () => lobby.roster.find((m) => m.id === zoe)?.status?.text === "at lunch");

    await yan.setStatus("busy", "in a call");
    const yanOnPage = page.locator("#members li[data-user=yan]");
    await yanOnPage.locator(".status-text", { hasText: "busy: in a call" }).waitFor();
    assert.equal(await yanOnPage.getAttribute("data-status"), "busy");

    // By keyboard: reply to yan's message, react from the picker.
    await lobby.send("by keys");
    await waitForText(page, "by keys");
    await tabTo(page, "#messages .message:not(.pending) .reply");
    await page.keyboard.press("Enter");
    await page.locator("#composing-text", { hasText: "Replying to yan" }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), "text");
    await page.keyboard.press("Escape");
    await page.locator("#composing").waitFor({ state: "hidden" });
    await tabTo(page, "#messages .message:not(.pending) .react");
    await page.keyboard.press("Enter");
    await page.locator("#messages .picker").waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.dataset.focus), "pick:👍");
    await assertAccessible(page, "the chat with a reaction picker open and statuses");
    await page.keyboard.press("Enter");
    const chip = messageWith(page, "by keys").locator('.reaction[data-emoji="👍"]');
    await chip.waitFor();
    await messageWith(page, "by keys").locator(".reply").click();
    await say(page, "with a quote");
    await waitForText(page, "with a quote");
    await assertAccessible(page, "reactions, a reply's quote, an edited mark");
  });
});
