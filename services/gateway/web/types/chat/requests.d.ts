/**
 * @typedef {Object} RequestOptions
 * @property {Replay} [replay="always"]
 * @property {() => boolean} [gate] the request waits while this is false
 * @property {(reply: any) => void} [onReply] runs as the reply is read, before any later frame
 * @property {boolean} [counted=true] counts against `maxPendingRequests`
 * @property {string} [owner] a tag for {@link Requests#rejectOwned} (a room's name)
 */
/**
 * @typedef {Object} Entry
 * @property {number} id
 * @property {Record<string, any>} frame
 * @property {(reply: any) => void} resolve
 * @property {(error: ChatError) => void} reject
 * @property {Replay} replay
 * @property {(() => boolean) | undefined} gate
 * @property {((reply: any) => void) | undefined} onReply
 * @property {boolean} counted
 * @property {string | undefined} owner
 * @property {boolean} sent on the current socket, awaiting the reply
 * @property {number} firstSentAt 0 until first sent
 * @property {unknown} timer
 */
/**
 * @typedef {Object} RequestsOptions
 * @property {(data: string) => boolean} send puts a frame on the open socket
 * @property {Clock} clock
 * @property {number} timeoutMs
 * @property {number} maxPending
 * @property {number} clientIdWindowMs
 */
/** See the module documentation. */
export class Requests {
    /** @param {RequestsOptions} options */
    constructor(options: RequestsOptions);
    options: RequestsOptions;
    /** @type {Map<number, Entry>} in the order they were made */
    pending: Map<number, Entry>;
    nextId: number;
    /** Whether the connection is open (requests go out). */
    open: boolean;
    /** @type {number | undefined} from `welcome.limits` */
    maxFrameBytes: number | undefined;
    /** The connection's rate, mirrored: tokens per second, tokens now, refilled when. */
    rate: {
        perSecond: number;
        tokens: number;
        at: number;
    };
    /** @type {unknown} */
    pumpTimer: unknown;
    /** @type {ChatError | null} set by {@link Requests#close} */
    closedWith: ChatError | null;
    /** Requests counted against `maxPendingRequests`. */
    get count(): number;
    /**
     * @param {Record<string, any>} frame without `id`
     * @param {RequestOptions} [options]
     * @returns {Promise<any>}
     */
    request(frame: Record<string, any>, { replay, gate, onReply, counted, owner }?: RequestOptions): Promise<any>;
    /**
     * The connection is open: take its limits, and send what waits.
     * @param {{limits?: Record<string, number>}} welcome
     */
    opened(welcome: {
        limits?: Record<string, number>;
    }): void;
    /**
     * The connection was lost: each request in flight follows its replay rule.
     * @param {number} code the close code
     */
    lost(code: number): void;
    /**
     * A frame from the server: true when it was a reply to a request.
     * @param {any} frame
     * @returns {boolean}
     */
    receive(frame: any): boolean;
    /**
     * A `send` or `dm` that is waiting to be sent again turned out to be
     * stored (its event came, with its `client_id`, in a re-join's history):
     * it resolves with an `ack` made from the event, and is not sent again.
     * @param {string} clientId
     * @param {{seq: number, ts: number, room?: string, to?: string}} ack
     */
    stored(clientId: string, ack: {
        seq: number;
        ts: number;
        room?: string;
        to?: string;
    }): void;
    /**
     * The end: every request rejects with `error`, now and from now on.
     * @param {ChatError} error
     */
    close(error: ChatError): void;
    /**
     * Rejects the requests of `owner` that have not been sent.
     * @param {string} owner
     * @param {ChatError} error
     */
    rejectOwned(owner: string, error: ChatError): void;
    /**
     * Takes a rate token for a frame sent outside the queue (`typing`); false
     * when the queue is waiting for tokens or none is free.
     * @returns {boolean}
     */
    takeToken(): boolean;
    /** Sends what may go, in order, as fast as the rate allows. */
    pump(): void;
    /**
     * @param {Entry} entry
     * @private
     */
    private transmit;
    /**
     * @param {Entry} entry
     * @param {any} reply
     * @param {ChatError | null} error
     * @private
     */
    private settle;
}
export type Clock = import("./clock.js").Clock;
export type Replay = "always" | "idempotent" | "never";
export type RequestOptions = {
    replay?: Replay | undefined;
    /**
     * the request waits while this is false
     */
    gate?: (() => boolean) | undefined;
    /**
     * runs as the reply is read, before any later frame
     */
    onReply?: ((reply: any) => void) | undefined;
    /**
     * counts against `maxPendingRequests`
     */
    counted?: boolean | undefined;
    /**
     * a tag for {@link Requests#rejectOwned} (a room's name)
     */
    owner?: string | undefined;
};
export type Entry = {
    id: number;
    frame: Record<string, any>;
    resolve: (reply: any) => void;
    reject: (error: ChatError) => void;
    replay: Replay;
    gate: (() => boolean) | undefined;
    onReply: ((reply: any) => void) | undefined;
    counted: boolean;
    owner: string | undefined;
    /**
     * on the current socket, awaiting the reply
     */
    sent: boolean;
    /**
     * 0 until first sent
     */
    firstSentAt: number;
    timer: unknown;
};
export type RequestsOptions = {
    /**
     * puts a frame on the open socket
     */
    send: (data: string) => boolean;
    clock: Clock;
    timeoutMs: number;
    maxPending: number;
    clientIdWindowMs: number;
};
import { ChatError } from "./errors.js";
