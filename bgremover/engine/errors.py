"""The engine's own exceptions. Every message is meant to be shown to a person as is."""


class EngineError(Exception):
    """Base class: anything the engine refuses or cannot do, with a readable reason."""


class ImageDecodeError(EngineError):
    """The input is empty, truncated, corrupt or not an image format we read."""


class ImageTooLargeError(EngineError):
    """The input exceeds a byte or pixel limit (including decompression bombs)."""


class WeightsError(EngineError):
    """Model weights are missing, corrupt, of the wrong architecture, or failed to download."""


class OptionsError(EngineError):
    """An option value (background, format, margin, …) is not valid."""
