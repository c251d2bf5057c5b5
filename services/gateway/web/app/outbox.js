// Messages out: sends shown until the server has them (with Retry and
// Discard when they fail), the composer's reply and edit modes, deletes,
// reactions and their picker, and `typing`.

import { newClientId } from "/chat.js";
import { excerpt } from "/app/message.js";
import { $, renderMessage, renderPending } from "/app/render.js";

/** A `typing start` goes out at most this often while the user types. */
const TYPING_REPEAT_MS = 2000;
/** Silence after the last keystroke that sends `typing stop`. */
const TYPING_IDLE_MS = 3000;
/** The most bytes of UTF-8 an emoji may have (the server's limit). */
const EMOJI_MAX_BYTES = 32;

/** @typedef {import("/app/views.js").View} View */
/** @typedef {import("/app/views.js").Shown} Shown */
/** @typedef {import("/app/render.js").Page} Page */
/**
 * What the composer is doing besides writing a new message.
 * @typedef {{kind: "reply" | "edit", view: string, seq: number, from: {id: string, name: string}, text: string}} Mode
 */
/**
 * @typedef {Object} OutboxContext
 * @property {Page} page
 * @property {() => import("/chat.js").ChatClient | null} client the signed-in client
 * @property {(message: string) => void} showError
 */

/**
 * Why a request failed, in words.
 * @param {import("/chat.js").ChatError} error
 */
export function failureText(error) {
  switch (error.code) {
    case "timeout":
    case "expired":
      return "no reply from the server; it may have been stored. Retry sends it once at most.";
    case "rate_limited":
      return "too fast; wait a moment and retry.";
    case "too_large":
      return "the message is too long.";
    case "not_found":
      return "that message (or file) is no longer there.";
    default:
      return error.message;
  }
}

/** See the module comment. */
export class Outbox {
  /** @param {OutboxContext} context */
  constructor(context) {
    this.context = context;
    /** @type {Mode | null} */
    this.mode = null;
    /** @type {any} */
    this.typingStopTimer = null;
  }

  /** @returns {View | undefined} */
  get view() {
    const { page } = this.context;
    return page.current ? page.views.get(page.current) : undefined;
  }

  /** The composer was submitted: a new message, a reply, or an edit. */
  submit() {
    const view = this.view;
    const client = this.context.client();
    const text = $("text").value;
    if (!view || !client || !text.trim()) return;
    const mode = this.mode?.view === view.key ? this.mode : null;
    $("text").value = "";
    this.stopTyping(view);
    this.setMode(null);
    if (mode?.kind === "edit") {
      if (text !== mode.text) {
        client.room(view.id).edit(mode.seq, text).catch((err) => this.context.showError(`Could not edit: ${failureText(err)}`));
      }
      return;
    }
    const replyTo = mode?.kind === "reply" ? { seq: mode.seq, from: mode.from, text: excerpt(mode.text) } : undefined;
    this.send(view, text, newClientId(), replyTo);
  }

  /**
   * Sends `text` under `clientId`, shown as pending until the server has it.
   * The library holds it while the connection or the room is not ready; a
   * failed one stays, with Retry (the same key: stored once) and Discard.
   * @param {View} view
   * @param {string} text
   * @param {string} clientId
   * @param {import("/app/views.js").Pending["replyTo"]} [replyTo]
   * @param {import("/app/views.js").Pending["attachments"]} [attachments] uploaded files it carries
   */
  async send(view, text, clientId, replyTo, attachments) {
    const { page, showError } = this.context;
    const me = this.context.client();
    if (!me) return;
    if (!view.pend(text, clientId, replyTo, attachments)) {
      showError("Too many messages are waiting to be sent: retry or discard some first.");
      $("text").value ||= text;
      return;
    }
    if (view.key === page.current) {
      renderPending(page, view);
      $("scroller").scrollTop = $("scroller").scrollHeight; // your own send: show it
    }
    try {
      const ack = view.kind === "room"
        ? await me.room(view.id).send(text, { clientId, replyTo: replyTo?.seq, attachments: attachments?.map((f) => f.id) })
        : await me.dm(view.id, text, { clientId });
      view.acked(clientId, ack.seq);
    } catch (err) {
      view.failed(clientId, failureText(/** @type {import("/chat.js").ChatError} */ (err)));
    }
    if (this.context.client() === me && view.key === page.current) renderPending(page, view);
  }

