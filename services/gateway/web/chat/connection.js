/**
 * One logical connection to the cluster over successive WebSockets: an
 * explicit state machine, reconnection with backoff, and liveness.
 *
 * ```text
 *   idle ──connect()──▶ connecting ──welcome──▶ open
 *                        │     ▲                  │
 *        attempt failed  │     │ timer, online,   │ socket lost
 *                        ▼     │ page visible     ▼
 *                       reconnecting ◀────────────┘
 *
 *   any state ──close(), or a 1008 close──▶ closed   (final: nothing leaves it)
 * ```
 *
 * Every move goes through {@link Connection#moveTo}, which refuses the
 * moves {@link TRANSITIONS} does not list, so no stale timer or late socket
 * event can bring a closed connection back.
 * @module chat/connection
 */

import { backoffDelay } from "./clock.js";
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";

/** @typedef {import("./clock.js").Clock} Clock */
/** @typedef {"idle" | "connecting" | "open" | "reconnecting" | "closed"} ConnectionState */

/**
 * The moves the connection may make, from each state.
 * @type {Readonly<Record<ConnectionState, readonly ConnectionState[]>>}
 */
export const TRANSITIONS = Object.freeze({
  idle: ["connecting", "closed"],
  connecting: ["open", "reconnecting", "closed"],
  open: ["reconnecting", "closed"],
  reconnecting: ["connecting", "closed"],
  closed: [],
});

/** Close codes after which the connection does not come back by itself. */
export const FINAL_CLOSE_CODES = new Set([1008]);
/**
 * Closes that say the server had trouble with this client (slow consumer,
 * internal error): the backoff keeps growing however long the connection
 * lasted, so that a client is not caught in a fast reconnect loop.
 */
export const BACKOFF_KEEPING_CLOSE_CODES = new Set([4008, 1011]);
/** A connection that lasted this long resets the backoff (unless closed as above). */
export const STABLE_CONNECTION_MS = 5000;
/**
 * How long the server is asked why an attempt failed before the client
 * retries without an answer (a server that hangs must not hold it).
 */
export const DIAGNOSE_TIMEOUT_MS = 2000;
/** Heartbeat assumed when `welcome` names none. */
export const DEFAULT_HEARTBEAT_MS = 25000;

/**
 * @typedef {Object} StateEvent
 * @property {ConnectionState} state
 * @property {number} attempt connection attempts since the last stable connection
 * @property {string} [node] with `open`: the gateway
 * @property {number} [delayMs] with `reconnecting`: the wait before the next attempt
 * @property {number} [code] the close code that ended the last socket, when there was one
 * @property {string} [reason] why the last socket ended
 * @property {boolean} [opened] with `reconnecting`: whether the socket that ended had been welcomed
 * @property {import("./errors.js").ChatError} [error] with `closed`: why, when the client gave up by itself
 * @property {Refusal} [refusal] with `reconnecting`: why the server refused the attempt, when it said
 */

/**
 * Why a handshake was refused, as the server answers a plain `GET` of the
 * same URL (a browser cannot read a refused handshake: it sees 1006).
 * @typedef {Object} Refusal
 * @property {number} status the HTTP status (0: the server could not be reached)
 * @property {string} code the protocol's error code (`unauthorized`, `too_many_connections`, `unavailable`, …)
 * @property {string} message
 */

/**
 * Refusals after which another attempt with the same credentials cannot
 * succeed: the connection closes with a `ChatError` of that code.
 */
export const FINAL_REFUSALS = new Set(["unauthorized", "forbidden", "bad_request"]);

/**
 * @typedef {Object} ConnectionEvents
 * @property {StateEvent} state every move
 * @property {any} welcome the first frame of each socket
 * @property {any} frame every other frame, parsed
 * @property {{code: number, reason: string}} lost a socket that had been
 *   opened is gone (before the move to `reconnecting` or `closed`)
 */

/**
 * @typedef {Object} ConnectionOptions
 * @property {() => (string | Promise<string>)} url the URL for the next attempt (a token may be fetched)
 * @property {typeof WebSocket} WebSocket
 * @property {Clock} clock
 * @property {number} welcomeTimeoutMs how long an attempt waits for `welcome`
 * @property {number} reconnectInitialMs
 * @property {number} reconnectMaxMs
 * @property {EventTarget} [window] `online` and `offline` come from here
 * @property {EventTarget & {visibilityState?: string}} [document] `visibilitychange` comes from here
 * @property {(url: string) => Promise<Refusal | null>} [diagnose] after an attempt that failed before
 *   `welcome`: why it was refused (`null`: it would not be now)
 */

