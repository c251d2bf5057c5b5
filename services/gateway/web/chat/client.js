/**
 * {@link ChatClient}: one user's view of the chat cluster, composed of a
 * {@link Connection} (states, reconnects, liveness), {@link Requests}
 * (replies, timeouts, replay, pacing), one {@link Room} per room followed,
 * and the user's DM {@link Conversations} (with each one's read state, a
 * {@link Conversation}). Protocol 1.1 adds `inbox()` (every room's and
 * conversation's read state) and `setStatus()`.
 * @module chat/client
 */

import { realClock } from "./clock.js";
import { Connection, DIAGNOSE_TIMEOUT_MS } from "./connection.js";
import { Conversation, Conversations } from "./dms.js";
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
import { Requests } from "./requests.js";
import { Room } from "./room.js";

/** @typedef {import("./clock.js").Clock} Clock */
/** @typedef {import("./connection.js").ConnectionState} ConnectionState */
/** @typedef {import("./connection.js").StateEvent} StateEvent */
/** @typedef {import("./dms.js").DirectMessage} DirectMessage */
/** @typedef {import("./frames.js").User} User */
/** @typedef {import("./frames.js").Welcome} Welcome */
/** @typedef {import("./frames.js").Ack} Ack */
/** @typedef {import("./frames.js").Status} Status */
/** @typedef {import("./frames.js").Inbox} Inbox */
/**
 * @typedef {Object} ClientEvents
 * @property {StateEvent} state every move of the connection
 * @property {Welcome} welcome each connection's first frame
 * @property {DirectMessage} dm each DM once, each conversation in seq order (this client's own included)
 * @property {{type: "notice", data: any}} notice an operator's broadcast, or a notice to this user
 * @property {Signal} signal a `signal` from another session (call set-up and other device-to-device messages)
 * @property {ChatError} error an `error` frame no request was waiting for
 */

/**
 * A relayed `signal`. Reply to the one session that sent it with
 * `client.signal(from.id, data, session)`.
 * @typedef {Object} Signal
 * @property {"signal"} type
 * @property {{id: string, name: string}} from
 * @property {string} session the sending session's id
 * @property {any} data
 */

/**
 * A file uploaded with {@link ChatClient#upload}: attach it to a message
 * with `room.send(text, {attachments: [file.id]})`.
 * @typedef {Object} UploadedFile
 * @property {string} id
 * @property {string} room
 * @property {string} name
 * @property {number} size bytes
 * @property {string} content_type
 * @property {string} url the path to download it from, on any gateway (see {@link ChatClient#fileUrl})
 */

/**
 * @typedef {Object} ChatOptions
 * @property {string} [token] a JWT, for gateways in `jwt` mode
 * @property {() => (string | Promise<string>)} [getToken] called before every
 *   connection attempt, for tokens that expire
 * @property {string} [name] display name, for gateways in `anonymous` mode
 * @property {string} [user] user id, for gateways in `anonymous` mode; without
 *   one, the id the server makes up is kept for reconnects
 * @property {number} [requestTimeoutMs] how long a sent request waits for its reply (10000)
 * @property {number} [reconnectInitialMs] first reconnect delay, before jitter (500)
 * @property {number} [reconnectMaxMs] largest reconnect delay (30000)
 * @property {number} [maxPendingRequests] requests waiting or in flight, at most (500)
 * @property {number} [clientIdWindowMs] how long after its first sending a
 *   `send` or `dm` whose reply was lost may be sent again (270000: inside the
 *   server's 5-minute `client_id` window)
 * @property {number} [dmSeqsPerConversation] DM seqs remembered per conversation (1000)
 * @property {number} [maxDmConversations] conversations remembered (1000)
 * @property {typeof WebSocket} [WebSocket] where there is no global one
 * @property {typeof fetch | null} [fetch] asks the gateway why a connection attempt was refused
 *   (default: the global `fetch`; `null`: never ask)
 * @property {Clock} [clock] time, for tests
 * @property {EventTarget} [window] `online`/`offline` (default: the browser's `window`)
 * @property {EventTarget & {visibilityState?: string}} [document] `visibilitychange` (default: the browser's `document`)
 */