  /**
   * The composer replies to `message`, or edits it (one of this user's).
   * @param {Mode["kind"]} kind
   * @param {View} view
   * @param {Shown} message
   */
  start(kind, view, message) {
    const wasEditing = this.mode?.kind === "edit";
    this.setMode({ kind, view: view.key, seq: message.seq, from: message.from, text: message.text });
    const box = $("text");
    if (kind === "edit") box.value = message.text;
    else if (wasEditing) box.value = "";
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  /**
   * Sets (or with null ends) the composer's mode, and shows it above the box.
   * @param {Mode | null} mode
   */
  setMode(mode) {
    if (!mode && this.mode?.kind === "edit") $("text").value = "";
    this.mode = mode;
    $("composing").hidden = !mode;
    $("composing-text").textContent = !mode
      ? ""
      : mode.kind === "edit"
        ? `Editing your message “${excerpt(mode.text)}”`
        : `Replying to ${mode.from.name}: “${excerpt(mode.text)}”`;
    $("send").textContent = mode?.kind === "edit" ? "Save" : "Send";
  }

  /**
   * Deletes one of this user's messages.
   * @param {View} view
   * @param {Shown} message
   */
  remove(view, message) {
    const client = this.context.client();
    if (!client || view.kind !== "room") return;
    if (this.mode?.seq === message.seq && this.mode.view === view.key) this.setMode(null);
    client.room(view.id).delete(message.seq).catch((err) => this.context.showError(`Could not delete: ${failureText(err)}`));
  }

  /**
   * Adds or takes back this user's `emoji` on a message; the picker closes.
   * @param {View} view
   * @param {Shown} message
   * @param {string} emoji
   * @param {"add" | "remove"} op
   */
  react(view, message, emoji, op) {
    const client = this.context.client();
    if (!client || view.kind !== "room") return;
    if (/[\s\p{Cc}]/u.test(emoji) || new TextEncoder().encode(emoji).length > EMOJI_MAX_BYTES) {
      this.context.showError(`“${emoji}” is not an emoji that can be added (one, without spaces).`);
      return;
    }
    this.context.showError("");
    if (view.picking === message.seq) this.pick(view, null);
    client.room(view.id).react(message.seq, emoji, op).catch((err) => this.context.showError(`Could not react: ${failureText(err)}`));
  }

  /**
   * Opens the reaction picker of message `seq` (closing any other), or
   * closes it (null); the focus goes into it, or back to its React button.
   * @param {View} view
   * @param {number | null} seq
   * @param {{focusBack?: number}} [options]
   */
  pick(view, seq, { focusBack } = {}) {
    const { page } = this.context;
    const before = view.picking;
    view.picking = seq;
    for (const changed of [before, seq]) {
      const message = changed === null ? undefined : view.messages.find((m) => m.seq === changed);
      if (message) renderMessage(page, view, message);
    }
    const item = (/** @type {number | undefined | null} */ at) => $("messages").querySelector(`.message:not(.pending)[data-seq="${at}"]`);
    if (seq !== null) item(seq)?.querySelector(".picker button")?.focus();
    else if (focusBack !== undefined) item(focusBack)?.querySelector(".react")?.focus();
  }

  /** A keystroke in the message box: `typing start` now and then, `stop` after a pause. */
  typed() {
    const view = this.view;
    const client = this.context.client();
    if (!view || view.kind !== "room" || !client) return;
    const now = Date.now();
    if (now - view.typingSentAt > TYPING_REPEAT_MS && $("text").value) {
      if (client.room(view.id).typing("start")) view.typingSentAt = now;
    }
    clearTimeout(this.typingStopTimer);
    this.typingStopTimer = setTimeout(() => this.stopTyping(view), TYPING_IDLE_MS);
  }

  /** @param {View} view */
  stopTyping(view) {
    clearTimeout(this.typingStopTimer);
    // Only to a room still joined, and only after a start went out.
    if (view.typingSentAt && this.context.page.views.get(view.key) === view) this.context.client()?.room(view.id).typing("stop");
    view.typingSentAt = 0;
  }

  /** Signed out: nothing pending here. */
  clear() {
    clearTimeout(this.typingStopTimer);
    this.setMode(null);
  }
}
