/**
 * A small typed event emitter: `on` returns its own unsubscribe, and a
 * handler that throws is logged and does not stop the others.
 * @module chat/emitter
 */
/**
 * @template {Record<string, any>} Events a map from event name to payload type
 */
export class Emitter<Events extends Record<string, any>> {
    /** @type {Map<keyof Events, Set<(event: any) => void>>} */
    handlers: Map<keyof Events, Set<(event: any) => void>>;
    /**
     * Subscribes to `type`; returns a function that unsubscribes.
     * @template {keyof Events} K
     * @param {K} type
     * @param {(event: Events[K]) => void} handler
     * @returns {() => void}
     */
    on<K extends keyof Events>(type: K, handler: (event: Events[K]) => void): () => void;
    /**
     * @template {keyof Events} K
     * @param {K} type
     * @param {Events[K]} event
     */
    emit<K extends keyof Events>(type: K, event: Events[K]): void;
}
