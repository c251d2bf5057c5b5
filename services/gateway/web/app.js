// The chat page served by every gateway at `/`, built on the client library
// at `/chat.js`: signing in, rooms and DMs, messages in. Messages out
// (sends, replies, edits, deletes, reactions, typing) are in app/outbox.js,
// read state and status in app/reads.js, the view model in app/views.js,
// the drawing in app/render.js and app/message.js.

import { ChatClient } from "/chat.js";
import { Outbox } from "/app/outbox.js";
import { Reads } from "/app/reads.js";
import {
  $, renderAll, renderMessage, renderNewest, renderPending, renderRoster, renderSeen, renderSidebar, renderState, renderTyping,
} from "/app/render.js";
import { View } from "/app/views.js";
import { Calls } from "/app/call.js";
import { Uploads } from "/app/uploads.js";

/** Events fetched per "Load older" page, and messages when a conversation opens. */
const HISTORY_PAGE_MESSAGES = 50;
/** A remote `typing start` shown without a `stop` disappears after this. */
const TYPING_SHOWN_MS = 6000;
/** Direct conversations kept; the least recently active one goes first. */
const MAX_DM_VIEWS = 100;
/** Failed connection attempts before a first sign-in gives up. */
const SIGN_IN_ATTEMPTS = 3;
const DEFAULT_ROOMS = ["lobby"];

/** @type {ChatClient | null} the signed-in client; every handler checks it is still this one */
let client = null;

/** @type {import("/app/render.js").Page} */
const page = {
  views: new Map(),
  current: null,
  me: undefined,
  online: () => client?.state === "open",
  visible: () => document.visibilityState === "visible",
  status: () => client?.status ?? null,
  select,
  openDm: (id, name) => select(dmView(id, name).key),
  retry: (view, pending) => outbox.send(view, pending.text, pending.clientId, pending.replyTo, pending.attachments),
  fileUrl: (path) => client?.fileUrl(path) ?? path,
  discard: (view, pending) => {
    view.discard(pending.clientId);
    if (view.key === page.current) renderPending(page, view);
  },
  reply: (view, message) => outbox.start("reply", view, message),
  edit: (view, message) => outbox.start("edit", view, message),
  remove: (view, message) => outbox.remove(view, message),
  react: (view, message, emoji, op) => outbox.react(view, message, emoji, op),
  pick: (view, seq, options) => outbox.pick(view, seq, options),
};
const outbox = new Outbox({ page, client: () => client, showError });
const reads = new Reads({ page, client: () => client, showError, dmView });
/** @type {RTCIceServer[]} STUN/TURN servers for calls, from the gateway's configuration */
let iceServers = [];
const calls = new Calls({ client: () => client, iceServers: () => iceServers, showError });
const uploads = new Uploads({ page, client: () => client, outbox, showError });

// ---- signing in and out ---------------------------------------------------

async function start() {
  let auth = "anonymous";
  try {
    const response = await fetch("/client-config.json");
    if (response.ok) {
      const config = await response.json();
      auth = config.auth ?? auth;
      if (Array.isArray(config.ice_servers)) iceServers = config.ice_servers;
    }
  } catch {
    // Served elsewhere: assume anonymous.
  }
  const jwt = auth === "jwt";
  $("name-field").hidden = jwt;
  $("name").required = !jwt;
  $("token-field").hidden = !jwt;
  $("token").required = jwt;
  // (Not over what was typed while the configuration was read.)
  $("name").value ||= localStorage.getItem("chat.name") ?? "";
  $("sign-in-form").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    signIn(jwt ? { token: $("token").value.trim() } : { name: $("name").value.trim() });
  });
  // Enabled once it does something: before, a click would only try the
  // form's own submission, which the page's policy blocks.
  $("sign-in-form").querySelector("button[type=submit]").disabled = false;
  $("sign-out").addEventListener("click", () => signOut());
  $("join-form").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    joinRoom($("join-room").value.trim());
    $("join-room").value = "";
  });
  $("dm-form").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    const user = $("dm-user").value.trim();
    if (user) page.openDm(user, user);
    $("dm-user").value = "";
  });
  $("composer").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    outbox.submit();
  });
  $("text").addEventListener("input", () => outbox.typed());
  uploads.listen();
  $("text").addEventListener("keydown", (/** @type {KeyboardEvent} */ event) => {
    if (event.key === "Escape" && outbox.mode) outbox.setMode(null);
  });
  $("composing-cancel").addEventListener("click", () => {
    outbox.setMode(null);
    $("text").focus();
  });
  $("leave").addEventListener("click", () => leave(currentView()));
  $("call").addEventListener("click", () => {
    const view = currentView();
    if (view?.kind === "dm") calls.start({ id: view.id, name: view.name });
  });
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

