// The chat page served by every gateway at `/`, built on the client library
// at `/chat.js`. Plain DOM: every text that comes from a user is set with
// `textContent` (or `append` of a string), never parsed as HTML.

import { ChatClient } from "/chat.js";

/** Messages kept per room or conversation; older ones are paged in again. */
const MAX_MESSAGES_PER_VIEW = 1000;
/** Messages fetched per "Load older" page. */
const HISTORY_PAGE_MESSAGES = 50;
/** A `typing start` goes out at most this often while the user types. */
const TYPING_REPEAT_MS = 2000;
/** Silence after the last keystroke that sends `typing stop`. */
const TYPING_IDLE_MS = 3000;
/** A remote `typing start` shown without a `stop` disappears after this. */
const TYPING_SHOWN_MS = 6000;
const DEFAULT_ROOMS = ["lobby"];

const $ = (id) => document.getElementById(id);

/**
 * Creates an element. Strings among `children` become text nodes.
 * @param {string} tag
 * @param {Object<string, any>} [props] `class`, `data-*` attributes, or DOM properties
 * @param {...(Node | string)} children
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/**
 * One room or DM conversation as the page shows it.
 * @typedef {{key: string, kind: "room" | "dm", id: string, title: string,
 *   messages: any[], unread: number, members: any[], typing: Map<string, {name: string, timer: any}>,
 *   complete: boolean}} View
 */

/** @type {ChatClient | null} */
let client = null;
/** @type {Map<string, View>} */
const views = new Map();
/** @type {string | null} */
let current = null;
let typingSentAt = 0;
let typingStopTimer = null;

// ---- sign in ----------------------------------------------------------

async function start() {
  let auth = "anonymous";
  try {
    const response = await fetch("/client-config.json");
    if (response.ok) auth = (await response.json()).auth ?? auth;
  } catch {
    // Served elsewhere: assume anonymous.
  }
  const jwt = auth === "jwt";
  $("name-field").hidden = jwt;
  $("name").required = !jwt;
  $("token-field").hidden = !jwt;
  $("token").required = jwt;
  $("name").value = localStorage.getItem("chat.name") ?? "";
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(jwt ? { token: $("token").value.trim() } : { name: $("name").value.trim() });
  });
  $("sign-out").addEventListener("click", signOut);
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    joinRoom($("join-room").value.trim());
    $("join-room").value = "";
  });
  $("dm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("dm-user").value.trim();
    if (user) select(dmView(user, user).key);
    $("dm-user").value = "";
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendText();
  });
  $("text").addEventListener("input", onTyping);
  $("leave").addEventListener("click", () => current && leaveRoom(views.get(current)));
  $("older").addEventListener("click", loadOlder);
  $("scroller").addEventListener("scroll", () => {
    if ($("scroller").scrollTop === 0 && !$("older").hidden) loadOlder();
  });
}

function wsUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

async function signIn(credentials) {
  $("sign-in-error").textContent = "";
  if (credentials.name) {
    // The same name in the same browser is the same anonymous user.
    if (localStorage.getItem("chat.name") === credentials.name) {
      credentials.user = localStorage.getItem("chat.user") ?? undefined;
    }
    localStorage.setItem("chat.name", credentials.name);
  }
  client = new ChatClient(wsUrl(), credentials);
  client.on("state", showState);
  client.on("message", onMessage);
  client.on("dm", onDm);
  client.on("typing", onTypingFrame);
  client.on("roster", ({ room, members }) => {
    const view = views.get(`room:${room}`);
    if (!view) return;
    view.members = members;
    if (view.key === current) renderRoster();
  });
  client.on("rejoined", ({ room, recovered, joined }) => {
    const view = views.get(`room:${room}`);
    if (view && !recovered) resetRoom(view, joined);
  });
  client.on("notice", (notice) => showError(`Notice: ${JSON.stringify(notice.data)}`));
  client.on("error", (err) => showError(err.message));
  $("sign-in").hidden = true;
  $("chat").hidden = false;
  $("sign-out").hidden = false;
  try {
    const welcome = await client.connect();
    $("me").textContent = `${welcome.user.name} (${welcome.user.id})`;
    if (credentials.name) localStorage.setItem("chat.user", welcome.user.id);
  } catch (err) {
    signOut();
    $("sign-in-error").textContent = err.message;
    return;
  }
  const saved = JSON.parse(localStorage.getItem("chat.rooms") ?? "null");
  for (const room of Array.isArray(saved) && saved.length ? saved : DEFAULT_ROOMS) await joinRoom(room);
}

