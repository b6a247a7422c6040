"""bench.clicks' bound for a spread: each mark fixes exactly the mistake it lies in."""

from __future__ import annotations

import numpy as np

from bench.clicks import iou, perfect_spread
from bgremover.engine.hints import KEEP, NO_HINT, REMOVE


def test_the_bound_fixes_the_marked_mistakes_only_and_keeps_the_marks_hard() -> None:
    truth = np.zeros((60, 80), bool)
    truth[10:50, 10:40] = True  # the subject
    alpha = np.zeros(truth.shape, np.uint8)
    alpha[10:50, 10:25] = 255  # half of it missed ...
    alpha[5:15, 60:75] = 255  # ... and a piece of background kept
    hints = np.full(truth.shape, NO_HINT, np.uint8)
    hints[30, 30] = KEEP  # on the missed half
    fixed = perfect_spread(truth)(np.zeros((*truth.shape, 3), np.uint8), None, alpha, hints)
    assert (fixed[10:50, 10:40] == 255).all()
    assert (fixed[5:15, 60:75] == 255).all()  # no mark there: still wrong
    hints[10, 67] = REMOVE
    hints[20, 5] = KEEP  # on background that is right: painted anyway, as the engine does
    fixed = perfect_spread(truth)(np.zeros((*truth.shape, 3), np.uint8), None, alpha, hints)
    assert (fixed[5:15, 60:75] == 0).all() and fixed[20, 5] == 255
    assert iou(fixed, truth) == (truth.sum()) / (truth.sum() + 1)