/** @param {{name?: string, token?: string, user?: string}} credentials */
async function signIn(credentials) {
  // A client from an earlier sign-in is closed for good first.
  if (client) signOut();
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
  let everOpen = false;
  me.on("state", (event) => {
    if (client !== me) return;
    everOpen ||= event.state === "open";
    renderState({ ...event, everOpen });
    if (event.state === "open" || event.state === "reconnecting") refreshPending();
    // A first sign-in that cannot connect (the server down) gives up
    // instead of retrying forever; one over a connection limit waits for a
    // place (the status line says so), as a refused token ends at once.
    const waitingForPlace = event.refusal?.code === "too_many_connections";
    if (!everOpen && event.state === "reconnecting" && event.attempt >= SIGN_IN_ATTEMPTS && !waitingForPlace) {
      const why = `Could not connect (${event.reason || "refused"}): check the ${credentials.token ? "token" : "name"}, or try again later.`;
      signOut(why);
    } else if (event.state === "closed" && (everOpen || event.error)) {
      signOut(closedReason(event, everOpen));
    }
  });
  me.on("dm", (dm) => client === me && onDm(dm));
  me.on("signal", (signal) => client === me && calls.received(signal));
  me.on("notice", ({ data }) => {
    if (client === me) $("notice").textContent = typeof data === "string" ? data : JSON.stringify(data);
  });
  me.on("error", (err) => client === me && showError(err.message));
  $("sign-in").hidden = true;
  $("chat").hidden = false;
  $("sign-out").hidden = false;
  let welcome;
  try {
    welcome = await me.connect();
  } catch {
    return; // closed: the state handler said why
  }
  if (client !== me) return;
  page.me = welcome.user.id;
  $("me").textContent = `${welcome.user.name} (${welcome.user.id})`;
  if (credentials.name) localStorage.setItem("chat.user", welcome.user.id);
  reads.openUnread();
  for (const room of savedRooms()) {
    if (client !== me) return; // signed out meanwhile
    await joinRoom(room, { userAction: false });
  }
}

/**
 * What the sign-in form says when the client closed for good: an expired
 * or refused token asks to sign in again (a limit or an outage never
 * closes the client: it waits and retries, and the status line says why).
 * @param {{error?: {code: string, message: string}, reason?: string}} event
 * @param {boolean} everOpen
 */
