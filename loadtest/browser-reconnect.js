// How long the chat page takes to come back after its gateway dies:
// two gateways on one Redis behind haproxy (as in the browser tests) and the
// presence service, one
// page in headless Chromium. Each round SIGKILLs the page's gateway, while
// a library client on the other gateway sends one message, and measures
// from the kill until the page shows "Connected" to the other gateway and
// until it shows the message it missed. The killed gateway is restarted
// before the next round, 6 s later.
//
//   deploy/local/ensure-web-test-tools.sh && cargo build --release -p gateway -p presence
//   CHAT_BIN_DIR=target/release node --experimental-websocket loadtest/browser-reconnect.js [ROUNDS]

import { ChatClient } from "../services/gateway/web/chat.js";
import {
  launchBrowser, startGateway, startHaproxy, startPresence, startRedis,
} from "../services/gateway/web/test/harness.js";

const rounds = Number(process.argv[2] ?? 10);
const redis = await startRedis();
// Clears the killed gateways' sessions, as in a real cluster.
const presence = await startPresence(redis.url);
const gateways = {
  "gw-1": await startGateway({ redisUrl: redis.url, nodeId: "gw-1" }),
  "gw-2": await startGateway({ redisUrl: redis.url, nodeId: "gw-2" }),
};
const lb = await startHaproxy(Object.values(gateways));
const browser = await launchBrowser();
const page = await (await browser.newContext()).newPage();
await page.goto(`${lb.httpUrl}/`);
await page.locator("#name").fill("reader");
await page.locator("#name").press("Enter");
await page.locator("#rooms li", { hasText: "lobby" }).waitFor();

const reconnectMs = [];
const shownMs = [];
for (let round = 1; round <= rounds; round++) {
  const node = await page.locator("#status").getAttribute("data-node");
  const other = node === "gw-1" ? "gw-2" : "gw-1";
  const writer = new ChatClient(gateways[other].wsUrl, { name: "writer", user: "writer" });
  await writer.connect();
  const lobby = writer.room("lobby");
  await lobby.join();
  const text = `round ${round}`;
  const killedAt = performance.now();
  await gateways[node].kill();
  await lobby.send(text);
  await page.locator(`#status[data-state=open][data-node=${other}]`).waitFor({ timeout: 30000 }).catch(async (err) => {
    console.error(`round ${round}: ${await page.locator("#status").textContent()}`);
    throw err;
  });
  reconnectMs.push(performance.now() - killedAt);
  await page.locator("#messages .text").getByText(text, { exact: true }).waitFor();
  shownMs.push(performance.now() - killedAt);
  writer.close();
  gateways[node] = await gateways[node].restart();
  // haproxy takes the restarted gateway back after two good checks, and the
  // client resets its backoff once a connection has lasted 5 s: rounds
  // closer together would measure the backoff of a flapping cluster.
  await new Promise((resolve) => setTimeout(resolve, 6000));
}

const summary = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `min ${sorted[0].toFixed(0)} ms, median ${at(0.5).toFixed(0)} ms, max ${sorted.at(-1).toFixed(0)} ms`;
};
console.log(`rounds: ${rounds}`);
console.log(`kill → page connected to the other gateway: ${summary(reconnectMs)}`);
console.log(`kill → missed message shown:              ${summary(shownMs)}`);
await browser.close();
await lb.stop();
for (const gateway of Object.values(gateways)) await gateway.stop();
await presence.stop();
await redis.stop();
