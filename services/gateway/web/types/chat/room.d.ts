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
    constructor(name: string, context: RoomContext);
    name: string;
    context: RoomContext;
    /** @type {Emitter<RoomEvents>} */
    events: Emitter<RoomEvents>;
    /** @type {RoomState} */
    state: RoomState;
    /** The newest seq of the stream this client has. */
    seq: number;
    /** @type {string | null} */
    epoch: string | null;
    /** @type {number | undefined} the history the first join asked for */
    limit: number | undefined;
    /** @type {Map<string, Member>} */
    members: Map<string, Member>;
    /** Join requests waiting or in flight. */
    joinsInFlight: number;
    /** How many times the room started over (a first join is the first). */
    resets: number;
    /** @private */
    private fold;
    /** @private */
    private reads;
    /**
     * Subscribes to one of the room's events; returns a function that unsubscribes.
     * @template {keyof RoomEvents} K
     * @param {K} type
     * @param {(event: RoomEvents[K]) => void} handler
     */
    on<K extends keyof RoomEvents>(type: K, handler: (event: RoomEvents[K]) => void): () => void;
    /** @returns {Member[]} the room's online users as last known */
    get roster(): Member[];
    /** @returns {Message[]} the messages loaded, oldest first (at most 1000), in a new array */
    get messages(): Message[];
    /**
     * @param {number} seq
     * @returns {Message | undefined} the message `seq`, if loaded
     */
    message(seq: number): Message | undefined;
    /** The lowest seq of the events loaded (0 when none): older history is before it. */
    get oldestSeq(): number;
    /** This user's cursor: read up to this seq. */
    get readSeq(): number;
    /** Messages from others above the cursor, not deleted. */
    get unread(): number;
    /** @returns {Receipt[]} the readers' cursors as last known */
    get receipts(): Receipt[];
    /**
     * @param {RoomState} state
     * @param {ChatError} [error]
     */
    moveTo(state: RoomState, error?: ChatError): void;
    /**
     * Joins the room; resolves with the `joined` reply (also emitted as `reset`).
     * @param {{limit?: number}} [options] history to replay (server default 50)
     * @returns {Promise<Joined>}
     */
    join({ limit }?: {
        limit?: number;
    }): Promise<Joined>;
    /**
     * @param {Record<string, any>} frame
     * @returns {Promise<Joined>}
     * @private
     */
    private requestJoin;
    /**
     * A `joined` for this room: the reply to a join, or one that came after
     * its request gave up.
     * @param {Joined} joined
     * @param {number} [since] what a re-join asked to resume from
     */
    onJoined(joined: Joined, since?: number): void;
    /**
     * The read state a `joined` brings (protocol 1.1).
     * @param {Joined} joined
     * @param {boolean} fresh a fresh join: the cursor may be lower (a new epoch)
     * @private
     */
    private takeCursor;
    /**
     * Joins again after a reconnect or a gap: with `since` (a resume), or
     * afresh when a resume could not recover everything.
     * @param {boolean} [resume]
     */
    rejoin(resume?: boolean): void;
    /** The connection opened again: catch up on what was missed. */
    connectionOpened(): void;
    /** The connection was lost: the stream is on hold until re-joined. */
    connectionLost(): void;
    /**
     * A live frame of this room.
     * @param {any} frame
     */
    receive(frame: any): void;
    /**
     * Emits an event of the stream unless it was seen.
     * @param {RoomEvent} event
     * @private
     */
    private accept;
    /**
     * A reader's `receipt`; one of this user's (another session read) moves the cursor.
     * @param {{user: User | string, seq: number}} frame
     * @private
     */
    private onReceipt;
    /**
     * The room's entry of an `inbox` reply (which may lag behind the stream).
     * @param {InboxEntry} entry
     */
    onInbox(entry: InboxEntry): void;
    /**
     * Moves this user's read cursor to `seq` (default: the newest event), for
     * every session of the user; resolves with the read state after it.
     * @param {number} [seq]
     * @returns {Promise<ReadCursor>}
     */
    markRead(seq?: number): Promise<ReadCursor>;
    /** Leaves the room; waiting sends fail with `closed`. */
    leave(): Promise<void>;
    /**
     * Sends a message; waits while the room is joining or rejoining, and
     * resolves with its `ack` once stored.
     * @param {string} text may be empty when the message carries files
     * @param {{clientId?: string, replyTo?: number, attachments?: string[]}} [options] idempotency key
     *   (one is made up); the seq of the message this one replies to; ids of
     *   files uploaded to this room (`client.upload`), 1 to 10
     * @returns {Promise<Ack>}
     */
    send(text: string, { clientId, replyTo, attachments }?: {
        clientId?: string;
        replyTo?: number;
        attachments?: string[];
    }): Promise<Ack>;
    /**
     * Replaces the text of one of this user's messages `target` (its seq).
     * @param {number} target
     * @param {string} text
     * @param {{clientId?: string}} [options]
     * @returns {Promise<Ack>}
     */
    edit(target: number, text: string, { clientId }?: {
        clientId?: string;
    }): Promise<Ack>;
    /**
     * Deletes one of this user's messages `target` (its seq).
     * @param {number} target
     * @param {{clientId?: string}} [options]
     * @returns {Promise<Ack>}
     */
    delete(target: number, { clientId }?: {
        clientId?: string;
    }): Promise<Ack>;
    /**
     * Adds or removes this user's `emoji` on the message `target` (its seq); the
     * `ack` has `changed: false` when the user already held it (or did not).
     * @param {number} target
     * @param {string} emoji
     * @param {"add" | "remove"} [op]
     * @param {{clientId?: string}} [options]
     * @returns {Promise<ReactionAck>}
     */
    react(target: number, emoji: string, op?: "add" | "remove", { clientId }?: {
        clientId?: string;
    }): Promise<ReactionAck>;
    /**
     * A request that stores an event: held while the room (re-)joins, sent
     * again after a lost reply within the `client_id` window.
     * @param {Record<string, any>} frame with its `client_id`
     * @returns {Promise<any>}
     * @private
     */
    private store;
    /**
     * A page of the room's history, oldest first: the newest `limit` events
     * before `before`, or the oldest `limit` after `after`.
     * @param {{before?: number, after?: number, limit?: number}} [options]
     * @returns {Promise<RoomEvent[]>}
     */
    history({ before, after, limit }?: {
        before?: number;
        after?: number;
        limit?: number;
    }): Promise<RoomEvent[]>;
    /** @returns {Promise<Member[]>} the room's online users, cluster-wide, asked now */
    fetchMembers(): Promise<Member[]>;
    /**
     * Tells the room's other users that this user is typing, or stopped. Only
     * worth sending live: not queued, and false when not sent.
     * @param {"start" | "stop"} [state]
     * @returns {boolean}
     */
    typing(state?: "start" | "stop"): boolean;
}
export type Requests = import("./requests.js").Requests;
export type RoomState = "idle" | "joining" | "joined" | "rejoining" | "failed" | "left";
export type Message = import("./messages.js").Message;
export type ReadCursor = import("./reads.js").ReadCursor;
export type Receipt = import("./reads.js").Receipt;
export type InboxEntry = import("./frames.js").InboxEntry;
export type User = import("./frames.js").User;
export type Member = import("./frames.js").Member;
export type RoomEvent = import("./frames.js").RoomEvent;
export type Joined = import("./frames.js").Joined;
export type Ack = import("./frames.js").Ack;
export type ReactionAck = import("./frames.js").ReactionAck;
export type Reset = import("./frames.js").Reset;
export type RoomEvents = import("./frames.js").RoomEvents;
/**
 * what a room needs from its client
 */
export type RoomContext = {
    requests: Requests;
    /**
     * whether the connection is open
     */
    isOpen: () => boolean;
    /**
     * a frame outside the queue (typing)
     */
    sendNow: (data: string) => boolean;
    later: (ms: number, fn: () => void) => void;
    /**
     * the wait before a transient re-join failure is tried again
     */
    reconnectInitialMs: number;
    newClientId: () => string;
    /**
     * this user's id, once welcomed
     */
    me: () => string | undefined;
    /**
     * asks `inbox` soon, for counts only the server knows
     */
    refreshInbox: () => void;
};
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
