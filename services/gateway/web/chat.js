/**
 * Client for the chat cluster's WebSocket protocol, version 1.
 *
 * An ES module with no dependencies and no build step. Gateways serve it at
 * `/chat.js`; Node imports this file (Node 22+ has a global `WebSocket`; on
 * Node 20 run with `--experimental-websocket` or pass `options.WebSocket`).
 *
 * What it adds to the bare protocol:
 * - requests get an `id` and resolve with their reply, or reject with a
 *   {@link ChatError} (the server's `error` frame, or `timeout`);
 * - frames sent before `welcome`, or while reconnecting, wait in a bounded
 *   queue and go out after the next `welcome`, paced below the connection's
 *   rate limit from `welcome.limits`;
 * - a lost connection is reopened with exponential backoff and jitter, every
 *   room is joined again with `since`, so missed messages arrive as ordinary
 *   `message` events, and requests whose reply was lost are sent again
 *   (`send` and `dm` carry a `client_id`, so the server stores them once);
 * - room messages are dropped when their seq was already seen, DMs when their
 *   conversation seq was;
 * - each joined room's roster is kept from `joined` and `presence`.
 *
 * @example
 * import { ChatClient } from "/chat.js";
 * const chat = new ChatClient("ws://127.0.0.1:8080/ws", { name: "alice" });
 * chat.on("message", (m) => console.log(m.room, m.from.name, m.text));
 * await chat.connect();
 * await chat.join("lobby");
 * await chat.send("lobby", "hello");
 *
 * @module chat
 */

/** @typedef {{id: string, name: string}} User */
/** @typedef {{type: "message", room: string, seq: number, from: User, text: string, ts: number, client_id?: string}} Message */
/** @typedef {{type: "dm", from: User, to: string, text: string, ts: number, seq: number, client_id?: string}} DirectMessage */
/** @typedef {{type: "joined", room: string, seq: number, epoch: string, members: User[], history: Message[], recovered: boolean}} Joined */
/** @typedef {{type: "ack", room?: string, to?: string, seq: number, ts: number, delivered?: boolean}} Ack */
/** @typedef {{type: "welcome", session: string, user: User, node: string, heartbeat_ms: number, limits: Object<string, number>}} Welcome */
/**
 * @typedef {"idle" | "connecting" | "open" | "reconnecting" | "closed"} ConnectionState
 * `idle` before {@link ChatClient#connect}; `open` once `welcome` arrived;
 * `closed` after {@link ChatClient#close} or a close the client must not undo
 * (1008: policy).
 */
/**
 * @typedef {Object} ChatOptions
 * @property {string} [token] a JWT, for gateways in `jwt` mode
 * @property {() => (string | Promise<string>)} [getToken] called before every
 *   connection attempt, for tokens that expire
 * @property {string} [name] display name, for gateways in `anonymous` mode
 * @property {string} [user] user id, for gateways in `anonymous` mode; without
 *   one, the id the server makes up is kept for the reconnects
 * @property {number} [requestTimeoutMs=10000] how long a request waits for its reply,
 *   queued time included
 * @property {number} [reconnectInitialMs=500] first reconnect delay (before jitter)
 * @property {number} [reconnectMaxMs=30000] largest reconnect delay
 * @property {number} [maxPendingRequests=500] requests waiting for a reply or
 *   for the connection, at most; more are refused with `queue_full`
 * @property {number} [dmSeqsPerConversation=1000] DM seqs remembered per
 *   conversation for dropping repeats
 * @property {number} [maxDmConversations=1000] conversations whose DM seqs are
 *   remembered; the least recently active is forgotten first
 * @property {typeof WebSocket} [WebSocket] a WebSocket implementation, where
 *   there is no global one
 */

