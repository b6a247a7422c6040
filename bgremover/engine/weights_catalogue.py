"""The known checkpoints and where their files are: the registry (``MODELS``) and the lookups.

A model name's weights file is searched for in ``model_dir`` (the caller's; the engine never
reads the environment itself), then in the repository's ``models/`` directory. Downloading
what is missing is weights_download's job, loading what is found weights_loader's. Their
errors say what is wrong; how to fix it in the app's terms is the app's to add (see
errors.WeightsRemedy).

This module imports neither Django nor PyTorch: the registry and the lookups (``get_spec``,
``find_weights``, ``default_model_name``) serve the web process's readiness check, which must
not pay for (or hold the memory of) an import of torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bgremover.engine.errors import WeightsError, WeightsRemedy

REPO_MODEL_DIR = Path(__file__).resolve().parents[2] / "models"


def _drive_url(file_id: str) -> str:
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download"


@dataclass(frozen=True)
class ModelSpec:
    """One known checkpoint: what network it fits, where it comes from, how to check it."""

    name: str
    architecture: str  # a key of bgremover.engine.model.ARCHITECTURES ("u2net", "u2netp")
    filename: str
    url: str  # official download location
    md5: str | None  # of the published file; None: the download is checked by layout instead
    size: int | None  # exact byte count of the published file, where known
    approx_size: str  # for people: "176.3 MB"
    description: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="u2net",
            architecture="u2net",
            filename="u2net.pth",
            url=_drive_url("1ao1ovG1Qtx4b7EoskHXmi2E9rp5CHLcZ"),
            md5="09fb4e49b7f785c9f855baf94916840a",
            size=None,
            approx_size="176.3 MB",
            description="Full U²-Net (44M parameters): the most accurate general cut-outs.",
        ),
        ModelSpec(
            name="u2netp",
            architecture="u2netp",
            filename="u2netp.pth",
            url=_drive_url("1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy"),
            md5="e4f636406ca4e2af789941e7f139ee2e",
            size=None,
            approx_size="4.7 MB",
            description="U²-NetP lite (1.1M parameters): fast, slightly rougher edges.",
        ),
        # The authors' README links this Drive file but publishes no checksum. The md5 that
        # older rembg releases list for u2net_human_seg.pth (347c3d51…) belongs to a different
        # Drive copy (1-Yg0cxg…) that could not be confirmed to hold the same bytes, so the
        # download is checked by its state-dict layout instead.
        ModelSpec(
            name="u2net_human_seg",
            architecture="u2net",
            filename="u2net_human_seg.pth",
            url=_drive_url("1m_Kgs91b21gayc2XLW0ou8yugAIadWVP"),
            md5=None,
            size=None,
            approx_size="about 176 MB",
            description="Full U²-Net trained on people (Supervisely Person): portraits, bodies.",
        ),
    )
}

# Considered, best first, when no model is named. The human model is opt-in only.
DEFAULT_CANDIDATES = ("u2net", "u2netp")


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; WeightsError naming the known models otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise WeightsError(f"Unknown model {name!r}. Known models: {known}.") from None


def search_dirs(model_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for weights files, in order: ``model_dir`` when given, then the
    repository's ``models/``."""
    dirs = [Path(model_dir).expanduser()] if model_dir is not None else []
    if REPO_MODEL_DIR not in dirs:
        dirs.append(REPO_MODEL_DIR)
    return dirs


def download_dir(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a missing model is downloaded to: the first search directory."""
    return search_dirs(model_dir)[0]


def find_weights(name: str, model_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first file named like ``name``'s weights in the search directories, unchecked."""
    spec = get_spec(name)
    for directory in search_dirs(model_dir):
        candidate = directory / spec.filename
        if candidate.is_file():
            return candidate
    return None


def not_found(spec: ModelSpec, model_dir: str | os.PathLike[str] | None = None) -> WeightsError:
    """The error for ``spec``'s weights file being in none of the search directories."""
    looked = ", ".join(str(d) for d in search_dirs(model_dir))
    return WeightsError(
        f"No weights for model {spec.name!r}: {spec.filename} is not in {looked}.",
        remedy=WeightsRemedy.MISSING,
        model=spec.name,
    )


def available_models(
    model_dir: str | os.PathLike[str] | None = None,
) -> list[tuple[str, Path | None]]:
    """Every registry model with the weights file found for it, or None when absent."""
    return [(name, find_weights(name, model_dir)) for name in MODELS]


def default_model_name(model_dir: str | os.PathLike[str] | None = None) -> str:
    """The best model whose weights are present: u2net, else u2netp. Never downloads."""
    for name in DEFAULT_CANDIDATES:
        if find_weights(name, model_dir) is not None:
            return name
    looked = ", ".join(str(d) for d in search_dirs(model_dir))
    raise WeightsError(
        f"No model weights found (looked for u2net.pth and u2netp.pth in {looked}).",
        remedy=WeightsRemedy.MISSING,
    )
