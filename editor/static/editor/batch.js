// Gallery batch: select finished images (checkboxes on the cards), choose one set of
// settings, and download them as one ZIP. The server sends the ZIP while it renders it; the
// page counts the entries as they arrive (each entry's local header names its size), shows
// "Rendered 3 of 12", can cancel, and saves the finished archive from a Blob URL.

import { errorMessage, send } from "../js/http.js";
import { filenameFrom, saveBlob } from "./download.js";
import { setupSettings } from "./batch_settings.js";

const form = document.getElementById("batch-form");
const grid = document.getElementById("gallery");

// Counts ZIP entries from the archive's bytes as they arrive: a local file header
// (PK\3\4, 30 bytes, then name and extra field), then that many bytes of data.
export class EntryCounter {
  constructor() {
    this.names = [];
    this.skip = 0;
    this.header = [];
    this.ended = false; // the central directory started: no entries follow
  }

  feed(chunk) {
    let offset = 0;
    while (offset < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      const need = this.header.length < 30 ? 30 : 30 + this.u16(26) + this.u16(28);
      while (this.header.length < need && offset < chunk.length) this.header.push(chunk[offset++]);
      if (this.header.length >= 4 && this.u32(0) !== 0x04034b50) {
        this.ended = true;
      } else if (this.header.length >= 30 && this.header.length === 30 + this.u16(26) + this.u16(28)) {
        const name = new TextDecoder().decode(new Uint8Array(this.header.slice(30, 30 + this.u16(26))));
        this.names.push(name);
        this.skip = this.u32(18);
        this.header = [];
      }
    }
  }

  u16(at) {
    return this.header[at] | (this.header[at + 1] << 8);
  }

  u32(at) {
    return (this.u16(at) | (this.u16(at + 2) << 16)) >>> 0;
  }
}

function megabytes(bytes) {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

function setupBatch() {
  const count = document.getElementById("batch-count");
  const download = document.getElementById("batch-download");
  const cancel = document.getElementById("batch-cancel");
  const status = document.getElementById("batch-status");
  const progressRow = document.getElementById("batch-progress-row");
  const progress = document.getElementById("batch-progress");
  const max = Number(form.dataset.max);
  let controller = null;

  const panel = document.getElementById("batch-panel");
  const cards = () => (grid.isConnected ? [...grid.querySelectorAll(".gallery-card")].filter((card) => !card.hidden) : []);
  // A card whose job is unfinished has its checkbox disabled (gallery.js enables it).
  const inputs = () => cards().flatMap((card) => [...card.querySelectorAll(".select-input:not(:disabled)")]);
  const selected = () => inputs().filter((input) => input.checked);

  function update() {
    const empty = cards().length === 0; // every image deleted: nothing to put in a ZIP
    if (panel.hidden !== empty) panel.hidden = empty;
    const n = selected().length;
    count.textContent = `${n} selected`;
    download.disabled = controller !== null || n === 0 || n > max;
    download.classList.toggle("is-busy", controller !== null); // not-allowed, or at work
    if (n > max) status.textContent = `A ZIP holds at most ${max} images: clear ${n - max} of them.`;
  }

  document.getElementById("batch-select-all").addEventListener("click", () => {
    inputs().forEach((input) => (input.checked = true));
    update();
  });
  document.getElementById("batch-clear").addEventListener("click", () => {
    inputs().forEach((input) => (input.checked = false));
    update();
  });
  grid.addEventListener("change", (event) => {
    if (event.target.classList.contains("select-input")) update();
  });
  // Cards deleted or hidden (undo), or the whole list gone, change what is selected. (Not
  // the panel's own changes: update() writes there.)
  new MutationObserver(update).observe(grid, { childList: true, subtree: true, attributeFilter: ["hidden"] });
  new MutationObserver(update).observe(grid.parentElement, { childList: true });
  cancel.addEventListener("click", () => controller?.abort());

  // Download ZIP is disabled and Cancel shown while a ZIP is made, then the other way round:
  // the keyboard's focus goes from one to the other instead of falling to the page.
  function finish(message) {
    const hadFocus = cancel.contains(document.activeElement);
    controller = null;
    cancel.hidden = true;
    progressRow.hidden = true;
    status.textContent = message;
    update();
    if (hadFocus) download.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = selected();
    if (chosen.length === 0) return;
    const body = new FormData(form); // the checked cards too (their form attribute)
    const hadFocus = download.contains(document.activeElement);
    controller = new AbortController();
    update();
    cancel.hidden = false;
    if (hadFocus) cancel.focus();
    progress.max = chosen.length;
    progress.value = 0;
    progressRow.hidden = false;
    status.textContent = `Rendering ${chosen.length === 1 ? "1 image" : `${chosen.length} images`}…`;
    let response;
    try {
      response = await send(form.action, { body, signal: controller.signal });
      if (!response.ok) {
        finish(await errorMessage(response));
        return;
      }
      const total = Number(response.headers.get("X-Batch-Count")) || chosen.length;
      progress.max = total;
      const reader = response.body.getReader();
      const chunks = [];
      const counter = new EntryCounter();
      let received = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        received += value.length;
        counter.feed(value);
        const rendered = counter.names.filter((name) => name !== "errors.txt").length;
        progress.value = rendered;
        status.textContent = `Rendered ${rendered} of ${total}… (${megabytes(received)} received)`;
      }
      const filename = filenameFrom(response, "images.zip");
      saveBlob(new Blob(chunks, { type: "application/zip" }), filename);
      const images = counter.names.filter((name) => name !== "errors.txt").length;
      const missing = total - images;
      finish(
        `Downloaded ${filename}: ${images} of ${total} images (${megabytes(received)}).` +
          (missing > 0 ? ` ${missing} could not be included: errors.txt in the ZIP says why.` : ""),
      );
    } catch (error) {
      if (error.name === "AbortError") finish("Cancelled: nothing was saved.");
      else finish("The ZIP download failed: the connection to the server was lost. Try again.");
    }
  });

  setupSettings(document.getElementById("batch-settings"));
  update();
}

if (form && grid) setupBatch();
