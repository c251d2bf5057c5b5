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
 * @module chat/dms
 */

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
