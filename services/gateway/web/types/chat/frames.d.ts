export type User = {
    id: string;
    name: string;
};
/**
 * a user's presence status (protocol 1.1)
 */
export type Status = {
    state: "online" | "away" | "busy";
    text: string;
};
/**
 * a user online in a room, with the status they set
 */
export type Member = User & {
    status?: Status;
};
/**
 * A frame of a room's stream: `message` (and, with protocol 1.1, `edit`,
 * `delete`, `reaction`), with the room's `seq`.
 */
export type RoomEvent = {
    type: string;
    room: string;
    seq: number;
    [field: string]: any;
};
/**
 * each connection's first frame
 */
export type Welcome = {
    session: string;
    user: User;
    node: string;
    heartbeat_ms: number;
    limits: Record<string, number>;
    /**
     * "1.1" from servers of protocol 1.1
     */
    protocol?: string | undefined;
};
/**
 * the server's `joined` reply
 */
export type Joined = {
    room: string;
    seq: number;
    epoch: string;
    members: Member[];
    history: RoomEvent[];
    recovered: boolean;
    /**
     * this user's read cursor (protocol 1.1)
     */
    read_seq?: number | undefined;
    /**
     * (protocol 1.1)
     */
    unread?: number | undefined;
};
/**
 * the reply to a request that stored a message or an event
 */
export type Ack = {
    seq: number;
    ts: number;
    room?: string | undefined;
    to?: string | undefined;
    /**
     * with a DM: false when the recipient had no session
     */
    delivered?: boolean | undefined;
};
/**
 * the reply to `react`: no seq when nothing changed
 */
export type ReactionAck = {
    seq?: number | undefined;
    ts: number;
    room?: string | undefined;
    /**
     * false: the user already held (or did not hold) that emoji
     */
    changed?: boolean | undefined;
};
/**
 * a room or DM conversation of an `inbox` reply
 */
export type InboxEntry = {
    room?: string | undefined;
    /**
     * the other user's id
     */
    dm?: string | undefined;
    /**
     * its latest seq
     */
    seq: number;
    /**
     * this user's cursor
     */
    read_seq: number;
    unread: number;
    /**
     * the newest `message` (or `dm`) frame as the history holds it, or null
     */
    last: any;
};
/**
 * the reply to `inbox`, newest activity first
 */
export type Inbox = {
    rooms: InboxEntry[];
    dms: InboxEntry[];
};
/**
 * the room starts over: what the view held is replaced
 */
export type Reset = {
    /**
     * oldest first
     */
    history: RoomEvent[];
    /**
     * the history folded into messages, oldest first
     */
    messages: import("./messages.js").Message[];
    seq: number;
    epoch: string;
    /**
     * a first join, or a reconnect
     * (or a gap) after which the server could not replay everything missed
     */
    reason: "joined" | "not_recovered";
};
export type RoomEvents = {
    state: {
        state: import("./room.js").RoomState;
        error?: import("./errors.js").ChatError;
    };
    /**
     * each event of the stream once, in seq order
     */
    event: RoomEvent;
    /**
     * a live message, or one a live event changed
     */
    message: import("./messages.js").MessageUpdate;
    reset: Reset;
    /**
     * the room's online users, after any change
     */
    roster: Member[];
    typing: {
        room: string;
        user: User;
        state: "start" | "stop";
    };
    presence: {
        room: string;
        user: User;
        state: "online" | "offline";
        status?: Status;
    };
    /**
     * this user's cursor or the unread count changed
     */
    read: import("./reads.js").ReadCursor & {
        room: string;
    };
    /**
     * a reader's cursor moved (this user's other sessions' too)
     */
    receipt: import("./reads.js").Receipt & {
        room: string;
    };
};
