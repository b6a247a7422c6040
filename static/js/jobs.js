// Follow one job's state: websocket first, polling the JSON status URL as a fallback.
//
// The server sends the job's current state from the database as soon as the socket opens,
// then every progress event. If the socket cannot connect or drops, we poll instead; and
// if it stays silent for a while (a worker in another process cannot reach this server's
// in-memory channel layer) we poll once to catch up.
//
// The server closes sockets on its own: right after the final state (we have stopped by
// then), after a while with nothing to send (idle), and it refuses them past its caps on
// open sockets (the browser sees a failed connection). Any close before the job is finished
// means polling until it is, with no error shown: the socket is only a faster channel.

const POLL_MS = 1000;
// Polling slows down to this while nothing changes: a busy server is not flooded by waiting pages.
const POLL_MAX_MS = 5000;
const SILENCE_MS = 4000;
const GONE = "This image no longer exists: it was deleted, or its retention period ended.";

function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

// Calls onState(state) with each new snapshot until the job is finished. Returns stop().
export function watchJob(state, onState) {
  let stopped = false;
  let socket = null;
  let pollTimer = null;
  let silenceTimer = null;

  const stop = () => {
    stopped = true;
    clearTimeout(pollTimer);
    clearTimeout(silenceTimer);
    if (socket) socket.close();
  };

  let pollDelay = POLL_MS;
  let lastSeen = "";

  const deliver = (next) => {
    if (stopped) return;
    const seen = `${next.status} ${next.stage} ${next.percent}`;
    if (seen !== lastSeen) pollDelay = POLL_MS; // moving again: look often
    lastSeen = seen;
    onState(next);
    if (next.finished) stop();
  };

  const fetchState = async () => {
    try {
      const response = await fetch(state.urls.status, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) deliver(await response.json());
      // Deleted or purged meanwhile: say so (as the server would, had it kept the job), and
      // stop asking.
      else if (response.status === 404) {
        deliver({ ...state, status: "failed", status_label: "Failed", finished: true, error: GONE });
      }
    } catch {
      // Network hiccup: the next poll tries again.
    }
  };

  const poll = async () => {
    await fetchState();
    if (stopped) return;
    pollTimer = setTimeout(poll, pollDelay);
    pollDelay = Math.min(POLL_MAX_MS, Math.round(pollDelay * 1.5));
  };

  const armSilenceCheck = () => {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(async () => {
      await fetchState();
      if (!stopped) armSilenceCheck();
    }, SILENCE_MS);
  };

  onState(state);
  if (state.finished) return stop;

  try {
    socket = new WebSocket(socketUrl(state.urls.socket));
  } catch {
    poll();
    return stop;
  }
  socket.addEventListener("message", (event) => {
    armSilenceCheck();
    deliver(JSON.parse(event.data));
  });
  socket.addEventListener("open", armSilenceCheck);
  socket.addEventListener("close", () => {
    socket = null;
    clearTimeout(silenceTimer);
    if (!stopped && pollTimer === null) poll();
  });
  return stop;
}
