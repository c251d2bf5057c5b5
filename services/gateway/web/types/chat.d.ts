export { Requests } from "./chat/requests.js";
export { Room } from "./chat/room.js";
export { ChatError } from "./chat/errors.js";
export { Emitter } from "./chat/emitter.js";
export { ChatClient, newClientId } from "./chat/client.js";
export { Connection, TRANSITIONS, FINAL_CLOSE_CODES, BACKOFF_KEEPING_CLOSE_CODES } from "./chat/connection.js";
export { Conversations, SeenSeqs } from "./chat/dms.js";
export { backoffDelay, realClock } from "./chat/clock.js";
