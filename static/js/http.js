// Small fetch helpers shared by the pages: CSRF header, JSON errors as readable text.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// POST (or another unsafe method) with Django's CSRF header; resolves to the Response.
// ``signal``: an AbortSignal that cancels the request (and the reading of its body).
export function send(url, { method = "POST", body = null, signal = undefined } = {}) {
  return fetch(url, {
    method,
    body,
    signal,
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
  });
}

// The server's {"error": "..."} message, or a fallback naming the HTTP status.
export async function errorMessage(response) {
  try {
    const data = await response.json();
    if (data && data.error) return data.error;
  } catch {
    // Not JSON (e.g. a proxy's error page): fall through to the status text.
  }
  return `The server answered ${response.status} ${response.statusText}`.trim() + ".";
}
