// Downloads: the form's choices go to the server, which renders the full-resolution file
// with the engine's own code; the answer is saved under the name the server gives it.

import { errorMessage } from "../js/http.js";

export function filenameFrom(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const encoded = header.match(/filename\*=utf-8''([^;]+)/i);
  if (encoded) return decodeURIComponent(encoded[1]);
  const quoted = header.match(/filename="((?:[^"\\]|\\.)*)"/);
  return quoted ? quoted[1].replace(/\\(.)/g, "$1") : fallback;
}

// Saves a fetched file under `filename` through a temporary Blob URL.
export function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// onSuccess runs after a file was saved (e.g. to clear an earlier error); ready() resolves
// when the server holds everything the file should show (touch-ups still being saved).
export function setupDownload(form, { onSuccess = () => {}, ready = async () => {} } = {}) {
  const error = document.getElementById("download-error");
  const button = document.getElementById("download-button");
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    error.textContent = "";
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (key !== "bg") params.append(key, value);
    // Marked busy, not disabled: disabling the button would drop the keyboard's focus.
    button.setAttribute("aria-disabled", "true");
    button.classList.add("is-busy");
    button.textContent = "Rendering…";
    try {
      await ready();
      const response = await fetch(`${form.action}?${params}`, { credentials: "same-origin" });
      if (!response.ok) {
        error.textContent = await errorMessage(response);
        return;
      }
      saveBlob(await response.blob(), filenameFrom(response, "download"));
      onSuccess();
    } catch {
      error.textContent = "The download failed: the server could not be reached.";
    } finally {
      busy = false;
      button.removeAttribute("aria-disabled");
      button.classList.remove("is-busy");
      button.textContent = "Download";
    }
  });
}
