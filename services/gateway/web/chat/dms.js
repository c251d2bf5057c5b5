/**
 * Direct-message conversations as the client follows them: each DM once,
 * each conversation in seq order, and catch-up after a reconnect.
 *
 * DMs reach a client live, from the queue of DMs kept while the user had no
 * session (right after `welcome`, at least once), and from catch-up: after
 * every reconnect, each conversation this client knows is read with
 * `history` `{dm, after}` from the newest seq it has, which brings what went
 * to the user's other sessions (or anywhere) while this one was away. While
 * a conversation catches up, its live DMs wait, so that it stays in order.
 *
 * Each conversation's read state (protocol 1.1) is a {@link Conversation}:
 * `client.conversation(id)`.
 * - `unread` is the server's count (`inbox`, `cursor`) plus the DMs from
 *   the other user that came since, above the cursor.
 * - Receipts: the other user's (`peerReadSeq`: they read up to there) and
 *   this user's own from its other sessions, which move the cursor; when
 *   that cursor is below the newest DM known, the client asks `inbox` for
 *   the count.
 * @module chat/dms
 */

import { Emitter } from "./emitter.js";
import { ReadState } from "./reads.js";

/** @typedef {{id: string, name: string}} User */
/**
 * @typedef {Object} DirectMessage
 * @property {"dm"} type
 * @property {User} from
 * @property {string} to
 * @property {string} text
 * @property {number} ts
 * @property {number} seq the conversation's seq
 * @property {string} [client_id]
 */
/** @typedef {import("./requests.js").Requests} Requests */
/** @typedef {import("./reads.js").ReadCursor} ReadCursor */
/** @typedef {import("./reads.js").Receipt} Receipt */
/** @typedef {import("./frames.js").InboxEntry} InboxEntry */
/**
 * @typedef {Object} ConversationEvents
 * @property {ReadCursor & {dm: string}} read the cursor or the unread count changed
 * @property {Receipt & {dm: string}} receipt a reader's cursor moved (the other user's, or this user's elsewhere)
 */
/**
 * @typedef {Object} ConversationContext what a conversation needs from its client
 * @property {Requests} requests
 * @property {() => string | undefined} me this user's id, once welcomed
 * @property {() => void} refreshInbox asks `inbox` soon, for counts only the server knows
 */

/** The most DMs one catch-up read asks for (the server's page limit). */
const CATCH_UP_PAGE = 1000;

/**
 * The seqs of one conversation seen lately, to drop repeats; at most
 * `capacity` are kept (the smallest go first: repeats come from the recent
 * past).
 */
export class SeenSeqs {
  /** @param {number} capacity */
  constructor(capacity) {
    this.capacity = Math.max(1, capacity);
    /** @type {Set<number>} */
    this.seqs = new Set();
    /** The newest seq seen. */
    this.newest = 0;
  }

  /**
   * Records `seq`; false when it was seen before.
   * @param {number} seq
   * @returns {boolean}
   */
  add(seq) {
    if (this.seqs.has(seq)) return false;
    this.seqs.add(seq);
    this.newest = Math.max(this.newest, seq);
    if (this.seqs.size > this.capacity) {
      let smallest = Infinity;
      for (const s of this.seqs) smallest = Math.min(smallest, s);
      this.seqs.delete(smallest);
    }
    return true;
  }
}

/**
 * @typedef {Object} ConversationsOptions
 * @property {number} seqsPerConversation
 * @property {number} maxConversations the least recently active is forgotten first
 * @property {(dm: DirectMessage) => void} emit a new DM, in order
 */

/** See the module documentation. */
export class Conversations {
  /** @param {ConversationsOptions} options */
  constructor(options) {
    this.options = options;
    /** @type {Map<string, SeenSeqs>} by the other user's id, least recently active first */
    this.seen = new Map();
    /** @type {Map<string, DirectMessage[]>} conversations catching up: the live DMs waiting meanwhile */
    this.waiting = new Map();
  }

  /**
   * The other user of `dm`'s conversation, as `me` sees it.
   * @param {DirectMessage} dm
   * @param {string} me
   */
  static other(dm, me) {
    return dm.from.id === me ? dm.to : dm.from.id;
  }

  /**
   * @param {string} other
   * @returns {SeenSeqs}
   */
  conversation(other) {
    const seen = this.seen.get(other) ?? new SeenSeqs(this.options.seqsPerConversation);
    this.seen.delete(other);
    this.seen.set(other, seen);
    if (this.seen.size > this.options.maxConversations) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return seen;
  }

  /**
   * A DM from the server (live, queued, or this client's own, from its ack).
   * @param {DirectMessage} dm
   * @param {string} me
   */
  receive(dm, me) {
    const other = Conversations.other(dm, me);
    const waiting = this.waiting.get(other);
    if (waiting) {
      waiting.push(dm);
      return;
    }
    if (this.conversation(other).add(dm.seq)) this.options.emit(dm);
  }

