/** A new idempotency key. */
export function newClientId(): string;
/**
 * The `exp` claim of a JWT (seconds), read without checking the signature
 * (the server checks it); undefined when there is none or it cannot be read.
 * @param {string} token
 * @returns {number | undefined}
 */
export function jwtExpiry(token: string): number | undefined;
/**
 * Why the server refuses a handshake to `url`: a plain `GET` of the same URL
 * answers the refusal (status and JSON error body), or 426 when nothing
 * would refuse it now (then `null`: a passing fault). A server that cannot
 * be reached is `{status: 0, code: "unavailable"}`.
 * @param {string} url the `ws:` or `wss:` URL of the attempt
 * @param {typeof fetch} fetchImpl
 * @returns {Promise<import("./connection.js").Refusal | null>}
 */
export function refusalOf(url: string, fetchImpl: typeof fetch): Promise<import("./connection.js").Refusal | null>;
/** A WebSocket client of one chat cluster. */
export class ChatClient {
    /**
     * @param {string} url the gateway's WebSocket URL, e.g. `wss://chat.example.com/ws`
     * @param {ChatOptions} [options]
     */
    constructor(url: string, options?: ChatOptions);
    url: string;
    options: {
        /**
         * a JWT, for gateways in `jwt` mode
         */
        token?: string | undefined;
        /**
         * called before every
         * connection attempt, for tokens that expire
         */
        getToken?: (() => (string | Promise<string>)) | undefined;
        /**
         * display name, for gateways in `anonymous` mode
         */
        name?: string | undefined;
        /**
         * user id, for gateways in `anonymous` mode; without
         * one, the id the server makes up is kept for reconnects
         */
        user?: string | undefined;
        /**
         * how long a sent request waits for its reply (10000)
         */
        requestTimeoutMs: number;
        /**
         * first reconnect delay, before jitter (500)
         */
        reconnectInitialMs: number;
        /**
         * largest reconnect delay (30000)
         */
        reconnectMaxMs: number;
        /**
         * requests waiting or in flight, at most (500)
         */
        maxPendingRequests: number;
        /**
         * how long after its first sending a
         * `send` or `dm` whose reply was lost may be sent again (270000: inside the
         * server's 5-minute `client_id` window)
         */
        clientIdWindowMs: number;
        /**
         * DM seqs remembered per conversation (1000)
         */
        dmSeqsPerConversation: number;
        /**
         * conversations remembered (1000)
         */
        maxDmConversations: number;
        /**
         * where there is no global one
         */
        WebSocket?: {
            new (url: string | URL, protocols?: string | string[]): WebSocket;
            prototype: WebSocket;
            readonly CONNECTING: 0;
            readonly OPEN: 1;
            readonly CLOSING: 2;
            readonly CLOSED: 3;
        } | undefined;
        /**
         * asks the gateway why a connection attempt was refused
         * (default: the global `fetch`; `null`: never ask)
         */
        fetch?: typeof fetch | null | undefined;
        /**
         * time, for tests
         */
        clock?: import("./clock.js").Clock | undefined;
        /**
         * `online`/`offline` (default: the browser's `window`)
         */
        window?: EventTarget | undefined;
        /**
         * `visibilitychange` (default: the browser's `document`)
         */
        document?: (EventTarget & {
            visibilityState?: string;
        }) | undefined;
    };
    /** @type {Emitter<ClientEvents>} */
    events: Emitter<ClientEvents>;
    connection: Connection;
    requests: Requests;
    clock: import("./clock.js").Clock;
    /** @type {Map<string, Room>} */
    rooms: Map<string, Room>;
    conversations: Conversations;
    /**
     * @type {Map<string, Conversation>} read state by the other user's id, least recently used first
     * @private
     */
    private readStates;
    /** @type {Status | null} the status this user set (`setStatus`), set again after a reconnect */
    status: Status | null;
    /**
     * @type {unknown} an `inbox` to ask soon
     * @private
     */
    private inboxTimer;
    /** @type {Welcome | null} the latest `welcome` */
    welcome: Welcome | null;
    /** @type {string | undefined} the token of the latest attempt or upload (for file URLs) */
    lastToken: string | undefined;
    /** @type {{resolve: (w: Welcome) => void, reject: (e: ChatError) => void, promise: Promise<Welcome>} | null} */
    firstWelcome: {
        resolve: (w: Welcome) => void;
        reject: (e: ChatError) => void;
        promise: Promise<Welcome>;
    } | null;
    /** @returns {ConnectionState} */
    get state(): ConnectionState;
    /**
     * Subscribes to a client event; returns a function that unsubscribes.
     * @template {keyof ClientEvents} K
     * @param {K} type
     * @param {(event: ClientEvents[K]) => void} handler
     * @returns {() => void}
     */
    on<K extends keyof ClientEvents>(type: K, handler: (event: ClientEvents[K]) => void): () => void;
    /**
     * Opens the connection; resolves with the first `welcome`, and keeps the
     * connection (reconnecting as needed) until {@link ChatClient#close}.
     * Rejects with `closed` if the client is closed first.
     * @returns {Promise<Welcome>}
     */
    connect(): Promise<Welcome>;
    /** Closes for good: waiting requests reject with `closed`, nothing reconnects. */
    close(): void;
    /**
     * The room `name` as this client follows it (the same object every time).
     * Call `join()` on it to join.
     * @param {string} name
     * @returns {Room}
     */
    room(name: string): Room;
    /**
     * The read state of this user's conversation with `user` (the same object
     * every time, while among the `maxDmConversations` used most recently).
     * @param {string} user the other user's id
     * @returns {Conversation}
     */
    conversation(user: string): Conversation;
    /**
     * Every room and DM conversation in which this user has a read cursor,
     * newest activity first (protocol 1.1); the rooms followed and the
     * conversations take their read state from it.
     * @returns {Promise<Inbox>}
     */
    inbox(): Promise<Inbox>;
    /**
     * After a reconnect: conversations this client had not seen that got DMs
     * meanwhile (another device of the user took them live, so the offline
     * queue did not) are named by `inbox`; each catches up on what is unread,
     * from its cursor.
     * @param {Set<string>} known the conversations already catching up
     * @private
     */
    private catchUpNewConversations;
    /**
     * Sets this user's presence status, for all their sessions (protocol
     * 1.1); it is set again after a reconnect.
     * @param {Status["state"]} state
     * @param {string} [text] at most 128 bytes
     * @returns {Promise<Status>}
     */
    setStatus(state: Status["state"], text?: string): Promise<Status>;
    /**
     * Asks `inbox` soon (once, however often called meanwhile): for a count
     * only the server knows, after this user read elsewhere.
     * @private
     */
    private refreshInbox;
    /**
     * Sends a direct message; resolves with its `ack` (`delivered: false`
     * when the recipient had no session: it is kept for their next one). The
     * DM is also emitted as a `dm` event, as the sender's other sessions get it.
     * @param {string} to user id
     * @param {string} text
     * @param {{clientId?: string}} [options] idempotency key (one is made up)
     * @returns {Promise<Ack>}
     */
    dm(to: string, text: string, { clientId }?: {
        clientId?: string;
    }): Promise<Ack>;
    /**
     * A page of this user's conversation with `user`, oldest first: the
     * newest `limit` DMs before `before`, or the oldest `limit` after `after`.
     * @param {string} user the other user's id
     * @param {{before?: number, after?: number, limit?: number}} [options]
     * @returns {Promise<DirectMessage[]>}
     */
    dmHistory(user: string, { before, after, limit }?: {
        before?: number;
        after?: number;
        limit?: number;
    }): Promise<DirectMessage[]>;
    /**
     * Relays `data` at once to every session of `to` (or to its one
     * `session`): never stored, and lost for sessions that are not connected.
     * A signal to this client's own user goes to its other sessions.
     * @param {string} to a user id
     * @param {any} data any JSON value, at most `welcome.limits.max_signal_bytes` as compact JSON
     * @param {string} [session] one session of `to` (from a {@link Signal} it sent)
     * @returns {Promise<number>} how many sessions it went to (0: none connected)
     */
    signal(to: string, data: any, session?: string): Promise<number>;
    /**
     * Uploads a file to `room` (one the user may join), streaming it to the
     * gateway; attach it to a message with `room.send(text, {attachments:
     * [file.id]})` within the hour, or it is removed. Refused uploads reject
     * with the server's code: `too_large` (over 10 MiB by default),
     * `unsupported_type` (a type not allowed, or bytes that are not what the
     * type says), `forbidden`, `rate_limited`, `unauthorized`, `unavailable`.
     * @param {Blob & {name?: string}} file a browser `File`, or any `Blob`
     * @param {string} room
     * @param {{name?: string, onProgress?: (sent: number, total: number) => void}} [options]
     *   the file's name (default: the `File`'s); progress of the upload
     * @returns {Promise<UploadedFile>}
     */
    upload(file: Blob & {
        name?: string;
    }, room: string, { name, onProgress }?: {
        name?: string;
        onProgress?: (sent: number, total: number) => void;
    }): Promise<UploadedFile>;
    /**
     * The full URL of a file's `url` (an attachment's, an upload's), with this
     * client's credentials, for a link or an `<img src>`.
     * @param {string} path
     * @returns {string}
     */
    fileUrl(path: string): string;
    /**
     * An HTTP(S) URL on the gateway with the query `params` and this client's credentials.
     * @param {string} path
     * @param {Record<string, string>} params
     * @private
     */
    private httpUrl;
    /**
     * @param {string} path
     * @param {Record<string, string>} params
     * @param {string | undefined} token
     * @private
     */
    private withCredentials;
    /** @returns {Promise<number>} the server's clock (`pong.ts`) */
    ping(): Promise<number>;
    /** @private */
    private connectUrl;
    /**
     * @param {StateEvent} event
     * @private
     */
    private onState;
    /**
     * Whether the token (with no `getToken` to renew it) is a JWT past its `exp`.
     * @private
     */
    private tokenExpired;
    /**
     * @param {Welcome} welcome
     * @private
     */
    private onWelcome;
    /**
     * @param {any} frame
     * @private
     */
    private onFrame;
}
export type Clock = import("./clock.js").Clock;
export type ConnectionState = import("./connection.js").ConnectionState;
export type StateEvent = import("./connection.js").StateEvent;
export type DirectMessage = import("./dms.js").DirectMessage;
export type User = import("./frames.js").User;
export type Welcome = import("./frames.js").Welcome;
export type Ack = import("./frames.js").Ack;
export type Status = import("./frames.js").Status;
export type Inbox = import("./frames.js").Inbox;
export type ClientEvents = {
    /**
     * every move of the connection
     */
    state: StateEvent;
    /**
     * each connection's first frame
     */
    welcome: Welcome;
    /**
     * each DM once, each conversation in seq order (this client's own included)
     */
    dm: DirectMessage;
    /**
     * an operator's broadcast, or a notice to this user
     */
    notice: {
        type: "notice";
        data: any;
    };
    /**
     * a `signal` from another session (call set-up and other device-to-device messages)
     */
    signal: Signal;
    /**
     * an `error` frame no request was waiting for
     */
    error: ChatError;
};
/**
 * A relayed `signal`. Reply to the one session that sent it with
 * `client.signal(from.id, data, session)`.
 */
