// The chat page against a running compose stack (docker-compose.yml), through
// its load balancer in jwt mode. Run by deploy/ci/compose-test.sh, which sets
// CHAT_STACK_HTTP and CHAT_STACK_SECRET; skipped without them.

import assert from "node:assert/strict";
import { describe } from "node:test";

import { ChatClient } from "../chat.js";
import { browserTest, eventually, mintToken } from "./harness.js";

const stack = process.env.CHAT_STACK_HTTP;
const secret = process.env.CHAT_STACK_SECRET;

describe("the compose stack", { skip: !stack && "CHAT_STACK_HTTP is not set" }, () => {
  browserTest("a signed-in page chats with a library client through the load balancer", async ({ open }) => {
    const page = await open(`${stack}/`);
    await page.locator("#token").fill(mintToken(secret, "stack-page", "Page"));
    await page.locator("#sign-in-form button[type=submit]").click();
    await page.locator("#status[data-state=open]").waitFor();
    await page.locator("#rooms li", { hasText: "lobby" }).waitFor();
    await page.locator("#join-room").fill("stack-web");
    await page.locator("#join-room").press("Enter");
    await page.locator("#title", { hasText: "# stack-web" }).waitFor();

    const wsUrl = `${stack.replace(/^http/, "ws")}/ws`;
    const node = new ChatClient(wsUrl, { token: mintToken(secret, "stack-node", "Node") });
    const room = node.room("stack-web");
    const got = [];
    room.on("event", (m) => got.push(m.text));
    try {
      await node.connect();
      await room.join();
      await page.locator("#members li", { hasText: "Node" }).waitFor();
      await room.send("hello from node");
      await page.locator("#messages .text").getByText("hello from node", { exact: true }).waitFor();
      await page.locator("#text").fill("hello from the page");
      await page.locator("#text").press("Enter");
      await eventually("the page's message", () => got.includes("hello from the page"));
      assert.deepEqual(got, ["hello from node", "hello from the page"]);
    } finally {
      node.close();
    }
  });
});
