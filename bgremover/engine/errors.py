"""The engine's own exceptions. Every message is meant to be shown to a person as is."""

from enum import StrEnum


class EngineError(Exception):
    """Base class: anything the engine refuses or cannot do, with a readable reason."""


class ImageDecodeError(EngineError):
    """The input is empty, truncated, corrupt or not an image format we read."""


class ImageTooLargeError(EngineError):
    """The input exceeds a byte or pixel limit (including decompression bombs)."""


class WeightsRemedy(StrEnum):
    """What would mend a WeightsError. The engine states what is wrong (which file, which
    directory); wording the fix in the app's own terms (its settings, its commands) is the
    caller's job, from this and ``WeightsError.model``."""

    # No weights file where the engine looked: get one there, or look where one is.
    MISSING = "missing"
    # The file found in a model directory is unusable: replace it, or look elsewhere.
    DAMAGED = "damaged"
    # A file given by path is unusable (the message says to check the path).
    UNUSABLE_PATH = "unusable_path"
    # The download directory cannot be written to: download somewhere else.
    UNWRITABLE = "unwritable"
    # A download failed or arrived damaged (the message says where to get the file by hand).
    DOWNLOAD_FAILED = "download_failed"


class WeightsError(EngineError):
    """Model weights are missing, corrupt, of the wrong architecture, or failed to download.

    ``remedy``: what would mend it, None when nothing but other arguments would (an unknown
    model name, an architecture mismatch); ``model``: the registry name the weights are for,
    when known. Both survive pickling (BaseException pickles the instance's __dict__)."""

    def __init__(
        self, message: str, *, remedy: WeightsRemedy | None = None, model: str | None = None
    ) -> None:
        super().__init__(message)
        self.remedy = remedy
        self.model = model


class OptionsError(EngineError):
    """An option value (background, format, margin, …) is not valid."""
