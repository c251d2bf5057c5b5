/**
 * The chat cluster's JS client library: one ES module entry, no
 * dependencies, no build step. Gateways serve it at `/chat.js` (with its
 * modules under `/chat/`); Node imports the files themselves.
 *
 * ```js
 * import { ChatClient } from "/chat.js";
 * const client = new ChatClient("wss://chat.example.com/ws", { token });
 * await client.connect();
 * const room = client.room("lobby");
 * room.on("reset", ({ history }) => render(history));
 * room.on("event", (event) => append(event));
 * await room.join();
 * await room.send("hello");
 * ```
 *
 * The state machine, the replay rules and the whole API: `docs/client.md`.
 * @module chat
 */

export { ChatClient, newClientId } from "./chat/client.js";
export { Connection, TRANSITIONS, FINAL_CLOSE_CODES, BACKOFF_KEEPING_CLOSE_CODES } from "./chat/connection.js";
export { Requests } from "./chat/requests.js";
export { Room } from "./chat/room.js";
export { Conversations, SeenSeqs } from "./chat/dms.js";
export { ChatError } from "./chat/errors.js";
export { Emitter } from "./chat/emitter.js";
export { backoffDelay, realClock } from "./chat/clock.js";
