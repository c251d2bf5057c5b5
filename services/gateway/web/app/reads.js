// Read state on the page: unread counts from the server (rooms and
// conversations), marking read what the user has on screen while the page
// is visible, "Seen by …" from receipts, the conversations with unread DMs
// at sign-in, and this user's status.

import { $, renderRoster, renderSeen, renderSidebar } from "/app/render.js";

/** @typedef {import("/app/views.js").View} View */
/** @typedef {import("/app/render.js").Page} Page */
/** @typedef {import("/chat.js").ChatClient} ChatClient */
/**
 * A room's or a conversation's read state, as the library keeps it.
 * @typedef {{readSeq: number, unread: number, receipts: import("/app/views.js").Receipt[],
 *   on: (type: any, handler: (event: any) => void) => () => void}} ReadSource
 */
/**
 * @typedef {Object} ReadsContext
 * @property {Page} page
 * @property {() => ChatClient | null} client the signed-in client
 * @property {(message: string) => void} showError
 * @property {(id: string, name: string) => View} dmView the conversation's view, made if new
 */

/** See the module comment. */
export class Reads {
  /** @param {ReadsContext} context */
  constructor(context) {
    this.context = context;
    document.addEventListener("visibilitychange", () => {
      const { page } = this.context;
      if (!this.context.client()) return;
      renderSidebar(page);
      const view = page.current ? page.views.get(page.current) : undefined;
      if (view) this.markSeen(view);
    });
    $("presence-form").addEventListener("submit", (/** @type {Event} */ event) => {
      event.preventDefault();
      this.setStatus();
    });
  }

  /**
   * Keeps `view`'s unread count, cursor and receipts as `source` has them.
   * @param {View} view
   * @param {ReadSource} source
   * @returns {Array<() => void>} unsubscribes
   */
  follow(view, source) {
    const { page } = this.context;
    view.unread = source.unread;
    view.readSeq = source.readSeq;
    view.receipts = source.receipts;
    return [
      source.on("read", ({ readSeq, unread }) => {
        view.readSeq = readSeq;
        view.unread = unread;
        renderSidebar(page);
        if (unread > 0) this.markSeen(view);
      }),
      source.on("receipt", () => {
        view.receipts = source.receipts;
        renderSeen(page, view);
      }),
    ];
  }

  /**
   * Moves the read cursor over what `view` shows, if it is on screen and
   * the page is visible, and something from someone else is unread.
   * @param {View} view
   */
  markSeen(view) {
    const { page } = this.context;
    const client = this.context.client();
    if (!client || view.key !== page.current || !page.visible()) return;
    const unseen = view.messages.some((m) => m.seq > view.readSeq && m.from.id !== page.me);
    if (view.unread === 0 && !unseen) return;
    const newest = view.messages.at(-1)?.seq ?? 0;
    const reading = view.kind === "room"
      ? client.room(view.id).markRead()
      : client.conversation(view.id).markRead(Math.max(newest, client.conversation(view.id).latest));
    reading.catch(() => {}); // the next message or visit tries again
  }

  /** After sign-in: the conversations with unread DMs show in the sidebar. */
  async openUnread() {
    const client = this.context.client();
    if (!client) return;
    let inbox;
    try {
      inbox = await client.inbox();
    } catch {
      return; // a server without inbox, or gone: the DMs still come live
    }
    if (this.context.client() !== client) return;
    for (const entry of inbox.dms) {
      if (!entry.dm || entry.unread === 0) continue;
      const last = entry.last;
      this.context.dmView(entry.dm, last?.from?.id === entry.dm ? last.from.name : entry.dm);
    }
    renderSidebar(this.context.page);
  }

  /** The status form was submitted. */
  async setStatus() {
    const client = this.context.client();
    if (!client) return;
    const state = $("presence-state").value;
    const text = $("presence-text").value.trim();
    try {
      await client.setStatus(state, text);
      $("presence-saved").textContent = `Status: ${state}${text ? `, ${text}` : ""}`;
      this.context.showError("");
    } catch (err) {
      this.context.showError(`Could not set the status: ${/** @type {Error} */ (err).message}`);
    }
    renderRoster(this.context.page);
  }

  /** Signed out: the status form starts over. */
  clear() {
    $("presence-state").value = "online";
    $("presence-text").value = "";
    $("presence-saved").textContent = "";
  }
}
