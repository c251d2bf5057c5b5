// Real processes for the client and browser tests: redis-server, gateway
// binaries and haproxy on free loopback ports, and headless Chromium.
// Everything started here is killed when the test process exits.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../../../..");
/** Where the gateway binary is: `cargo build -p gateway` puts it in target/debug. */
const binDir = process.env.CHAT_BIN_DIR ?? path.join(repoRoot, "target/debug");
/** Screenshots of the pages of a failed browser test. */
export const failureDir = path.join(repoRoot, "target/web-test-failures");

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns something truthy. */
export async function eventually(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

function run(command, args, env, name) {
  const child = spawn(command, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.exited.then(() => children.delete(child));
  child.once("error", (err) => {
    stderr += `${name}: ${command} could not start: ${err.message}`;
  });
  child.stderrTail = () => stderr;
  child.failed = () => child.exitCode !== null || stderr.includes("could not start");
  return child;
}

async function stop(child, signal = "SIGTERM") {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  await child.exited;
}

/**
 * A redis-server of its own, without persistence. `port` reuses a port:
 * `restart()` after `kill()` is a Redis that lost everything.
 */
export async function startRedis({ port } = {}) {
  port ??= await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-redis-"));
  const child = run(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    process.env,
    "redis",
  );
  await eventually("redis-server to listen", () => {
    if (child.failed()) throw new Error(child.stderrTail());
    return canConnect(port);
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => stop(child),
    kill: () => stop(child, "SIGKILL"),
    restart: () => startRedis({ port }),
  };
}

/** The access key and secret of the S3 servers the tests start. */
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: "chat-web-access", AWS_SECRET_ACCESS_KEY: "chat-web-secret-0123456789" };

/**
 * A real S3-compatible server (s3s-fs, which `make test` builds into
 * target/tools/bin; `S3S_FS` names it) with one bucket, and the gateway
 * settings that use it.
 */
export async function startS3() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-s3-"));
  const bucket = "chat-files";
  fs.mkdirSync(path.join(dir, bucket));
  const binary = process.env.S3S_FS ?? path.join(repoRoot, "target/tools/bin/s3s-fs");
  const args = [
    "--host", "127.0.0.1", "--port", String(port),
    "--access-key", S3_CREDENTIALS.AWS_ACCESS_KEY_ID, "--secret-key", S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY, dir,
  ];
  const child = run(binary, args, process.env, "s3s-fs");
  await eventually("s3s-fs to listen", () => {
    if (child.failed()) throw new Error(`s3s-fs (${binary}): ${child.stderrTail()} (run deploy/local/ensure-s3s.sh)`);
    return canConnect(port);
  });
  return {
    port,
    /** Gateway environment for the S3 store on this server. */
    env: {
      CHAT_GATEWAY__FILES__STORE: "s3",
      CHAT_GATEWAY__FILES__S3__ENDPOINT: `http://127.0.0.1:${port}`,
      CHAT_GATEWAY__FILES__S3__BUCKET: bucket,
      CHAT_GATEWAY__FILES__S3__ALLOW_HTTP: "true",
      ...S3_CREDENTIALS,
    },
    /** The keys of the objects stored. */
    objects: () => fs.readdirSync(path.join(dir, bucket), { recursive: true }).map(String).filter((f) => !f.split("/").some((p) => p.startsWith("."))),
    stop: () => stop(child),
  };
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * A gateway process. `redisUrl` null runs the embedded engine (as `make run`
 * does). `env` adds `CHAT_*` settings. `port` reuses a port, for restarts.
 */
export async function startGateway({ redisUrl = null, nodeId = "gw", env = {}, port } = {}) {
  port ??= await freePort();
  if (!fs.existsSync(path.join(binDir, "gateway"))) {
    throw new Error(`no gateway binary in ${binDir}: run \`cargo build -p gateway\` (or set CHAT_BIN_DIR)`);
  }
  const settings = {
    PATH: process.env.PATH,
    CHAT_GATEWAY__LISTEN: `127.0.0.1:${port}`,
    CHAT_GATEWAY__NODE_ID: nodeId,
    CHAT_LOG__LEVEL: "warn",
    CHAT_GATEWAY__SHUTDOWN__DRAIN_TIMEOUT_MS: "1000",
    // Each gateway's directory store of its own (a test on S3 overrides the store).
    CHAT_GATEWAY__FILES__DIRECTORY: fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-files-")),
    ...(redisUrl ? { CHAT_GATEWAY__ENGINE: "redis", CHAT_REDIS__URL: redisUrl } : {}),
    ...env,
  };
  const child = run(path.join(binDir, "gateway"), [], settings, nodeId);
  const gateway = {
    nodeId,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    pid: child.pid,
    /** Sends a signal; SIGKILL is a crash. */
    signal: (name) => child.kill(name),
    /** SIGSTOP, once the process is really stopped (Linux): a hung gateway. */
    pause: async () => {
      child.kill("SIGSTOP");
      await eventually("the gateway to stop", () => processState(child.pid) === "T");
    },
    resume: () => child.kill("SIGCONT"),
    kill: () => stop(child, "SIGKILL"),
    stop: () => stop(child),
    /** The same gateway started again on the same port. */
    restart: () => startGateway({ redisUrl, nodeId, env, port }),
  };
  await eventually(`gateway ${nodeId} to be ready`, async () => {
    if (child.failed()) throw new Error(`exited: ${child.stderrTail()}`);
    return (await fetch(`${gateway.httpUrl}/readyz`)).ok;
  });
  return gateway;
}

/**
 * The presence service: it clears the sessions of crashed gateways, which
 * otherwise count against the per-user connection limit until Redis forgets them.
 */
export async function startPresence(redisUrl) {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    CHAT_PRESENCE_SERVICE__LISTEN: `127.0.0.1:${port}`,
    CHAT_REDIS__URL: redisUrl,
    CHAT_LOG__LEVEL: "warn",
  };
  const child = run(path.join(binDir, "presence"), [], env, "presence");
  await eventually("presence to be ready", async () => {
    if (child.failed()) throw new Error(`exited: ${child.stderrTail()}`);
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
  });
  return { port, stop: () => stop(child) };
}

/** A process's state letter from /proc (R, S, T for stopped, …). */
function processState(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

/** A gateway's `gateway token` subcommand: a development JWT. */
export function mintToken(secret, sub, name, rooms, ttlSeconds) {
  const args = [
    "token", "--sub", sub,
    ...(name ? ["--name", name] : []),
    ...(rooms ? ["--rooms", rooms.join(",")] : []),
    ...(ttlSeconds ? ["--ttl", String(ttlSeconds)] : []),
  ];
  const env = { PATH: process.env.PATH, CHAT_AUTH__HS256_SECRET: secret };
  return execFileSync(path.join(binDir, "gateway"), args, { env }).toString().trim();
}

/**
 * haproxy in front of `gateways`, as in the compose stack: round robin,
 * health checks on `/readyz`, and a failed connect retried on another server.
 */
export async function startHaproxy(gateways) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-haproxy-"));
  const config = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(
    config,
    [
      "global",
      "  maxconn 1000",
      "defaults",
      "  mode http",
      "  timeout connect 1s",
      "  timeout client 60s",
      "  timeout server 60s",
      "  timeout tunnel 1h",
      "  retries 3",
      "  option redispatch",
      "frontend chat",
      `  bind 127.0.0.1:${port}`,
      "  default_backend gateways",
      "backend gateways",
      "  balance roundrobin",
      "  option httpchk",
      "  http-check send meth GET uri /readyz",
      "  default-server check inter 300ms fall 1 rise 2",
      ...gateways.map((g) => `  server ${g.nodeId} 127.0.0.1:${g.port}`),
      "",
    ].join("\n"),
  );
  const child = run("haproxy", ["-db", "-f", config], process.env, "haproxy");
  await eventually("haproxy to listen", async () => {
    if (child.failed()) throw new Error(`exited: ${child.stderrTail()}`);
    return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
  });
  return {
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: () => stop(child),
    /** Freezes haproxy (SIGSTOP): its connections go silent, as on a dead network. */
    pause: () => child.kill("SIGSTOP"),
    resume: () => child.kill("SIGCONT"),
  };
}

/** Headless Chromium from Debian's package (override with CHROMIUM). */
export async function launchBrowser() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Calls: a fake camera and microphone, allowed without asking.
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
    ],
  });
}

