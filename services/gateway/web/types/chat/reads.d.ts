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
    constructor(recount: Recount, onChange: () => void);
    recount: Recount;
    onChange: () => void;
    readSeq: number;
    unread: number;
    /** @type {Map<string, Receipt>} by user id */
    receipts: Map<string, Receipt>;
    /** The highest seq asked for by `markRead`. */
    wantedSeq: number;
    /** @type {{seq: number, promise: Promise<ReadCursor>} | null} the `read` in flight */
    flight: {
        seq: number;
        promise: Promise<ReadCursor>;
    } | null;
    /** @type {Promise<ReadCursor> | null} the `read` that follows it */
    queued: Promise<ReadCursor> | null;
    /** @returns {ReadCursor} */
    get cursor(): ReadCursor;
    /**
     * @param {number} readSeq
     * @param {number} unread
     * @private
     */
    private set;
    /**
     * Starts over from the server's word (a fresh join: a new epoch may have a
     * lower cursor).
     * @param {number} readSeq
     * @param {number} unread
     */
    reset(readSeq: number, unread: number): void;
    /**
     * A current report from the server (`cursor`, a resumed `joined`); one
     * behind this client's cursor (a receipt moved it meanwhile) is ignored.
     * @param {number} readSeq
     * @param {number} unread
     */
    update(readSeq: number, unread: number): void;
    /**
     * Moves the cursor, and counts again what can be counted.
     * @param {number} readSeq
     * @returns {boolean} false when it did not move, or the count is not known
     * @private
     */
    private moveTo;
    /**
     * A new message from another user: unread when above the cursor.
     * @param {number} seq
     */
    counted(seq: number): void;
    /**
     * A message from another user was deleted: no longer unread.
     * @param {number} seq
     */
    uncounted(seq: number): void;
    /**
     * A `receipt`: kept when higher than the one before. One of this user's
     * (another session read) moves the cursor.
     * @param {{user: User | string, seq: number}} frame
     * @returns {Receipt | null} the receipt, when kept
     */
    onReceipt(frame: {
        user: User | string;
        seq: number;
    }): Receipt | null;
    /**
     * An entry of an `inbox` reply, which may lag behind what this client has.
     * @param {InboxEntry} entry
     * @param {boolean} current whether it is as new as what this client has
     */
    onInbox(entry: InboxEntry, current: boolean): void;
    /**
     * Asks the server to move the cursor to `seq` (with `ask`), unless it is
     * there and nothing is unread.
     * @param {number} seq
     * @param {(seq: number) => Promise<{seq: number, unread: number}>} ask sends `read`, resolves with `cursor`
     * @returns {Promise<ReadCursor>}
     */
    markRead(seq: number, ask: (seq: number) => Promise<{
        seq: number;
        unread: number;
    }>): Promise<ReadCursor>;
    /**
     * @param {(seq: number) => Promise<{seq: number, unread: number}>} ask
     * @returns {Promise<ReadCursor>}
     * @private
     */
    private send;
}
export type User = {
    id: string;
    name: string;
};
/**
 * the read state after a change
 */
export type ReadCursor = {
    /**
     * this user's cursor: read up to this seq
     */
    readSeq: number;
    /**
     * messages from others above it, not deleted
     */
    unread: number;
};
/**
 * a reader's cursor
 */
export type Receipt = {
    user: User;
    seq: number;
};
export type InboxEntry = import("./frames.js").InboxEntry;
/**
 * what the room or conversation knows, to count again
 */
export type Recount = {
    /**
     * this user's id
     */
    me: () => string | undefined;
    /**
     * the unread
     * messages above `readSeq`, or undefined when not all of them are known
     */
    count: (readSeq: number) => number | undefined;
    /**
     * asks the server (`inbox`) for the count
     */
    refresh: () => void;
};
