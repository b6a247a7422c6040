// Deleting with a moment to change one's mind, instead of a confirm() dialog: the item is
// hidden at once and a toast says "Deleted X — Undo". The delete is sent after UNDO_MS, at
// once when another delete starts, or when the page is left (navigator.sendBeacon, which
// outlives the page; the server's delete view takes its POST with the form's CSRF token).

import { announce } from "./announce.js";
import { send } from "./http.js";

export const UNDO_MS = 6000;
// Images whose delete was sent as the page was left: the next page may have been rendered
// before the server finished, so it hides them (see hideJustDeleted).
const GONE_KEY = "bgremover.just-deleted";

let pending = null;

function toastParts() {
  const toast = document.getElementById("toast");
  return { toast, message: toast.querySelector(".toast-message"), undo: toast.querySelector(".toast-undo") };
}

function closeToast() {
  const { toast, undo } = toastParts();
  const hadFocus = toast.contains(document.activeElement);
  toast.hidden = true;
  undo.onclick = null;
  return hadFocus;
}

function rememberGone(id) {
  try {
    const gone = JSON.parse(sessionStorage.getItem(GONE_KEY) || "[]");
    sessionStorage.setItem(GONE_KEY, JSON.stringify([...gone, id]));
  } catch {
    // Storage refused (private mode): the next page may show it a moment longer.
  }
}

// Ids of images deleted as the previous page was left; the list is emptied.
export function takeJustDeleted() {
  try {
    const gone = JSON.parse(sessionStorage.getItem(GONE_KEY) || "[]");
    sessionStorage.removeItem(GONE_KEY);
    return new Set(gone);
  } catch {
    return new Set();
  }
}

function beacon() {
  if (!pending) return;
  const { form, id } = pending;
  const body = new FormData(form);
  const sent = navigator.sendBeacon?.(form.action, body);
  if (!sent) fetch(form.action, { method: "POST", body, keepalive: true, credentials: "same-origin" });
  rememberGone(id);
  pending = null;
}

window.addEventListener("pagehide", beacon);

// Send a pending delete now; resolves when the server has answered.
export async function commitPending() {
  if (!pending) return;
  const current = pending;
  pending = null;
  clearTimeout(current.timer);
  const hadFocus = closeToast();
  let ok = false;
  try {
    const response = await send(current.form.action, { body: new FormData(current.form) });
    ok = response.ok || response.status === 404; // 404: gone already (expired)
  } catch {
    ok = false;
  }
  if (ok) current.onDeleted({ hadFocus });
  else {
    current.onRestore({ hadFocus });
    announce(`${current.name} could not be deleted: the server could not be reached.`);
  }
}

// Drop a pending delete without sending it (e.g. a "delete all" covers it).
export function forgetPending() {
  if (!pending) return;
  clearTimeout(pending.timer);
  pending = null;
  closeToast();
}

// form: the image's delete form; hide/onRestore/onDeleted: what the page does.
export function deleteWithUndo({ form, id, name, hide, onRestore, onDeleted }) {
  if (pending) commitPending();
  hide();
  const { toast, message, undo } = toastParts();
  message.textContent = `Deleted ${name}.`;
  toast.hidden = false;
  announce(`Deleted ${name}. Press Undo within ${UNDO_MS / 1000} seconds to keep it.`);
  const entry = { form, id, name, onRestore, onDeleted };
  entry.timer = setTimeout(commitPending, UNDO_MS);
  pending = entry;
  undo.onclick = () => {
    if (pending !== entry) return;
    clearTimeout(entry.timer);
    pending = null;
    closeToast();
    onRestore({ hadFocus: true, undone: true });
    announce(`${name} was not deleted.`);
  };
  undo.focus();
}
