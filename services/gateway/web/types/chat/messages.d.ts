/**
 * A room's messages as its events make them (protocol 1.1): each `message`
 * with its current text (the `edit` with the highest seq), whether it was
 * edited or deleted, its reactions, and a quote of the message it replies to.
 *
 * - Every event is applied at most once in effect, however often it comes
 *   (a resume, a history page that overlaps): an edit counts only when its
 *   seq is above the last one applied, and a reaction is kept per user and
 *   emoji as the op of the highest seq, so an `add` seen twice counts once.
 * - An event whose target is not loaded (a history page can hold events of
 *   messages older than the page) waits, at most {@link MAX_WAITING_EVENTS}
 *   per room, and is applied when its target is loaded; past the bound the
 *   ones for the oldest targets are dropped.
 * - A history entry with `deleted: true` (the server keeps no text of a
 *   deleted message) is a deleted message, as is one a `delete` names.
 * @module chat/messages
 */
/** Events waiting for their target to be loaded, per room. */
export const MAX_WAITING_EVENTS: 1000;
/** Messages kept per room; the oldest go first. */
export const MAX_MESSAGES_PER_ROOM: 1000;
/** Characters of a replied-to message kept in a reply's quote. */
export const QUOTE_CHARS: 140;
/** One room's messages: see the module documentation. */
export class RoomMessages {
    /**
     * @param {string} room
     * @param {() => string | undefined} me this user's id
     */
    constructor(room: string, me: () => string | undefined);
    room: string;
    me: () => string | undefined;
    /** @type {Map<number, Folded>} */
    folded: Map<number, Folded>;
    /** @type {Message[] | null} the messages in seq order, until one is added */
    sorted: Message[] | null;
    /** @type {Map<number, Map<number, RoomEvent>>} by target seq, then by the event's seq */
    waiting: Map<number, Map<number, RoomEvent>>;
    waitingCount: number;
    /** The lowest seq of the events loaded (Infinity: none): where older history starts. */
    oldest: number;
    /** Forgets everything (the room starts over). */
    clear(): void;
    /** @returns {Message[]} oldest first */
    list(): Message[];
    /**
     * @param {number} seq
     * @returns {Message | undefined}
     */
    get(seq: number): Message | undefined;
    /**
     * Folds events in, in the order given (a live one, a resume's, a history
     * page, oldest first), and says what came or changed.
     * @param {RoomEvent[]} events
     * @returns {MessageUpdate[]}
     */
    apply(events: RoomEvent[]): MessageUpdate[];
    /**
     * @param {RoomEvent} event a `message`
     * @param {MessageUpdate[]} updates
     * @private
     */
    private add;
    /**
     * An edit, delete or reaction.
     * @param {RoomEvent} event
     * @param {MessageUpdate[]} updates
     * @private
     */
    private applyTo;
    /**
     * @param {Folded} folded
     * @param {MessageUpdate[]} updates
     * @private
     */
    private markDeleted;
    /**
     * @param {Folded} folded
     * @private
     */
    private countReactions;
    /**
     * The replies to `target` loaded so far quote it anew.
     * @param {Message} target
     * @param {MessageUpdate[]} updates
     * @private
     */
    private requote;
    /**
     * Keeps an event until its target is loaded; the ones for the oldest
     * targets go first past {@link MAX_WAITING_EVENTS}.
     * @param {RoomEvent} event
     * @private
     */
    private wait;
    /**
     * Over {@link MAX_MESSAGES_PER_ROOM}: the oldest messages go, and older
     * history starts after them.
     * @private
     */
    private trim;
    /**
     * The unread messages above `readSeq` (from other users, not deleted),
     * when everything above it is loaded; `latest` is the stream's seq.
     * @param {number} readSeq
     * @param {number} latest
     * @returns {number | undefined}
     */
    unreadAbove(readSeq: number, latest: number): number | undefined;
}
export type User = {
    id: string;
    name: string;
};
export type RoomEvent = import("./frames.js").RoomEvent;
/**
 * one emoji on a message
 */
export type Reaction = {
    emoji: string;
    /**
     * how many users hold it
     */
    count: number;
    /**
     * whether this client's user holds it
     */
    mine: boolean;
    /**
     * who hold it, in the order they added it
     */
    users: User[];
};
/**
 * what a reply shows of the message it answers
 */
export type Quote = {
    /**
     * the replied-to message's seq
     */
    seq: number;
    /**
     * when that message is loaded
     */
    from?: User | undefined;
    /**
     * the start of its text, when loaded and not deleted
     */
    text?: string | undefined;
    /**
     * when loaded and deleted
     */
    deleted?: boolean | undefined;
};
/**
 * A room message with every event about it applied. The library owns it and
 * changes it in place (a `message` event says when); treat it as read-only.
 */
export type Message = {
    type: "message";
    room: string;
    seq: number;
    from: User;
    /**
     * when it was sent
     */
    ts: number;
    /**
     * its current text ("" once deleted)
     */
    text: string;
    edited: boolean;
    /**
     * when it was last edited
     */
    editedTs?: number | undefined;
    deleted: boolean;
    /**
     * in the order each emoji was first added
     */
    reactions: Reaction[];
    /**
     * the message it replies to
     */
    replyTo?: Quote | undefined;
    client_id?: string | undefined;
    attachments?: any[] | undefined;
};
export type MessageChange = "added" | "edited" | "deleted" | "reacted" | "quoted";
/**
 * a message that came or changed
 */
export type MessageUpdate = {
    message: Message;
    /**
     * `quoted`: the message it replies to changed
     */
    change: MessageChange;
};
/**
 * a message and what was applied to it
 */
export type Folded = {
    message: Message;
    /**
     * the seq of the edit that gave its text
     */
    editSeq: number;
    /**
     *   per emoji, per user id: the latest reaction event
     */
    holders: Map<string, Map<string, {
        seq: number;
        op: string;
        user: User;
    }>>;
};