/** See the module documentation. */
export class Connection {
  /** @param {ConnectionOptions} options */
  constructor(options) {
    this.options = options;
    /** @type {Emitter<ConnectionEvents>} */
    this.events = new Emitter();
    /** @type {ConnectionState} */
    this.state = "idle";
    /** Attempts since the last stable connection. */
    this.attempt = 0;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {unknown} */
    this.timer = null;
    /** @type {unknown} */
    this.probeTimer = null;
    /** When the current socket's `welcome` came (0: none yet). */
    this.openedAt = 0;
    /** When the last frame came. */
    this.lastFrameAt = 0;
    this.heartbeatMs = DEFAULT_HEARTBEAT_MS;
    /** @type {Array<() => void>} */
    this.unlisten = [];
    /** The URL of the current attempt (for {@link ConnectionOptions.diagnose}). */
    this.attemptUrl = "";
  }

  /**
   * Moves to `state` if {@link TRANSITIONS} allows it, and tells.
   * @param {ConnectionState} state
   * @param {Omit<StateEvent, "state" | "attempt">} [details]
   * @returns {boolean} whether it moved
   */
  moveTo(state, details = {}) {
    if (!TRANSITIONS[this.state].includes(state)) return false;
    this.state = state;
    this.events.emit("state", { state, attempt: this.attempt, ...details });
    return true;
  }

  /** Starts connecting (from `idle` only). */
  open() {
    if (this.state !== "idle") return;
    this.listenToEnvironment();
    this.attemptNow();
  }

  /**
   * Closes for good: the socket, the timers, the listeners.
   * @param {import("./errors.js").ChatError} [error] why, when the client gives up by itself
   */
  close(error) {
    if (this.state === "closed") return;
    this.clearTimers();
    this.dropSocket(1000, "closed by the client");
    for (const unlisten of this.unlisten.splice(0)) unlisten();
    this.moveTo("closed", error ? { reason: error.message, error } : { reason: "closed by the client" });
  }

  /**
   * Sends a frame on the open socket.
   * @param {string} data
   * @returns {boolean} false when there is no open socket (nothing was sent)
   */
  send(data) {
    if (this.state !== "open" || !this.socket) return false;
    try {
      this.socket.send(data);
      return true;
    } catch {
      return false; // closing; its close event follows
    }
  }

  /** @private */
  async attemptNow() {
    if (!this.moveTo("connecting")) return;
    let url;
    try {
      url = await this.options.url();
    } catch (err) {
      if (this.state === "connecting") this.retryLater(0, `no URL: ${/** @type {Error} */ (err)?.message ?? err}`);
      return;
    }
    // close() while the URL (a token) was fetched.
    if (this.state !== "connecting") return;
    /** @type {WebSocket} */
    let socket;
    try {
      socket = new this.options.WebSocket(url);
    } catch (err) {
      this.retryLater(0, String(/** @type {Error} */ (err)?.message ?? err));
      return;
    }
    this.socket = socket;
    this.attemptUrl = url;
    this.openedAt = 0;
    this.timer = this.options.clock.setTimeout(() => {
      if (this.socket === socket && this.state === "connecting") this.lost(socket, 0, "no welcome in time");
    }, this.options.welcomeTimeoutMs);
    socket.onmessage = (event) => this.onMessage(socket, event);
    socket.onclose = (event) => this.lost(socket, event.code, event.reason);
    // Browsers follow an error with a close event; Node 20's WebSocket does
    // not when the connect fails.
    socket.onerror = () => this.lost(socket, 1006, "connection failed");
  }

  /**
   * @param {WebSocket} socket
   * @param {MessageEvent} event
   * @private
   */
  onMessage(socket, event) {
    if (this.socket !== socket) return;
    this.lastFrameAt = this.options.clock.now();
    let frame;
    try {
      frame = JSON.parse(typeof event.data === "string" ? event.data : String(event.data));
    } catch {
      return;
    }
    if (frame?.type === "welcome" && this.state === "connecting") {
      this.options.clock.clearTimeout(this.timer);
      this.openedAt = this.lastFrameAt;
      this.heartbeatMs = Math.max(1000, frame.heartbeat_ms || DEFAULT_HEARTBEAT_MS);
      if (!this.moveTo("open", { node: frame.node })) return;
      this.scheduleProbe();
      this.events.emit("welcome", frame);
      return;
    }
    this.events.emit("frame", frame);
  }

  /**
   * The socket is gone: why, and what next (another attempt, or the end).
   * @param {WebSocket} socket
   * @param {number} code
   * @param {string} reason
   * @private
   */
  lost(socket, code, reason) {
    if (this.socket !== socket) return;
    const wasOpen = this.openedAt !== 0;
    const stable = wasOpen && this.options.clock.now() - this.openedAt >= STABLE_CONNECTION_MS;
    if (stable && !BACKOFF_KEEPING_CLOSE_CODES.has(code)) this.attempt = 0;
    this.clearTimers();
    this.dropSocket(1000, "reconnecting");
    if (wasOpen) this.events.emit("lost", { code, reason });
    if (FINAL_CLOSE_CODES.has(code)) {
      for (const unlisten of this.unlisten.splice(0)) unlisten();
      this.moveTo("closed", { code, reason });
      return;
    }
    // A refused handshake shows as 1006 before any frame; an attempt that
    // got no `welcome` in time was not refused (the server is slow or gone):
    // asking why would only wait longer.
    if (!wasOpen && code === 1006 && this.options.diagnose) {
      this.diagnoseThenRetry(this.attemptUrl, code, reason);
      return;
    }
    this.retryLater(code, reason, wasOpen);
  }

