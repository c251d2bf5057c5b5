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
 *   stream (messages; edits, deletes and reactions in protocol 1.1), and
 *   emits each once, in seq order, as `event`.
 * - It folds them into `messages` (`chat/messages`), emitting each live
 *   change as `message` (pages of `history()` are folded in silently), and
 *   keeps the read state (`chat/reads`), emitting `read` and `receipt`.
 * - After a reconnect it re-joins with `since`: what was missed comes as
 *   `event`s. A live event whose seq skips ahead means events were missed on
 *   the way: it re-joins the same way. When the server cannot replay
 *   everything (`recovered: false`: more was missed than it keeps, or the
 *   history was lost and a new epoch began), it joins afresh and emits
 *   `reset` with the new history, which replaces what the view held.
 * - `send`, `edit`, `delete` and `react` wait while the room is not joined
 *   (joining, rejoining), and fail with `closed` once the room is left or
 *   failed; each has a `client_id`, and is sent again after a lost reply
 *   under the same rules as `send`.
 * - A `joined` for this room that comes after its request gave up (a
 *   timeout) is taken, not dropped; one for a room left meanwhile is
 *   answered with a `leave`, so the server does not keep the session there.
 * @module chat/room
 */

import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
import { RoomMessages } from "./messages.js";
import { ReadState } from "./reads.js";

