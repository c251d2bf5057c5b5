// What the page keeps for each room and DM conversation: the messages
// shown, the sends not yet confirmed, read state. No DOM here.

/** Messages kept per room or conversation; older ones are paged in again. */
export const MAX_MESSAGES_PER_VIEW = 1000;
/** Sends shown as pending per view; past this, a new send is refused. */
export const MAX_PENDING_PER_VIEW = 200;
/** Rooms with at most this many online show who has seen the newest messages. */
export const MAX_SEEN_BY_MEMBERS = 10;

/**
 * A message as the page shows it: a room's message as the library folds it
 * (edited, deleted, reactions, the message it replies to), or a `dm`.
 * @typedef {{seq: number, ts: number, text: string, from: {id: string, name: string}, client_id?: string,
 *   edited?: boolean, deleted?: boolean, reactions?: {emoji: string, count: number, mine: boolean, users: {id: string, name: string}[]}[],
 *   replyTo?: {seq: number, from?: {id: string, name: string}, text?: string, deleted?: boolean},
 *   attachments?: import("/chat.js").UploadedFile[]}} Shown
 */

/**
 * A send not confirmed yet. `sending`: handed to the library (which holds
 * it while the connection or the room is not ready: the page shows that as
 * queued); `sent`: stored (acked), its message not shown yet; `failed`: the
 * library gave up, and the user may retry under the same `clientId` (stored
 * once) or discard it.
 * @typedef {{clientId: string, text: string, status: "sending" | "sent" | "failed", error?: string,
 *   replyTo?: {seq: number, from?: {id: string, name: string}, text?: string},
 *   attachments?: import("/chat.js").UploadedFile[]}} Pending
 */
/** @typedef {{user: {id: string, name: string}, seq: number}} Receipt a reader's cursor */
/** @typedef {{id: string, name: string, status?: {state: string, text: string}}} Member */

/** One room or DM conversation. */
export class View {
  /**
   * @param {"room" | "dm"} kind
   * @param {string} id the room's name, or the other user's id
   * @param {string} name what to call it
   */
  constructor(kind, id, name) {
    this.kind = kind;
    this.id = id;
    this.name = name;
    this.key = `${kind}:${id}`;
    /** @type {Shown[]} confirmed messages, in seq order */
    this.messages = [];
    /** @type {Pending[]} in the order they were sent */
    this.pending = [];
    /** Unread messages, as the library counts them (the server's count). */
    this.unread = 0;
    /** This user's read cursor. */
    this.readSeq = 0;
    /** @type {Receipt[]} other readers' cursors (a room's; a conversation's peer) */
    this.receipts = [];
    /** @type {number | null} the message whose reaction picker is open */
    this.picking = null;
    /** Whether the oldest message shown is the first there is. */
    this.complete = false;
    /** Bumped whenever the view starts over: a page of older messages asked for before belongs to the old start. */
    this.generation = 0;
    /** @type {string} a line about the view's history (e.g. a reset) */
    this.notice = "";
    /** @type {Member[]} */
    this.members = [];
    /** @type {Map<string, {name: string, timer: any}>} who is typing */
    this.typing = new Map();
    this.typingSentAt = 0;
    /** When the view was last active (for dropping the oldest DM views). */
    this.active = Date.now();
    this.loading = false;
    /** @type {(() => void) | null} stops following the room (set by the page) */
    this.close = null;
  }

  /**
   * Starts over from `history` (a join, or a room whose history restarted).
   * @param {Shown[]} history oldest first
   * @param {string} me this user's id
   */
  reset(history, me) {
    this.messages = history.slice(-MAX_MESSAGES_PER_VIEW);
    this.complete = history.length === 0 || history[0].seq <= 1;
    this.generation += 1;
    for (const message of history) this.confirm(message, me);
  }

  /**
   * A new message. False when it was shown already.
   * @param {Shown} message
   * @param {string} me
   */
  add(message, me) {
    this.active = Date.now();
    this.confirm(message, me);
    const last = this.messages.at(-1);
    if (last && message.seq <= last.seq) {
      if (this.messages.some((m) => m.seq === message.seq)) return false;
      this.merge([message]);
      return true;
    }
    this.messages.push(message);
    if (this.messages.length > MAX_MESSAGES_PER_VIEW) {
      this.messages.shift();
      this.complete = false;
    }
    return true;
  }

