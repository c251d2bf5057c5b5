// Sharing files in a room: Attach (or drop files on the conversation)
// uploads each one with a progress bar, then sends it as a message of its
// own (with the text in the box, if any, on the first). A failed upload
// stays in the list with the reason until dismissed.

import { newClientId } from "/chat.js";
import { el } from "/app/message.js";
import { $ } from "/app/render.js";

/**
 * @typedef {Object} UploadsContext
 * @property {import("/app/render.js").Page} page
 * @property {() => import("/chat.js").ChatClient | null} client
 * @property {import("/app/outbox.js").Outbox} outbox
 * @property {(message: string) => void} showError
 */

/** Why an upload was refused, in words. */
function refusalText(/** @type {import("/chat.js").ChatError} */ err) {
  switch (err.code) {
    case "too_large":
      return "the file is too large.";
    case "unsupported_type":
      return "files of this type cannot be shared.";
    case "rate_limited":
      return "too many uploads; wait a minute.";
    default:
      return err.message;
  }
}

export class Uploads {
  /** @param {UploadsContext} context */
  constructor(context) {
    this.context = context;
  }

  /** Wires the Attach button, the file picker and dropping on the conversation. */
  listen() {
    const input = /** @type {HTMLInputElement} */ ($("file-input"));
    $("attach").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      this.share(Array.from(input.files ?? []));
      input.value = "";
    });
    const area = $("conversation");
    area.addEventListener("dragover", (/** @type {DragEvent} */ event) => {
      if (!event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      area.classList.add("dropping");
    });
    area.addEventListener("dragleave", () => area.classList.remove("dropping"));
    area.addEventListener("drop", (/** @type {DragEvent} */ event) => {
      area.classList.remove("dropping");
      if (!event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.share(Array.from(event.dataTransfer.files));
    });
  }

  /**
   * Uploads `files` to the open room and sends each as a message.
   * @param {File[]} files
   */
  share(files) {
    const { page, showError } = this.context;
    const view = page.current ? page.views.get(page.current) : undefined;
    if (!view || view.kind !== "room") return showError("Files can be shared in rooms.");
    for (const file of files) this.upload(view, file);
  }

  /**
   * @param {import("/app/views.js").View} view
   * @param {File} file
   * @private
   */
  async upload(view, file) {
    const { client, outbox } = this.context;
    const me = client();
    if (!me) return;
    const progress = el("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
    const item = el("li", { class: "upload", "data-name": file.name }, el("span", { class: "name", textContent: file.name }), progress);
    $("uploads").append(item);
    try {
      const uploaded = await me.upload(file, view.id, {
        onProgress: (sent, total) => {
          progress.value = total ? sent / total : 1;
        },
      });
      item.remove();
      if (client() !== me) return;
      const text = $("text").value;
      $("text").value = "";
      outbox.send(view, text, newClientId(), undefined, [uploaded]);
    } catch (err) {
      progress.remove();
      item.dataset.failed = "true";
      item.append(
        el("span", { class: "error", textContent: ` could not be shared: ${refusalText(/** @type {any} */ (err))}` }),
        el("button", { type: "button", class: "dismiss", textContent: "Dismiss", onclick: () => item.remove() }),
      );
    }
  }
}
