"""Model weights: the registry of known checkpoints, finding them, downloading them, loading them.

Resolution order for a model name (``load_model``):

1. an explicit ``path`` to a weights file;
2. ``model_dir`` (callers pass the app's ``BGREMOVER_MODEL_DIR`` setting; when they pass
   nothing the environment variable of that name is read as a fallback);
3. the repository's ``models/`` directory;
4. a download from the model's official location (or from a mirror given by ``base_url`` /
   ``$BGREMOVER_WEIGHTS_URL``) into ``model_dir`` when one is set, else into ``models/``.
   Downloads go to a temporary file in the same directory, are checked against the published
   md5 and only then renamed into place, so a partial file never sits at the final name.

Files given by path or found in a directory are checked by their state-dict layout (key names
and tensor shapes equal to the architecture's), not by the download checksum: converted
checkpoints such as the shared ``u2netp.pth`` are valid weights with different bytes.

``load_model`` keeps one module per (weights file, device) for the life of the process and is
safe to call from several threads at once. This module imports nothing from Django, and PyTorch
only inside the functions that need it: the registry and the lookups (``get_spec``,
``find_weights``, ``default_model_name``) serve the web process's readiness check, which must
not pay for (or hold the memory of) an import of torch.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bgremover.engine.errors import OptionsError, WeightsError

if TYPE_CHECKING:
    import torch
    from torch import nn

MODEL_DIR_ENV = "BGREMOVER_MODEL_DIR"
WEIGHTS_URL_ENV = "BGREMOVER_WEIGHTS_URL"
TORCH_THREADS_ENV = "BGREMOVER_TORCH_THREADS"
REPO_MODEL_DIR = Path(__file__).resolve().parents[2] / "models"

DownloadProgress = Callable[[int, int | None], None]
"""Called as ``(bytes_done, bytes_total_or_None)`` while a file downloads."""


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

    @property
    def fetch_command(self) -> str:
        return f"python manage.py fetch_models {self.name}"


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


@dataclass(frozen=True)
class LoadedModel:
    """A network with its weights, in eval mode on ``device``, ready for inference."""

    name: str
    spec: ModelSpec
    path: Path
    device: torch.device
    module: nn.Module


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; WeightsError naming the known models otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise WeightsError(f"Unknown model {name!r}. Known models: {known}.") from None


def search_dirs(model_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for weights files, in order: ``model_dir`` (or
    ``$BGREMOVER_MODEL_DIR``), then the repository's ``models/``."""
    chosen = model_dir if model_dir is not None else os.environ.get(MODEL_DIR_ENV) or None
    dirs = [Path(chosen).expanduser()] if chosen is not None else []
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
        f"No model weights found (looked for u2net.pth and u2netp.pth in {looked}). "
        f"Run `python manage.py fetch_models` to download them, or set {MODEL_DIR_ENV} "
        "to a directory that holds them."
    )


# --- checking a weights file -------------------------------------------------------------


