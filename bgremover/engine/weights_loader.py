"""Loading a network with its weights onto a device, once per process.

Resolution order for a model name (``load_model``):

1. an explicit ``path`` to a weights file;
2. ``model_dir`` (the caller's setting), then the repository's ``models/``
   (weights_catalogue.search_dirs);
3. a download (weights_download.download_weights) into the first of those directories.

Every file is checked by its state-dict layout before use (weights_check). ``load_model``
keeps one module per (weights file, device) for the life of the process and is safe to call
from several threads at once; the first load also sets torch's CPU thread count. PyTorch is
imported only inside the functions that need it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bgremover.engine.errors import OptionsError, WeightsError
from bgremover.engine.weights_catalogue import (
    MODELS,
    ModelSpec,
    default_model_name,
    download_dir,
    find_weights,
    get_spec,
    not_found,
)
from bgremover.engine.weights_check import BadFile, checked_state, unusable_file
from bgremover.engine.weights_download import DownloadProgress, download_weights

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class LoadedModel:
    """A network with its weights, in eval mode on ``device``, ready for inference."""

    name: str
    spec: ModelSpec
    path: Path
    device: torch.device
    module: nn.Module


_cache: dict[tuple[Path, str], LoadedModel] = {}
_cache_lock = threading.Lock()
_download_locks: dict[Path, threading.Lock] = {}
_threads_configured = False


def configure_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads to ``threads`` (None: the CPUs this process may run
    on), and return the number."""
    import torch

    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise OptionsError(f"Torch threads must be a positive whole number, not {threads!r}.")
    elif hasattr(os, "sched_getaffinity"):
        threads = len(os.sched_getaffinity(0))
    else:
        threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def _pick_device(device: str | torch.device | None) -> torch.device:
    import torch

    if device is None or device == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise OptionsError(
            f"Device {device!r} is not a device name (try 'auto', 'cpu' or 'cuda')."
        ) from exc
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError(f"Device {str(chosen)!r} was asked for, but CUDA is not available.")
        if chosen.index is None:
            chosen = torch.device("cuda", torch.cuda.current_device())
    return chosen


def _locate(
    name: str | None,
    path: str | os.PathLike[str] | None,
    model_dir: str | os.PathLike[str] | None,
    download: bool,
    base_url: str | None,
    progress: DownloadProgress | None,
) -> tuple[ModelSpec | None, Path]:
    """(spec, weights file) following the resolution order; spec is None for an explicit file
    whose name and arguments say nothing about its architecture."""
    if path is not None:
        path = Path(path).expanduser()
        if name is not None:
            return get_spec(name), path
        return MODELS.get(path.stem), path
    spec = get_spec(name if name is not None else default_model_name(model_dir))
    found = find_weights(spec.name, model_dir)
    if found is not None:
        return spec, found
    target = download_dir(model_dir)
    if not download:
        raise not_found(spec, model_dir)
    with _cache_lock:
        lock = _download_locks.setdefault(target / spec.filename, threading.Lock())
    with lock:  # one download per file even when several workers ask at once
        found = find_weights(spec.name, model_dir)
        if found is None:
            found = download_weights(spec, target, base_url=base_url, progress=progress)
    return spec, found


def load_model(
    name: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    download: bool = True,
    base_url: str | None = None,
    progress: DownloadProgress | None = None,
    threads: int | None = None,
) -> LoadedModel:
    """The network for ``name`` (None: the best one present, see ``default_model_name``) with
    its weights, in eval mode on ``device`` (None or "auto": CUDA when available, else CPU).
    The first load in the process sets torch's CPU threads to ``threads`` (None: every CPU
    the process may run on; see ``configure_torch_threads``).

    A named model that is found nowhere is downloaded (``download=False`` turns that off;
    ``base_url`` and ``progress`` are passed to ``download_weights``). Each (weights file,
    device) is loaded once per process and the same LoadedModel returned afterwards.
    Raises WeightsError for unknown names and missing, corrupt or mismatched files, and
    OptionsError for an unusable ``device``."""
    global _threads_configured
    import torch

    from bgremover.engine.model import ARCHITECTURES

    spec, weights_path = _locate(name, path, model_dir, download, base_url, progress)
    torch_device = _pick_device(device)
    explicit = path is not None
    key = (weights_path.resolve(), str(torch_device))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            if spec is not None and spec.architecture != cached.spec.architecture:
                raise WeightsError(
                    f"{weights_path} holds {cached.spec.architecture} weights, not "
                    f"{spec.architecture} weights for model {spec.name!r}."
                )
            return cached
        if not _threads_configured:
            configure_torch_threads(threads)
            _threads_configured = True
        try:
            state, spec = checked_state(weights_path, spec)
        except BadFile as exc:
            raise unusable_file(weights_path, exc, spec, explicit) from exc
        # Built on the meta device, then given the file's tensors: random initialisation of
        # weights that are overwritten at once costs a tenth of a second in every new process.
        with torch.device("meta"):
            module = ARCHITECTURES[spec.architecture]()
        module.load_state_dict(state, strict=True, assign=True)
        module.float()  # the file's own dtype came with assign; the engine computes in float32
        try:
            module.eval().to(torch_device)
        except (RuntimeError, AssertionError) as exc:  # e.g. a backend torch was built without
            raise OptionsError(f"Cannot use device {str(torch_device)!r}: {exc}") from exc
        loaded = LoadedModel(
            name=spec.name, spec=spec, path=weights_path, device=torch_device, module=module
        )
        _cache[key] = loaded
        return loaded


def clear_model_cache() -> None:
    """Forget every loaded model (their memory is freed once no caller holds them)."""
    with _cache_lock:
        _cache.clear()
