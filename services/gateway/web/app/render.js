// Drawing the page from its state. Every text that comes from a user is set
// with `textContent` (or `append` of a string), never parsed as HTML.

import { el, messageItem, pendingItem, redrawMessage, spoken } from "./message.js";
import { MAX_MESSAGES_PER_VIEW } from "./views.js";

/** @typedef {import("./views.js").View} View */
/** @typedef {import("./views.js").Shown} Shown */
/** @typedef {import("./views.js").Pending} Pending */

/** @param {string} id */
export const $ = (id) => /** @type {any} */ (document.getElementById(id));

/**
 * What the page draws from, and what its controls do.
 * @typedef {Object} Page
 * @property {Map<string, View>} views
 * @property {string | null} current
 * @property {string | undefined} me this user's id
 * @property {() => boolean} online whether the connection is open
 * @property {(key: string) => void} select
 * @property {(id: string, name: string) => void} openDm
 * @property {(view: View, pending: Pending) => void} retry
 * @property {(view: View, pending: Pending) => void} discard
 * @property {(view: View, message: Shown) => void} reply sets the message the next send replies to
 * @property {(view: View, message: Shown) => void} edit puts one of this user's messages in the composer
 * @property {(view: View, message: Shown) => void} remove deletes one of this user's messages
 * @property {(view: View, message: Shown, emoji: string, op: "add" | "remove") => void} react
 * @property {(view: View, seq: number | null, options?: {focusBack?: number}) => void} pick opens (or closes) a message's reaction picker
 * @property {() => boolean} visible whether the user can see the page
 * @property {(path: string) => string} fileUrl a file's URL with the user's credentials
 * @property {() => {state: string, text: string} | null} status this user's status
 */

/** @param {Page} page */
export function renderAll(page) {
  renderSidebar(page);
  renderMessages(page);
  renderRoster(page);
  renderTyping(page);
}

/** @param {Page} page */
export function renderSidebar(page) {
  /** @param {View} view */
  const item = (view) => {
    const selected = view.key === page.current;
    const button = el("button", { type: "button", class: "view", "data-key": view.key }, view.name);
    if (selected) button.setAttribute("aria-current", "true");
    // The view on screen is marked read as it is seen.
    if (view.unread && !(selected && page.visible())) {
      button.append(el("span", { class: "unread" }, String(view.unread), spoken(" unread")));
    }
    button.addEventListener("click", () => page.select(view.key));
    return el("li", { "data-key": view.key }, button);
  };
  const all = [...page.views.values()];
  $("rooms").replaceChildren(...all.filter((v) => v.kind === "room").map(item));
  $("dms").replaceChildren(...all.filter((v) => v.kind === "dm").map(item));
}

/** Whether "Load older messages" has anything to do. */
export const canLoadOlder = (/** @type {View | undefined} */ view) =>
  !!view && !view.complete && view.messages.length < MAX_MESSAGES_PER_VIEW && view.messages.length > 0;

/** @param {Page} page */
export function renderMessages(page) {
  const view = page.current ? page.views.get(page.current) : undefined;
  $("title").textContent = view ? (view.kind === "room" ? `# ${view.name}` : `@ ${view.name}`) : "Join a room";
  $("leave").hidden = !view;
  $("leave").textContent = view?.kind === "dm" ? "Close" : "Leave";
  $("call").hidden = view?.kind !== "dm";
  $("text").disabled = !view;
  $("composer").querySelector("button").disabled = !view;
  $("attach").disabled = view?.kind !== "room";
  $("older").hidden = !canLoadOlder(view);
  $("view-notice").textContent = view?.notice ?? "";
  $("messages").setAttribute("aria-label", view ? `Messages in ${view.kind === "room" ? view.name : `your conversation with ${view.name}`}` : "Messages");
  const seen = view && page.me ? view.seenBy(page.me) : null;
  $("messages").replaceChildren(
    ...(view ? view.messages.map((m) => messageItem(page, view, m, seen?.seq === m.seq ? seen.names : null)) : []),
    ...(view ? view.pending.map((p) => pendingItem(page, view, p)) : []),
  );
  $("scroller").scrollTop = $("scroller").scrollHeight;
}

/**
 * Draws one message of the view on screen again (it changed).
 * @param {Page} page
 * @param {View} view
 * @param {Shown} message
 */
export function renderMessage(page, view, message) {
  if (view.key !== page.current) return;
  const seen = page.me ? view.seenBy(page.me) : null;
  redrawMessage(page, view, message, seen?.seq === message.seq ? seen.names : null);
}

