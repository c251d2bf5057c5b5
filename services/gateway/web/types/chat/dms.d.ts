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
     * A conversation's catch-up is done (`missed` may be empty, for one that
     * failed): what it brought and what waited meanwhile, in seq order, once.
     * @param {string} other
     * @param {DirectMessage[]} missed
     */
    caughtUp(other: string, missed: DirectMessage[]): void;
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
