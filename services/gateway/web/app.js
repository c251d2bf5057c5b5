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
/** Direct conversations kept; the least recently active one goes first. */
const MAX_DM_VIEWS = 100;
/** Failed connection attempts before a first sign-in gives up. */
const SIGN_IN_ATTEMPTS = 3;
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
 *   complete: boolean, resets: number, loading?: boolean, typingSentAt: number,
 *   failed?: {text: string, clientId: string}, active: number}} View
 */

/** @type {ChatClient | null} */
let client = null;
/** @type {Map<string, View>} */
const views = new Map();
/** @type {string | null} */
let current = null;
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
  showError("");
  if (credentials.name) {
    // The same name in the same browser is the same anonymous user.
    if (localStorage.getItem("chat.name") === credentials.name) {
      credentials.user = localStorage.getItem("chat.user") ?? undefined;
    }
    localStorage.setItem("chat.name", credentials.name);
  }
  const me = new ChatClient(wsUrl(), credentials);
  client = me;
  let welcomed = false;
  client.on("state", (state) => {
    showState(state);
    // A first sign-in that cannot connect (a bad token, a wrong name, the
    // server down) gives up instead of retrying forever.
    if (!welcomed && state.attempt >= SIGN_IN_ATTEMPTS && state.delayMs !== undefined) {
      signOut();
      $("sign-in-error").textContent =
        `Could not connect (${state.reason || "refused"}): check the ${credentials.token ? "token" : "name"}, or try again later.`;
    }
  });
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
    if (view && !recovered) resetRoom(view, joined, { gap: true });
  });
  client.on("rejoin_failed", ({ room, error }) => {
    const view = views.get(`room:${room}`);
    if (view) dropView(view);
    showError(`Left ${room}: ${error.message}`);
  });
  client.on("notice", (notice) => {
    const data = notice.data;
    $("notice").textContent = typeof data === "string" ? data : JSON.stringify(data);
  });
  client.on("error", (err) => showError(err.message));
  $("sign-in").hidden = true;
  $("chat").hidden = false;
  $("sign-out").hidden = false;
  let welcome;
  try {
    welcome = await client.connect();
  } catch (err) {
    if (client === me) {
      signOut();
      $("sign-in-error").textContent = err.message;
    }
    return;
  }
  welcomed = true;
  $("me").textContent = `${welcome.user.name} (${welcome.user.id})`;
  if (credentials.name) localStorage.setItem("chat.user", welcome.user.id);
  for (const room of savedRooms()) {
    if (client !== me) return; // signed out meanwhile
    await joinRoom(room, { userAction: false });
  }
}

/** The rooms this user had open last time in this browser. */
function savedRooms() {
  try {
    const saved = JSON.parse(localStorage.getItem(roomsKey()) ?? "null");
    if (Array.isArray(saved) && saved.length) return saved.filter((r) => typeof r === "string");
  } catch {
    // Unreadable: start from the default.
  }
  return DEFAULT_ROOMS;
}

const roomsKey = () => `chat.rooms.${client?.welcome?.user.id ?? ""}`;

function signOut() {
  client?.close();
  client = null;
  for (const view of views.values()) clearTyping(view);
  clearTimeout(typingStopTimer);
  views.clear();
  current = null;
  renderAll();
  $("me").textContent = "";
  $("text").value = "";
  $("notice").textContent = "";
  showError("");
  showState({ state: "idle" });
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
  else if (state === "idle") status.textContent = "Not connected";
  else status.textContent = reason ? `Disconnected: ${reason}` : "Disconnected";
}

function showError(message) {
  $("error").textContent = message;
}

// ---- rooms and conversations -------------------------------------------

function roomView(room) {
  const key = `room:${room}`;
  if (!views.has(key)) {
    views.set(key, newView(key, "room", room, `# ${room}`));
  }
  return views.get(key);
}

function dmView(userId, name) {
  const key = `dm:${userId}`;
  if (!views.has(key)) {
    const dms = [...views.values()].filter((v) => v.kind === "dm" && v.key !== current);
    if (dms.length >= MAX_DM_VIEWS) views.delete(dms.sort((a, b) => a.active - b.active)[0].key);
    views.set(key, { ...newView(key, "dm", userId, `@ ${name}`), complete: true });
  }
  return views.get(key);
}

function newView(key, kind, id, title) {
  return {
    key, kind, id, title, messages: [], unread: 0, members: [], typing: new Map(),
    complete: false, resets: 0, typingSentAt: 0, active: Date.now(),
  };
}

function clearTyping(view) {
  for (const { timer } of view.typing.values()) clearTimeout(timer);
  view.typing.clear();
}

async function joinRoom(room, { userAction = true } = {}) {
  if (!room || !client) return;
  try {
    const joined = await client.join(room);
    resetRoom(roomView(room), joined);
    saveRooms();
    select(`room:${room}`, { userAction });
  } catch (err) {
    showError(`Could not join ${room}: ${err.message}`);
  }
}

/**
 * Starts a room's view from a `joined`: on join, and after a reconnect that
 * could not replay everything missed (`gap`: a marker says so).
 */
