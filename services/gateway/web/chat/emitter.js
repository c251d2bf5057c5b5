/**
 * A small typed event emitter: `on` returns its own unsubscribe, and a
 * handler that throws is logged and does not stop the others.
 * @module chat/emitter
 */

/**
 * @template {Record<string, any>} Events a map from event name to payload type
 */
export class Emitter {
  constructor() {
    /** @type {Map<keyof Events, Set<(event: any) => void>>} */
    this.handlers = new Map();
  }

  /**
   * Subscribes to `type`; returns a function that unsubscribes.
   * @template {keyof Events} K
   * @param {K} type
   * @param {(event: Events[K]) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {Events[K]} event
   */
  emit(type, event) {
    for (const handler of [...(this.handlers.get(type) ?? [])]) {
      try {
        handler(event);
      } catch (err) {
        // A broken handler must not break the connection.
        console.error(`chat: a "${String(type)}" handler threw`, err);
      }
    }
  }
}
