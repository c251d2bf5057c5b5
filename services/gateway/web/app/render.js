// Drawing the page from its state. Every text that comes from a user is set
// with `textContent` (or `append` of a string), never parsed as HTML.

import { MAX_MESSAGES_PER_VIEW } from "./views.js";

/** @typedef {import("./views.js").View} View */
/** @typedef {import("./views.js").Shown} Shown */
/** @typedef {import("./views.js").Pending} Pending */

/** @param {string} id */
export const $ = (id) => /** @type {any} */ (document.getElementById(id));

/**
 * Creates an element. Strings among `children` become text nodes.
 * @param {string} tag
 * @param {Record<string, any>} [props] `class`, `data-*`/`aria-*` attributes, or DOM properties
 * @param {...(Node | string)} children
 */
export function el(tag, props = {}, ...children) {
  const node = /** @type {any} */ (document.createElement(tag));
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/** Text only screen readers read (e.g. " unread" after a count). */
const spoken = (text) => el("span", { class: "visually-hidden" }, text);

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
 */

/**
 * @param {Page} page
 * @param {Shown} message
 */
function messageItem(page, message) {
  const time = new Date(message.ts);
  return el(
    "div",
    { class: message.from.id === page.me ? "message mine" : "message", "data-seq": message.seq },
    el("time", { dateTime: time.toISOString(), textContent: time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }),
    el("span", { class: "from", title: message.from.id, textContent: message.from.name }),
    el("span", { class: "text", textContent: message.text }),
  );
}

/**
 * A send not confirmed yet: sending, or failed with Retry and Discard.
 * @param {Page} page
 * @param {View} view
 * @param {Pending} pending
 */
function pendingItem(page, view, pending) {
  const failed = pending.status === "failed";
  const status = pending.status === "sending" && !page.online() ? "queued" : pending.status;
  const label = {
    queued: "Waiting for the connection…",
    sending: "Sending…",
    sent: "Sent",
    failed: `Not sent: ${pending.error}`,
  }[status];
  const item = el(
    "div",
    { class: "message mine pending", "data-status": status, "data-client-id": pending.clientId },
    el("span", { class: "from", textContent: "You" }),
    el("span", { class: "text", textContent: pending.text }),
    el("span", { class: "state", textContent: label }),
  );
  if (failed) {
    const retry = el("button", { type: "button", class: "retry", textContent: "Retry" });
    retry.setAttribute("aria-label", `Retry sending “${pending.text.slice(0, 40)}”`);
    retry.addEventListener("click", () => page.retry(view, pending));
    const discard = el("button", { type: "button", class: "discard", textContent: "Discard" });
    discard.setAttribute("aria-label", `Discard “${pending.text.slice(0, 40)}”`);
    discard.addEventListener("click", () => page.discard(view, pending));
    item.append(retry, discard);
  }
  return item;
}

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
    if (view.unread) {
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
  $("text").disabled = !view;
  $("composer").querySelector("button").disabled = !view;
  $("older").hidden = !canLoadOlder(view);
  $("view-notice").textContent = view?.notice ?? "";
  $("messages").setAttribute("aria-label", view ? `Messages in ${view.kind === "room" ? view.name : `your conversation with ${view.name}`}` : "Messages");
  $("messages").replaceChildren(
    ...(view ? view.messages.map((m) => messageItem(page, m)) : []),
    ...(view ? view.pending.map((p) => pendingItem(page, view, p)) : []),
  );
  $("scroller").scrollTop = $("scroller").scrollHeight;
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
  if (firstPending) firstPending.before(messageItem(page, message));
  else list.append(messageItem(page, message));
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
      if (member.id === page.me) {
        return el("li", { "data-user": member.id, class: "me", title: member.id }, member.name, spoken(" (you)"));
      }
      const button = el("button", { type: "button", title: `Message ${member.name} (${member.id})` }, member.name);
      button.addEventListener("click", () => page.openDm(member.id, member.name));
      return el("li", { "data-user": member.id }, button);
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

/**
 * The connection's state. `#status` is a polite live region: its text
 * changes only when the state does (a screen reader announces "Reconnecting…"
 * once, not every attempt); the countdown beside it is not announced.
 * @param {{state: keyof typeof STATUS_TEXT, node?: string, delayMs?: number, everOpen?: boolean}} event
 */
export function renderState({ state, node, delayMs, everOpen }) {
  const status = $("status");
  status.dataset.state = state;
  if (node) status.dataset.node = node;
  // Between attempts the state flips connecting ↔ reconnecting: both are "Reconnecting…" once connected before.
  const shown = state === "connecting" && everOpen ? "reconnecting" : state;
  const text = state === "open" && node ? `Connected to ${node}` : STATUS_TEXT[shown];
  if (status.textContent !== text) status.textContent = text;
  $("retry-in").textContent = state === "reconnecting" && delayMs !== undefined ? `next try in ${Math.ceil(delayMs / 1000)} s` : "";
}