  /**
   * An attempt failed before `welcome`: asks the server why, then closes
   * (a refusal no retry can pass) or waits out the backoff, telling why.
   * @param {string} url
   * @param {number} code
   * @param {string} reason
   * @private
   */
  async diagnoseThenRetry(url, code, reason) {
    /** @type {Refusal | null} */
    let refusal = null;
    const { clock } = this.options;
    /** @type {unknown} */
    let timer = null;
    const giveUp = new Promise((resolve) => {
      timer = clock.setTimeout(() => resolve(null), DIAGNOSE_TIMEOUT_MS);
    });
    try {
      refusal = (await Promise.race([this.options.diagnose?.(url), giveUp])) ?? null;
    } catch {
      // No diagnosis: retry as if none had been asked.
    } finally {
      clock.clearTimeout(timer);
    }
    // close() while the server was asked.
    if (this.state !== "connecting") return;
    if (refusal && FINAL_REFUSALS.has(refusal.code)) {
      this.close(new ChatError(refusal.code, refusal.message));
      return;
    }
    this.retryLater(code, refusal ? `${refusal.code}: ${refusal.message}` : reason, false, refusal ?? undefined);
  }

  /**
   * Waits out the backoff, then attempts again.
   * @param {number} code
   * @param {string} reason
   * @param {boolean} [opened] whether the socket that ended had been welcomed
   * @param {Refusal} [refusal] why the server refused the attempt
   * @private
   */
  retryLater(code, reason, opened = false, refusal = undefined) {
    const { reconnectInitialMs, reconnectMaxMs, clock } = this.options;
    const delayMs = backoffDelay(this.attempt, reconnectInitialMs, reconnectMaxMs);
    this.attempt += 1;
    // The move comes first, the timer after, and only if no `state`
    // handler closed the connection meanwhile: nothing rearms after close().
    this.moveTo("reconnecting", refusal ? { delayMs, code, reason, opened, refusal } : { delayMs, code, reason, opened });
    if (this.state !== "reconnecting") return;
    this.timer = clock.setTimeout(() => this.attemptNow(), delayMs);
  }

  /**
   * The network came back or the page became visible: while waiting to
   * reconnect, try now; while open, check the socket is alive now rather
   * than after up to three heartbeats.
   * @private
   */
  wake() {
    if (this.state === "reconnecting") {
      this.options.clock.clearTimeout(this.timer);
      this.attempt = 0;
      this.attemptNow();
    } else if (this.state === "open") {
      this.probe();
    }
  }

  /**
   * Every heartbeat without a frame: a `ping`, and a socket that stays
   * silent for another heartbeat is dead (a browser cannot see WebSocket
   * pings, nor a peer that vanished).
   * @private
   */
  scheduleProbe() {
    const { clock } = this.options;
    clock.clearTimeout(this.probeTimer);
    const quietFor = clock.now() - this.lastFrameAt;
    this.probeTimer = clock.setTimeout(() => {
      if (this.state !== "open") return;
      if (clock.now() - this.lastFrameAt >= this.heartbeatMs) this.probe();
      else this.scheduleProbe();
    }, Math.max(1, this.heartbeatMs - quietFor));
  }

  /**
   * Sends a `ping`; no frame within a heartbeat means the socket is dead.
   * @private
   */
  probe() {
    const { clock } = this.options;
    const socket = this.socket;
    if (!socket) return;
    const askedAt = clock.now();
    this.send(JSON.stringify({ type: "ping" }));
    clock.clearTimeout(this.probeTimer);
    this.probeTimer = clock.setTimeout(() => {
      if (this.socket !== socket || this.state !== "open") return;
      if (this.lastFrameAt >= askedAt) this.scheduleProbe();
      else this.lost(socket, 0, "no reply to ping");
    }, this.heartbeatMs);
  }

  /** @private */
  listenToEnvironment() {
    const { window, document } = this.options;
    /**
     * @param {EventTarget | undefined} target
     * @param {string} type
     * @param {() => void} handler
     */
    const listen = (target, type, handler) => {
      if (!target) return;
      target.addEventListener(type, handler);
      this.unlisten.push(() => target.removeEventListener(type, handler));
    };
    listen(window, "online", () => this.wake());
    listen(window, "offline", () => this.state === "open" && this.probe());
    listen(document, "visibilitychange", () => document?.visibilityState === "visible" && this.wake());
  }

  /** @private */
  clearTimers() {
    this.options.clock.clearTimeout(this.timer);
    this.options.clock.clearTimeout(this.probeTimer);
  }

  /**
   * Detaches the current socket, so its late events are ignored, and closes it.
   * @param {number} code
   * @param {string} reason
   * @private
   */
  dropSocket(code, reason) {
    const socket = this.socket;
    this.socket = null;
    this.openedAt = 0;
    if (!socket) return;
    socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}
