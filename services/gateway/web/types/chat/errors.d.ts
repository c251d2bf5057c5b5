/**
 * The one error type of the library.
 * @module chat/errors
 */
/**
 * An `error` frame from the server, or a failure of the client itself.
 *
 * `code` is the protocol's error code (`bad_request`, `not_joined`,
 * `rate_limited`, `unavailable`, …) or one of the client's:
 * - `timeout`: no reply within `requestTimeoutMs` of being sent;
 * - `closed`: the client was closed, or a room was left or failed;
 * - `queue_full`: `maxPendingRequests` are already waiting;
 * - `too_large`: over `welcome.limits.max_frame_bytes` (the server would
 *   close the connection with 1009);
 * - `expired`: a `send` or `dm` whose reply was lost could not be sent again
 *   inside the server's `client_id` window, so a retry could store it twice;
 * - `token_expired`: (the `error` of a `closed` state) a connection attempt
 *   failed and the token, with no `getToken` to renew it, is past its `exp`.
 */
export class ChatError extends Error {
    /**
     * @param {string} code
     * @param {string} message
     * @param {number} [retryAfterMs] with `rate_limited`
     */
    constructor(code: string, message: string, retryAfterMs?: number);
    /** @type {string} */
    code: string;
    /** @type {number | undefined} */
    retryAfterMs: number | undefined;
    /**
     * With a failed `send` or `dm`: its idempotency key. Retry with it
     * (`{clientId}`): after `unavailable`, `timeout` or `expired` the message
     * may have been stored, and the same key keeps it from being stored twice
     * (within the server's 5-minute window).
     * @type {string | undefined}
     */
    clientId: string | undefined;
}
