/**
 * One room as the client follows it: `client.room(name)`.
 *
 * ```text
 *   idle ──join()──▶ joining ──joined──▶ joined ──leave()──▶ left
 *                     │  ▲                │  ▲
 *     refused for good│  │ same           │  │ caught up (joined)
 *                     ▼  │ (transient)    ▼  │
 *                    failed        rejoining (after a reconnect, or a gap in the seqs)
 * ```
 *
 * - It keeps the room's `seq` and `epoch`, from every event of the room's
 *   stream (messages now; edits, deletes and reactions in protocol 1.1), and
 *   emits each once, in seq order, as `event`.
 * - After a reconnect it re-joins with `since`: what was missed comes as
 *   `event`s. A live event whose seq skips ahead means events were missed on
 *   the way: it re-joins the same way. When the server cannot replay
 *   everything (`recovered: false`: more was missed than it keeps, or the
 *   history was lost and a new epoch began), it joins afresh and emits
 *   `reset` with the new history, which replaces what the view held.
 * - `send` waits while the room is not joined (joining, rejoining), and
 *   fails with `closed` once the room is left or failed.
 * - A `joined` for this room that comes after its request gave up (a
 *   timeout) is taken, not dropped; one for a room left meanwhile is
 *   answered with a `leave`, so the server does not keep the session there.
 * @module chat/room
 */

import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";

/** @typedef {import("./requests.js").Requests} Requests */
/** @typedef {"idle" | "joining" | "joined" | "rejoining" | "failed" | "left"} RoomState */
/** @typedef {{id: string, name: string}} User */
/**
 * A frame of the room's stream: `message` (and, with protocol 1.1, `edit`,
 * `delete`, `reaction`), with the room's `seq`.
 * @typedef {{type: string, room: string, seq: number, [field: string]: any}} RoomEvent
 */
/**
 * @typedef {Object} Joined the server's `joined` reply
 * @property {string} room
 * @property {number} seq
 * @property {string} epoch
 * @property {User[]} members
 * @property {RoomEvent[]} history
 * @property {boolean} recovered
 */
/**
 * @typedef {Object} Reset the room starts over: what the view held is replaced
 * @property {RoomEvent[]} history oldest first
 * @property {number} seq
 * @property {string} epoch
 * @property {"joined" | "not_recovered"} reason a first join, or a reconnect
 *   (or a gap) after which the server could not replay everything missed
 */
/**
 * @typedef {Object} RoomEvents
 * @property {{state: RoomState, error?: ChatError}} state
 * @property {RoomEvent} event each event of the stream once, in seq order
 * @property {Reset} reset
 * @property {User[]} roster the room's online users, after any change
 * @property {{room: string, user: User, state: "start" | "stop"}} typing
 * @property {{room: string, user: User, state: "online" | "offline"}} presence
 */

/** Failures of a re-join worth trying again while connected. */
const TRANSIENT_CODES = new Set(["rate_limited", "unavailable", "timeout"]);

/**
 * @typedef {Object} RoomContext what a room needs from its client
 * @property {Requests} requests
 * @property {() => boolean} isOpen whether the connection is open
 * @property {(data: string) => boolean} sendNow a frame outside the queue (typing)
 * @property {(ms: number, fn: () => void) => void} later
 * @property {number} reconnectInitialMs the wait before a transient re-join failure is tried again
 * @property {() => string} newClientId
 * @property {() => string | undefined} me this user's id, once welcomed
 */

/** See the module documentation. */
export class Room {
  /**
   * @param {string} name
   * @param {RoomContext} context
   */
  constructor(name, context) {
    this.name = name;
    this.context = context;
    /** @type {Emitter<RoomEvents>} */
    this.events = new Emitter();
    /** @type {RoomState} */
    this.state = "idle";
    /** The newest seq of the stream this client has. */
    this.seq = 0;
    /** @type {string | null} */
    this.epoch = null;
    /** @type {number | undefined} the history the first join asked for */
    this.limit = undefined;
    /** @type {Map<string, User>} */
    this.members = new Map();
    /** Join requests waiting or in flight. */
    this.joinsInFlight = 0;
    /** How many times the room started over (a first join is the first). */
    this.resets = 0;
  }

