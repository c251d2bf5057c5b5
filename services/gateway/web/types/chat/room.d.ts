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
    /** @type {Map<string, User>} */
    members: Map<string, User>;
    /** Join requests waiting or in flight. */
    joinsInFlight: number;
    /** How many times the room started over (a first join is the first). */
    resets: number;
    /**
     * Subscribes to one of the room's events; returns a function that unsubscribes.
     * @template {keyof RoomEvents} K
     * @param {K} type
     * @param {(event: RoomEvents[K]) => void} handler
     */
    on<K extends keyof RoomEvents>(type: K, handler: (event: RoomEvents[K]) => void): () => void;
    /** @returns {User[]} the room's online users as last known */
    get roster(): User[];
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
    /** Leaves the room; waiting sends fail with `closed`. */
    leave(): Promise<void>;
    /**
     * Sends a message; waits while the room is joining or rejoining, and
     * resolves with its `ack` once stored.
     * @param {string} text
     * @param {{clientId?: string}} [options] idempotency key (one is made up)
     * @returns {Promise<any>}
     */
    send(text: string, { clientId }?: {
        clientId?: string;
    }): Promise<any>;
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
    /** @returns {Promise<User[]>} the room's online users, cluster-wide, asked now */
    fetchMembers(): Promise<User[]>;
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
export type User = {
    id: string;
    name: string;
};
/**
 * A frame of the room's stream: `message` (and, with protocol 1.1, `edit`,
 * `delete`, `reaction`), with the room's `seq`.
 */
export type RoomEvent = {
    type: string;
    room: string;
    seq: number;
    [field: string]: any;
};
/**
 * the server's `joined` reply
 */
export type Joined = {
    room: string;
    seq: number;
    epoch: string;
    members: User[];
    history: RoomEvent[];
    recovered: boolean;
};
/**
 * the room starts over: what the view held is replaced
 */
export type Reset = {
    /**
     * oldest first
     */
    history: RoomEvent[];
    seq: number;
    epoch: string;
    /**
     * a first join, or a reconnect
     * (or a gap) after which the server could not replay everything missed
     */
    reason: "joined" | "not_recovered";
};
export type RoomEvents = {
    state: {
        state: RoomState;
        error?: ChatError;
    };
    /**
     * each event of the stream once, in seq order
     */
    event: RoomEvent;
    reset: Reset;
    /**
     * the room's online users, after any change
     */
    roster: User[];
    typing: {
        room: string;
        user: User;
        state: "start" | "stop";
    };
    presence: {
        room: string;
        user: User;
        state: "online" | "offline";
    };
};
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
};
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
