// What the browser tests do on the chat page, as a user would.

import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import { afterEach } from "node:test";

import { ChatClient } from "../chat.js";

/** Signs in on the page by name, and waits for the connection and the lobby. */
export async function signIn(page, name) {
  await page.locator("#name").fill(name);
  await page.locator("#sign-in-form button[type=submit]").click();
  await page.locator("#status[data-state=open]").waitFor();
  // The page joins the lobby by itself.
  await page.locator("#rooms li", { hasText: "lobby" }).waitFor();
}

/** The texts of the messages the page shows (pending ones included), in order. */
export const shownTexts = (page) => page.locator("#messages .text").allTextContents();

export async function waitForText(page, text, timeout = 10000) {
  await page.locator("#messages .message:not(.pending) .text").getByText(text, { exact: true }).waitFor({ timeout });
}

/** Types `text` into the message box and presses Enter. */
export async function say(page, text) {
  await page.locator("#text").fill(text);
  await page.locator("#text").press("Enter");
}

/** Joins `room` from the sidebar's form. */
export async function joinOnPage(page, room) {
  await page.locator("#join-room").fill(room);
  await page.locator("#join-room").press("Enter");
  await page.locator("#title", { hasText: `# ${room}` }).waitFor();
}

/** Library clients of the current test, closed after it whatever happens. */
const clients = new Set();
afterEach(() => {
  for (const client of clients) client.close();
  clients.clear();
});

/** A library client in Node, closed after the test. */
export function libraryClient(url, options) {
  const client = new ChatClient(url, options);
  clients.add(client);
  return client;
}

/** A second user, on the library in Node, joined to `room`: `{client, room}`. */
export async function writer(gateway, name, roomName) {
  const client = libraryClient(gateway.wsUrl, { name, user: name });
  await client.connect();
  const room = client.room(roomName);
  await room.join();
  return { client, room };
}

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core on the page as it is now, and fails on any serious or
 * critical violation (WCAG 2.1 A and AA rules, and best practices).
 */
export async function assertAccessible(page, what) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.map((n) => n.target.join(" ")).join("\n  ")}`);
  assert.deepEqual(report, [], `accessibility of ${what}`);
}

/**
 * Presses Tab until `selector` has the focus (at most 40 times): proof that
 * the control is reachable by keyboard.
 */
export async function tabTo(page, selector) {
  for (let i = 0; i < 40; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`${selector} is not reachable with Tab`);
}
