// The page's one live region (#announcer in base.html): short messages for screen readers
// about things that happen away from the focus (an upload finished, an image was deleted).

let timer = null;

export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  // Cleared first so the same message said twice is read twice.
  region.textContent = "";
  clearTimeout(timer);
  timer = setTimeout(() => {
    region.textContent = message;
  }, 100);
}