  /**
   * Subscribes to one of the room's events; returns a function that unsubscribes.
   * @template {keyof RoomEvents} K
   * @param {K} type
   * @param {(event: RoomEvents[K]) => void} handler
   */
  on(type, handler) {
    return this.events.on(type, handler);
  }

  /** @returns {User[]} the room's online users as last known */
  get roster() {
    return [...this.members.values()];
  }

  /**
   * @param {RoomState} state
   * @param {ChatError} [error]
   */
  moveTo(state, error) {
    if (this.state === state) return;
    this.state = state;
    this.events.emit("state", error ? { state, error } : { state });
    // Sends waiting for the room to be joined may go now.
    if (state === "joined") this.context.requests.pump();
    if (state === "left" || state === "failed") {
      this.context.requests.rejectOwned(this.name, error ?? new ChatError("closed", `room ${this.name} was left`));
    }
  }

  /**
   * Joins the room; resolves with the `joined` reply (also emitted as `reset`).
   * @param {{limit?: number}} [options] history to replay (server default 50)
   * @returns {Promise<Joined>}
   */
  join({ limit } = {}) {
    if (limit !== undefined) this.limit = limit;
    if (this.state !== "joined") this.moveTo("joining");
    const frame = /** @type {Record<string, any>} */ ({ type: "join", room: this.name, limit: this.limit });
    return this.requestJoin(frame).catch((error) => {
      // Sends waiting for the room fail with it; a `joined` that still comes
      // (after a timeout) brings the room back.
      if (this.state === "joining") this.moveTo("failed", error);
      throw error;
    });
  }

  /**
   * @param {Record<string, any>} frame
   * @returns {Promise<Joined>}
   * @private
   */
  requestJoin(frame) {
    this.joinsInFlight += 1;
    const reply = this.context.requests.request(frame, {
      counted: frame.since === undefined,
      onReply: (joined) => this.onJoined(joined, frame.since),
    });
    return reply.finally(() => {
      this.joinsInFlight -= 1;
    });
  }

  /**
   * A `joined` for this room: the reply to a join, or one that came after
   * its request gave up.
   * @param {Joined} joined
   * @param {number} [since] what a re-join asked to resume from
   */
  onJoined(joined, since) {
    if (this.state === "left" || this.state === "idle") {
      // Joined on the server, but not here any more: do not stay there.
      this.context.requests.request({ type: "leave", room: this.name }).catch(() => {});
      return;
    }
    this.members = new Map(joined.members.map((m) => [m.id, m]));
    this.events.emit("roster", this.roster);
    if (since !== undefined && joined.recovered) {
      // A resume: what was missed, in order, as ordinary events.
      for (const event of joined.history) this.accept(event);
      this.seq = Math.max(this.seq, joined.seq);
      this.epoch = joined.epoch;
      this.moveTo("joined");
      return;
    }
    if (since !== undefined) {
      // Not everything could be replayed (too much missed, or a new epoch
      // whose seqs are below ours): start over from a fresh join.
      this.rejoin(false);
      return;
    }
    this.seq = joined.seq;
    this.epoch = joined.epoch;
    this.moveTo("joined");
    this.events.emit("reset", {
      history: joined.history,
      seq: joined.seq,
      epoch: joined.epoch,
      reason: this.resets++ === 0 ? "joined" : "not_recovered",
    });
  }

  /**
   * Joins again after a reconnect or a gap: with `since` (a resume), or
   * afresh when a resume could not recover everything.
   * @param {boolean} [resume]
   */
  rejoin(resume = true) {
    if (this.state === "left" || this.state === "idle" || this.state === "failed") return;
    if (this.joinsInFlight > 0 && resume) return;
    this.moveTo("rejoining");
    /** @type {Record<string, any>} */
    const frame = { type: "join", room: this.name, limit: this.limit };
    if (resume) {
      frame.since = this.seq;
      if (this.epoch) frame.epoch = this.epoch;
    }
    this.requestJoin(frame).catch((error) => {
      if (this.state !== "rejoining") return;
      if (error.code === "closed") return; // the next connection re-joins
      if (TRANSIENT_CODES.has(error.code)) {
        this.context.later(error.retryAfterMs ?? this.context.reconnectInitialMs, () => {
          if (this.context.isOpen()) this.rejoin(resume);
        });
        return;
      }
      this.moveTo("failed", error);
    });
  }

