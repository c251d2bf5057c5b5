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
export const realClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(/** @type {any} */ (handle)),
};

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
export function backoffDelay(attempt, initialMs, maxMs, random = Math.random) {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + random() * (base / 2));
}