@functools.cache
def expected_layout(architecture: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of the architecture's state dict (built on the meta device: no memory)."""
    import torch

    from bgremover.engine.model import ARCHITECTURES

    with torch.device("meta"):
        module = ARCHITECTURES[architecture]()
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


class _BadFile(Exception):
    """Why a file is not usable weights, worded to follow the file's name."""


def _fix_hint(spec: ModelSpec | None, explicit: bool) -> str:
    if explicit:
        where = "Check the path you gave"
        return f"{where}, or run `{spec.fetch_command}`." if spec else f"{where}."
    name = spec.name if spec else "NAME"
    return (
        f"Delete it and run `python manage.py fetch_models {name}`, "
        f"or set {MODEL_DIR_ENV} to a directory with a good copy."
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path``, unwrapped from ``{"state_dict": …}`` and a
    DataParallel ``module.`` prefix; _BadFile for anything that is not one."""
    import torch

    if not path.exists():
        raise _BadFile("does not exist")
    if not path.is_file():
        raise _BadFile("is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, …
        # torch's first sentence names the fault (the rest is advice for developers); bare
        # tokens such as a KeyError's "101" say nothing to a person and are left out.
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        detail = f" ({reason[:200]})" if " " in reason else ""
        raise _BadFile(
            f"is not a readable PyTorch weights file; it may be truncated or corrupt{detail}"
        ) from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if (
        not isinstance(loaded, Mapping)
        or not loaded
        or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor)
            for key, value in loaded.items()
        )
    ):
        raise _BadFile(f"does not contain a model state dict (found {type(loaded).__name__})")
    state = dict(loaded)
    if all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def _layout_problems(state: Mapping[str, torch.Tensor], architecture: str) -> list[str]:
    expected = expected_layout(architecture)
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} instead of {shape}"
        for key, shape in expected.items()
        if key in state and tuple(state[key].shape) != shape
    ]
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", wrong_shape),
    ):
        if items:
            shown = ", ".join(items[:3]) + (", …" if len(items) > 3 else "")
            problems.append(f"{len(items)} {label} ({shown})")
    return problems


def _checked_state(path: Path, spec: ModelSpec | None) -> tuple[dict[str, torch.Tensor], ModelSpec]:
    """The file's state dict and the spec it fits: ``spec``'s architecture when given, else
    whichever architecture the layout matches. _BadFile says what is wrong otherwise."""
    from bgremover.engine.model import ARCHITECTURES

    state = _read_state_dict(path)
    if spec is None:
        for architecture in ARCHITECTURES:
            if not _layout_problems(state, architecture):
                return state, MODELS[architecture]
        raise _BadFile(
            "holds neither U²-Net nor U²-NetP weights (its keys and shapes match "
            "no known architecture)"
        )
    problems = _layout_problems(state, spec.architecture)
    if problems:
        others = [
            arch
            for arch in ARCHITECTURES
            if arch != spec.architecture and not _layout_problems(state, arch)
        ]
        looks_like = f". It looks like {others[0]} weights" if others else ""
        raise _BadFile(
            f"does not hold {spec.architecture} weights for model {spec.name!r}: "
            f"{'; '.join(problems)}{looks_like}"
        )
    return state, spec


def read_weights(path: str | os.PathLike[str], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, checked against ``spec``'s architecture; WeightsError
    (naming the file and the fix) when it is missing, unreadable or of another layout."""
    path = Path(path)
    try:
        return _checked_state(path, spec)[0]
    except _BadFile as exc:
        raise WeightsError(f"{path} {exc}. {_fix_hint(spec, explicit=False)}") from exc


# --- downloading -------------------------------------------------------------------------


class _ConfirmPageParser(HTMLParser):
    """Collects what Google Drive's "can't scan this file for viruses" page offers to go on:
    the ``download-form`` (action + hidden inputs), a ``confirm=`` link, or an error text."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.confirm_links: list[str] = []
        self.error_text: list[str] = []
        self._in_form = False
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append((attributes.get("action", ""), {}))
            self._in_form = True
        elif tag == "input" and self._in_form and attributes.get("type") == "hidden":
            if attributes.get("name"):
                self.forms[-1][1][attributes["name"]] = attributes.get("value", "")
        elif tag == "a" and "confirm=" in attributes.get("href", ""):
            self.confirm_links.append(attributes["href"])
        elif "uc-error-subcaption" in attributes.get("class", "").split():
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif self._in_error and tag in ("p", "div"):
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.error_text.append(data.strip())


def _confirmation_url(page: str, page_url: str, cookies: CookieJar) -> str | None:
    """The URL that answers Drive's confirmation page, or None when the page offers none."""
    parser = _ConfirmPageParser()
    parser.feed(page)
    for action, fields in parser.forms:
        if "confirm" in fields or "download" in action:
            split = urllib.parse.urlsplit(urllib.parse.urljoin(page_url, action or page_url))
            query = dict(urllib.parse.parse_qsl(split.query))
            query.update(fields)
            return urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(query)))
    if parser.confirm_links:
        return urllib.parse.urljoin(page_url, parser.confirm_links[0])
    # Older Drive answered with a download_warning cookie whose value is the token.
    for cookie in cookies:
        if cookie.name.startswith("download_warning"):
            split = urllib.parse.urlsplit(page_url)
            query = dict(urllib.parse.parse_qsl(split.query), confirm=cookie.value or "t")
            return urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(query)))
    if parser.error_text:
        raise WeightsError(f"Google Drive refused the download: {' '.join(parser.error_text)}")
    return None


