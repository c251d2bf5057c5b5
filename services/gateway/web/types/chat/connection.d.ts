/** @typedef {import("./clock.js").Clock} Clock */
/** @typedef {"idle" | "connecting" | "open" | "reconnecting" | "closed"} ConnectionState */
/**
 * The moves the connection may make, from each state.
 * @type {Readonly<Record<ConnectionState, readonly ConnectionState[]>>}
 */
export const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>>;
/** Close codes after which the connection does not come back by itself. */
export const FINAL_CLOSE_CODES: Set<number>;
/**
 * Closes that say the server had trouble with this client (slow consumer,
 * internal error): the backoff keeps growing however long the connection
 * lasted, so that a client is not caught in a fast reconnect loop.
 */
export const BACKOFF_KEEPING_CLOSE_CODES: Set<number>;
/** A connection that lasted this long resets the backoff (unless closed as above). */
export const STABLE_CONNECTION_MS: 5000;
/**
 * How long the server is asked why an attempt failed before the client
 * retries without an answer (a server that hangs must not hold it).
 */
export const DIAGNOSE_TIMEOUT_MS: 2000;
/** Heartbeat assumed when `welcome` names none. */
export const DEFAULT_HEARTBEAT_MS: 25000;
/**
 * @typedef {Object} StateEvent
 * @property {ConnectionState} state
 * @property {number} attempt connection attempts since the last stable connection
 * @property {string} [node] with `open`: the gateway
 * @property {number} [delayMs] with `reconnecting`: the wait before the next attempt
 * @property {number} [code] the close code that ended the last socket, when there was one
 * @property {string} [reason] why the last socket ended
 * @property {boolean} [opened] with `reconnecting`: whether the socket that ended had been welcomed
 * @property {import("./errors.js").ChatError} [error] with `closed`: why, when the client gave up by itself
 * @property {Refusal} [refusal] with `reconnecting`: why the server refused the attempt, when it said
 */
/**
 * Why a handshake was refused, as the server answers a plain `GET` of the
 * same URL (a browser cannot read a refused handshake: it sees 1006).
 * @typedef {Object} Refusal
 * @property {number} status the HTTP status (0: the server could not be reached)
 * @property {string} code the protocol's error code (`unauthorized`, `too_many_connections`, `unavailable`, …)
 * @property {string} message
 */
/**
 * Refusals after which another attempt with the same credentials cannot
 * succeed: the connection closes with a `ChatError` of that code.
 */
export const FINAL_REFUSALS: Set<string>;
/**
 * @typedef {Object} ConnectionEvents
 * @property {StateEvent} state every move
 * @property {any} welcome the first frame of each socket
 * @property {any} frame every other frame, parsed
 * @property {{code: number, reason: string}} lost a socket that had been
 *   opened is gone (before the move to `reconnecting` or `closed`)
 */
/**
 * @typedef {Object} ConnectionOptions
 * @property {() => (string | Promise<string>)} url the URL for the next attempt (a token may be fetched)
 * @property {typeof WebSocket} WebSocket
 * @property {Clock} clock
 * @property {number} welcomeTimeoutMs how long an attempt waits for `welcome`
 * @property {number} reconnectInitialMs
 * @property {number} reconnectMaxMs
 * @property {EventTarget} [window] `online` and `offline` come from here
 * @property {EventTarget & {visibilityState?: string}} [document] `visibilitychange` comes from here
 * @property {(url: string) => Promise<Refusal | null>} [diagnose] after an attempt that failed before
 *   `welcome`: why it was refused (`null`: it would not be now)
 */