  /**
   * The conversations to catch up on: the other user and the newest seq seen.
   * Their live DMs wait until {@link Conversations#caughtUp}.
   * @returns {Array<[string, number]>}
   */
  startCatchUp() {
    const known = [...this.seen.entries()].map(([other, seen]) => /** @type {[string, number]} */ ([other, seen.newest]));
    for (const [other] of known) this.waiting.set(other, []);
    return known;
  }

  /**
   * One more conversation to catch up on (one `inbox` named): its live DMs
   * wait until {@link Conversations#caughtUp}.
   * @param {string} other
   */
  startOne(other) {
    if (!this.waiting.has(other)) this.waiting.set(other, []);
  }

  /**
   * Reads what a conversation got after `after` while this client was away,
   * page by page with `read`, then lets it go out ({@link Conversations#caughtUp}).
   * @param {string} other
   * @param {number} after
   * @param {(options: {after: number, limit: number}) => Promise<DirectMessage[]>} read `history` `{dm, after, limit}`
   */
  async catchUp(other, after, read) {
    /** @type {DirectMessage[]} */
    const missed = [];
    try {
      for (;;) {
        const page = await read({ after, limit: CATCH_UP_PAGE });
        missed.push(...page);
        if (page.length < CATCH_UP_PAGE) break;
        after = page[page.length - 1].seq;
      }
    } catch (err) {
      // What was read goes out; the rest comes with the next reconnect.
      console.warn(`chat: catching up on the conversation with ${other} failed`, err);
    }
    this.caughtUp(other, missed);
  }

  /**
   * A conversation's catch-up is done (`missed` may be empty, for one that
   * failed): what it brought and what waited meanwhile, in seq order, once.
   * @param {string} other
   * @param {DirectMessage[]} missed
   */
  caughtUp(other, missed) {
    const waited = this.waiting.get(other) ?? [];
    this.waiting.delete(other);
    const all = [...missed, ...waited].sort((a, b) => a.seq - b.seq);
    const seen = this.conversation(other);
    for (const dm of all) if (seen.add(dm.seq)) this.options.emit(dm);
  }
}

/** One conversation's read state: see the module documentation. */
export class Conversation {
  /**
   * @param {string} id the other user's id
   * @param {ConversationContext} context
   */
  constructor(id, context) {
    this.id = id;
    this.context = context;
    /** @type {Emitter<ConversationEvents>} */
    this.events = new Emitter();
    /** The newest DM seq known (received, or named by `inbox`). */
    this.latest = 0;
    /** @private */
    this.reads = new ReadState(
      {
        me: context.me,
        // Only "all read" can be counted here: the DMs are the client's `dm` events.
        count: (readSeq) => (readSeq >= this.latest ? 0 : undefined),
        refresh: context.refreshInbox,
      },
      () => this.events.emit("read", { dm: this.id, ...this.reads.cursor }),
    );
  }

  /**
   * Subscribes to one of the conversation's events; returns a function that unsubscribes.
   * @template {keyof ConversationEvents} K
   * @param {K} type
   * @param {(event: ConversationEvents[K]) => void} handler
   */
  on(type, handler) {
    return this.events.on(type, handler);
  }

  /** This user's cursor: read up to this seq. */
  get readSeq() {
    return this.reads.readSeq;
  }

  /** DMs from the other user above the cursor. */
  get unread() {
    return this.reads.unread;
  }

  /** @returns {Receipt[]} the readers' cursors as last known */
  get receipts() {
    return [...this.reads.receipts.values()];
  }

  /** How far the other user has read (0: not known). */
  get peerReadSeq() {
    return this.reads.receipts.get(this.id)?.seq ?? 0;
  }

  /**
   * Moves this user's cursor to `seq` (default: the newest DM known).
   * @param {number} [seq]
   * @returns {Promise<ReadCursor>}
   */
  markRead(seq = this.latest) {
    return this.reads.markRead(seq, (at) => this.context.requests.request({ type: "read", dm: this.id, seq: at }));
  }

  /**
   * A new DM of the conversation (each once).
   * @param {DirectMessage} dm
   */
  received(dm) {
    const fresh = dm.seq > this.latest;
    this.latest = Math.max(this.latest, dm.seq);
    // One at or below `latest` was counted by the `inbox` that named it.
    if (fresh && dm.from.id !== this.context.me()) this.reads.counted(dm.seq);
  }

  /**
   * A `receipt` of this conversation.
   * @param {{user: User | string, seq: number}} frame
   */
  onReceipt(frame) {
    const receipt = this.reads.onReceipt(frame);
    if (receipt) this.events.emit("receipt", { dm: this.id, ...receipt });
  }

  /**
   * The conversation's entry of an `inbox` reply.
   * @param {InboxEntry} entry
   */
  onInbox(entry) {
    const current = entry.seq >= this.latest && entry.read_seq >= this.reads.readSeq;
    if (current) this.latest = entry.seq;
    this.reads.onInbox(entry, current);
  }
}
