/**
 * Requests and their replies.
 *
 * - A request gets an `id` and resolves with the reply that carries it as
 *   `re`, or rejects with a {@link ChatError} (the server's `error` frame, or
 *   one of the client's codes).
 * - It waits, in order, while the connection is not open, and while its
 *   `gate` is shut (a room's `send` waits until the room is joined). At most
 *   `maxPendingRequests` wait or fly at once.
 * - Its timeout starts when it is **sent**: time spent waiting for the
 *   connection or a gate does not count.
 * - Frames go out paced a tenth below the connection's rate from
 *   `welcome.limits`, so that a burst never trips `rate_limited`.
 * - When the connection is lost while a request is in flight, its
 *   {@link Replay} rule decides: sent again after the next `welcome`
 *   (`always`: reads, joins, leaves), sent again only inside the server's
 *   `client_id` window counted from its first sending (`idempotent`:
 *   `send`, `dm`; past it a retry could store it twice, so it is rejected
 *   with `expired`), or rejected with `closed` (`never`).
 * @module chat/requests
 */

import { ChatError } from "./errors.js";

/** @typedef {import("./clock.js").Clock} Clock */
/** @typedef {"always" | "idempotent" | "never"} Replay */

const utf8 = new TextEncoder();

/** A `send` or `dm` that may not be sent again: its first sending is outside the `client_id` window. */
function expired() {
  const message = "no reply before the connection was lost, and too long ago to send again safely; it may have been stored";
  return new ChatError("expired", message);
}

/**
 * @typedef {Object} RequestOptions
 * @property {Replay} [replay="always"]
 * @property {() => boolean} [gate] the request waits while this is false
 * @property {(reply: any) => void} [onReply] runs as the reply is read, before any later frame
 * @property {boolean} [counted=true] counts against `maxPendingRequests`
 * @property {string} [owner] a tag for {@link Requests#rejectOwned} (a room's name)
 */

/**
 * @typedef {Object} Entry
 * @property {number} id
 * @property {Record<string, any>} frame
 * @property {(reply: any) => void} resolve
 * @property {(error: ChatError) => void} reject
 * @property {Replay} replay
 * @property {(() => boolean) | undefined} gate
 * @property {((reply: any) => void) | undefined} onReply
 * @property {boolean} counted
 * @property {string | undefined} owner
 * @property {boolean} sent on the current socket, awaiting the reply
 * @property {number} firstSentAt 0 until first sent
 * @property {unknown} timer
 */

/**
 * @typedef {Object} RequestsOptions
 * @property {(data: string) => boolean} send puts a frame on the open socket
 * @property {Clock} clock
 * @property {number} timeoutMs
 * @property {number} maxPending
 * @property {number} clientIdWindowMs
 */

/** See the module documentation. */
export class Requests {
  /** @param {RequestsOptions} options */
  constructor(options) {
    this.options = options;
    /** @type {Map<number, Entry>} in the order they were made */
    this.pending = new Map();
    this.nextId = 1;
    /** Whether the connection is open (requests go out). */
    this.open = false;
    /** @type {number | undefined} from `welcome.limits` */
    this.maxFrameBytes = undefined;
    /** The connection's rate, mirrored: tokens per second, tokens now, refilled when. */
    this.rate = { perSecond: 1, tokens: 1, at: 0 };
    /** @type {unknown} */
    this.pumpTimer = null;
    /** @type {ChatError | null} set by {@link Requests#close} */
    this.closedWith = null;
  }

  /** Requests counted against `maxPendingRequests`. */
  get count() {
    let n = 0;
    for (const entry of this.pending.values()) if (entry.counted) n += 1;
    return n;
  }