/** See the module documentation. */
export class Connection {
    /** @param {ConnectionOptions} options */
    constructor(options: ConnectionOptions);
    options: ConnectionOptions;
    /** @type {Emitter<ConnectionEvents>} */
    events: Emitter<ConnectionEvents>;
    /** @type {ConnectionState} */
    state: ConnectionState;
    /** Attempts since the last stable connection. */
    attempt: number;
    /** @type {WebSocket | null} */
    socket: WebSocket | null;
    /** @type {unknown} */
    timer: unknown;
    /** @type {unknown} */
    probeTimer: unknown;
    /** When the current socket's `welcome` came (0: none yet). */
    openedAt: number;
    /** When the last frame came. */
    lastFrameAt: number;
    heartbeatMs: number;
    /** @type {Array<() => void>} */
    unlisten: Array<() => void>;
    /** The URL of the current attempt (for {@link ConnectionOptions.diagnose}). */
    attemptUrl: string;
    /**
     * Moves to `state` if {@link TRANSITIONS} allows it, and tells.
     * @param {ConnectionState} state
     * @param {Omit<StateEvent, "state" | "attempt">} [details]
     * @returns {boolean} whether it moved
     */
    moveTo(state: ConnectionState, details?: Omit<StateEvent, "state" | "attempt">): boolean;
    /** Starts connecting (from `idle` only). */
    open(): void;
    /**
     * Closes for good: the socket, the timers, the listeners.
     * @param {import("./errors.js").ChatError} [error] why, when the client gives up by itself
     */
    close(error?: import("./errors.js").ChatError): void;
    /**
     * Sends a frame on the open socket.
     * @param {string} data
     * @returns {boolean} false when there is no open socket (nothing was sent)
     */
    send(data: string): boolean;
    /** @private */
    private attemptNow;
    /**
     * @param {WebSocket} socket
     * @param {MessageEvent} event
     * @private
     */
    private onMessage;
    /**
     * The socket is gone: why, and what next (another attempt, or the end).
     * @param {WebSocket} socket
     * @param {number} code
     * @param {string} reason
     * @private
     */
    private lost;
    /**
     * An attempt failed before `welcome`: asks the server why, then closes
     * (a refusal no retry can pass) or waits out the backoff, telling why.
     * @param {string} url
     * @param {number} code
     * @param {string} reason
     * @private
     */
    private diagnoseThenRetry;
    /**
     * Waits out the backoff, then attempts again.
     * @param {number} code
     * @param {string} reason
     * @param {boolean} [opened] whether the socket that ended had been welcomed
     * @param {Refusal} [refusal] why the server refused the attempt
     * @private
     */
    private retryLater;
    /**
     * The network came back or the page became visible: while waiting to
     * reconnect, try now; while open, check the socket is alive now rather
     * than after up to three heartbeats.
     * @private
     */
    private wake;
    /**
     * Every heartbeat without a frame: a `ping`, and a socket that stays
     * silent for another heartbeat is dead (a browser cannot see WebSocket
     * pings, nor a peer that vanished).
     * @private
     */
    private scheduleProbe;
    /**
     * Sends a `ping`; no frame within a heartbeat means the socket is dead.
     * @private
     */
    private probe;
    /** @private */
    private listenToEnvironment;
    /** @private */
    private clearTimers;
    /**
     * Detaches the current socket, so its late events are ignored, and closes it.
     * @param {number} code
     * @param {string} reason
     * @private
     */
    private dropSocket;
}
export type Clock = import("./clock.js").Clock;
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";
export type StateEvent = {
    state: ConnectionState;
    /**
     * connection attempts since the last stable connection
     */
    attempt: number;
    /**
     * with `open`: the gateway
     */
    node?: string | undefined;
    /**
     * with `reconnecting`: the wait before the next attempt
     */
    delayMs?: number | undefined;
    /**
     * the close code that ended the last socket, when there was one
     */
    code?: number | undefined;
    /**
     * why the last socket ended
     */
    reason?: string | undefined;
    /**
     * with `reconnecting`: whether the socket that ended had been welcomed
     */
    opened?: boolean | undefined;
    /**
     * with `closed`: why, when the client gave up by itself
     */
    error?: ChatError | undefined;
    /**
     * with `reconnecting`: why the server refused the attempt, when it said
     */
    refusal?: Refusal | undefined;
};
/**
 * Why a handshake was refused, as the server answers a plain `GET` of the
 * same URL (a browser cannot read a refused handshake: it sees 1006).
 */
export type Refusal = {
    /**
     * the HTTP status (0: the server could not be reached)
     */
    status: number;
    /**
     * the protocol's error code (`unauthorized`, `too_many_connections`, `unavailable`, …)
     */
    code: string;
    message: string;
};
export type ConnectionEvents = {
    /**
     * every move
     */
    state: StateEvent;
    /**
     * the first frame of each socket
     */
    welcome: any;
    /**
     * every other frame, parsed
     */
    frame: any;
    /**
     * a socket that had been
     * opened is gone (before the move to `reconnecting` or `closed`)
     */
    lost: {
        code: number;
        reason: string;
    };
};
export type ConnectionOptions = {
    /**
     * the URL for the next attempt (a token may be fetched)
     */
    url: () => (string | Promise<string>);
    WebSocket: typeof WebSocket;
    clock: Clock;
    /**
     * how long an attempt waits for `welcome`
     */
    welcomeTimeoutMs: number;
    reconnectInitialMs: number;
    reconnectMaxMs: number;
    /**
     * `online` and `offline` come from here
     */
    window?: EventTarget | undefined;
    /**
     * `visibilitychange` comes from here
     */
    document?: (EventTarget & {
        visibilityState?: string;
    }) | undefined;
    /**
     * after an attempt that failed before
     * `welcome`: why it was refused (`null`: it would not be now)
     */
    diagnose?: ((url: string) => Promise<Refusal | null>) | undefined;
};
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
