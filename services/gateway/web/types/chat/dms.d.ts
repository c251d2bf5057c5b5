/**
 * The seqs of one conversation seen lately, to drop repeats; at most
 * `capacity` are kept (the smallest go first: repeats come from the recent
 * past).
 */
export class SeenSeqs {
    /** @param {number} capacity */
    constructor(capacity: number);
    capacity: number;
    /** @type {Set<number>} */
    seqs: Set<number>;
    /** The newest seq seen. */
    newest: number;
    /**
     * Records `seq`; false when it was seen before.
     * @param {number} seq
     * @returns {boolean}
     */
    add(seq: number): boolean;
}
/**
 * @typedef {Object} ConversationsOptions
 * @property {number} seqsPerConversation
 * @property {number} maxConversations the least recently active is forgotten first
 * @property {(dm: DirectMessage) => void} emit a new DM, in order
 */
/** See the module documentation. */
export class Conversations {
    /**
     * The other user of `dm`'s conversation, as `me` sees it.
     * @param {DirectMessage} dm
     * @param {string} me
     */
    static other(dm: DirectMessage, me: string): string;
    /** @param {ConversationsOptions} options */
    constructor(options: ConversationsOptions);
    options: ConversationsOptions;
    /** @type {Map<string, SeenSeqs>} by the other user's id, least recently active first */
    seen: Map<string, SeenSeqs>;
    /** @type {Map<string, DirectMessage[]>} conversations catching up: the live DMs waiting meanwhile */
    waiting: Map<string, DirectMessage[]>;
    /**
     * @param {string} other
     * @returns {SeenSeqs}
     */
    conversation(other: string): SeenSeqs;
    /**
     * A DM from the server (live, queued, or this client's own, from its ack).
     * @param {DirectMessage} dm
     * @param {string} me
     */
    receive(dm: DirectMessage, me: string): void;
    /**
     * The conversations to catch up on: the other user and the newest seq seen.
     * Their live DMs wait until {@link Conversations#caughtUp}.
     * @returns {Array<[string, number]>}
     */
    startCatchUp(): Array<[string, number]>;
    /**
     * One more conversation to catch up on (one `inbox` named): its live DMs
     * wait until {@link Conversations#caughtUp}.
     * @param {string} other
     */
    startOne(other: string): void;
    /**
     * Reads what a conversation got after `after` while this client was away,
     * page by page with `read`, then lets it go out ({@link Conversations#caughtUp}).
     * @param {string} other
     * @param {number} after
     * @param {(options: {after: number, limit: number}) => Promise<DirectMessage[]>} read `history` `{dm, after, limit}`
     */
    catchUp(other: string, after: number, read: (options: {
        after: number;
        limit: number;
    }) => Promise<DirectMessage[]>): Promise<void>;
    /**
     * A conversation's catch-up is done (`missed` may be empty, for one that
     * failed): what it brought and what waited meanwhile, in seq order, once.
     * @param {string} other
     * @param {DirectMessage[]} missed
     */
    caughtUp(other: string, missed: DirectMessage[]): void;
}
/** One conversation's read state: see the module documentation. */
export class Conversation {
    /**
     * @param {string} id the other user's id
     * @param {ConversationContext} context
     */
    constructor(id: string, context: ConversationContext);
    id: string;
    context: ConversationContext;
    /** @type {Emitter<ConversationEvents>} */
    events: Emitter<ConversationEvents>;
    /** The newest DM seq known (received, or named by `inbox`). */
    latest: number;
    /** @private */
    private reads;
    /**
     * Subscribes to one of the conversation's events; returns a function that unsubscribes.
     * @template {keyof ConversationEvents} K
     * @param {K} type
     * @param {(event: ConversationEvents[K]) => void} handler
     */
    on<K extends keyof ConversationEvents>(type: K, handler: (event: ConversationEvents[K]) => void): () => void;
    /** This user's cursor: read up to this seq. */
    get readSeq(): number;
    /** DMs from the other user above the cursor. */
    get unread(): number;
    /** @returns {Receipt[]} the readers' cursors as last known */
    get receipts(): Receipt[];
    /** How far the other user has read (0: not known). */
    get peerReadSeq(): number;
    /**
     * Moves this user's cursor to `seq` (default: the newest DM known).
     * @param {number} [seq]
     * @returns {Promise<ReadCursor>}
     */
    markRead(seq?: number): Promise<ReadCursor>;
    /**
     * A new DM of the conversation (each once).
     * @param {DirectMessage} dm
     */
    received(dm: DirectMessage): void;
    /**
     * A `receipt` of this conversation.
     * @param {{user: User | string, seq: number}} frame
     */
    onReceipt(frame: {
        user: User | string;
        seq: number;
    }): void;
    /**
     * The conversation's entry of an `inbox` reply.
     * @param {InboxEntry} entry
     */
    onInbox(entry: InboxEntry): void;
}
export type User = {
    id: string;
    name: string;
};
export type DirectMessage = {
    type: "dm";
    from: User;
    to: string;
    text: string;
    ts: number;
    /**
     * the conversation's seq
     */
    seq: number;
    client_id?: string | undefined;
};
export type Requests = import("./requests.js").Requests;
export type ReadCursor = import("./reads.js").ReadCursor;
export type Receipt = import("./reads.js").Receipt;
export type InboxEntry = import("./frames.js").InboxEntry;
export type ConversationEvents = {
    /**
     * the cursor or the unread count changed
     */
    read: ReadCursor & {
        dm: string;
    };
    /**
     * a reader's cursor moved (the other user's, or this user's elsewhere)
     */
    receipt: Receipt & {
        dm: string;
    };
};
/**
 * what a conversation needs from its client
 */
export type ConversationContext = {
    requests: Requests;
    /**
     * this user's id, once welcomed
     */
    me: () => string | undefined;
    /**
     * asks `inbox` soon, for counts only the server knows
     */
    refreshInbox: () => void;
};
export type ConversationsOptions = {
    seqsPerConversation: number;
    /**
     * the least recently active is forgotten first
     */
    maxConversations: number;
    /**
     * a new DM, in order
     */
    emit: (dm: DirectMessage) => void;
};
import { Emitter } from "./emitter.js";