  /**
   * Older (or any) messages, merged in seq order without repeats; the
   * newest are kept when over the cap.
   * @param {Shown[]} page
   */
  merge(page) {
    const bySeq = new Map(this.messages.map((m) => [m.seq, m]));
    for (const message of page) if (!bySeq.has(message.seq)) bySeq.set(message.seq, message);
    const all = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    if (all.length > MAX_MESSAGES_PER_VIEW) this.complete = false;
    this.messages = all.slice(-MAX_MESSAGES_PER_VIEW);
  }

  /**
   * A message of this user's: its pending bubble, if any, is done.
   * @param {Shown} message
   * @param {string} me
   */
  confirm(message, me) {
    if (message.from.id !== me || !message.client_id) return;
    this.pending = this.pending.filter((p) => p.clientId !== message.client_id);
  }

  /**
   * A room's messages as the library holds them now (after a page of older
   * ones was folded in): the newest are kept when over the cap.
   * @param {Shown[]} messages oldest first
   */
  sync(messages) {
    if (messages.length > MAX_MESSAGES_PER_VIEW) this.complete = false;
    this.messages = messages.slice(-MAX_MESSAGES_PER_VIEW);
  }

  /**
   * A send, shown until confirmed.
   * @param {string} text
   * @param {string} clientId
   * @param {Pending["replyTo"]} [replyTo] the message it replies to
   * @param {Pending["attachments"]} [attachments] the files it carries
   * @returns {Pending | null} null when too many are pending already
   */
  pend(text, clientId, replyTo, attachments) {
    const existing = this.pending.find((p) => p.clientId === clientId);
    if (existing) {
      existing.status = "sending";
      existing.error = undefined;
      return existing;
    }
    if (this.pending.length >= MAX_PENDING_PER_VIEW) return null;
    /** @type {Pending} */
    const pending = { clientId, text, status: "sending" };
    if (replyTo) pending.replyTo = replyTo;
    if (attachments?.length) pending.attachments = attachments;
    this.pending.push(pending);
    return pending;
  }

  /**
   * Where to say "Seen by …", and by whom: in a conversation, under this
   * user's newest message the other user has read; in a room of at most
   * {@link MAX_SEEN_BY_MEMBERS} online, under the newest message someone
   * other than its author has read, with all who have.
   * @param {string} me
   * @returns {{seq: number, names: string[]} | null}
   */
  seenBy(me) {
    const others = this.receipts.filter((r) => r.user.id !== me);
    if (others.length === 0 || (this.kind === "room" && this.members.length > MAX_SEEN_BY_MEMBERS)) return null;
    const highest = Math.max(...others.map((r) => r.seq));
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const message = this.messages[i];
      if (message.seq > highest || message.deleted || (this.kind === "dm" && message.from.id !== me)) continue;
      const names = others.filter((r) => r.seq >= message.seq && r.user.id !== message.from.id).map((r) => r.user.name);
      if (names.length) return { seq: message.seq, names };
    }
    return null;
  }

  /**
   * The send was stored (`ack`): its bubble goes when the message shows.
   * @param {string} clientId
   * @param {number} seq
   */
  acked(clientId, seq) {
    if (this.messages.some((m) => m.seq === seq)) {
      this.pending = this.pending.filter((p) => p.clientId !== clientId);
    } else {
      const pending = this.pending.find((p) => p.clientId === clientId);
      if (pending) pending.status = "sent";
    }
  }

  /**
   * @param {string} clientId
   * @param {string} error
   */
  failed(clientId, error) {
    const pending = this.pending.find((p) => p.clientId === clientId);
    if (pending) Object.assign(pending, { status: "failed", error });
  }

  /** @param {string} clientId */
  discard(clientId) {
    this.pending = this.pending.filter((p) => p.clientId !== clientId);
  }
}
