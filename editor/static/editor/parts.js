// The cut-out's separate parts (the subjects, or stray pieces the network kept), listed
// with small previews; each is removed or brought back with one button (refine.js saves it).

import { canvasOf } from "./preview.js";

const THUMB = 56;

export function setupParts({ preview, onRemove, onKeep }) {
  const group = document.getElementById("parts-group");
  const list = document.getElementById("parts-list");

  function thumbnail(part) {
    const canvas = canvasOf(THUMB, THUMB);
    canvas.className = "part-thumb checkerboard";
    const [left, top, right, bottom] = part.box.map((value) => value * preview.scale);
    const w = Math.max(1, right - left);
    const h = Math.max(1, bottom - top);
    const fit = Math.min(THUMB / w, THUMB / h);
    const ctx = canvas.getContext("2d");
    // A removed part is gone from the cut-out: show it from the photo instead, faded.
    if (part.removed) ctx.globalAlpha = 0.45;
    const source = part.removed ? preview.original : preview.cutout;
    ctx.drawImage(source, left, top, w, h, (THUMB - w * fit) / 2, (THUMB - h * fit) / 2, w * fit, h * fit);
    return canvas;
  }

  function update(parts) {
    // The buttons are made anew: one that had the focus hands it to its successor (the same
    // part's "Bring back" after "Remove"), or a keyboard user is thrown back to the page.
    const buttons = [...list.querySelectorAll("button")];
    const focused = buttons.indexOf(document.activeElement);
    list.replaceChildren();
    // Only worth a list when there is a choice to make.
    group.hidden = parts.length < 2 && !parts.some((part) => part.removed);
    const total = parts.reduce((sum, part) => sum + part.area, 0) || 1;
    parts.forEach((part, index) => {
      const item = document.createElement("li");
      item.className = "part" + (part.removed ? " is-removed" : "");
      const label = document.createElement("span");
      const share = Math.max(1, Math.round((100 * part.area) / total));
      label.textContent = `Part ${index + 1} · ${share}%${part.removed ? " · removed" : ""}`;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button button-small";
      button.textContent = part.removed ? "Bring back" : "Remove";
      button.setAttribute("aria-label", `${part.removed ? "Bring back" : "Remove"} part ${index + 1}`);
      button.addEventListener("click", () => (part.removed ? onKeep(part) : onRemove(part)));
      item.append(thumbnail(part), label, button);
      list.append(item);
    });
    if (focused < 0) return;
    const now = list.querySelectorAll("button");
    if (!group.hidden && now.length) now[Math.min(focused, now.length - 1)].focus();
    else document.getElementById("undo-button").focus();
  }

  return { update };
}
