"""The engine's weights errors say what is wrong; the app adds what to do, in its own terms
(BGREMOVER_MODEL_DIR, ``manage.py fetch_models``)."""

from __future__ import annotations

import pickle

import pytest

from bgremover.engine.errors import OptionsError, WeightsError, WeightsRemedy
from editor.weights_advice import advice, explained


@pytest.mark.parametrize(
    "remedy, model, expected",
    [
        (
            WeightsRemedy.MISSING,
            None,
            "Run `python manage.py fetch_models` to download them, or set BGREMOVER_MODEL_DIR "
            "to a directory that holds them.",
        ),
        (
            WeightsRemedy.MISSING,
            "u2netp",
            "Run `python manage.py fetch_models u2netp`, or set BGREMOVER_MODEL_DIR to a "
            "directory that holds it.",
        ),
        (
            WeightsRemedy.DAMAGED,
            "u2net",
            "Delete it and run `python manage.py fetch_models u2net`, or set "
            "BGREMOVER_MODEL_DIR to a directory with a good copy.",
        ),
        (
            WeightsRemedy.UNUSABLE_PATH,
            "u2netp",
            "Or run `python manage.py fetch_models u2netp` for a good copy.",
        ),
        (WeightsRemedy.UNUSABLE_PATH, None, ""),
        (WeightsRemedy.UNWRITABLE, "u2netp", "Set BGREMOVER_MODEL_DIR to a writable directory."),
        (
            WeightsRemedy.DOWNLOAD_FAILED,
            "u2netp",
            "Or try again with `python manage.py fetch_models u2netp`.",
        ),
        (None, "u2netp", ""),
    ],
)
def test_each_remedy_becomes_the_apps_advice(remedy, model, expected):
    assert advice(WeightsError("What is wrong.", remedy=remedy, model=model)) == expected


def test_the_advice_follows_the_engines_message():
    error = WeightsError(
        "No weights for model 'u2netp'.", remedy=WeightsRemedy.MISSING, model="u2netp"
    )
    assert explained(error) == (
        "No weights for model 'u2netp'. Run `python manage.py fetch_models u2netp`, or set "
        "BGREMOVER_MODEL_DIR to a directory that holds it."
    )
    assert explained(WeightsError("Unknown model 'u3net'.")) == "Unknown model 'u3net'."
    assert explained(OptionsError("Bad colour.")) == "Bad colour."


def test_the_advice_survives_the_trip_from_an_engine_worker():
    """Jobs run in a worker process: the error comes back pickled."""
    error = WeightsError("x.pth is empty.", remedy=WeightsRemedy.DAMAGED, model="u2netp")
    again = pickle.loads(pickle.dumps(error))
    assert explained(again) == explained(error)
    assert "fetch_models u2netp" in explained(again)