function signOut() {
  client?.close();
  client = null;
  views.clear();
  current = null;
  renderAll();
  $("me").textContent = "";
  $("sign-in").hidden = false;
  $("chat").hidden = true;
  $("sign-out").hidden = true;
}

function showState({ state, node, delayMs, reason }) {
  const status = $("status");
  status.dataset.state = state;
  status.dataset.node = node ?? status.dataset.node ?? "";
  if (state === "open") status.textContent = `Connected to ${node}`;
  else if (state === "connecting") status.textContent = "Connecting…";
  else if (state === "reconnecting" && delayMs !== undefined)
    status.textContent = `Reconnecting in ${(delayMs / 1000).toFixed(1)} s…`;
  else if (state === "reconnecting") status.textContent = "Reconnecting…";
  else status.textContent = reason ? `Disconnected: ${reason}` : "Disconnected";
}

function showError(message) {
  $("error").textContent = message;
}

// ---- rooms and conversations -------------------------------------------

function roomView(room) {
  const key = `room:${room}`;
  if (!views.has(key)) {
    views.set(key, {
      key, kind: "room", id: room, title: `# ${room}`, messages: [], unread: 0, members: [],
      typing: new Map(), complete: false,
    });
  }
  return views.get(key);
}

function dmView(userId, name) {
  const key = `dm:${userId}`;
  if (!views.has(key)) {
    views.set(key, {
      key, kind: "dm", id: userId, title: `@ ${name}`, messages: [], unread: 0, members: [],
      typing: new Map(), complete: true,
    });
  }
  return views.get(key);
}

async function joinRoom(room) {
  if (!room || !client) return;
  try {
    const joined = await client.join(room);
    resetRoom(roomView(room), joined);
    saveRooms();
    select(`room:${room}`);
  } catch (err) {
    showError(`Could not join ${room}: ${err.message}`);
  }
}

function resetRoom(view, joined) {
  view.messages = joined.history.slice(-MAX_MESSAGES_PER_VIEW);
  view.complete = view.messages.length === 0 || view.messages[0].seq <= 1;
  view.members = joined.members;
  if (view.key === current) renderAll();
}

async function leaveRoom(view) {
  if (!view || view.kind !== "room") {
    views.delete(view.key);
  } else {
    try {
      await client.leave(view.id);
    } catch (err) {
      showError(`Could not leave ${view.id}: ${err.message}`);
      return;
    }
    views.delete(view.key);
    saveRooms();
  }
  current = views.keys().next().value ?? null;
  renderAll();
}

function saveRooms() {
  const rooms = [...views.values()].filter((v) => v.kind === "room").map((v) => v.id);
  localStorage.setItem("chat.rooms", JSON.stringify(rooms));
}

function select(key) {
  current = key;
  const view = views.get(key);
  if (view) view.unread = 0;
  renderAll();
  $("text").focus();
}

async function loadOlder() {
  const view = views.get(current);
  if (!view || view.kind !== "room" || view.complete || view.loading) return;
  view.loading = true;
  const scroller = $("scroller");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  try {
    const before = view.messages[0]?.seq;
    const page = await client.history(view.id, { before, limit: HISTORY_PAGE_MESSAGES });
    view.messages = page.concat(view.messages).slice(0, MAX_MESSAGES_PER_VIEW);
    view.complete = page.length === 0 || page[0].seq <= 1;
  } catch (err) {
    showError(`Could not load older messages: ${err.message}`);
  } finally {
    view.loading = false;
  }
  if (view.key === current) {
    renderMessages();
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  }
}

// ---- frames in -----------------------------------------------------------

function add(view, message) {
  view.messages.push(message);
  if (view.messages.length > MAX_MESSAGES_PER_VIEW) {
    view.messages.shift();
    view.complete = false;
  }
  view.typing.delete(message.from.id);
  if (view.key === current) {
    const scroller = $("scroller");
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    $("messages").append(messageItem(message));
    if ($("messages").children.length > MAX_MESSAGES_PER_VIEW) $("messages").firstChild.remove();
    if (atBottom || message.from.id === client?.welcome?.user.id) scroller.scrollTop = scroller.scrollHeight;
    renderTyping();
  } else {
    view.unread += 1;
    renderSidebar();
  }
}

