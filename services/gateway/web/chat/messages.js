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
export const MAX_WAITING_EVENTS = 1000;
/** Messages kept per room; the oldest go first. */
export const MAX_MESSAGES_PER_ROOM = 1000;
/** Characters of a replied-to message kept in a reply's quote. */
export const QUOTE_CHARS = 140;

/** @typedef {{id: string, name: string}} User */
/** @typedef {import("./frames.js").RoomEvent} RoomEvent */
/**
 * @typedef {Object} Reaction one emoji on a message
 * @property {string} emoji
 * @property {number} count how many users hold it
 * @property {boolean} mine whether this client's user holds it
 * @property {User[]} users who hold it, in the order they added it
 */
/**
 * @typedef {Object} Quote what a reply shows of the message it answers
 * @property {number} seq the replied-to message's seq
 * @property {User} [from] when that message is loaded
 * @property {string} [text] the start of its text, when loaded and not deleted
 * @property {boolean} [deleted] when loaded and deleted
 */
/**
 * A room message with every event about it applied. The library owns it and
 * changes it in place (a `message` event says when); treat it as read-only.
 * @typedef {Object} Message
 * @property {"message"} type
 * @property {string} room
 * @property {number} seq
 * @property {User} from
 * @property {number} ts when it was sent
 * @property {string} text its current text ("" once deleted)
 * @property {boolean} edited
 * @property {number} [editedTs] when it was last edited
 * @property {boolean} deleted
 * @property {Reaction[]} reactions in the order each emoji was first added
 * @property {Quote} [replyTo] the message it replies to
 * @property {string} [client_id]
 * @property {any[]} [attachments]
 */
/** @typedef {"added" | "edited" | "deleted" | "reacted" | "quoted"} MessageChange */
/**
 * @typedef {Object} MessageUpdate a message that came or changed
 * @property {Message} message
 * @property {MessageChange} change `quoted`: the message it replies to changed
 */

/**
 * @typedef {Object} Folded a message and what was applied to it
 * @property {Message} message
 * @property {number} editSeq the seq of the edit that gave its text
 * @property {Map<string, Map<string, {seq: number, op: string, user: User}>>} holders
 *   per emoji, per user id: the latest reaction event
 */

/**
 * A quote of `message` (or of its seq alone, when it is not loaded).
 * @param {number} seq
 * @param {Message | undefined} message
 * @returns {Quote}
 */
function quoteOf(seq, message) {
  if (!message) return { seq };
  if (message.deleted) return { seq, from: message.from, deleted: true };
  const text = message.text.length > QUOTE_CHARS ? `${message.text.slice(0, QUOTE_CHARS - 1)}…` : message.text;
  return { seq, from: message.from, text };
}

/** One room's messages: see the module documentation. */
export class RoomMessages {
  /**
   * @param {string} room
   * @param {() => string | undefined} me this user's id
   */
  constructor(room, me) {
    this.room = room;
    this.me = me;
    /** @type {Map<number, Folded>} */
    this.folded = new Map();
    /** @type {Message[] | null} the messages in seq order, until one is added */
    this.sorted = [];
    /** @type {Map<number, Map<number, RoomEvent>>} by target seq, then by the event's seq */
    this.waiting = new Map();
    this.waitingCount = 0;
    /** The lowest seq of the events loaded (Infinity: none): where older history starts. */
    this.oldest = Infinity;
  }

  /** Forgets everything (the room starts over). */
  clear() {
    this.folded.clear();
    this.sorted = [];
    this.waiting.clear();
    this.waitingCount = 0;
    this.oldest = Infinity;
  }

  /** @returns {Message[]} oldest first */
  list() {
    this.sorted ??= [...this.folded.values()].map((f) => f.message).sort((a, b) => a.seq - b.seq);
    return this.sorted;
  }

  /**
   * @param {number} seq
   * @returns {Message | undefined}
   */
  get(seq) {
    return this.folded.get(seq)?.message;
  }

  /**
   * Folds events in, in the order given (a live one, a resume's, a history
   * page, oldest first), and says what came or changed.
   * @param {RoomEvent[]} events
   * @returns {MessageUpdate[]}
   */
  apply(events) {
    /** @type {MessageUpdate[]} */
    const updates = [];
    for (const event of events) {
      if (typeof event?.seq !== "number") continue;
      this.oldest = Math.min(this.oldest, event.seq);
      if (event.type === "message") this.add(event, updates);
      else if (typeof event.target === "number") this.applyTo(event, updates);
    }
    this.trim();
    return updates;
  }

  /**
   * @param {RoomEvent} event a `message`
   * @param {MessageUpdate[]} updates
   * @private
   */
  add(event, updates) {
    const known = this.folded.get(event.seq);
    if (known) {
      if (event.deleted) this.markDeleted(known, updates);
      return;
    }
    /** @type {Message} */
    const message = {
      type: "message",
      room: event.room ?? this.room,
      seq: event.seq,
      from: event.from,
      ts: event.ts,
      text: event.deleted ? "" : String(event.text ?? ""),
      edited: false,
      deleted: !!event.deleted,
      reactions: [],
    };
    if (event.client_id !== undefined) message.client_id = event.client_id;
    if (event.attachments && !event.deleted) message.attachments = event.attachments;
    if (typeof event.reply_to === "number") message.replyTo = quoteOf(event.reply_to, this.get(event.reply_to));
    /** @type {Folded} */
    const folded = { message, editSeq: 0, holders: new Map() };
    this.folded.set(message.seq, folded);
    this.sorted = null;
    updates.push({ message, change: "added" });
    // What waited for it, in seq order; then the replies loaded before it.
    const waiting = this.waiting.get(message.seq);
    if (waiting) {
      this.waiting.delete(message.seq);
      this.waitingCount -= waiting.size;
      for (const early of [...waiting.values()].sort((a, b) => a.seq - b.seq)) this.applyTo(early, updates);
    }
    this.requote(message, updates);
  }

