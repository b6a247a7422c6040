"""Downloading weights: verified, resumable transfers from the official location or a mirror.

A model is downloaded from its official location (or from a mirror given by ``base_url``),
through Google Drive's confirmation pages, with retries that resume a dropped connection where
the server allows it.
Downloads go to a temporary file in the target directory, are checked against the published
md5 (or, where none is published, by state-dict layout) and only then renamed into place, so a
partial file never sits at the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path
from typing import BinaryIO

from bgremover.engine.errors import WeightsError, WeightsRemedy
from bgremover.engine.weights_catalogue import ModelSpec, download_dir, get_spec
from bgremover.engine.weights_check import BadFile, checked_state

DownloadProgress = Callable[[int, int | None], None]
"""Called as ``(bytes_done, bytes_total_or_None)`` while a file downloads."""


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
# A partial download nobody has written to for this long was left by a killed process.
ABANDONED_PART_S = 3600
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


def _remove_abandoned_parts(directory: Path, filename: str) -> None:
    """Delete partial downloads of ``filename`` that a killed process left behind (a job's
    engine process is killed past its time or memory limit): untouched for
    ``ABANDONED_PART_S``, since a download in progress writes to its own all the time."""
    stale_before = time.time() - ABANDONED_PART_S
    for part in directory.glob(f".{filename}.*.part"):
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if part.stat().st_mtime < stale_before:
                part.unlink()


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
    """Where ``spec`` is downloaded from: ``base_url/filename`` for a mirror, else (None or
    empty) the official location."""
    return f"{base_url.rstrip('/')}/{spec.filename}" if base_url else spec.url


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
    manual = f"It can be downloaded by hand from {spec.url} into {directory}."

    def failed(message: str) -> WeightsError:
        return WeightsError(message, remedy=WeightsRemedy.DOWNLOAD_FAILED, model=spec.name)

    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_parts(directory, spec.filename)
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{spec.filename}.", suffix=".part", dir=directory
        )
    except OSError as exc:
        raise WeightsError(
            f"Cannot write weights into {directory}: {exc}.",
            remedy=WeightsRemedy.UNWRITABLE,
            model=spec.name,
        ) from exc
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                _transfer(url, out, progress, spec.size, retries, backoff, timeout)
            except WeightsError as exc:
                raise failed(f"Could not download {spec.filename}: {exc} {manual}") from exc
        if spec.md5 is not None:
            actual = _md5(temp)
            if actual != spec.md5:
                raise failed(
                    f"The downloaded {spec.filename} does not match its published checksum "
                    f"(md5 {actual}, expected {spec.md5}); the damaged download was deleted. "
                    f"{manual}"
                )
        else:
            try:
                checked_state(temp, spec)
            except BadFile as exc:
                raise failed(
                    f"The file downloaded from {url} {exc}; it was deleted. {manual}"
                ) from exc
        temp.chmod(0o644)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    return final
