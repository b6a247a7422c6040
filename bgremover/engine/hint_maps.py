"""Hint maps as files: an 8-bit grey PNG the size of the photo (255 keep, 0 remove, other
values no hint; see hints.py), read and followed on a finished cut-out. Used by
``removebg --hints`` and the API's ``hints_file``."""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from bgremover.engine.errors import OptionsError
from bgremover.engine.hints import apply_hints
from bgremover.engine.pipeline import Cutout


@contextmanager
def _opened(
    source: bytes | str | os.PathLike[str] | BinaryIO, name: str, size: tuple[int, int] | None
) -> Iterator[Image.Image]:
    """The hint map opened (not decoded) and checked from its header: an 8-bit grey PNG, of
    ``size`` = (width, height) when given; OptionsError otherwise, also for what fails to
    decode inside the block."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                if image.format != "PNG" or image.mode != "L":
                    raise OptionsError(
                        f"hint map {name} must be an 8-bit grey PNG, not "
                        f"{image.format} {image.mode}"
                    )
                if size is not None and image.size != size:
                    raise _wrong_size(name, image.size, size)
                yield image
    except (
        UnidentifiedImageError,
        SyntaxError,
        ValueError,
        OSError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise OptionsError(f"hint map {name} is not a readable PNG ({exc})") from exc


def check_hint_map(
    source: bytes | str | os.PathLike[str] | BinaryIO, name: str, size: tuple[int, int]
) -> None:
    """Raise OptionsError unless ``source`` looks like a hint map for a photo of ``size``
    (its header only: cheap enough to check before any work)."""
    with _opened(source, name, size):
        pass


def read_hint_map(
    source: bytes | str | os.PathLike[str] | BinaryIO,
    name: str,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The hint map in ``source`` as H×W uint8; OptionsError unless it is an 8-bit grey PNG
    (of ``size`` = (width, height) when given: checked from the header, before decoding)."""
    with _opened(source, name, size) as image:
        return np.asarray(image).copy()


def _wrong_size(name: str, found: tuple[int, int], photo: tuple[int, int]) -> OptionsError:
    return OptionsError(
        f"hint map {name} is {found[0]}×{found[1]} but the photo is {photo[0]}×{photo[1]}"
    )


def follow_hint_map(cutout: Cutout, hints: np.ndarray, name: str) -> Cutout:
    """``cutout`` corrected by the marks of ``hints`` (hints.apply_hints)."""
    height, width = cutout.alpha.shape
    if hints.shape != (height, width):
        raise _wrong_size(name, (hints.shape[1], hints.shape[0]), (width, height))
    photo = cutout.original if cutout.original is not None else cutout.foreground
    refined = apply_hints(photo, cutout.foreground, cutout.alpha, hints)
    return dataclasses.replace(cutout, alpha=refined.alpha, foreground=refined.foreground)