function closedReason({ error, reason }, everOpen) {
  if (error?.code === "token_expired" || (error?.code === "unauthorized" && /expired/.test(error.message))) {
    return "Your session expired: sign in again.";
  }
  if (error && ["unauthorized", "forbidden", "bad_request"].includes(error.code)) {
    return `Could not connect: the server refused the sign-in (${error.message}). Sign in again.`;
  }
  return everOpen ? `Disconnected by the server${reason ? `: ${reason}` : ""}.` : `Could not connect (${reason || "refused"}).`;
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

const roomsKey = () => `chat.rooms.${page.me ?? ""}`;

/** @param {string} [why] shown on the sign-in form */
function signOut(why = "") {
  calls.hangUp("ended");
  client?.close();
  client = null;
  for (const view of page.views.values()) clearTyping(view);
  outbox.clear();
  reads.clear();
  page.views.clear();
  page.current = null;
  page.me = undefined;
  renderAll(page);
  $("me").textContent = "";
  $("text").value = "";
  $("notice").textContent = "";
  showError("");
  renderState({ state: "idle" });
  $("sign-in-error").textContent = why;
  $("sign-in").hidden = false;
  $("chat").hidden = true;
  $("sign-out").hidden = true;
}

/** @param {string} message */
function showError(message) {
  $("error").textContent = message;
}

// ---- rooms and conversations ------------------------------------------------

const currentView = () => (page.current ? page.views.get(page.current) : undefined);

/**
 * @param {string} room
 * @param {{userAction?: boolean}} [options]
 */
async function joinRoom(room, { userAction = true } = {}) {
  const me = client;
  if (!room || !me) return;
  const key = `room:${room}`;
  if (page.views.has(key)) {
    select(key, { userAction });
    return;
  }
  const subscription = me.room(room);
  const view = new View("room", room, room);
  const unsubscribe = [
    subscription.on("reset", ({ history, messages, reason }) => {
      view.reset(messages, page.me ?? "");
      view.complete = history.length === 0 || history[0].seq <= 1;
      view.notice = reason === "not_recovered"
        ? "Some messages from while you were away could not be recovered; this is the room as it is now."
        : "";
      clearTyping(view);
      if (view.key === page.current) renderAll(page);
      else renderSidebar(page);
      reads.markSeen(view);
    }),
    subscription.on("message", ({ message, change }) => {
      if (change === "added") show(view, message);
      else renderMessage(page, view, message);
    }),
    subscription.on("roster", (members) => {
      view.members = members;
      if (view.key === page.current) {
        renderRoster(page);
        renderSeen(page, view); // shown only in small rooms
      }
    }),
    ...reads.follow(view, subscription),
    subscription.on("typing", (frame) => onTypingFrame(view, frame)),
    subscription.on("state", ({ state, error }) => {
      if (state === "failed" && page.views.get(key) === view) {
        dropView(view);
        showError(`Left ${room}: ${error?.message ?? "the room could not be joined again"}`);
      }
    }),
  ];
  view.close = () => unsubscribe.forEach((off) => off());
  page.views.set(key, view);
  try {
    await subscription.join();
  } catch (err) {
    if (page.views.get(key) === view) dropView(view);
    showError(`Could not join ${room}: ${/** @type {Error} */ (err).message}`);
    return;
  }
  if (client !== me || page.views.get(key) !== view) return;
  saveRooms();
  // The page's own joins (at sign-in) show the first room only: the others
  // are not seen, so not marked read.
  if (userAction || !page.current) select(key, { userAction });
  else renderSidebar(page);
}

/**
 * The conversation with `id`, made if new (and its history read).
 * @param {string} id
 * @param {string} name
 */
function dmView(id, name) {
  const key = `dm:${id}`;
  const existing = page.views.get(key);
  if (existing) {
    if (existing.name === existing.id && name !== id) existing.name = name;
    return existing;
  }
  const dms = [...page.views.values()].filter((v) => v.kind === "dm" && v.key !== page.current);
  if (dms.length >= MAX_DM_VIEWS) dropView(dms.sort((a, b) => a.active - b.active)[0]);
  const view = new View("dm", id, name);
  page.views.set(key, view);
  if (client) {
    const unsubscribe = reads.follow(view, client.conversation(id));
    view.close = () => unsubscribe.forEach((off) => off());
  }
  loadHistory(view);
  return view;
}

/**
 * Reads a page of a view's history: the newest, or before what it shows.
 * @param {View} view
 * @param {{before?: number}} [options]
 */
async function loadHistory(view, { before } = {}) {
  const me = client;
  if (!me || view.loading) return;
  view.loading = true;
  const generation = view.generation;
  const scroller = $("scroller");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  try {
    const options = { before, limit: HISTORY_PAGE_MESSAGES };
    const room = view.kind === "room" ? me.room(view.id) : null;
    const older = room ? await room.history(options) : await me.dmHistory(view.id, options);
    if (client !== me || view.generation !== generation) return; // it started over meanwhile
    // A room's page is folded into its messages by the library (edits,
    // deletes and reactions included, of messages older than the page too).
    if (room) view.sync(room.messages);
    else view.merge(older);
    if (older.length < HISTORY_PAGE_MESSAGES || older[0].seq <= 1) view.complete = true;
    const named = older.find((m) => m.from.id === view.id);
    if (named && view.kind === "dm") view.name = named.from.name;
  } catch (err) {
    showError(`Could not load messages: ${/** @type {Error} */ (err).message}`);
  } finally {
    view.loading = false;
  }
  if (view.key === page.current) {
    renderAll(page);
    if (before !== undefined) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  } else {
    renderSidebar(page);
  }
}

function loadOlder() {
  const view = currentView();
  if (!view || view.complete || !client) return;
  // A room's history holds events of every kind: page back from the oldest loaded.
  const before = view.kind === "room" ? client.room(view.id).oldestSeq || undefined : view.messages[0]?.seq;
  loadHistory(view, { before });
}

/** @param {View | undefined} view */
async function leave(view) {
  if (!view || !client) return;
  if (view.kind === "room") {
    outbox.stopTyping(view);
    try {
      await client.room(view.id).leave();
    } catch (err) {
      showError(`Could not leave ${view.id}: ${/** @type {Error} */ (err).message}`);
      return;
    }
  }
  dropView(view);
}

/** @param {View} view */
function dropView(view) {
  if (view.key === page.current) outbox.stopTyping(view);
  if (outbox.mode?.view === view.key) outbox.setMode(null);
  view.typingSentAt = 0;
  clearTyping(view);
  view.close?.();
  page.views.delete(view.key);
  if (view.kind === "room") saveRooms();
  if (page.current === view.key) page.current = page.views.keys().next().value ?? null;
  renderAll(page);
}

function saveRooms() {
  const rooms = [...page.views.values()].filter((v) => v.kind === "room").map((v) => v.id);
  localStorage.setItem(roomsKey(), JSON.stringify(rooms));
}

/**
 * Shows a room or conversation; `userAction` when the user asked for it.
 * @param {string} key
 * @param {{userAction?: boolean}} [options]
 */
function select(key, { userAction = true } = {}) {
  const previous = currentView();
  if (previous && previous.key !== key) {
    outbox.stopTyping(previous);
    if (outbox.mode) outbox.setMode(null);
  }
  page.current = key;
  const view = page.views.get(key);
  renderAll(page);
  if (view) reads.markSeen(view);
  // Into the message box; a room joined by the page itself (at sign-in)
  // does not take the focus from a box the user is typing in.
  const typingElsewhere = ["INPUT", "TEXTAREA"].includes(document.activeElement?.tagName ?? "");
  if (userAction || !typingElsewhere) $("text").focus();
}

// ---- messages in --------------------------------------------------------------

/**
 * @param {View} view
 * @param {import("/app/views.js").Shown} message
 */
function show(view, message) {
  if (!view.add(message, page.me ?? "")) return;
  clearTimeout(view.typing.get(message.from.id)?.timer);
  view.typing.delete(message.from.id);
  if (view.key === page.current) {
    renderNewest(page, view, message);
    renderTyping(page);
    reads.markSeen(view);
  }
}

/** @param {{from: {id: string, name: string}, to: string, text: string, seq: number, ts: number, client_id?: string}} dm */
function onDm(dm) {
  const mine = dm.from.id === page.me;
  const view = dmView(mine ? dm.to : dm.from.id, mine ? dm.to : dm.from.name);
  show(view, dm);
  if (!page.current) select(view.key, { userAction: false });
  else renderSidebar(page);
}

/**
 * @param {View} view
 * @param {{user: {id: string, name: string}, state: "start" | "stop"}} frame
 */
function onTypingFrame(view, frame) {
  clearTimeout(view.typing.get(frame.user.id)?.timer);
  if (frame.state === "start") {
    const timer = setTimeout(() => {
      view.typing.delete(frame.user.id);
      if (view.key === page.current) renderTyping(page);
    }, TYPING_SHOWN_MS);
    view.typing.set(frame.user.id, { name: frame.user.name, timer });
  } else {
    view.typing.delete(frame.user.id);
  }
  if (view.key === page.current) renderTyping(page);
}

/** @param {View} view */
function clearTyping(view) {
  for (const { timer } of view.typing.values()) clearTimeout(timer);
  view.typing.clear();
}

/** The connection changed: pending bubbles say so. */
function refreshPending() {
  const view = currentView();
  if (view) renderPending(page, view);
}

start();
