"""rembg 2.0.86 on the project's own weights (``shared/models/u2netp.onnx``): the anchor.

rembg's ``u2net_custom`` session refuses model files outside its home folder
(``$U2NET_HOME`` when set, else ``~/.rembg``), so the ONNX file is copied into a
home of the benchmark's own and ``U2NET_HOME`` points there, in this process and in
the environment of every ``rembg i`` it starts.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

ONNX_NAME = "u2netp.onnx"


def rembg_available() -> bool:
    try:
        import rembg  # noqa: F401
    except ImportError:
        return False
    return True


def prepare_home(onnx_path: Path, home: Path) -> Path:
    """Copy the ONNX export into ``home`` (once) and return the copy's path."""
    if not onnx_path.is_file():
        raise SystemExit(f"ONNX export of the weights not found at {onnx_path}")
    home.mkdir(parents=True, exist_ok=True)
    copy = home / ONNX_NAME
    if not copy.is_file() or copy.stat().st_size != onnx_path.stat().st_size:
        shutil.copyfile(onnx_path, copy)
    return copy.resolve()


def rembg_env(home: Path) -> dict[str, str]:
    """The environment for a ``rembg i`` subprocess that may load models from ``home``."""
    return {**os.environ, "U2NET_HOME": str(home.resolve())}


class RembgCutter:
    """One ``u2net_custom`` session; cuts images out the way ``rembg i`` does."""

    def __init__(self, model_path: Path) -> None:
        os.environ["U2NET_HOME"] = str(model_path.parent)
        from rembg import new_session

        self.session = new_session("u2net_custom", model_path=str(model_path))

    def cutout(self, image_path: Path, *, alpha_matting: bool) -> Image.Image:
        """rembg's RGBA cut-out with its default alpha-matting parameters."""
        from rembg import remove

        with Image.open(image_path) as image:
            return remove(image, session=self.session, alpha_matting=alpha_matting)

    def alpha(self, image_path: Path, *, alpha_matting: bool) -> np.ndarray:
        return np.asarray(self.cutout(image_path, alpha_matting=alpha_matting).getchannel("A"))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One raw network pass through ONNX Runtime (batch: 1×3×320×320 float32)."""
        inner = self.session.inner_session
        return inner.run(None, {inner.get_inputs()[0].name: batch})[0]


def cli_command(
    rembg_exe: str, image: Path, output: Path, model_path: Path, *, alpha_matting: bool
) -> list[str]:
    """``rembg i`` on one photo with the custom session (``-a``: default alpha matting)."""
    extras = json.dumps({"model_path": str(model_path)})
    command = [rembg_exe, "i", "-m", "u2net_custom", "-x", extras]
    if alpha_matting:
        command.append("-a")
    return [*command, str(image), str(output)]
