// The before/after divider over the preview. The range input is the control for keyboards
// and assistive technology (arrows, Home/End); pointers drag anywhere on the picture. Touch
// only moves the divider on a horizontal drag or a tap: the picture is `touch-action: pan-y`,
// so a vertical swipe scrolls the page and the browser cancels our pointer.

const DRAG_START_PX = 8;

export function setupCompare(compare) {
  const range = compare.querySelector(".compare-range");
  let gesture = null;
  let enabled = true;

  const show = () => compare.style.setProperty("--pos", `${range.value}%`);
  const moveTo = (clientX) => {
    const box = compare.getBoundingClientRect();
    const percent = Math.round(((clientX - box.left) / box.width) * 100);
    range.value = String(Math.min(100, Math.max(0, percent)));
    show();
  };

  range.addEventListener("input", show);
  compare.addEventListener("pointerdown", (event) => {
    if (!enabled || event.button !== 0) return;
    gesture = { id: event.pointerId, x: event.clientX, y: event.clientY, dragging: false };
    if (event.pointerType !== "touch") {
      gesture.dragging = true;
      compare.setPointerCapture(event.pointerId);
      moveTo(event.clientX);
      event.preventDefault(); // no text selection or image drag
    }
  });
  compare.addEventListener("pointermove", (event) => {
    if (!gesture || event.pointerId !== gesture.id) return;
    if (!gesture.dragging) {
      const dx = Math.abs(event.clientX - gesture.x);
      const dy = Math.abs(event.clientY - gesture.y);
      if (dx < DRAG_START_PX || dx <= dy) return;
      gesture.dragging = true;
      compare.setPointerCapture(event.pointerId);
    }
    moveTo(event.clientX);
  });
  compare.addEventListener("pointerup", (event) => {
    if (!gesture || event.pointerId !== gesture.id) return;
    const moved = Math.hypot(event.clientX - gesture.x, event.clientY - gesture.y);
    if (!gesture.dragging && moved < DRAG_START_PX) moveTo(event.clientX); // a tap
    gesture = null;
  });
  // The browser took the touch over (a vertical scroll): leave the divider where it was.
  compare.addEventListener("pointercancel", () => {
    gesture = null;
  });
  show();
  return {
    // Another tool (e.g. a brush) may take the pointer over the picture for a while.
    setEnabled(value) {
      enabled = value;
      gesture = null;
      compare.classList.toggle("is-compare-off", !value);
    },
  };
}
