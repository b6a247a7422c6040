"""What to do about a weights problem, in the app's terms.

The engine's WeightsError says what is wrong (which file, which directory) and, in ``remedy``
and ``model``, what would mend it; it knows neither the app's settings nor its commands. Here
that becomes advice a person can follow: the variable to set, the command to run."""

from __future__ import annotations

from bgremover.engine.errors import EngineError, WeightsError, WeightsRemedy

MODEL_DIR_VARIABLE = "BGREMOVER_MODEL_DIR"


def fetch_command(model: str | None = None) -> str:
    """The command that downloads ``model``'s weights (None: the default models')."""
    return f"python manage.py fetch_models {model}" if model else "python manage.py fetch_models"


def advice(error: WeightsError) -> str:
    """What to do about ``error``; empty when only other arguments would mend it."""
    model = error.model
    match error.remedy:
        case WeightsRemedy.MISSING if model:
            return (
                f"Run `{fetch_command(model)}`, or set {MODEL_DIR_VARIABLE} to a directory "
                "that holds it."
            )
        case WeightsRemedy.MISSING:
            return (
                f"Run `{fetch_command()}` to download them, or set {MODEL_DIR_VARIABLE} to a "
                "directory that holds them."
            )
        case WeightsRemedy.DAMAGED:
            return (
                f"Delete it and run `{fetch_command(model or 'NAME')}`, or set "
                f"{MODEL_DIR_VARIABLE} to a directory with a good copy."
            )
        case WeightsRemedy.UNUSABLE_PATH if model:
            return f"Or run `{fetch_command(model)}` for a good copy."
        case WeightsRemedy.UNWRITABLE:
            return f"Set {MODEL_DIR_VARIABLE} to a writable directory."
        case WeightsRemedy.DOWNLOAD_FAILED:
            return f"Or try again with `{fetch_command(model)}`."
    return ""


def explained(error: EngineError) -> str:
    """``error``'s message, with the advice for a weights problem after it."""
    extra = advice(error) if isinstance(error, WeightsError) else ""
    return f"{error} {extra}" if extra else str(error)
