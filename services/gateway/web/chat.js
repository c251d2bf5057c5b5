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
 * room.on("reset", ({ messages }) => render(messages));
 * room.on("message", ({ message }) => show(message)); // came, or changed
 * await room.join();
 * const { seq } = await room.send("hello");
 * await room.react(seq, "🎉");
 * ```
 *
 * The state machine, the replay rules and the whole API: `docs/client.md`.
 * @module chat
 */

export { ChatClient, newClientId } from "./chat/client.js";
export { Connection, TRANSITIONS, FINAL_CLOSE_CODES, BACKOFF_KEEPING_CLOSE_CODES } from "./chat/connection.js";
export { Requests } from "./chat/requests.js";
export { Room } from "./chat/room.js";
export { Conversation, Conversations, SeenSeqs } from "./chat/dms.js";
export { RoomMessages, MAX_WAITING_EVENTS, MAX_MESSAGES_PER_ROOM, QUOTE_CHARS } from "./chat/messages.js";
export { ReadState } from "./chat/reads.js";
export { ChatError } from "./chat/errors.js";
export { Emitter } from "./chat/emitter.js";
export { backoffDelay, realClock } from "./chat/clock.js";
