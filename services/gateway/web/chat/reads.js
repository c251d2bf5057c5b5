/**
 * Read state of one room or DM conversation (protocol 1.1): this user's
 * cursor (`readSeq`), the unread count, and the receipts of its readers.
 *
 * - The cursor never moves backwards here either: a report from the server
 *   (`cursor`, `joined`, `inbox`) that is behind what this client knows only
 *   moves what it can.
 * - The unread count is the server's (from `joined`, `cursor`, `inbox`),
 *   plus the messages from others that came after it, minus those deleted.
 * - Receipts keep the highest seq per user. One of this user's own (another
 *   session read) moves the cursor; the room or conversation then counts
 *   again what it can, or asks the server (`inbox`).
 * - `markRead` has at most one `read` in flight; calls made meanwhile are
 *   merged into one that follows it.
 * @module chat/reads
 */

/** @typedef {{id: string, name: string}} User */
/**
 * @typedef {Object} ReadCursor the read state after a change
 * @property {number} readSeq this user's cursor: read up to this seq
 * @property {number} unread messages from others above it, not deleted
 */
/**
 * @typedef {Object} Receipt a reader's cursor
 * @property {User} user
 * @property {number} seq
 */
/** @typedef {import("./frames.js").InboxEntry} InboxEntry */
/**
 * @typedef {Object} Recount what the room or conversation knows, to count again
 * @property {() => string | undefined} me this user's id
 * @property {(readSeq: number) => number | undefined} count the unread
 *   messages above `readSeq`, or undefined when not all of them are known
 * @property {() => void} refresh asks the server (`inbox`) for the count
 */

/** See the module documentation. */
export class ReadState {
  /**
   * @param {Recount} recount
   * @param {() => void} onChange the cursor or the count changed
   */
  constructor(recount, onChange) {
    this.recount = recount;
    this.onChange = onChange;
    this.readSeq = 0;
    this.unread = 0;
    /** @type {Map<string, Receipt>} by user id */
    this.receipts = new Map();
    /** The highest seq asked for by `markRead`. */
    this.wantedSeq = 0;
    /** @type {{seq: number, promise: Promise<ReadCursor>} | null} the `read` in flight */
    this.flight = null;
    /** @type {Promise<ReadCursor> | null} the `read` that follows it */
    this.queued = null;
  }

  /** @returns {ReadCursor} */
  get cursor() {
    return { readSeq: this.readSeq, unread: this.unread };
  }

  /**
   * @param {number} readSeq
   * @param {number} unread
   * @private
   */
  set(readSeq, unread) {
    if (readSeq === this.readSeq && unread === this.unread) return;
    this.readSeq = readSeq;
    this.unread = unread;
    this.onChange();
  }

  /**
   * Starts over from the server's word (a fresh join: a new epoch may have a
   * lower cursor).
   * @param {number} readSeq
   * @param {number} unread
   */
  reset(readSeq, unread) {
    this.wantedSeq = 0;
    this.set(readSeq, unread);
  }

  /**
   * A current report from the server (`cursor`, a resumed `joined`); one
   * behind this client's cursor (a receipt moved it meanwhile) is ignored.
   * @param {number} readSeq
   * @param {number} unread
   */
  update(readSeq, unread) {
    if (readSeq >= this.readSeq) this.set(readSeq, unread);
  }

  /**
   * Moves the cursor, and counts again what can be counted.
   * @param {number} readSeq
   * @returns {boolean} false when it did not move, or the count is not known
   * @private
   */
  moveTo(readSeq) {
    if (readSeq <= this.readSeq) return false;
    const unread = this.recount.count(readSeq);
    this.set(readSeq, unread ?? this.unread);
    return unread !== undefined;
  }

  /**
   * A new message from another user: unread when above the cursor.
   * @param {number} seq
   */
  counted(seq) {
    if (seq > this.readSeq) this.set(this.readSeq, this.unread + 1);
  }

  /**
   * A message from another user was deleted: no longer unread.
   * @param {number} seq
   */
  uncounted(seq) {
    if (seq > this.readSeq && this.unread > 0) this.set(this.readSeq, this.unread - 1);
  }

  /**
   * A `receipt`: kept when higher than the one before. One of this user's
   * (another session read) moves the cursor.
   * @param {{user: User | string, seq: number}} frame
   * @returns {Receipt | null} the receipt, when kept
   */
  onReceipt(frame) {
    const user = typeof frame.user === "string" ? { id: frame.user, name: frame.user } : frame.user;
    if (!user || typeof frame.seq !== "number") return null;
    const known = this.receipts.get(user.id);
    if (known && known.seq >= frame.seq) return null;
    const receipt = { user, seq: frame.seq };
    this.receipts.set(user.id, receipt);
    if (user.id === this.recount.me() && frame.seq > this.readSeq && !this.moveTo(frame.seq)) this.recount.refresh();
    return receipt;
  }

  /**
   * An entry of an `inbox` reply, which may lag behind what this client has.
   * @param {InboxEntry} entry
   * @param {boolean} current whether it is as new as what this client has
   */
  onInbox(entry, current) {
    if (current && entry.read_seq >= this.readSeq) this.set(entry.read_seq, entry.unread);
    else this.moveTo(entry.read_seq);
  }

  /**
   * Asks the server to move the cursor to `seq` (with `ask`), unless it is
   * there and nothing is unread.
   * @param {number} seq
   * @param {(seq: number) => Promise<{seq: number, unread: number}>} ask sends `read`, resolves with `cursor`
   * @returns {Promise<ReadCursor>}
   */
  markRead(seq, ask) {
    if (seq <= this.readSeq && this.unread === 0) return Promise.resolve(this.cursor);
    if (this.flight && seq <= this.flight.seq) return this.flight.promise;
    this.wantedSeq = Math.max(this.wantedSeq, seq);
    if (!this.queued) {
      const inFlight = this.flight ? this.flight.promise.catch(() => {}) : Promise.resolve();
      this.queued = inFlight.then(() => this.send(ask));
    }
    return this.queued;
  }

  /**
   * @param {(seq: number) => Promise<{seq: number, unread: number}>} ask
   * @returns {Promise<ReadCursor>}
   * @private
   */
  send(ask) {
    this.queued = null;
    const seq = this.wantedSeq;
    const promise = ask(seq).then((reply) => {
      this.update(reply.seq, reply.unread);
      return this.cursor;
    });
    const flight = { seq, promise };
    this.flight = flight;
    const landed = () => {
      if (this.flight === flight) this.flight = null;
    };
    promise.then(landed, landed);
    return promise;
  }
}