  /**
   * @param {Record<string, any>} frame without `id`
   * @param {RequestOptions} [options]
   * @returns {Promise<any>}
   */
  request(frame, { replay = "always", gate, onReply, counted = true, owner } = {}) {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (counted && this.count >= this.options.maxPending) {
      return Promise.reject(new ChatError("queue_full", `${this.count} requests are already waiting`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      /** @type {Entry} */
      const entry = {
        id,
        frame: { ...frame, id },
        resolve,
        reject,
        replay,
        gate,
        onReply,
        counted,
        owner,
        sent: false,
        firstSentAt: 0,
        timer: null,
      };
      this.pending.set(id, entry);
      this.pump();
    });
  }

  /**
   * The connection is open: take its limits, and send what waits.
   * @param {{limits?: Record<string, number>}} welcome
   */
  opened(welcome) {
    const limits = welcome.limits ?? {};
    this.maxFrameBytes = limits.max_frame_bytes;
    // A tenth below the server's rate, so that timer jitter never trips it.
    const perSecond = Math.min(limits.messages_per_second || 20, limits.user_messages_per_second || Infinity);
    const pace = Math.max(1, Math.floor(perSecond * 0.9));
    this.rate = { perSecond: pace, tokens: pace, at: this.options.clock.now() };
    this.open = true;
    this.pump();
  }

  /**
   * The connection was lost: each request in flight follows its replay rule.
   * @param {number} code the close code
   */
  lost(code) {
    this.open = false;
    this.options.clock.clearTimeout(this.pumpTimer);
    const now = this.options.clock.now();
    for (const entry of [...this.pending.values()]) {
      if (!entry.sent) continue;
      entry.sent = false;
      this.options.clock.clearTimeout(entry.timer);
      if (code === 1009) {
        // Sending it again would close the next connection too.
        this.settle(entry, null, new ChatError("too_large", "the server refused a frame over max_frame_bytes"));
      } else if (entry.replay === "never") {
        this.settle(entry, null, new ChatError("closed", "the connection closed before the reply"));
      } else if (entry.replay === "idempotent" && now - entry.firstSentAt > this.options.clientIdWindowMs) {
        this.settle(entry, null, expired());
      }
    }
  }

  /**
   * A frame from the server: true when it was a reply to a request.
   * @param {any} frame
   * @returns {boolean}
   */
  receive(frame) {
    const entry = frame?.re !== undefined ? this.pending.get(frame.re) : undefined;
    if (!entry) return false;
    const error = frame.type === "error" ? new ChatError(frame.code, frame.message, frame.retry_after_ms) : null;
    this.settle(entry, frame, error);
    return true;
  }

  /**
   * A `send` or `dm` that is waiting to be sent again turned out to be
   * stored (its event came, with its `client_id`, in a re-join's history):
   * it resolves with an `ack` made from the event, and is not sent again.
   * @param {string} clientId
   * @param {{seq: number, ts: number, room?: string, to?: string}} ack
   */
  stored(clientId, ack) {
    for (const entry of this.pending.values()) {
      if (entry.frame.client_id === clientId && !entry.sent && entry.firstSentAt) {
        this.settle(entry, { type: "ack", ...ack }, null);
        return;
      }
    }
  }

  /**
   * The end: every request rejects with `error`, now and from now on.
   * @param {ChatError} error
   */
  close(error) {
    this.closedWith = error;
    this.open = false;
    this.options.clock.clearTimeout(this.pumpTimer);
    for (const entry of [...this.pending.values()]) this.settle(entry, null, error);
  }

  /**
   * Rejects the requests of `owner` that have not been sent.
   * @param {string} owner
   * @param {ChatError} error
   */
  rejectOwned(owner, error) {
    for (const entry of [...this.pending.values()]) {
      if (entry.owner === owner && !entry.sent) this.settle(entry, null, error);
    }
  }

  /**
   * Takes a rate token for a frame sent outside the queue (`typing`); false
   * when the queue is waiting for tokens or none is free.
   * @returns {boolean}
   */
  takeToken() {
    const rate = this.rate;
    const now = this.options.clock.now();
    rate.tokens = Math.min(rate.perSecond, rate.tokens + ((now - rate.at) / 1000) * rate.perSecond);
    rate.at = now;
    if (rate.tokens < 1) return false;
    rate.tokens -= 1;
    return true;
  }

  /** Sends what may go, in order, as fast as the rate allows. */
  pump() {
    const { clock } = this.options;
    clock.clearTimeout(this.pumpTimer);
    if (!this.open) return;
    for (const entry of this.pending.values()) {
      if (entry.sent || (entry.gate && !entry.gate())) continue;
      if (!this.takeToken()) {
        const waitMs = Math.ceil(((1 - this.rate.tokens) / this.rate.perSecond) * 1000);
        this.pumpTimer = clock.setTimeout(() => this.pump(), Math.max(1, waitMs));
        return;
      }
      this.transmit(entry);
      if (!this.open) return;
    }
  }

  /**
   * @param {Entry} entry
   * @private
   */
  transmit(entry) {
    const { clock, timeoutMs, clientIdWindowMs } = this.options;
    if (entry.replay === "idempotent" && entry.firstSentAt && clock.now() - entry.firstSentAt > clientIdWindowMs) {
      this.settle(entry, null, expired());
      return;
    }
    const data = JSON.stringify(entry.frame);
    const max = this.maxFrameBytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: only a frame near the limit is encoded to count.
    if (max && data.length * 3 > max && utf8.encode(data).length > max) {
      this.settle(entry, null, new ChatError("too_large", `the frame is over ${max} bytes`));
      return;
    }
    if (!this.options.send(data)) {
      this.open = false; // the socket is going; its loss is reported next
      return;
    }
    entry.sent = true;
    if (!entry.firstSentAt) entry.firstSentAt = clock.now();
    entry.timer = clock.setTimeout(() => {
      this.settle(entry, null, new ChatError("timeout", `no reply to ${entry.frame.type} within ${timeoutMs} ms`));
    }, timeoutMs);
  }

  /**
   * @param {Entry} entry
   * @param {any} reply
   * @param {ChatError | null} error
   * @private
   */
  settle(entry, reply, error) {
    if (this.pending.get(entry.id) !== entry) return;
    this.pending.delete(entry.id);
    this.options.clock.clearTimeout(entry.timer);
    if (error) {
      // A send or dm that failed can be retried with the same key, so that
      // the server stores it once if the first try was stored after all.
      if (entry.frame.client_id) error.clientId = entry.frame.client_id;
      entry.reject(error);
    } else {
      try {
        entry.onReply?.(reply);
      } catch (err) {
        console.error("chat: handling a reply failed", err);
      }
      entry.resolve(reply);
    }
    // A gate may have opened (a room joined), and a place came free.
    if (this.open) this.pump();
  }
}
