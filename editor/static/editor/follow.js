// The editor's job in progress (a first run or a re-run): follow it in its card, then load
// the page again to show the new result; and the "Run again" form that starts a re-run.

import { errorMessage, send } from "../js/http.js";
import { updateCard } from "../js/jobcard.js";
import { watchJob } from "../js/jobs.js";

export function setupJobFollowing(config) {
  const jobList = document.getElementById("editor-job");
  const cardTemplate = document.getElementById("job-card-template");
  const rerunForm = document.getElementById("rerun-form");
  const button = document.getElementById("rerun-button");

  function followJob(state) {
    let card = jobList.querySelector(".job-card");
    if (!card) {
      card = cardTemplate.content.firstElementChild.cloneNode(true);
      jobList.append(card);
    }
    jobList.hidden = false;
    card.scrollIntoView({ block: "nearest" });
    watchJob(state, (next) => {
      updateCard(card, next);
      if (next.status === "done") window.location.reload();
      if (next.status === "failed") button.disabled = false;
    });
  }

  if (config.state && !config.state.finished) followJob(config.state);

  rerunForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    const response = await send(rerunForm.action, { body: new FormData(rerunForm) });
    if (!response.ok) {
      button.disabled = false;
      window.alert(await errorMessage(response));
      return;
    }
    jobList.querySelector(".job-card")?.remove();
    followJob(await response.json());
  });
}