/** How long after a receipt `inbox` is asked for a count only the server knows (its lag is at most 2 s). */
const INBOX_REFRESH_DELAY_MS = 2500;

const DEFAULTS = {
  requestTimeoutMs: 10000,
  reconnectInitialMs: 500,
  reconnectMaxMs: 30000,
  maxPendingRequests: 500,
  clientIdWindowMs: 270000,
  dmSeqsPerConversation: 1000,
  maxDmConversations: 1000,
};

/** A new idempotency key. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * The `exp` claim of a JWT (seconds), read without checking the signature
 * (the server checks it); undefined when there is none or it cannot be read.
 * @param {string} token
 * @returns {number | undefined}
 */
export function jwtExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "="))).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A promise with its settling functions beside it.
 * @returns {{resolve: (w: Welcome) => void, reject: (e: ChatError) => void, promise: Promise<Welcome>}}
 */
function deferred() {
  /** @type {any} */
  const settle = {};
  /** @type {Promise<Welcome>} */
  const promise = new Promise((resolve, reject) => {
    settle.resolve = resolve;
    settle.reject = reject;
  });
  return { resolve: settle.resolve, reject: settle.reject, promise };
}

/**
 * Why the server refuses a handshake to `url`: a plain `GET` of the same URL
 * answers the refusal (status and JSON error body), or 426 when nothing
 * would refuse it now (then `null`: a passing fault). A server that cannot
 * be reached is `{status: 0, code: "unavailable"}`.
 * @param {string} url the `ws:` or `wss:` URL of the attempt
 * @param {typeof fetch} fetchImpl
 * @returns {Promise<import("./connection.js").Refusal | null>}
 */