class _Retry(Exception):
    """A transient failure: wait, then resume or restart the download."""


_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
_MAX_CONFIRM_PAGES = 3
_USER_AGENT = "bgremover-weights/1.0 (+https://github.com/xuebinqin/U-2-Net)"


def _transfer(
    url: str,
    out: BinaryIO,
    progress: DownloadProgress | None,
    expected_size: int | None,
    retries: int,
    backoff: float,
    timeout: float,
) -> None:
    """Write the body at ``url`` into ``out``, following Drive confirmation pages; on a
    dropped connection retry with backoff, resuming with a Range request when the server
    answers 206 and starting over when it answers 200."""
    cookies = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    done = 0
    furthest = 0  # an attempt counts as failed only when it gets no further than this
    failures = 0
    confirm_pages = 0
    while True:
        headers = {"User-Agent": _USER_AGENT}
        if done:
            headers["Range"] = f"bytes={done}-"
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                if resp.headers.get_content_type() == "text/html":
                    confirm_pages += 1
                    page = resp.read(1 << 20).decode("utf-8", "replace")
                    next_url = _confirmation_url(page, resp.url, cookies)
                    if next_url is None or confirm_pages > _MAX_CONFIRM_PAGES:
                        raise WeightsError(
                            f"{url} answered with a web page instead of the weights file "
                            "(Google Drive may be over its download quota for this file)."
                        )
                    url = next_url
                    continue
                if done and not _resumes_at(resp, done):
                    done = _restart(out)  # a 200 has the whole file: use it
                    if resp.status == 206:  # a part from elsewhere: ask again for all of it
                        where = resp.headers.get("Content-Range")
                        raise _Retry(f"server resumed at the wrong place ({where})")
                total = _response_total(resp, expected_size)
                while chunk := resp.read(_CHUNK):
                    _write(out, chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                if total is not None and done < total:
                    raise _Retry(f"connection closed after {done} of {total} bytes")
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # our Range was refused: the next request starts over
                done = _restart(out)
            elif exc.code not in _RETRY_STATUS:
                raise WeightsError(f"{url} answered HTTP {exc.code} {exc.reason}.") from exc
            reason = f"HTTP {exc.code} {exc.reason}"
        except (_Retry, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
        if done > furthest:
            furthest, failures = done, 0
        failures += 1
        if failures > retries:
            raise WeightsError(f"Download from {url} failed after {retries} retries: {reason}.")
        time.sleep(backoff * 2 ** (failures - 1))


def _resumes_at(resp: http.client.HTTPResponse, offset: int) -> bool:
    """Whether ``resp`` is a 206 whose Content-Range ("bytes 100-199/200") starts at offset."""
    content_range = resp.headers.get("Content-Range", "")
    return resp.status == 206 and content_range.startswith(f"bytes {offset}-")


def _restart(out: BinaryIO) -> int:
    out.seek(0)
    out.truncate()
    return 0


def _response_total(resp: http.client.HTTPResponse, expected_size: int | None) -> int | None:
    if resp.status == 206:
        size = resp.headers.get("Content-Range", "").rpartition("/")[2]
        return int(size) if size.isdigit() else expected_size
    length = resp.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else expected_size


def _write(out: BinaryIO, chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as exc:  # disk full, permissions: retrying will not help
        raise WeightsError(f"Could not write the downloaded weights to {out.name}: {exc}") from exc


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while block := file.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def source_url(spec: ModelSpec, base_url: str | None = None) -> str:
    """Where ``spec`` is downloaded from: ``base_url/filename`` for a mirror (``base_url`` or
    ``$BGREMOVER_WEIGHTS_URL``), else the official location."""
    base = base_url if base_url is not None else os.environ.get(WEIGHTS_URL_ENV) or None
    return f"{base.rstrip('/')}/{spec.filename}" if base else spec.url


def download_weights(
    spec: ModelSpec | str,
    target_dir: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    progress: DownloadProgress | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Download ``spec``'s weights into ``target_dir`` (default: ``download_dir()``) and return
    the final path. The file appears there only once complete and verified: by md5 when the
    registry knows it, else by state-dict layout. Failures raise WeightsError and leave no
    partial file behind."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    directory = Path(target_dir) if target_dir is not None else download_dir()
    url = source_url(spec, base_url)
    final = directory / spec.filename
    manual = (
        f"Try again with `{spec.fetch_command}`, or download {spec.filename} by hand "
        f"from {spec.url} into {directory}."
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{spec.filename}.", suffix=".part", dir=directory
        )
    except OSError as exc:
        raise WeightsError(
            f"Cannot write weights into {directory}: {exc}. "
            f"Set {MODEL_DIR_ENV} to a writable directory."
        ) from exc
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                _transfer(url, out, progress, spec.size, retries, backoff, timeout)
            except WeightsError as exc:
                raise WeightsError(f"Could not download {spec.filename}: {exc} {manual}") from exc
        if spec.md5 is not None:
            actual = _md5(temp)
            if actual != spec.md5:
                raise WeightsError(
                    f"The downloaded {spec.filename} does not match its published checksum "
                    f"(md5 {actual}, expected {spec.md5}); the damaged download was deleted. "
                    f"{manual}"
                )
        else:
            try:
                _checked_state(temp, spec)
            except _BadFile as exc:
                raise WeightsError(
                    f"The file downloaded from {url} {exc}; it was deleted. {manual}"
                ) from exc
        temp.chmod(0o644)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    return final


# --- loading -----------------------------------------------------------------------------

_cache: dict[tuple[Path, str], LoadedModel] = {}
_cache_lock = threading.Lock()
_download_locks: dict[Path, threading.Lock] = {}
_threads_configured = False


def configure_torch_threads() -> int:
    """Set torch's intra-op CPU threads to ``$BGREMOVER_TORCH_THREADS`` or to the CPUs this
    process may run on, and return the number."""
    import torch

    setting = os.environ.get(TORCH_THREADS_ENV, "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise OptionsError(
                f"{TORCH_THREADS_ENV} must be a positive whole number, not {setting!r}."
            )
        threads = int(setting)
    elif hasattr(os, "sched_getaffinity"):
        threads = len(os.sched_getaffinity(0))
    else:
        threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


DEVICE_ENV = "BGREMOVER_DEVICE"


def _pick_device(device: str | torch.device | None) -> torch.device:
    import torch

    source = "Device"
    if device is None:
        device = os.environ.get(DEVICE_ENV, "").strip() or "auto"
        source = DEVICE_ENV
    if device == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise OptionsError(
            f"{source} {device!r} is not a device name (try 'auto', 'cpu' or 'cuda')."
        ) from exc
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError(
                f"{source} {str(chosen)!r} was asked for, but CUDA is not available."
            )
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
        looked = ", ".join(str(d) for d in search_dirs(model_dir))
        raise WeightsError(
            f"No weights for model {spec.name!r}: {spec.filename} is not in {looked}. "
            f"Run `{spec.fetch_command}`, or set {MODEL_DIR_ENV} to a directory that holds it."
        )
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
) -> LoadedModel:
    """The network for ``name`` (None: the best one present, see ``default_model_name``) with
    its weights, in eval mode on ``device`` (None: ``$BGREMOVER_DEVICE``, else "auto": CUDA
    when available, else CPU).

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
            configure_torch_threads()
            _threads_configured = True
        try:
            state, spec = _checked_state(weights_path, spec)
        except _BadFile as exc:
            raise WeightsError(f"{weights_path} {exc}. {_fix_hint(spec, explicit)}") from exc
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
