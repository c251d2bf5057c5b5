/**
 * Reconnect delay before attempt `attempt` (0-based): exponential, capped,
 * with "equal jitter" (half fixed, half random) so that the clients of a
 * crashed gateway do not all come back in the same millisecond.
 * @param {number} attempt
 * @param {number} initialMs
 * @param {number} maxMs
 * @param {() => number} [random]
 * @returns {number}
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random?: () => number): number;
/**
 * Time as the library sees it. Everything that waits goes through a
 * {@link Clock}, so tests can run the library on a fake one.
 * @module chat/clock
 */
/**
 * @typedef {Object} Clock
 * @property {() => number} now milliseconds, monotonic enough for timeouts
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 * @property {(handle: unknown) => void} clearTimeout
 */
/** @type {Clock} */
export const realClock: Clock;
export type Clock = {
    /**
     * milliseconds, monotonic enough for timeouts
     */
    now: () => number;
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (handle: unknown) => void;
};