/** @typedef {import("./requests.js").Requests} Requests */
/** @typedef {"idle" | "joining" | "joined" | "rejoining" | "failed" | "left"} RoomState */
/** @typedef {import("./messages.js").Message} Message */
/** @typedef {import("./reads.js").ReadCursor} ReadCursor */
/** @typedef {import("./reads.js").Receipt} Receipt */
/** @typedef {import("./frames.js").InboxEntry} InboxEntry */
/** @typedef {import("./frames.js").User} User */
/** @typedef {import("./frames.js").Member} Member */
/** @typedef {import("./frames.js").RoomEvent} RoomEvent */
/** @typedef {import("./frames.js").Joined} Joined */
/** @typedef {import("./frames.js").Ack} Ack */
/** @typedef {import("./frames.js").ReactionAck} ReactionAck */
/** @typedef {import("./frames.js").Reset} Reset */
/** @typedef {import("./frames.js").RoomEvents} RoomEvents */

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
 * @property {() => void} refreshInbox asks `inbox` soon, for counts only the server knows
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
    /** @type {Map<string, Member>} */
    this.members = new Map();
    /** Join requests waiting or in flight. */
    this.joinsInFlight = 0;
    /** How many times the room started over (a first join is the first). */
    this.resets = 0;
    /** @private */
    this.fold = new RoomMessages(name, context.me);
    /** @private */
    this.reads = new ReadState(
      { me: context.me, count: (readSeq) => this.fold.unreadAbove(readSeq, this.seq), refresh: context.refreshInbox },
      () => this.events.emit("read", { room: this.name, ...this.reads.cursor }),
    );
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

  /** @returns {Member[]} the room's online users as last known */
  get roster() {
    return [...this.members.values()];
  }

  /** @returns {Message[]} the messages loaded, oldest first (at most 1000), in a new array */
  get messages() {
    return this.fold.list().slice();
  }

  /**
   * @param {number} seq
   * @returns {Message | undefined} the message `seq`, if loaded
   */
  message(seq) {
    return this.fold.get(seq);
  }

  /** The lowest seq of the events loaded (0 when none): older history is before it. */
  get oldestSeq() {
    return Number.isFinite(this.fold.oldest) ? this.fold.oldest : 0;
  }

  /** This user's cursor: read up to this seq. */
  get readSeq() {
    return this.reads.readSeq;
  }

  /** Messages from others above the cursor, not deleted. */
  get unread() {
    return this.reads.unread;
  }

  /** @returns {Receipt[]} the readers' cursors as last known */
  get receipts() {
    return [...this.reads.receipts.values()];
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
      this.takeCursor(joined, false);
      this.moveTo("joined");
      return;
    }
    if (since !== undefined) {
      // Not everything could be replayed (too much missed, or a new epoch
      // whose seqs are below ours): start over from a fresh join.
      this.rejoin(false);
      return;
    }
    if (joined.epoch !== this.epoch) this.reads.receipts.clear();
    this.seq = joined.seq;
    this.epoch = joined.epoch;
    this.fold.clear();
    this.fold.apply(joined.history);
    this.moveTo("joined");
    this.events.emit("reset", {
      history: joined.history,
      messages: this.messages,
      seq: joined.seq,
      epoch: joined.epoch,
      reason: this.resets++ === 0 ? "joined" : "not_recovered",
    });
    this.takeCursor(joined, true);
  }

  /**
   * The read state a `joined` brings (protocol 1.1).
   * @param {Joined} joined
   * @param {boolean} fresh a fresh join: the cursor may be lower (a new epoch)
   * @private
   */
  takeCursor(joined, fresh) {
    if (typeof joined.read_seq !== "number") return;
    if (fresh) this.reads.reset(joined.read_seq, joined.unread ?? 0);
    else this.reads.update(joined.read_seq, joined.unread ?? 0);
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
      if (frame.state === "online") this.members.set(frame.user.id, frame.status ? { ...frame.user, status: frame.status } : frame.user);
      else this.members.delete(frame.user.id);
      this.events.emit("presence", frame);
      this.events.emit("roster", this.roster);
    } else if (frame.type === "typing") {
      this.events.emit("typing", frame);
    } else if (frame.type === "receipt") {
      this.onReceipt(frame);
    } else if (typeof frame.seq === "number" && frame.re === undefined) {
      // (A reply that came after its request gave up has `re`: not of the stream.)
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
    const me = this.context.me();
    if (event.client_id && event.from?.id === me) {
      // One of ours, sent before a connection was lost: stored after all.
      this.context.requests.stored(event.client_id, { room: this.name, seq: event.seq, ts: event.ts });
    }
    const updates = this.fold.apply([event]);
    this.events.emit("event", event);
    for (const update of updates) this.events.emit("message", update);
    // Unread: a new message from someone else, or one deleted.
    if (event.type === "message" && !event.deleted && event.from?.id !== me) this.reads.counted(event.seq);
    for (const { message, change } of updates) {
      if (change === "deleted" && message.from?.id !== me) this.reads.uncounted(message.seq);
    }
  }

  /**
   * A reader's `receipt`; one of this user's (another session read) moves the cursor.
   * @param {{user: User | string, seq: number}} frame
   * @private
   */
  onReceipt(frame) {
    const receipt = this.reads.onReceipt(frame);
    if (receipt) this.events.emit("receipt", { room: this.name, ...receipt });
  }

  /**
   * The room's entry of an `inbox` reply (which may lag behind the stream).
   * @param {InboxEntry} entry
   */
  onInbox(entry) {
    this.reads.onInbox(entry, this.state !== "joined" || entry.seq === this.seq);
  }

  /**
   * Moves this user's read cursor to `seq` (default: the newest event), for
   * every session of the user; resolves with the read state after it.
   * @param {number} [seq]
   * @returns {Promise<ReadCursor>}
   */
  markRead(seq = this.seq) {
    return this.reads.markRead(seq, (at) => this.context.requests.request({ type: "read", room: this.name, seq: at }));
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
   * @param {string} text may be empty when the message carries files
   * @param {{clientId?: string, replyTo?: number, attachments?: string[]}} [options] idempotency key
   *   (one is made up); the seq of the message this one replies to; ids of
   *   files uploaded to this room (`client.upload`), 1 to 10
   * @returns {Promise<Ack>}
   */
  send(text, { clientId = this.context.newClientId(), replyTo, attachments } = {}) {
    /** @type {Record<string, any>} */
    const frame = { type: "send", room: this.name, text, client_id: clientId };
    if (replyTo !== undefined) frame.reply_to = replyTo;
    if (attachments?.length) frame.attachments = attachments;
    return this.store(frame);
  }

  /**
   * Replaces the text of one of this user's messages `target` (its seq).
   * @param {number} target
   * @param {string} text
   * @param {{clientId?: string}} [options]
   * @returns {Promise<Ack>}
   */
  edit(target, text, { clientId = this.context.newClientId() } = {}) {
    return this.store({ type: "edit", room: this.name, target, text, client_id: clientId });
  }

  /**
   * Deletes one of this user's messages `target` (its seq).
   * @param {number} target
   * @param {{clientId?: string}} [options]
   * @returns {Promise<Ack>}
   */
  delete(target, { clientId = this.context.newClientId() } = {}) {
    return this.store({ type: "delete", room: this.name, target, client_id: clientId });
  }

  /**
   * Adds or removes this user's `emoji` on the message `target` (its seq); the
   * `ack` has `changed: false` when the user already held it (or did not).
   * @param {number} target
   * @param {string} emoji
   * @param {"add" | "remove"} [op]
   * @param {{clientId?: string}} [options]
   * @returns {Promise<ReactionAck>}
   */
  react(target, emoji, op = "add", { clientId = this.context.newClientId() } = {}) {
    return this.store({ type: "react", room: this.name, target, emoji, op, client_id: clientId });
  }

  /**
   * A request that stores an event: held while the room (re-)joins, sent
   * again after a lost reply within the `client_id` window.
   * @param {Record<string, any>} frame with its `client_id`
   * @returns {Promise<any>}
   * @private
   */
  store(frame) {
    if (this.state === "idle" || this.state === "left" || this.state === "failed") {
      const error = new ChatError(this.state === "idle" ? "not_joined" : "closed", `room ${this.name} is not joined`);
      error.clientId = frame.client_id;
      return Promise.reject(error);
    }
    return this.context.requests.request(frame, { replay: "idempotent", gate: () => this.state === "joined", owner: this.name });
  }

  /**
   * A page of the room's history, oldest first: the newest `limit` events
   * before `before`, or the oldest `limit` after `after`.
   * @param {{before?: number, after?: number, limit?: number}} [options]
   * @returns {Promise<RoomEvent[]>}
   */
  async history({ before, after, limit } = {}) {
    const resets = this.resets;
    // Options left undefined are not sent (JSON has no undefined).
    const page = (await this.context.requests.request({ type: "history", room: this.name, before, after, limit })).messages;
    // Folded in as far as the stream has come (what is newer comes live),
    // unless the room started over meanwhile.
    if (resets === this.resets) this.fold.apply(page.filter((/** @type {RoomEvent} */ e) => e.seq <= this.seq));
    return page;
  }

  /** @returns {Promise<Member[]>} the room's online users, cluster-wide, asked now */
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
