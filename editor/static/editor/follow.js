// The editor's job in progress (a first run or a re-run): follow it in its card, then load
// the page again to show the new result; and the "Run again" form that starts a re-run.
// The editor's choices (background, crop, canvas, shadow, file) are kept for the page that
// comes back (saved_settings.js); the touch-ups are the server's.

import { errorMessage, send } from "../js/http.js";
import { updateCard } from "../js/jobcard.js";
import { watchJob } from "../js/jobs.js";
import { keepSettings } from "./saved_settings.js";

export function setupJobFollowing(config, imageId) {
  const jobList = document.getElementById("editor-job");
  const cardTemplate = document.getElementById("job-card-template");
  const rerunForm = document.getElementById("rerun-form");
  const button = document.getElementById("rerun-button");
  const renderForm = document.getElementById("render-form");
  const keep = () => {
    if (renderForm) keepSettings(imageId, renderForm);
  };

  // While a run is queued or running, "Run again" says so and waits for it. Marked busy, not
  // disabled: disabling the button would drop the keyboard's focus to the page.
  const idleLabel = button.textContent;
  function setRunning(running) {
    if (running) button.setAttribute("aria-disabled", "true");
    else button.removeAttribute("aria-disabled");
    button.classList.toggle("is-busy", running);
    button.textContent = running ? "Running…" : idleLabel;
  }

  function followJob(state) {
    let card = jobList.querySelector(".job-card");
    if (!card) {
      card = cardTemplate.content.firstElementChild.cloneNode(true);
      jobList.append(card);
    }
    jobList.hidden = false;
    card.scrollIntoView({ block: "nearest" });
    setRunning(true);
    watchJob(state, (next) => {
      updateCard(card, next);
      if (next.status === "done") {
        keep(); // as they are now, changed while it ran too
        window.location.reload();
      }
      if (next.status === "failed") setRunning(false);
    });
  }

  if (config.state && !config.state.finished) followJob(config.state);

  rerunForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.hasAttribute("aria-disabled")) return;
    setRunning(true);
    keep(); // also for a reload while it runs
    let response;
    try {
      response = await send(rerunForm.action, { body: new FormData(rerunForm) });
    } catch {
      setRunning(false);
      window.alert("The request did not reach the server. Check your connection and try again.");
      return;
    }
    if (!response.ok) {
      setRunning(false);
      window.alert(await errorMessage(response));
      return;
    }
    jobList.querySelector(".job-card")?.remove();
    followJob(await response.json());
  });
}