function onMessage(message) {
  const view = views.get(`room:${message.room}`);
  if (view) add(view, message);
}

function onDm(dm) {
  const me = client.welcome.user.id;
  const other = dm.from.id === me ? dm.to : dm.from.id;
  const view = dmView(other, dm.from.id === me ? other : dm.from.name);
  add(view, dm);
  if (!current) select(view.key);
}

function onTypingFrame(frame) {
  const view = views.get(`room:${frame.room}`);
  if (!view) return;
  clearTimeout(view.typing.get(frame.user.id)?.timer);
  if (frame.state === "start") {
    const timer = setTimeout(() => {
      view.typing.delete(frame.user.id);
      if (view.key === current) renderTyping();
    }, TYPING_SHOWN_MS);
    view.typing.set(frame.user.id, { name: frame.user.name, timer });
  } else {
    view.typing.delete(frame.user.id);
  }
  if (view.key === current) renderTyping();
}

// ---- frames out ----------------------------------------------------------

function onTyping() {
  const view = views.get(current);
  if (!view || view.kind !== "room" || !client) return;
  const now = Date.now();
  if (now - typingSentAt > TYPING_REPEAT_MS && $("text").value) {
    client.typing(view.id, "start");
    typingSentAt = now;
  }
  clearTimeout(typingStopTimer);
  typingStopTimer = setTimeout(() => stopTyping(view), TYPING_IDLE_MS);
}

function stopTyping(view) {
  clearTimeout(typingStopTimer);
  if (typingSentAt && view.kind === "room") client?.typing(view.id, "stop");
  typingSentAt = 0;
}

async function sendText() {
  const view = views.get(current);
  const input = $("text");
  const text = input.value;
  if (!view || !client || !text.trim()) return;
  input.value = "";
  stopTyping(view);
  showError("");
  try {
    if (view.kind === "room") await client.send(view.id, text);
    else await client.dm(view.id, text);
  } catch (err) {
    showError(`Not sent: ${err.message}`);
    if (!input.value) input.value = text;
  }
}

// ---- rendering -------------------------------------------------------------

function messageItem(message) {
  const time = new Date(message.ts);
  return el(
    "li",
    { class: "message", "data-seq": message.seq },
    el("time", { dateTime: time.toISOString(), textContent: time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }),
    el("span", { class: "from", textContent: message.from.name }),
    el("span", { class: "text", textContent: message.text }),
  );
}

function renderAll() {
  renderSidebar();
  renderMessages();
  renderRoster();
  renderTyping();
}

function renderSidebar() {
  const item = (view) => {
    const li = el("li", { "data-key": view.key, "aria-current": view.key === current }, view.kind === "room" ? view.id : view.title.slice(2));
    if (view.unread) li.append(el("span", { class: "unread", textContent: String(view.unread) }));
    li.addEventListener("click", () => select(view.key));
    return li;
  };
  const all = [...views.values()];
  $("rooms").replaceChildren(...all.filter((v) => v.kind === "room").map(item));
  $("dms").replaceChildren(...all.filter((v) => v.kind === "dm").map(item));
}

function renderMessages() {
  const view = views.get(current);
  $("title").textContent = view ? view.title : "Join a room";
  $("leave").hidden = !view;
  $("leave").textContent = view?.kind === "dm" ? "Close" : "Leave";
  $("text").disabled = !view;
  $("composer").querySelector("button").disabled = !view;
  $("older").hidden = !view || view.kind !== "room" || view.complete;
  $("messages").replaceChildren(...(view ? view.messages.map(messageItem) : []));
  $("scroller").scrollTop = $("scroller").scrollHeight;
}

function renderRoster() {
  const view = views.get(current);
  const me = client?.welcome?.user.id;
  const members = view?.kind === "room" ? view.members : [];
  $("members").replaceChildren(
    ...members.map((member) => {
      const li = el("li", { "data-user": member.id, title: member.id }, member.name);
      if (member.id === me) {
        li.classList.add("me");
      } else {
        li.addEventListener("click", () => select(dmView(member.id, member.name).key));
      }
      return li;
    }),
  );
}

function renderTyping() {
  const view = views.get(current);
  const names = view ? [...view.typing.values()].map((t) => t.name) : [];
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

start();
