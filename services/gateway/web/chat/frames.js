/**
 * The shapes of the protocol's frames as the library hands them over, and
 * of a room's events (JSDoc types only: nothing runs here). Field names of
 * frames are the wire's.
 * @module chat/frames
 */

/** @typedef {{id: string, name: string}} User */
/** @typedef {{state: "online" | "away" | "busy", text: string}} Status a user's presence status (protocol 1.1) */
/** @typedef {User & {status?: Status}} Member a user online in a room, with the status they set */
/**
 * A frame of a room's stream: `message` (and, with protocol 1.1, `edit`,
 * `delete`, `reaction`), with the room's `seq`.
 * @typedef {{type: string, room: string, seq: number, [field: string]: any}} RoomEvent
 */
/**
 * @typedef {Object} Welcome each connection's first frame
 * @property {string} session
 * @property {User} user
 * @property {string} node
 * @property {number} heartbeat_ms
 * @property {Record<string, number>} limits
 * @property {string} [protocol] "1.1" from servers of protocol 1.1
 */
/**
 * @typedef {Object} Joined the server's `joined` reply
 * @property {string} room
 * @property {number} seq
 * @property {string} epoch
 * @property {Member[]} members
 * @property {RoomEvent[]} history
 * @property {boolean} recovered
 * @property {number} [read_seq] this user's read cursor (protocol 1.1)
 * @property {number} [unread] (protocol 1.1)
 */
/**
 * @typedef {Object} Ack the reply to a request that stored a message or an event
 * @property {number} seq
 * @property {number} ts
 * @property {string} [room]
 * @property {string} [to]
 * @property {boolean} [delivered] with a DM: false when the recipient had no session
 */
/**
 * @typedef {Object} ReactionAck the reply to `react`: no seq when nothing changed
 * @property {number} [seq]
 * @property {number} ts
 * @property {string} [room]
 * @property {boolean} [changed] false: the user already held (or did not hold) that emoji
 */
/**
 * @typedef {Object} InboxEntry a room or DM conversation of an `inbox` reply
 * @property {string} [room]
 * @property {string} [dm] the other user's id
 * @property {number} seq its latest seq
 * @property {number} read_seq this user's cursor
 * @property {number} unread
 * @property {any} last the newest `message` (or `dm`) frame as the history holds it, or null
 */
/**
 * @typedef {Object} Inbox the reply to `inbox`, newest activity first
 * @property {InboxEntry[]} rooms
 * @property {InboxEntry[]} dms
 */
/**
 * @typedef {Object} Reset the room starts over: what the view held is replaced
 * @property {RoomEvent[]} history oldest first
 * @property {import("./messages.js").Message[]} messages the history folded into messages, oldest first
 * @property {number} seq
 * @property {string} epoch
 * @property {"joined" | "not_recovered"} reason a first join, or a reconnect
 *   (or a gap) after which the server could not replay everything missed
 */
/**
 * @typedef {Object} RoomEvents
 * @property {{state: import("./room.js").RoomState, error?: import("./errors.js").ChatError}} state
 * @property {RoomEvent} event each event of the stream once, in seq order
 * @property {import("./messages.js").MessageUpdate} message a live message, or one a live event changed
 * @property {Reset} reset
 * @property {Member[]} roster the room's online users, after any change
 * @property {{room: string, user: User, state: "start" | "stop"}} typing
 * @property {{room: string, user: User, state: "online" | "offline", status?: Status}} presence
 * @property {import("./reads.js").ReadCursor & {room: string}} read this user's cursor or the unread count changed
 * @property {import("./reads.js").Receipt & {room: string}} receipt a reader's cursor moved (this user's other sessions' too)
 */

export {};
