// Sharing files on the page, in headless Chromium: three gateways on one
// Redis, the files in a real S3-compatible server (s3s-fs). `npm test` runs
// it (after `cargo build -p gateway` and deploy/local/ensure-s3s.sh).

import assert from "node:assert/strict";
import { after, before, describe } from "node:test";

import { browserTest, eventually, startGateway, startRedis, startS3 } from "./harness.js";
import { libraryClient, signIn } from "./page.js";

/** A 1×1 PNG. */
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d49444154789c6300010000050001" +
    "0d0a2db40000000049454e44ae426082",
  "hex",
);

describe("three gateways on one Redis, files on S3", () => {
  let redis, s3;
  const gateways = [];
  before(async () => {
    redis = await startRedis();
    s3 = await startS3();
    for (const nodeId of ["gw-1", "gw-2", "gw-3"]) {
      gateways.push(await startGateway({ redisUrl: redis.url, nodeId, env: s3.env }));
    }
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
    await s3?.stop();
    await redis?.stop();
  });

  browserTest("an image uploaded on one page shows inline on another; other files are links", async ({ open }) => {
    const [gw1, gw2, gw3] = gateways;
    const alice = await open(`${gw1.httpUrl}/`);
    await signIn(alice, "alice");
    const bob = await open(`${gw2.httpUrl}/`);
    await signIn(bob, "bob");

    // The button: pick a picture.
    await alice.locator("#file-input").setInputFiles({ name: "pixel.png", mimeType: "image/png", buffer: PNG });
    for (const page of [alice, bob]) {
      const image = page.locator("#messages .message:not(.pending) img.thumb[alt='pixel.png']");
      await image.waitFor({ timeout: 15000 });
      await eventually("the picture to load", () => image.evaluate((img) => img.complete && img.naturalWidth === 1));
    }
    assert.equal(await alice.locator("#uploads li").count(), 0, "done uploads leave the list");
    assert.ok(s3.objects().some((key) => key.startsWith("files/lobby/")), `in the S3 store: ${s3.objects()}`);

    // A third gateway serves the same file to the library.
    const carol = libraryClient(gw3.wsUrl, { name: "carol", user: "carol" });
    await carol.connect();
    const room = carol.room("lobby");
    await room.join();
    const shared = room.messages.find((m) => m.attachments?.[0]?.name === "pixel.png");
    assert.ok(shared, "the message is in the history");
    const bytes = Buffer.from(await (await fetch(carol.fileUrl(shared.attachments[0].url))).arrayBuffer());
    assert.deepEqual(bytes, PNG);

    // Dropping a text file on the conversation: a download link.
    await alice.locator("#text").fill("the notes");
    await alice.evaluate(() => {
      const files = new DataTransfer();
      files.items.add(new File(["hello notes"], "notes.txt", { type: "text/plain" }));
      const drop = new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true });
      document.getElementById("conversation").dispatchEvent(drop);
    });
    const link = bob.locator("#messages .message:not(.pending) a.file", { hasText: "notes.txt" });
    await link.waitFor({ timeout: 15000 });
    await bob.locator("#messages .message:not(.pending)", { hasText: "the notes" }).locator("a.file").waitFor();
    const href = await link.getAttribute("href");
    assert.equal(await (await fetch(href)).text(), "hello notes");

    // A refused file says why, and sends nothing.
    await alice.locator("#file-input").setInputFiles({ name: "page.html", mimeType: "text/html", buffer: Buffer.from("<b>x</b>") });
    await alice.locator("#uploads li[data-failed]", { hasText: "files of this type cannot be shared" }).waitFor();
    await alice.locator("#uploads li[data-failed] .dismiss").click();
    assert.equal(await alice.locator("#uploads li").count(), 0);
    carol.close();
  });
});