/** An `error` frame from the server, or a failure of the client itself. */
export class ChatError extends Error {
  /**
   * @param {string} code the protocol's error code, or one of the client's:
   *   `timeout`, `queue_full`, `closed`
   * @param {string} message
   * @param {number} [retryAfterMs] with `rate_limited`
   */
  constructor(code, message, retryAfterMs) {
    super(message);
    this.name = "ChatError";
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} */
    this.retryAfterMs = retryAfterMs;
    /**
     * With a failed `send` or `dm`: its idempotency key. Retry with it
     * (`{clientId}`): after `unavailable` or `timeout` the message may
     * have been stored, and the same key keeps it from being stored twice.
     * @type {string | undefined}
     */
    this.clientId = undefined;
  }
}

const utf8 = new TextEncoder();

/** Close codes after which the client does not reconnect by itself. */
const TERMINAL_CLOSE_CODES = new Set([1008]);

/**
 * A connection that stayed open this long resets the backoff; one that a
 * server closes sooner (a 4008 or 1011 loop) keeps backing off.
 */
const STABLE_CONNECTION_MS = 5000;
/** Heartbeat assumed when `welcome` names none. */
const DEFAULT_HEARTBEAT_MS = 25000;
/** Re-join failures worth trying again while connected. */
const TRANSIENT_CODES = new Set(["rate_limited", "unavailable", "timeout"]);

/**
 * Reconnect delay before attempt `attempt` (0-based): exponential, capped,
 * with "equal jitter" (half fixed, half random) so that the clients of a
 * crashed gateway do not all come back in the same millisecond.
 * @param {number} attempt
 * @param {number} initialMs
 * @param {number} maxMs
 * @param {() => number} [random]
 * @returns {number}
 */
export function backoffDelay(attempt, initialMs, maxMs, random = Math.random) {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + random() * (base / 2));
}

/**
 * The seqs of one DM conversation seen lately, to drop repeats (queued DMs
 * arrive at least once). Holds at most `capacity` seqs.
 */
export class SeenSeqs {
  /** @param {number} capacity */
  constructor(capacity) {
    this.capacity = Math.max(1, capacity);
    /** @type {Set<number>} */
    this.seqs = new Set();
  }

  /**
   * Records `seq`; false when it was seen before.
   * @param {number} seq
   * @returns {boolean}
   */
  add(seq) {
    if (this.seqs.has(seq)) return false;
    this.seqs.add(seq);
    if (this.seqs.size > this.capacity) {
      // Forget the smallest seq: repeats come from the recent past.
      let smallest = Infinity;
      for (const s of this.seqs) smallest = Math.min(smallest, s);
      this.seqs.delete(smallest);
    }
    return true;
  }
}

