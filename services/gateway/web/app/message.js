// Drawing one message: its quote of the message it replies to, its text
// (or the placeholder of a deleted one, and "(edited)"), its reaction chips,
// its actions (reply, react, and on this user's own, edit and delete), the
// reaction picker, and "Seen by …". Also a send not confirmed yet.
// Every text from a user is set as text, never parsed as HTML.

/** @typedef {import("./views.js").View} View */
/** @typedef {import("./views.js").Shown} Shown */
/** @typedef {import("./views.js").Pending} Pending */
/** @typedef {import("./render.js").Page} Page */

/** The emoji offered with one click. */
export const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉", "😮"];
/** Characters of a message quoted in a button's name or a reply bar. */
const EXCERPT_CHARS = 40;

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
export const spoken = (/** @type {string} */ text) => el("span", { class: "visually-hidden" }, text);

/**
 * The start of a text, for a button's name or a quote.
 * @param {string} text
 */
export const excerpt = (text) => (text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text);

/**
 * A button; `focus` names it among the message's controls, so that the
 * focus comes back to it when the message is drawn again.
 * @param {string} className
 * @param {string} text
 * @param {string} label its accessible name
 * @param {() => void} onClick
 */
function button(className, text, label, onClick) {
  const node = el("button", { type: "button", class: className, "data-focus": className, textContent: text });
  if (label !== text) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

/**
 * The quote of the message a reply answers.
 * @param {NonNullable<Shown["replyTo"]>} quote
 */
function quoteOf(quote) {
  const said = quote.deleted ? "a deleted message" : quote.text !== undefined ? quote.text : "an earlier message";
  return el(
    "div",
    { class: "quote", "data-reply-to": quote.seq },
    spoken("In reply to "),
    el("span", { class: "quote-from", textContent: quote.from?.name ?? "" }),
    el("span", { class: quote.text !== undefined && !quote.deleted ? "quote-text" : "quote-text missing", textContent: said }),
  );
}

/**
 * The reaction chips: a click adds this user's, or takes it back.
 * @param {Page} page
 * @param {View} view
 * @param {Shown} message
 */
function reactionsOf(page, view, message) {
  const chips = (message.reactions ?? []).map((reaction) => {
    const who = reaction.users.map((u) => (u.id === page.me ? "you" : u.name)).join(", ");
    const chip = button("reaction", "", `${reaction.emoji} ${reaction.count}: ${who}`, () =>
      page.react(view, message, reaction.emoji, reaction.mine ? "remove" : "add"),
    );
    chip.dataset.focus = `reaction:${reaction.emoji}`;
    chip.dataset.emoji = reaction.emoji;
    chip.title = who;
    chip.setAttribute("aria-pressed", String(reaction.mine));
    chip.append(reaction.emoji, " ", el("span", { class: "count", textContent: String(reaction.count) }));
    return chip;
  });
  return el("div", { class: "reactions" }, ...chips);
}

/**
 * The picker: the common emoji, and a box for any other.
 * @param {Page} page
 * @param {View} view
 * @param {Shown} message
 */
function pickerOf(page, view, message) {
  const held = new Set((message.reactions ?? []).filter((r) => r.mine).map((r) => r.emoji));
  const quick = QUICK_EMOJI.map((emoji) => {
    const pick = button("pick", emoji, `React with ${emoji}`, () => page.react(view, message, emoji, held.has(emoji) ? "remove" : "add"));
    pick.dataset.focus = `pick:${emoji}`;
    pick.setAttribute("aria-pressed", String(held.has(emoji)));
    return pick;
  });
  const inputId = `emoji-${view.key}-${message.seq}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const input = el("input", { id: inputId, class: "emoji-input", autocomplete: "off", maxLength: 16, placeholder: "any emoji", "data-focus": "emoji-input" });
  const other = el(
    "form",
    { class: "emoji-form" },
    el("label", { htmlFor: inputId, class: "visually-hidden", textContent: "Any emoji" }),
    input,
    el("button", { type: "submit", class: "emoji-add", textContent: "Add", "data-focus": "emoji-add" }),
  );
  other.addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    const emoji = input.value.trim();
    if (emoji) page.react(view, message, emoji, "add");
  });
  const picker = el("div", { class: "picker", id: `picker-${inputId}`, role: "group", "aria-label": "Reactions" }, ...quick, other);
  picker.addEventListener("keydown", (/** @type {KeyboardEvent} */ event) => {
    if (event.key === "Escape") page.pick(view, null, { focusBack: message.seq });
  });
  return picker;
}

/** Types the page shows as pictures (what the gateways serve inline). */
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/**
 * A message's files: pictures as thumbnails (a click opens the file),
 * others as download links with their size.
 * @param {Page} page
 * @param {import("/chat.js").UploadedFile[]} files
 */
function attachmentsOf(page, files) {
  const list = el("ul", { class: "attachments" });
  for (const file of files) {
    const href = page.fileUrl(file.url);
    const link = IMAGE_TYPES.includes(file.content_type)
      ? el("a", { href, target: "_blank", rel: "noopener", class: "image" }, el("img", { src: href, alt: file.name, class: "thumb", loading: "lazy" }))
      : el("a", { href, download: file.name, class: "file" }, `${file.name} (${sizeText(file.size)})`);
    list.append(el("li", {}, link));
  }
  return list;
}

/** @param {number} bytes */
function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * A confirmed message.
 * @param {Page} page
 * @param {View} view
 * @param {Shown} message
 * @param {string[] | null} seenBy who has read up to it, when it is where that shows
 */
export function messageItem(page, view, message, seenBy = null) {
  const mine = message.from.id === page.me;
  const time = new Date(message.ts);
  const classes = ["message", mine ? "mine" : "", message.deleted ? "deleted" : ""].filter(Boolean).join(" ");
  const item = el("div", { class: classes, "data-seq": message.seq });
  if (message.replyTo) item.append(quoteOf(message.replyTo));
  item.append(
    el("time", { dateTime: time.toISOString(), textContent: time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }),
    el("span", { class: "from", title: message.from.id, textContent: message.from.name }),
  );
  if (message.deleted) {
    item.append(el("span", { class: "placeholder", textContent: "message deleted" }));
  } else {
    item.append(el("span", { class: "text", textContent: message.text }));
    if (message.edited) item.append(" ", el("span", { class: "edited", textContent: "(edited)" }));
    if (message.attachments?.length) item.append(attachmentsOf(page, message.attachments));
    if (message.reactions?.length) item.append(reactionsOf(page, view, message));
    // In 1.1 only room messages have replies, reactions, edits and deletes.
    if (view.kind === "room") {
      const quoted = `“${excerpt(message.text)}”`;
      const picking = view.picking === message.seq;
      const react = button("react", "React", `React to ${mine ? "your" : `${message.from.name}'s`} message ${quoted}`, () =>
        page.pick(view, picking ? null : message.seq),
      );
      react.setAttribute("aria-expanded", String(picking));
      const actions = el(
        "div",
        { class: "actions" },
        button("reply", "Reply", `Reply to ${message.from.name}: ${quoted}`, () => page.reply(view, message)),
        react,
      );
      if (mine) {
        actions.append(
          button("edit", "Edit", `Edit your message ${quoted}`, () => page.edit(view, message)),
          button("delete", "Delete", `Delete your message ${quoted}`, () => page.remove(view, message)),
        );
      }
      item.append(actions);
      if (picking) {
        const picker = pickerOf(page, view, message);
        react.setAttribute("aria-controls", picker.id);
        item.append(picker);
      }
    }
  }
  if (seenBy?.length) item.append(el("p", { class: "seen", textContent: view.kind === "dm" ? "Seen" : `Seen by ${seenBy.join(", ")}` }));
  return item;
}

/**
 * A send not confirmed yet: sending, or failed with Retry and Discard.
 * @param {Page} page
 * @param {View} view
 * @param {Pending} pending
 */
export function pendingItem(page, view, pending) {
  const failed = pending.status === "failed";
  const status = pending.status === "sending" && !page.online() ? "queued" : pending.status;
  const label = {
    queued: "Waiting for the connection…",
    sending: "Sending…",
    sent: "Sent",
    failed: `Not sent: ${pending.error}`,
  }[status];
  const item = el("div", { class: "message mine pending", "data-status": status, "data-client-id": pending.clientId });
  if (pending.replyTo) item.append(quoteOf(pending.replyTo));
  item.append(
    el("span", { class: "from", textContent: "You" }),
    el("span", { class: "text", textContent: pending.text }),
    el("span", { class: "state", textContent: label }),
  );
  if (pending.attachments?.length) {
    item.append(el("ul", { class: "attachments" }, ...pending.attachments.map((f) => el("li", { class: "file", textContent: f.name }))));
  }
  if (failed) {
    item.append(
      button("retry", "Retry", `Retry sending “${excerpt(pending.text)}”`, () => page.retry(view, pending)),
      button("discard", "Discard", `Discard “${excerpt(pending.text)}”`, () => page.discard(view, pending)),
    );
  }
  return item;
}

/**
 * Draws `message` again where it is on screen (after an edit, a delete, a
 * reaction, or a change of the message it quotes), keeping the focus on
 * the same control. False when it is not on screen.
 * @param {Page} page
 * @param {View} view
 * @param {Shown} message
 * @param {string[] | null} [seenBy]
 */
export function redrawMessage(page, view, message, seenBy = null) {
  const list = document.getElementById("messages");
  const old = list?.querySelector(`.message:not(.pending)[data-seq="${message.seq}"]`);
  if (!old) return false;
  const focused = /** @type {HTMLElement | null} */ (document.activeElement?.closest("[data-focus]") ?? null);
  const focusKey = focused && old.contains(focused) ? focused.dataset.focus : undefined;
  const fresh = messageItem(page, view, message, seenBy);
  old.replaceWith(fresh);
  if (focusKey) {
    const again = [...fresh.querySelectorAll("[data-focus]")].find((node) => node.dataset.focus === focusKey);
    // The same control, or (it went: a delete, a closed picker) React, or the message box.
    /** @type {HTMLElement | null} */ (again ?? fresh.querySelector(".react") ?? document.getElementById("text"))?.focus();
  }
  return true;
}