  /** The connection opened again: catch up on what was missed. */
  connectionOpened() {
    if (this.state === "joined" || this.state === "rejoining") this.rejoin(true);
  }

  /** The connection was lost: the stream is on hold until re-joined. */
  connectionLost() {
    if (this.state === "joined") this.moveTo("rejoining");
  }

  /**
   * A live frame of this room.
   * @param {any} frame
   */
  receive(frame) {
    if (frame.type === "presence") {
      if (frame.state === "online") this.members.set(frame.user.id, frame.user);
      else this.members.delete(frame.user.id);
      this.events.emit("presence", frame);
      this.events.emit("roster", this.roster);
    } else if (frame.type === "typing") {
      this.events.emit("typing", frame);
    } else if (typeof frame.seq === "number") {
      if (this.state !== "joined") return; // a re-join will bring it
      if (frame.seq > this.seq + 1 || (frame.seq === 1 && this.seq > 1)) {
        // Missed on the way here, or the room's history started over (a
        // new epoch: seq 1 again): a resume catches up, or says to start over.
        this.rejoin(true);
        return;
      }
      this.accept(frame);
    }
  }

  /**
   * Emits an event of the stream unless it was seen.
   * @param {RoomEvent} event
   * @private
   */
  accept(event) {
    if (event.seq <= this.seq) return;
    this.seq = event.seq;
    if (event.type === "message" && event.client_id && event.from?.id === this.context.me()) {
      // One of ours, sent before a connection was lost: stored after all.
      this.context.requests.stored(event.client_id, { room: this.name, seq: event.seq, ts: event.ts });
    }
    this.events.emit("event", event);
  }

  /** Leaves the room; waiting sends fail with `closed`. */
  async leave() {
    const wasIn = this.state !== "idle" && this.state !== "left" && this.state !== "failed";
    this.moveTo("left");
    if (wasIn) await this.context.requests.request({ type: "leave", room: this.name });
  }

  /**
   * Sends a message; waits while the room is joining or rejoining, and
   * resolves with its `ack` once stored.
   * @param {string} text
   * @param {{clientId?: string}} [options] idempotency key (one is made up)
   * @returns {Promise<any>}
   */
  send(text, { clientId = this.context.newClientId() } = {}) {
    if (this.state === "idle" || this.state === "left" || this.state === "failed") {
      const error = new ChatError(this.state === "idle" ? "not_joined" : "closed", `room ${this.name} is not joined`);
      error.clientId = clientId;
      return Promise.reject(error);
    }
    return this.context.requests.request(
      { type: "send", room: this.name, text, client_id: clientId },
      { replay: "idempotent", gate: () => this.state === "joined", owner: this.name },
    );
  }

  /**
   * A page of the room's history, oldest first: the newest `limit` events
   * before `before`, or the oldest `limit` after `after`.
   * @param {{before?: number, after?: number, limit?: number}} [options]
   * @returns {Promise<RoomEvent[]>}
   */
  async history({ before, after, limit } = {}) {
    // Options left undefined are not sent (JSON has no undefined).
    return (await this.context.requests.request({ type: "history", room: this.name, before, after, limit })).messages;
  }

  /** @returns {Promise<User[]>} the room's online users, cluster-wide, asked now */
  async fetchMembers() {
    return (await this.context.requests.request({ type: "members", room: this.name })).members;
  }

  /**
   * Tells the room's other users that this user is typing, or stopped. Only
   * worth sending live: not queued, and false when not sent.
   * @param {"start" | "stop"} [state]
   * @returns {boolean}
   */
  typing(state = "start") {
    if (this.state !== "joined" || !this.context.isOpen() || !this.context.requests.takeToken()) return false;
    return this.context.sendNow(JSON.stringify({ type: "typing", room: this.name, state }));
  }
}
