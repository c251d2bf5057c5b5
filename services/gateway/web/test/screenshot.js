// Makes the README's picture of the chat page (docs/images/chat-page.png):
// one gateway on the embedded engine, as `make run`, and three people
// chatting in headless Chromium. Run with `make screenshot`.

import path from "node:path";
import zlib from "node:zlib";

import { ChatClient } from "../chat.js";
import { launchBrowser, repoRoot, startGateway } from "./harness.js";

/** A small PNG: a chart of a rollout, three gateways draining one by one. */
function chartPng(width = 180, height = 90) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = [0];
    for (let x = 0; x < width; x++) {
      const bar = Math.floor(x / (width / 3));
      const top = height - 15 - bar * 20;
      const inBar = x % (width / 3) > 8 && x % (width / 3) < width / 3 - 8 && y > top;
      row.push(...(inBar ? [47, 111, 222] : [246, 247, 250]));
    }
    rows.push(Buffer.from(row));
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", zlib.deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const gw = await startGateway({ nodeId: "gw-1" });
const browser = await launchBrowser();
try {
  const open = async (name) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 640 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(`${gw.httpUrl}/`);
    await page.locator("#name").fill(name);
    await page.locator("#name").press("Enter");
    await page.locator("#rooms li", { hasText: "lobby" }).waitFor();
    return page;
  };
  const say = async (page, text) => {
    await page.locator("#text").fill(text);
    await page.locator("#text").press("Enter");
    await page.locator("#messages .text").getByText(text, { exact: true }).waitFor();
  };
  const alice = await open("Alice");
  const bob = await open("Bob");
  const carol = new ChatClient(gw.wsUrl, { name: "Carol", user: "carol" });
  await carol.connect();
  const carolLobby = carol.room("lobby");
  await carolLobby.join();
  const message = (page, text) =>
    page.locator("#messages .message:not(.pending)").filter({ has: page.locator(".text", { hasText: text }) });
  await say(alice, "Morning! Is the deploy still on for 10:00?");
  await say(bob, "Yes. Gateways drain first, so nobody loses a message.");
  const oops = await carolLobby.send("I'll watch the dashbord.");
  await carolLobby.edit(oops.seq, "I'll watch the dashboard. <b>Tags</b> show as text, by the way.");
  const wrong = await carolLobby.send("(wrong room, sorry)");
  await carolLobby.delete(wrong.seq);
  // Alice replies to Bob; Bob and Carol react to it.
  await message(alice, "Gateways drain first").locator(".reply").click();
  await say(alice, "Great, thanks both!");
  const thanks = Number(await message(bob, "Great, thanks both!").getAttribute("data-seq"));
  await message(bob, "Great, thanks both!").locator(".react").click();
  await message(bob, "Great, thanks both!").locator(".picker .pick", { hasText: "🎉" }).click();
  await carolLobby.react(thanks, "🎉");
  await carolLobby.react(thanks, "👍");
  await carol.setStatus("busy", "in a call");
  await alice.locator("#presence-state").selectOption("away");
  await alice.locator("#presence-text").fill("deploying");
  await alice.locator("#presence-form button[type=submit]").click();
  await bob.locator("#join-room").fill("deploys");
  await bob.locator("#join-room").press("Enter");
  await alice.locator("#join-room").fill("deploys");
  await alice.locator("#join-room").press("Enter");
  await alice.locator("#rooms li", { hasText: "deploys" }).waitFor();
  await alice.locator("#rooms li", { hasText: "lobby" }).click();
  const chart = await carol.upload(new Blob([chartPng()], { type: "image/png" }), "lobby", { name: "rollout.png" });
  await carolLobby.send("The rollout plan:", { attachments: [chart.id] });
  await alice.locator("#messages img.thumb").waitFor();
  await say(bob, "Draining gw-2 now.");
  await carol.dm((await alice.locator("#me").textContent()).match(/\((.+)\)$/)[1], "Coffee after?");
  await alice.locator("#dms li .unread").waitFor();
  await alice.locator("#rooms li .unread").waitFor();
  await bob.locator("#rooms li", { hasText: "lobby" }).click();
  await alice.locator("#messages .seen").waitFor();
  await bob.locator("#text").pressSequentially("On my way, just grabbing my laptop", { delay: 90 });
  await alice.locator("#typing", { hasText: "Bob is typing…" }).waitFor();
  const file = path.join(repoRoot, "docs/images/chat-page.png");
  await alice.screenshot({ path: file });
  console.log(`wrote ${file}`);
  carol.close();
} finally {
  await browser.close();
  await gw.stop();
}