/**
 * A test with a browser. `body` gets `open(url, options)`, which opens a
 * page in a fresh browser context (its own storage, like another person's
 * browser), or in `options.context` (another tab: `page.context()`).
 * When the test fails, every page's screenshot goes to target/web-test-failures/.
 * A script error on any page fails the test.
 */
export function browserTest(name, body) {
  test(name, async () => {
    const browser = await launchBrowser();
    const pages = [];
    const scriptErrors = [];
    /**
     * @param {string} url
     * @param {{context?: import("playwright-core").BrowserContext, before?: (page: import("playwright-core").Page) => Promise<void>}} [options]
     *   `context`: open in this one (another tab of the same browser); `before`: runs before the page loads
     */
    const open = async (url, { context, before } = {}) => {
      context ??= await browser.newContext({ viewport: { width: 1200, height: 760 } });
      const page = await context.newPage();
      page.on("pageerror", (err) => scriptErrors.push(`${page.url()}: ${err.message}`));
      pages.push(page);
      await before?.(page);
      await page.goto(url);
      return page;
    };
    try {
      await body({ open });
      if (scriptErrors.length) throw new Error(`script errors on the page:\n${scriptErrors.join("\n")}`);
    } catch (err) {
      fs.mkdirSync(failureDir, { recursive: true });
      const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      for (const [i, page] of pages.entries()) {
        const file = path.join(failureDir, `${slug}-page${i + 1}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.error(`screenshot of page ${i + 1}: ${file}`);
      }
      throw err;
    } finally {
      await browser.close();
    }
  });
}

/**
 * Two gateways (`gw-1`, `gw-2`) on one Redis behind haproxy, for the
 * `describe` block that calls this: started before its tests, stopped after.
 * A test that kills a gateway brings it back in place
 * (`Object.assign(gateway, await gateway.restart())`).
 */
export function twoGatewaysBehindHaproxy() {
  const cluster = /** @type {any} */ ({});
  before(async () => {
    cluster.redis = await startRedis();
    cluster.gw1 = await startGateway({ redisUrl: cluster.redis.url, nodeId: "gw-1" });
    cluster.gw2 = await startGateway({ redisUrl: cluster.redis.url, nodeId: "gw-2" });
    cluster.lb = await startHaproxy([cluster.gw1, cluster.gw2]);
  });
  after(async () => {
    await cluster.lb?.stop();
    await cluster.gw1?.stop();
    await cluster.gw2?.stop();
    await cluster.redis?.stop();
  });
  return cluster;
}