/** A WebSocket client of one chat cluster. */
export class ChatClient {
  /**
   * @param {string} url the gateway's WebSocket URL, e.g. `wss://chat.example.com/ws`
   * @param {ChatOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    this.options = {
      requestTimeoutMs: 10000,
      reconnectInitialMs: 500,
      reconnectMaxMs: 30000,
      maxPendingRequests: 500,
      dmSeqsPerConversation: 1000,
      maxDmConversations: 1000,
      ...options,
    };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this.WebSocket) {
      throw new Error(
        "no WebSocket here: pass options.WebSocket (e.g. from the ws package), " +
          "or use Node 22+ (Node 20: --experimental-websocket)",
      );
    }
    /** @type {ConnectionState} */
    this.state = "idle";
    /** @type {Welcome | null} the latest `welcome` */
    this.welcome = null;
    /** @type {Map<string, {seq: number, epoch: string | null, limit?: number}>} joined rooms */
    this.rooms = new Map();
    /** @type {Map<string, Map<string, User>>} online members of each joined room */
    this.rosters = new Map();
    /** @type {Map<string, SeenSeqs>} DM seqs seen, by the other user's id, least recent first */
    this.dmSeen = new Map();
    /**
     * Requests waiting for their reply, in the order they were made.
     * `internal` ones (re-joins, liveness pings) belong to one socket.
     * @type {Map<number, {frame: Object, resolve: Function, reject: Function, timer: any, sent: boolean, internal: boolean}>}
     */
    this.pending = new Map();
    /** Requests waiting for a rate token, oldest first (a subset of `pending`). */
    this.outbox = [];
    /** The server's per-connection rate, mirrored so that queued frames never trip it. */
    this.rate = { perSecond: 1, tokens: 0, at: 0 };
    this.pumpTimer = null;
    this.welcomeTimer = null;
    this.openedAt = 0;
    /** Bumped by every open() and close(): a stale async open() gives up. */
    this.generation = 0;
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.socket = null;
    this.reconnectTimer = null;
    this.livenessTimer = null;
    this.lastFrameAt = 0;
    /** @type {{resolve: Function, reject: Function, promise: Promise<Welcome>} | null} */
    this.firstWelcome = null;
  }

  // ---- events ---------------------------------------------------------

  /**
   * Subscribes to an event; returns a function that unsubscribes.
   *
   * Events: `joined` (the reply to {@link ChatClient#join}, before any
   * message of the room that follows it), `message` (a room {@link Message}, each seq once), `dm`
   * ({@link DirectMessage}), `typing`, `presence`, `notice` (the server's
   * frames), `roster` (`{room, members}` after any change), `rejoined`
   * (`{room, recovered, joined}` after a reconnect: when `recovered` is false
   * the room's earlier messages may have gaps, so start again from
   * `joined.history`), `rejoin_failed` (`{room, error}`: the room could not be
   * joined again, for example `forbidden` with a new token, and is dropped),
   * `state` (`{state, node?, delayMs?, attempt?, code?, reason?}`), `welcome`,
   * and `error` (an `error` frame no request was waiting for).
   * @param {string} type
   * @param {(event: any) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type)?.delete(handler);
  }

  /** @param {string} type @param {any} event */
  emit(type, event) {
    for (const handler of this.handlers.get(type) ?? []) {
      try {
        handler(event);
      } catch (err) {
        // A broken handler must not break the connection.
        console.error(`chat: a "${type}" handler threw`, err);
      }
    }
  }

  /** @param {ConnectionState} state @param {Object} [details] */
  setState(state, details = {}) {
    this.state = state;
    this.emit("state", { state, ...details });
  }

  // ---- connection -----------------------------------------------------

  /**
   * Opens the connection; resolves with the first `welcome`. Keeps it open
   * (reconnecting as needed) until {@link ChatClient#close}.
   * @returns {Promise<Welcome>}
   */
  connect() {
    if (this.state === "open") return Promise.resolve(this.welcome);
    if (!this.firstWelcome) {
      let settle;
      const promise = new Promise((resolve, reject) => {
        settle = { resolve, reject };
      });
      this.firstWelcome = { ...settle, promise };
    }
    if (this.state === "idle" || this.state === "closed") {
      this.attempt = 0;
      this.open();
    }
    return this.firstWelcome.promise;
  }

  /**
   * Closes the connection for good: waiting requests reject with `closed`,
   * and the client forgets its rooms. `connect()` starts afresh.
   */
  close() {
    this.generation += 1;
    this.setState("closed", { reason: "closed by the client" });
    clearTimeout(this.reconnectTimer);
    this.dropSocket(1000, "bye");
    this.rejectAll(new ChatError("closed", "the client was closed"));
    this.firstWelcome?.reject(new ChatError("closed", "the client was closed"));
    this.firstWelcome = null;
    this.rooms.clear();
    this.rosters.clear();
  }

  async open() {
    const generation = ++this.generation;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    let url;
    try {
      url = await this.connectUrl();
    } catch (err) {
      if (generation === this.generation) this.scheduleReconnect(0, `no token: ${err?.message ?? err}`);
      return;
    }
    // close(), or another open(), happened while the token was fetched.
    if (generation !== this.generation) return;
    let socket;
    try {
      socket = new this.WebSocket(url);
    } catch (err) {
      this.scheduleReconnect(0, String(err?.message ?? err));
      return;
    }
    this.socket = socket;
    // No welcome in time: give up on this socket and try again.
    this.welcomeTimer = setTimeout(() => {
      if (this.socket === socket && this.state !== "open") this.lost(socket, 0, "no welcome in time");
    }, this.options.requestTimeoutMs);
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(typeof event.data === "string" ? event.data : String(event.data));
      } catch {
        return;
      }
      this.receive(frame);
    };
    socket.onclose = (event) => this.lost(socket, event.code, event.reason);
    // Browsers follow an error with a close event; Node 20's WebSocket does
    // not when the connect fails.
    socket.onerror = () => this.lost(socket, 1006, "connection failed");
  }

  async connectUrl() {
    const url = new URL(this.url);
    const token = this.options.getToken ? await this.options.getToken() : this.options.token;
    if (token) url.searchParams.set("token", token);
    if (this.options.name) url.searchParams.set("name", this.options.name);
    if (this.options.user) url.searchParams.set("user", this.options.user);
    return url.toString();
  }

  /** Detaches the current socket, so its late events are ignored, and closes it. */
  dropSocket(code, reason) {
    const socket = this.socket;
    this.socket = null;
    clearInterval(this.livenessTimer);
    clearTimeout(this.welcomeTimer);
    clearTimeout(this.pumpTimer);
    this.outbox = [];
    if (!socket) return;
    socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  lost(socket, code, reason) {
    if (this.socket !== socket) return;
    this.dropSocket(1000, "reconnecting");
    if (this.openedAt && Date.now() - this.openedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
    this.openedAt = 0;
    for (const entry of [...this.pending.values()]) {
      if (entry.internal) {
        // Re-joins and pings are made again for the next socket.
        this.settle(entry.frame.id, null, new ChatError("closed", "the connection closed"));
      } else if (entry.sent && code === 1009) {
        // Sending it again would close the next connection too.
        this.settle(entry.frame.id, null, new ChatError("too_large", "the server refused a frame over max_frame_bytes"));
      } else {
        // Sent again after the next welcome: every request type is safe to
        // repeat (send and dm carry a client_id).
        entry.sent = false;
      }
    }
    if (this.state === "closed") return;
    if (TERMINAL_CLOSE_CODES.has(code)) {
      this.setState("closed", { code, reason });
      this.rejectAll(new ChatError("closed", `closed by the server (${code}): ${reason}`));
      this.firstWelcome?.reject(new ChatError("closed", `closed by the server (${code}): ${reason}`));
      this.firstWelcome = null;
      return;
    }
    this.scheduleReconnect(code, reason);
  }

  scheduleReconnect(code, reason) {
    const { reconnectInitialMs, reconnectMaxMs } = this.options;
    const delayMs = backoffDelay(this.attempt, reconnectInitialMs, reconnectMaxMs);
    this.attempt += 1;
    this.setState("reconnecting", { attempt: this.attempt, delayMs, code, reason });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), delayMs);
  }

  /**
   * Every `heartbeat_ms` without a frame from the server, a `ping` request:
   * a connection that cannot answer it within `heartbeat_ms` is dead
   * (a browser cannot see WebSocket pings) and is replaced.
   */
  watchLiveness(socket, heartbeatMs) {
    clearInterval(this.livenessTimer);
    this.livenessTimer = setInterval(() => {
      if (this.socket !== socket || Date.now() - this.lastFrameAt < heartbeatMs) return;
      this.request({ type: "ping" }, { timeoutMs: heartbeatMs, internal: true }).catch((err) => {
        if (err.code === "timeout") this.lost(socket, 0, "no reply to ping");
      });
    }, heartbeatMs);
  }

  // ---- frames in ------------------------------------------------------

  /** @param {any} frame */
  receive(frame) {
    if (frame.re !== undefined && this.pending.has(frame.re)) {
      const error =
        frame.type === "error" ? new ChatError(frame.code, frame.message, frame.retry_after_ms) : null;
      this.settle(frame.re, frame, error);
      return;
    }
    switch (frame.type) {
      case "welcome":
        this.onWelcome(frame);
        break;
      case "message":
        this.onMessage(frame);
        break;
      case "dm":
        this.onDm(frame);
        break;
      case "presence":
        this.onPresence(frame);
        this.emit("presence", frame);
        break;
      case "typing":
      case "notice":
        this.emit(frame.type, frame);
        break;
      case "error":
        this.emit("error", new ChatError(frame.code, frame.message, frame.retry_after_ms));
        break;
      default:
        // A frame type from a newer server: ignored.
        break;
    }
  }

  /** @param {Welcome} welcome */
  onWelcome(welcome) {
    if (this.state === "open") return; // one per connection
    clearTimeout(this.welcomeTimer);
    this.welcome = welcome;
    this.openedAt = Date.now();
    // Anonymous mode: keep the user id the server made up, so that a
    // reconnect is the same user (same rosters, same DM conversations).
    if (!this.options.token && !this.options.getToken) this.options.user = welcome.user.id;
    const limits = welcome.limits ?? {};
    // A tenth below the server's rate, so that timer jitter never trips it.
    const perSecond = Math.min(
      limits.messages_per_second || 20,
      limits.user_messages_per_second || Infinity,
    );
    this.rate = { perSecond: Math.max(1, Math.floor(perSecond * 0.9)), tokens: 0, at: Date.now() };
    this.rate.tokens = this.rate.perSecond;
    this.state = "open";
    this.watchLiveness(this.socket, Math.max(1000, welcome.heartbeat_ms || DEFAULT_HEARTBEAT_MS));
    // Rooms first, with `since`: the server handles frames in order, so a
    // queued send to one of these rooms finds it joined.
    for (const room of this.rooms.keys()) this.rejoin(room, this.socket);
    for (const entry of this.pending.values()) {
      if (!entry.sent && !entry.internal) this.outbox.push(entry);
    }
    this.pump();
    this.setState("open", { node: welcome.node });
    this.emit("welcome", welcome);
    this.firstWelcome?.resolve(welcome);
    this.firstWelcome = null;
  }

  /**
   * Joins `room` again on `socket` with `since`; tries again while the
   * failure is transient, and otherwise gives the room up (`rejoin_failed`).
   */
  rejoin(room, socket) {
    const state = this.rooms.get(room);
    if (!state || this.socket !== socket) return;
    const frame = { type: "join", room, since: state.seq };
    if (state.epoch) frame.epoch = state.epoch;
    this.request(frame, { internal: true, onReply: (joined) => this.onRejoined(joined) })
      .catch((error) => {
        if (error.code === "closed" || this.socket !== socket || !this.rooms.has(room)) return;
        if (TRANSIENT_CODES.has(error.code)) {
          setTimeout(() => this.rejoin(room, socket), error.retryAfterMs ?? this.options.reconnectInitialMs);
          return;
        }
        this.rooms.delete(room);
        this.rosters.delete(room);
        this.emit("rejoin_failed", { room, error });
      });
  }

  /** @param {Message} message */
  onMessage(message) {
    const room = this.rooms.get(message.room);
    if (room) {
      // Seq 1 after a higher seq: the room's history restarted (expired).
      const restarted = message.seq === 1 && room.seq > 1;
      if (message.seq <= room.seq && !restarted) return;
      room.seq = message.seq;
    }
    this.emit("message", message);
  }

  /** @param {DirectMessage} dm */
  onDm(dm) {
    const me = this.welcome?.user.id;
    const other = dm.from.id === me ? dm.to : dm.from.id;
    const seen = this.dmSeen.get(other) ?? new SeenSeqs(this.options.dmSeqsPerConversation);
    // Most recent last; the least recent conversation is forgotten first.
    this.dmSeen.delete(other);
    this.dmSeen.set(other, seen);
    if (this.dmSeen.size > this.options.maxDmConversations) this.dmSeen.delete(this.dmSeen.keys().next().value);
    if (seen.add(dm.seq)) this.emit("dm", dm);
  }

  onPresence(frame) {
    const roster = this.rosters.get(frame.room);
    if (!roster) return;
    if (frame.state === "online") roster.set(frame.user.id, frame.user);
    else roster.delete(frame.user.id);
    this.emit("roster", { room: frame.room, members: [...roster.values()] });
  }

  /** @param {Joined} joined */
  onJoined(joined) {
    this.rooms.set(joined.room, { seq: joined.seq, epoch: joined.epoch ?? null });
    this.rosters.set(joined.room, new Map(joined.members.map((m) => [m.id, m])));
    this.emit("joined", joined);
    this.emit("roster", { room: joined.room, members: joined.members });
  }

  /** @param {Joined} joined */
  onRejoined(joined) {
    const room = this.rooms.get(joined.room);
    if (!room) return; // left meanwhile
    const from = room.seq;
    room.epoch = joined.epoch ?? null;
    this.rosters.set(joined.room, new Map(joined.members.map((m) => [m.id, m])));
    this.emit("roster", { room: joined.room, members: joined.members });
    if (joined.recovered) {
      for (const message of joined.history) {
        if (message.seq > from) this.onMessage(message);
      }
      room.seq = Math.max(room.seq, joined.seq);
    } else {
      room.seq = joined.seq;
    }
    this.emit("rejoined", { room: joined.room, recovered: joined.recovered, joined });
  }

  // ---- requests -------------------------------------------------------

  /**
   * Sends a frame with a fresh `id`; resolves with its reply frame, rejects
   * with a {@link ChatError}. Waits for the connection when there is none,
   * and for a rate token when the connection's rate is used up.
   * @param {Object} frame
   * @param {{timeoutMs?: number, internal?: boolean, onReply?: (reply: any) => void}} [options]
   *   `internal` requests (re-joins, pings) belong to the current socket and
   *   do not count against `maxPendingRequests`; `onReply` runs as the reply
   *   is read, before any later frame (a promise continuation may run after
   *   the frames that followed, as with Node's WebSocket)
   * @returns {Promise<any>}
   */
  request(frame, { timeoutMs = this.options.requestTimeoutMs, internal = false, onReply } = {}) {
    if (this.state === "closed") return Promise.reject(new ChatError("closed", "the client is closed"));
    if (!internal && this.pending.size >= this.options.maxPendingRequests) {
      return Promise.reject(
        new ChatError("queue_full", `${this.pending.size} requests are already waiting`),
      );
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id, null, new ChatError("timeout", `no reply to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const entry = { frame: { ...frame, id }, resolve, reject, timer, sent: false, internal, onReply };
      this.pending.set(id, entry);
      if (this.state === "open") {
        this.outbox.push(entry);
        this.pump();
      }
    });
  }

  /** Refills the rate bucket; true (and one token less) when one is free. */
  takeToken() {
    const rate = this.rate;
    const now = Date.now();
    rate.tokens = Math.min(rate.perSecond, rate.tokens + ((now - rate.at) / 1000) * rate.perSecond);
    rate.at = now;
    if (rate.tokens < 1) return false;
    rate.tokens -= 1;
    return true;
  }

  /** Sends what the outbox holds, as fast as the rate allows. */
  pump() {
    clearTimeout(this.pumpTimer);
    if (this.state !== "open" || !this.socket) return;
    while (this.outbox.length) {
      const entry = this.outbox[0];
      if (this.pending.get(entry.frame.id) !== entry || entry.sent) {
        this.outbox.shift(); // settled (timed out) while it waited
        continue;
      }
      if (!this.takeToken()) break;
      this.outbox.shift();
      this.transmit(entry);
    }
    if (this.outbox.length) {
      const waitMs = Math.ceil(((1 - this.rate.tokens) / this.rate.perSecond) * 1000);
      this.pumpTimer = setTimeout(() => this.pump(), Math.max(1, waitMs));
    }
  }

  transmit(entry) {
    const data = JSON.stringify(entry.frame);
    const maxBytes = this.welcome?.limits?.max_frame_bytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: only a frame near the limit is encoded to count.
    if (maxBytes && data.length * 3 > maxBytes && utf8.encode(data).length > maxBytes) {
      // The server would close the connection (1009) on it.
      this.settle(entry.frame.id, null, new ChatError("too_large", `the frame is over ${maxBytes} bytes`));
      return;
    }
    try {
      this.socket.send(data);
      entry.sent = true;
    } catch {
      // The socket is closing; the entry goes out after the next welcome.
    }
  }

  settle(id, reply, error) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
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
  }

  rejectAll(error) {
    for (const id of [...this.pending.keys()]) this.settle(id, null, error);
  }

  /**
   * Joins a room (again, after a reconnect, by itself).
   * @param {string} room
   * @param {{limit?: number}} [options] history to replay (server default 50)
   * @returns {Promise<Joined>}
   */
  async join(room, { limit } = {}) {
    const frame = { type: "join", room };
    if (limit !== undefined) frame.limit = limit;
    // The room's state is set as `joined` is read: its messages may follow
    // in the same read, before this function resumes.
    return this.request(frame, { onReply: (joined) => this.onJoined(joined) });
  }

  /** @param {string} room @returns {Promise<{room: string}>} */
  leave(room) {
    const forget = () => {
      this.rooms.delete(room);
      this.rosters.delete(room);
    };
    return this.request({ type: "leave", room }, { onReply: forget });
  }

  /**
   * Sends a message to a joined room; resolves with its `ack` once stored.
   * @param {string} room
   * @param {string} text
   * @param {{clientId?: string}} [options] idempotency key (one is made up)
   * @returns {Promise<Ack>}
   */
  send(room, text, { clientId = newClientId() } = {}) {
    return this.request({ type: "send", room, text, client_id: clientId });
  }

  /**
   * Sends a direct message; `ack.delivered` is false when the recipient was
   * offline (it is delivered on their next connection). Once acked, the DM
   * is also emitted as a `dm` event, as the sender's other connections get it.
   * @param {string} to user id
   * @param {string} text
   * @param {{clientId?: string}} [options]
   * @returns {Promise<Ack>}
   */
  dm(to, text, { clientId = newClientId() } = {}) {
    // The server echoes a DM to the sender's other connections only; this
    // one learns of it from the ack, as a `dm` event like theirs, in the
    // order the ack was read.
    const echo = (ack) => {
      const from = this.welcome?.user;
      if (from) this.onDm({ type: "dm", from, to, text, ts: ack.ts, seq: ack.seq, client_id: clientId });
    };
    return this.request({ type: "dm", to, text, client_id: clientId }, { onReply: echo });
  }

  /**
   * Tells the room's other users that this user is typing (`start`) or stopped.
   * Not queued: when the connection is not open, nothing is sent.
   * @param {string} room
   * @param {"start" | "stop"} [state]
   * @returns {boolean} whether it was sent
   */
  typing(room, state = "start") {
    // Typing is only worth sending live: it never waits for a rate token.
    if (this.state !== "open" || !this.socket || this.outbox.length || !this.takeToken()) return false;
    try {
      this.socket.send(JSON.stringify({ type: "typing", room, state }));
      return true;
    } catch {
      return false;
    }
  }

  /** @param {string} room @returns {Promise<User[]>} the room's online users, cluster-wide */
  async members(room) {
    return (await this.request({ type: "members", room })).members;
  }

  /**
   * A page of a room's history, oldest first: the newest `limit` messages
   * with seq below `before`.
   * @param {string} room
   * @param {{before?: number, limit?: number}} [options]
   * @returns {Promise<Message[]>}
   */
  async history(room, { before, limit } = {}) {
    const frame = { type: "history", room };
    if (before !== undefined) frame.before = before;
    if (limit !== undefined) frame.limit = limit;
    return (await this.request(frame)).messages;
  }

  /** @returns {Promise<number>} the server's clock, `ts` of its `pong` */
  async ping() {
    return (await this.request({ type: "ping" })).ts;
  }

  /** @param {string} room @returns {User[]} the room's online users as last known */
  roster(room) {
    return [...(this.rosters.get(room)?.values() ?? [])];
  }
}

function newClientId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