export async function refusalOf(url, fetchImpl) {
  const http = new URL(url);
  http.protocol = http.protocol === "wss:" ? "https:" : "http:";
  let response;
  try {
    response = await fetchImpl(http.toString(), {
      cache: "no-store",
      credentials: "omit",
      // Not left hanging after the connection stopped waiting for it.
      signal: typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(DIAGNOSE_TIMEOUT_MS) : undefined,
    });
  } catch {
    return { status: 0, code: "unavailable", message: "the server cannot be reached" };
  }
  if (response.status === 426 || response.ok) return null;
  /** @type {any} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not the gateway's JSON (a proxy's page): the status says enough.
  }
  const code = typeof body?.error?.code === "string" ? body.error.code : response.status >= 500 ? "unavailable" : "refused";
  const message = typeof body?.error?.message === "string" ? body.error.message : `HTTP ${response.status}`;
  return { status: response.status, code, message };
}

/** A WebSocket client of one chat cluster. */
export class ChatClient {
  /**
   * @param {string} url the gateway's WebSocket URL, e.g. `wss://chat.example.com/ws`
   * @param {ChatOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (!WebSocketImpl) {
      throw new Error(
        "no WebSocket here: pass options.WebSocket (e.g. from the ws package), " +
          "or use Node 22+ (Node 20: --experimental-websocket)",
      );
    }
    const clock = options.clock ?? realClock;
    /** @type {typeof fetch | null | undefined} */
    const fetchImpl = "fetch" in options ? options.fetch : globalThis.fetch?.bind(globalThis);
    const browser = /** @type {any} */ (globalThis);
    /** @type {Emitter<ClientEvents>} */
    this.events = new Emitter();
    this.connection = new Connection({
      url: () => this.connectUrl(),
      WebSocket: WebSocketImpl,
      clock,
      welcomeTimeoutMs: this.options.requestTimeoutMs,
      reconnectInitialMs: this.options.reconnectInitialMs,
      reconnectMaxMs: this.options.reconnectMaxMs,
      window: options.window ?? browser.window,
      document: options.document ?? browser.document,
      diagnose: fetchImpl ? (url) => refusalOf(url, fetchImpl) : undefined,
    });
    this.requests = new Requests({
      send: (data) => this.connection.send(data),
      clock,
      timeoutMs: this.options.requestTimeoutMs,
      maxPending: this.options.maxPendingRequests,
      clientIdWindowMs: this.options.clientIdWindowMs,
    });
    this.clock = clock;
    /** @type {Map<string, Room>} */
    this.rooms = new Map();
    this.conversations = new Conversations({
      seqsPerConversation: this.options.dmSeqsPerConversation,
      maxConversations: this.options.maxDmConversations,
      emit: (dm) => {
        const me = this.welcome?.user.id ?? "";
        this.conversation(Conversations.other(dm, me)).received(dm);
        this.events.emit("dm", dm);
      },
    });
    /**
     * @type {Map<string, Conversation>} read state by the other user's id, least recently used first
     * @private
     */
    this.readStates = new Map();
    /** @type {Status | null} the status this user set (`setStatus`), set again after a reconnect */
    this.status = null;
    /**
     * @type {unknown} an `inbox` to ask soon
     * @private
     */
    this.inboxTimer = null;
    /** @type {Welcome | null} the latest `welcome` */
    this.welcome = null;
    /** @type {string | undefined} the token of the latest attempt or upload (for file URLs) */
    this.lastToken = options.token;
    /** @type {{resolve: (w: Welcome) => void, reject: (e: ChatError) => void, promise: Promise<Welcome>} | null} */
    this.firstWelcome = null;
    this.connection.events.on("state", (event) => this.onState(event));
    this.connection.events.on("welcome", (welcome) => this.onWelcome(welcome));
    this.connection.events.on("frame", (frame) => this.onFrame(frame));
    this.connection.events.on("lost", ({ code }) => {
      this.requests.lost(code);
      for (const room of this.rooms.values()) room.connectionLost();
    });
  }

  /** @returns {ConnectionState} */
  get state() {
    return this.connection.state;
  }

  /**
   * Subscribes to a client event; returns a function that unsubscribes.
   * @template {keyof ClientEvents} K
   * @param {K} type
   * @param {(event: ClientEvents[K]) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    return this.events.on(type, handler);
  }

  /**
   * Opens the connection; resolves with the first `welcome`, and keeps the
   * connection (reconnecting as needed) until {@link ChatClient#close}.
   * Rejects with `closed` if the client is closed first.
   * @returns {Promise<Welcome>}
   */
  connect() {
    if (this.state === "closed") return Promise.reject(new ChatError("closed", "the client is closed"));
    if (this.welcome && this.state === "open") return Promise.resolve(this.welcome);
    const first = this.firstWelcome ?? deferred();
    this.firstWelcome = first;
    this.connection.open();
    return first.promise;
  }

  /** Closes for good: waiting requests reject with `closed`, nothing reconnects. */
  close() {
    this.connection.close();
  }

  /**
   * The room `name` as this client follows it (the same object every time).
   * Call `join()` on it to join.
   * @param {string} name
   * @returns {Room}
   */
  room(name) {
    let room = this.rooms.get(name);
    if (!room) {
      room = new Room(name, {
        requests: this.requests,
        isOpen: () => this.state === "open",
        sendNow: (data) => this.connection.send(data),
        later: (ms, fn) => void this.clock.setTimeout(fn, ms),
        reconnectInitialMs: this.options.reconnectInitialMs,
        newClientId,
        me: () => this.welcome?.user.id,
        refreshInbox: () => this.refreshInbox(),
      });
      this.rooms.set(name, room);
    }
    return room;
  }

  /**
   * The read state of this user's conversation with `user` (the same object
   * every time, while among the `maxDmConversations` used most recently).
   * @param {string} user the other user's id
   * @returns {Conversation}
   */
  conversation(user) {
    let conversation = this.readStates.get(user);
    if (conversation) this.readStates.delete(user);
    conversation ??= new Conversation(user, {
      requests: this.requests,
      me: () => this.welcome?.user.id,
      refreshInbox: () => this.refreshInbox(),
    });
    this.readStates.set(user, conversation);
    if (this.readStates.size > this.options.maxDmConversations) {
      const oldest = this.readStates.keys().next().value;
      if (oldest !== undefined) this.readStates.delete(oldest);
    }
    return conversation;
  }

  /**
   * Every room and DM conversation in which this user has a read cursor,
   * newest activity first (protocol 1.1); the rooms followed and the
   * conversations take their read state from it.
   * @returns {Promise<Inbox>}
   */
  async inbox() {
    const reply = await this.requests.request({ type: "inbox" });
    const inbox = { rooms: reply.rooms ?? [], dms: reply.dms ?? [] };
    for (const entry of inbox.rooms) this.rooms.get(entry.room)?.onInbox(entry);
    for (const entry of inbox.dms) this.conversation(entry.dm).onInbox(entry);
    return inbox;
  }

  /**
   * After a reconnect: conversations this client had not seen that got DMs
   * meanwhile (another device of the user took them live, so the offline
   * queue did not) are named by `inbox`; each catches up on what is unread,
   * from its cursor.
   * @param {Set<string>} known the conversations already catching up
   * @private
   */
  async catchUpNewConversations(known) {
    let inbox;
    try {
      inbox = await this.inbox();
    } catch {
      return; // the next reconnect (or opening the conversation) brings them
    }
    for (const entry of inbox.dms) {
      const other = entry.dm;
      if (!other || known.has(other) || entry.seq <= entry.read_seq) continue;
      this.conversations.startOne(other);
      this.conversations.catchUp(other, entry.read_seq, (options) => this.dmHistory(other, options));
    }
  }

  /**
   * Sets this user's presence status, for all their sessions (protocol
   * 1.1); it is set again after a reconnect.
   * @param {Status["state"]} state
   * @param {string} [text] at most 128 bytes
   * @returns {Promise<Status>}
   */
  async setStatus(state, text = "") {
    this.status = { state, text };
    const reply = await this.requests.request({ type: "status", state, text });
    this.status = { state: reply.state, text: reply.text ?? "" };
    return this.status;
  }

  /**
   * Asks `inbox` soon (once, however often called meanwhile): for a count
   * only the server knows, after this user read elsewhere.
   * @private
   */
  refreshInbox() {
    if (this.inboxTimer !== null) return;
    this.inboxTimer = this.clock.setTimeout(() => {
      this.inboxTimer = null;
      if (this.state === "open") this.inbox().catch(() => {});
    }, INBOX_REFRESH_DELAY_MS);
  }

  /**
   * Sends a direct message; resolves with its `ack` (`delivered: false`
   * when the recipient had no session: it is kept for their next one). The
   * DM is also emitted as a `dm` event, as the sender's other sessions get it.
   * @param {string} to user id
   * @param {string} text
   * @param {{clientId?: string}} [options] idempotency key (one is made up)
   * @returns {Promise<Ack>}
   */
  dm(to, text, { clientId = newClientId() } = {}) {
    const echo = (/** @type {Ack} */ ack) => {
      const from = this.welcome?.user;
      if (!from) return;
      /** @type {DirectMessage} */
      const dm = { type: "dm", from, to, text, ts: ack.ts, seq: ack.seq, client_id: clientId };
      this.conversations.receive(dm, from.id);
    };
    return this.requests.request({ type: "dm", to, text, client_id: clientId }, { replay: "idempotent", onReply: echo });
  }

  /**
   * A page of this user's conversation with `user`, oldest first: the
   * newest `limit` DMs before `before`, or the oldest `limit` after `after`.
   * @param {string} user the other user's id
   * @param {{before?: number, after?: number, limit?: number}} [options]
   * @returns {Promise<DirectMessage[]>}
   */
  async dmHistory(user, { before, after, limit } = {}) {
    // Options left undefined are not sent (JSON has no undefined).
    return (await this.requests.request({ type: "history", dm: user, before, after, limit })).messages;
  }

  /**
   * Relays `data` at once to every session of `to` (or to its one
   * `session`): never stored, and lost for sessions that are not connected.
   * A signal to this client's own user goes to its other sessions.
   * @param {string} to a user id
   * @param {any} data any JSON value, at most `welcome.limits.max_signal_bytes` as compact JSON
   * @param {string} [session] one session of `to` (from a {@link Signal} it sent)
   * @returns {Promise<number>} how many sessions it went to (0: none connected)
   */
  async signal(to, data, session) {
    return (await this.requests.request({ type: "signal", to, data, session })).delivered;
  }

  /**
   * Uploads a file to `room` (one the user may join), streaming it to the
   * gateway; attach it to a message with `room.send(text, {attachments:
   * [file.id]})` within the hour, or it is removed. Refused uploads reject
   * with the server's code: `too_large` (over 10 MiB by default),
   * `unsupported_type` (a type not allowed, or bytes that are not what the
   * type says), `forbidden`, `rate_limited`, `unauthorized`, `unavailable`.
   * @param {Blob & {name?: string}} file a browser `File`, or any `Blob`
   * @param {string} room
   * @param {{name?: string, onProgress?: (sent: number, total: number) => void}} [options]
   *   the file's name (default: the `File`'s); progress of the upload
   * @returns {Promise<UploadedFile>}
   */
  async upload(file, room, { name, onProgress } = {}) {
    const url = await this.httpUrl("/v1/files", { room, filename: name ?? file.name ?? "file" });
    const contentType = file.type || "application/octet-stream";
    const XHR = /** @type {any} */ (globalThis).XMLHttpRequest;
    /** @type {{status: number, body: any}} */
    const reply = XHR
      ? await new Promise((resolve, reject) => {
          // XMLHttpRequest: the one browser API that reports upload progress.
          const xhr = new XHR();
          xhr.open("POST", url);
          xhr.setRequestHeader("content-type", contentType);
          xhr.responseType = "json";
          if (onProgress) xhr.upload.onprogress = (/** @type {ProgressEvent} */ e) => onProgress(e.loaded, e.total || file.size);
          xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
          xhr.onerror = () => reject(new ChatError("unavailable", "the upload could not reach the server"));
          xhr.send(file);
        })
      : await fetch(url, { method: "POST", headers: { "content-type": contentType }, body: file }).then(
          async (response) => ({ status: response.status, body: await response.json().catch(() => null) }),
          () => {
            throw new ChatError("unavailable", "the upload could not reach the server");
          },
        );
    if (reply.status !== 201) {
      const error = reply.body?.error;
      throw new ChatError(error?.code ?? "unavailable", error?.message ?? `upload failed (HTTP ${reply.status})`);
    }
    onProgress?.(file.size, file.size);
    return reply.body;
  }

  /**
   * The full URL of a file's `url` (an attachment's, an upload's), with this
   * client's credentials, for a link or an `<img src>`.
   * @param {string} path
   * @returns {string}
   */
  fileUrl(path) {
    return this.withCredentials(path, {}, this.lastToken);
  }

  /**
   * An HTTP(S) URL on the gateway with the query `params` and this client's credentials.
   * @param {string} path
   * @param {Record<string, string>} params
   * @private
   */
  async httpUrl(path, params) {
    const { getToken, token } = this.options;
    const current = getToken ? await getToken() : token;
    if (current) this.lastToken = current;
    return this.withCredentials(path, params, current);
  }

  /**
   * @param {string} path
   * @param {Record<string, string>} params
   * @param {string | undefined} token
   * @private
   */
  withCredentials(path, params, token) {
    const url = new URL(path, this.url);
    url.protocol = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol;
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    const { name } = this.options;
    const user = this.options.user ?? this.welcome?.user.id;
    if (token) url.searchParams.set("token", token);
    else if (user) {
      url.searchParams.set("user", user);
      if (name) url.searchParams.set("name", name);
    }
    return url.toString();
  }

  /** @returns {Promise<number>} the server's clock (`pong.ts`) */
  async ping() {
    return (await this.requests.request({ type: "ping" })).ts;
  }

  /** @private */
  async connectUrl() {
    const url = new URL(this.url);
    const { getToken, token, name, user } = this.options;
    const current = getToken ? await getToken() : token;
    if (current) url.searchParams.set("token", current);
    this.lastToken = current;
    if (name) url.searchParams.set("name", name);
    if (user) url.searchParams.set("user", user);
    return url.toString();
  }

  /**
   * @param {StateEvent} event
   * @private
   */
  onState(event) {
    if (event.state === "reconnecting" && !event.opened && this.tokenExpired()) {
      // The attempt failed, and the token has expired: no attempt will
      // succeed with it. (A browser cannot read why a handshake was refused.)
      this.events.emit("state", event);
      this.connection.close(new ChatError("token_expired", "the token has expired: sign in again"));
      return;
    }
    if (event.state === "closed") {
      const why = event.code ? `closed by the server (${event.code}): ${event.reason}` : "the client was closed";
      const error = event.error ?? new ChatError("closed", why);
      this.requests.close(error);
      for (const room of this.rooms.values()) room.moveTo("left", error);
      this.firstWelcome?.reject(error);
      this.firstWelcome = null;
    }
    this.events.emit("state", event);
  }

  /**
   * Whether the token (with no `getToken` to renew it) is a JWT past its `exp`.
   * @private
   */
  tokenExpired() {
    const { token, getToken } = this.options;
    if (!token || getToken) return false;
    const exp = jwtExpiry(token);
    return exp !== undefined && exp * 1000 <= this.clock.now();
  }

  /**
   * @param {Welcome} welcome
   * @private
   */
  onWelcome(welcome) {
    const first = this.welcome === null;
    this.welcome = welcome;
    // Anonymous mode: keep the user id the server made up, so that a
    // reconnect is the same user (same rosters, same conversations).
    if (!this.options.token && !this.options.getToken) this.options.user = welcome.user.id;
    // Rooms first: their re-joins go before the sends that wait for them.
    for (const room of this.rooms.values()) room.connectionOpened();
    this.requests.opened(welcome);
    if (!first) {
      const known = this.conversations.startCatchUp();
      for (const [other, after] of known) {
        this.conversations.catchUp(other, after, (options) => this.dmHistory(other, options));
      }
      this.catchUpNewConversations(new Set(known.map(([other]) => other)));
      // A status ends with the user's last session: this may have been it.
      const status = this.status;
      if (status && (status.state !== "online" || status.text)) this.setStatus(status.state, status.text).catch(() => {});
    }
    this.events.emit("welcome", welcome);
    this.firstWelcome?.resolve(welcome);
    this.firstWelcome = null;
  }

  /**
   * @param {any} frame
   * @private
   */
  onFrame(frame) {
    if (this.requests.receive(frame)) return;
    switch (frame?.type) {
      case "dm":
        if (this.welcome) this.conversations.receive(frame, this.welcome.user.id);
        break;
      case "joined": {
        // Its request gave up before it came.
        const room = this.rooms.get(frame.room);
        if (room) room.onJoined(frame);
        else this.requests.request({ type: "leave", room: frame.room }).catch(() => {});
        break;
      }
      case "notice":
        this.events.emit("notice", frame);
        break;
      case "signal":
        this.events.emit("signal", frame);
        break;
      case "receipt":
        // A conversation's (`dm`: the other user), or a room's: see the default.
        if (typeof frame.dm === "string") this.conversation(frame.dm).onReceipt(frame);
        else if (typeof frame.room === "string") this.rooms.get(frame.room)?.receive(frame);
        break;
      case "error":
        this.events.emit("error", new ChatError(frame.code, frame.message, frame.retry_after_ms));
        break;
      case "pong":
        break; // a liveness probe's
      default:
        // Room frames: the stream (message, and 1.1's edit, delete,
        // reaction), presence, typing. Other types from a newer server are
        // ignored.
        if (typeof frame?.room === "string") this.rooms.get(frame.room)?.receive(frame);
    }
  }
}