export type Signal = {
    type: "signal";
    from: {
        id: string;
        name: string;
    };
    /**
     * the sending session's id
     */
    session: string;
    data: any;
};
/**
 * A file uploaded with {@link ChatClient#upload}: attach it to a message
 * with `room.send(text, {attachments: [file.id]})`.
 */
export type UploadedFile = {
    id: string;
    room: string;
    name: string;
    /**
     * bytes
     */
    size: number;
    content_type: string;
    /**
     * the path to download it from, on any gateway (see {@link ChatClient#fileUrl})
     */
    url: string;
};
export type ChatOptions = {
    /**
     * a JWT, for gateways in `jwt` mode
     */
    token?: string | undefined;
    /**
     * called before every
     * connection attempt, for tokens that expire
     */
    getToken?: (() => (string | Promise<string>)) | undefined;
    /**
     * display name, for gateways in `anonymous` mode
     */
    name?: string | undefined;
    /**
     * user id, for gateways in `anonymous` mode; without
     * one, the id the server makes up is kept for reconnects
     */
    user?: string | undefined;
    /**
     * how long a sent request waits for its reply (10000)
     */
    requestTimeoutMs?: number | undefined;
    /**
     * first reconnect delay, before jitter (500)
     */
    reconnectInitialMs?: number | undefined;
    /**
     * largest reconnect delay (30000)
     */
    reconnectMaxMs?: number | undefined;
    /**
     * requests waiting or in flight, at most (500)
     */
    maxPendingRequests?: number | undefined;
    /**
     * how long after its first sending a
     * `send` or `dm` whose reply was lost may be sent again (270000: inside the
     * server's 5-minute `client_id` window)
     */
    clientIdWindowMs?: number | undefined;
    /**
     * DM seqs remembered per conversation (1000)
     */
    dmSeqsPerConversation?: number | undefined;
    /**
     * conversations remembered (1000)
     */
    maxDmConversations?: number | undefined;
    /**
     * where there is no global one
     */
    WebSocket?: {
        new (url: string | URL, protocols?: string | string[]): WebSocket;
        prototype: WebSocket;
        readonly CONNECTING: 0;
        readonly OPEN: 1;
        readonly CLOSING: 2;
        readonly CLOSED: 3;
    } | undefined;
    /**
     * asks the gateway why a connection attempt was refused
     * (default: the global `fetch`; `null`: never ask)
     */
    fetch?: typeof fetch | null | undefined;
    /**
     * time, for tests
     */
    clock?: import("./clock.js").Clock | undefined;
    /**
     * `online`/`offline` (default: the browser's `window`)
     */
    window?: EventTarget | undefined;
    /**
     * `visibilitychange` (default: the browser's `document`)
     */
    document?: (EventTarget & {
        visibilityState?: string;
    }) | undefined;
};
import { Emitter } from "./emitter.js";
import { Connection } from "./connection.js";
import { Requests } from "./requests.js";
import { Room } from "./room.js";
import { Conversations } from "./dms.js";
import { ChatError } from "./errors.js";
import { Conversation } from "./dms.js";