/**
 * Moves "Seen by …" to where it belongs now (a receipt came, or a message).
 * @param {Page} page
 * @param {View} view
 */
export function renderSeen(page, view) {
  if (view.key !== page.current || !page.me) return;
  const seen = view.seenBy(page.me);
  const list = $("messages");
  for (const line of list.querySelectorAll(".message .seen")) {
    if (line.closest(".message").dataset.seq !== String(seen?.seq)) line.remove();
  }
  const message = seen && view.messages.find((m) => m.seq === seen.seq);
  if (message) redrawMessage(page, view, message, seen.names);
}

/**
 * Adds one new message to the view on screen, and redraws its pending
 * sends. Only the new item is added to the log (a screen reader announces
 * it alone); the reader's place is kept unless they were at the bottom.
 * @param {Page} page
 * @param {View} view
 * @param {Shown} message
 */
export function renderNewest(page, view, message) {
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const list = $("messages");
  const newest = view.messages.at(-1);
  if (newest !== message) {
    renderMessages(page); // merged in among older ones
    return;
  }
  renderPending(page, view);
  const firstPending = list.querySelector(".pending");
  if (firstPending) firstPending.before(messageItem(page, view, message));
  else list.append(messageItem(page, view, message));
  const shown = list.querySelectorAll(".message:not(.pending)");
  for (let i = 0; i < shown.length - view.messages.length; i++) shown[i].remove();
  $("older").hidden = !canLoadOlder(view);
  if (atBottom || message.from.id === page.me) scroller.scrollTop = scroller.scrollHeight;
}

/**
 * Redraws the pending sends of the view on screen.
 * @param {Page} page
 * @param {View} view
 */
export function renderPending(page, view) {
  const list = $("messages");
  for (const item of list.querySelectorAll(".pending")) item.remove();
  list.append(...view.pending.map((p) => pendingItem(page, view, p)));
}

/** @param {Page} page */
export function renderRoster(page) {
  const view = page.current ? page.views.get(page.current) : undefined;
  const members = view?.kind === "room" ? view.members : [];
  $("members").replaceChildren(
    ...members.map((member) => {
      const status = member.id === page.me ? page.status() ?? member.status : member.status;
      const state = status?.state ?? "online";
      // The state in words (the dot's colour alone says nothing to some), and the text they set.
      const text = status?.text ?? "";
      const words = state === "online" ? text : text ? `${state}: ${text}` : state;
      const said = el("span", { class: "status-text", textContent: words });
      if (member.id === page.me) {
        return el("li", { "data-user": member.id, "data-status": state, class: "me", title: member.id }, member.name, spoken(" (you)"), said);
      }
      const button = el("button", { type: "button", title: `Message ${member.name} (${member.id})` }, member.name);
      button.addEventListener("click", () => page.openDm(member.id, member.name));
      return el("li", { "data-user": member.id, "data-status": state }, button, said);
    }),
  );
}

/** @param {Page} page */
export function renderTyping(page) {
  const view = page.current ? page.views.get(page.current) : undefined;
  const names = view ? [...view.typing.values()].map((t) => t.name) : [];
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

const STATUS_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};

/** What the page says while it waits after a refused attempt, by the server's reason. */
const REFUSAL_TEXT = /** @type {Record<string, string>} */ ({
  too_many_connections: "Too many connections open: waiting to retry…",
  unavailable: "The server is unavailable: retrying…",
});

/**
 * The connection's state. `#status` is a polite live region: its text
 * changes only when the state does (a screen reader announces "Reconnecting…"
 * once, not every attempt); the countdown beside it is not announced.
 * @param {{state: keyof typeof STATUS_TEXT, node?: string, delayMs?: number, everOpen?: boolean,
 *   refusal?: {code: string}}} event
 */
export function renderState({ state, node, delayMs, everOpen, refusal }) {
  const status = $("status");
  status.dataset.state = state;
  if (node) status.dataset.node = node;
  // Between attempts the state flips connecting ↔ reconnecting: both are "Reconnecting…" once connected before.
  const shown = state === "connecting" && everOpen ? "reconnecting" : state;
  const why = state === "reconnecting" && refusal ? REFUSAL_TEXT[refusal.code] : undefined;
  const text = state === "open" && node ? `Connected to ${node}` : why ?? STATUS_TEXT[shown];
  status.dataset.refusal = why ? refusal?.code ?? "" : "";
  if (status.textContent !== text) status.textContent = text;
  $("retry-in").textContent = state === "reconnecting" && delayMs !== undefined ? `next try in ${Math.ceil(delayMs / 1000)} s` : "";
}