function resetRoom(view, joined, { gap = false } = {}) {
  view.messages = joined.history.slice(-MAX_MESSAGES_PER_VIEW);
  if (gap) view.messages.unshift({ gap: true, seq: 0 });
  view.complete = joined.history.length === 0 || joined.history[0].seq <= 1;
  view.members = joined.members;
  view.resets += 1; // a page of older messages still loading belongs to the old start
  clearTyping(view);
  if (view.key === current) renderAll();
  else renderSidebar();
}

async function leaveRoom(view) {
  if (!view) return;
  if (view.kind === "room") {
    stopTyping(view);
    try {
      await client.leave(view.id);
    } catch (err) {
      showError(`Could not leave ${view.id}: ${err.message}`);
      return;
    }
  }
  dropView(view);
}

function dropView(view) {
  if (view.key === current) clearTimeout(typingStopTimer);
  view.typingSentAt = 0;
  clearTyping(view);
  views.delete(view.key);
  if (view.kind === "room") saveRooms();
  if (current === view.key) current = views.keys().next().value ?? null;
  renderAll();
}

function saveRooms() {
  const rooms = [...views.values()].filter((v) => v.kind === "room").map((v) => v.id);
  localStorage.setItem(roomsKey(), JSON.stringify(rooms));
}

/** Shows a room or conversation; `userAction` when the user asked for it. */
function select(key, { userAction = true } = {}) {
  const previous = views.get(current);
  if (previous && previous.key !== key) stopTyping(previous);
  current = key;
  const view = views.get(key);
  if (view) view.unread = 0;
  renderAll();
  // Into the message box; a room joined by the page itself (at sign-in)
  // does not take the focus from a box the user is typing in.
  const typingElsewhere = ["INPUT", "TEXTAREA"].includes(document.activeElement?.tagName);
  if (userAction || !typingElsewhere) $("text").focus();
}

/** Whether "Load older messages" has anything to do. */
const canLoadOlder = (view) =>
  view?.kind === "room" && !view.complete && view.messages.length < MAX_MESSAGES_PER_VIEW &&
  !view.messages[0]?.gap;

async function loadOlder() {
  const view = views.get(current);
  if (!canLoadOlder(view) || view.loading) return;
  view.loading = true;
  const resets = view.resets;
  const scroller = $("scroller");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  try {
    const before = view.messages[0]?.seq;
    const page = await client.history(view.id, { before, limit: HISTORY_PAGE_MESSAGES });
    if (view.resets !== resets) return; // the room started afresh meanwhile
    // Older pages stop at the cap, so the newest messages are never dropped.
    view.messages = page.slice(-(MAX_MESSAGES_PER_VIEW - view.messages.length)).concat(view.messages);
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
  view.active = Date.now();
  if (view.messages.length > MAX_MESSAGES_PER_VIEW) {
    view.messages.shift();
    view.complete = false;
  }
  clearTimeout(view.typing.get(message.from.id)?.timer);
  view.typing.delete(message.from.id);
  if (view.key === current) {
    const scroller = $("scroller");
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    $("messages").append(messageItem(message));
    if ($("messages").children.length > MAX_MESSAGES_PER_VIEW) $("messages").firstChild.remove();
    if (atBottom || message.from.id === client?.welcome?.user.id) scroller.scrollTop = scroller.scrollHeight;
    renderTyping();
  } else if (message.from.id !== client?.welcome?.user.id) {
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
  if (!current) select(view.key, { userAction: false });
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
  if (now - view.typingSentAt > TYPING_REPEAT_MS && $("text").value) {
    if (client.typing(view.id, "start")) view.typingSentAt = now;
  }
  clearTimeout(typingStopTimer);
  typingStopTimer = setTimeout(() => stopTyping(view), TYPING_IDLE_MS);
}

function stopTyping(view) {
  clearTimeout(typingStopTimer);
  // Only to a room still joined, and only after a start went out.
  if (view.typingSentAt && views.get(view.key) === view) client?.typing(view.id, "stop");
  view.typingSentAt = 0;
}

async function sendText() {
  const view = views.get(current);
  const input = $("text");
  const text = input.value;
  if (!view || !client || !text.trim()) return;
  input.value = "";
  stopTyping(view);
  showError("");
  // Sending the text that just failed again reuses its key: if the first
  // try was stored after all (`unavailable`, `timeout`), it is not stored twice.
  const clientId = view.failed?.text === text ? view.failed.clientId : undefined;
  view.failed = undefined;
  try {
    if (view.kind === "room") await client.send(view.id, text, { clientId });
    else await client.dm(view.id, text, { clientId });
  } catch (err) {
    showError(`Not sent (${err.code}): ${err.message}. Press Send to try again.`);
    if (err.clientId) view.failed = { text, clientId: err.clientId };
    if (!input.value && view.key === current) input.value = text;
  }
}

// ---- rendering -------------------------------------------------------------

function messageItem(message) {
  if (message.gap) {
    return el("li", { class: "gap" }, "Some messages from while you were away could not be recovered.");
  }
  const time = new Date(message.ts);
  return el(
    "li",
    { class: "message", "data-seq": message.seq },
    el("time", { dateTime: time.toISOString(), textContent: time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }),
    el("span", { class: "from", title: message.from.id, textContent: message.from.name }),
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
  $("older").hidden = !canLoadOlder(view);
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