  /**
   * An edit, delete or reaction.
   * @param {RoomEvent} event
   * @param {MessageUpdate[]} updates
   * @private
   */
  applyTo(event, updates) {
    const folded = this.folded.get(event.target);
    if (!folded) {
      this.wait(event);
      return;
    }
    const { message } = folded;
    if (event.type === "delete") {
      this.markDeleted(folded, updates);
    } else if (event.type === "edit") {
      if (message.deleted || event.seq <= folded.editSeq) return;
      if (event.deleted) {
        // An edit as the history keeps it after a delete.
        this.markDeleted(folded, updates);
        return;
      }
      folded.editSeq = event.seq;
      message.text = String(event.text ?? "");
      message.edited = true;
      message.editedTs = event.ts;
      updates.push({ message, change: "edited" });
      this.requote(message, updates);
    } else if (event.type === "reaction") {
      if (message.deleted || typeof event.emoji !== "string" || !event.from) return;
      let users = folded.holders.get(event.emoji);
      if (!users) folded.holders.set(event.emoji, (users = new Map()));
      const last = users.get(event.from.id);
      if (last && last.seq >= event.seq) return; // seen already, or older than what is applied
      users.set(event.from.id, { seq: event.seq, op: event.op === "remove" ? "remove" : "add", user: event.from });
      this.countReactions(folded);
      updates.push({ message, change: "reacted" });
    }
  }

  /**
   * @param {Folded} folded
   * @param {MessageUpdate[]} updates
   * @private
   */
  markDeleted(folded, updates) {
    const { message } = folded;
    if (message.deleted) return;
    message.deleted = true;
    message.text = "";
    delete message.attachments;
    folded.holders.clear();
    message.reactions = [];
    updates.push({ message, change: "deleted" });
    this.requote(message, updates);
  }

  /**
   * @param {Folded} folded
   * @private
   */
  countReactions(folded) {
    const me = this.me();
    /** @type {Reaction[]} */
    const reactions = [];
    for (const [emoji, users] of folded.holders) {
      const holding = [...users.values()].filter((u) => u.op === "add").sort((a, b) => a.seq - b.seq);
      if (holding.length === 0) continue;
      const list = holding.map((u) => u.user);
      reactions.push({ emoji, count: list.length, mine: list.some((u) => u.id === me), users: list });
    }
    folded.message.reactions = reactions;
  }

  /**
   * The replies to `target` loaded so far quote it anew.
   * @param {Message} target
   * @param {MessageUpdate[]} updates
   * @private
   */
  requote(target, updates) {
    for (const { message } of this.folded.values()) {
      if (message.replyTo?.seq !== target.seq) continue;
      message.replyTo = quoteOf(target.seq, target);
      updates.push({ message, change: "quoted" });
    }
  }

  /**
   * Keeps an event until its target is loaded; the ones for the oldest
   * targets go first past {@link MAX_WAITING_EVENTS}.
   * @param {RoomEvent} event
   * @private
   */
  wait(event) {
    let forTarget = this.waiting.get(event.target);
    if (forTarget?.has(event.seq)) return;
    if (!forTarget) this.waiting.set(event.target, (forTarget = new Map()));
    forTarget.set(event.seq, event);
    this.waitingCount += 1;
    while (this.waitingCount > MAX_WAITING_EVENTS) {
      const oldestTarget = Math.min(...this.waiting.keys());
      const dropped = /** @type {Map<number, RoomEvent>} */ (this.waiting.get(oldestTarget));
      const [first] = dropped.keys();
      dropped.delete(first);
      if (dropped.size === 0) this.waiting.delete(oldestTarget);
      this.waitingCount -= 1;
    }
  }

  /**
   * Over {@link MAX_MESSAGES_PER_ROOM}: the oldest messages go, and older
   * history starts after them.
   * @private
   */
  trim() {
    if (this.folded.size <= MAX_MESSAGES_PER_ROOM) return;
    const list = this.list();
    const drop = list.slice(0, list.length - MAX_MESSAGES_PER_ROOM);
    for (const message of drop) this.folded.delete(message.seq);
    this.sorted = list.slice(drop.length);
    this.oldest = Math.max(this.oldest, drop[drop.length - 1].seq + 1);
  }

  /**
   * The unread messages above `readSeq` (from other users, not deleted),
   * when everything above it is loaded; `latest` is the stream's seq.
   * @param {number} readSeq
   * @param {number} latest
   * @returns {number | undefined}
   */
  unreadAbove(readSeq, latest) {
    if (readSeq >= latest) return 0;
    if (this.oldest > readSeq + 1) return undefined;
    const me = this.me();
    let count = 0;
    for (const { message } of this.folded.values()) {
      if (message.seq > readSeq && !message.deleted && message.from?.id !== me) count += 1;
    }
    return count;
  }
}
